"""utils.train.diagnose: the sentence a notebook prints about a run comes from the run's own log."""

from utils.train.diagnose import obstacles, reward_trend, verdict


def logs(rewards, clipped=0.0, zero=0.0):
    return [
        {"step": i + 1, "reward": r, "completions/clipped_ratio": clipped, "frac_reward_zero_std": zero}
        for i, r in enumerate(rewards)
    ] + [{"train_runtime": 1.0}]


def test_a_clear_rise_is_learning():
    t = reward_trend(logs([10, 12, 11, 13, 12, 30, 31, 29, 33, 32, 40, 41, 39, 42, 40, 41]))
    assert t.steps == 16 and len(t.first) == 4 and t.learned and t.low > 0
    assert "rose by more than its noise" in verdict(logs([10, 12, 11, 13, 12, 30, 31, 29, 33, 32, 40, 41, 39, 42]))


def test_noise_is_not_learning_and_the_reasons_are_named():
    flat = [20, 35, 18, 40, 22, 37, 19, 41, 21, 36, 20, 38]
    t = reward_trend(logs(flat))
    assert not t.learned and t.low < 0 < t.high
    text = verdict(logs(flat, clipped=0.8, zero=0.6))
    assert "no rise beyond noise" in text and "cut at the token budget" in text and "no gradient" in text
    assert "only 12 steps" in text


def test_too_few_steps_and_duplicated_log_lines():
    assert reward_trend(logs([1, 2, 3])) is None
    assert "Too few logged steps" in verdict(logs([1, 2, 3]))
    doubled = logs([1, 2, 3, 4, 5, 6, 7, 8]) * 2  # a resumed run logs its history twice: one value per step
    assert reward_trend(doubled).steps == 8
    assert obstacles([]) == ["no training step was logged"]
