"""Group-relative advantages: how GRPO turns a group's rewards into learning signal."""

from __future__ import annotations

import math
from collections.abc import Sequence


def group_advantages(rewards: Sequence[float], group_size: int, eps: float = 1e-4) -> list[float]:
    """GRPO's advantage: within each group of ``group_size`` completions of one prompt,
    ``(r - mean) / (std + eps)``, with the sample standard deviation (n - 1), as TRL's
    default ``scale_rewards="group"``. A group whose rewards are all equal gets 0
    everywhere: nothing to learn from it."""
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    out: list[float] = []
    for g in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[g : g + group_size]]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1)) if len(group) > 1 else 0.0
        out += [(r - mean) / (std + eps) for r in group]
    return out
