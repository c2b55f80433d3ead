"""Completions per second: our evaluator vs. the reference's regular expressions.

Three sets of completions on the course's test problems:

* ``normal``: rule-written answers (optimal, greedy, all events, ...) behind a few
  hundred characters of reasoning - what a trained model writes;
* ``truncated_1mb``: a 1 MB answer cut before ``</schedule>`` - what a length cut-off
  of a model that loops looks like;
* ``repeated_tags``: 1 MB of ``<event><name>`` fragments after ``<schedule>``.

The regex evaluator runs in a child process with a timeout, because on the two
pathological sets its format regex backtracks for longer than anyone waits.

    python benchmarks/bench_evaluation.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The reference evaluation's regexes (published in anakin87/qwen-scheduler-grpo, evaluation/eval.py).
from utils.rewards.reference import REFERENCE_CAPTURE_PATTERN, REFERENCE_EVAL_FORMAT_PATTERN  # noqa: E402

REF_FORMAT = re.compile(REFERENCE_EVAL_FORMAT_PATTERN, re.DOTALL)
REF_CAPTURE = re.compile(REFERENCE_CAPTURE_PATTERN)


def regex_category(row: dict, text: str) -> str:
    """The reference's checks, regex and all (first failing check wins)."""
    if not REF_FORMAT.match(text):
        return "format_error"
    found = [m.groups() for m in REF_CAPTURE.finditer(text)]
    if len(found) < 2:
        return "fewer_than_2_events"
    if len({e for e in found if list(e) in row["events"]}) < len(found):
        return "nonexistent"
    spans = [(int(s[:2]) * 60 + int(s[3:]), int(e[:2]) * 60 + int(e[3:])) for _, s, e in found]
    if any(a[0] >= b[0] for a, b in zip(spans, spans[1:])):
        return "unsorted"
    if any(
        spans[i][0] < spans[j][1] and spans[i][1] > spans[j][0]
        for i in range(len(spans))
        for j in range(i + 1, len(spans))
    ):
        return "overlap"
    return "valid"


def regex_worker(path: str) -> None:
    """Child process: evaluate the cases in ``path`` with the regexes, print timing as JSON."""
    with open(path, encoding="utf-8") as fh:
        cases = json.load(fh)
    t0 = time.perf_counter()
    categories = [regex_category(row, text) for row, text in cases]
    print(json.dumps({"seconds": time.perf_counter() - t0, "categories": categories}))


# ------------------------------------------------------------------------------ inputs
def build_sets(quick: bool) -> dict[str, list[tuple[dict, str]]]:
    from utils.evaluate.baselines import BASELINES
    from utils.task.data import load_split

    rows = load_split("test")
    reasoning = "Let me weigh each event: duration times two for priorities, then drop clashes. " * 6
    names = list(BASELINES) if not quick else ["dp_optimal", "greedy_earliest_end", "all_events"]
    normal = []
    for name in names:
        for i, row in enumerate(rows):
            text = BASELINES[name](row, i)
            normal.append((row, text.replace("<think>", "<think>" + reasoning, 1)))
    row = rows[0]
    event = "<event><name>{}</name><start>{}</start><end>{}</end></event>\n".format(*row["events"][0])
    size = 1_000_000
    truncated = "<think>planning</think>\n<schedule>\n" + event * (size // len(event))
    repeated = "<schedule>" + "<event><name>" * (size // len("<event><name>"))
    return {"normal": normal, "truncated_1mb": [(row, truncated)], "repeated_tags": [(row, repeated)]}


# ---------------------------------------------------------------------------- timings
def time_ours(cases: list[tuple[dict, str]], min_seconds: float) -> dict:
    from utils.evaluate.evaluation import evaluate_completion

    rounds, t0 = 0, time.perf_counter()
    while True:
        categories = [evaluate_completion(row, text).category for row, text in cases]
        rounds += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            break
    return {"per_s": rounds * len(cases) / elapsed, "seconds": elapsed / rounds, "categories": categories}


def time_regex(cases: list[tuple[dict, str]], timeout: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(cases, fh)
        path = fh.name
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--regex-worker", path], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:  # run() kills the child on timeout
        return {"per_s": None, "seconds": None, "timed_out": True, "timeout_s": timeout}
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise RuntimeError(f"regex worker failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    secs = max(out["seconds"], 1e-9)
    return {"per_s": len(cases) / secs, "seconds": secs, "timed_out": False, "categories": out["categories"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sets, short timeout (seconds in all)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--timeout", type=float, help="regex timeout per set, seconds (default 2 quick, 60 full)")
    parser.add_argument("--regex-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.regex_worker:
        regex_worker(args.regex_worker)
        return 0

    timeout = args.timeout or (2.0 if args.quick else 60.0)
    results = []
    for name, cases in build_sets(args.quick).items():
        ours = time_ours(cases, min_seconds=0.2 if args.quick else 1.0)
        ref = time_regex(cases, timeout)
        agree = None if ref["timed_out"] else ours["categories"] == ref["categories"]
        results.append(
            {
                "set": name,
                "n": len(cases),
                "chars": sum(len(t) for _, t in cases),
                "ours_per_s": ours["per_s"],
                "ours_s": ours["seconds"],
                "regex_per_s": ref["per_s"],
                "regex_s": ref["seconds"],
                "regex_timed_out": ref["timed_out"],
                "categories_agree": agree,
            }
        )

    print(f"{'set':<15}{'n':>6}{'ours /s':>12}{'regex /s':>14}  note")
    for r in results:
        regex = f"{r['regex_per_s']:>14,.0f}" if r["regex_per_s"] else f"{'< ' + format(r['n'] / timeout, '.2g'):>14}"
        note = (
            f"regex timed out after {timeout:g} s"
            if r["regex_timed_out"]
            else f"{r['ours_per_s'] / r['regex_per_s']:.1f}x, categories agree: {r['categories_agree']}"
        )
        print(f"{r['set']:<15}{r['n']:>6}{r['ours_per_s']:>12,.0f}{regex}  {note}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"quick": args.quick, "timeout_s": timeout, "results": results}, indent=2)
        )
    return 0 if all(r["categories_agree"] is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
