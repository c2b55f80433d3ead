"""scripts/measure_memory.py: the model shapes it builds are the published ones, and it runs end to end."""

from __future__ import annotations

import json
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
