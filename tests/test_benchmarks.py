"""The benchmark command runs in its CI-sized form (figures are printed, not asserted on speed)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_run_all_quick_writes_figures_with_baselines(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run_all.py", "--quick", "--only", "rewards,evaluation", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert {"command", "hardware", "versions", "figures"} <= set(data)
    assert {s["status"] for s in data["sections"].values()} == {"ok"}
    # figures on normal and on cut-off answers, each against the reference measured in the same run
    assert any("normal" in f["figure"] and f["baseline"] for f in data["figures"])
    assert any("truncated" in f["figure"] and f["baseline"] for f in data["figures"])
    assert "section" in proc.stdout and "ratio" in proc.stdout


def test_bench_fast_rollouts_refuses_an_unknown_path_before_it_loads_anything(tmp_path):
    """A typo in --paths ran TRL's plain path under the typo's name (an unknown path had no engine)."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/bench_fast_rollouts.py", "--tiny", "--paths", "plain,fast-compile"]
    proc = subprocess.run([*cmd, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown --paths ['fast-compile']" in proc.stderr and not out.exists()


def test_bench_fast_rollouts_checks_in_place_updates_through_the_graph_engine(tmp_path):
    """The in-place check generates through the engine that trains (the graph engine returns no logits: on a GPU
    the check asked for them and either fell back to transformers' generate, so the recorded graphs went
    unchecked, or, with the step compiled, failed). In fp32 on a CPU the copy equals the changed policy."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/bench_fast_rollouts.py", "--tiny", "--paths", "fast", "--steps", "2"]
    proc = subprocess.run(
        [*cmd, "--json", str(out), "--work", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    check = json.loads(out.read_text())["paths"]["fast"]["in_place_check"]
    assert check["engine"] == "graph" and check["updates_seen"], check
    assert check["logp_gap_fresh_decode"] < 1e-4 < check["logp_gap_stale_decode"], check


def test_bench_graph_engine_refuses_a_skipped_greedy_reference_before_it_loads_anything(tmp_path):
    """Skipping the default reference ("generate") used to end in a KeyError after minutes of compiling."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/bench_graph_engine.py", "--skip", "generate,fast-generate", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "the greedy reference 'generate' is skipped" in proc.stderr and not out.exists()


def test_check_padsafe_gradients_runs_both_attentions_and_writes_its_file(tmp_path):
    """The GPU check's CPU form: both attentions, the left pads counted, a results file with versions."""
    out = tmp_path / "padsafe.json"
    cmd = [sys.executable, "benchmarks/check_padsafe_gradients.py", "--tiny", "--batches", "2", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [r["attention"] for r in data["runs"]] == ["sdpa", "sdpa_padsafe"]
    assert all(r["batches"] == 2 and r["left_pad_queries"] > 0 for r in data["runs"])
    assert {"torch", "transformers"} <= set(data["versions"])


def test_count_decode_ops_counts_a_real_step_per_layer(tmp_path):
    """The kernel count of one graph-engine decoding step (the embedded model's 30 layers), and the time per kernel
    a measured step gives. Fewer kernels is what a faster step needs, so a change that adds some shows here."""
    out = tmp_path / "ops.json"
    cmd = [sys.executable, "benchmarks/count_decode_ops.py", "--prompts", "2", "--answers", "2", "--attended", "16"]
    proc = subprocess.run([*cmd, "--step-ms", "5.0", "--json", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["layers"] == 30 and data["by_operator"]["mm"] == 4 * 30 + 1  # qkv, o, gate-up, down; the head
    assert not {"view", "transpose", "linear", "matmul"} & set(data["by_operator"])  # views; composites decomposed
    assert data["kernels_per_step"] == sum(data["by_operator"].values())
    assert data["us_per_kernel"] == round(5000 / data["kernels_per_step"], 2)
