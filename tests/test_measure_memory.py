"""scripts/measure_memory.py: the model shapes it builds are the published ones, and it runs end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import script_module

ROOT = Path(__file__).resolve().parent.parent
measure_memory = script_module("measure_memory")

# Parameter counts from the model cards (Qwen2.5 and Qwen2.5-Coder, "Number of Parameters").
PUBLISHED = {"qwen2.5-0.5b": 0.49e9, "qwen2.5-1.5b": 1.54e9, "qwen2.5-3b": 3.09e9, "qwen2.5-coder-7b": 7.61e9}


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_shapes_have_the_published_parameter_counts(key):
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    shape = dict(measure_memory.SHAPES[key])
    assert shape.pop("family") == "qwen2"
    with torch.device("meta"):  # no memory: shapes only
        model = AutoModelForCausalLM.from_config(Qwen2Config(**shape))
    n = sum(p.numel() for p in model.parameters())  # tied embeddings count once
    assert abs(n - PUBLISHED[key]) / PUBLISHED[key] < 0.01, f"{key}: {n / 1e9:.3f}B"


def test_every_model_of_the_table_has_a_shape():
    from utils.llm.models import EMBEDDED_KEY, MODELS

    assert set(MODELS) - {EMBEDDED_KEY} <= set(measure_memory.SHAPES)


def test_runs_end_to_end_on_cpu(tmp_path):
    out = tmp_path / "memory.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "measure_memory.py"), "--models", "tiny", "--profile", "smoke"]
    proc = subprocess.run(
        [*cmd, "--steps", "1", "--eval-rows", "2", "--json", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record,) = json.loads(out.read_text())
    assert record["model"] == "tiny" and [s["step"] for s in record["grpo_steps"]] == [1]
    assert record["eval_rows"] == 2 and "failed" not in record
    assert record["loss_micro_batch"] == 2  # the smoke profile's 2 answers a step, in one pass (no GPU to shrink to)


def test_fits_and_table_from_records(tmp_path):
    big = {"model": "qwen2.5-coder-7b", "backend": "trl", "grpo_peak": {"reserved_gib": 38.2}}
    big |= {"eval_peak": {"reserved_gib": 20.0}, "outside_torch_gib": 0.6}
    small = {"model": "qwen2.5-0.5b", "backend": "trl", "grpo_peak": {"reserved_gib": 6.1}}
    small |= {"eval_peak": {"reserved_gib": 7.4}, "outside_torch_gib": 0.5}
    oom = {"model": "qwen2.5-3b", "backend": "trl", "failed": "out of memory"}
    assert measure_memory.fits(big) == {"T4": False, "L4": False, "A100 40GB": True, "80GB": True}  # 38.8 GiB <= 40 GiB
    assert measure_memory.fits(small) == {
        "T4": True,
        "L4": True,
        "A100 40GB": True,
        "80GB": True,
    }  # the larger peak counts
    assert set(measure_memory.fits(oom).values()) == {None}  # nothing measured, nothing promised
    path = tmp_path / "m.json"
    path.write_text(json.dumps([big, small, oom]))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "measure_memory.py"), "--table", str(path)],
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 5
    assert lines[2] == "| qwen2.5-coder-7b | trl | 38.2 | 20.0 | no | no | fits | fits |"
    assert lines[4] == "| qwen2.5-3b | trl | out of memory | out of memory | - | - | - | - |"
    capped = small | {"card": "T4", "loss_micro_batch": 8}
    path.write_text(json.dumps([capped]))
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "measure_memory.py"), "--table", str(path)],
        capture_output=True,
        text=True,
    ).stdout
    assert "| qwen2.5-0.5b (within T4 memory) (8 answers a loss pass) | trl |" in out


def test_a_run_within_a_cards_memory_answers_for_that_card(tmp_path):
    """Peaks on a big card overstate the need (the allocator keeps freed blocks while it has room), so --card
    caps the allocator to a card's memory and the run itself answers: finished fits that card and larger ones,
    out of memory fits neither it nor smaller ones; the table says which card the run was held to."""
    done = {"model": "qwen2.5-0.5b", "backend": "trl", "card": "T4", "grpo_peak": {"reserved_gib": 13.9}}
    done |= {"eval_peak": {"reserved_gib": 9.1}, "outside_torch_gib": 0.5}
    oom = {"model": "qwen2.5-3b", "backend": "trl", "card": "L4", "failed": "out of memory"}
    assert measure_memory.fits(done) == {"T4": True, "L4": True, "A100 40GB": True, "80GB": True}
    assert measure_memory.fits(oom) == {"T4": False, "L4": False, "A100 40GB": None, "80GB": None}
    rows = measure_memory.table([done, oom]).splitlines()[2:]
    assert rows[0] == "| qwen2.5-0.5b (within T4 memory) | trl | 13.9 | 9.1 | fits | fits | fits | fits |"
    assert rows[1] == "| qwen2.5-3b (within L4 memory) | trl | out of memory | out of memory | no | no | - | - |"


def test_a_card_cap_refuses_a_shared_gpu(monkeypatch):
    """The cap is the card's memory less what is held outside torch's allocator, read from the whole GPU: with
    other processes on it their memory would shrink the cap (3.1 GiB for a T4 beside two other runs, 2026-12-07)
    and a model that fits would be recorded as out of memory. Alone, the CUDA context is all that is subtracted."""
    import torch

    gib, total = 2**30, 80 * 2**30
    fractions = []
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, *a: fractions.append(f))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (total - gib // 2, total))  # alone: a 0.5 GiB context
    assert measure_memory.cap_memory(15360) == 14.5 and fractions == [14.5 / 80]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (total - 12 * gib, total))  # others hold 11.5 GiB
    with pytest.raises(RuntimeError, match="needs the GPU to itself: 12.0 GiB .* one at a time"):
        measure_memory.cap_memory(15360)
    assert len(fractions) == 1  # nothing capped
    small = 40 * 2**30  # an 80 GB cap on a 40 GiB card: all of it
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (small - gib // 2, small))
    assert measure_memory.cap_memory(81559) == 40.0 and fractions[-1] == 1.0


def test_a_card_needs_a_gpu():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "measure_memory.py"), "--models", "tiny", "--card", "T4"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--card T4: needs a CUDA GPU" in proc.stderr.strip().splitlines()[-1]


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_run_cut_off_keeps_how_far_it_got():
    code = (
        'print(\'PROGRESS {"phase": "built", "seconds": 1.0}\', flush=True)\n'
        'print(\'PROGRESS {"phase": "loaded", "seconds": 2.0, "reserved_gib": 16.2}\', flush=True)\n'
        "import time; time.sleep(60)"
    )
    record = measure_memory.run_one(_child(code), timeout=3)
    assert record["failed"] == "timed out after 3 s"
    assert record["partial"] == {"phase": "loaded", "seconds": 2.0, "reserved_gib": 16.2}
    row = measure_memory.table([{"model": "qwen2.5-coder-7b", "backend": "trl", **record}]).splitlines()[2]
    cut = "timed out after 3 s (in GRPO step 1, 16.2 held)"
    assert row == f"| qwen2.5-coder-7b | trl | {cut} | {cut} | - | - | - | - |"


def test_out_of_memory_and_results_are_read_from_the_child():
    oom = measure_memory.run_one(_child("import sys; sys.exit('torch.OutOfMemoryError: CUDA out of memory.')"), 30)
    assert oom["failed"] == "out of memory" and "partial" not in oom
    done = measure_memory.run_one(_child('print(\'RESULT {"model": "m", "grpo_peak": {"reserved_gib": 1.0}}\')'), 30)
    assert done == {"model": "m", "grpo_peak": {"reserved_gib": 1.0}}
    code = 'print(\'PROGRESS {"phase": "built", "card_free_gib": 139.0}\')\nprint(\'RESULT {"model": "m"}\')'
    assert measure_memory.run_one(_child(code), 30) == {
        "model": "m",
        "phases": [{"phase": "built", "card_free_gib": 139.0}],
    }


def test_the_timeout_must_be_positive():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "measure_memory.py"), "--models", "tiny", "--timeout", "0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--timeout 0: a number of seconds above 0" in proc.stderr


def test_nothing_the_child_started_outlives_it():
    """Compile workers left behind would hold GPU memory while the next model is measured."""
    code = (
        "import json, subprocess\n"
        "p = subprocess.Popen(['sleep', '60'])\n"
        "print('PROGRESS ' + json.dumps({'phase': 'built', 'worker': p.pid}), flush=True)\n"
        "print('RESULT {}', flush=True)\n"
    )
    record = measure_memory.run_one(_child(code), 30)
    worker = record["phases"][0]["worker"]
    status = Path(f"/proc/{worker}/status")
    alive = status.exists() and "State:\tZ" not in status.read_text()  # a zombie only waits for its reaper
    assert not alive, f"process {worker} is still running"  # run_one waited for it to die, not only sent the kill


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_group_watch_sees_live_members_and_not_zombies():
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert measure_memory._live_members(sleeper.pid) == [sleeper.pid]
        os.kill(sleeper.pid, signal.SIGKILL)
        measure_memory._wait_until_group_ended(sleeper.pid)
        assert measure_memory._live_members(sleeper.pid) == []  # dead, though not reaped yet: a zombie
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_run_on_a_shared_card_gets_no_card_verdict():
    """What is held outside the allocator is read from the whole card: with other processes on it, this run's own
    need is unknown, so no card is marked (neither fits nor no) and the table says why."""
    shared = {"model": "qwen2.5-0.5b", "backend": "trl", "card_shared": 30.2}
    shared |= {
        "grpo_peak": {"allocated_gib": 4.0, "reserved_gib": 5.0},
        "eval_peak": {"allocated_gib": 3.0, "reserved_gib": 4.0},
    }
    assert set(measure_memory.fits(shared).values()) == {None}
    row = measure_memory.table([shared]).splitlines()[-1]
    assert "card shared: 30.2 GiB held by others" in row and "fits" not in row


def test_a_run_out_of_memory_in_its_evaluation_shows_its_grpo_peak():
    """The 3B within an L4's memory (2026-12-07): both GRPO steps finished, the evaluation's batch did not."""
    data = json.loads(Path("results/memory_h100_3b_2026-12-07.json").read_text())
    l4 = next(r for r in measure_memory.records_of(data) if r["card"] == "L4")
    row = measure_memory.table([l4]).splitlines()[2]
    assert row == (
        "| qwen2.5-3b (within L4 memory) | trl | 20.5 / 21.7 | out of memory (in the evaluation, 21.7 held) "
        "| no | no | - | - |"
    )


def test_the_scripts_docstring_examples_hold():
    import doctest

    result = doctest.testmod(measure_memory)
    assert result.attempted >= 6 and result.failed == 0


def test_a_json_file_that_holds_no_records_is_refused_before_any_model_runs(tmp_path, capsys):
    """--json naming a committed results file ({"runs": ...}) or a broken file: refused at once, the file unchanged
    (it used to fail after the first model was measured, losing that measurement)."""
    committed = tmp_path / "results.json"
    committed.write_text(json.dumps({"runs": [{"records": []}]}))
    broken = tmp_path / "broken.json"
    broken.write_text("{bad")
    for path, why in ((committed, "holds no list of records"), (broken, "not a readable JSON file")):
        before = path.read_text()
        with pytest.raises(SystemExit) as stop:
            measure_memory.main(["--models", "smollm2-135m", "--json", str(path)])
        assert stop.value.code == 2 and why in capsys.readouterr().err and path.read_text() == before


def test_table_of_a_wrong_file_says_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    for text in ('{"a": 1}', '[{"x": 1}]', "{bad", "[5]"):
        bad.write_text(text)
        with pytest.raises(SystemExit) as stop:
            measure_memory.main(["--table", str(bad)])
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and "--table" in err[-1] and str(bad) in err[-1]
