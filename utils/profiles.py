"""Run profiles: how big every notebook's run is. Chosen by ``COURSE_PROFILE``.

* ``smoke`` - CI: every notebook in a couple of minutes on 2 CPU cores. Proves the
  cells run; learns nothing.
* ``cpu``   - a real but short course run on a laptop-class CPU (whole course < 30 min).
* ``gpu``   - the full version on a CUDA GPU.

Without ``COURSE_PROFILE`` the default is ``gpu`` when CUDA is visible, else ``cpu``.

The knobs are grouped by the notebook that uses them: ``P.data`` (01, and how many problems
the others use), ``P.demos`` (02, 03), ``P.warm_start`` and ``P.grpo`` (training), ``P.eval``
(evaluation). ``COURSE_OVERRIDES="grpo.steps=50,data.n_eval=20"`` changes single knobs
without editing code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

PROFILE_ENV = "COURSE_PROFILE"
OVERRIDES_ENV = "COURSE_OVERRIDES"  # e.g. "grpo.steps=20,data.n_eval=50"


@dataclass(frozen=True)
class DataSizes:
    n_generate: int  # problems generated live in notebook 01
    n_train: int  # training problems the training notebook uses (<= 500)
    n_eval: int  # test problems evaluated (<= 100)
    max_events: int = 8  # only problems with at most this many events (the cpu profile keeps them short)


@dataclass(frozen=True)
class Demos:
    brute_force_max_n: int  # notebook 02: largest problem the brute force is timed on
    backtracking_demo_max_events: int  # notebook 03: largest cut-off answer fed to the reference regex
    backtracking_timeout_s: float  # ... and how long it may take before it is killed


@dataclass(frozen=True)
class WarmStart:
    n_problems: int  # problems for the supervised warm start: the 500 committed ones, then generated ones
    epochs: float
    batch_size: int
    learning_rate: float
    trace: str = "short"  # the reasoning before each answer: "short" or "full" (utils.train.warmstart)
    style: str = "default"  # "mixed": half of the generated problems with made-up names, any-minute times


@dataclass(frozen=True)
class GRPO:
    steps: int  # optimizer steps
    num_generations: int  # group size: answers sampled per prompt
    per_device_batch: int  # completions per device step (a multiple of num_generations)
    max_completion_length: int  # new-token budget of an answer
    learning_rate: float
    lora_r: int
    save_steps: int
    logging_steps: int
    sample_every: int  # show a table of sample completions every N steps
    n_probe: int  # problems whose sampled groups are inspected before training


@dataclass(frozen=True)
class Evaluation:
    max_new_tokens: int
    batch_size: int


@dataclass(frozen=True)
class Profile:
    name: str
    model: str  # key of utils.llm.MODELS, or "auto" ($COURSE_MODEL if set, else the embedded model)
    data: DataSizes
    demos: Demos
    warm_start: WarmStart
    grpo: GRPO
    eval: Evaluation


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        model="smollm2-135m",
        data=DataSizes(n_generate=60, n_train=16, n_eval=2),
        demos=Demos(brute_force_max_n=12, backtracking_demo_max_events=8, backtracking_timeout_s=1.0),
        warm_start=WarmStart(n_problems=2, epochs=1, batch_size=2, learning_rate=5e-5),
        grpo=GRPO(
            steps=2,
            num_generations=2,
            per_device_batch=2,
            max_completion_length=24,
            learning_rate=1e-4,
            lora_r=8,
            save_steps=1,
            logging_steps=1,
            sample_every=1,
            n_probe=1,
        ),
        eval=Evaluation(max_new_tokens=24, batch_size=4),
    ),
    # A laptop-class CPU (measured on 2 cores): a GRPO step of 8 answers takes about 50 s, so a run is
    # 16 steps. Problems are kept small (<= 5 events: shorter prompts and answers) and the warm start
    # short (16 problems), so the model writes the answer format only now and then: that is what 16
    # steps of GRPO can visibly improve. Notebooks 05 and 06 measure and say what changed.
    "cpu": Profile(
        name="cpu",
        model="smollm2-135m",
        data=DataSizes(n_generate=500, n_train=500, n_eval=24, max_events=5),
        demos=Demos(brute_force_max_n=16, backtracking_demo_max_events=11, backtracking_timeout_s=3.0),
        warm_start=WarmStart(n_problems=16, epochs=1, batch_size=8, learning_rate=2e-4),
        grpo=GRPO(
            steps=16,
            num_generations=4,
            per_device_batch=8,
            max_completion_length=192,
            learning_rate=5e-4,
            lora_r=16,
            save_steps=8,
            logging_steps=1,
            sample_every=4,
            n_probe=2,
        ),
        eval=Evaluation(max_new_tokens=256, batch_size=24),
    ),
    "gpu": Profile(
        name="gpu",
        model="auto",
        data=DataSizes(n_generate=2000, n_train=500, n_eval=100),
        demos=Demos(brute_force_max_n=18, backtracking_demo_max_events=13, backtracking_timeout_s=10.0),
        warm_start=WarmStart(n_problems=4000, epochs=1, batch_size=16, learning_rate=5e-5, trace="full"),
        grpo=GRPO(
            steps=300,
            num_generations=8,
            per_device_batch=64,
            max_completion_length=512,
            learning_rate=1e-4,
            lora_r=32,
            save_steps=25,
            logging_steps=1,
            sample_every=10,
            n_probe=16,
        ),
        eval=Evaluation(max_new_tokens=768, batch_size=100),
    ),
}

GROUPS = ("data", "demos", "warm_start", "grpo", "eval")  # the Profile fields that hold knobs


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def default_profile_name() -> str:
    return "gpu" if has_cuda() else "cpu"


def knob_names(profile: Profile | None = None) -> list[str]:
    """Every knob an override can set: ``model`` and ``group.field`` names."""
    profile = profile or PROFILES["smoke"]
    names = ["model"]
    for group in GROUPS:
        names += [f"{group}.{f.name}" for f in fields(getattr(profile, group))]
    return names


def _typed(key: str, value: Any, owner: Any) -> Any:
    """``value`` converted to the type the knob is declared with (``"20"`` -> 20 for an int)."""
    name = key.rpartition(".")[2]
    kind = {"int": int, "float": float, "str": str}[next(f.type for f in fields(owner) if f.name == name)]
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    try:
        if kind is int:
            number = float(value)
            if number != int(number):
                raise ValueError
            return int(number)
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"bad ${OVERRIDES_ENV} value for {key}: {value!r} is not a {kind.__name__}") from None


def parse_overrides(text: str | None) -> dict[str, str]:
    """``"grpo.steps=20, data.n_eval=50"`` -> ``{"grpo.steps": "20", "data.n_eval": "50"}`` (checked names)."""
    valid = knob_names()
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in valid:
            raise ValueError(f"bad ${OVERRIDES_ENV} item {item!r}: write knob=value with a knob of {valid}")
        out[key] = value
    return out


def with_overrides(profile: Profile, overrides: Mapping[str, Any]) -> Profile:
    """A copy of ``profile`` with ``{"grpo.steps": 20, "model": "qwen2.5-0.5b"}`` applied (values typed)."""
    valid = knob_names(profile)
    by_group: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in valid:
            raise ValueError(f"unknown knob {key!r}; choose from {valid}")
        group, _, name = key.rpartition(".")
        if group:
            by_group.setdefault(group, {})[name] = _typed(key, value, getattr(profile, group))
        else:
            top[name] = _typed(key, value, profile)
    for group, changes in by_group.items():
        top[group] = replace(getattr(profile, group), **changes)
    return replace(profile, **top) if top else profile


def get_profile(name: str | None = None, overrides: Mapping[str, Any] | None = None) -> Profile:
    """The profile named (or ``$COURSE_PROFILE``, or the hardware default), with overrides.

    ``$COURSE_OVERRIDES`` applies first, then ``overrides`` (``{"grpo.steps": 2}``)."""
    name = (name or os.environ.get(PROFILE_ENV) or default_profile_name()).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (from ${PROFILE_ENV}?); choose one of {sorted(PROFILES)}")
    merged = {**parse_overrides(os.environ.get(OVERRIDES_ENV)), **dict(overrides or {})}
    return with_overrides(PROFILES[name], merged) if merged else PROFILES[name]


def describe(profile: Profile) -> str:
    """The profile as an indented list, one group of knobs after another."""
    lines = [f"profile {profile.name!r}, model {profile.model!r}"]
    for group in GROUPS:
        lines.append(f"  {group}:")
        lines += [f"    {k:<30} {v}" for k, v in dataclasses.asdict(getattr(profile, group)).items()]
    return "\n".join(lines)
