"""The rewards by name: what a saved reward set refers to, and the default set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .alternatives import (
    length_penalty_reward,
    overlap_penalty_score_reward,
    partial_format_reward,
    partial_score_reward,
    truncation_penalty_reward,
)
from .common import RewardFn
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
    """Weighted sum of several rewards, per completion (what GRPO's advantage uses)."""
    weights = list(weights) if weights is not None else [1.0] * len(funcs)
    totals = [0.0] * len(completions)
    for fn, w in zip(funcs, weights):
        for i, v in enumerate(fn(completions=list(completions), **columns)):
            totals[i] += w * (v or 0.0)
    return totals
