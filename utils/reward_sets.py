"""Save the reward set chosen in notebook 03 so notebook 04 trains with it.

The file is small JSON: reward names with weights, plus the source code of any reward
that is not in the library (a learner's own function from a notebook cell). Loading
runs that source, so only load reward sets you wrote yourself.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path
from typing import Callable, Sequence

from .paths import output_dir
from .rewards import DEFAULT_REWARDS, _registry, get_reward

REWARD_SET_FILE = "reward_set.json"


def reward_set_path() -> Path:
    return output_dir() / REWARD_SET_FILE


def save_reward_set(funcs: Sequence[Callable], weights: Sequence[float] | None = None, path: Path | None = None) -> Path:
    weights = list(weights) if weights is not None else [1.0] * len(funcs)
    if len(weights) != len(funcs):
        raise ValueError(f"{len(funcs)} rewards but {len(weights)} weights")
    registry = _registry()
    entries = []
    for fn, w in zip(funcs, weights):
        name = fn.__name__
        entry = {"name": name, "weight": float(w)}
        if registry.get(name) is not fn:
            try:
                entry["source"] = textwrap.dedent(inspect.getsource(fn))
            except (OSError, TypeError) as exc:
                raise ValueError(f"cannot save {name!r}: its source is not available ({exc})") from exc
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
                namespace: dict = {}
                exec("from utils.rewards import *\nfrom utils.parsing import *\n" + e["source"], namespace)  # noqa: S102
                funcs.append(namespace[e["name"]])
            else:
                funcs.append(get_reward(e["name"]))
            weights.append(float(e.get("weight", 1.0)))
    except Exception as exc:  # noqa: BLE001 - a broken file must not block training
        print(f"Could not load the reward set from {path} ({type(exc).__name__}: {exc}); using the library default.")
        return [get_reward(n) for n in DEFAULT_REWARDS], [1.0] * len(DEFAULT_REWARDS), "library default (saved set unreadable)"
    return funcs, weights, str(path)
