"""Scores and the optimal schedule (weighted interval scheduling), plus the baselines it beats.

An event is ``[name, "HH:MM", "HH:MM"]``; its value is its duration in minutes, doubled for a
priority event (:mod:`utils.task.events`). The optimum is the largest total value of events
that do not overlap (touching is fine).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .events import Interval, clashing, event_key, name_key, overlaps, priority_keys, to_intervals


def schedule_score(events: Iterable[Sequence], priority_events: Iterable[str]) -> int:
    """Weighted duration of ``events``: minutes, doubled for priority events.

    This does not check overlaps; it is the objective the optimum maximises.
    """
    return sum(iv.value for iv in to_intervals(events, priority_events))


def is_feasible(events: Iterable[Sequence]) -> bool:
    """True when no two events overlap (touching allowed)."""
    return not clashing([iv.span for iv in to_intervals(events)])


@dataclass
class DPTrace:
    """Everything the DP computed, for teaching: sorted intervals, p(j) and the table."""

    intervals: list[Interval]  # sorted by end time
    predecessor: list[int]  # p[j]: how many intervals end at or before interval j starts
    table: list[int]  # table[j]: best score using the first j intervals (table[0] = 0)
    take: list[bool]  # take[j-1]: whether the best for the first j intervals takes interval j
    chosen: list[Interval]


def problem_intervals(events: Iterable[Sequence], priority_events: Iterable[str]) -> list[Interval]:
    """The problem's events as intervals, refusing a priority that names none of them: a typo ("breakfast" for
    "Breakfast") would otherwise drop that event's doubling without a word, and every solver below would answer
    another problem than the one written.

    >>> problem_intervals([["Gym", "07:00", "08:00"]], ["gym"])
    Traceback (most recent call last):
    ...
    ValueError: priority event 'gym' is not one of the events (['Gym'])
    """
    prios = priority_keys(priority_events)
    ivs = to_intervals(events, prios)
    names = {name_key(iv.name) for iv in ivs}
    if unknown := sorted(prios - names):
        raise ValueError(f"priority event {unknown[0]!r} is not one of the events ({sorted(names)})")
    return ivs


def solve_dp(events: Iterable[Sequence], priority_events: Iterable[str]) -> DPTrace:
    """Weighted interval scheduling in O(n log n).

    Sort by end; ``p(j)`` = number of intervals that end no later than interval ``j``
    starts (binary search, so touching events are compatible);
    ``OPT(j) = max(OPT(j-1), value_j + OPT(p(j)))``; walk back to recover the set.
    """
    ivs = sorted(problem_intervals(events, priority_events), key=lambda iv: (iv.end, iv.start, iv.name))
    ends = [iv.end for iv in ivs]
    pred = [bisect.bisect_right(ends, iv.start) for iv in ivs]
    table = [0] * (len(ivs) + 1)
    take = [False] * len(ivs)
    for j, iv in enumerate(ivs, start=1):
        with_j = iv.value + table[pred[j - 1]]
        take[j - 1] = with_j > table[j - 1]
        table[j] = with_j if take[j - 1] else table[j - 1]
    chosen: list[Interval] = []
    j = len(ivs)
    while j > 0:
        if take[j - 1]:
            chosen.append(ivs[j - 1])
            j = pred[j - 1]
        else:
            j -= 1
    chosen.reverse()
    return DPTrace(ivs, pred, table, take, chosen)


def optimal_schedule(events: Iterable[Sequence], priority_events: Iterable[str]) -> tuple[int, list[list[str]]]:
    """Best total weighted duration and the events achieving it, in chronological order."""
    trace = solve_dp(events, priority_events)
    return trace.table[-1], [iv.as_event() for iv in trace.chosen]


def brute_force_schedule(
    events: Sequence[Sequence], priority_events: Iterable[str], max_events: int = 20
) -> tuple[int, list[list[str]]]:
    """Try every subset (2^n): the obviously-correct answer the DP is checked against."""
    ivs = problem_intervals(events, priority_events)
    if len(ivs) > max_events:
        raise ValueError(f"brute force over {len(ivs)} events would try 2^{len(ivs)} subsets")
    best: tuple[int, tuple[Interval, ...]] = (0, ())
    for r in range(1, len(ivs) + 1):
        for subset in itertools.combinations(ivs, r):
            if not clashing([iv.span for iv in subset]):
                ordered = sorted(subset, key=lambda iv: iv.start)
                total = sum(iv.value for iv in ordered)
                if total > best[0]:
                    best = (total, tuple(ordered))
    return best[0], [iv.as_event() for iv in best[1]]


def greedy_schedule(
    events: Iterable[Sequence], priority_events: Iterable[str], rule: str = "earliest_end"
) -> tuple[int, list[list[str]]]:
    """A greedy heuristic: go through events in ``rule`` order, keep each that fits.

    Rules: ``earliest_end`` (optimal when all values are equal, not here),
    ``earliest_start``, ``highest_value``, ``longest``, ``priority_first``.
    """
    keys = {
        "earliest_end": lambda iv: (iv.end, iv.start),
        "earliest_start": lambda iv: (iv.start, iv.end),
        "highest_value": lambda iv: (-iv.value, iv.start),
        "longest": lambda iv: (-(iv.end - iv.start), iv.start),
        "priority_first": lambda iv: (-(iv.value // (iv.end - iv.start)), iv.end),
    }
    if rule not in keys:
        raise ValueError(f"unknown greedy rule {rule!r}; choose from {sorted(keys)}")
    kept: list[Interval] = []
    for iv in sorted(problem_intervals(events, priority_events), key=keys[rule]):
        if not any(overlaps(iv.span, k.span) for k in kept):
            kept.append(iv)
    kept.sort(key=lambda iv: iv.start)
    return sum(iv.value for iv in kept), [iv.as_event() for iv in kept]


def free_events(
    events: Iterable[Sequence], priority_events: Iterable[str], listed: Iterable[Sequence]
) -> list[list[str]]:
    """The problem's events that a schedule leaves out although they clash with nothing it lists: what
    could be added for free. Taken greedily, highest value first, each clashing with none listed nor added
    before, so their values add up to what completing the schedule would gain. Empty for a *maximal*
    schedule (one that cannot grow), which every optimal schedule is.

    ``listed`` is matched to the problem by :func:`~utils.task.events.event_key` (name, start, end).

    >>> events = [["A", "09:00", "10:00"], ["B", "09:30", "11:00"], ["C", "11:00", "12:00"]]
    >>> free_events(events, [], [["A", "09:00", "10:00"]])  # B clashes with A; C is free
    [['C', '11:00', '12:00']]
    >>> free_events(events, [], [["A", "09:00", "10:00"], ["C", "11:00", "12:00"]])
    []
    """
    listed_keys = {event_key(e) for e in listed}
    events = list(events)
    problem = list(zip(events, to_intervals(events, priority_events)))
    taken = [iv.span for ev, iv in problem if event_key(ev) in listed_keys]
    added: list[Interval] = []
    for ev, iv in sorted(problem, key=lambda p: (-p[1].value, p[1].start)):
        if event_key(ev) in listed_keys or any(overlaps(iv.span, t) for t in taken):
            continue
        taken.append(iv.span)
        added.append(iv)
    return [iv.as_event() for iv in sorted(added, key=lambda iv: iv.start)]


GREEDY_RULES = ("earliest_end", "earliest_start", "highest_value", "longest", "priority_first")
