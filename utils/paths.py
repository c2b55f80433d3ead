"""Where things live. One place, so notebooks, scripts and tests agree."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
TRAIN_FILE = DATA_DIR / "train.jsonl"
TEST_FILE = DATA_DIR / "test.jsonl"
TEST_OTHER_STYLE_FILE = DATA_DIR / "test_other_style.jsonl"  # held out: names and times in another style
EVENT_NAMES_FILE = DATA_DIR / "event_names.json"
OTHER_STYLE_NAMES_FILE = DATA_DIR / "event_names_other_style.json"


def output_dir() -> Path:
    """Git-ignored folder for everything a run produces (override: ``COURSE_OUTPUT_DIR``)."""
    path = Path(os.environ.get("COURSE_OUTPUT_DIR", REPO_ROOT / "outputs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    path = output_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Outside the repo: converted model weights are large and reusable across clones."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "grpo-scheduling-course"
    path = Path(os.environ.get("COURSE_CACHE_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
