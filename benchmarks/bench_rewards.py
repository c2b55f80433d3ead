"""How fast are the rewards? Ours vs the reference reimplementation vs the raw reference regexes.

    python benchmarks/bench_rewards.py            # full run (about a minute)
    python benchmarks/bench_rewards.py --quick    # a few seconds (CI)
    python benchmarks/bench_rewards.py --json outputs/bench_rewards.json

Two workloads:

* normal - every gallery answer (optimal, greedy, wrong, unsorted, truncated, hacks, ...)
  for the first training problems: completions per second for each reward;
* pathological - one answer cut off before ``</schedule>`` with its events written back
  to back (:func:`utils.gallery.back_to_back_completion`), for a growing number of
  events: seconds per completion. The raw reference regex backtracks on it, so it runs
  in a subprocess that is killed after ``--timeout`` seconds.

The raw reference rewards are the published functions transliterated with their own
regular expressions (the same transliteration tests/test_reference.py proves our
reimplementation against); they always run in a subprocess with a timeout.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.rewards import SEED_REWARDS, default_reward_funcs  # noqa: E402
from utils.rewards.gallery import back_to_back_completion, make_gallery  # noqa: E402
from utils.rewards.reference import (  # noqa: E402
    REFERENCE_CAPTURE_PATTERN,
    REFERENCE_REWARDS,
    REFERENCE_TRAIN_FORMAT_PATTERN,
    time_regex_in_subprocess,
)
from utils.task.columns import PROBLEM_COLUMNS as COLUMNS  # noqa: E402
from utils.task.data import load_split  # noqa: E402

# The published rewards, written with their own regexes (run only in a child process).
RAW_CHILD = r"""
import json, re, sys, time
sys.path.insert(0, {root!r})
from utils.task.data import load_split
from utils.rewards.gallery import make_gallery
FORMAT = re.compile({fmt!r}, re.DOTALL)
CAPTURE = re.compile({cap!r})

def minutes(t):
    h, m = map(int, t.split(":"))
    return h * 60 + m

def raw_format(texts, **kw):
    return [10.0 if FORMAT.match(t) else 0.0 for t in texts]

def raw_sorted(texts, **kw):
    out = []
    for t in texts:
        evs = [minutes(m.group(2)) for m in CAPTURE.finditer(t)]
        out.append(20.0 if len(evs) >= 2 and all(a < b for a, b in zip(evs, evs[1:])) else 0.0)
    return out

def raw_score(texts, events, priority_events, optimal_score, **kw):
    out = []
    for t, valid, prios, opt in zip(texts, events, priority_events, optimal_score):
        evs = [m.groups() for m in CAPTURE.finditer(t)]
        existing = {{e for e in evs if list(e) in valid}}
        if len(existing) < len(evs) or len(existing) < 2:
            out.append(0.0)
            continue
        mins = [(e[0], minutes(e[1]), minutes(e[2])) for e in existing]
        clash = set()
        for j in range(len(mins)):
            for k in range(j + 1, len(mins)):
                if mins[j][1] <= mins[k][2] and mins[j][2] >= mins[k][1]:
                    clash.update((mins[j], mins[k]))
        out.append(sum((2 if e[0] in prios else 1) * (e[2] - e[1]) for e in mins if e not in clash) / opt * 70)
    return out

FUNCS = {{"raw_format": raw_format, "raw_sorted": raw_sorted, "raw_score": raw_score}}
arg, name = int(sys.argv[1]), sys.argv[2]
rows = load_split("train", limit=arg)
texts, cols = [], {{"events": [], "priority_events": [], "optimal_score": []}}
for row in rows:
    for t in make_gallery(row).values():
        texts.append(t)
        for k in cols:
            cols[k].append(row[k])
t0 = time.perf_counter()
FUNCS[name](texts, **cols)
print(json.dumps({{"seconds": time.perf_counter() - t0, "n": len(texts)}}))
"""


def raw_in_subprocess(n_rows: int, name: str, timeout: float) -> dict | None:
    """Run one raw reference reward on the normal batch in a child; ``None`` if killed at ``timeout``."""
    code = RAW_CHILD.format(root=str(ROOT), fmt=REFERENCE_TRAIN_FORMAT_PATTERN, cap=REFERENCE_CAPTURE_PATTERN)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, str(n_rows), name], capture_output=True, text=True, timeout=timeout, check=True
        )
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def normal_batch(n_rows: int) -> tuple[list[str], dict]:
    texts, cols = [], {k: [] for k in COLUMNS}
    for row in load_split("train", limit=n_rows):
        for t in make_gallery(row).values():
            texts.append(t)
            for k in COLUMNS:
                cols[k].append(row[k])
    return texts, cols


def _duration(seconds: float) -> str:
    return (
        f"{seconds * 1e6:.0f} us"
        if seconds < 1e-3
        else f"{seconds * 1e3:.1f} ms"
        if seconds < 1
        else f"{seconds:.2f} s"
    )


def per_second(fn, texts, cols, min_time: float) -> float:
    """Completions per second, repeating the batch until ``min_time`` has passed."""
    done, t0 = 0, time.perf_counter()
    while True:
        fn(completions=texts, **cols)
        done += len(texts)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return done / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: seconds, for CI")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--timeout", type=float, help="seconds before a raw regex run is killed")
    args = ap.parse_args()
    quick = args.quick
    timeout = args.timeout or (1.5 if quick else 10.0)
    n_rows = 20 if quick else 100
    min_time = 0.2 if quick else 1.0
    counts = [4, 6, 8, 10, 12] if quick else [4, 6, 8, 10, 11, 12, 13, 14, 16, 20, 40, 1000]

    ours = {f.__name__: f for f in default_reward_funcs(SEED_REWARDS)}
    ref = {f.__name__: f for f in REFERENCE_REWARDS}
    texts, cols = normal_batch(n_rows)

    print(
        f"Normal answers: {len(texts)} gallery completions of {n_rows} training problems "
        f"(Python {platform.python_version()}, {platform.machine()})"
    )
    normal: dict[str, float | None] = {}
    for name, fn in {**ours, **ref}.items():
        normal[name] = per_second(fn, texts, cols, min_time)
    for name in ("raw_format", "raw_sorted", "raw_score"):
        res = raw_in_subprocess(n_rows, name, timeout * 4)
        normal[f"reference regex: {name.removeprefix('raw_')}"] = res and res["n"] / res["seconds"]
    print(f"  {'reward':<40} {'completions/s':>14}")
    for name, cps in normal.items():
        print(f"  {name:<40} {cps:>14,.0f}" if cps else f"  {name:<40} {'timed out':>14}")

    print(
        f"\nPathological answers: cut before </schedule>, events back to back "
        f"(seconds per completion; raw regex killed after {timeout:g} s)"
    )
    patho: dict[str, list] = {
        "events": counts,
        "ours: format_reward": [],
        "ours: all three rewards": [],
        "reference reimplementation: format": [],
        "reference regex: format": [],
    }
    blank = {"events": [[]], "priority_events": [[]], "optimal_score": [1]}
    gave_up = False
    for n in counts:
        text = [back_to_back_completion(n)]
        for label, fns in (
            ("ours: format_reward", [ours["format_reward"]]),
            ("ours: all three rewards", list(ours.values())),
            ("reference reimplementation: format", [ref["reference_format_reward"]]),
        ):
            reps = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < min_time / 4 or reps == 0:
                for fn in fns:
                    fn(completions=text, **blank)
                reps += 1
            patho[label].append((time.perf_counter() - t0) / reps)
        if gave_up:  # it already timed out on fewer events: it will again
            patho["reference regex: format"].append(None)
        else:
            seconds = time_regex_in_subprocess(text[0], timeout)
            patho["reference regex: format"].append(seconds)
            gave_up = seconds is None
    head = "  " + f"{'events':<36}" + "".join(f"{n:>10}" for n in counts)
    print(head)
    for label, values in patho.items():
        if label == "events":
            continue
        cells = "".join(
            f"{_duration(v):>10}" if v is not None else f"{'>' + format(timeout, 'g') + ' s':>10}" for v in values
        )
        print(f"  {label:<36}{cells}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "quick": quick,
                    "timeout_s": timeout,
                    "python": platform.python_version(),
                    "normal_completions": len(texts),
                    "normal_completions_per_s": normal,
                    "pathological_seconds_per_completion": patho,
                },
                indent=1,
            )
        )
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
