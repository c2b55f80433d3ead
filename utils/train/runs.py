"""Run folders: resume or restart, checkpoints, the run summary notebook 06 reads, sharing on the Hub."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..paths import output_dir

if TYPE_CHECKING:
    from ..llm.models import ModelSpec
    from ..profiles import Profile

RUN_INFO = "run_info.json"


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
        decision = (
            f"the last run finished ({done}/{max_steps} steps): starting a new run"
            if fresh
            else f"unfinished run found at step {done}/{max_steps}: resuming from {last}"
        )
    else:
        decision = "starting a new run (fresh=True)" if fresh else f"resuming from {last} (step {done})"
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return decision


def write_run_info(result: TrainResult, profile: Profile, spec: ModelSpec, funcs, weights) -> Path:
    """What notebook 05 needs: adapter, base, profile, log history. A known place, JSON."""
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
