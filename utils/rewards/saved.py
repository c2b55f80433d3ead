"""Save the reward set chosen in notebook 03 so notebook 05 trains with it.

The file is small JSON: reward names with weights, plus the source code of any reward
that is not in the library (a learner's own function from a notebook cell), with the
imports and simple constants it uses from the notebook. Loading runs that source, so
only load reward sets you wrote yourself.
"""

from __future__ import annotations

import builtins
import inspect
import json
import re
import textwrap
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..paths import output_dir
from .registry import DEFAULT_REWARDS, LIBRARY_REWARDS, get_reward

REWARD_SET_FILE = "reward_set.json"


def reward_set_path() -> Path:
    return output_dir() / REWARD_SET_FILE


PREAMBLE = "from utils.rewards import *\n"
_SIMPLE = (int, float, str, bool, bytes, type(None))


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, comprehensions
            names |= _global_names(const)
    return names


def _dependencies(fn: Callable, seen: set | None = None) -> tuple[list[str], list[str]]:
    """(lines that recreate the notebook globals ``fn`` uses, names that cannot be saved).

    Modules, compiled patterns, simple constants, ``utils`` objects and helper functions
    defined next to ``fn`` (their own source, recursively) can be saved; anything else not.
    """
    seen = set() if seen is None else seen
    seen.add(fn)
    lines, unsaved = [], list(fn.__code__.co_freevars)  # variables of an enclosing function
    namespace: dict[str, Any] = {}
    exec(PREAMBLE, namespace)  # noqa: S102 - what loading provides anyway
    for name in sorted(_global_names(fn.__code__)):
        if name not in fn.__globals__ or hasattr(builtins, name):
            continue
        obj = fn.__globals__[name]
        if name in namespace and namespace[name] is obj:
            continue
        if isinstance(obj, types.ModuleType):
            lines.append(f"import {obj.__name__} as {name}" if obj.__name__ != name else f"import {name}")
        elif isinstance(obj, re.Pattern):
            lines.append(f"import re as _re\n{name} = _re.compile({obj.pattern!r}, {int(obj.flags)})")
        elif isinstance(obj, _SIMPLE) or (
            isinstance(obj, (tuple, frozenset)) and all(isinstance(x, _SIMPLE) for x in obj)
        ):
            lines.append(f"{name} = {obj!r}")
        elif getattr(obj, "__module__", "").startswith("utils."):
            lines.append(f"from {obj.__module__} import {obj.__name__} as {name}")
        elif isinstance(obj, types.FunctionType) and obj.__module__ == fn.__module__ and obj.__name__ == name:
            if obj in seen:
                continue
            try:
                helper_src = textwrap.dedent(inspect.getsource(obj))
            except (OSError, TypeError):
                unsaved.append(name)
                continue
            more, missing = _dependencies(obj, seen)
            lines += [*more, helper_src]
            unsaved += missing
        else:
            unsaved.append(name)
    return lines, unsaved


def _load_source(entry: dict) -> Callable:
    namespace: dict[str, Any] = {}
    exec(PREAMBLE + entry["source"], namespace)  # noqa: S102 - your own saved code
    return namespace[entry["name"]]


def _try_call(fn: Callable) -> None:
    """Call a reloaded reward once: a name it cannot find shows up now, not in notebook 05."""
    from .checker import SAMPLE_PROBLEM

    columns = {k: [v] for k, v in SAMPLE_PROBLEM.items() if k != "prompt"}
    try:
        fn(completions=["<think>x</think>"], prompts=[""], completion_ids=[[0]], **columns)
    except NameError:
        raise
    except Exception:  # noqa: BLE001 - other failures are the checker's business
        pass


def save_reward_set(
    funcs: Sequence[Callable], weights: Sequence[float] | None = None, path: Path | None = None
) -> Path:
    weights = list(weights) if weights is not None else [1.0] * len(funcs)
    if len(weights) != len(funcs):
        raise ValueError(f"{len(funcs)} rewards but {len(weights)} weights")
    entries = []
    for fn, w in zip(funcs, weights):
        name = fn.__name__
        entry = {"name": name, "weight": float(w)}
        if LIBRARY_REWARDS.get(name) is not fn:
            try:
                source = textwrap.dedent(inspect.getsource(fn))
            except (OSError, TypeError) as exc:
                raise ValueError(f"cannot save {name!r}: its source is not available ({exc})") from exc
            lines, unsaved = _dependencies(fn)
            if unsaved:
                raise ValueError(
                    f"cannot save {name!r}: it uses {unsaved} from the notebook; move them "
                    "inside the function (or import them there) and save again"
                )
            entry["source"] = "\n".join([*lines, source])
            rr = getattr(fn, "reward_range", None)
            if rr is not None:
                entry["reward_range"] = [float(rr[0]), float(rr[1])]
            try:
                _try_call(_load_source(entry))
            except Exception as exc:  # noqa: BLE001 - better now than in notebook 05
                raise ValueError(
                    f"cannot save {name!r}: its saved source does not run ({type(exc).__name__}: {exc})"
                ) from exc
        entries.append(entry)
    path = Path(path) if path else reward_set_path()
    path.write_text(json.dumps({"rewards": entries}, indent=1), encoding="utf-8")
    return path


def load_reward_set(path: Path | None = None) -> tuple[list[Callable], list[float], str]:
    """(functions, weights, where-from). Falls back to the library default when missing."""
    path = Path(path) if path else reward_set_path()
    if not path.exists():
        return [get_reward(n) for n in DEFAULT_REWARDS], [1.0] * len(DEFAULT_REWARDS), "library default (no saved set)"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["rewards"]
        funcs, weights = [], []
        for e in entries:
            if "source" in e:
                fn = _load_source(e)
                if e.get("reward_range") and not hasattr(fn, "reward_range"):
                    fn.reward_range = tuple(e["reward_range"])
                funcs.append(fn)
            else:
                funcs.append(get_reward(e["name"]))
            weights.append(float(e.get("weight", 1.0)))
    except Exception as exc:  # noqa: BLE001 - a broken file must not block training
        print(f"Could not load the reward set from {path} ({type(exc).__name__}: {exc}); using the library default.")
        return (
            [get_reward(n) for n in DEFAULT_REWARDS],
            [1.0] * len(DEFAULT_REWARDS),
            "library default (saved set unreadable)",
        )
    return funcs, weights, str(path)
