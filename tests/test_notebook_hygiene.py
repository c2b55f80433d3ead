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


def test_titles_and_sections_are_numbered_in_order(tmp_path, monkeypatch):
    """Issues 22/25: titles said "Part 1a" while files number 01-06, and sections skipped (3 -> 6)."""
    nbtools = _nbtools()
    path = tmp_path / "01_data_generation.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("# 01 - ", "# Part 1a - ")
    nb.cells.append(nbformat.v4.new_markdown_cell("## 1. One\n\ntext\n\n## 3. Three"))
    nbformat.write(nb, path)
    monkeypatch.setattr(nbtools, "NOTEBOOKS", tmp_path)
    problems = nbtools.check()
    assert any("title should start with '# 01 - '" in p for p in problems)
    assert any("[1, 3] should run 1, 2, 3" in p for p in problems)


def test_nbtools_rewrites_no_notebook_unless_every_one_reads(tmp_path):
    """A notebook cut short: --check names it in one line, --fix-headers changes none of the others."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "scripts").mkdir()
    shutil.copy(root / "scripts" / "nbtools.py", tmp_path / "scripts")
    shutil.copytree(root / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".*"))
    (tmp_path / "utils").symlink_to(root / "utils")
    cut = tmp_path / "notebooks" / "03_reward_design.ipynb"
    cut.write_text(cut.read_text()[:300])
    before = {p.name: p.read_bytes() for p in (tmp_path / "notebooks").glob("*.ipynb")}
    run = [sys.executable, "scripts/nbtools.py"]
    checked = subprocess.run([*run, "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 1 and "03_reward_design.ipynb: not a readable notebook" in checked.stdout
    fixed = subprocess.run([*run, "--fix-headers"], cwd=tmp_path, capture_output=True, text=True)
    assert fixed.returncode == 1 and fixed.stdout.startswith("nothing rewritten:")
    assert {p.name: p.read_bytes() for p in (tmp_path / "notebooks").glob("*.ipynb")} == before
