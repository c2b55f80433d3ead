"""What makes a dataset row a problem of this course: one set of rules for every reader.

The generator only makes rows that pass; the loaders (:mod:`utils.task.data`) and the evaluator
(:mod:`utils.evaluate.evaluation`) refuse any other row with a message naming it; the score
rewards (:mod:`utils.rewards`) give 0 for it, with a warning that says why. A row is a problem when

* ``events`` is a list of ``[name, "HH:MM", "HH:MM"]`` events that end after they start, each name
  a possible event name and each time written exactly ``HH:MM`` (an answer must be able to
  reproduce them: :func:`name_problem`);
* ``priority_events`` is a list of names of those events;
* ``optimal_score`` is a finite number no lower than the value of the best single event and no
  higher than the optimum the DP finds (anything else cannot be this problem's optimum, and a
  reward or score would divide by it);
* the optimal schedule has at least two events: the reference's rules, kept by the course's
  rewards and by the reference evaluation, give 0 to any schedule of fewer than two events, so on a
  problem whose optimum is a single event no answer could be both valid and optimal.

Names are compared after stripping surrounding spaces (:func:`utils.task.events.name_key`): the
course's parser strips them. Problems never need it, since :func:`name_problem` refuses such names.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from .columns import PROBLEM_COLUMNS as PROBLEM_KEYS
from .events import to_intervals
from .scheduling import solve_dp
from .times import minutes_to_time

MIN_OPTIMAL_EVENTS = 2  # the reference's rule: a schedule of fewer events scores 0


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an event name, or None. A name appears between ``<name>`` tags in
    the answer, so ``<`` and ``>`` would make the DP-optimal answer unparseable; surrounding
    spaces would be stripped by the parser and no longer match the problem."""
    if not isinstance(name, str) or not name.strip():
        return "names must be non-empty strings"
    if "<" in name or ">" in name:
        return "names must not contain '<' or '>' (they would break the answer's tags)"
    if name != name.strip() or "\n" in name:
        return "names must not start or end with spaces, nor contain line breaks"
    return None


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _problem_error(events: Any, priority_events: Any, optimal_score: Any, whole: bool = True) -> str | None:
    """The checks in the module docstring's order; ``whole=False``: only what the optimum needs."""
    if not _is_list(events) or not events:
        return f"events must be a non-empty list of [name, 'HH:MM', 'HH:MM'], got {events!r:.80}"
    if whole:
        for event in events:
            if _is_list(event) and len(event) == 3 and (why := name_problem(event[0])):
                return f"event name {event[0]!r:.60}: {why}"
    try:
        intervals = to_intervals(events)
    except ValueError as exc:
        return str(exc)
    if not _is_list(priority_events):
        return f"priority_events must be a list of event names, got {priority_events!r:.80}"
    if whole:
        for event, iv in zip(events, intervals):
            if (event[1], event[2]) != (minutes_to_time(iv.start), minutes_to_time(iv.end)):  # e.g. " 09:30"
                return f"event {list(event)!r:.80}: times must be written 'HH:MM' exactly, as an answer writes them"
        names = {iv.name for iv in intervals}
        for name in priority_events:
            if why := name_problem(name):
                return f"priority event {name!r:.60}: {why}"
            if name not in names:
                return f"priority event {name!r:.60} is not one of the events"
    opt = optimal_score
    if isinstance(opt, bool) or not isinstance(opt, numbers.Real) or not math.isfinite(float(opt)):
        return f"optimal_score must be a finite number, got {opt!r}"
    try:
        trace = solve_dp(events, priority_events)
    except (TypeError, ValueError) as exc:  # only with whole=False: e.g. priority names that are not strings
        return f"cannot solve this problem: {exc}"
    best_single = max(trace.intervals, key=lambda iv: iv.value)
    if opt < best_single.value:
        return (
            f"optimal_score {opt!r} is below the value of {best_single.name!r} alone ({best_single.value}): "
            "it cannot be this problem's optimum"
        )
    if opt > trace.table[-1]:
        return f"optimal_score {opt!r} is above the best schedule's score ({trace.table[-1]})"
    if whole and len(trace.chosen) < MIN_OPTIMAL_EVENTS:
        return (
            f"its optimal schedule is the single event {trace.chosen[0].name!r}: an answer needs at least two "
            "events to score (the reference's rule), so the optimum could not be answered; the generator "
            "never makes such problems"
        )
    return None


@lru_cache(maxsize=4096)
def _cached(key: tuple) -> str | None:
    return _problem_error(*key)


def _checked(events: Any, priority_events: Any, optimal_score: Any, whole: bool) -> str | None:
    try:  # lists become tuples, which _problem_error reads the same way; unhashable: no cache
        key = (
            tuple([tuple(e) if type(e) is list else e for e in events]) if type(events) is list else events,
            tuple(priority_events) if type(priority_events) is list else priority_events,
            optimal_score,
            whole,
        )
        if _cached(key) is None:
            return None
    except TypeError:
        pass
    return _problem_error(events, priority_events, optimal_score, whole)  # rare: the message shows the values given


def problem_error(events: Any, priority_events: Any, optimal_score: Any) -> str | None:
    """Why ``(events, priority_events, optimal_score)`` is not a problem of the course, or None.

    Cached: a reward sees the same problem for every completion of a group (about 2 us then)."""
    return _checked(events, priority_events, optimal_score, True)


def optimum_error(events: Any, priority_events: Any, optimal_score: Any) -> str | None:
    """Why ``optimal_score`` cannot be the optimum of these events, or None: not a finite number,
    below the best single event or above the DP's optimum. Only this part of :func:`problem_error`,
    for the reference's reward, which scores any row (names as written) but divides by the optimum."""
    return _checked(events, priority_events, optimal_score, False)


def row_error(row: Any) -> str | None:
    """Why ``row`` (a mapping with :data:`PROBLEM_KEYS`) is not a problem, or None."""
    if not isinstance(row, Mapping):
        return f"a row must be a mapping with {list(PROBLEM_KEYS)}, got {type(row).__name__}"
    missing = [k for k in PROBLEM_KEYS if k not in row]
    if missing:
        return f"lacks {missing}; a problem row needs {list(PROBLEM_KEYS)}"
    return problem_error(row["events"], row["priority_events"], row["optimal_score"])


def check_row(row: Any, where: str = "row") -> None:
    """Raise ``ValueError("<where>: <why>")`` unless ``row`` is a problem (see the module docstring)."""
    error = row_error(row)
    if error:
        raise ValueError(f"{where}: {error}")
