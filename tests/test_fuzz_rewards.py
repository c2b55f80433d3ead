"""Bad input never raises, never hangs, and always gives one finite value in range.

Hypothesis throws random text, binary junk and mutations of valid answers at every
reward (ours, the alternatives and the reference reimplementations), as plain strings
and as chat messages, in batches mixed with real problems.
"""

import math
import time

import pytest
from helpers import ANSWER_TAGS
from hypothesis import given
from hypothesis import strategies as st

from utils.rewards import LIBRARY_REWARDS, explain
from utils.rewards.gallery import back_to_back_completion, make_gallery
from utils.task import optimal_schedule
from utils.task.data import load_split
from utils.task.prompts import format_answer

ROWS = load_split("train", limit=20)
REWARDS = list(LIBRARY_REWARDS.values())
TAGS = [
    *ANSWER_TAGS,
    "25:99",
    "7:5",
    "00:00",
    "24:00",
    "\x00",
    "\n",
]


def check_all(completions, rows):
    cols = {k: [r[k] for r in rows] for k in ("events", "priority_events", "optimal_score")}
    for fn in REWARDS:
        lo, hi = fn.reward_range
        for batch in (completions, [[{"role": "assistant", "content": c}] for c in completions]):
            out = fn(completions=batch, prompts=[r["prompt"] for r in rows], **cols)
            assert len(out) == len(batch), fn.__name__
            for v in out:
                assert isinstance(v, float) and math.isfinite(v) and lo <= v <= hi, (fn.__name__, v)


def valid_answer(i):
    row = ROWS[i]
    return format_answer("r", optimal_schedule(row["events"], row["priority_events"])[1])


@st.composite
def mutation(draw):
    """A valid answer with random cuts, duplications and insertions of tags or junk."""
    i = draw(st.integers(0, len(ROWS) - 1))
    text = valid_answer(i)
    for _ in range(draw(st.integers(1, 6))):
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 30)))
        op = draw(st.sampled_from(["cut", "delete", "insert", "duplicate", "truncate"]))
        if op == "cut":
            text = text[:a] + text[b:]
        elif op == "delete":
            text = text[:a] + text[a + 1 :]
        elif op == "insert":
            text = text[:a] + draw(st.one_of(st.sampled_from(TAGS), st.text(max_size=5))) + text[a:]
        elif op == "duplicate":
            text = text[:b] + text[a:b] + text[b:]
        else:
            text = text[:a]
    return i, text


anything = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=50),
    st.text(max_size=200),
    st.lists(st.sampled_from(TAGS), max_size=30).map("".join),
    st.lists(st.dictionaries(st.sampled_from(["role", "content"]), st.text(max_size=20)), max_size=2),
)


@given(st.lists(mutation(), min_size=1, max_size=4))
def test_mutated_answers(cases):
    check_all([t for _, t in cases], [ROWS[i] for i, _ in cases])


@given(st.lists(anything, min_size=1, max_size=4))
def test_random_junk(junk):
    check_all(junk, ROWS[: len(junk)])


@given(mutation())
def test_explain_never_raises(case):
    i, text = case
    e = explain(ROWS[i], text)
    assert math.isfinite(e.total) and 0 <= e.total <= 100 and str(e)


NASTY = {
    "None": None,
    "a number": 12345,
    "bytes": bytes(range(256)) * 10,
    "empty": "",
    "whitespace": " \n\t " * 100,
    "binary junk": "\x00\xff\ufffd" * 1000,
    "1 MB of repeated tags": "<think>x</think><schedule>" + "<event><name>" * 80_000,
    "1 MB of real events, no </schedule>": back_to_back_completion(14_000),
    "1 MB of one event": format_answer("x", [["Gym", "07:00", "08:00"]] * 14_000),
    "cut mid-event": valid_answer(0)[:-40],
    "25:99": valid_answer(0).replace(ROWS[0]["events"][0][1], "25:99"),
    "7:5": valid_answer(0).replace(ROWS[0]["events"][0][1], "7:5"),
    "duplicated events": valid_answer(0).replace("</schedule>", valid_answer(0).split("<schedule>")[1]),
    "gallery": None,  # replaced per row below
}


@pytest.mark.parametrize("label", list(NASTY))
def test_nasty_inputs(label):
    t0 = time.perf_counter()
    if label == "gallery":
        for row in ROWS[:5]:
            g = list(make_gallery(row).values())
            check_all(g, [row] * len(g))
    else:
        check_all([NASTY[label]], [ROWS[0]])
    assert time.perf_counter() - t0 < 20  # 11 rewards x 2 forms; a hang would take forever
