"""Rewards -> advantages: how GRPO turns a group's rewards into a learning signal.

GRPO samples a *group* of completions per prompt and scores each one. Only the
differences inside a group teach anything: each completion's advantage is its reward
minus the group mean (scaled by the group's spread by default). The functions here
compute exactly what TRL 1.14's ``GRPOTrainer`` computes, in float32 like TRL, so the
numbers agree bit for bit (``tests/test_grpo_math.py``). Where each step lives in TRL's
source: ``TRL_NOTES.md`` next to this file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from ..rewards.total import check_weights, weighted_total

ADVANTAGE_EPS = 1e-4
"""TRL divides by ``std + 1e-4``, never by ``std`` alone, so a zero-variance group gives 0, not NaN."""

ScaleRewards = Literal["group", "batch", "none"]


def nanstd(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sample standard deviation (divides by n - 1, "Bessel's correction"), ignoring NaNs.

    Same as ``trl.trainer.utils.nanstd``: a single value has no spread, so n = 1 gives NaN.

    >>> nanstd(torch.tensor([1.0, 0.0, 0.0, 1.0]))
    tensor(0.5774)
    >>> nanstd(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), dim=1)
    tensor([1.4142, 0.0000])
    """
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    variance = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    count = torch.sum(~torch.isnan(x), dim=dim, keepdim=True)
    correction = count / (count - 1)  # n / (n - 1): from the "population" to the "sample" variance
    correction = torch.where(count > 1, correction, torch.full_like(correction, float("nan")))
    std = torch.sqrt(variance * correction)
    return std.squeeze() if dim is None else std.squeeze(dim)


def combine_rewards(rewards_per_func: torch.Tensor, weights: Sequence[float] | None = None) -> torch.Tensor:
    """One reward per completion from several reward functions: the weighted sum.

    ``rewards_per_func`` has shape (num_completions, num_funcs). A function may return
    ``None`` (NaN here) for a completion it does not judge; NaNs are skipped in the sum,
    and a completion no function could score stays NaN (TRL then gives it advantage 0).
    This is TRL's default ``multi_objective_aggregation="sum_then_normalize"``.

    >>> combine_rewards(torch.tensor([[1.0, 0.5], [0.0, float("nan")], [float("nan")] * 2]), [1.0, 2.0])
    tensor([2., 0., nan])
    """
    rewards_per_func = torch.as_tensor(rewards_per_func, dtype=torch.float32)
    w = check_weights(weights, rewards_per_func.size(1))
    rows = [[None if math.isnan(v) else v for v in row] for row in rewards_per_func.tolist()]
    return torch.tensor([weighted_total(row, w) for row in rows], dtype=torch.float32)  # the course's one total


def _reward_std(rewards: torch.Tensor, group_size: int, scale: ScaleRewards) -> torch.Tensor:
    """The std each completion's advantage is divided by (per group, or the batch's)."""
    if scale in ("group", "none"):  # "none": only used to spot zero-variance groups for logging
        if group_size > 1:
            return nanstd(rewards.view(-1, group_size), dim=1).repeat_interleave(group_size, dim=0)
        return torch.zeros_like(rewards)
    if scale == "batch":
        return nanstd(rewards).expand_as(rewards) if rewards.numel() > 1 else torch.zeros_like(rewards)
    raise ValueError(f"scale must be 'group', 'batch' or 'none', not {scale!r}")


def group_advantages(
    rewards: torch.Tensor | Sequence[float],
    group_size: int,
    scale: ScaleRewards = "group",
    eps: float = ADVANTAGE_EPS,
) -> torch.Tensor:
    """How good each completion is compared with its siblings (the other completions of its prompt).

    ``rewards`` lists the completions group after group (``group_size`` per prompt, in
    TRL's ``num_generations`` order). For completion i of a group:

    * ``scale="group"`` (TRL default): ``A_i = (r_i - mean_group) / (std_group + 1e-4)``
    * ``scale="batch"``: ``A_i = (r_i - mean_group) / (std_batch + 1e-4)``; note that the
      *mean* is still the group's, only the std is taken over the whole generation batch
      (gathered from all processes).
    * ``scale="none"`` (Dr. GRPO): ``A_i = r_i - mean_group``

    ``std`` is the sample std (n - 1). A group whose rewards are all equal carries no
    signal: its advantages are 0 (exactly 0 when the group mean is exact in floating point,
    e.g. for rewards like 0.5 or 1.0; otherwise a rounding-level residue, the same one TRL
    gets). NaN rewards (unscorable completions) are left out of mean/std and get 0.

    >>> group_advantages([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5], group_size=4)
    tensor([ 0.8659, -0.8659, -0.8659,  0.8659,  0.0000,  0.0000,  0.0000,  0.0000])
    >>> group_advantages([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5], group_size=4, scale="none")
    tensor([ 0.5000, -0.5000, -0.5000,  0.5000,  0.0000,  0.0000,  0.0000,  0.0000])
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32 if not torch.is_tensor(rewards) else None)
    if rewards.ndim != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{tuple(rewards.shape)} rewards do not split into groups of {group_size}")
    mean = torch.nanmean(rewards.view(-1, group_size), dim=1).repeat_interleave(group_size, dim=0)
    std = _reward_std(rewards, group_size, scale)
    advantages = rewards - mean
    if scale != "none":
        advantages = advantages / (std + eps)
    return torch.nan_to_num(advantages, nan=0.0)


def reward_metrics(
    rewards: torch.Tensor | Sequence[float], group_size: int, scale: ScaleRewards = "group"
) -> dict[str, float]:
    """The reward numbers TRL logs: ``reward``, ``reward_std`` and ``frac_reward_zero_std``.

    ``reward_std`` is the std over the whole batch (not the mean of the group stds).
    ``frac_reward_zero_std`` is the share of completions whose std (the one the advantage
    is divided by) is ~0: with ``scale="group"``/``"none"`` that is the share of completions
    in zero-variance groups, i.e. the part of the batch that teaches nothing. With
    ``scale="batch"`` it compares the *batch* std, so it is either 0 or 1.

    >>> {k: round(v, 4) for k, v in reward_metrics([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5], group_size=4).items()}
    {'reward': 0.5, 'reward_std': 0.378, 'frac_reward_zero_std': 0.5}
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32 if not torch.is_tensor(rewards) else None)
    std = _reward_std(rewards, group_size, scale)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    return {
        "reward": torch.nanmean(rewards).item(),
        "reward_std": nanstd(rewards).item(),
        "frac_reward_zero_std": is_std_zero.float().mean().item(),
    }
