"""Reading answers for what they do: events per answer, the trace against the schedule."""

from __future__ import annotations

import pytest

from utils.evaluate.answers import answer_profile, read_answer
from utils.task.data import load_split
from utils.task.prompts import format_answer
from utils.task.scheduling import optimal_schedule
from utils.train.warmstart import dp_answer, dp_reasoning


@pytest.fixture(scope="module")
def rows():
    return load_split("test", 30)


@pytest.mark.parametrize("trace", ["short", "full"])
def test_the_warm_start_targets_agree_with_their_traces(rows, trace):
    profile = answer_profile(rows, [dp_answer(r, trace) for r in rows])
    assert profile["with_trace"] == 1 and profile["contradicts_trace"] == 0 and profile["states_a_wrong_total"] == 0
    assert profile["events_per_answer"] == profile["optimal_events_per_answer"]


def test_a_schedule_that_lists_what_its_trace_drops_contradicts_it(rows):
    row = next(r for r in rows if len(optimal_schedule(r["events"], r["priority_events"])[1]) < len(r["events"]))
    everything = format_answer(dp_reasoning(row, "short"), sorted(row["events"], key=lambda e: e[1]))
    reading = read_answer(row, everything)
    assert reading.contradicts and reading.scheduled_but_dropped and reading.total_wrong
    assert reading.events == len(row["events"]) > reading.optimal_events


def test_a_schedule_that_leaves_out_a_kept_event_contradicts_a_full_trace(rows):
    row = rows[0]
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    shorter = format_answer(dp_reasoning(row, "full"), best[:-1])
    reading = read_answer(row, shorter)
    assert reading.kept_but_missing == (best[-1][0],) and reading.contradicts and reading.total_wrong


def test_a_schedule_that_silently_leaves_out_an_event_contradicts_a_short_trace(rows):
    """The short trace names only what it drops: every other event is kept, so leaving one out contradicts it."""
    row = rows[0]
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    reading = read_answer(row, format_answer(dp_reasoning(row, "short"), best[1:]))
    assert reading.kept_but_missing == (best[0][0],) and reading.contradicts


def test_answers_without_a_trace_are_counted_apart(rows):
    profile = answer_profile(rows[:2], ["no tags at all", "<think>hmm</think><schedule></schedule>"])
    assert profile["with_trace"] == 0 and profile["contradicts_trace"] == 0 and profile["events_per_answer"] == 0
    with pytest.raises(ValueError, match="2 rows but 1"):
        answer_profile(rows[:2], ["x"])
