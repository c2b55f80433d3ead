"""Model-free baselines: answers written by rules, scored by the same evaluation.

They frame every model number in the course. The DP answer scores 100 by construction
(the ceiling); the greedy rules show how far a sensible heuristic gets; a random valid
schedule is the floor any "valid" model should beat; listing every event is the typical
failure of an untrained model (the problems always contain overlaps).

Every baseline is ``fn(row, seed) -> completion`` in the answer format of
:func:`utils.task.prompts.format_answer`, so it goes through exactly the path a model's
completion does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping

from ..task.events import in_time_order, overlaps, to_interval
from ..task.prompts import format_answer
from ..task.scheduling import GREEDY_RULES, greedy_schedule, optimal_schedule
from .evaluation import EvalSummary, evaluate

Baseline = Callable[[Mapping, int], str]


def dp_completion(row: Mapping, seed: int = 0) -> str:
    """The DP-optimal schedule: scores 100 by construction."""
    best, events = optimal_schedule(row["events"], row["priority_events"])
    return format_answer(f"Weighted interval scheduling by dynamic programming: best total {best}.", events)


def greedy_completion(row: Mapping, seed: int = 0, rule: str = "earliest_end") -> str:
    """A greedy rule from :data:`utils.task.scheduling.GREEDY_RULES`."""
    total, events = greedy_schedule(row["events"], row["priority_events"], rule)
    return format_answer(f"Greedy by {rule.replace('_', ' ')}: total {total}.", events)


def random_valid_completion(row: Mapping, seed: int = 0) -> str:
    """A random maximal set of non-overlapping events, in chronological order.

    Events are visited in a seeded random order and kept when they fit: always valid
    unless at most one event fits. The seed mixes in nothing row-specific, so callers
    pass a per-row seed (see :func:`baseline_completions`).
    """
    rng = random.Random(seed)
    order = list(row["events"])
    rng.shuffle(order)
    kept = []
    for ev in order:
        if not any(overlaps(to_interval(ev).span, to_interval(k).span) for k in kept):
            kept.append(ev)
    return format_answer("Kept events in random order whenever they fit.", in_time_order(kept))


def all_events_completion(row: Mapping, seed: int = 0) -> str:
    """Every event, in the problem's order: overlaps (or, on equal starts, unsorted)."""
    return format_answer("Doing everything.", [list(e) for e in row["events"]])


def _greedy(rule: str) -> Baseline:
    def fn(row: Mapping, seed: int = 0) -> str:
        return greedy_completion(row, seed, rule)

    fn.__name__ = f"greedy_{rule}"
    fn.__doc__ = f"Greedy: visit events by {rule.replace('_', ' ')}, keep each that fits."
    return fn


BASELINES: dict[str, Baseline] = {
    "dp_optimal": dp_completion,
    **{f"greedy_{rule}": _greedy(rule) for rule in GREEDY_RULES},
    "random_valid": random_valid_completion,
    "all_events": all_events_completion,
}
"""Baseline name -> ``fn(row, seed) -> completion``."""


def baseline_completions(name: str, rows: Iterable[Mapping], seed: int = 0) -> list[str]:
    """One completion per row from baseline ``name`` (row ``i`` gets seed ``seed * 100_003 + i``)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINES)}")
    fn = BASELINES[name]
    return [fn(row, seed * 100_003 + i) for i, row in enumerate(rows)]


def evaluate_baselines(
    rows: Iterable[Mapping], names: Iterable[str] | None = None, seed: int = 0
) -> dict[str, EvalSummary]:
    """:func:`utils.evaluate.evaluate` of each baseline on ``rows``."""
    rows = list(rows)
    return {name: evaluate(rows, baseline_completions(name, rows, seed)) for name in (names or BASELINES)}


def baseline_table(rows: Iterable[Mapping], names: Iterable[str] | None = None, seed: int = 0):
    """A pandas table, one line per baseline: n, valid, mean_score and the failure counts."""
    import pandas as pd

    summaries = evaluate_baselines(rows, names, seed)
    return pd.DataFrame([{"baseline": name, **s.as_dict()} for name, s in summaries.items()]).set_index("baseline")
