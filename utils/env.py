"""Environment facts every notebook prints at the top (versions, hardware, profile); the scripts' one-line errors."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
import time

COURSE_REPO = "grpo-course/grpo-scheduling-course"  # GitHub owner/name the Colab badges open
COURSE_BRANCH = "main"
COURSE_PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "unsloth",
    "vllm",
    "matplotlib",
    "pandas",
    "ipywidgets",
)


def in_colab() -> bool:
    return "google.colab" in sys.modules


def colab_url(notebook: str) -> str:
    return f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{COURSE_BRANCH}/notebooks/{notebook}"


def package_versions(packages=COURSE_PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "-"
    return out


def hardware() -> str:
    try:
        import torch
    except ImportError:
        return "CPU (torch not installed)"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"CUDA GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, bf16={torch.cuda.is_bf16_supported()}"
    return f"CPU only ({os.cpu_count()} cores)"


def gpu_peak_memory() -> dict[str, float]:
    """This process's peak GPU memory so far, in GiB: ``reserved_gib`` (what torch's caching allocator holds, the
    figure that runs out) and ``allocated_gib`` (what tensors used); ``{}`` without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
        "allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


COLAB_MARKER = "/content/course/.colab_installed"  # the setup cell writes the requirement file it installed


def colab_stack(marker: str = COLAB_MARKER) -> str | None:
    """Which Colab requirement set the setup cell installed (``requirements-colab-t4.txt`` on GPUs
    below compute capability 8.0: no vLLM), or None outside Colab / before the install."""
    try:
        with open(marker, encoding="utf-8") as fh:
            return fh.read().strip() or "requirements-colab.txt"  # an empty marker predates the T4 set
    except OSError:
        return None


def show_environment(packages=COURSE_PACKAGES) -> None:
    from .profiles import get_profile, profile_warning, use_torch_threads

    versions = package_versions(packages)
    print(f"Python {platform.python_version()} | " + " | ".join(f"{k} {v}" for k, v in versions.items()))
    stack = colab_stack() if in_colab() else None
    print(f"Hardware: {hardware()} | Colab: {in_colab()}" + (f" ({stack})" if stack else ""))
    profile = get_profile()
    print(f"Profile: {profile.name} (set COURSE_PROFILE=smoke|cpu|gpu to change)")
    if warning := profile_warning(profile):
        print(warning)
    threads = use_torch_threads(profile)  # the one place the course sets torch's thread count
    if threads:
        print(f"CPU: {threads}")


HEADLESS_ENV = "COURSE_HEADLESS"  # set by scripts/run_course.py and `make test`: nobody watches widgets


def headless() -> bool:
    """True when notebooks run without a person watching (make course, CI): no widget progress bars."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


HEADLESS_QUIET = {  # progress bars of the libraries, off in headless runs (frozen at 0% in an executed notebook)
    "TQDM_DISABLE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


class _Lines:
    """The headless stand-in for a progress bar: one line when the work is done, with its time."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done, self.t0 = total, desc, 0, time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n

    def close(self) -> None:
        print(f"{self.desc}: {self.done}/{self.total} [{time.perf_counter() - self.t0:.0f} s]", flush=True)


def progress(total: int, desc: str):
    """A progress bar when someone watches; headless, one line when done (a widget bar in an executed
    notebook would stay at 0%)."""
    if headless():
        return _Lines(total, desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)


def error_line(exc: BaseException, fallback: str | None = None) -> str:
    """The first line of an exception's message, for the one-line errors of the course's scripts (tarfile,
    nbformat and nbclient explain over several lines); ``fallback`` (else the exception's type name) when the
    message is empty.

    >>> error_line(ValueError("not a problem:\\n  events must be a list"))
    'not a problem:'
    >>> error_line(EOFError())
    'EOFError'
    """
    return (str(exc).strip().splitlines() or [fallback or type(exc).__name__])[0]
