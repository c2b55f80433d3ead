"""Run every notebook in order, headless; executed copies and figures go to outputs/.

    python scripts/run_course.py --profile cpu
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    args = ap.parse_args()
    os.environ["COURSE_PROFILE"] = args.profile
    out = ROOT / "outputs" / "executed"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        n = sum(c.cell_type == "code" for c in nb.cells)
        print(f"== {path.name}: {n} code cells", flush=True)
        client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        try:
            with client.setup_kernel():
                k = 0
                for i, cell in enumerate(nb.cells):
                    if cell.cell_type == "code":
                        k += 1
                        print(f"   {path.name} cell {k}/{n}", flush=True)
                        client.execute_cell(cell, i)
        finally:
            nbformat.write(nb, out / path.name)
        print(f"   done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"Executed notebooks: {out}\nFigures: {ROOT / 'outputs' / 'figures'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
