"""Per-token loss and its aggregation: ratio, clipping, KL, then one number.

The pipeline for one batch of completions (advantages and log-probabilities come from
:mod:`.advantages` and :mod:`.logprobs`)::

    policy_ratio(log π_θ, log π_old)           -> r_t = π_θ / π_old
    clipped_surrogate(r_t, A_i, ε_low, ε_high) -> -min(r_t A_i, clip(r_t) A_i)
    × vLLM weight (only when sampling with vLLM, :mod:`.vllm_correction`)
    + beta · kl_k3(log π_θ, log π_ref)         (only when beta > 0)
    aggregate(per_token_loss, mask, loss_type) -> one scalar loss

:func:`grpo_loss` chains them, exactly as TRL 1.14's ``GRPOTrainer._compute_loss`` does
for the four classic loss types (``tests/test_grpo_math.py`` checks loss, gradients and
logged metrics against TRL's own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

LOSS_TYPES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "bnpo")
"""The loss types written out here. TRL 1.14.2 also has cispo, sapo, luspo and vespo."""

LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo"]


def policy_ratio(logp: torch.Tensor, old_logp: torch.Tensor | None = None) -> torch.Tensor:
    """``r_t = π_θ(o_t) / π_old(o_t) = exp(log π_θ - log π_old)``, per token.

    ``π_old`` is the policy that sampled the completions. When the batch is used for one
    gradient step only (``num_iterations=1``, TRL's default), TRL does not store ``π_old``:
    it uses ``logp.detach()``. The ratio is then exactly 1 in value, but its gradient is
    still ``∇ log π_θ``, the REINFORCE gradient. (Without ``detach`` the ratio would be the
    constant 1 and nothing would be learnt.)

    >>> logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    >>> policy_ratio(logp, torch.tensor([-1.5, -2.0]))
    tensor([1.6487, 1.0000], grad_fn=<ExpBackward0>)
    >>> r = policy_ratio(logp)  # on-policy: the value is 1 ...
    >>> r.sum().backward(); r.detach(), logp.grad  # ... and the gradient is that of log π
    (tensor([1., 1.]), tensor([1., 1.]))
    """
    if old_logp is None:
        old_logp = logp.detach()
    return torch.exp(logp - old_logp)


@dataclass
class Surrogate:
    """The clipped objective per token, and where the clipping stopped the gradient."""

    per_token_loss: torch.Tensor
    """``-min(r A, clip(r) A)``, shape (B, T)."""
    is_low_clipped: torch.Tensor
    """``r < 1 - ε_low`` and ``A < 0``: the token is already less likely; no push further down."""
    is_high_clipped: torch.Tensor
    """``r > 1 + ε_high`` and ``A > 0``: the token is already more likely; no push further up."""


def clipped_surrogate(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
) -> Surrogate:
    """PPO's clipped objective, per token, as a loss (sign flipped): ``-min(r A, clip(r, 1-ε_low, 1+ε_high) A)``.

    ``advantages`` has one value per completion, shape (B,), broadcast over its tokens.
    The ``min`` keeps the more pessimistic of the two: once a token's probability moved by
    more than ε in the direction the advantage asks for, the clipped term wins, it is a
    constant, and that token stops contributing gradient. Moves *against* the advantage are
    never clipped. ``epsilon_high`` (DAPO's "clip-higher", 0.28 in the paper) defaults to
    ``epsilon_low``. ``delta`` (INTELLECT-2's two-sided clipping) additionally caps the
    unclipped ratio at ``delta``, which bounds the loss of negative-advantage tokens.

    >>> s = clipped_surrogate(torch.tensor([[0.5, 1.0, 1.5]]), torch.tensor([1.0]))
    >>> s.per_token_loss, s.is_high_clipped
    (tensor([[-0.5000, -1.0000, -1.2000]]), tensor([[False, False,  True]]))
    >>> clipped_surrogate(torch.tensor([[0.5, 1.0, 1.5]]), torch.tensor([-1.0])).is_low_clipped
    tensor([[ True, False, False]])
    """
    if epsilon_high is None:
        epsilon_high = epsilon_low
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)  # (B,) -> (B, 1): one advantage for all tokens of a completion
    clipped_ratio = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    if delta is not None:
        ratio = torch.clamp(ratio, max=delta)
    per_token_loss = -torch.min(ratio * advantages, clipped_ratio * advantages)
    is_low_clipped = (ratio < 1 - epsilon_low) & (advantages < 0)
    is_high_clipped = (ratio > 1 + epsilon_high) & (advantages > 0)
    return Surrogate(per_token_loss, is_low_clipped, is_high_clipped)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref): ``exp(Δ) - Δ - 1`` with ``Δ = log π_ref - log π_θ``.

    This is Schulman's "k3" estimator: never negative, 0 exactly when the two
    log-probabilities agree, and unbiased for the KL when the tokens are sampled from π_θ.

    >>> kl_k3(torch.tensor([-1.0, -1.0]), torch.tensor([-1.0, -2.0]))
    tensor([0.0000, 0.3679])
    """
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


def aggregate(
    per_token_loss: torch.Tensor,
    completion_mask: torch.Tensor,
    loss_type: LossType = "dapo",
    *,
    max_completion_length: int | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    num_processes: int = 1,
    gradient_accumulation_steps: int = 1,
    steps_per_generation: int | None = None,
) -> torch.Tensor:
    """Average the per-token losses of a micro-batch into the scalar TRL backpropagates.

    With L_i the number of real tokens of completion i, ℓ_it its per-token loss, B the
    number of completions in the micro-batch:

    * ``grpo``   (paper):   ``(1/B) Σ_i (1/L_i) Σ_t ℓ_it``. Each completion weighs the same,
      so each token of a *short* completion weighs more than one of a long completion:
      a good short answer is pushed up hard; a bad long answer is pushed down gently per
      token (the "length bias" Dr. GRPO points out).
    * ``bnpo``:   ``Σ_it ℓ_it / Σ_i L_i`` over the micro-batch: every token weighs the same.
    * ``dr_grpo``: ``Σ_it ℓ_it / (B · max_completion_length)``: a constant denominator, so no
      length bias and a loss that does not depend on how long the other completions are.
    * ``dapo`` (TRL's default): ``Σ_it ℓ_it / N`` where N = ``num_items_in_batch`` is the
      number of real tokens in the whole *generation* batch (all micro-batches of this
      optimizer step, all processes). Summed over the micro-batches this is one token-mean
      over everything generated, instead of a mean of micro-batch means.

    On completions of equal length all four agree up to constants; they differ in how a
    completion's weight depends on its length (and on the lengths of its batch-mates).

    Gradient accumulation: TRL returns the loss of one micro-batch already divided so that
    summing the micro-batches gives the average, i.e. ``grpo``/``bnpo``/``dr_grpo`` are
    divided by ``gradient_accumulation_steps`` (G), and the ``dapo`` normaliser is
    ``N / num_processes · G / steps_per_generation`` (S, default G). For evaluation TRL
    uses G = S = 1.

    >>> loss = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
    >>> mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    >>> [round(aggregate(loss, mask, t, max_completion_length=4).item(), 3)
    ...  for t in ("grpo", "bnpo", "dr_grpo", "dapo")]
    [2.5, 1.6, 1.0, 1.6]
    """
    mask = completion_mask.to(per_token_loss.dtype)
    if loss_type == "grpo":
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        return loss / gradient_accumulation_steps
    if loss_type == "bnpo":
        loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
        return loss / gradient_accumulation_steps
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("dr_grpo needs max_completion_length")
        loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
        return loss / gradient_accumulation_steps
    if loss_type == "dapo":
        if num_items_in_batch is None:
            num_items_in_batch = completion_mask.sum()  # the micro-batch is the whole generation batch
        num_items = torch.as_tensor(num_items_in_batch, device=per_token_loss.device)
        normalizer = num_items.clamp(min=1.0) / num_processes
        normalizer = normalizer * gradient_accumulation_steps / (steps_per_generation or gradient_accumulation_steps)
        return (per_token_loss * mask).sum() / normalizer
    raise ValueError(f"loss_type {loss_type!r} is not written out here (only {LOSS_TYPES})")


def _masked_token_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over the real tokens of the batch (TRL's ``global_masked_mean``, one process)."""
    mask = mask.to(x.dtype)
    return ((x * mask).sum() / mask.sum().clamp(min=1.0)).item()


def _masked_sequence_means(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per completion (NaN for a completion with no real token, as in TRL)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum(-1) / mask.sum(-1)


@dataclass
class GRPOLossOutput:
    loss: torch.Tensor
    """The scalar that is backpropagated (what ``trainer.compute_loss`` returns)."""
    per_token_loss: torch.Tensor
    """Surrogate (+ beta * KL) per token, before masking and aggregation."""
    ratio: torch.Tensor
    """π_θ / π_old per token."""
    is_low_clipped: torch.Tensor
    is_high_clipped: torch.Tensor
    per_token_kl: torch.Tensor | None
    """The KL term as it enters the loss (times the ratio when ``use_bias_correction_kl``)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """What TRL logs from its loss: ``kl``, ``entropy``, ``clip_ratio/*``."""


def grpo_loss(
    logp: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    old_logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
    entropies: torch.Tensor | None = None,
    importance_sampling_ratio: torch.Tensor | None = None,
    *,
    loss_type: LossType = "dapo",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
    beta: float = 0.0,
    use_bias_correction_kl: bool = True,
    max_completion_length: int | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    num_processes: int = 1,
    gradient_accumulation_steps: int = 1,
    steps_per_generation: int | None = None,
) -> GRPOLossOutput:
    """The GRPO loss of one micro-batch, exactly as TRL's ``GRPOTrainer._compute_loss``.

    ``logp`` must carry the gradient (it comes from the model being trained); ``old_logp``
    (sampling policy) and ``ref_logp`` (reference policy) are constants. Defaults are
    TRL 1.14.2's (``loss_type="dapo"``, ``epsilon=0.2``, ``beta=0``,
    ``use_bias_correction_kl=True``). Steps:

    1. ``r = exp(logp - old_logp)`` (``old_logp=None``: on-policy, ``r`` = 1 with gradient);
    2. ``ℓ = -min(r A, clip(r, 1-ε, 1+ε_high) A)``, times the vLLM weight when sampling
       with vLLM (``importance_sampling_ratio``, see ``vllm_importance_weights``);
    3. if ``beta > 0``: ``ℓ += beta · k3(logp, ref_logp)``, where TRL multiplies k3 by the
       (differentiable) ratio ``r`` unless ``use_bias_correction_kl=False``. This differs
       from the GRPO paper's plain k3 term: its value is the same on-policy, its gradient not;
    4. aggregate with ``loss_type`` (see ``aggregate``).

    With beta = 0 and ``old_logp=None`` the *value* is ``-Σ A_i · (weight of completion i)``,
    near 0 because advantages average to 0 in a group; the gradient is what matters.

    >>> logp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    >>> out = grpo_loss(logp, torch.tensor([1.0, -1.0]), torch.tensor([[1, 1], [1, 0]]),
    ...                 old_logp=torch.tensor([[-1.5, -2.0], [-0.1, 0.0]]))
    >>> out.ratio.detach()  # token 1 of completion 2 is padding
    tensor([[1.6487, 1.0000],
            [0.6703, 1.0000]])
    >>> out.per_token_loss.detach()  # 1.6487 -> clipped to 1.2; 0.6703 -> clipped to 0.8
    tensor([[-1.2000, -1.0000],
            [ 0.8000,  1.0000]])
    >>> round(out.loss.item(), 4)  # dapo: (-1.2 - 1.0 + 0.8) / 3 real tokens
    -0.4667
    >>> {k: round(v, 4) for k, v in out.metrics.items() if k.endswith("_mean")}
    {'clip_ratio/low_mean': 0.3333, 'clip_ratio/high_mean': 0.3333, 'clip_ratio/region_mean': 0.6667}
    """
    ratio = policy_ratio(logp, old_logp)

    per_token_kl = None
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference log-probs (ref_logp)")
        per_token_kl = kl_k3(logp, ref_logp)
        if use_bias_correction_kl:
            per_token_kl = per_token_kl * ratio

    surrogate = clipped_surrogate(ratio, advantages, epsilon, epsilon_high, delta)
    per_token_loss = surrogate.per_token_loss
    if importance_sampling_ratio is not None:  # vLLM sampling correction: weights the surrogate, not the KL
        per_token_loss = per_token_loss * importance_sampling_ratio
    if per_token_kl is not None:
        per_token_loss = per_token_loss + beta * per_token_kl

    loss = aggregate(
        per_token_loss,
        completion_mask,
        loss_type,
        max_completion_length=max_completion_length,
        num_items_in_batch=num_items_in_batch,
        num_processes=num_processes,
        gradient_accumulation_steps=gradient_accumulation_steps,
        steps_per_generation=steps_per_generation,
    )

    # Indicators as float32, as TRL does (``.float()``), so the logged shares match to the bit.
    low, high = surrogate.is_low_clipped.float(), surrogate.is_high_clipped.float()
    region = (surrogate.is_low_clipped | surrogate.is_high_clipped).float()
    metrics: dict[str, float] = {}
    if per_token_kl is not None:
        metrics["kl"] = _masked_token_mean(per_token_kl.detach(), completion_mask)
    if entropies is not None:
        metrics["entropy"] = _masked_token_mean(entropies.detach(), completion_mask)
    metrics["clip_ratio/low_mean"] = _masked_token_mean(low, completion_mask)
    metrics["clip_ratio/high_mean"] = _masked_token_mean(high, completion_mask)
    metrics["clip_ratio/region_mean"] = _masked_token_mean(region, completion_mask)
    low_seq, high_seq = _masked_sequence_means(low, completion_mask), _masked_sequence_means(high, completion_mask)
    metrics["clip_ratio/low_min"] = low_seq[~low_seq.isnan()].min().item() if (~low_seq.isnan()).any() else float("nan")
    metrics["clip_ratio/high_max"] = (
        high_seq[~high_seq.isnan()].max().item() if (~high_seq.isnan()).any() else float("nan")
    )
    return GRPOLossOutput(
        loss=loss,
        per_token_loss=per_token_loss,
        ratio=ratio,
        is_low_clipped=surrogate.is_low_clipped,
        is_high_clipped=surrogate.is_high_clipped,
        per_token_kl=per_token_kl,
        metrics=metrics,
    )
