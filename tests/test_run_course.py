"""scripts/run_course.py: a cell over its time limit stops the run with one line, and a limit is always set."""

from __future__ import annotations

import os
import sys

import nbformat
import pytest
from helpers import script_module

run_course = script_module("run_course")


@pytest.fixture(autouse=True)
def _environment_and_path_restored(monkeypatch):
    """main() sets the profile and the headless switches for its kernels: none of it may leak into other tests."""
    saved = dict(os.environ)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_cell_over_the_time_limit_stops_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(30)")])
    nbformat.write(nb, tmp_path / "notebooks" / "01_sleepy.ipynb")
    monkeypatch.setattr(run_course, "ROOT", tmp_path)
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setattr(sys, "argv", ["run_course.py", "--profile", "smoke", "--timeout", "2"])
    assert run_course.main() == 1
    stopped = [line for line in capsys.readouterr().out.splitlines() if line.startswith("!!")]
    assert len(stopped) == 1 and "01_sleepy.ipynb stopped" in stopped[0]
    assert (tmp_path / "out" / "executed" / "01_sleepy.ipynb").exists()  # the executed copy, kept


@pytest.mark.parametrize("argv", [["--timeout", "0"], ["--timeout", "-5"], ["--profile", "bogus"], ["--only", "99"]])
def test_arguments_that_would_hang_or_run_nothing_are_refused(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, "argv", ["run_course.py", *argv])
    with pytest.raises(SystemExit) as stop:
        run_course.main()
    assert stop.value.code == 2 and "error:" in capsys.readouterr().err
