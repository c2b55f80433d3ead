"""Did this run learn? The reward trend of a training run, with its noise, and what held it back.

Computed from the run's own log history (what TRL logged each step), so the sentence a notebook
prints is about the learner's run, not about a run somewhere else:

* :func:`reward_trend` - mean total reward of the first and the last quarter of the steps, and a
  bootstrap interval of the difference (steps resampled within each quarter);
* :func:`obstacles` - the usual reasons a GRPO run shows nothing: answers cut at the budget,
  groups with no reward variance (no gradient), too few steps;
* :func:`verdict` - both in one or two plain sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..evaluate.statistics import mean_difference_interval


@dataclass(frozen=True)
class Trend:
    steps: int
    first: list[float]  # mean reward of each step in the first quarter
    last: list[float]  # ... and in the last quarter
    diff: float  # mean(last) - mean(first)
    low: float  # 95% bootstrap interval of diff
    high: float

    @property
    def learned(self) -> bool:
        """The interval lies above 0: the reward rose by more than its step-to-step noise."""
        return self.low > 0


def logged_steps(log_history: Sequence[dict]) -> list[dict]:
    """The per-step training logs (the ones with a reward), in step order, one per step."""
    seen: dict[int, dict] = {}
    for h in log_history:
        if "reward" in h and "step" in h:
            seen[int(h["step"])] = h
    return [seen[k] for k in sorted(seen)]


def reward_trend(log_history: Sequence[dict], fraction: float = 0.25, seed: int = 0) -> Trend | None:
    """First vs last ``fraction`` of the logged steps (None with fewer than 4 logged steps)."""
    logs = logged_steps(log_history)
    if len(logs) < 4:
        return None
    k = max(2, round(fraction * len(logs)))
    first, last = [h["reward"] for h in logs[:k]], [h["reward"] for h in logs[-k:]]
    diff, low, high = mean_difference_interval(first, last, seed=seed)
    return Trend(len(logs), first, last, diff, low, high)


def obstacles(log_history: Sequence[dict]) -> list[str]:
    """Reasons, read from the logs, why a run may show no learning."""
    logs = logged_steps(log_history)
    if not logs:
        return ["no training step was logged"]
    out = []

    def mean(key: str) -> float | None:
        values = [h[key] for h in logs if key in h]
        return sum(values) / len(values) if values else None

    clipped = mean("completions/clipped_ratio")
    if clipped is not None and clipped > 0.2:
        out.append(
            f"{clipped:.0%} of the answers were cut at the token budget (max_completion_length): a cut "
            "answer has no closed schedule, so it earns no format reward"
        )
    zero = mean("frac_reward_zero_std")
    if zero is not None and zero > 0.3:
        out.append(f"{zero:.0%} of the groups had the same reward for every answer: those groups give no gradient")
    if len(logs) < 20:
        out.append(
            f"only {len(logs)} steps: GRPO's updates are small, and a few steps rarely move the reward beyond its noise"
        )
    return out


def verdict(log_history: Sequence[dict]) -> str:
    """One or two sentences about this run's reward trend, with the numbers and, if nothing changed, why."""
    trend = reward_trend(log_history)
    reasons = obstacles(log_history)
    if trend is None:
        return "Too few logged steps to compare the start and the end of this run." + (
            " " + "; ".join(reasons) + "." if reasons else ""
        )
    k = len(trend.first)
    head = (
        f"Mean total reward of the last {k} steps {sum(trend.last) / k:.1f} vs the first {k} "
        f"{sum(trend.first) / k:.1f}: a change of {trend.diff:+.1f}, 95% bootstrap interval "
        f"[{trend.low:+.1f}, {trend.high:+.1f}]."
    )
    if trend.learned:
        return head + " The interval is above zero: this run's reward rose by more than its noise."
    why = (" Likely why: " + "; ".join(reasons) + ".") if reasons else ""
    return head + " The interval includes zero (or lies below it): no rise beyond noise in this run." + why
