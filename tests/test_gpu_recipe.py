"""scripts/gpu_recipe.sh stop ROW: stops that row's job and nothing else (on CPU, with stand-in jobs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_recipe.sh"
pytestmark = pytest.mark.skipif(not shutil.which("pgrep"), reason="needs pgrep (procps)")


def _job(folder: Path, row: str) -> subprocess.Popen:
    """A stand-in for a lane's `python3 scripts/ablation.py --rows ROW --out ...` (it only sleeps)."""
    return subprocess.Popen([sys.executable, "scripts/ablation.py", "--rows", row, "--out", "x"], cwd=folder)


def _stop(folder: Path, row: str) -> subprocess.CompletedProcess:
    # the caller's own command line names the row, as a device call's does: it must survive
    caller = f"bash {SCRIPT} stop {row}; echo 'caller alive: scripts/ablation.py --rows {row}'"
    env = {"PATH": "/usr/bin:/bin", "RECIPE_DIR": str(folder / "exp")}
    return subprocess.run(["bash", "-c", caller], cwd=folder, env=env, capture_output=True, text=True, timeout=60)


def test_stop_ends_only_the_named_rows_job_and_spares_its_caller(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "ablation.py").write_text("import time\ntime.sleep(120)\n")
    jobs = {row: _job(tmp_path, row) for row in ("seed1", "seed1_trace")}  # one name a prefix of the other
    try:
        time.sleep(1)
        done = _stop(tmp_path, "seed1")
        assert "stopped seed1" in done.stdout and "caller alive" in done.stdout
        assert jobs["seed1"].wait(timeout=30) != 0  # ended by the signal
        assert jobs["seed1_trace"].poll() is None  # untouched
        again = _stop(tmp_path, "seed1")
        assert "no job of row seed1 is running" in again.stdout and "caller alive" in again.stdout
    finally:
        for job in jobs.values():
            job.kill()
            job.wait()
