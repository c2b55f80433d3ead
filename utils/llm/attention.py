"""Attention that never leaves a query row without a key: NaN-proof left padding, in training and generation.

A left-padded batch (the evaluation's prompts, TRL's training batch of several prompts) has query rows at the pad
positions that may attend to no key: causal attention lets them see only earlier positions, all pads, all masked.
transformers 4.x repaired such rows; 5.x no longer does (transformers issue 47651), and PyTorch's GPU attention
kernels can then return NaN for them (pytorch issue 103963). The NaN lands in the KV cache, or in the gradients,
and reaches real rows through 0 x NaN. On an H100 (2026-12-07) TRL's GRPO step had a finite loss and a NaN
gradient norm at its first step; the optimizer wrote NaN into every LoRA weight and the next step's sampling failed
(``results/bench_fast_rollouts_h100_2026-12-07.json``).

:data:`PADSAFE_ATTENTION` is transformers' SDPA with one change to its mask: a row with no key may attend to every
key. That row's output is discarded anyway (its position is padding, outside the loss and the answer); every row
that had a key is unchanged, so logits and gradients of real tokens are exactly SDPA's.

>>> import torch
>>> mask = torch.tensor([[False, False], [True, False]])  # row 0: a left pad, with no key
>>> allow_every_key_where_none(mask).tolist()
[[True, True], [True, False]]
"""

from __future__ import annotations

import torch

PADSAFE_ATTENTION = "sdpa_padsafe"
"""SDPA with a mask that never leaves a query row without a key (the course's attention, see the module)."""


def allow_every_key_where_none(mask: torch.Tensor) -> torch.Tensor:
    """A boolean attention mask (True = may attend) in which each query row with no key may attend to all keys."""
    return mask | ~mask.any(dim=-1, keepdim=True)


def padsafe_sdpa_mask(*args, **kwargs):
    """transformers' ``sdpa_mask``, then :func:`allow_every_key_where_none`. A decoding step's single query
    always has itself as a key, so only the prefill and the training forward change."""
    from transformers.masking_utils import sdpa_mask

    mask = sdpa_mask(*args, **kwargs)
    if mask is None or mask.dtype != torch.bool:  # None: no padding, SDPA's is_causal; float masks not used here
        return mask
    return allow_every_key_where_none(mask)


def register_padsafe_attention() -> str:
    """Register :data:`PADSAFE_ATTENTION` with transformers (idempotent); returns its name, for
    ``from_pretrained(..., attn_implementation=...)`` or ``model.set_attn_implementation(...)``."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(PADSAFE_ATTENTION, sdpa_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PADSAFE_ATTENTION, padsafe_sdpa_mask)
    return PADSAFE_ATTENTION
