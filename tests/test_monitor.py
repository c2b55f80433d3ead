"""The live monitor: the evaluation's view of sampled answers, logged into TRL's metrics."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest

from utils.evaluate import evaluate
from utils.profiles import TRACES
from utils.rewards import score_reward, strict_score_reward
from utils.rewards.gallery import make_gallery
from utils.task.data import load_split
from utils.task.scheduling import optimal_schedule
from utils.train.callbacks import CompletionRecorder
from utils.train.monitor import MONITOR_COLUMNS, RewardMonitor, monitor_batch


@pytest.fixture(scope="module")
def rows():
    return load_split("test", 20)


def columns(rows):
    return {
        "events": [r["events"] for r in rows],
        "priority_events": [r["priority_events"] for r in rows],
        "optimal_score": [r["optimal_score"] for r in rows],
    }


def one(row, completion):
    return monitor_batch([completion], **columns([row]))


def test_monitor_reads_the_gallery_as_the_evaluation_does(rows):
    row = rows[0]
    gallery = make_gallery(row)
    best = one(row, gallery["optimal (DP)"])
    n_best = len(optimal_schedule(row["events"], row["priority_events"])[1])
    assert best == {
        "monitor/valid": 1.0,
        "monitor/score": pytest.approx(100.0),
        "monitor/clash": 0.0,
        "monitor/invented": 0.0,
        "monitor/events": n_best,
        "monitor/optimal_events": n_best,
        "monitor/free_events": 0.0,  # an optimal schedule is maximal
        "monitor/trace_real_clashes": 0.0,  # the gallery's trace names no clash
        "monitor/trace_false_clashes": 0.0,
    }
    every = one(row, gallery["hack: every event"])
    assert every["monitor/valid"] == 0 and every["monitor/clash"] == 1 and every["monitor/score"] == 0
    assert every["monitor/events"] == len(row["events"])
    invented = one(row, gallery["invented event"])
    assert invented["monitor/invented"] == 1 and invented["monitor/valid"] == 0
    plain = one(row, gallery["no tags (plain text)"])
    assert plain["monitor/events"] == 0 and plain["monitor/valid"] == 0


def test_monitor_counts_the_events_a_valid_answer_leaves_out_for_free(rows):
    """Drop one event of an optimal schedule: the answer stays valid, and the dropped event is free."""
    from utils.task.prompts import format_answer

    row = next(r for r in rows if len(optimal_schedule(r["events"], r["priority_events"])[1]) >= 3)
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    short = one(row, format_answer("short", best[1:]))
    assert short["monitor/valid"] == 1 and short["monitor/free_events"] >= 1
    clashing = one(row, make_gallery(row)["hack: every event"])
    assert clashing["monitor/free_events"] == 0  # an invalid answer's gaps are not counted


def test_monitor_means_equal_the_evaluation_over_a_batch(rows):
    """monitor/valid and monitor/score are exactly what utils.evaluate reports for the same answers."""
    labels = ["optimal (DP)", "greedy", "overlapping", "invented event", "hack: every event", "truncated"]
    batch_rows = [r for r in rows[:10] for _ in labels]
    answers = [make_gallery(r)[label] for r in rows[:10] for label in labels]
    m = monitor_batch(answers, **columns(batch_rows))
    summary = evaluate(batch_rows, answers)
    assert m["monitor/valid"] == pytest.approx(summary.valid / summary.n)
    assert m["monitor/score"] == pytest.approx(summary.mean_score)


def test_the_seed_reward_pays_where_the_monitor_sees_nothing_valid(rows):
    """Goodhart in one line: the seed's score_reward pays for listing every event; validity is 0."""
    row = rows[0]
    hack = make_gallery(row)["hack: every event"]
    cols = columns([row])
    assert score_reward([hack], **cols)[0] > 0
    assert strict_score_reward([hack], **cols)[0] == 0
    assert one(row, hack)["monitor/valid"] == 0


def test_recorder_logs_the_monitor_into_the_trainers_metrics_once_per_batch(rows, tmp_path):
    def first(completions, **kw):
        return [1.0] * len(completions)

    def second(completions, **kw):
        return [2.0] * len(completions)

    recorder = CompletionRecorder([first, second], tmp_path / "samples.jsonl")
    trainer = SimpleNamespace(_metrics={"train": defaultdict(list), "eval": defaultdict(list)})
    trainer.model = SimpleNamespace(training=True)
    recorder.attach(trainer)
    answers = [make_gallery(rows[0])["optimal (DP)"], "nothing"]
    cols = columns([rows[0], rows[0]])
    for fn in recorder.wrapped:  # what TRL does: every reward function on the same batch
        fn(completions=answers, **cols)
    logged = trainer._metrics["train"]
    assert set(logged) == set(MONITOR_COLUMNS)
    assert all(len(v) == 1 for v in logged.values())  # once per batch, not once per reward function
    assert logged["monitor/valid"] == [0.5]
    assert trainer._metrics["eval"] == {}


def test_monitor_skips_data_without_problem_columns_and_refuses_mismatched_ones(rows):
    monitor = RewardMonitor()
    assert monitor.observe(["x"], prompts=["p"]) == {}
    with pytest.raises(ValueError, match="2 completions but 1"):
        monitor_batch(["a", "b"], **columns(rows[:1]))


def test_the_live_plot_draws_free_events_when_logged():
    import matplotlib

    matplotlib.use("Agg")
    from utils.display import plot_history

    step = {"reward": 1.0, "monitor/valid": 0.5, "monitor/score": 40.0, "monitor/events": 3.0}
    step |= {"monitor/optimal_events": 4.0, "monitor/clash": 0.1, "monitor/invented": 0.0}
    old = [{**step, "step": i} for i in range(3)]
    new = [{**h, "monitor/free_events": 0.5} for h in old]
    labels = lambda fig: [line.get_label() for line in fig.axes[-1].lines]  # noqa: E731
    assert "left out for free" in labels(plot_history(new))
    assert "left out for free" not in labels(plot_history(old))  # committed logs from before the column


@pytest.mark.parametrize("trace", TRACES)
def test_monitor_reads_what_the_traces_say_about_clashes(rows, trace):
    """The warm start's targets name every real clash and no other; a trace that invents one is caught."""
    from utils.train.warmstart import dp_answer

    clashing = [r for r in rows if "vs" in dp_answer(r, "short")][:8]
    exact = monitor_batch([dp_answer(r, trace) for r in clashing], **columns(clashing))
    assert exact["monitor/trace_real_clashes"] == 1 and exact["monitor/trace_false_clashes"] == 0
    row = clashing[0]
    a, b = row["events"][0][0], row["events"][0][0]  # an event "clashing" with itself: never a real clash
    invented = one(row, f"<think>Conflicts: {a} vs {b}. Drop: {a}.</think><schedule></schedule>")
    assert invented["monitor/trace_false_clashes"] == 1 and invented["monitor/trace_real_clashes"] == 0
