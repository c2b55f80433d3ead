"""Reading answers for what they do: events per answer, the trace against the schedule."""

from __future__ import annotations

import pytest

from utils.evaluate.answers import answer_profile, read_answer
from utils.profiles import TRACES
from utils.task.data import load_split
from utils.task.prompts import format_answer
from utils.task.scheduling import optimal_schedule
from utils.train.warmstart import dp_answer, dp_reasoning


@pytest.fixture(scope="module")
def rows():
    return load_split("test", 30)


@pytest.mark.parametrize("trace", TRACES)
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


@pytest.mark.parametrize("trace", TRACES)
def test_the_warm_start_traces_name_every_real_clash_and_no_other(rows, trace):
    profile = answer_profile(rows, [dp_answer(r, trace) for r in rows])
    assert profile["clashes_named"] > 10
    assert profile["false_clashes_named"] == 0 and profile["real_clashes_named"] == 1


def test_a_trace_that_invents_or_misses_clashes_is_read_as_such():
    """Seen in the committed answers: traces that call two events that fit a clash (and then drop one)."""
    from utils.rewards.trace import compare_clashes, named_clashes

    row = {
        "events": [["Gym", "09:00", "10:30"], ["Call", "10:00", "11:00"], ["Nap", "11:00", "12:00"]],
        "priority_events": [],
        "optimal_score": 150,
    }
    invented = named_clashes("Clashes: Call ends 11:00 after Nap starts 11:00; Gym ends 10:30 after Gym starts 9:00.")
    assert invented == [("Call", "Nap"), ("Gym", "Gym")]
    assert compare_clashes(row["events"], invented) == (2, 0, 1)  # touching is no clash, nor is an event with itself
    assert compare_clashes(row["events"], [("Call", "Gym"), ("Yoga", "Gym")]) == (1, 1, 1)  # either order; unknown name
    for garbage in ("Conflicts: ; vs ; A vs . Drop: A.", "Clashes:", "", "Conflicts: A vs B"):
        assert all(a and b for a, b in named_clashes(garbage))  # never an empty name, never a crash
    profile = answer_profile([row], ["<think>No clashes.\nKeep: Gym. Total: 90.</think><schedule></schedule>"])
    assert profile["clashes_named"] == 0 and profile["false_clashes_named"] != profile["false_clashes_named"]  # NaN
    assert profile["real_clashes_named"] == 0


@pytest.mark.parametrize("trace", TRACES)
def test_the_trace_reward_pays_the_warm_start_targets_in_full(rows, trace):
    from utils.rewards import trace_clash_reward

    columns = {k: [r[k] for r in rows] for k in ("events", "priority_events", "optimal_score")}
    assert trace_clash_reward([dp_answer(r, trace) for r in rows], **columns) == [10.0] * len(rows)


def test_the_trace_reward_pays_the_committed_warm_start_less(rows):
    """The committed strong warm start's traces name a third of the real clashes, most of them false."""
    from pathlib import Path

    from utils.evaluate import load_completions
    from utils.rewards import trace_clash_reward

    path = Path(__file__).resolve().parent.parent / "results/ablation/strong_grpo_maximal/completions_sft_test.jsonl"
    texts = load_completions(path)[: len(rows)]
    columns = {k: [r[k] for r in rows] for k in ("events", "priority_events", "optimal_score")}
    paid = trace_clash_reward(texts, **columns)
    assert 0 < sum(paid) / len(paid) < 5 and min(paid) == 0


@pytest.mark.parametrize(
    "trace",
    [
        "Drop: x " * 130_000,  # 1 MB of clauses that never end: a lazy regex took 4 s on 64 KB
        "Clashes: " + "A ends 10:00 after B starts 09:00; " * 30_000,
        "Conflicts: " + "A vs " * 200_000 + ".",
    ],
)
def test_megabyte_traces_are_read_fast(trace):
    import time

    from utils.rewards.trace import clause, named_clashes

    assert len(trace) >= 1_000_000
    row = {"events": [["A", "09:00", "10:00"], ["B", "09:30", "10:30"]], "priority_events": [], "optimal_score": 60}
    t0 = time.perf_counter()
    clause(trace, "Drop:"), named_clashes(trace), read_answer(row, f"<think>{trace}</think><schedule></schedule>")
    assert time.perf_counter() - t0 < 2.0  # linear: tens of milliseconds; generous for a loaded CI box


@pytest.mark.parametrize("trace", TRACES)
def test_the_warm_start_targets_state_every_duration_right(rows, trace):
    from utils.evaluate.answers import stated_durations

    stated = stated_durations(rows, [dp_answer(r, trace) for r in rows])
    if trace == "short":  # names and clashes only: no values to state
        assert stated["durations_stated"] == 0
    else:
        assert stated["durations_stated"] == sum(len(r["events"]) for r in rows) and stated["durations_right"] == 1


def test_the_committed_warm_start_writes_15_minutes_for_most_events(rows):
    """Read what the model wrote: its traces copy the form of a duration, not the subtraction (15 is the most
    common real duration, about 15% of events; the model writes it for about two thirds of them)."""
    from pathlib import Path

    from utils.evaluate import load_completions
    from utils.evaluate.answers import stated_durations

    path = (
        Path(__file__).resolve().parent.parent / "results/ablation/strong_grpo_maximal_300/completions_sft_test.jsonl"
    )
    stated = stated_durations(load_split("test"), load_completions(path))
    assert stated["durations_stated"] > 500 and stated["durations_right"] < 0.2
    assert stated["most_common"] == 15 and stated["most_common_share"] > 0.6


def test_the_committed_models_keep_clashes_their_traces_missed(rows):
    """Read what the model wrote: in the strong rows' invalid answers, the clashing pairs a schedule keeps are
    mostly ones its own trace never named (detection), seldom ones it named and kept anyway (decision)."""
    from pathlib import Path

    from utils.evaluate import load_completions
    from utils.evaluate.answers import kept_clashes

    folder = Path(__file__).resolve().parent.parent / "results/ablation/strong_grpo_maximal_300"
    for stage in ("sft", "grpo"):
        kept = kept_clashes(load_completions(folder / f"completions_{stage}_test.jsonl"))
        assert kept["answers"] >= 25 and kept["not_named"] > 5 * kept["named"]
    assert kept_clashes([dp_answer(r, "full") for r in rows])["answers"] == 0  # the targets keep no clash


@pytest.mark.parametrize("style", ["mixed", "wide"])
@pytest.mark.parametrize("trace", TRACES)
def test_traces_of_made_up_names_read_back_exactly(trace, style):
    """Names with commas ("Help Ben move, 3rd floor") or a full stop and a space ("Film no. 7") of their own: the
    warm start's targets still agree with their traces, name every clash, and the trace reward pays them in full."""
    from utils.rewards import trace_clash_reward
    from utils.task.datagen import training_problems

    rows = training_problems(600, style)[500:]  # the generated ones: every other one made up
    names = [e[0] for r in rows for e in r["events"]]
    if style == "wide":
        assert sum("," in n for n in names) > 20 and sum(". " in n for n in names) > 5
    answers = [dp_answer(r, trace) for r in rows]
    profile = answer_profile(rows, answers)
    assert profile["contradicts_trace"] == 0 and profile["states_a_wrong_total"] == 0
    assert profile["false_clashes_named"] == 0 and profile["real_clashes_named"] == 1
    columns = {k: [r[k] for r in rows] for k in ("events", "priority_events", "optimal_score")}
    assert trace_clash_reward(answers, **columns) == [10.0] * len(rows)
