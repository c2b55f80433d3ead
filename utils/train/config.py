"""The GRPO configuration, one knob at a time, each with the reason for its value.

:func:`grpo_knobs` is the single source of the settings: notebook 05 shows them as a table,
:func:`build_grpo_config` turns them into TRL's ``GRPOConfig``. An argument the installed TRL
does not know is an error, not a silent drop: a dropped ``beta`` or ``max_grad_norm`` would
change the experiment without a word (the pins and ``tests/test_api_drift.py`` keep them valid).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..env import headless
from ..llm.models import ModelSpec, bf16_supported
from ..profiles import Profile

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class Knob:
    name: str
    value: Any
    why: str


def check_supported(cls, kwargs: dict) -> dict:
    """``kwargs`` unchanged if ``cls`` (a TRL config dataclass) has every field; else a clear error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        import trl

        raise TypeError(
            f"{cls.__name__} of the installed TRL {trl.__version__} has no {unknown}: the course is "
            "written for the TRL in requirements.txt; install that version (or update the knobs)"
        )
    return kwargs


LOSS_SHARE = 0.85  # of the GPU's memory for the loss's answers; the rest: weights, the rollout copy's cache, slack
VLLM_GPU_MEMORY_UTILIZATION = 0.3  # vLLM colocated on the training GPU takes this share of it (GRPOConfig's knob)
# where ModelSpec.grpo_gib_per_answer was measured: the task's prompt bucket and the answer budget of then (the gpu
# profile's until its scan recipe, 640 then, 768 since the wide recipe; loss_gib_per_answer scales to any budget)
PROMPT_TOKENS, MEASURED_NEW_TOKENS = 448, 512


def loss_micro_batch(profile: Profile, spec: ModelSpec | None = None, gpu_gib: float | None = None) -> int:
    """Answers per forward/backward pass of the GRPO loss: ``grpo.micro_batch`` when the profile sets it, else
    the model's own (``ModelSpec.grpo_micro_batch``: 8 for the Qwen models, whose 151,936-token vocabulary makes
    the loss's logits large), else the whole step at once, or, where training may use ``gpu_gib`` GiB of a GPU
    (:func:`training_gib`), as many answers as ``LOSS_SHARE`` of that holds (``ModelSpec.grpo_gib_per_answer``: the
    135M model's 64 answers of 512 new tokens need 64.6 GiB, so an 80 GB card takes them at once and a T4 8 at a
    time; at the gpu profile's 768 tokens an 80 GB card takes 32, an L4 or a T4 8). Always a
    divisor of the step's answers, so that the passes add up to exactly one step (TRL generates them together and
    sums the passes' gradients: the same update, ``tests/test_grpo_math.py``).

    >>> from utils.profiles import get_profile
    >>> from utils.llm.models import MODELS
    >>> gpu = get_profile("gpu")
    >>> loss_micro_batch(gpu, MODELS["smollm2-135m"]), loss_micro_batch(gpu, MODELS["qwen2.5-0.5b"])
    (64, 8)
    >>> [loss_micro_batch(gpu, MODELS["smollm2-135m"], gib) for gib in (139.8, 79.2, 39.4, 22.0, 14.6)]
    [64, 32, 16, 8, 8]
    >>> loss_micro_batch(gpu, MODELS["smollm2-135m"], training_gib(39.4, "trl", "vllm"))  # vLLM keeps 30%
    16
    >>> loss_micro_batch(get_profile("gpu", {"grpo.micro_batch": 16}), MODELS["qwen2.5-0.5b"])
    16
    >>> loss_micro_batch(get_profile("smoke"), MODELS["qwen2.5-0.5b"])  # 2 answers a step: both at once
    2
    """
    return _loss_passes(profile, spec, gpu_gib)[0]


def _loss_passes(profile: Profile, spec: ModelSpec | None, gpu_gib: float | None) -> tuple[int, str]:
    """:func:`loss_micro_batch`'s answer and why, in words ("" when the whole step goes through at once): the
    decision in one place, for the number and for the knob's explanation."""
    batch = profile.grpo.per_device_batch
    if profile.grpo.micro_batch:
        wanted, why = profile.grpo.micro_batch, "the profile's grpo.micro_batch"
    elif spec is not None and spec.grpo_micro_batch:
        wanted, why = spec.grpo_micro_batch, f"{batch} would not fit: the loss's logits grow with the vocabulary"
    else:
        wanted, why = batch, ""
    per_answer = loss_gib_per_answer(profile, spec)
    if not profile.grpo.micro_batch and per_answer and gpu_gib:
        fits = max(1, int(LOSS_SHARE * gpu_gib / per_answer))
        if fits < wanted:
            wanted = fits
            why = (
                f"{batch} at once would need about {batch * per_answer:.0f} GiB; training may use {gpu_gib:.1f} GiB "
                "of this GPU"
            )
    micro = max(d for d in range(1, min(wanted, batch) + 1) if batch % d == 0)
    return micro, why if micro < batch else ""


def training_gib(gpu_gib: float | None, backend: str, gen_path: str) -> float | None:
    """The GPU memory the TRL backend's loss may plan for: the GPU's (``gpu_gib``), less vLLM's share when vLLM
    generates on the same GPU. ``None`` without a GPU, and for Unsloth, whose loss is chunked and checkpointed its
    own way (the measured GiB per answer are the TRL backend's).

    >>> training_gib(39.4, "trl", "static-cache"), round(training_gib(39.4, "trl", "vllm"), 2)
    (39.4, 27.58)
    >>> training_gib(39.4, "unsloth", "static-cache") is None
    True
    """
    if gpu_gib is None or backend != "trl":
        return None
    return gpu_gib * (1 - VLLM_GPU_MEMORY_UTILIZATION) if gen_path == "vllm" else gpu_gib


def loss_gib_per_answer(profile: Profile, spec: ModelSpec | None) -> float | None:
    """GPU memory of one answer in the loss for this profile's answer length (activations and logits grow with
    the tokens), from the model's measured figure; ``None`` where none is measured."""
    if spec is None or not spec.grpo_gib_per_answer:
        return None
    tokens = PROMPT_TOKENS + profile.grpo.max_completion_length
    return spec.grpo_gib_per_answer * tokens / (PROMPT_TOKENS + MEASURED_NEW_TOKENS)


def grpo_knobs(
    profile: Profile,
    backend: str,
    max_prompt_tokens: int,
    gen_path: str,
    on_gpu: bool,
    spec: ModelSpec | None = None,
    gpu_gib: float | None = None,
) -> list[Knob]:
    """The GRPO settings with the reason for each. Public recipe values on GPU (README, Sources)."""
    half = on_gpu and profile.grpo.precision != "fp32"  # grpo.precision="fp32": the loss as exact as the rollouts
    bf16 = half and bf16_supported()
    lr = Knob(
        "learning_rate",
        profile.grpo.learning_rate,
        "LoRA on a small model tolerates a larger step than the recipe's 8e-6 for a 7B model",
    )
    if spec is not None and spec.grpo_learning_rate is not None:
        lr = Knob("learning_rate", spec.grpo_learning_rate, f"the value used for {spec.hub_id} (public recipe)")
    gpu_gib = training_gib(gpu_gib if on_gpu else None, backend, gen_path)
    batch, (micro, why_micro) = profile.grpo.per_device_batch, _loss_passes(profile, spec, gpu_gib)
    knobs = [
        lr,
        Knob("adam_beta1", 0.9, "recipe"),
        Knob("adam_beta2", 0.99, "recipe: shorter memory of squared gradients"),
        Knob("weight_decay", 0.1, "recipe: keeps LoRA weights small"),
        Knob("warmup_steps", 0.01, "recipe's warmup ratio 0.01 (transformers 5 reads a float < 1 as a ratio)"),
        Knob("lr_scheduler_type", "cosine", "recipe: decay towards the end of the run"),
        Knob(
            "optim",
            "paged_adamw_8bit" if backend == "unsloth" else "adamw_torch",
            "8-bit paged Adam saves GPU memory (needs bitsandbytes); plain AdamW elsewhere",
        ),
        Knob("max_steps", profile.grpo.steps, "the run length of this profile"),
        Knob(
            "per_device_train_batch_size",
            micro,
            "answers per forward/backward pass of the loss" + (f" ({why_micro})" if why_micro else ""),
        ),
        Knob(
            "gradient_accumulation_steps",
            batch // micro,
            f"passes summed into one step: {batch} answers a step ({batch // profile.grpo.num_generations} prompts x "
            f"{profile.grpo.num_generations}), generated together; the same update as one pass",
        ),
        Knob(
            "num_generations",
            profile.grpo.num_generations,
            "group size: GRPO compares completions of the same prompt within a group",
        ),
        Knob(
            "max_completion_length",
            profile.grpo.max_completion_length,
            f"new-token budget; prompts here are <= {max_prompt_tokens} tokens (TRL 1.x has no max_prompt_length)",
        ),
        Knob("temperature", 1.0, "sampling diversity inside a group is what creates a learning signal"),
        Knob("max_grad_norm", 0.1, "recipe: clip hard, RL gradients are noisy"),
        Knob("beta", 0.0, "no KL penalty (TRL's default): no reference model to keep in memory"),
        Knob("logging_steps", profile.grpo.logging_steps, "log every step for the live plots"),
        Knob("save_steps", profile.grpo.save_steps, "checkpoint often enough to resume after a disconnect"),
        Knob("save_total_limit", 2, "keep disk use bounded"),
        Knob("bf16", bf16, "half precision on GPUs that support bf16"),
        Knob("fp16", half and not bf16_supported(), "older GPUs (T4) use fp16 instead of bf16"),
        Knob(
            "gradient_checkpointing",
            not on_gpu or (backend == "trl" and spec is not None and spec.grpo_checkpointing),
            "on a CPU: half the memory (notebook 05, cpu profile: 11.5 -> 5.3 GiB peak) for ~7% more time; on a GPU "
            "off for the 135M model (speed is the limit there), on for the Qwen models (memory is; Unsloth applies "
            "its own)",
        ),
        Knob("report_to", "none", "the notebook draws its own live plots; set 'wandb' or 'tensorboard' if you like"),
        Knob("disable_tqdm", headless(), "headless runs print one line a step instead (a widget bar stays at 0%)"),
        Knob("dataloader_pin_memory", on_gpu, "pinned memory only helps copies to a GPU (and warns on a CPU)"),
        Knob("seed", profile.seed, "reproducible sampling and LoRA initialisation; another seed, another run"),
        Knob("log_completions", False, "we show our own sample table instead of TRL's console print"),
    ]
    if gen_path == "vllm" and backend == "unsloth":
        knobs.append(
            Knob("use_vllm", True, "Unsloth's own vLLM engine (fast_inference=True) generates, sharing the GPU")
        )
    if gen_path == "vllm" and backend == "trl":
        knobs += [
            Knob("use_vllm", True, "vLLM generates many times faster than model.generate"),
            Knob("vllm_mode", "colocate", "vLLM shares the training GPU (no separate server)"),
            Knob("vllm_gpu_memory_utilization", VLLM_GPU_MEMORY_UTILIZATION, "leave memory for training"),
        ]
    return knobs


def knobs_table(knobs: Sequence[Knob]):
    import pandas as pd

    return pd.DataFrame([{"setting": k.name, "value": k.value, "why": k.why} for k in knobs]).set_index("setting")


def build_grpo_config(knobs: Sequence[Knob], out_dir: Path, reward_weights: Sequence[float] | None = None, **extra):
    """A ``GRPOConfig`` from the knobs (every one must exist in the installed TRL)."""
    from trl import GRPOConfig

    kwargs = {k.name: k.value for k in knobs}
    kwargs.update(
        output_dir=str(out_dir),
        reward_weights=list(reward_weights) if reward_weights else None,
        save_strategy="steps",
        **extra,
    )
    return GRPOConfig(**check_supported(GRPOConfig, kwargs))


def lora_config(profile: Profile):
    from peft import LoraConfig

    return LoraConfig(
        r=profile.grpo.lora_r,
        lora_alpha=profile.grpo.lora_r,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )
