"""The course's benchmark suite in one command: a table of figures, each against a baseline
measured in the same run where there is one.

    python benchmarks/run_all.py --quick              # CI-sized: a few minutes on 2 CPUs
    python benchmarks/run_all.py                      # sized for this machine (GPU if there is one)
    python benchmarks/run_all.py --full --json outputs/bench_full.json   # the GPU-sized figures
    python benchmarks/run_all.py --only rewards,evaluation
    python benchmarks/run_all.py --skip notebooks

Sections (the measuring code lives in the bench_*.py scripts beside this one):

* generation - tokens/s of plain `generate` vs the static (compiled) KV cache;
* grpo       - seconds per TRL GRPO step (LoRA) with either generation path;
* rewards    - completions/s of our rewards vs the reference's regex rewards, on normal and
               on truncated back-to-back completions (the reference runs in a killed-on-timeout child);
* evaluation - completions/s of our evaluator vs the reference's regex evaluation, same idea;
* sft        - the SFT warm-start (utils.train.run_sft, embedded model, smoke profile);
* notebooks  - wall seconds per notebook, executed in the smoke profile into a temp folder.

Every section fails soft: an error is one row of the table and the other sections still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]  # `utils` and the bench_* scripts, from any cwd

# Sizes per level. quick: CI on 2 CPU cores. default: what this machine can take (GPU sizes
# on a GPU, small ones on CPU). full: the GPU figures of results/README.md (64 prompts x 512).
GPU_GEN = dict(batch=64, prompt=320, new=512, repeats=2)
GPU_GRPO = dict(batch=64, gens=8, new=512, steps=2, prompt_words=300)
SIZES: dict[str, dict] = {
    "quick": dict(
        gen=dict(batch=4, prompt=64, new=16, repeats=1),
        grpo=dict(batch=2, gens=2, new=8, steps=1, prompt_words=32),
        reward_rows=20,
        reward_counts=[4, 8, 10, 12],
        min_time=0.2,
        reward_timeout=1.5,
        eval_quick=True,
        eval_timeout=2.0,
        sft_rows=4,
    ),
    "default": dict(
        gen=None,
        grpo=None,  # None: GPU_* on a GPU, else the CPU sizes below
        reward_rows=100,
        reward_counts=[4, 8, 10, 12, 14, 16, 20],
        min_time=1.0,
        reward_timeout=10.0,
        eval_quick=False,
        eval_timeout=10.0,
        sft_rows=16,
    ),
    "full": dict(
        gen=GPU_GEN,
        grpo=GPU_GRPO,
        reward_rows=100,
        reward_counts=[4, 8, 10, 12, 14, 16, 20, 40, 1000],
        min_time=1.0,
        reward_timeout=10.0,
        eval_quick=False,
        eval_timeout=60.0,
        sft_rows=64,
    ),
}
CPU_GEN = dict(batch=4, prompt=64, new=32, repeats=2)
CPU_GRPO = dict(batch=4, gens=2, new=16, steps=1, prompt_words=300)
# A notebook needs the model if it calls one of these (notebooks 05/06 do; 01-03 do not).
NEEDS_MODEL = re.compile(r"\b(embedded_checkpoint|model_source|load_model|run_sft|train_grpo)\b")


@dataclass
class Figure:
    section: str
    figure: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    ratio: float | None = None  # speed-up over the baseline (>1: ours is faster)
    bound: bool = False  # baseline timed out: it is an upper bound, the ratio a lower bound
    note: str = ""


class Skip(Exception):
    """A section (or notebook) that cannot run here, with the reason shown in the table."""


class Suite:
    def __init__(self, level: str, json_path: Path | None):
        self.level, self.json_path = level, json_path
        self.figures: list[Figure] = []
        self.sections: dict[str, dict] = {}
        self.meta = environment()

    def add(
        self,
        section: str,
        figure: str,
        value: float | None,
        unit: str = "",
        baseline: float | None = None,
        higher_is_better: bool = True,
        bound: bool = False,
        note: str = "",
    ) -> None:
        ratio = None
        if value and baseline:
            ratio = value / baseline if higher_is_better else baseline / value
        self.figures.append(Figure(section, figure, value, unit, baseline, ratio, bound, note))

    def run(self, name: str, fn: Callable[[Suite], None]) -> None:
        print(f"\n===== {name} =====", flush=True)
        t0, status = time.perf_counter(), "ok"
        try:
            fn(self)
        except Skip as exc:
            status = "skipped"
            self.add(name, "(skipped)", None, note=str(exc))
        except Exception as exc:  # noqa: BLE001 - fail soft: report it, run the next section
            status = "error"
            traceback.print_exc()
            self.add(name, "(error)", None, note=short(exc))
        finally:
            gc.collect()  # models from one section must not crowd the next
        self.sections[name] = {"status": status, "seconds": round(time.perf_counter() - t0, 1)}
        self.write_json()  # after every section: a run cut short still leaves its figures

    def write_json(self) -> None:
        if not self.json_path:
            return
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(
            json.dumps(
                {
                    **self.meta,
                    "level": self.level,
                    "sections": self.sections,
                    "figures": [asdict(f) for f in self.figures],
                },
                indent=1,
            )
        )


def short(exc: BaseException) -> str:
    """One line for the table; notebook errors carry the kernel's exception name and value."""
    if hasattr(exc, "ename"):
        return f"{exc.ename}: {str(getattr(exc, 'evalue', ''))[:160]}"
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[-1][:160]}"


def environment() -> dict:
    """Hardware, versions, command line and date: what a figure needs to be compared later."""
    import torch

    versions = {}
    for pkg in ("torch", "transformers", "trl", "peft", "datasets", "accelerate"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hardware": {
            "gpu": gpu,
            "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "versions": versions,
    }


def need_model() -> Path:
    """The embedded model's checkpoint (converted once, cached); Skip when its package is missing."""
    from utils.llm.models import embedded_checkpoint

    try:
        return embedded_checkpoint()
    except (FileNotFoundError, ImportError) as exc:
        raise Skip(f"embedded model unavailable: {exc}") from None


def gpu() -> bool:
    import torch

    return torch.cuda.is_available()


# ------------------------------------------------------------------------------ sections
def generation(s: Suite) -> None:
    import torch
    from bench_generation import bench_generate, smollm2_shape
    from transformers import LlamaForCausalLM

    g = SIZES[s.level]["gen"] or (GPU_GEN if gpu() else CPU_GEN)
    torch.manual_seed(0)
    dev, dtype = ("cuda", torch.bfloat16) if gpu() else ("cpu", torch.float32)
    model = LlamaForCausalLM(smollm2_shape()).to(dev, dtype).eval()
    tokens = g["batch"] * g["new"]
    what = f"{g['batch']} x {g['new']} new tokens, {s.meta['hardware']['gpu'] or 'CPU'}"
    plain = bench_generate(model, g["batch"], g["prompt"], g["new"], static=False, repeats=g["repeats"])
    static = bench_generate(model, g["batch"], g["prompt"], g["new"], static=True, repeats=g["repeats"])
    s.add("generation", "generate, dynamic cache (plain)", tokens / plain, "tok/s", note=what)
    s.add(
        "generation",
        "generate, static cache (compiled)",
        tokens / static,
        "tok/s",
        tokens / plain,
        note="baseline: plain generate",
    )


def grpo(s: Suite) -> None:
    import torch
    from bench_generation import bench_grpo, grpo_model_dir, smollm2_shape
    from transformers import LlamaForCausalLM

    g = SIZES[s.level]["grpo"] or (GPU_GRPO if gpu() else CPU_GRPO)
    torch.manual_seed(0)
    d = grpo_model_dir(LlamaForCausalLM(smollm2_shape()))  # random weights; TRL loads from disk
    try:
        args = dict(batch=g["batch"], gens=g["gens"], new=g["new"], steps=g["steps"], prompt_words=g["prompt_words"])
        plain = bench_grpo(d, static=False, **args)
        static = bench_grpo(d, static=True, **args)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    what = f"{g['batch']} completions x {g['new']} tokens, mean of {g['steps']} after a warm-up step"
    s.add("grpo", "GRPO step, plain generate", plain, "s/step", note=what)
    s.add(
        "grpo",
        "GRPO step, static cache",
        static,
        "s/step",
        plain,
        higher_is_better=False,
        note="baseline: plain generate",
    )


def rewards(s: Suite) -> None:
    from bench_rewards import normal_batch, per_second, raw_in_subprocess

    from utils.rewards import SEED_REWARDS, default_reward_funcs
    from utils.rewards.gallery import back_to_back_completion
    from utils.rewards.reference import time_regex_in_subprocess

    z = SIZES[s.level]
    ours = {f.__name__.removesuffix("_reward"): f for f in default_reward_funcs(SEED_REWARDS)}
    texts, cols = normal_batch(z["reward_rows"])
    for name, fn in ours.items():  # format, sorted_events, score
        limit = z["reward_timeout"] * 4  # a whole batch, not one completion
        raw = raw_in_subprocess(z["reward_rows"], "raw_" + name.removesuffix("_events"), limit)
        base = raw["n"] / raw["seconds"] if raw else len(texts) / limit
        s.add(
            "rewards",
            f"{name}, normal ({len(texts)} gallery answers)",
            per_second(fn, texts, cols, z["min_time"]),
            "compl/s",
            base,
            bound=raw is None,
            note="baseline: reference regex",
        )

    # Cut before </schedule>, events back to back: the reference format regex backtracks.
    blank = {"events": [[]], "priority_events": [[]], "optimal_score": [1]}
    timeout, gave_up = z["reward_timeout"], False
    for n in z["reward_counts"]:
        text = [back_to_back_completion(n)]
        secs = None if gave_up else time_regex_in_subprocess(text[0], timeout)  # once too slow, always too slow
        gave_up = secs is None
        s.add(
            "rewards",
            f"format, truncated, {n} events",
            per_second(ours["format"], text, blank, z["min_time"] / 4),
            "compl/s",
            1 / max(secs, 1e-9) if secs is not None else 1 / timeout,
            bound=secs is None,
            note=f"reference regex killed after {timeout:g} s" if secs is None else "baseline: reference regex",
        )

    def all_three(completions, **cols):
        return [f(completions=completions, **cols) for f in ours.values()]

    s.add(
        "rewards",
        f"all three rewards, truncated, {n} events",
        per_second(all_three, text, blank, z["min_time"] / 4),
        "compl/s",
        note="no baseline: the reference stalls on the format check",
    )


def evaluation(s: Suite) -> None:
    from bench_evaluation import build_sets, time_ours, time_regex

    z = SIZES[s.level]
    timeout = z["eval_timeout"]
    for name, cases in build_sets(z["eval_quick"]).items():
        ours = time_ours(cases, min_seconds=z["min_time"])
        ref = time_regex(cases, timeout)
        if ref["timed_out"]:
            note = f"reference regex killed after {timeout:g} s"
        else:
            note = "categories agree" if ours["categories"] == ref["categories"] else "CATEGORIES DISAGREE"
        s.add(
            "evaluation",
            f"evaluate, {name} ({len(cases)} completions)",
            ours["per_s"],
            "compl/s",
            ref["per_s"] or len(cases) / timeout,
            bound=ref["timed_out"],
            note=note,
        )


def sft(s: Suite) -> None:
    from utils.profiles import get_profile
    from utils.task.data import load_split
    from utils.train import run_sft

    base = need_model()
    n = SIZES[s.level]["sft_rows"]
    profile = get_profile("smoke")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_sft(str(base), load_split("train", limit=n), profile, Path(tmp))
        wall = time.perf_counter() - t0
        summary = json.loads((Path(tmp) / "sft_log_history.json").read_text())[-1]  # Trainer's final entry
    steps = summary.get("step", 0)
    s.add("sft", f"warm-start, {n} rows, {steps} steps (wall, with model load)", wall, "s")
    s.add(
        "sft",
        "warm-start training steps/s",
        summary.get("train_steps_per_second"),
        "steps/s",
        note=f"batch {profile.warm_start.batch_size}, {summary.get('train_runtime', 0):.1f} s in trainer.train",
    )


def notebooks(s: Suite) -> None:
    import nbformat
    from nbclient import NotebookClient

    folder = ROOT / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))  # 05/06 appear as they are written
    if not paths:
        raise Skip("no notebooks found")
    with tempfile.TemporaryDirectory() as out:
        # Like `make test`: smoke profile, kernel cwd = notebooks/, but outputs go to a temp folder.
        env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_OUTPUT_DIR": out}
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            # nbmake does not run cells tagged skip-execution; neither do we.
            nb.cells = [c for c in nb.cells if "skip-execution" not in c.metadata.get("tags", [])]
            code = sum(c.cell_type == "code" for c in nb.cells)
            print(f"  {path.name}: {code} code cells", flush=True)
            try:
                if NEEDS_MODEL.search("\n".join(c.source for c in nb.cells if c.cell_type == "code")):
                    need_model()
                client = NotebookClient(
                    nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
                )
                t0 = time.perf_counter()
                client.execute(env=env)
                s.add("notebooks", path.name, time.perf_counter() - t0, "s", note=f"{code} code cells, smoke profile")
            except Skip as exc:
                s.add("notebooks", path.name, None, note=f"skipped: {exc}")
            except Exception as exc:  # noqa: BLE001 - one broken notebook must not hide the others' times
                s.add("notebooks", path.name, None, note=f"error: {short(exc)}")


SECTIONS: dict[str, Callable[[Suite], None]] = {
    "generation": generation,
    "grpo": grpo,
    "rewards": rewards,
    "evaluation": evaluation,
    "sft": sft,
    "notebooks": notebooks,
}


# -------------------------------------------------------------------------------- table
def fmt(x: float | None) -> str:
    if x is None:
        return ""
    if x == 0 or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:#.3g}"


def table(figs: list[Figure]) -> str:
    head = ("section", "figure", "value", "unit", "baseline", "ratio", "note")
    rows = [
        (
            f.section,
            f.figure,
            fmt(f.value),
            f.unit,
            ("<" if f.bound else "") + fmt(f.baseline) if f.baseline is not None else "",
            (">" if f.bound else "") + f"x{fmt(f.ratio)}" if f.ratio is not None else "",
            f.note,
        )
        for f in figs
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    right = {2, 4, 5}  # numbers line up on the right

    def line(r: tuple) -> str:
        cells = [r[i].rjust(w) if i in right else r[i].ljust(w) for i, w in enumerate(widths)]
        return "  ".join(cells + [r[-1]]).rstrip()

    rule = "  ".join("-" * w for w in widths) + "  ----"
    return "\n".join([line(head), rule, *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="CI-sized: a few minutes on 2 CPU cores")
    size.add_argument("--full", action="store_true", help="GPU-sized (64 x 512 tokens; hours on a CPU)")
    ap.add_argument("--only", help=f"comma-separated sections to run, of: {','.join(SECTIONS)}")
    ap.add_argument("--skip", help="comma-separated sections to leave out")
    ap.add_argument("--json", type=Path, metavar="PATH", help="write figures, hardware, versions, command, date")
    args = ap.parse_args(argv)

    def names(text: str | None) -> list[str]:
        out = [n.strip() for n in (text or "").split(",") if n.strip()]
        bad = [n for n in out if n not in SECTIONS]
        if bad:
            ap.error(f"unknown section(s) {bad}; choose from {list(SECTIONS)}")
        return out

    chosen = names(args.only) or list(SECTIONS)
    chosen = [n for n in chosen if n not in names(args.skip)]
    level = "quick" if args.quick else "full" if args.full else "default"
    suite = Suite(level, args.json)
    if level == "full" and not suite.meta["hardware"]["gpu"]:
        print("warning: --full is sized for a GPU; on this CPU the generation and GRPO sections take hours")

    t0 = time.perf_counter()
    for name in chosen:
        suite.run(name, SECTIONS[name])
    hw = suite.meta["hardware"]
    v = suite.meta["versions"]
    print(
        f"\nBenchmarks ({level}) on {hw['gpu'] or str(hw['cpu_count']) + ' CPU cores'}; torch {v['torch']}, "
        f"transformers {v['transformers']}, trl {v['trl']}, peft {v['peft']}; {time.perf_counter() - t0:.0f} s in all"
    )
    print(
        "ratio = speed-up over the baseline measured in this run (>1: ours/new path faster); "
        "< and > mark a baseline killed at its timeout\n"
    )
    print(table(suite.figures))
    if args.json:
        print(f"\nwrote {args.json}")
    return 1 if any(v["status"] == "error" for v in suite.sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
