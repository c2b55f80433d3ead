"""utils.baselines: rule-written answers through the real evaluation."""

from __future__ import annotations

import pytest

from utils.evaluate.baselines import BASELINES, baseline_completions, baseline_table, evaluate_baselines
from utils.evaluate.evaluation import SUMMARY_KEYS, evaluate
from utils.paths import TEST_FILE, TRAIN_FILE
from utils.rewards import format_reward
from utils.rewards.parsing import parse_completion
from utils.task import GREEDY_RULES
from utils.task.data import load_jsonl

ROWS = load_jsonl(TEST_FILE)


def test_dp_scores_100():
    summary = evaluate(ROWS, baseline_completions("dp_optimal", ROWS))
    assert summary.valid == len(ROWS)
    assert summary.mean_score == pytest.approx(100.0)


def test_dp_scores_100_on_train():
    rows = load_jsonl(TRAIN_FILE)
    assert evaluate(rows, baseline_completions("dp_optimal", rows)).mean_score == pytest.approx(100.0)


@pytest.mark.parametrize("rule", GREEDY_RULES)
def test_greedy_is_valid_and_at_most_optimal(rule):
    summary = evaluate(ROWS, baseline_completions(f"greedy_{rule}", ROWS))
    # Valid unless only one event fits (then "fewer than 2"); never above the optimum.
    assert summary.valid + summary.counts["fewer_than_2_events"] == len(ROWS)
    assert all(r.score <= 1.0 + 1e-12 for r in summary.results)
    assert summary.mean_score <= 100.0 + 1e-9


def test_random_valid_is_seeded_and_valid():
    a = baseline_completions("random_valid", ROWS, seed=1)
    assert a == baseline_completions("random_valid", ROWS, seed=1)
    assert a != baseline_completions("random_valid", ROWS, seed=2)
    summary = evaluate(ROWS, a)
    assert summary.valid + summary.counts["fewer_than_2_events"] == len(ROWS)
    assert summary.counts["overlaps"] == summary.counts["unsorted"] == summary.counts["nonexistent"] == 0


def test_all_events_mostly_overlap():
    summary = evaluate(ROWS, baseline_completions("all_events", ROWS))
    assert summary.valid == 0 and summary.mean_score == 0.0
    # Every problem has an overlapping pair; equal start times land in "unsorted" first.
    assert summary.counts["overlaps"] >= 0.8 * len(ROWS)
    assert summary.counts["overlaps"] + summary.counts["unsorted"] == len(ROWS)


def test_answers_have_the_course_format():
    row = ROWS[0]
    completions = [fn(row, 0) for fn in BASELINES.values()]
    assert all(parse_completion(c).well_formed for c in completions)
    assert format_reward(completions) == [10.0] * len(completions)


def test_table():
    table = baseline_table(ROWS[:10])
    assert list(table.index) == list(BASELINES)
    assert tuple(table.columns) == SUMMARY_KEYS
    assert table.loc["dp_optimal", "mean_score"] == pytest.approx(100.0)
    assert (table["mean_score"] <= table.loc["dp_optimal", "mean_score"] + 1e-9).all()


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_completions("nope", ROWS)
    assert set(evaluate_baselines(ROWS[:3], ["all_events"])) == {"all_events"}
