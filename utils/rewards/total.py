"""The weighted total of several rewards, and the weights it takes: one definition for everything.

GRPO optimises one number per answer: the weighted sum of the rewards. Training (TRL), the
sample tables, the group probe, ``explain()`` and notebook 04's ``combine_rewards`` all compute
it here, so they never disagree.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from .common import RewardFn, reward_name

#: The largest weight accepted. GRPO divides each group's totals by their spread, so only the
#: ratios between weights matter; a weight beyond this only risks an overflow (1e308 x 70 is inf).
MAX_WEIGHT = 1e6


def check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """``weights`` as a list of ``n`` floats between -MAX_WEIGHT and MAX_WEIGHT (``None``: all 1.0).

    Anything else raises ``ValueError`` with one line: a missing weight would silently drop a
    reward, a NaN one would make every total NaN, a huge one would make it infinite."""
    if weights is None:
        return [1.0] * n
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise ValueError(f"weights must be a list of {n} numbers, got {weights!r}")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(float(w)):
            raise ValueError(f"every reward weight must be a finite number, got {w!r}")
        if abs(float(w)) > MAX_WEIGHT:
            raise ValueError(
                f"reward weight {w!r} is too large (at most {MAX_WEIGHT:g} either way): only the ratios "
                "between weights matter, and a huge one makes the total infinite"
            )
        out.append(float(w))
    if len(out) != n:
        raise ValueError(f"{n} rewards but {len(out)} weights: give one weight per reward")
    return out


def check_reward_set(funcs: Sequence[RewardFn], weights: Sequence[float] | None = None) -> list[float]:
    """The checks a reward set passes before any reward runs: at least one reward, each a function with a name of
    its own, and one weight per reward (:func:`check_weights`). Returns the weights; anything else raises
    ``ValueError`` with one line.

    Names must differ: TRL logs each reward as ``rewards/<name>/mean``, and the sample tables and the group probe
    add the rewards up by name, so a reward of yours named like a library one would hide it (or be hidden).

    >>> def format_reward(completions, **kw):
    ...     return [3.0] * len(completions)
    >>> from utils.rewards import format_reward as library_format
    >>> check_reward_set([library_format, format_reward], [1, 1])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: two rewards are named 'format_reward': ... rename yours (e.g. def my_format_reward)
    """
    funcs = list(funcs)
    if not funcs:
        raise ValueError("no rewards: the set needs at least one reward function")
    for i, fn in enumerate(funcs):
        if not callable(fn):
            raise ValueError(f"reward {i} is {fn!r:.60}, not a function")
    names = [reward_name(fn) for fn in funcs]
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            raise ValueError(
                f"two rewards are named {name!r}: TRL and the course tell rewards apart by name, so one would hide "
                f"the other; rename yours (e.g. def my_{name.strip('<>')})"
            )
    return check_weights(weights, len(funcs))


def weighted_total(values: Sequence[float | None], weights: Sequence[float]) -> float:
    """One answer's total: the sum of weight x value. ``None`` (the reward does not apply to this
    answer) is skipped, as TRL does; if no reward applies the total is NaN (TRL then gives the
    answer advantage 0). A NaN value (a reward that failed) makes the total NaN."""
    present = [(w, float(v)) for v, w in zip(values, weights, strict=True) if v is not None]
    return sum(w * v for w, v in present) if present else math.nan


def total_reward(
    funcs: Sequence[RewardFn], completions: Sequence[Any], weights: Sequence[float] | None = None, **columns
) -> list[float]:
    """:func:`weighted_total` per completion, calling each reward the way TRL does.

    Each reward must return one value per completion, else ``ValueError``."""
    funcs = list(funcs)
    weights = check_weights(weights, len(funcs))
    per_fn = []
    for fn in funcs:
        values = list(fn(completions=list(completions), **columns))
        if len(values) != len(completions):
            raise ValueError(f"{reward_name(fn)} returned {len(values)} values for {len(completions)} completions")
        per_fn.append(values)
    return [weighted_total(vals, weights) for vals in zip(*per_fn)] if per_fn else [math.nan] * len(completions)
