"""What every reward shares: TRL's calling convention and a guard that never lets a reward crash training.

A reward is ``fn(completions, **kwargs) -> list[float]``. TRL passes ``prompts``,
``completions``, ``completion_ids`` and every dataset column (``events``,
``priority_events``, ``optimal_score``) as keyword arguments, one list entry per completion.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping

from ..task.columns import PROBLEM_COLUMNS

RewardFn = Callable[..., list]


def problem_columns(kwargs: Mapping, n: int) -> list[tuple[list, list, float]]:
    """(events, priority_events, optimal_score) per completion, from TRL's keyword args."""
    missing = [c for c in PROBLEM_COLUMNS if kwargs.get(c) is None]
    if missing:
        raise ValueError(
            f"this reward needs the dataset columns {missing}; TRL passes every dataset column "
            f"as a keyword argument, and got {sorted(k for k in kwargs if k != 'completions')}"
        )
    cols = [list(kwargs[c]) for c in PROBLEM_COLUMNS]
    if any(len(c) != n for c in cols):
        raise ValueError(f"{n} completions but columns of lengths {[len(c) for c in cols]}")
    return list(zip(*cols))


def safe(fn: Callable[[], float]) -> float:
    """Any surprise in a reward becomes 0.0 with a warning: never crash a training run."""
    try:
        value = float(fn())
    except Exception as exc:  # noqa: BLE001 - a reward must not kill training
        warnings.warn(f"reward error treated as 0: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
        return 0.0
    return value if math.isfinite(value) else 0.0


def reward_name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or repr(fn)
