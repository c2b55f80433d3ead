"""The correction TRL applies when vLLM sampled the completions (``use_vllm=True``).

vLLM's numerics differ slightly from the training model's, so TRL weights each token's
surrogate loss by how much likelier the trainer finds it than vLLM did.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

VllmISMode = Literal["sequence_mask", "sequence_truncate", "token_mask", "token_truncate"]


def vllm_importance_weights(
    old_logp: torch.Tensor,
    sampling_logp: torch.Tensor,
    completion_mask: torch.Tensor,
    mode: VllmISMode = "sequence_mask",
    clip_min: float | None = None,
    clip_max: float | None = 3.0,
) -> torch.Tensor:
    """Correction for sampling with vLLM: weight = π_train(o) / π_vLLM(o), then truncated or masked.

    With ``use_vllm=True`` the completions come from vLLM, whose numerics (kernels, bf16,
    its own copy of the weights) differ slightly from the training model's, so TRL always
    recomputes ``old_logp`` with the training model and multiplies every token's surrogate
    loss by this weight (``vllm_importance_sampling_correction=True``, the default).

    * ``sequence_*`` modes (default ``sequence_mask``): one weight per completion,
      ``exp(Σ_t (old_logp - sampling_logp))``, shape (B, 1);
    * ``token_*`` modes: one weight per token, shape (B, T);
    * ``*_truncate``: weights clamped into [clip_min, clip_max];
    * ``*_mask``: weights outside [clip_min, clip_max] set to 0, i.e. that completion
      (or token) drops out of the policy loss. It still counts in DAPO's token count.

    Tokens vLLM could not score (NaN) count as no difference (weight factor 1).

    >>> old = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    >>> vllm_importance_weights(old, torch.tensor([[-1.1, -1.0], [-2.0, -1.5]]), torch.ones(2, 2))
    tensor([[1.1052],
            [0.0000]])
    """
    diff = torch.nan_to_num((old_logp - sampling_logp) * completion_mask, nan=0.0)
    if mode in ("sequence_mask", "sequence_truncate"):
        diff = diff.sum(dim=-1, keepdim=True)
    elif mode not in ("token_mask", "token_truncate"):
        raise ValueError(f"unknown vLLM importance sampling mode {mode!r}")
    weights = torch.exp(diff)
    if mode.endswith("_truncate"):
        return torch.clamp(weights, min=clip_min, max=clip_max)
    low = clip_min if clip_min is not None else -math.inf
    high = clip_max if clip_max is not None else math.inf
    return weights.masked_fill((weights < low) | (weights > high), 0.0)


def sampling_metrics(
    old_logp: torch.Tensor, sampling_logp: torch.Tensor, completion_mask: torch.Tensor, weights: torch.Tensor
) -> dict[str, float]:
    """TRL's ``sampling/*`` metrics (only with vLLM): how far vLLM's log-probs are from the trainer's."""
    mask = completion_mask.bool()
    gap = (old_logp - sampling_logp).abs()
    gap = gap[mask & ~torch.isnan(gap)]
    flat = weights.flatten() if weights.size(-1) == 1 else weights[mask]
    return {
        "sampling/sampling_logp_difference/mean": gap.mean().item() if gap.numel() else 0.0,
        "sampling/sampling_logp_difference/max": gap.max().item() if gap.numel() else 0.0,
        "sampling/importance_sampling_ratio/min": flat.min().item() if flat.numel() else 0.0,
        "sampling/importance_sampling_ratio/mean": flat.mean().item() if flat.numel() else 0.0,
        "sampling/importance_sampling_ratio/max": flat.max().item() if flat.numel() else 0.0,
    }
