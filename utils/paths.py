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


#: Written into every folder the course creates for a run, a warm start or a merged model. The
#: course deletes or overwrites only inside folders that carry it, and only what it wrote there.
MARKER = ".made-by-grpo-course"


class FolderNotOurs(ValueError):
    """A folder the course was asked to write into holds files it did not make (or is a file)."""


def check_ours(path: str | Path, what: str, own: tuple[str, ...] = ()) -> Path:
    """Raise :class:`FolderNotOurs` (one line, nothing changed) unless the course may write ``what``
    into ``path``: it does not exist, is empty, carries the course's marker, or holds only ``own``
    (the names the course writes there: a folder from before the marker existed)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise FolderNotOurs(f"{path} is a file, not a folder: choose a folder for the {what}")
    if path.is_dir() and not (path / MARKER).exists():
        foreign = sorted(p.name for p in path.iterdir() if p.name not in own)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise FolderNotOurs(
                f"{path} already holds files the course did not make ({shown}): choose a new or empty "
                f"folder for the {what}; nothing was changed"
            )
    return path


def claim_folder(path: str | Path, what: str, own: tuple[str, ...] = ()) -> Path:
    """``path`` as a folder the course may write ``what`` into (created and marked), after
    :func:`check_ours`: a folder holding anything else is refused, never emptied."""
    path = check_ours(path, what, own)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if not marker.exists():
        marker.write_text(f"This folder holds a {what} made by the GRPO scheduling course.\n", encoding="utf-8")
    return path


def remove_our_folder(path: str | Path, what: str, own: tuple[str, ...] = ()) -> None:
    """Delete ``path`` only if the course made it (:func:`check_ours`); refuse otherwise."""
    import shutil

    path = check_ours(path, what, own)
    if path.is_dir():
        shutil.rmtree(path)
