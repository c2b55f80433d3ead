"""Your reward set as a plain Python file: notebook 03 writes it, training imports it.

Notebook 03's ✏️ cell starts with ``%%writefile`` and writes ``outputs/my_rewards.py``, an ordinary
Python file that ends with two names::

    REWARDS = [format_reward, maximal_score_reward]
    WEIGHTS = [1.0, 1.0]

:func:`load_reward_set` imports it, for notebook 03's checks, notebook 05 and the training script
alike; without the file, the course's default set (:data:`~utils.rewards.registry.DEFAULT_REWARDS`).
The course reads only that one file, at its own place: not a link, not a folder. The file runs first
in a forked process under the checker's time limit, so a file that loops forever, exits or raises
``KeyboardInterrupt`` while it is imported is refused with one line instead of hanging or ending
training; only then does it run here. Anything wrong gives :class:`RewardSetError` with one line,
never another set behind your back.
"""

from __future__ import annotations

import datetime as _dt
import multiprocessing as mp
import os
import stat
import sys
import types
from collections.abc import Callable
from pathlib import Path

from ..paths import output_dir
from .checker import TRAINING_CHECK_TIMEOUT_S, _forked, _in_child
from .registry import DEFAULT_REWARDS, default_reward_funcs
from .total import check_reward_set

MY_REWARDS_FILE = "my_rewards.py"
MAX_FILE_BYTES = 1_000_000  # a rewards file is a few KB; this is not one
_MODULE = "course_my_rewards"  # its name in sys.modules (pickling and dataclasses look it up there)


class RewardSetError(ValueError):
    """A reward set that cannot be used; the message is one line and says what to do."""


def _usable(path: Path) -> Path:
    """``path``, refused (one line) unless it is a plain ``.py`` file or nothing yet."""
    if "\0" in str(path):
        raise RewardSetError(f"{str(path)!r} contains a NUL byte: not a file name")
    if path.suffix != ".py":
        raise RewardSetError(f"{path}: a rewards file is a Python file ending in .py")
    try:
        mode = path.lstat().st_mode  # lstat: a link is refused, not followed
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise RewardSetError(f"{path} cannot be read ({type(exc).__name__}: {exc.strerror})") from None
    if stat.S_ISLNK(mode):
        raise RewardSetError(
            f"{path} is a link: the course reads only the file notebook 03 writes there; delete the link"
        )
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise RewardSetError(f"{path} is {kind}: delete or rename it, then run notebook 03's ✏️ cell to write the file")
    return path


def my_rewards_path() -> Path:
    """Where notebook 03's ✏️ cell writes your rewards (refused with one line when a folder or a
    link is in the way, so the cell cannot write somewhere else)."""
    return _usable(output_dir() / MY_REWARDS_FILE)


def _run_file(source: bytes, path: Path) -> types.ModuleType:
    """Run the file's text as a fresh module (the same text in the fork and here)."""
    module = types.ModuleType(_MODULE)
    module.__file__ = str(path)
    sys.modules[_MODULE] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - the learner's own file
    except BaseException:
        sys.modules.pop(_MODULE, None)
        raise
    return module


def _rewards_of(module: types.ModuleType, path: Path) -> tuple[list[Callable], list[float]]:
    """(REWARDS, WEIGHTS) of the file, checked; WEIGHTS may be left out (all 1)."""
    funcs = getattr(module, "REWARDS", None)
    if funcs is None:
        raise RewardSetError(f"{path} defines no REWARDS: end it with REWARDS = [...] and WEIGHTS = [...]")
    if not isinstance(funcs, (list, tuple)) or not funcs:
        raise RewardSetError(f"{path}: REWARDS must be a non-empty list of reward functions, got {funcs!r:.80}")
    try:
        weights = check_reward_set(funcs, getattr(module, "WEIGHTS", None))
    except ValueError as exc:
        raise RewardSetError(f"{path}: {exc}") from None
    return list(funcs), weights


def _import_in_child(source: bytes, path: Path, conn) -> None:  # runs in a forked process
    _in_child()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - its prints show once, in the parent
    try:
        _rewards_of(_run_file(source, path), path)
    except RewardSetError as exc:
        conn.send(("error", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        conn.send(("error", _import_error(path, exc)))
    else:
        conn.send(("ok", None))


def _import_error(path: Path, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"{path} calls sys.exit() while it is imported: a rewards file only defines rewards"
    text = str(exc).strip().splitlines()
    return f"{path} cannot be imported: {type(exc).__name__}" + (f": {text[0]}" if text else "")


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // 1440} days ago"


def load_reward_set(
    path: str | Path | None = None, timeout: float = TRAINING_CHECK_TIMEOUT_S
) -> tuple[list[Callable], list[float], str]:
    """(functions, weights, where they came from: one line) for training.

    ``path`` defaults to :func:`my_rewards_path`; without that file, the course's default set.
    A file that cannot be used raises :class:`RewardSetError` with one line: fix it in notebook 03,
    or delete it to train with the default."""
    path = my_rewards_path() if path is None else _usable(Path(path))
    if not path.exists():
        names = " + ".join(DEFAULT_REWARDS)
        return default_reward_funcs(), [1.0] * len(DEFAULT_REWARDS), f"the course's default: {names} (no {path})"
    try:  # a plain file (checked; O_NOFOLLOW: still no link now): read once, run the same text twice
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as fh:
            source = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RewardSetError(f"{path} cannot be read ({type(exc).__name__}: {exc.strerror})") from None
    if len(source) > MAX_FILE_BYTES:
        raise RewardSetError(f"{path} is over {MAX_FILE_BYTES:,} bytes: not a rewards file")
    advice = "fix it in notebook 03's ✏️ cell, or delete the file to train with the course's default"
    if "fork" in mp.get_all_start_methods():  # first in a fork, under the time limit (Windows: no fork)
        status, result = _forked(_import_in_child, (source, path), timeout)
        if status == "timeout":
            raise RewardSetError(f"{path} did not finish importing within {timeout:g} s (an endless loop?); {advice}")
        if status == "died":
            raise RewardSetError(f"{path} ended the process while it was imported (exit code {result}); {advice}")
        if status == "error":
            raise RewardSetError(f"{result}; {advice}")
    try:  # then here, the same text: the fork saw it finish
        module = _run_file(source, path)
    except (Exception, SystemExit) as exc:  # only a file that behaves differently the second time
        raise RewardSetError(f"{_import_error(path, exc)}; {advice}") from None
    funcs, weights = _rewards_of(module, path)
    written = _dt.datetime.fromtimestamp(path.stat().st_mtime)
    age = _age((_dt.datetime.now() - written).total_seconds())
    return funcs, weights, f"{path} (written {written:%Y-%m-%d %H:%M}, {age})"
