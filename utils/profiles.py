"""Run profiles: how big every notebook's run is. Chosen by ``COURSE_PROFILE``.

* ``smoke`` - CI: every notebook in a couple of minutes on 2 CPU cores. Proves the
  cells run; learns nothing.
* ``cpu``   - a real but short course run on a laptop-class CPU (whole course < 30 min).
* ``gpu``   - the full version on a CUDA GPU.

Without ``COURSE_PROFILE`` the default is ``gpu`` when CUDA is visible, else ``cpu``.

The knobs are grouped by the notebook that uses them: ``P.data`` (01, and how many problems
the others use), ``P.demos`` (02, 03), ``P.warm_start`` and ``P.grpo`` (training), ``P.eval``
(evaluation). ``COURSE_OVERRIDES="grpo.steps=50,data.n_eval=20"`` changes single knobs
without editing code. Every knob has a valid range (:data:`RANGES`), checked whenever a profile
is made: a value outside it stops with one line before anything loads.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .llm.models import MODELS  # light modules (no torch), and neither imports this one
from .task.datagen import TEST_SIZE, TRAINING_STYLES, GeneratorConfig

PROFILE_ENV = "COURSE_PROFILE"
#: The public recipe's seed. Another ``seed`` repeats a run with other random draws (same problems), which is
#: how a gain is checked across seeds; records written before the knob existed were trained with this one.
DEFAULT_SEED = 3407
OVERRIDES_ENV = "COURSE_OVERRIDES"  # e.g. "grpo.steps=20,data.n_eval=50"


@dataclass(frozen=True)
class DataSizes:
    n_generate: int  # problems generated live in notebook 01
    # GRPO's problems: the 500 committed ones (those with at most max_events), then n_train - 500 generated ones
    n_train: int
    n_eval: int  # test problems evaluated (<= 100)
    max_events: int = 8  # only problems with at most this many events (the cpu profile keeps them short)
    # the names of the generated training problems, as warm_start.style ("wide": commas, colons, quotes inside)
    train_style: str = "default"


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
    trace: str = "short"  # the reasoning before each answer: one of TRACES (utils.train.warmstart.dp_reasoning)
    # "mixed": half of the generated problems with made-up names, any-minute times; "wide": the same with commas,
    # colons and quotes inside names (what lifted the held-out other-style set: warm_scan_wide, README)
    style: str = "default"


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
    precision: str = "auto"  # "auto": bf16 (fp16) on a GPU, fp32 on a CPU; "fp32": the policy in fp32 everywhere
    # answers per forward/backward pass of the loss, accumulated into one step (a divisor of per_device_batch);
    # 0: the model's own choice (utils.train.config.loss_micro_batch): what the GPU holds, 8 for the Qwen models
    micro_batch: int = 0


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
    threads: int = 0  # torch threads on a machine without CUDA; 0: one per core (torch_threads())
    seed: int = DEFAULT_SEED  # the warm start's and GRPO's randomness (sampling, LoRA init, data order)

    def __post_init__(self) -> None:
        check_profile(self)  # every way of making a profile (overrides, replace) is checked


def _number(x: float) -> str:
    """``4294967295`` in full, ``1e-05`` short: a bound as a learner would type it."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Range:
    """The valid values of a knob: numbers from ``low`` to ``high`` (``None``: no bound; with
    ``above`` the low bound itself is excluded; always finite), or one of ``choices``."""

    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()

    def holds(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if not math.isfinite(value):
            return False
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        return not too_low and (self.high is None or value <= self.high)

    def text(self, kind: type) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = "an integer" if kind is int else "a finite number"
        if self.low is not None and self.high is not None and not self.above:
            return f"{what} from {_number(self.low)} to {_number(self.high)}"
        bounds = [f"{'>' if self.above else '>='} {_number(self.low)}"] if self.low is not None else []
        bounds += [f"<= {_number(self.high)}"] if self.high is not None else []
        return f"{what} {' and '.join(bounds)}".strip()


BRUTE_FORCE_LIMIT = 20  # utils.task.brute_force_schedule's own default limit (2^20 subsets; each event doubles it)
#: The row of experiments/ablation.json whose settings the gpu profile's defaults are (issue 21.5: a learner's GPU
#: run is the measured one; tests/test_ablation_rows.py fails when the two drift apart).
GPU_RECIPE_ROW = "wide4000_grpo_maximal_scan"
PRECISIONS = ("auto", "fp32")  # GRPO.precision: fp32 makes TRL's loss compute like the fp32 rollout copy
# the warm start's reasoning traces (utils.train.warmstart.dp_reasoning)
TRACES = ("short", "full", "timeline", "scan", "scan_worked")

#: The valid range of every knob (``tests/test_settings_checks.py`` checks that none is missing).
RANGES: dict[str, Range] = {
    "threads": Range(0),
    "seed": Range(0, 2**32 - 1),  # numpy's seeds are 32-bit (transformers' set_seed seeds numpy too)
    "data.n_generate": Range(1),
    "data.n_train": Range(1),  # beyond the 500 committed problems, generated ones (utils.task.training_problems)
    "data.train_style": Range(choices=TRAINING_STYLES),
    "data.n_eval": Range(1, TEST_SIZE),
    "data.max_events": Range(GeneratorConfig.min_events),  # below it no committed problem is left
    "demos.brute_force_max_n": Range(2, BRUTE_FORCE_LIMIT),
    "demos.backtracking_demo_max_events": Range(2),
    "demos.backtracking_timeout_s": Range(0, above=True),
    "warm_start.n_problems": Range(1),
    "warm_start.epochs": Range(0, above=True),
    "warm_start.batch_size": Range(1),
    "warm_start.learning_rate": Range(0, 1, above=True),
    "warm_start.trace": Range(choices=TRACES),
    "warm_start.style": Range(choices=TRAINING_STYLES),
    "grpo.steps": Range(1),
    "grpo.num_generations": Range(2),  # a group of one has nothing to be compared with
    "grpo.per_device_batch": Range(2),  # and a multiple of num_generations: check_profile
    "grpo.max_completion_length": Range(1),
    "grpo.learning_rate": Range(0, 1, above=True),
    "grpo.lora_r": Range(1),
    "grpo.save_steps": Range(1),
    "grpo.logging_steps": Range(1),
    "grpo.sample_every": Range(1),
    "grpo.n_probe": Range(1),
    "grpo.precision": Range(choices=PRECISIONS),
    "grpo.micro_batch": Range(0),  # and a divisor of per_device_batch: check_profile
    "eval.max_new_tokens": Range(1),
    "eval.batch_size": Range(1),
}


def _kind(owner: Any, name: str) -> type:
    """The type a knob is declared with (``int``, ``float`` or ``str``)."""
    return {"int": int, "float": float, "str": str}[next(f.type for f in fields(owner) if f.name == name)]


def out_of_range(key: str, value: Any, kind: type) -> str:
    """``"grpo.steps=-1 is out of range: valid is an integer >= 1"``."""
    return f"{key}={value!r} is out of range: valid is {RANGES[key].text(kind)}"


def check_profile(profile: Profile) -> None:
    """Every knob inside its valid range (:data:`RANGES`), else ValueError with one line naming the
    knob, the value and the range. Runs whenever a profile is made, before anything loads."""
    if profile.model not in ("auto", *MODELS):
        raise ValueError(f"unknown model {profile.model!r} (knob model): valid is 'auto' or one of {sorted(MODELS)}")
    for key in RANGES:
        group, _, name = key.rpartition(".")
        owner = getattr(profile, group) if group else profile
        value, kind = getattr(owner, name), _kind(owner, name)
        typed = isinstance(value, str) if kind is str else isinstance(value, int if kind is int else (int, float))
        if not typed or isinstance(value, bool):
            raise ValueError(f"{key}={value!r} is not {'an integer' if kind is int else 'a ' + kind.__name__}")
        if not RANGES[key].holds(value):
            raise ValueError(out_of_range(key, value, kind))
    grpo = profile.grpo
    if grpo.per_device_batch % grpo.num_generations:
        raise ValueError(
            f"grpo.per_device_batch={grpo.per_device_batch} is out of range: valid is a multiple of "
            f"grpo.num_generations={grpo.num_generations} (every step samples whole groups)"
        )
    if grpo.micro_batch and grpo.per_device_batch % grpo.micro_batch:
        raise ValueError(
            f"grpo.micro_batch={grpo.micro_batch} is out of range: valid is 0 (the model's choice) or a divisor of "
            f"grpo.per_device_batch={grpo.per_device_batch} (the passes add up to one step's answers)"
        )


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
    # A laptop-class CPU (measured on 2 cores): a GRPO step of 8 answers takes 40-50 s, so a run is
    # 16 steps. Problems are kept small (<= 5 events: shorter prompts and answers). The 48-problem warm
    # start writes the format in about a third of its answers and a valid schedule in a few, so groups
    # differ; with 16 problems every group scored alike and 16 steps learned nothing. 40 held-out problems
    # let a rise of valid answers show beyond noise: 1 -> 10, p = 0.012 (results/cpu_recipe_2026-12-06.json).
    "cpu": Profile(
        name="cpu",
        model="smollm2-135m",
        data=DataSizes(n_generate=500, n_train=500, n_eval=40, max_events=5),
        demos=Demos(brute_force_max_n=16, backtracking_demo_max_events=11, backtracking_timeout_s=3.0),
        warm_start=WarmStart(n_problems=48, epochs=1, batch_size=8, learning_rate=2e-4),
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
        threads=0,  # one per core: 1.7-1.8x faster than 1 thread on an idle 2-core machine (torch_threads)
    ),
    "gpu": Profile(
        name="gpu",
        model="auto",
        # GRPO draws from 2,400 problems (150 steps x 8 prompts: 1,200 of them): the 500 committed ones, then
        # generated ones with wide names (as the warm start's)
        data=DataSizes(n_generate=2000, n_train=2400, n_eval=100, train_style="wide"),
        demos=Demos(brute_force_max_n=18, backtracking_demo_max_events=13, backtracking_timeout_s=10.0),
        # The recipe of results/ablation/wide4000_grpo_maximal_scan.json (GPU_RECIPE_ROW; its rewards are the
        # course's default set, format + maximal_score_reward; tests/test_ablation_rows.py holds the two together):
        # the scan trace's warm start (67 valid test answers against the full trace's 48: warm_scan) on 4,000
        # problems, part of them with commas, colons and quotes inside names ("wide": what lifted the other-style
        # set, warm_scan_wide), 150 GRPO steps (300 did no better on the full trace: strong_grpo_maximal_300),
        # 768 new tokens (the row's answers: 410 on average; in 6 of its 150 steps one of 64 reached the budget).
        warm_start=WarmStart(n_problems=4000, epochs=1, batch_size=16, learning_rate=5e-5, trace="scan", style="wide"),
        grpo=GRPO(
            steps=150,
            num_generations=8,
            per_device_batch=64,
            max_completion_length=768,
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


def gpu_memory_gib() -> float | None:
    """GPU memory this process may use, in GiB: the card's total times torch's per-process fraction (a run
    capped to a smaller card, ``scripts/measure_memory.py --card`` or ``scripts/ablation.py --memory-fraction``,
    gets the cap). ``None`` without CUDA."""
    if not has_cuda():
        return None
    import torch

    device = torch.cuda.current_device()
    total = torch.cuda.get_device_properties(device).total_memory
    return total * torch.cuda.get_per_process_memory_fraction(device) / 2**30


def default_profile_name() -> str:
    return "gpu" if has_cuda() else "cpu"


_torch_default_threads: int | None = None  # torch's own choice, read before we first change it


def profile_warning(profile: Profile, cuda: bool | None = None) -> str | None:
    """One line when the profile was made for hardware this machine lacks (the gpu profile without CUDA: hours of
    CPU time); None when it fits.

    >>> profile_warning(get_profile("gpu"), cuda=False)[:62]
    'Warning: the gpu profile on a machine without CUDA: its 4,000-'
    >>> profile_warning(get_profile("cpu"), cuda=False) is None, profile_warning(get_profile("gpu"), cuda=True) is None
    (True, True)
    """
    if profile.name != "gpu" or (has_cuda() if cuda is None else cuda):
        return None
    return (
        f"Warning: the gpu profile on a machine without CUDA: its {profile.warm_start.n_problems:,}-problem warm start "
        f"and {profile.grpo.steps} GRPO steps of {profile.grpo.per_device_batch} answers would take many hours here; "
        "COURSE_PROFILE=cpu is the one made for a CPU."
    )


def torch_threads(profile: Profile) -> int:
    """The thread count torch computes with on a machine without CUDA: the profile's ``threads``,
    or for 0 one per core this process may use, at most torch's own default.

    Why (measured on an idle 2-core machine, 2026-12-06: the embedded model, fp32, a GRPO step of
    8 answers): 2 threads generated the 192-token answers in 26.2 s against 44.8 s with 1, and ran
    forward + backward in 26.7 s against 48.8 s, so every core is used. torch's default is one per
    physical core (hyperthreads share the arithmetic units), but it does not see that a container or
    ``taskset`` may allow this process fewer cores; hence the minimum. More threads than free cores
    oversubscribe: with another job running, 2 threads generated 26x slower than 1 (37.5 s against
    1.4 s), so on a machine shared with other work set ``COURSE_OVERRIDES="threads=1"``."""
    global _torch_default_threads
    if profile.threads:
        return profile.threads
    import torch

    if _torch_default_threads is None:
        _torch_default_threads = torch.get_num_threads()  # OMP_NUM_THREADS, when set, is in it
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(allowed, _torch_default_threads))


def use_torch_threads(profile: Profile) -> str | None:
    """Set torch's thread count for ``profile`` on a machine without CUDA (the one place that sets
    it: every notebook's first cell and the training script call this); a line saying so, or None
    on a GPU machine, where torch's default stays."""
    if has_cuda():
        return None
    import torch

    threads = torch_threads(profile)
    torch.set_num_threads(threads)
    how = "the profile's threads" if profile.threads else "one per core"
    return f'{threads} torch thread{"s" * (threads != 1)} ({how}; COURSE_OVERRIDES="threads=N" changes it)'


def knob_names(profile: Profile | None = None) -> list[str]:
    """Every knob an override can set: ``model``, ``threads``, ``seed`` and ``group.field`` names."""
    profile = profile or PROFILES["smoke"]
    names = ["model", "threads", "seed"]
    for group in GROUPS:
        names += [f"{group}.{f.name}" for f in fields(getattr(profile, group))]
    return names


def _typed(key: str, value: Any, owner: Any) -> Any:
    """``value`` converted to the type the knob is declared with (``"20"`` -> 20 for an int)."""
    kind = _kind(owner, key.rpartition(".")[2])
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    what = {int: "an integer", float: "a number", str: "a string"}[kind]
    bad = ValueError(f"bad ${OVERRIDES_ENV} value for {key}: {value!r} is not {what}")
    try:
        number = float(value) if kind is int else None
        typed = kind(value) if kind is not int else None
    except (TypeError, ValueError):
        raise bad from None
    if number is None:
        return typed
    if not math.isfinite(number):  # "1e400" is inf: int() of it would raise OverflowError
        raise ValueError(out_of_range(key, value, int))
    if number != int(number):
        raise bad
    return int(number)


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
    lines = [f"profile {profile.name!r}, model {profile.model!r}, threads {profile.threads}, seed {profile.seed}"]
    for group in GROUPS:
        lines.append(f"  {group}:")
        lines += [f"    {k:<30} {v}" for k, v in dataclasses.asdict(getattr(profile, group)).items()]
    return "\n".join(lines)
