"""The parser: what it finds, what it reports, and that it stays linear on any input."""

import time

import pytest

from utils.rewards.gallery import back_to_back_completion
from utils.rewards.parsing import completion_text, find_strict_events, parse_completion
from utils.task.prompts import format_answer

EVENTS = [["Gym", "07:00", "08:00"], ["Standup", "08:00", "08:30"], ["Lunch", "12:00", "13:00"]]
GOOD = format_answer("Gym and Standup touch; both fit.", EVENTS)


def test_good_answer():
    p = parse_completion(GOOD)
    assert p.think_at_start and p.has_reasoning and p.schedule_closed and p.well_formed
    assert [e.as_list() for e in p.events] == EVENTS
    assert p.events[0].start_min == 7 * 60 and p.events[1].end_min == 8 * 60 + 30
    assert p.problems == []


@pytest.mark.parametrize(
    "completion",
    [GOOD, [{"role": "assistant", "content": GOOD}], {"role": "assistant", "content": GOOD}, GOOD.encode()],
)
def test_every_form_gives_the_same_text(completion):
    assert completion_text(completion) == GOOD
    assert len(parse_completion(completion).events) == 3


def test_chat_ignores_other_roles():
    msgs = [{"role": "user", "content": "ignored"}, {"role": "assistant", "content": GOOD}]
    assert completion_text(msgs) == GOOD


@pytest.mark.parametrize("junk", [None, 42, 3.5, object(), [], [None], {"content": None}, b"\xff\xfe", ""])
def test_junk_never_raises(junk):
    p = parse_completion(junk)
    assert p.events == [] and not p.well_formed and p.problems


def test_non_text_is_reported():
    assert any("int" in m for m in parse_completion(42).problems)


def test_reasoning_states():
    assert parse_completion("no tags at all").problems[0] == "no <think> reasoning"
    assert "reasoning never closed" in parse_completion("<think>forever").problems[0]
    assert "text before <think>" in parse_completion("hi <think>x</think>").problems[0]
    empty = parse_completion("<think>  </think><schedule></schedule>")
    assert empty.reasoning == "  " and not empty.has_reasoning and "empty reasoning" in empty.problems
    assert parse_completion("  \n<think>x</think>").think_at_start  # leading whitespace is fine


def test_truncated_schedule():
    cut = GOOD[: GOOD.rindex("</end>") - 2]
    p = parse_completion(cut)
    assert p.truncated and not p.schedule_closed
    assert len(p.events) == 2 and p.malformed_events == 1
    assert any("truncated" in m for m in p.problems)
    assert any("malformed" in m for m in p.problems)


def test_bad_times_are_reported_not_parsed():
    text = GOOD.replace("12:00", "25:99").replace("07:00", "7:5")
    p = parse_completion(text)
    assert [e.name for e in p.events] == ["Standup"]  # 7:5 is malformed, 25:99 impossible
    assert [e.start for e in p.invalid_events] == ["25:99"]
    assert p.malformed_events == 1
    assert any("25:99" in m for m in p.problems)


def test_event_ending_before_it_starts():
    p = parse_completion(format_answer("x", [["Nap", "14:00", "13:00"]]))
    assert p.events == [] and len(p.invalid_events) == 1 and "before it starts" in p.problems[0]


def test_names_are_stripped_times_are_not_forgiven():
    text = (
        "<think>x</think><schedule><event> <name> Gym </name>\n<start>07:00</start>\t<end>08:00</end> </event>"
        "</schedule>"
    )
    assert [e.as_list() for e in parse_completion(text).events] == [["Gym", "07:00", "08:00"]]
    assert parse_completion(text.replace("<start>07:00", "<start> 07:00")).events == []


def test_duplicated_events_are_kept_for_the_rewards_to_judge():
    p = parse_completion(format_answer("x", EVENTS + EVENTS))
    assert len(p.events) == 6


def test_events_outside_the_schedule_are_ignored():
    text = "<think><event><name>A</name><start>01:00</start><end>02:00</end></event></think>" + GOOD
    assert len(parse_completion(text).events) == 3
    assert len(find_strict_events(text)) == 4  # the reference's view counts it


def test_first_schedule_block_only():
    text = GOOD + "\n" + format_schedule_of([["Extra", "20:00", "21:00"]])
    assert [e.name for e in parse_completion(text).events] == ["Gym", "Standup", "Lunch"]


def format_schedule_of(events):
    from utils.task.prompts import format_schedule

    return format_schedule(events)


def test_repr_does_not_print_a_megabyte():
    assert len(repr(parse_completion("<think>" + "x" * 100_000))) < 1000


@pytest.mark.parametrize(
    "text",
    [
        "<think>x</think><schedule>" + "<event><name>" * 80_000,  # 1 MB of repeated tags
        "<think>x</think><schedule>" + "<event>" + " " * 1_000_000,  # a megabyte of whitespace
        "<think>x</think><schedule><event><name>" + "a" * 1_000_000,  # a name that never ends
        "<think>" + "</think" * 150_000,
        back_to_back_completion(14_000),  # 1 MB of real events, cut before </schedule>
    ],
)
def test_megabyte_inputs_parse_fast(text):
    assert len(text) >= 1_000_000
    t0 = time.perf_counter()
    parse_completion(text)
    assert time.perf_counter() - t0 < 1.0  # typically 5-100 ms; generous for a loaded CI box
