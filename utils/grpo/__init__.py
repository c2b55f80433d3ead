"""Notebook 04: the GRPO update written out by hand, and checked against TRL's own loss.

One step of the update, module by module::

    rewards ──group_advantages──────────► A_i, one number per completion     (advantages)
    model ──completion_logprobs─────────► log π_θ(o_t), one per token         (logprobs)
    policy_ratio(log π_θ, log π_old)    ─► r_t = π_θ / π_old                  (loss)
    clipped_surrogate(r_t, A_i, ε)      ─► -min(r_t A_i, clip(r_t) A_i)       (loss)
    kl_k3(log π_θ, log π_ref)           ─► KL estimate, times beta            (loss)
    aggregate(per_token_loss, loss_type) ─► one number to backpropagate       (loss)

:func:`grpo_loss` chains the last four. Every function computes what TRL 1.14.2's
``GRPOTrainer`` computes, in the same order, so the numbers agree to float precision:
``tests/test_grpo_math.py`` checks losses, gradients and logged metrics against a real
``GRPOTrainer`` for every loss type written out here. ``TRL_NOTES.md`` (next to this file)
says where each quantity lives in TRL's source and lists the surprises found on the way.
:mod:`.group` samples and pads one group; :mod:`.trl_check` feeds TRL's own objects;
:mod:`.show` draws notebook 04's figures; :mod:`.vllm_correction` is the extra weight TRL
applies when vLLM sampled the completions.
"""

from .advantages import ADVANTAGE_EPS, combine_rewards, group_advantages, nanstd, reward_metrics
from .group import Group, make_group, prompt_token_ids, sample_completions, text_completion
from .logprobs import completion_length_metrics, completion_logprobs
from .loss import LOSS_TYPES, GRPOLossOutput, Surrogate, aggregate, clipped_surrogate, grpo_loss, kl_k3, policy_ratio
from .trl_check import (
    TRL_LOSS_TYPES,
    TRL_VERSION,
    check_supported_config,
    grpo_loss_for_trl_batch,
    trl_inputs,
    trl_loss,
)
from .vllm_correction import sampling_metrics, vllm_importance_weights
