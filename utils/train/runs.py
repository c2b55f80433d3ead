"""Run folders: resume or restart, checkpoints, the run summary notebook 06 reads, sharing on the Hub."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import claim_folder, output_dir
from ..profiles import DEFAULT_SEED

if TYPE_CHECKING:
    from ..llm.models import ModelSpec
    from ..profiles import Profile

RUN_INFO = "run_info.json"
#: The settings a run's checkpoints were trained with; a resume needs the same ones.
RUN_SETTINGS = "run_settings.json"


#: What a GRPO run writes into its folder: a fresh start removes exactly these, nothing else.
RUN_FILES = ("checkpoints", "adapter", "samples.jsonl", RUN_INFO, RUN_SETTINGS)
#: ... plus what notebook 05 may add (a merged model): none of these may be a symbolic link.
RUN_OWN = (*RUN_FILES, "merged")
#: A damaged checkpoint is renamed with this prefix (kept, never deleted) so that no resume picks it again.
DAMAGED_PREFIX = "damaged-"
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


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


def _torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip archive: a truncated or overwritten one has no valid directory."""
    import zipfile

    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.header_offset + member.compress_size > size:
                    return f"{path.name} is truncated"
            if size < 50_000_000 and archive.testzip() is not None:  # CRC check, where it is cheap
                return f"{path.name} is corrupted (checksum)"
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"{path.name} is not a readable torch file ({exc})"
    return None


#: What a resume reads back besides the weights. The trainer loads the optimizer and the learning-rate
#: scheduler only together, and without them it carries on silently with a fresh Adam (its moments gone,
#: so the first updates are full-size) and the schedule back at its warm-up: another run than the one the
#: checkpoint belongs to. A careful engineer would rather resume from an earlier whole checkpoint, or
#: start over, so a checkpoint missing either is damaged (set aside, kept), never resumed half-way.
RESUME_FILES = ("optimizer.pt", "scheduler.pt")
#: Written by the trainer, never read back on a resume: a pickled config the safe loader would refuse.
NOT_READ_BACK = ("training_args.bin",)


def _safe_load_problem(path: Path) -> str | None:
    """What the trainer's own loader (``weights_only``, numpy's arrays allowed) refuses in a torch file:
    a pickle that would run code, which a resume would die on (UnpicklingError). Nothing in it runs here."""
    import re

    import torch
    from transformers.trainer_pt_utils import safe_globals

    try:
        with safe_globals():
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: the tensors stay on disk
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError...: unusable either way
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # what the pickle would have called
        why = f"it would import {found.group(1)}" if found else type(exc).__name__
        return f"{path.name} is refused by the safe loader ({why})"
    return None


def state_problem(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint's trainer_state.json: unreadable, or contradicting the checkpoint
    (the trainer saves step N as ``checkpoint-N`` and never passes its own ``max_steps``). One tampered
    or mixed-up state must not make a run count as finished, which would delete the good checkpoints."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        step = state["global_step"]
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"trainer_state.json is unreadable ({type(exc).__name__})"
    if type(step) is not int or step < 0:
        return f"trainer_state.json has global_step {step!r}, not a step number"
    named = checkpoint.name.rsplit("-", 1)[-1]
    if named.isdigit() and int(named) != step:
        return f"trainer_state.json says step {step}, its folder name says {named}"
    limit = state.get("max_steps")
    if type(limit) is int and limit > 0 and step > limit:
        return f"trainer_state.json says step {step}, beyond the run's max_steps {limit}"
    return None


def checkpoint_problem(checkpoint: str | Path) -> str | None:
    """What makes a checkpoint unusable for a resume (in words), or None when it looks whole.

    Checks what the trainer reads back: trainer_state.json (readable and consistent with the checkpoint),
    the weights (adapter or model, safetensors headers against the file size), the optimizer and scheduler
    (present: :data:`RESUME_FILES`) and every torch file (whole, and loadable by the safe loader).
    """
    ckpt = Path(checkpoint)
    problem = state_problem(ckpt)
    if problem:
        return problem
    if not any((ckpt / name).exists() for name in WEIGHT_FILES):
        return "no model or adapter weights"
    missing = [name for name in RESUME_FILES if not (ckpt / name).is_file()]
    if missing:
        return f"no {' or '.join(missing)}: a resume would restart the optimizer and the learning-rate schedule"
    for path in sorted(ckpt.iterdir()):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(path), framework="pt") as fh:
                    fh.keys()
            except Exception as exc:  # noqa: BLE001 - SafetensorError and friends: damaged either way
                return f"{path.name} unreadable: {str(exc)[:120]}"
        elif path.suffix in (".pt", ".pth", ".bin") and path.name not in NOT_READ_BACK:
            problem = _torch_file_problem(path) or _safe_load_problem(path)
            if problem:
                return problem
    return None


def set_aside_damaged(checkpoints_dir: Path) -> list[str]:
    """Rename damaged ``checkpoint-N`` folders to ``damaged-checkpoint-N`` (kept for a look, never
    resumed from); returns one line per checkpoint set aside."""
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return []
    notes = []
    for ckpt in sorted(checkpoints_dir.glob("checkpoint-*")):
        if not ckpt.is_dir() or not ckpt.name.rsplit("-", 1)[-1].isdigit():
            continue
        problem = checkpoint_problem(ckpt)
        if problem is None:
            continue
        target = ckpt.with_name(DAMAGED_PREFIX + ckpt.name)
        n = 1
        while target.exists():
            n += 1
            target = ckpt.with_name(f"{DAMAGED_PREFIX}{ckpt.name}.{n}")
        ckpt.rename(target)
        notes.append(f"{ckpt.name} is damaged ({problem}): set aside as {target.name}")
    return notes


def _clear_run(out_dir: Path) -> None:
    """Remove what an earlier run wrote (RUN_FILES) and nothing else; checkpoints set aside as
    damaged stay (for a look; delete them yourself)."""
    import shutil

    def remove(path: Path) -> None:
        if path.is_symlink():  # claim_folder refuses links; should one appear, only the link goes
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    for name in RUN_FILES:
        path = out_dir / name
        if name == "checkpoints" and path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                if not child.name.startswith(DAMAGED_PREFIX):
                    remove(child)
            if not any(path.iterdir()):
                path.rmdir()
        else:
            remove(path)


#: Knobs that may change between a run and its resume (how long, how often to save or log).
RESUMABLE_KNOBS = ("steps", "save_steps", "logging_steps", "sample_every", "n_probe")
# the profile's data knobs that choose GRPO's problems (utils.task.load_problems)
DATA_KNOBS = ("n_train", "max_events", "train_style")
# what a run's settings record about its problems since 2026-12-07 (earlier files lack it: not a change)
PROBLEM_SETTINGS = frozenset({*(f"data.{k}" for k in DATA_KNOBS), "problems"})


#: GRPOConfig fields (name prefixes) a run's settings leave out. Every other field shapes what the checkpoints
#: learned, so a resume must match it (a learning rate edited in notebook 05's GRPOConfig cell starts a new run).
UNRECORDED_CONFIG = (
    # where and how long it runs, how it saves, logs and reports: these may change on a resume
    *("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "max_steps", "num_train_epochs"),
    *("save_", "restore_callback_states", "ignore_data_skip", "logging_", "log_", "report_to", "run_name"),
    *("project", "trackio_", "disable_tqdm", "hub_", "push_to_hub", "num_completions_to_print"),
    # evaluation during training (the course evaluates afterwards)
    *("eval_", "do_", "per_device_eval_batch_size", "num_generations_eval", "prediction_loss_only"),
    *("batch_eval_metrics", "include_", "label_names", "load_best_model_at_end", "metric_for_best_model"),
    *("greater_is_better", "length_column_name"),
    # the machine: the same update computed another way (precision, devices, memory per pass, generation engine);
    # the answers a step are the profile's grpo.per_device_batch, recorded with it
    *("use_cpu", "bf16", "fp16", "tf32", "local_rank", "ddp_", "fsdp", "deepspeed", "ds3_", "parallelism_config"),
    *("accelerator_config", "debug", "dataloader_", "auto_find_batch_size", "average_tokens_across_devices"),
    *("full_determinism", "enable_jit_checkpoint", "skip_memory_metrics", "torch_compile", "torch_empty_cache"),
    *("per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation", "generation_batch_size"),
    *("gradient_checkpointing", "use_liger_kernel", "liger_kernel_config", "cast_lm_head_to_fp32", "use_vllm"),
    *("vllm_", "use_transformers_", "transformers_continuous_batching", "cache_implementation", "use_cache"),
    *("model_init_kwargs", "trust_remote_code"),
)
#: LoraConfig fields a resume must match (the rank is also the profile's grpo.lora_r).
LORA_FIELDS = ("r", "lora_alpha", "lora_dropout", "target_modules", "bias", "use_rslora", "use_dora")
#: setting name prefixes recorded since 2026-12-07 (night): a run recorded before, or a caller that passes no
#: config, has them on one side only, which is not a change
CONFIG_SETTINGS = ("config.", "lora.")


def config_settings(config: Any = None, lora: Any = None) -> dict[str, Any]:
    """What a resume must match of a ``GRPOConfig`` (every field but :data:`UNRECORDED_CONFIG`) and a
    ``LoraConfig`` (:data:`LORA_FIELDS`), as ``{"config.<field>": value, "lora.<field>": value}``; either may be
    ``None``. Notebook 05 writes both out, so a value typed there must count, not only the profile's knobs.

    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(to_dict=lambda: {"learning_rate": 1e-05, "output_dir": "x", "bf16": True})
    >>> config_settings(cfg, SimpleNamespace(r=8, lora_alpha=8, target_modules={"v_proj", "q_proj"}))
    {'config.learning_rate': 1e-05, 'lora.r': 8, 'lora.lora_alpha': 8, 'lora.target_modules': ['q_proj', 'v_proj']}
    """
    out: dict[str, Any] = {}
    if config is not None:
        out.update({f"config.{k}": v for k, v in config.to_dict().items() if not k.startswith(UNRECORDED_CONFIG)})
    if lora is not None:
        for k in LORA_FIELDS:
            if hasattr(lora, k):
                v = getattr(lora, k)
                out[f"lora.{k}"] = sorted(v) if isinstance(v, (set, frozenset)) else v
    return json.loads(json.dumps(out, default=str))  # the form it has once written and read back


def problems_digest(rows: Sequence[Mapping]) -> str:
    """``"2 problems, sha1 0b3f..."``: which problems a run trains on, short enough for its settings file. It tells
    apart what the knobs cannot: the published problems from the course's own (``DATA_SOURCE``), or your own.

    >>> rows = [{"events": [["A", "08:00", "09:00"]], "priority_events": []}]
    >>> problems_digest(rows) == problems_digest([dict(r) for r in rows]), problems_digest(rows)[:12]
    (True, '1 problems, ')
    >>> problems_digest(rows) != problems_digest(rows + rows)
    True
    """
    import hashlib

    text = json.dumps(list(rows), sort_keys=True, default=str)
    return f"{len(rows)} problems, sha1 {hashlib.sha1(text.encode()).hexdigest()[:12]}"


def run_settings(
    profile: Profile,
    *,
    model_key: str,
    base: str,
    backend: str,
    reward_names: Sequence[str],
    reward_weights: Sequence[float] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    problems: Sequence[Mapping] | None = None,
    config: Any = None,
    lora: Any = None,
) -> dict[str, Any]:
    """What a run's checkpoints depend on, as plain JSON values: resuming under other settings
    (another profile's LoRA rank, another base model or reward set) would fail or mix two runs. With ``config``
    (the ``GRPOConfig``) and ``lora`` (the ``LoraConfig``), their values too (:func:`config_settings`).
    The GRPO problems count too: a run resumed on other problems would mix two datasets in one adapter. Their knobs
    (``data.n_train``, ``data.max_events``, ``data.train_style``) say what changed in words; with ``problems`` (the
    rows themselves) their :func:`problems_digest` also tells apart sources the knobs do not (hub or local).

    >>> from utils.profiles import get_profile
    >>> s = run_settings(get_profile("smoke"), model_key="m", base="b", backend="trl", reward_names=["r"])
    >>> s["grpo.lora_r"], "grpo.steps" in s, s["data.n_train"]
    (8, False, 16)
    """
    grpo = {f"grpo.{k}": v for k, v in dataclasses.asdict(profile.grpo).items() if k not in RESUMABLE_KNOBS}
    data = {f"data.{k}": getattr(profile.data, k) for k in DATA_KNOBS}  # PROBLEM_SETTINGS
    settings = {
        "model_key": model_key,
        "base": str(base),
        "backend": backend,
        "rewards": list(reward_names),
        "reward_weights": list(reward_weights) if reward_weights is not None else None,
        "extra_config": dict(extra_config or {}),
        "seed": profile.seed,
        **grpo,
        **data,
    }
    if problems is not None:
        settings["problems"] = problems_digest(problems)
    settings.update(config_settings(config, lora))
    return json.loads(json.dumps(settings, default=str))  # the form it has once written and read back


def settings_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``["grpo.lora_r 8 -> 16", ...]``: the settings that differ, in words.

    What the earlier run did not record about its problems (``data.*``, ``problems``: its settings file predates
    them) is not a change: its problems are unknown, and refusing would strand every run made before. Nor is a
    ``config.*`` or ``lora.*`` value that one side lacks (recorded only where the caller passes its configs).

    >>> settings_changes({"grpo.lora_r": 8}, {"grpo.lora_r": 16, "data.n_train": 500, "config.beta": 0.04})
    ['grpo.lora_r 8 -> 16']
    """

    def unknown(k: str) -> bool:
        return (k in PROBLEM_SETTINGS and k not in before) or (
            k.startswith(CONFIG_SETTINGS) and k not in before.keys() & now.keys()
        )

    return [
        f"{k} {before.get(k)!r} -> {now.get(k)!r}"
        for k in sorted(set(before) | set(now))
        if before.get(k) != now.get(k) and not unknown(k)
    ]


def read_settings(path: Path) -> dict[str, Any] | None:
    """A settings record the course wrote (a GRPO run's or a warm start's); None when there is none or it is
    damaged (unreadable, not JSON, nested too deep, not an object)."""
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(settings, dict):
        return None
    return {"seed": DEFAULT_SEED, **settings}  # recorded before the seed was a knob: trained with the default


def stored_settings(out_dir: Path) -> dict[str, Any] | None:
    """The settings a run folder's checkpoints were trained with; None when unknown: no file (a run from
    before this file existed) or a damaged one (:func:`settings_problem` says which)."""
    return read_settings(Path(out_dir) / RUN_SETTINGS)


def settings_problem(out_dir: Path) -> str | None:
    """One line when the folder's run_settings.json exists but holds no settings (unreadable, or JSON
    that is not an object); None when it is fine or absent."""
    path = Path(out_dir) / RUN_SETTINGS
    if not path.is_file() or stored_settings(out_dir) is not None:
        return None
    return f"{RUN_SETTINGS} is damaged (not a JSON object of settings): the checkpoints' settings are unknown"


def prepare_run_dir(
    out_dir: Path, max_steps: int, fresh: bool | None = None, settings: Mapping[str, Any] | None = None
) -> str:
    """Decide between resuming and starting over; returns what was decided, in words.

    ``fresh=None`` (the default) resumes an unfinished run (after a disconnect, just run
    the notebook again) and starts over when the last run reached ``max_steps`` or was trained
    with other ``settings`` (:func:`run_settings`: e.g. the smoke profile's run, then the cpu
    profile's). ``True`` always starts over, ``False`` always resumes (and refuses other settings).
    With ``settings``, they are written into the folder for the next decision.

    Only a folder the course made (it carries the course's marker) is used (see
    :func:`utils.paths.claim_folder`): a folder holding other files is refused, never emptied, and so
    is one where a checkpoint or the adapter is a symbolic link (never followed). Starting over removes
    only what a run writes (checkpoints, adapter, samples, run_info.json, run_settings.json). A damaged
    checkpoint (:func:`checkpoint_problem`: unreadable, incomplete or contradicting itself) is set aside
    and the run resumes from the newest good one before it.
    """
    out_dir = claim_folder(out_dir, "GRPO run", own=RUN_OWN)
    notes = set_aside_damaged(out_dir / "checkpoints")
    last = latest_checkpoint(out_dir / "checkpoints")
    done = checkpoint_step(last) if last else 0
    before = stored_settings(out_dir)
    damaged_settings = settings_problem(out_dir) if last else None
    if damaged_settings:  # unknown settings, as for a run from before the file existed: said, not a crash
        notes.append(damaged_settings)
    changes = settings_changes(before, settings) if last and before is not None and settings is not None else []
    if changes and fresh is False:
        raise ValueError(f"cannot resume {last}: it was trained with other settings ({'; '.join(changes)})")
    if last is None:
        decision = "no checkpoint: starting a new run"
        fresh = True
    elif changes and fresh is None:
        fresh = True
        decision = f"{Path(last).name} comes from a run with other settings ({'; '.join(changes)}): starting a new run"
    elif fresh is None:
        fresh = done >= max_steps
        decision = (
            f"the last run finished ({done}/{max_steps} steps): starting a new run"
            if fresh
            else f"unfinished run found at step {done}/{max_steps}: resuming from {last}"
        )
    else:
        decision = "starting a new run (fresh=True)" if fresh else f"resuming from {last} (step {done})"
    if fresh:
        _clear_run(out_dir)
    if settings is not None:
        (out_dir / RUN_SETTINGS).write_text(json.dumps(dict(settings), indent=1), encoding="utf-8")
    return "; ".join([*notes, decision])


def resume_checkpoint(
    out_dir: Path, max_steps: int, resume: bool = True, settings: Mapping[str, Any] | None = None
) -> str | None:
    """The checkpoint :func:`~utils.train.train_grpo` resumes from, after :func:`prepare_run_dir`
    (printed): an unfinished run's newest good checkpoint with the same settings, or None for a new run."""
    print(prepare_run_dir(out_dir, max_steps, fresh=None if resume else True, settings=settings))
    return latest_checkpoint(Path(out_dir) / "checkpoints")


def write_run_info(
    result: TrainResult, profile: Profile, spec: ModelSpec, funcs, weights, settings: Mapping[str, Any] | None = None
) -> Path:
    """What notebook 05 needs: adapter, base, profile, log history. A known place, JSON. ``settings``: what the run
    trained with (:func:`run_settings`, the configs' own values included: a value typed into notebook 05's
    ``GRPOConfig`` cell is there, not in the profile)."""
    info = {
        "adapter_dir": str(result.adapter_dir),
        "base_model": result.base_model,
        "model_key": spec.key,
        "profile": dataclasses.asdict(profile),
        "backend": result.backend,
        "generation": result.generation,
        "global_step": result.global_step,
        "train_seconds": round(result.seconds, 1),
        "rewards": [f.__name__ for f in funcs],
        "reward_weights": list(weights) if weights else None,
        "log_history": result.log_history,
        "samples_file": str(result.samples_file),
        "settings": dict(settings) if settings is not None else None,
    }
    path = result.output_dir / RUN_INFO
    path.write_text(json.dumps(info, indent=1, default=str))
    return path


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
