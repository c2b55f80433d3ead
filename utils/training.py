"""GRPO training: backend choice, configs with reasons, warm-start SFT, the run itself.

One code path for every scale. The notebook (04) and the script
(``scripts/train_grpo.py``) both call :func:`train_grpo`, so what CI smoke-tests is what a
GPU runs.

Backends:

* ``unsloth`` - Unsloth's FastLanguageModel (4-bit, vLLM generation when installed, its
  own gradient checkpointing). Chosen automatically on a CUDA GPU with unsloth installed.
* ``trl``     - transformers + PEFT LoRA through TRL's GRPOTrainer. Generation uses TRL's
  vLLM integration when vllm is installed, otherwise plain ``model.generate``. The
  static, compiled KV cache that makes evaluation 2.8x faster measured *slower* inside
  GRPO on an H100 (26.0 s vs 22.9 s a step: the LoRA layers stay unmerged and the
  compiled graph is rebuilt as weights change), so it is opt-in here:
  ``COURSE_GENERATION=static-cache``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .generation import vllm_usable
from .models import ModelSpec, choose_model, model_source
from .paths import output_dir
from .profiles import Profile
from .profiles import has_cuda as cuda_available
from .prompts import build_messages

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RUN_INFO = "run_info.json"


# ------------------------------------------------------------------------ environment
def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def choose_backend(requested: str | None = None) -> str:
    """``auto`` -> unsloth on a CUDA GPU with unsloth installed, else trl. ``COURSE_BACKEND`` overrides."""
    if requested in (None, "", "auto"):  # not chosen in code: the environment may choose
        requested = os.environ.get("COURSE_BACKEND") or "auto"
    requested = requested.lower()
    if requested not in ("auto", "unsloth", "trl"):
        raise ValueError(f"backend must be auto, unsloth or trl, got {requested!r}")
    if requested == "unsloth":
        if not cuda_available():
            raise RuntimeError("the unsloth backend needs a CUDA GPU; use backend='trl' on this machine")
        if not has_module("unsloth"):
            raise RuntimeError("unsloth is not installed (Colab: the setup cell installs requirements-colab.txt)")
        return "unsloth"
    if requested == "trl":
        return "trl"
    return "unsloth" if cuda_available() and has_module("unsloth") else "trl"


def preload_backend(requested: str | None = None) -> str:
    """Choose the backend and, for Unsloth, import it now: it must patch transformers and
    TRL before anything else imports them. Call it before other imports that load transformers."""
    backend = choose_backend(requested)
    if backend == "unsloth":
        import unsloth  # noqa: F401
    return backend


def generation_path(backend: str) -> str:
    """How completions are generated, picked in one place (see benchmarks for the figures)."""
    override = os.environ.get("COURSE_GENERATION")
    if override:
        return override
    if cuda_available() and vllm_usable():
        return "vllm"
    return "plain"  # see the module docstring: static-cache measured slower inside GRPO


# ------------------------------------------------------------------------------ data
def grpo_records(rows: Sequence[dict]) -> list[dict]:
    """Conversational prompts plus the columns the rewards read (TRL passes them by name)."""
    return [{"prompt": build_messages(r), "events": r["events"], "priority_events": r["priority_events"],
             "optimal_score": r["optimal_score"]} for r in rows]


def prompt_lengths(rows: Sequence[dict], tokenizer) -> list[int]:
    """Tokens of each chat prompt, generation header included (what the model reads)."""
    return [len(tokenizer.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"]) for r in rows]


# ---------------------------------------------------------------------------- configs
@dataclass
class Knob:
    name: str
    value: Any
    why: str


def _supported(cls, kwargs: dict) -> tuple[dict, list[str]]:
    """Keep only arguments the installed TRL accepts (APIs drift between versions)."""
    names = {f.name for f in dataclasses.fields(cls)}
    kept = {k: v for k, v in kwargs.items() if k in names}
    return kept, sorted(set(kwargs) - set(kept))


def grpo_knobs(profile: Profile, backend: str, max_prompt_tokens: int, gen_path: str, on_gpu: bool,
               spec: ModelSpec | None = None) -> list[Knob]:
    """The GRPO settings with the reason for each. Public recipe values on GPU (README, Sources)."""
    bf16 = on_gpu and _bf16_ok()
    lr = Knob("learning_rate", profile.grpo_learning_rate,
              "LoRA on a small model tolerates a larger step than the recipe's 8e-6 for a 7B model")
    if spec is not None and spec.grpo_learning_rate is not None:
        lr = Knob("learning_rate", spec.grpo_learning_rate, f"the value used for {spec.hub_id} (public recipe)")
    knobs = [
        lr,
        Knob("adam_beta1", 0.9, "recipe"), Knob("adam_beta2", 0.99, "recipe: shorter memory of squared gradients"),
        Knob("weight_decay", 0.1, "recipe: keeps LoRA weights small"),
        Knob("warmup_steps", 0.01, "recipe's warmup ratio 0.01 (transformers 5 reads a float < 1 as a ratio)"),
        Knob("lr_scheduler_type", "cosine", "recipe: decay towards the end of the run"),
        Knob("optim", "paged_adamw_8bit" if backend == "unsloth" else "adamw_torch",
             "8-bit paged Adam saves GPU memory (needs bitsandbytes); plain AdamW elsewhere"),
        Knob("max_steps", profile.grpo_steps, "the run length of this profile"),
        Knob("per_device_train_batch_size", profile.per_device_batch,
             "completions per step; a multiple of num_generations"),
        Knob("gradient_accumulation_steps", 1, "recipe"),
        Knob("num_generations", profile.num_generations,
             "group size: GRPO compares completions of the same prompt within a group"),
        Knob("max_completion_length", profile.max_completion_length,
             f"new-token budget; prompts here are <= {max_prompt_tokens} tokens (TRL 1.x has no max_prompt_length)"),
        Knob("temperature", 1.0, "sampling diversity inside a group is what creates a learning signal"),
        Knob("max_grad_norm", 0.1, "recipe: clip hard, RL gradients are noisy"),
        Knob("beta", 0.0, "no KL penalty (TRL's default): no reference model to keep in memory"),
        Knob("logging_steps", profile.logging_steps, "log every step for the live plots"),
        Knob("save_steps", profile.save_steps, "checkpoint often enough to resume after a disconnect"),
        Knob("save_total_limit", 2, "keep disk use bounded"),
        Knob("bf16", bf16, "half precision on GPUs that support bf16"),
        Knob("fp16", on_gpu and not bf16, "older GPUs (T4) use fp16 instead of bf16"),
        Knob("gradient_checkpointing", False,
             "off here: for these model sizes memory is not the limit, speed is (Unsloth applies its own)"),
        Knob("report_to", "none", "the notebook draws its own live plots; set 'wandb' or 'tensorboard' if you like"),
        Knob("seed", 3407, "reproducible sampling and LoRA initialisation"),
        Knob("log_completions", False, "we show our own sample table instead of TRL's console print"),
    ]
    if gen_path == "vllm" and backend == "unsloth":
        knobs.append(Knob("use_vllm", True, "Unsloth's own vLLM engine (fast_inference=True) generates, sharing the GPU"))
    if gen_path == "vllm" and backend == "trl":
        knobs += [Knob("use_vllm", True, "vLLM generates many times faster than model.generate"),
                  Knob("vllm_mode", "colocate", "vLLM shares the training GPU (no separate server)"),
                  Knob("vllm_gpu_memory_utilization", 0.3, "leave memory for training")]
    if gen_path == "static-cache":
        knobs.append(Knob("cache_implementation", "static",
                          "preallocated KV cache: transformers compiles the decoding step (benchmarks/)"))
    if gen_path in ("paged", "continuous-batching"):
        knobs.append(Knob("use_transformers_continuous_batching", True,
                          "paged attention + continuous batching from transformers (measured slower here: benchmarks/)"))
    return knobs


def _bf16_ok() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def knobs_table(knobs: Sequence[Knob]):
    import pandas as pd

    return pd.DataFrame([{"setting": k.name, "value": k.value, "why": k.why} for k in knobs]).set_index("setting")


def build_grpo_config(knobs: Sequence[Knob], out_dir: Path, reward_weights: Sequence[float] | None = None, **extra):
    """A GRPOConfig from the knobs; arguments the installed TRL lacks are dropped with a note."""
    from trl import GRPOConfig

    kwargs = {k.name: k.value for k in knobs}
    kwargs.update(output_dir=str(out_dir), reward_weights=list(reward_weights) if reward_weights else None,
                  save_strategy="steps", **extra)
    kept, dropped = _supported(GRPOConfig, kwargs)
    if dropped:
        print(f"(this TRL version has no {dropped}; skipped)")
    return GRPOConfig(**kept)


def lora_config(profile: Profile):
    from peft import LoraConfig

    return LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_r, lora_dropout=0.0,
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM")


# ---------------------------------------------------------------------- warm-start SFT
def run_sft(base: str, rows: Sequence[dict], profile: Profile, out_dir: Path, force: bool = False) -> Path:
    """Full fine-tune of the (small) base model on DP-optimal answers; returns the checkpoint.

    Skipped when ``out_dir`` already holds a finished warm-start (resume-friendly)."""
    out_dir = Path(out_dir)
    done = out_dir / "final"
    if (done / "config.json").exists() and not force:
        print(f"Warm-start already done: {done}")
        return done
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from .models import load_tokenizer
    from .warmstart import sft_records

    on_gpu = torch.cuda.is_available()
    tokenizer = load_tokenizer(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    kwargs = dict(output_dir=str(out_dir / "checkpoints"), num_train_epochs=profile.sft_epochs,
                  per_device_train_batch_size=profile.sft_batch_size, learning_rate=profile.sft_learning_rate,
                  lr_scheduler_type="cosine", warmup_steps=0.05, logging_steps=5, save_strategy="no",
                  report_to="none", bf16=on_gpu and _bf16_ok(), max_length=1024, seed=3407,
                  completion_only_loss=True, eos_token=tokenizer.eos_token)  # pad: set on the tokenizer
    kept, _ = _supported(SFTConfig, kwargs)
    trainer = SFTTrainer(model=model, args=SFTConfig(**kept), train_dataset=Dataset.from_list(sft_records(rows)),
                         processing_class=tokenizer)
    t0 = time.perf_counter()
    trainer.train()
    print(f"Warm-start: {trainer.state.global_step} steps in {time.perf_counter() - t0:.0f} s")
    trainer.save_model(str(done))
    tokenizer.save_pretrained(str(done))
    (out_dir / "sft_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    return done


# ------------------------------------------------------------------------ GRPO run
@dataclass
class TrainResult:
    output_dir: Path
    adapter_dir: Path
    base_model: str  # what the adapter sits on (the warm-started checkpoint or the hub model)
    log_history: list[dict]
    global_step: int
    seconds: float
    backend: str
    generation: str
    samples_file: Path


def latest_checkpoint(out_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(out_dir)) if Path(out_dir).is_dir() else None


def checkpoint_step(checkpoint: str | Path) -> int:
    """The optimizer step a checkpoint was saved at (from its trainer_state.json)."""
    try:
        return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        return int(str(checkpoint).rsplit("-", 1)[-1]) if str(checkpoint).rsplit("-", 1)[-1].isdigit() else 0


def prepare_run_dir(out_dir: Path, max_steps: int, fresh: bool | None = None) -> str:
    """Decide between resuming and starting over; returns what was decided, in words.

    ``fresh=None`` (the default) resumes an unfinished run (after a disconnect, just run
    the notebook again) and starts over when the last run reached ``max_steps``.
    ``True`` always starts over, ``False`` always resumes.
    """
    import shutil

    out_dir = Path(out_dir)
    last = latest_checkpoint(out_dir / "checkpoints")
    done = checkpoint_step(last) if last else 0
    if last is None:
        decision = "no checkpoint: starting a new run"
        fresh = True
    elif fresh is None:
        fresh = done >= max_steps
        decision = (f"the last run finished ({done}/{max_steps} steps): starting a new run" if fresh
                    else f"unfinished run found at step {done}/{max_steps}: resuming from {last}")
    else:
        decision = "starting a new run (fresh=True)" if fresh else f"resuming from {last} (step {done})"
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return decision


def load_policy(backend: str, spec: ModelSpec, source: str, profile: Profile, max_seq_length: int, gen_path: str):
    """(model, tokenizer, peft_config) for the backend. Unsloth applies LoRA itself."""
    if backend == "unsloth":
        from unsloth import FastLanguageModel  # imported first: it patches trl/transformers

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=source if spec.unsloth_id is None or os.path.isdir(source) else spec.unsloth_id,
            max_seq_length=max_seq_length, load_in_4bit=spec.key != "smollm2-135m",
            fast_inference=gen_path == "vllm", max_lora_rank=profile.lora_r, gpu_memory_utilization=0.85)
        model = FastLanguageModel.get_peft_model(
            model, r=profile.lora_r, target_modules=LORA_TARGETS, lora_alpha=profile.lora_r,
            use_gradient_checkpointing="unsloth", random_state=3407)
        return model, tokenizer, None
    from .models import default_dtype, load_causal_lm

    model, tokenizer = load_causal_lm(source, default_dtype("cuda" if cuda_available() else "cpu"))
    return model, tokenizer, lora_config(profile)


def train_grpo(
    rows: Sequence[dict], reward_funcs: Sequence[Callable], profile: Profile, *, base: str | None = None,
    reward_weights: Sequence[float] | None = None, backend: str | None = None, out_dir: Path | None = None,
    callbacks: Sequence = (), resume: bool = True, max_steps: int | None = None, stop_after: int | None = None,
    model_key: str | None = None, extra_config: dict | None = None, show_samples: int = 0,
) -> TrainResult:
    """Run GRPO with LoRA; resumes from the last checkpoint in ``out_dir`` when there is one.

    ``max_steps`` overrides the profile; ``stop_after`` stops early after that many steps
    (saving a checkpoint): the notebook uses it to show an interruption and a resume.
    """
    from datasets import Dataset

    backend = choose_backend(backend)
    gen_path = generation_path(backend)
    spec = choose_model(model_key or profile.model)
    source = base or model_source(spec)
    out_dir = Path(out_dir or output_dir() / "grpo")
    out_dir.mkdir(parents=True, exist_ok=True)
    if backend == "unsloth":
        import unsloth  # noqa: F401 - must come before trl

    from trl import GRPOTrainer

    from .callbacks import CompletionRecorder, StopAfterStep

    recorder = CompletionRecorder(reward_funcs, out_dir / "samples.jsonl", every=profile.sample_every,
                                  show=show_samples, weights=reward_weights)
    model, tokenizer, peft_cfg = load_policy(backend, spec, source, profile, 2048, gen_path)
    max_prompt = max(prompt_lengths(rows[: min(len(rows), 200)], tokenizer))
    knobs = grpo_knobs(profile, backend, max_prompt, gen_path, cuda_available(), spec)
    if max_steps is not None:
        knobs = [Knob(k.name, max_steps, k.why) if k.name == "max_steps" else k for k in knobs]
    config = build_grpo_config(knobs, out_dir / "checkpoints", reward_weights, **(extra_config or {}))
    cbs = [recorder.callback(), *callbacks]
    if stop_after is not None:
        cbs.append(StopAfterStep(stop_after))
    trainer = GRPOTrainer(model=model, reward_funcs=recorder.wrapped, args=config,
                          train_dataset=Dataset.from_list(grpo_records(rows)), processing_class=tokenizer,
                          peft_config=peft_cfg, callbacks=cbs)
    last = latest_checkpoint(out_dir / "checkpoints") if resume else None
    if last:
        print(f"Resuming from {last}")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))  # LoRA weights only (small)
    tokenizer.save_pretrained(str(adapter_dir))
    result = TrainResult(out_dir, adapter_dir, source, trainer.state.log_history, trainer.state.global_step,
                         seconds, backend, gen_path, recorder.path)
    write_run_info(result, profile, spec, reward_funcs, reward_weights)
    return result


def write_run_info(result: TrainResult, profile: Profile, spec: ModelSpec, funcs, weights) -> Path:
    """What notebook 05 needs: adapter, base, profile, log history. A known place, JSON."""
    info = {
        "adapter_dir": str(result.adapter_dir), "base_model": result.base_model, "model_key": spec.key,
        "profile": dataclasses.asdict(profile), "backend": result.backend, "generation": result.generation,
        "global_step": result.global_step, "train_seconds": round(result.seconds, 1),
        "rewards": [f.__name__ for f in funcs], "reward_weights": list(weights) if weights else None,
        "log_history": result.log_history, "samples_file": str(result.samples_file),
    }
    path = result.output_dir / RUN_INFO
    path.write_text(json.dumps(info, indent=1, default=str))
    return path


def merge_and_save(base: str, adapter_dir: Path, target: Path) -> Path:
    """Fold the LoRA adapter into the base weights and save a standalone model (for vLLM, sharing)."""
    from .models import load_model

    model, tokenizer = load_model(base, adapter=adapter_dir, device="cpu")
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return Path(target)


def hub_token() -> str | None:
    """HF token from Colab secrets (key ``HF_TOKEN``) or the environment; None when absent."""
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        return userdata.get("HF_TOKEN")
    except Exception:  # noqa: BLE001 - not on Colab, or the secret is not shared with the notebook
        return os.environ.get("HF_TOKEN")


def push_to_hub(folder: Path, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Upload a saved model or adapter folder; clear message without a token or internet."""
    token = token or hub_token()
    if not token:
        raise RuntimeError("no Hugging Face token: add HF_TOKEN to Colab secrets (key icon) or the environment")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=["checkpoint-*"])
    except Exception as exc:  # noqa: BLE001 - offline, bad token, no rights: say which
        raise RuntimeError(f"upload to {repo_id} failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return f"https://huggingface.co/{repo_id}"


def read_run_info(out_dir: Path | None = None) -> dict | None:
    path = Path(out_dir or output_dir() / "grpo") / RUN_INFO
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        print(f"{path} is not valid JSON; ignoring it")
        return None
