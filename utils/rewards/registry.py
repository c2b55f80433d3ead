"""The rewards by name: what a saved reward set refers to, and the default set."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from .alternatives import (
    length_penalty_reward,
    overlap_penalty_score_reward,
    partial_format_reward,
    partial_score_reward,
    strict_score_reward,
    truncation_penalty_reward,
)
from .common import RewardFn, reward_name
from .course import format_reward, score_reward, sorted_events_reward
from .reference import REFERENCE_REWARDS

LIBRARY_REWARDS: dict[str, RewardFn] = {
    f.__name__: f
    for f in (
        format_reward,
        sorted_events_reward,
        score_reward,
        partial_format_reward,
        partial_score_reward,
        strict_score_reward,
        overlap_penalty_score_reward,
        truncation_penalty_reward,
        length_penalty_reward,
        *REFERENCE_REWARDS,
    )
}
"""Every reward the library ships, by name."""

DEFAULT_REWARDS: tuple[str, ...] = ("format_reward", "sorted_events_reward", "score_reward")


def get_reward(name: str) -> RewardFn:
    if name not in LIBRARY_REWARDS:
        raise ValueError(f"unknown reward {name!r}; library rewards: {sorted(LIBRARY_REWARDS)}")
    return LIBRARY_REWARDS[name]


def default_reward_funcs() -> list[RewardFn]:
    return [get_reward(n) for n in DEFAULT_REWARDS]


def total_reward(
    funcs: Sequence[RewardFn], completions: Sequence[Any], weights: Sequence[float] | None = None, **columns
) -> list[float]:
    """Weighted sum of several rewards, per completion (what GRPO's advantage uses).

    One finite weight per reward function (default: all 1), else ``ValueError``: a missing
    weight would silently drop a reward, a NaN one would make every total NaN. Each reward must
    return one value per completion (``None`` counts 0, as TRL reads it)."""
    funcs = list(funcs)
    weights = check_weights(weights, len(funcs))
    totals = [0.0] * len(completions)
    for fn, w in zip(funcs, weights):
        values = list(fn(completions=list(completions), **columns))
        if len(values) != len(completions):
            raise ValueError(f"{reward_name(fn)} returned {len(values)} values for {len(completions)} completions")
        for i, v in enumerate(values):
            totals[i] += w * (v or 0.0)
    return totals


def check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """``weights`` as a list of ``n`` finite floats (``None``: all 1.0); ``ValueError`` otherwise."""
    if weights is None:
        return [1.0] * n
    if isinstance(weights, (str, bytes)):
        raise ValueError(f"weights must be a list of {n} numbers, got {weights!r}")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(float(w)):
            raise ValueError(f"every reward weight must be a finite number, got {w!r}")
        out.append(float(w))
    if len(out) != n:
        raise ValueError(f"{n} reward functions but {len(out)} weights: give one weight per reward")
    return out
