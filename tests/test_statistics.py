"""Paired statistics (utils.evaluate.statistics) on small tables worked out by hand."""

import math

import pytest

from utils.evaluate import evaluate
from utils.evaluate.baselines import baseline_completions
from utils.evaluate.statistics import (
    compare,
    mcnemar_exact,
    mean_difference_interval,
    paired_bootstrap,
    permutation_test,
    transitions,
)


@pytest.mark.parametrize(
    "improved, worsened, expected",
    [
        (0, 0, 1.0),  # nothing changed
        (5, 0, 2 / 32),  # 5 of 5 changes one way: 2 * 0.5^5
        (9, 1, 2 * 11 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (1, 9, 2 * 11 / 1024),  # symmetric
        (3, 3, 1.0),  # capped at 1
        (26, 9, 2 * sum(math.comb(35, k) for k in range(10)) / 2**35),
    ],
)
def test_mcnemar_exact(improved, worsened, expected):
    assert mcnemar_exact(improved, worsened) == pytest.approx(expected)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_transitions_count_every_problem():
    before = [True, True, False, False, False]
    after = [True, False, True, True, False]
    assert transitions(before, after) == {
        "valid->valid": 1,
        "invalid->valid": 2,
        "valid->invalid": 1,
        "invalid->invalid": 1,
    }
    with pytest.raises(ValueError, match="same problems"):
        transitions(before, after[:3])


def test_paired_bootstrap_is_reproducible_and_brackets_the_mean():
    before = [0.0, 0.5, 0.2, 0.9, 0.0, 1.0, 0.3, 0.4]
    after = [0.5, 0.5, 0.9, 0.9, 0.0, 1.0, 0.8, 0.1]
    first = paired_bootstrap(before, after, n_boot=2000, seed=7)
    assert first == paired_bootstrap(before, after, n_boot=2000, seed=7)
    mean, low, high = first
    assert mean == pytest.approx(sum(a - b for b, a in zip(before, after)) / len(before))
    assert low <= mean <= high
    assert paired_bootstrap(before, before, n_boot=200) == (0.0, 0.0, 0.0)  # no difference, no width


def test_mean_difference_interval_excludes_zero_for_a_clear_shift():
    low_rewards, high_rewards = [40.0, 42.0, 38.0, 41.0, 39.0], [60.0, 62.0, 58.0, 61.0, 59.0]
    point, low, high = mean_difference_interval(low_rewards, high_rewards, n_boot=2000, seed=1)
    assert point == pytest.approx(20.0) and 0 < low <= point <= high


def test_compare_two_evaluations(test_rows):
    rows = test_rows[:20]
    worse = evaluate(rows, baseline_completions("all_events", rows))
    better = evaluate(rows, baseline_completions("dp_optimal", rows))
    c = compare(worse, better, "all events", "DP")
    assert c.transitions["invalid->valid"] == 20 - worse.valid and c.transitions["valid->invalid"] == 0
    assert c.p_value == pytest.approx(mcnemar_exact(20 - worse.valid, 0))
    assert c.score_low <= c.score_diff <= c.score_high and c.score_diff > 0
    assert "DP vs all events" in str(c)


def test_compare_counts_well_formed_answers_and_unchanged_texts(test_rows):
    rows = test_rows[:10]
    dp = baseline_completions("dp_optimal", rows)
    junk = ["I would go to the gym."] * 5 + dp[5:]
    c = compare(evaluate(rows, junk), evaluate(rows, dp), "junk", "DP", texts_a=junk, texts_b=dp)
    assert (c.well_formed_a, c.well_formed_b) == (5, 10) and c.identical == 5
    assert c.well_formed_transitions["malformed->well-formed"] == 5 and c.well_formed_p == mcnemar_exact(5, 0)
    assert "well-formed 5 -> 10" in str(c) and "5 of 10 answers unchanged" in str(c)


def test_permutation_test_is_exact_at_four_values_a_side():
    # issue 25: a bootstrap said [+2.2, +10.3] here; 4 of the 70 splits are at least this far from 0
    t = permutation_test([0, 0, 0, 3.75], [7.5, 10, 11.25, 1.25])
    assert t.exact and t.splits == 70 and t.diff == 6.5625
    assert t.p_value == 4 / 70 and t.low < 0 < t.high
    assert mean_difference_interval([0, 0, 0, 3.75], [7.5, 10, 11.25, 1.25])[1] > 0  # the bootstrap's mistake


def test_permutation_test_interval_and_its_limits():
    t = permutation_test([10, 12, 11, 13], [40, 41, 39, 42])
    assert t.p_value == 2 / 70 == t.smallest_p and t.low == pytest.approx(26, abs=1e-6)
    assert t.high == pytest.approx(32, abs=1e-6)
    tiny = permutation_test([1, 2], [3, 4])  # 6 splits: nothing can be rejected at 5%
    assert tiny.p_value == pytest.approx(1 / 3) and tiny.low == -math.inf and tiny.high == math.inf
    big = permutation_test(list(range(30)), [x + 100 for x in range(30)], seed=3)  # C(60, 30) splits: sampled
    assert not big.exact and big.p_value < 1e-3 and big.low > 0
    assert permutation_test(list(range(30)), [x + 100 for x in range(30)], seed=3) == big  # seeded
    with pytest.raises(ValueError, match="finite"):
        permutation_test([1, float("nan")], [2, 3])
    with pytest.raises(ValueError, match="at least one"):
        permutation_test([], [1])


def summary(categories, scores=None):
    """An EvalSummary stand-in: what compare() and the verdicts read (per-row category, validity, score)."""
    from types import SimpleNamespace

    scores = scores or [1.0 if c == "valid" else 0.0 for c in categories]
    results = [SimpleNamespace(category=c, valid=c == "valid", score=s) for c, s in zip(categories, scores)]
    return SimpleNamespace(n=len(results), valid=sum(r.valid for r in results), results=results)


def test_the_verdict_names_the_format_not_validity_when_only_the_format_moved():
    """Issue 25: the cpu run went well-formed 0 -> 19 of 24 and valid 0 -> 1; notebook 06 said
    "GRPO pushes more answers to valid"."""
    from utils.evaluate.statistics import change_verdict, takeaway, what_changed

    warm = summary(["format_error"] * 24)
    grpo = summary(["valid"] + ["nonexistent"] * 17 + ["overlap"] + ["format_error"] * 5, [0.4] + [0.0] * 23)
    c = compare(warm, grpo, "warm start", "GRPO")
    assert (c.well_formed_a, c.well_formed_b, c.valid_a, c.valid_b) == (0, 19, 0, 1)
    moved = {ch.what: ch.direction for ch in what_changed(c)}
    assert moved == {"well-formed answers": 1, "valid answers": 0, "mean score": 0}
    text = change_verdict(c, after=grpo)
    assert "Beyond chance: more well-formed answers 0 -> 19 (+19 / -0, exact McNemar p = 3.8e-06)" in text
    assert "Within chance: valid answers 0 -> 1 (+1 / -0, exact McNemar p = 1)" in text
    assert "17 of 24 answers fail first with an event that is not in the problem" in text
    lesson = takeaway(c, after=grpo)
    assert lesson.startswith("GRPO learned the answer format, not yet valid schedules")
    assert "more valid" not in lesson and "pushes more answers to valid" not in lesson


def test_the_verdict_says_valid_only_when_valid_answers_rose_beyond_chance():
    from utils.evaluate.statistics import change_verdict, takeaway

    warm = summary(["overlap"] * 20 + ["valid"] * 4)
    grpo = summary(["overlap"] * 8 + ["valid"] * 16)
    c = compare(warm, grpo, "warm start", "GRPO")
    assert "more valid answers 4 -> 16 (+12 / -0" in change_verdict(c)
    assert takeaway(c).startswith("GRPO wrote more valid schedules than warm start")
    hacked = compare(grpo, summary(["overlap"] * 24), "warm start", "GRPO")
    assert "fewer valid answers 16 -> 0" in change_verdict(hacked) and "fewer valid" in takeaway(hacked)
    same = compare(warm, warm, "warm start", "GRPO")
    text = change_verdict(same, reasons=["only 16 steps"])
    assert text.endswith(
        "No change beyond chance. Within chance: well-formed answers 24 -> 24 (+0 / -0, exact "
        "McNemar p = 1); valid answers 4 -> 4 (+0 / -0, exact McNemar p = 1); the mean score (+0.0 "
        "points, 95% paired bootstrap interval [+0.0, +0.0]). The training log shows: only 16 steps."
    )
    assert takeaway(same).startswith("No change beyond chance from warm start to GRPO on 24 test problems")
