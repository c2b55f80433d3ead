"""Did this run learn? The reward trend of a training run, with its noise, and what held it back.

Computed from the run's own log history (what TRL logged each step), so the sentence a notebook
prints is about the learner's run, not about a run somewhere else:

* :func:`reward_trend` - mean total reward of the first and the last quarter of the steps, an
  exact permutation test of the difference (a bootstrap is too narrow with 4 step means a side),
  and the same for each reward component TRL logged (``rewards/<name>/mean``);
* :func:`obstacles` - the usual reasons a GRPO run shows nothing: answers cut at the budget,
  groups with no reward variance (no gradient), too few steps;
* :func:`verdict` - all of it in a few plain sentences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..evaluate.statistics import permutation_test

ALPHA = 0.05  # a change counts when its two-sided permutation p-value is below this


@dataclass(frozen=True)
class ComponentTrend:
    """One reward function's mean per step, first vs last quarter (as TRL logged it, before weights)."""

    name: str
    first: float  # mean over the first quarter's steps
    last: float
    p_value: float
    paid: bool  # it paid something (not 0) at some logged step

    @property
    def moved(self) -> bool:
        return self.p_value < ALPHA

    def to_text(self) -> str:
        if not self.paid:
            return f"{self.name} 0 at every step"
        change = "rose" if self.last > self.first else "fell"
        beyond = f"{change}, p = {self.p_value:.2g}" if self.moved else f"within noise, p = {self.p_value:.2g}"
        return f"{self.name} {self.first:.1f} -> {self.last:.1f} ({beyond})"


@dataclass(frozen=True)
class Trend:
    steps: int
    first: list[float]  # mean reward of each step in the first quarter
    last: list[float]  # ... and in the last quarter
    diff: float  # mean(last) - mean(first)
    low: float  # 95% interval of diff: the shifts the permutation test does not reject (+-inf: none can be)
    high: float
    p_value: float = 1.0  # two-sided permutation test of diff (exact when the splits are few)
    splits: int = 0  # splits of the 2k step means the test counted (70 for 4 vs 4)
    exact: bool = True
    components: tuple[ComponentTrend, ...] = ()  # per reward function, in the order TRL logged them

    @property
    def learned(self) -> bool:
        """The reward rose by more than its step-to-step noise: p < 0.05 and the change is positive."""
        return self.diff > 0 and self.p_value < ALPHA

    @property
    def moved(self) -> list[ComponentTrend]:
        """The reward components that changed beyond their noise."""
        return [c for c in self.components if c.moved]


def logged_steps(log_history: Sequence[dict]) -> list[dict]:
    """The per-step training logs (the ones with a reward), in step order, one per step."""
    seen: dict[int, dict] = {}
    for h in log_history:
        if "reward" in h and "step" in h:
            seen[int(h["step"])] = h
    return [seen[k] for k in sorted(seen)]


def component_names(logs: Sequence[dict]) -> list[str]:
    """Reward function names TRL logged as ``rewards/<name>/mean``, in first-seen order."""
    names: dict[str, None] = {}
    for h in logs:
        for key in h:
            if key.startswith("rewards/") and key.endswith("/mean"):
                names[key[len("rewards/") : -len("/mean")]] = None
    return list(names)


def reward_trend(log_history: Sequence[dict], fraction: float = 0.25, seed: int = 0) -> Trend | None:
    """First vs last ``fraction`` of the logged steps (None with fewer than 4 logged steps)."""
    logs = logged_steps(log_history)
    if len(logs) < 4:
        return None
    k = max(2, round(fraction * len(logs)))
    first, last = [h["reward"] for h in logs[:k]], [h["reward"] for h in logs[-k:]]
    test = permutation_test(first, last, seed=seed)
    components = []
    for name in component_names(logs):
        key = f"rewards/{name}/mean"
        a, b = [h.get(key, 0.0) for h in logs[:k]], [h.get(key, 0.0) for h in logs[-k:]]
        paid = any(h.get(key, 0.0) != 0 for h in logs)
        finite = all(math.isfinite(v) for v in a + b)  # TRL logs NaN for a step where the function returned None
        p = permutation_test(a, b, seed=seed).p_value if paid and finite else 1.0
        components.append(ComponentTrend(name, sum(a) / k, sum(b) / k, p, paid))
    return Trend(
        len(logs), first, last, test.diff, test.low, test.high, test.p_value, test.splits, test.exact, tuple(components)
    )


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
    """A few sentences about this run's reward trend: the numbers, the test, which reward components
    moved and, if the total did not rise beyond noise, why."""
    trend = reward_trend(log_history)
    reasons = obstacles(log_history)
    if trend is None:
        return "Too few logged steps to compare the start and the end of this run." + (
            " " + "; ".join(reasons) + "." if reasons else ""
        )
    k = len(trend.first)
    how = (
        f"exact permutation test over all {trend.splits} splits of these {2 * k} step means"
        if trend.exact
        else f"permutation test, {trend.splits:,} random splits of these {2 * k} step means"
    )
    interval = (
        f"95% interval [{trend.low:+.1f}, {trend.high:+.1f}]"
        if math.isfinite(trend.low) and math.isfinite(trend.high)
        else "too few steps for a bounded 95% interval"
    )
    head = (
        f"Mean total reward of the last {k} steps {sum(trend.last) / k:.1f} vs the first {k} "
        f"{sum(trend.first) / k:.1f}: a change of {trend.diff:+.1f} ({how}: p = {trend.p_value:.2g}; {interval})."
    )
    parts = ""
    if trend.components:
        parts = " By reward component: " + "; ".join(c.to_text() for c in trend.components) + "."
    if trend.learned:
        return head + " p < 0.05: this run's reward rose by more than its noise." + parts
    why = (" Likely why: " + "; ".join(reasons) + ".") if reasons else ""
    if trend.diff < 0 and trend.p_value < ALPHA:
        return head + " p < 0.05: this run's reward fell by more than its noise." + parts + why
    floor = ""
    if trend.exact and 2 / trend.splits >= ALPHA:
        floor = (
            f" (with {k} steps a side the test cannot reach 0.05: its smallest possible p is {2 / trend.splits:.2g})"
        )
    return head + f" p >= 0.05{floor}: no rise beyond noise in this run." + parts + why
