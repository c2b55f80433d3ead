"""Run profiles: how big every notebook's run is. Chosen by ``COURSE_PROFILE``.

* ``smoke`` - CI: every notebook in a couple of minutes on 2 CPU cores. Proves the
  cells run; learns nothing.
* ``cpu``   - a real but short course run on a laptop-class CPU (whole course < 30 min).
* ``gpu``   - the full version on a CUDA GPU.

Without ``COURSE_PROFILE`` the default is ``gpu`` when CUDA is visible, else ``cpu``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace

PROFILE_ENV = "COURSE_PROFILE"
OVERRIDES_ENV = "COURSE_OVERRIDES"  # e.g. "grpo_steps=20,n_eval=50": change a profile without editing code


@dataclass(frozen=True)
class Profile:
    name: str
    # data
    n_generate: int  # problems generated live in notebook 01
    n_train: int  # training problems used by notebook 04 (<= 500)
    n_eval: int  # test problems evaluated in notebooks 04/05 (<= 100)
    # model
    model: str  # key of utils.models.MODELS; "auto" = pick from hardware
    # SFT warm-start
    n_sft: int  # training problems used for the warm-start
    sft_epochs: float
    sft_batch_size: int
    sft_learning_rate: float
    # GRPO
    grpo_steps: int
    num_generations: int
    per_device_batch: int  # completions per device step (multiple of num_generations)
    max_completion_length: int
    grpo_learning_rate: float
    lora_r: int
    save_steps: int
    logging_steps: int
    sample_every: int  # show a table of sample completions every N steps
    n_probe: int  # problems whose sampled groups notebook 04 inspects before training
    # evaluation
    eval_max_new_tokens: int
    eval_batch_size: int
    # notebook 02 / 03 demos
    brute_force_max_n: int
    backtracking_demo_max_events: int
    backtracking_timeout_s: float


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", n_generate=60, n_train=16, n_eval=2, model="smollm2-135m",
        n_sft=2, sft_epochs=1, sft_batch_size=2, sft_learning_rate=5e-5,
        grpo_steps=2, num_generations=2, per_device_batch=2, max_completion_length=24,
        grpo_learning_rate=1e-4, lora_r=8, save_steps=1, logging_steps=1, sample_every=1, n_probe=1,
        eval_max_new_tokens=24, eval_batch_size=4,
        brute_force_max_n=12, backtracking_demo_max_events=8, backtracking_timeout_s=1.0,
    ),
    "cpu": Profile(
        name="cpu", n_generate=500, n_train=160, n_eval=12, model="smollm2-135m",
        n_sft=48, sft_epochs=1, sft_batch_size=8, sft_learning_rate=5e-5,
        grpo_steps=6, num_generations=4, per_device_batch=4, max_completion_length=160,
        grpo_learning_rate=1e-4, lora_r=16, save_steps=3, logging_steps=1, sample_every=2, n_probe=4,
        eval_max_new_tokens=320, eval_batch_size=12,
        brute_force_max_n=16, backtracking_demo_max_events=11, backtracking_timeout_s=3.0,
    ),
    "gpu": Profile(
        name="gpu", n_generate=2000, n_train=500, n_eval=100, model="auto",
        n_sft=500, sft_epochs=3, sft_batch_size=16, sft_learning_rate=5e-5,
        grpo_steps=300, num_generations=8, per_device_batch=64, max_completion_length=512,
        grpo_learning_rate=1e-4, lora_r=32, save_steps=25, logging_steps=1, sample_every=10, n_probe=16,
        eval_max_new_tokens=768, eval_batch_size=100,
        brute_force_max_n=18, backtracking_demo_max_events=13, backtracking_timeout_s=10.0,
    ),
}


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def default_profile_name() -> str:
    return "gpu" if has_cuda() else "cpu"


def parse_overrides(text: str | None) -> dict:
    """``"grpo_steps=20, n_eval=50"`` -> ``{"grpo_steps": 20, "n_eval": 50}``, typed like the profile's fields."""
    types = {f.name: f.type for f in fields(Profile)}
    out: dict = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in types or key == "name":
            raise ValueError(f"bad ${OVERRIDES_ENV} item {item!r}: write field=value with a field of "
                             f"{sorted(k for k in types if k != 'name')}")
        kind = {"int": int, "float": float, "str": str}[types[key]]
        try:
            out[key] = kind(float(value)) if kind is int else kind(value)
        except ValueError:
            raise ValueError(f"bad ${OVERRIDES_ENV} value for {key}: {value!r} is not a {types[key]}") from None
    return out


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named (or ``$COURSE_PROFILE``, or the hardware default), with overrides.

    ``$COURSE_OVERRIDES`` applies first, keyword overrides after it."""
    name = (name or os.environ.get(PROFILE_ENV) or default_profile_name()).strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from ${PROFILE_ENV}?); choose one of {sorted(PROFILES)}"
        )
    overrides = {**parse_overrides(os.environ.get(OVERRIDES_ENV)), **overrides}
    profile = PROFILES[name]
    return replace(profile, **overrides) if overrides else profile


def describe(profile: Profile) -> str:
    return "\n".join(f"{k:>28}: {v}" for k, v in asdict(profile).items())
