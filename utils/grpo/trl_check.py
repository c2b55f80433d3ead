"""From TRL's own objects to the hand-written loss, and guards against TRL changing under us.

:func:`grpo_loss_for_trl_batch` takes the dict TRL feeds to ``GRPOTrainer.compute_loss``
and recomputes the loss with :func:`utils.grpo.loss.grpo_loss`; :func:`trl_loss` calls
TRL's own ``compute_loss`` on the same dict. Notebook 04 and ``tests/test_grpo_math.py``
compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .logprobs import completion_logprobs
from .loss import LOSS_TYPES, GRPOLossOutput, grpo_loss

TRL_VERSION = "1.14.2"
"""The TRL release this package was checked against, line by line (``TRL_NOTES.md``)."""

TRL_LOSS_TYPES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
"""Every loss type TRL 1.14.2 accepts (``GRPOConfig.loss_type``); a guard test compares."""


def check_supported_config(args: Any) -> None:
    """Raise if a ``GRPOConfig`` uses a setting this file does not reproduce.

    Outside this subset TRL's loss contains extra terms (entropy masks or bonuses,
    off-policy masks, vLLM importance weights, sequence-level ratios, ...) and the
    hand-written loss would silently differ, so we refuse instead.
    """
    problems = []
    expected = {
        "top_entropy_quantile": 1.0,  # < 1 keeps only high-entropy tokens in the policy loss
        "entropy_coef": 0.0,  # entropy bonus
        "use_adaptive_entropy": False,
        "off_policy_mask_threshold": None,  # DeepSeek-V3.2 off-policy sequence mask
        "importance_sampling_level": "token",  # "sequence" = GSPO
        "use_liger_kernel": False,
        "multi_objective_aggregation": "sum_then_normalize",
    }
    for name, value in expected.items():
        if hasattr(args, name) and getattr(args, name) != value:
            problems.append(f"{name}={getattr(args, name)!r} (need {value!r})")
    if args.loss_type not in LOSS_TYPES:
        problems.append(f"loss_type={args.loss_type!r} (need one of {LOSS_TYPES})")
    if getattr(args, "use_vllm", False) and getattr(args, "vllm_importance_sampling_correction", False):
        if args.vllm_importance_sampling_mode not in (
            "sequence_mask",
            "sequence_truncate",
            "token_mask",
            "token_truncate",
        ):
            problems.append(f"vllm_importance_sampling_mode={args.vllm_importance_sampling_mode!r}")
    if getattr(args, "router_aux_loss_coef", None):
        problems.append("router_aux_loss_coef (MoE auxiliary loss)")
    if problems:
        raise NotImplementedError("grpo_math does not reproduce TRL with: " + ", ".join(problems))


def grpo_loss_for_trl_batch(
    model: torch.nn.Module,
    inputs: Mapping[str, Any],
    args: Any,
    *,
    training: bool = True,
    num_processes: int = 1,
) -> GRPOLossOutput:
    """``grpo_loss`` fed from the dict TRL passes to ``GRPOTrainer.compute_loss``.

    ``inputs`` holds ``prompt_ids``, ``prompt_mask``, ``completion_ids``, ``completion_mask``,
    ``advantages``, ``num_items_in_batch`` and, when TRL computed them,
    ``old_per_token_logps`` (only if ``num_iterations > 1`` or generation is out of step with
    the optimizer, and always with vLLM), ``ref_per_token_logps`` (only if ``beta > 0``) and
    ``importance_sampling_ratio`` (only with vLLM and its correction on). ``args`` is the
    ``GRPOConfig``. ``training=False`` mirrors TRL's evaluation (no accumulation scaling).
    """
    check_supported_config(args)
    if "tool_mask" in inputs:
        raise NotImplementedError("tool masks (multi-turn tool calling) are not written out here")
    logp, entropies = completion_logprobs(
        model,
        inputs["prompt_ids"],
        inputs["prompt_mask"],
        inputs["completion_ids"],
        inputs["completion_mask"],
        temperature=args.temperature,
        return_entropy=True,
    )
    return grpo_loss(
        logp,
        inputs["advantages"],
        inputs["completion_mask"],
        old_logp=inputs.get("old_per_token_logps"),
        ref_logp=inputs.get("ref_per_token_logps"),
        entropies=entropies,
        # present exactly when TRL sampled with vLLM and corrects for it (use_vllm and
        # vllm_importance_sampling_correction), computed by vllm_importance_weights at scoring time
        importance_sampling_ratio=inputs.get("importance_sampling_ratio"),
        loss_type=args.loss_type,
        epsilon=args.epsilon,
        epsilon_high=args.epsilon_high,
        delta=args.delta,
        beta=args.beta,
        use_bias_correction_kl=args.use_bias_correction_kl,
        max_completion_length=args.max_completion_length,
        num_items_in_batch=inputs["num_items_in_batch"],
        num_processes=num_processes,
        gradient_accumulation_steps=args.gradient_accumulation_steps if training else 1,
        steps_per_generation=args.steps_per_generation if training else 1,
    )


def trl_inputs(
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    advantages: torch.Tensor,
    *,
    old_logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The dict ``GRPOTrainer.compute_loss`` reads, for one batch that is also one generation batch.

    TRL builds it in ``_generate_and_score_completions``: prompts left-padded, completions
    right-padded, one advantage per completion, ``num_items_in_batch`` = the real completion
    tokens (DAPO's normaliser). ``old_per_token_logps`` is present only when the batch is
    reused after an optimizer step (``num_iterations > 1``) and ``ref_per_token_logps`` only
    when ``beta > 0``.
    """
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": advantages,
        "num_items_in_batch": completion_mask.sum(),
    }
    if old_logp is not None:
        inputs["old_per_token_logps"] = old_logp
    if ref_logp is not None:
        inputs["ref_per_token_logps"] = ref_logp
    return inputs


def trl_loss(
    trainer: Any, inputs: Mapping[str, Any], *, training: bool = True
) -> tuple[torch.Tensor, dict[str, float]]:
    """TRL's own loss for ``inputs`` and the metrics it logged while computing it.

    Outside ``trainer.train()``, so this sets what the training loop sets before it calls
    ``compute_loss``: the model's train/eval mode and ``current_gradient_accumulation_steps``.
    """
    mode = "train" if training else "eval"
    trainer.model.train(training)
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    trainer._metrics[mode].clear()
    loss = trainer.compute_loss(trainer.model, dict(inputs))
    metrics = {k: float(v[-1]) for k, v in trainer._metrics[mode].items()}
    trainer._metrics[mode].clear()
    return loss, metrics
