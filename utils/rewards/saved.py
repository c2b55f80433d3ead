"""Save the reward set chosen in notebook 03 so that training (notebook 05, the script) uses it.

Two plain files in the outputs folder, nothing hidden:

* ``my_rewards.py`` - your own rewards, as ordinary Python. Notebook 03's ✏️ cell starts with
  ``%%writefile`` (it writes the cell to this file) and the next cell imports the file with
  :func:`import_reward_file`, as training does: the functions you check in the notebook are the
  ones training runs, imports and constants included. (``%run`` on the file works too.)
* ``reward_set.json`` - which rewards, with which weights, saved when; for each of your own
  rewards the file it lives in (and a fingerprint of that file, to notice later edits)::

    {"saved_at": "2026-11-26T14:03:12", "rewards": [
      {"name": "format_reward", "weight": 1.0},
      {"name": "concise_reasoning_reward", "weight": 0.5, "file": "my_rewards.py", "sha256": "..."}]}

Library rewards are found by name (:data:`~utils.rewards.registry.LIBRARY_REWARDS`); your own
are imported from their file. Loading runs that file, so only load reward sets you wrote yourself.
A set that cannot be used (no rewards, a weight that is not a finite number, an unknown name, a
missing file) is refused with one line, never replaced by another set behind your back.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.util
import json
import math
import numbers
import os
import sys
import tempfile
import types
from collections.abc import Callable, Sequence
from pathlib import Path

from ..paths import REPO_ROOT, output_dir
from .registry import DEFAULT_REWARDS, LIBRARY_REWARDS

REWARD_SET_FILE = "reward_set.json"
MY_REWARDS_FILE = "my_rewards.py"


class RewardSetError(ValueError):
    """A reward set that cannot be saved or used; the message is one line and says what to do."""


def reward_set_path() -> Path:
    return output_dir() / REWARD_SET_FILE


def my_rewards_path() -> Path:
    """Where notebook 03's ✏️ cell writes your own rewards (``%%writefile``)."""
    return output_dir() / MY_REWARDS_FILE


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_IMPORTING: set[Path] = set()


def import_reward_file(path: str | Path) -> types.ModuleType:
    """Run a rewards file as a fresh module (the same way every time: notebook 05 and the script)."""
    path = Path(path).resolve()
    if path in _IMPORTING:
        raise RewardSetError(f"{path.name} saves or loads a reward set while it is being imported: remove that call")
    name = f"course_rewards_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RewardSetError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    _IMPORTING.add(path)
    try:
        spec.loader.exec_module(module)
    except RewardSetError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:
        sys.modules.pop(name, None)
        raise RewardSetError(f"{path} does not run: {type(exc).__name__}: {exc}") from exc
    finally:
        _IMPORTING.discard(path)
    return module


def _defining_file(fn: Callable, name: str) -> Path:
    """The file a learner's reward was defined in; a reward typed into a cell has none."""
    code = getattr(fn, "__code__", None)
    if code is None or not isinstance(fn, types.FunctionType):
        raise RewardSetError(f"cannot save {name!r}: only plain functions (def ...) can be saved")
    if name == "<lambda>":
        raise RewardSetError("cannot save a lambda: give the reward a name with def in the ✏️ file cell")
    filename = code.co_filename
    path = Path(filename)
    in_a_cell = filename.startswith("<") or "ipykernel_" in filename or not path.is_file()
    if in_a_cell or path.suffix != ".py":
        raise RewardSetError(
            f"cannot save {name!r}: it was defined in a notebook cell, not in a file. Put it in the ✏️ cell that "
            "starts with %%writefile (notebook 03, section 10), run it and the cell that imports the file, then save"
        )
    path = path.resolve()
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script and Path(script).resolve() == path:
        raise RewardSetError(
            f"cannot save {name!r}: it is defined in the script that is running ({path.name}), and loading it would "
            "run the whole script again. Put your rewards in a file of their own and import them from there"
        )
    if (REPO_ROOT / "utils") in path.parents:
        raise RewardSetError(f"cannot save {name!r}: it is not one of the library rewards {sorted(LIBRARY_REWARDS)}")
    return path


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder.resolve()))
    except ValueError:
        return str(path)


def _check_weights(names: Sequence[str], weights: Sequence, where: str, advice: str = "") -> list[float]:
    out = []
    for name, w in zip(names, weights):
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(float(w)):
            raise RewardSetError(f"{where}: the weight of {name!r} is {w!r}; weights must be finite numbers{advice}")
        out.append(float(w))
    return out


def save_reward_set(
    funcs: Sequence[Callable], weights: Sequence[float] | None = None, path: Path | None = None
) -> Path:
    """Write ``reward_set.json``: names, weights, the file of each reward of your own, the time.

    Refused with one line (and the previous file left as it was: the new one is written to a
    temporary file first and then moved into place) when a reward is not in the library and not
    in a file, or when its file changed since the function was imported (import it again)."""
    funcs = list(funcs)
    if not funcs:
        raise RewardSetError("no rewards to save: MY_REWARDS is empty")
    weights = list(weights) if weights is not None else [1.0] * len(funcs)
    if len(weights) != len(funcs):
        raise RewardSetError(f"{len(funcs)} rewards but {len(weights)} weights: give one weight per reward")
    names = [getattr(fn, "__name__", repr(fn)) for fn in funcs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RewardSetError(f"cannot save: {twice} appear more than once (TRL logs rewards by name)")
    weights = _check_weights(names, weights, "cannot save")
    path = Path(path) if path else reward_set_path()
    modules: dict[Path, types.ModuleType] = {}
    entries = []
    for fn, name, w in zip(funcs, names, weights):
        entry: dict = {"name": name, "weight": w}
        if LIBRARY_REWARDS.get(name) is not fn:
            file = _defining_file(fn, name)
            if file not in modules:
                modules[file] = import_reward_file(file)
            saved = getattr(modules[file], name, None)
            if not callable(saved) or getattr(saved, "__code__", None) != fn.__code__:
                raise RewardSetError(
                    f"cannot save {name!r}: {file.name} changed since the function was imported, or it is not defined "
                    "at the top of the file. Run the cell that imports the file again (and the checks), then save"
                )
            entry.update(file=_relative(file, path.parent), sha256=_sha256(file))
        entries.append(entry)
    data = {"saved_at": _dt.datetime.now().isoformat(timespec="seconds"), "rewards": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)  # all or nothing: a failed save leaves the previous file as it was
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _age(saved_at: str) -> str:
    try:
        minutes = int((_dt.datetime.now() - _dt.datetime.fromisoformat(saved_at)).total_seconds() // 60)
    except (TypeError, ValueError):
        return ""
    if minutes < 1:
        return ", just now"
    if minutes < 120:
        return f", {minutes} min ago"
    return f", {minutes // 60} h ago" if minutes < 48 * 60 else f", {minutes // 1440} days ago"


def load_reward_set(path: Path | None = None) -> tuple[list[Callable], list[float], str]:
    """(functions, weights, where-from: the file and when it was saved).

    No saved set: the library default, and ``where`` says so. A saved set that cannot be used
    raises :class:`RewardSetError` with one line: fix or save it again in notebook 03, or delete
    the file to train with the default. A reward file edited after the set was saved is used as
    it is now, with a note."""
    path = Path(path) if path else reward_set_path()
    if not path.exists():
        default = [LIBRARY_REWARDS[n] for n in DEFAULT_REWARDS]
        return default, [1.0] * len(default), "library default (no saved set)"
    advice = "save it again in notebook 03, or delete it to train with the library default"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RewardSetError(f"{path} is not a readable reward set ({type(exc).__name__}: {exc}); {advice}") from None
    entries = data.get("rewards") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise RewardSetError(f"{path} lists no rewards; {advice}")
    if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
        raise RewardSetError(f"{path}: every reward needs a name; {advice}")
    if any("source" in e for e in entries):
        raise RewardSetError(f"{path} was saved by an older version of the course; {advice}")
    names = [e["name"] for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RewardSetError(f"{path}: {twice} appear more than once; {advice}")
    weights = _check_weights(names, [e.get("weight", 1.0) for e in entries], str(path), f"; {advice}")
    funcs, notes, modules = [], [], {}
    for e in entries:
        name = e["name"]
        if "file" not in e:
            if name not in LIBRARY_REWARDS:
                raise RewardSetError(
                    f"{path}: unknown reward {name!r}: not a library reward ({', '.join(sorted(LIBRARY_REWARDS))}) "
                    f"and no file given; {advice}"
                )
            funcs.append(LIBRARY_REWARDS[name])
            continue
        file = (path.parent / str(e["file"])).resolve()
        if not file.is_file():
            raise RewardSetError(f"{path}: {name!r} comes from {file}, which does not exist; {advice}")
        if file not in modules:
            modules[file] = import_reward_file(file)
            if e.get("sha256") and e["sha256"] != _sha256(file):
                notes.append(f"note: {file.name} changed after the set was saved; training uses it as it is now")
        fn = getattr(modules[file], name, None)
        if not callable(fn):
            raise RewardSetError(f"{path}: {file.name} defines no function {name!r}; {advice}")
        funcs.append(fn)
    saved_at = data.get("saved_at")
    where = f"{path} (saved {str(saved_at).replace('T', ' ')}{_age(saved_at)})" if saved_at else str(path)
    for note in notes:
        print(note)
    return funcs, weights, where
