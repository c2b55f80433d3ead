"""What every reward shares: TRL's calling convention and a guard that never lets a reward crash training.

A reward is ``fn(completions, **kwargs) -> list[float]``. TRL passes ``prompts``,
``completions``, ``completion_ids`` and every dataset column (``events``,
``priority_events``, ``optimal_score``) as keyword arguments, one list entry per completion.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping

from ..task.columns import PROBLEM_COLUMNS

RewardFn = Callable[..., list]


def as_batch(completions: Iterable) -> list:
    """The completions of one call, as a list: one entry per answer.

    One string (or bytes) is refused: iterating it would score each character as an answer
    (``format_reward("<think>...")`` gave one 0 per character). Wrap one answer as ``[answer]``."""
    if isinstance(completions, (str, bytes, bytearray)):
        raise TypeError(
            f"completions must be a list with one entry per answer, got one {type(completions).__name__} "
            "(it would be scored character by character): wrap a single answer as [answer]"
        )
    if isinstance(completions, Mapping) or not isinstance(completions, Iterable):
        raise TypeError(
            f"completions must be a list with one entry per answer, got a {type(completions).__name__}: "
            "wrap a single answer as [answer]"
        )
    return list(completions)


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
