"""GRPO training: the policy, TRL's ``GRPOTrainer`` around it, and the run with resume.

Notebook 05 writes ``GRPOConfig(...)``, ``GRPOTrainer(...)`` and ``trainer.train(...)`` itself and
calls the small parts here by name: :func:`load_policy` (base model + LoRA), :func:`grpo_records`
(the dataset), :func:`rollout_func_for` (the fast rollouts), :func:`prepare_run` (claim the run
folder; the settings a resume must match) and :func:`save_run` (adapter + ``run_info.json``).
:func:`build_trainer` and :func:`train_grpo` put the same parts together for scripts and CI, so
what CI smoke-tests is what the notebook and a GPU run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..llm.generation import choose_generation
from ..llm.models import ModelSpec, choose_model, default_dtype, load_causal_lm, model_source
from ..paths import claim_folder, output_dir
from ..profiles import Profile, gpu_memory_gib, has_cuda
from ..rewards.checker import assert_reward_set_ok
from ..task.columns import PROBLEM_COLUMNS
from ..task.prompts import build_messages
from .backend import choose_backend
from .config import Knob, build_grpo_config, grpo_knobs, lora_config
from .runs import RUN_OWN, TrainResult, config_settings, resume_checkpoint, run_settings, write_run_info

if TYPE_CHECKING:
    from peft import LoraConfig


def grpo_records(rows: Sequence[dict]) -> list[dict]:
    """Conversational prompts plus the columns the rewards read (TRL passes them by name)."""
    return [{"prompt": build_messages(r), **{k: r[k] for k in PROBLEM_COLUMNS}} for r in rows]


def prompt_lengths(rows: Sequence[dict], tokenizer) -> list[int]:
    """Tokens of each chat prompt, generation header included (what the model reads)."""
    return [
        len(
            tokenizer.apply_chat_template(
                build_messages(r), add_generation_prompt=True, tokenize=True, return_dict=True
            )["input_ids"]
        )
        for r in rows
    ]


def load_policy(
    backend: str,
    spec: ModelSpec,
    source: str,
    profile: Profile,
    max_seq_length: int,
    gen_path: str,
    lora: LoraConfig | None = None,
):
    """(model, tokenizer, peft_config) for the backend. ``lora``: a peft ``LoraConfig`` (notebook 05 writes it out;
    default :func:`lora_config`). The trl backend hands it to ``GRPOTrainer`` (returned as ``peft_config``); Unsloth
    applies its rank, alpha, dropout and targets itself (``peft_config`` is then None). Its rank must be the
    profile's ``grpo.lora_r``: the run's settings record that rank and a resume checks it."""
    lora = lora if lora is not None else lora_config(profile)
    if lora.r != profile.grpo.lora_r:
        raise ValueError(
            f"LoraConfig(r={lora.r}) but the profile's grpo.lora_r is {profile.grpo.lora_r}: change the knob "
            f"(COURSE_OVERRIDES=grpo.lora_r={lora.r}) so that the run records the rank it trains"
        )
    if backend == "unsloth":
        if profile.grpo.precision == "fp32":
            raise ValueError("grpo.precision='fp32' needs the trl backend (Unsloth chooses its own dtypes)")
        from unsloth import FastLanguageModel  # imported first: it patches trl/transformers

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=source if spec.unsloth_id is None or os.path.isdir(source) else spec.unsloth_id,
            max_seq_length=max_seq_length,
            load_in_4bit=spec.key != "smollm2-135m",
            fast_inference=gen_path == "vllm",
            max_lora_rank=profile.grpo.lora_r,
            gpu_memory_utilization=0.85,
        )
        model = FastLanguageModel.get_peft_model(
            model,
            r=lora.r,
            target_modules=sorted(lora.target_modules),
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            use_gradient_checkpointing="unsloth",
            random_state=profile.seed,
        )
        return model, tokenizer, None
    import torch

    # fp32: TRL's loss then computes like the fp32 rollout copy (a bf16 forward alone is ~0.01 nats/token off).
    dtype = torch.float32 if profile.grpo.precision == "fp32" else default_dtype("cuda" if has_cuda() else "cpu")
    model, tokenizer = load_causal_lm(source, dtype)
    return model, tokenizer, lora


def rollout_func_for(gen_path: str, max_prompt_tokens: int, compile: bool | str | None = None) -> Callable | None:
    """TRL's ``rollout_func`` for a generation path: on ``"static-cache"`` (TRL without vLLM, on a GPU or a CPU)
    the fast rollouts' (:class:`~utils.train.fast_rollouts.FastRollouts`: a merged copy of the policy
    generates with the graph engine, prompts padded to a multiple of 64 tokens so one graph serves every
    step); ``None`` elsewhere, where TRL generates itself (``model.generate`` or vLLM). ``compile``: as
    ``FastRollouts(compile=...)``; ``None``: from ``$COURSE_ROLLOUT_COMPILE`` (default: not compiled)."""
    if gen_path != "static-cache":
        return None
    from .fast_rollouts import FastRollouts, rollout_compile_from_env

    compile = rollout_compile_from_env() if compile is None else compile
    return FastRollouts(prompt_bucket=-(-max_prompt_tokens // 64) * 64, compile=compile).rollout_func


def prepare_run(
    out_dir: Path,
    profile: Profile,
    *,
    model_key: str,
    base: str,
    backend: str,
    reward_funcs: Sequence[Callable],
    reward_weights: Sequence[float] | None = None,
    extra_config: dict | None = None,
    problems: Sequence[dict] | None = None,
    config: Any = None,
    lora: Any = None,
) -> dict:
    """Claim the run folder (never one holding someone else's files) and return the settings its
    checkpoints depend on (:func:`~utils.train.runs.run_settings`; ``problems``: the GRPO problems; ``config``
    and ``lora``: the ``GRPOConfig`` and ``LoraConfig``, whose values count too), for
    :func:`~utils.train.runs.resume_checkpoint` to compare before it resumes."""
    claim_folder(out_dir, "GRPO run", own=RUN_OWN)
    return run_settings(
        profile,
        model_key=model_key,
        base=base,
        backend=backend,
        reward_names=[f.__name__ for f in reward_funcs],
        reward_weights=reward_weights,
        extra_config=extra_config,
        problems=problems,
        config=config,
        lora=lora,
    )


def save_run(
    trainer, profile: Profile, spec: ModelSpec, settings: dict, *, generation: str, samples_file: Path, seconds: float
) -> TrainResult:
    """After ``trainer.train()``: the LoRA adapter and tokenizer into ``<run>/adapter``, and ``run_info.json``
    (adapter, base model, profile, log history: what notebook 06 reads). ``settings`` from :func:`prepare_run`."""
    out_dir = Path(trainer.args.output_dir).parent
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))  # LoRA weights only (small)
    trainer.processing_class.save_pretrained(str(adapter_dir))
    result = TrainResult(
        out_dir,
        adapter_dir,
        settings["base"],
        trainer.state.log_history,
        trainer.state.global_step,
        seconds,
        settings["backend"],
        generation,
        Path(samples_file),
    )
    write_run_info(result, profile, spec, trainer.reward_funcs, settings["reward_weights"], settings)
    return result


@dataclass
class TrainerSetup:
    """Everything :func:`build_trainer` made; ``trainer.train()`` runs it."""

    trainer: object  # trl.GRPOTrainer
    tokenizer: object
    recorder: object  # callbacks.CompletionRecorder: the latest completions and their rewards
    backend: str
    generation: str
    source: str  # the model the LoRA adapter sits on
    spec: ModelSpec
    knobs: list[Knob]
    settings: dict  # what its checkpoints depend on (prepare_run): a resume must match them


def build_trainer(
    rows: Sequence[dict],
    reward_funcs: Sequence[Callable],
    profile: Profile,
    *,
    base: str | None = None,
    reward_weights: Sequence[float] | None = None,
    backend: str | None = None,
    out_dir: Path | None = None,
    callbacks: Sequence = (),
    max_steps: int | None = None,
    stop_after: int | None = None,
    model_key: str | None = None,
    extra_config: dict | None = None,
    show_samples: int = 0,
) -> TrainerSetup:
    """The policy (base model + LoRA), the ``GRPOConfig`` and TRL's ``GRPOTrainer``, ready to train.

    ``max_steps`` overrides the profile; ``stop_after`` stops early after that many steps
    (saving a checkpoint): the notebook uses it to show an interruption and a resume.
    """
    from datasets import Dataset

    backend = choose_backend(backend)
    generation = choose_generation("train", backend).path
    if generation == "static-cache":  # $COURSE_ROLLOUT_COMPILE checked before anything loads
        from .fast_rollouts import rollout_compile_from_env

        rollout_compile_from_env()
    spec = choose_model(model_key or profile.model)
    source = base or model_source(spec)
    out_dir = Path(out_dir or output_dir() / "grpo")
    settings = prepare_run(
        out_dir,
        profile,
        model_key=spec.key,
        base=source,
        backend=backend,
        reward_funcs=reward_funcs,
        reward_weights=reward_weights,
        extra_config=extra_config,
        problems=rows,
    )
    if backend == "unsloth":
        import unsloth  # noqa: F401 - must come before trl

    from trl import GRPOTrainer

    from .callbacks import CompletionRecorder, ProgressPrinter, SkipNonFiniteSteps, StopAfterStep

    recorder = CompletionRecorder(
        reward_funcs,
        out_dir / "samples.jsonl",
        every=profile.grpo.sample_every,
        show=show_samples,
        weights=reward_weights,
    )
    model, tokenizer, peft_cfg = load_policy(backend, spec, source, profile, 2048, generation)
    max_prompt = max(prompt_lengths(rows[: min(len(rows), 200)], tokenizer))
    knobs = grpo_knobs(profile, backend, max_prompt, generation, has_cuda(), spec, gpu_memory_gib())
    if max_steps is not None:
        knobs = [Knob(k.name, max_steps, k.why) if k.name == "max_steps" else k for k in knobs]
    config = build_grpo_config(knobs, out_dir / "checkpoints", reward_weights, **(extra_config or {}))
    settings.update(config_settings(config, peft_cfg))  # what a resume must match of the configs themselves
    cbs = [recorder.callback(), ProgressPrinter(), SkipNonFiniteSteps(), *callbacks]
    if stop_after is not None:
        cbs.append(StopAfterStep(stop_after))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=recorder.wrapped,
        args=config,
        train_dataset=Dataset.from_list(grpo_records(rows)),
        processing_class=tokenizer,
        peft_config=peft_cfg,
        callbacks=cbs,
        rollout_func=rollout_func_for(generation, max_prompt),
    )
    recorder.attach(trainer)  # the live monitor logs into the trainer's metrics
    return TrainerSetup(trainer, tokenizer, recorder, backend, generation, source, spec, knobs, settings)


def train_grpo(
    rows: Sequence[dict], reward_funcs: Sequence[Callable], profile: Profile, *, resume: bool = True, **build
) -> TrainResult:
    """Build the trainer (:func:`build_trainer`, same keyword arguments), train, save the adapter.

    Resumes an unfinished run from its newest good checkpoint (``resume=False`` starts over); a run
    that already reached ``max_steps`` starts over (:func:`~utils.train.runs.prepare_run_dir`).
    The rewards are checked first: one that crashes or hangs fails here, not at step 300."""
    assert_reward_set_ok(reward_funcs, build.get("reward_weights"))
    setup = build_trainer(rows, reward_funcs, profile, **build)
    trainer = setup.trainer
    last = resume_checkpoint(Path(trainer.args.output_dir).parent, trainer.args.max_steps, resume, setup.settings)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    return save_run(
        trainer,
        profile,
        setup.spec,
        setup.settings,
        generation=setup.generation,
        samples_file=setup.recorder.path,
        seconds=time.perf_counter() - t0,
    )
