"""Run every notebook in order, headless; executed copies and figures go to outputs/.

    python scripts/run_course.py --profile cpu            # the whole course
    python scripts/run_course.py --profile smoke --only 05  # one notebook, with cell timings

Prints which notebook and cell it is on and how long each cell took, so a slow or stuck
cell is easy to spot. Stops at the first failing cell and says where the partial copy is.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent


def first_line(cell) -> str:
    lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")]
    return (lines[0] if lines else cell.source.splitlines()[0] if cell.source else "")[:70]


# Lines of a cell's output worth echoing while it runs: training steps, warm start, generation progress.
PROGRESS = re.compile(r"min left|Warm-start|\d+%\||: \d+/\d+ \[\d+ s\]")


class EchoingClient(NotebookClient):
    """Runs cells like nbclient, and echoes progress lines of long cells to this terminal as they
    arrive (otherwise a 10-minute training cell prints nothing until it ends)."""

    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") == "stream":
            for line in re.split(r"[\r\n]+", msg["content"].get("text", "")):
                if PROGRESS.search(line):
                    print(f"      {line.strip()[:150]}", flush=True)
        return super().output(outs, msg, display_id, cell_index)


def run_notebook(path: Path, out: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    n = sum(c.cell_type == "code" for c in nb.cells)
    print(f"== {path.name}: {n} code cells", flush=True)
    # The kernel's own log at ERROR: its start-up warning about local TCP sockets is not the learner's concern.
    client = EchoingClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(path.parent)}},
    )
    t_nb = time.perf_counter()
    try:
        with client.setup_kernel():
            k = 0
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                k += 1
                print(f"   {path.name} cell {k}/{n}: {first_line(cell)}", flush=True)
                t0 = time.perf_counter()
                client.execute_cell(cell, i)
                print(f"      [{time.perf_counter() - t0:.1f} s]", flush=True)
    finally:
        nbformat.write(nb, out / path.name)
    seconds = time.perf_counter() - t_nb
    print(f"   {path.name} done in {seconds:.0f} s", flush=True)
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu", help="smoke | cpu | gpu")
    ap.add_argument("--only", action="append", default=[], help="notebook number prefix, e.g. 05 (repeatable)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds a single cell may take")
    args = ap.parse_args()
    if args.timeout <= 0:  # nbclient reads 0 or less as "no limit": a stuck cell would hang the run for ever
        ap.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    sys.path.insert(0, str(ROOT))
    from utils.profiles import PROFILES

    if args.profile not in PROFILES:
        ap.error(f"unknown profile {args.profile!r}; choose one of {sorted(PROFILES)}")
    os.environ["COURSE_PROFILE"] = args.profile
    from utils.env import HEADLESS_QUIET, error_line
    from utils.paths import figures_dir, output_dir  # honours COURSE_OUTPUT_DIR

    # The kernels inherit these: text progress lines instead of widget bars, library bars off.
    os.environ.update({"COURSE_HEADLESS": "1", **HEADLESS_QUIET})

    out = output_dir() / "executed"
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in args.only)]
        if not paths:
            ap.error(f"--only {' '.join(args.only)} matches no notebook (their numbers: 01 to 06)")
    total = time.perf_counter()
    times = {}
    for path in paths:
        try:
            times[path.name] = run_notebook(path, out, args.timeout)
        except CellExecutionError as exc:
            print(f"\n!! {path.name} failed; executed copy with the error: {out / path.name}\n{str(exc)[-2000:]}")
            return 1
        except (CellTimeoutError, DeadKernelError) as exc:  # a cell over --timeout, or a kernel killed (memory?)
            why = error_line(exc)
            print(f"\n!! {path.name} stopped: {why}; executed copy so far: {out / path.name}")
            return 1
    print("\n".join(f"{name:<32}{s:>7.0f} s" for name, s in times.items()))
    print(f"Whole run: {time.perf_counter() - total:.0f} s (profile {args.profile})")
    print(f"Executed notebooks: {out}\nFigures: {figures_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
