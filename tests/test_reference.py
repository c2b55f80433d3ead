"""The linear-time reimplementation of the reference is the reference.

The format checks and the event extractor are compared with the published regular
expressions on many short generated inputs (short, so the regexes stay fast), and the
three reference rewards with a direct transliteration of the published functions.
"""

import re

import pytest
from helpers import ANSWER_TAGS
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.rewards.gallery import back_to_back_completion
from utils.rewards.reference import (
    REFERENCE_CAPTURE_PATTERN,
    REFERENCE_EVAL_FORMAT_PATTERN,
    REFERENCE_TRAIN_FORMAT_PATTERN,
    reference_eval_format_ok,
    reference_events,
    reference_format_reward,
    reference_score_reward,
    reference_sorted_events_reward,
    reference_train_format_ok,
    time_regex_in_subprocess,
)
from utils.task import optimal_schedule
from utils.task.prompts import format_answer

TRAIN_RX = re.compile(REFERENCE_TRAIN_FORMAT_PATTERN, re.DOTALL)
EVAL_RX = re.compile(REFERENCE_EVAL_FORMAT_PATTERN, re.DOTALL)
CAPTURE_RX = re.compile(REFERENCE_CAPTURE_PATTERN)
# The published extractor is written with re.VERBOSE over several lines; same pattern.
CAPTURE_VERBOSE_RX = re.compile(
    r"""
    <event>\s*
        <name>([^<]+)</name>\s*
        <start>(\d{2}:\d{2})</start>\s*
        <end>(\d{2}:\d{2})</end>\s*
    </event>
""",
    re.VERBOSE,
)

PIECES = ANSWER_TAGS + [
    "0",
    "1",
    "9",
    "12",
    ":",
    "07:30",
    "7:3",
    "a",
    "Gym",
    " ",
    "\n",
    "\t",
    "<",
    ">",
    "/",
    "\u0663",
    "\u00a0",
    "\x1c",
]  # an Arabic-Indic digit (\d matches it), odd whitespace


@st.composite
def tag_soup(draw, max_pieces=16):
    """Short texts glued from tags, digits and separators: every branch of the patterns."""
    return "".join(draw(st.lists(st.sampled_from(PIECES), max_size=max_pieces)))


@st.composite
def near_events(draw):
    """Mostly well-formed events, with one random edit: hits both the match and near misses."""
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["Gym", "A b", " x ", "Q\n"]),
                st.sampled_from(["07:00", "23:59", "99:99", "\u0661\u0662:00"]),
                st.sampled_from(["08:00", "7:00", "12:3"]),
            ),
            min_size=1,
            max_size=4,
        )
    )
    sep = draw(st.sampled_from(["", " ", "\n", "\n  ", "\r\n"]))
    text = "".join(
        f"<event>{sep}<name>{n}</name>{sep}<start>{s}</start>{sep}<end>{e}</end>{sep}</event>{sep}"
        for n, s, e in events
    )
    if draw(st.booleans()) and text:
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + draw(st.sampled_from(PIECES + [""])) + text[i + 1 :]
    prefix = draw(st.sampled_from(["", "<think>r</think><schedule>", "<schedule>", "junk "]))
    suffix = draw(st.sampled_from(["", "</schedule>", "</schedule> tail"]))
    return prefix + text + suffix


@st.composite
def mutated_answers(draw):
    """Whole answers (think + schedule + events) with a few random cuts, insertions and deletions."""
    think = draw(
        st.sampled_from(["<think>r</think>", "<think></think>", "<think>a</think>b</think>", "", " <think>r</think>"])
    )
    text = think + draw(st.sampled_from(["", "\n"])) + "<schedule>" + draw(near_events()) + "</schedule>"
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        text = text[:i] + draw(st.sampled_from(PIECES + [""])) + text[j:]
    return text


texts = st.one_of(
    tag_soup(), near_events(), mutated_answers(), st.text(alphabet="<>/:0123456789 abceghiknmrstvd\n", max_size=40)
)
MANY = settings(max_examples=1000)  # the proof of equivalence: many cases, each short and fast


@MANY
@given(texts)
def test_train_format_equals_the_regex(text):
    assert reference_train_format_ok(text) == bool(TRAIN_RX.match(text))


@MANY
@given(texts)
def test_eval_format_equals_the_regex(text):
    assert reference_eval_format_ok(text) == bool(EVAL_RX.match(text))


@MANY
@given(texts)
def test_events_equal_the_capture_regex(text):
    expected = [m.groups() for m in CAPTURE_VERBOSE_RX.finditer(text)]
    assert [m.groups() for m in CAPTURE_RX.finditer(text)] == expected
    assert [(e.name, e.start, e.end) for e in reference_events(text)] == expected


def test_the_generators_reach_both_answers():
    """Guard against a strategy that only ever produces non-matches."""
    good = format_answer("r", [["Gym", "07:00", "08:00"], ["Lunch", "12:00", "13:00"]])
    assert TRAIN_RX.match(good) and reference_train_format_ok(good)
    assert EVAL_RX.match(good.split("</think>")[1]) and not reference_train_format_ok(good.split("</think>")[1])


# --- the published reward functions, transliterated with the real regexes (the oracle)
def _minutes(t):
    h, m = map(int, t.split(":"))
    return h * 60 + m


def oracle_format(text):
    return 10.0 if TRAIN_RX.match(text) else 0.0


def oracle_sorted(text):
    evs = [m.groups() for m in CAPTURE_VERBOSE_RX.finditer(text)]
    if len(evs) < 2:
        return 0.0
    mins = [(e[0], _minutes(e[1]), _minutes(e[2])) for e in evs]
    return 20.0 if all(mins[i][1] < mins[i + 1][1] for i in range(len(mins) - 1)) else 0.0


def oracle_score(text, valid_events, priorities, opt_score):
    evs = [m.groups() for m in CAPTURE_VERBOSE_RX.finditer(text)]
    existing = {ev for ev in evs if [ev[0], ev[1], ev[2]] in valid_events}
    if len(existing) < len(evs) or len(existing) < 2:
        return 0.0
    mins = [(e[0], _minutes(e[1]), _minutes(e[2])) for e in existing]
    clash = set()
    for j in range(len(mins)):
        for k in range(j + 1, len(mins)):
            if mins[j][1] <= mins[k][2] and mins[j][2] >= mins[k][1]:
                clash.add(mins[j])
                clash.add(mins[k])
    score = sum(2 * (e[2] - e[1]) if e[0] in priorities else e[2] - e[1] for e in mins if e not in clash)
    return score / opt_score * 70


PROBLEM = {
    "events": [
        ["Gym", "07:00", "08:00"],
        ["A b", "07:30", "09:00"],
        ["Lunch", "12:00", "13:00"],
        ["Q\n", "08:00", "12:00"],
    ],
    "priority_events": ["Lunch"],
}
PROBLEM["optimal_score"] = optimal_schedule(PROBLEM["events"], PROBLEM["priority_events"])[0]


@st.composite
def answers(draw):
    chosen = draw(st.lists(st.sampled_from(PROBLEM["events"] + [["Gym", "07:00", "07:45"]]), max_size=5))
    sep = draw(st.sampled_from(["", "\n", " \n "]))
    body = "".join(
        f"<event>{sep}<name>{n}</name>{sep}<start>{s}</start>{sep}<end>{e}</end>{sep}</event>{sep}"
        for n, s, e in chosen
    )
    return (
        draw(st.sampled_from(["<think>r</think>", "", "<think></think>"]))
        + "<schedule>"
        + body
        + draw(st.sampled_from(["</schedule>", ""]))
    )


@given(st.one_of(answers(), texts))
def test_reference_rewards_equal_the_published_functions(text):
    cols = {k: [PROBLEM[k]] for k in ("events", "priority_events", "optimal_score")}
    for completion in (text, [{"role": "assistant", "content": text}]):
        assert reference_format_reward([completion]) == [oracle_format(text)]
        assert reference_sorted_events_reward([completion]) == [oracle_sorted(text)]
        assert reference_score_reward([completion], **cols) == pytest.approx(
            [oracle_score(text, PROBLEM["events"], PROBLEM["priority_events"], PROBLEM["optimal_score"])]
        )


def test_format_reward_on_the_backtracking_input_is_instant():
    text = back_to_back_completion(200)  # the regex would not finish in our lifetime
    assert reference_format_reward([text]) == [0.0]
    assert reference_format_reward([text + "</schedule>"]) == [10.0]


def test_timing_in_a_subprocess():
    assert time_regex_in_subprocess(format_answer("r", [["Gym", "07:00", "08:00"]]), timeout=20) < 1
    assert time_regex_in_subprocess(back_to_back_completion(30), timeout=0.5) is None  # killed, not hung
