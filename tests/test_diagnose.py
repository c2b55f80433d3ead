"""utils.train.diagnose: the sentence a notebook prints about a run comes from the run's own log."""

import pytest

from utils.train.diagnose import obstacles, reward_trend, verdict


def logs(rewards, clipped=0.0, zero=0.0, components=None):
    rows = [
        {"step": i + 1, "reward": r, "completions/clipped_ratio": clipped, "frac_reward_zero_std": zero}
        for i, r in enumerate(rewards)
    ]
    for name, values in (components or {}).items():
        for row, v in zip(rows, values):
            row[f"rewards/{name}/mean"] = v
    return rows + [{"train_runtime": 1.0}]


def test_a_clear_rise_is_learning():
    t = reward_trend(logs([10, 12, 11, 13, 12, 30, 31, 29, 33, 32, 40, 41, 39, 42, 40, 41]))
    assert t.steps == 16 and len(t.first) == 4 and t.learned and t.low > 0
    assert t.exact and t.splits == 70 and t.p_value == pytest.approx(2 / 70)
    assert "rose by more than its noise" in verdict(logs([10, 12, 11, 13, 12, 30, 31, 29, 33, 32, 40, 41, 39, 42]))


def test_noise_is_not_learning_and_the_reasons_are_named():
    flat = [20, 35, 18, 40, 22, 37, 19, 41, 21, 36, 20, 38]
    t = reward_trend(logs(flat))
    assert not t.learned and t.low < 0 < t.high
    text = verdict(logs(flat, clipped=0.8, zero=0.6))
    assert "no rise beyond noise" in text and "cut at the token budget" in text and "no gradient" in text
    assert "only 12 steps" in text


# The cpu run of issue 25: a percentile bootstrap printed "[+2.2, +10.3], above zero" for these 4 vs 4 step
# means; every split of the 8 values gives an exact two-sided p of 4/70 = 0.057.
FIRST, LAST = [0, 0, 0, 3.75], [7.5, 10, 11.25, 1.25]


def test_four_step_means_a_side_are_tested_exactly_not_by_bootstrap():
    rewards = FIRST + [5.0] * 8 + LAST
    components = {
        "format_reward": [0, 0, 0, 1.25] + [2.5] * 8 + [2.5, 3.75, 3.75, 1.25],
        "sorted_events_reward": [0, 0, 0, 2.5] + [2.5] * 8 + [5, 6.25, 7.5, 0],
        "score_reward": [0.0] * 16,
    }
    t = reward_trend(logs(rewards, components=components))
    assert t.p_value == pytest.approx(4 / 70) and not t.learned
    assert t.low < 0 < t.high  # the interval agrees with the test
    text = verdict(logs(rewards, components=components))
    assert "above zero" not in text and "rose by more than its noise" not in text
    assert "p = 0.057" in text and "no rise beyond noise" in text
    # which components moved, by name: format and order changed, score paid nothing at any step
    names = {c.name: c for c in t.components}
    assert list(names) == ["format_reward", "sorted_events_reward", "score_reward"]
    assert names["score_reward"].paid is False and "score_reward 0 at every step" in text
    assert "format_reward 0.3 -> 2.8" in text and "sorted_events_reward 0.6 -> 4.7" in text


def test_components_that_moved_beyond_noise_are_named():
    rewards = [0, 0, 0, 0] + [5] * 8 + [10, 10, 10, 10]
    components = {"format_reward": [0] * 4 + [5] * 8 + [10] * 4, "score_reward": [0] * 16}
    t = reward_trend(logs(rewards, components=components))
    assert t.learned and [c.name for c in t.moved] == ["format_reward"]
    assert "format_reward 0.0 -> 10.0 (rose, p = 0.029)" in verdict(logs(rewards, components=components))


def test_a_fall_is_called_a_fall():
    text = verdict(logs([40, 41, 39, 42] + [30] * 8 + [10, 12, 11, 13]))
    assert "fell by more than its noise" in text


def test_too_few_steps_and_duplicated_log_lines():
    assert reward_trend(logs([1, 2, 3])) is None
    assert "Too few logged steps" in verdict(logs([1, 2, 3]))
    doubled = logs([1, 2, 3, 4, 5, 6, 7, 8]) * 2  # a resumed run logs its history twice: one value per step
    assert reward_trend(doubled).steps == 8
    assert obstacles([]) == ["no training step was logged"]
    # 2 steps a side: 6 splits, so no change can reach p < 0.05, and the verdict says so
    text = verdict(logs([0, 0, 10, 10]))
    assert "smallest possible p is 0.33" in text and "no rise beyond noise" in text
