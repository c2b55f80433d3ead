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


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _link_inside(path: Path, own: tuple[str, ...]) -> Path | None:
    """The first symbolic link among the course's own entries of ``path`` (at any depth, links not
    followed): deleting or renaming through one would reach files outside the course's folder."""
    for name in own:
        top = path / name
        if top.is_symlink():
            return top
        if not top.is_dir():
            continue
        for root, dirs, files in os.walk(top):  # os.walk does not descend into linked folders
            for entry in (*dirs, *files):
                if (Path(root) / entry).is_symlink():
                    return Path(root) / entry
    return None


def check_ours(path: str | Path, what: str, own: tuple[str, ...] = ()) -> Path:
    """Raise :class:`FolderNotOurs` (one line, nothing changed) unless the course may write ``what``
    into ``path``: it does not exist, is empty, or carries the course's marker (only the marker: a
    folder holding files the course might have written is still someone else's without it); and
    none of ``own`` (the names the course writes and deletes there) is, or holds, a symbolic link.
    ``path`` itself may be a link (a run folder on Google Drive, say): the user chose it."""
    path = Path(path).expanduser()
    if path.is_symlink() and not path.exists():
        raise FolderNotOurs(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist: choose a folder")
    if path.exists() and not path.is_dir():
        raise FolderNotOurs(f"{path} is a file, not a folder: choose a folder for the {what}")
    if path.is_dir() and not is_ours(path):
        foreign = sorted(p.name for p in path.iterdir())
        if foreign:
            raise FolderNotOurs(
                f"{path} already holds files the course did not make ({_shown(foreign)}): choose a new or empty "
                f"folder for the {what} (a folder an older version of the course made: add an empty file named "
                f"{MARKER} to it to reuse it); nothing was changed"
            )
    link = _link_inside(path, own) if path.is_dir() else None
    if link is not None:
        raise FolderNotOurs(
            f"{link} is a symbolic link (to {os.readlink(link)}): the course never writes or deletes through "
            f"links inside the {what} folder; remove the link (its target is kept) or move the whole folder "
            "instead; nothing was changed"
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


def check_removable(path: str | Path, what: str, own: tuple[str, ...]) -> Path:
    """Raise :class:`FolderNotOurs` unless :func:`remove_our_folder` may delete ``path`` whole: absent,
    or the course's (:func:`check_ours`) holding nothing but ``own`` and the marker."""
    path = Path(path).expanduser()
    if path.is_symlink():
        raise FolderNotOurs(f"{path} is a symbolic link: the course does not replace it; remove the link yourself")
    path = check_ours(path, what, own)
    if path.is_dir():
        foreign = sorted(p.name for p in path.iterdir() if p.name not in (*own, MARKER))
        if foreign:
            raise FolderNotOurs(
                f"{path} also holds files the course did not write ({_shown(foreign)}): move them out so that the "
                f"{what} can be replaced; nothing was changed"
            )
    return path


def remove_our_folder(path: str | Path, what: str, own: tuple[str, ...] = ()) -> None:
    """Delete ``path`` only if the course made it and it holds only what the course writes there
    (:func:`check_removable`); refuse otherwise."""
    import shutil

    path = check_removable(path, what, own)
    if path.is_dir():
        shutil.rmtree(path)


def is_ours(path: str | Path) -> bool:
    """Whether ``path`` is a folder the course made (it carries the marker, a file the course wrote)."""
    marker = Path(path) / MARKER
    return marker.is_file() and not marker.is_symlink()
