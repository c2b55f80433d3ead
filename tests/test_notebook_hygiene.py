"""Committed notebooks are clean: no outputs, Colab badge first, standard setup cell second."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from helpers import script_module

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _nbtools():
    return script_module("nbtools")


def test_nbtools_check_passes():
    assert _nbtools().check() == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_clean(path):
    problems = [p for p in _nbtools().check() if p.startswith(f"{path.name}:")]
    assert problems == []
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None
    ids = [cell.get("id") for cell in nb.cells]
    assert len(set(ids)) == len(ids), "duplicate cell ids"
