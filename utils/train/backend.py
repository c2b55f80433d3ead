"""Which training stack runs GRPO: Unsloth or plain TRL + PEFT.

* ``unsloth`` - Unsloth's FastLanguageModel (4-bit for the larger models, vLLM generation when
  installed, its own gradient checkpointing). Chosen automatically on a CUDA GPU with unsloth
  installed (Colab: always).
* ``trl``     - transformers + PEFT LoRA through TRL's GRPOTrainer. Everywhere else, CPU included.
"""

from __future__ import annotations

import importlib.util
import os

from ..profiles import has_cuda

BACKENDS = ("unsloth", "trl")
BACKEND_ENV = "COURSE_BACKEND"


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def choose_backend(requested: str | None = None) -> str:
    """``auto`` -> unsloth on a CUDA GPU with unsloth installed, else trl.

    ``auto`` (or nothing) lets ``$COURSE_BACKEND`` decide, and says so; a backend named in
    code is used as written."""
    if requested in (None, "", "auto"):
        env = os.environ.get(BACKEND_ENV)
        if env:
            print(f"backend: {env!r} from ${BACKEND_ENV} (the code asked for 'auto')")
        requested = env or "auto"
    requested = requested.strip().lower()
    if requested not in ("auto", *BACKENDS):
        raise ValueError(f"backend must be auto, unsloth or trl, got {requested!r}")
    if requested == "unsloth":
        if not has_cuda():
            raise RuntimeError("the unsloth backend needs a CUDA GPU; use backend='trl' on this machine")
        if not has_module("unsloth"):
            raise RuntimeError("unsloth is not installed (Colab: the setup cell installs requirements-colab.txt)")
        return "unsloth"
    if requested == "trl":
        return "trl"
    return "unsloth" if has_cuda() and has_module("unsloth") else "trl"


def preload_backend(requested: str | None = None) -> str:
    """Choose the backend and, for Unsloth, import it now: it must patch transformers and
    TRL before anything else imports them. Call it before other imports that load transformers."""
    backend = choose_backend(requested)
    if backend == "unsloth":
        import unsloth  # noqa: F401
    return backend
