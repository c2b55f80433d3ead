"""Times, scores and the optimal schedule (weighted interval scheduling).

An event is ``[name, "HH:MM", "HH:MM"]`` as in the public `events-scheduling` dataset.
An event's value is its duration in minutes, doubled when it is a priority event.
Two events overlap when one starts strictly before the other ends: touching events
(``a.end == b.start``) do not overlap.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from typing import Iterable, Sequence

PRIORITY_WEIGHT = 2
NORMAL_WEIGHT = 1
MINUTES_PER_DAY = 24 * 60


def time_to_minutes(s: str) -> int:
    """``"HH:MM"`` -> minutes after midnight. Raises ``ValueError`` naming the bad value."""
    if not isinstance(s, str):
        raise ValueError(f"time must be a 'HH:MM' string, got {s!r}")
    parts = s.strip().split(":")
    if len(parts) != 2 or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"time must look like 'HH:MM' (two digits each), got {s!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    # 24:00 is allowed as an end of day, nothing later.
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise ValueError(f"time out of range (00:00..24:00): {s!r}")
    return hours * 60 + minutes


def minutes_to_time(m: int) -> str:
    """Minutes after midnight -> ``"HH:MM"`` (0..1440)."""
    if isinstance(m, bool) or not isinstance(m, int):
        raise ValueError(f"minutes must be an int, got {m!r}")
    if not 0 <= m <= MINUTES_PER_DAY:
        raise ValueError(f"minutes out of range 0..{MINUTES_PER_DAY}: {m!r}")
    return f"{m // 60:02d}:{m % 60:02d}"


@dataclass(frozen=True)
class Interval:
    """An event in minutes, with its weight already applied to ``value``."""

    name: str
    start: int
    end: int
    value: int

    def as_event(self) -> list[str]:
        return [self.name, minutes_to_time(self.start), minutes_to_time(self.end)]


def to_interval(event: Sequence, priority_events: Iterable[str] = ()) -> Interval:
    """Validate one ``[name, start, end]`` event and turn it into an :class:`Interval`."""
    if isinstance(event, (str, bytes)) or not isinstance(event, Sequence) or len(event) != 3:
        raise ValueError(f"event must be [name, 'HH:MM', 'HH:MM'], got {event!r}")
    name, start, end = event
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"event name must be a non-empty string, got {name!r} in {event!r}")
    s, e = time_to_minutes(start), time_to_minutes(end)
    if e <= s:
        raise ValueError(f"event must end after it starts, got {event!r}")
    weight = PRIORITY_WEIGHT if name in set(priority_events) else NORMAL_WEIGHT
    return Interval(name, s, e, weight * (e - s))


def _intervals(events: Iterable[Sequence], priority_events: Iterable[str]) -> list[Interval]:
    prio = set(priority_events)
    return [to_interval(ev, prio) for ev in events]


def overlaps(a: Interval, b: Interval) -> bool:
    """True when the two intervals share time; touching end-to-start is fine."""
    return a.start < b.end and b.start < a.end


def schedule_score(events: Iterable[Sequence], priority_events: Iterable[str]) -> int:
    """Weighted duration of ``events``: minutes, doubled for priority events.

    This does not check overlaps; it is the objective the optimum maximises.
    """
    return sum(iv.value for iv in _intervals(events, priority_events))


def is_feasible(events: Iterable[Sequence]) -> bool:
    """True when no two events overlap (touching allowed)."""
    ivs = sorted(_intervals(events, ()), key=lambda iv: (iv.start, iv.end))
    return all(a.end <= b.start for a, b in zip(ivs, ivs[1:]))


@dataclass
class DPTrace:
    """Everything the DP computed, for teaching: sorted intervals, p(j) and the table."""

    intervals: list[Interval]  # sorted by end time
    predecessor: list[int]  # p[j]: how many intervals end at or before interval j starts
    table: list[int]  # table[j]: best score using the first j intervals (table[0] = 0)
    take: list[bool]  # take[j-1]: whether the best for the first j intervals takes interval j
    chosen: list[Interval]


def solve_dp(events: Iterable[Sequence], priority_events: Iterable[str]) -> DPTrace:
    """Weighted interval scheduling in O(n log n).

    Sort by end; ``p(j)`` = number of intervals that end no later than interval ``j``
    starts (binary search, so touching events are compatible);
    ``OPT(j) = max(OPT(j-1), value_j + OPT(p(j)))``; walk back to recover the set.
    """
    ivs = sorted(_intervals(events, priority_events), key=lambda iv: (iv.end, iv.start, iv.name))
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


def optimal_schedule(
    events: Iterable[Sequence], priority_events: Iterable[str]
) -> tuple[int, list[list[str]]]:
    """Best total weighted duration and the events achieving it, in chronological order."""
    trace = solve_dp(events, priority_events)
    return trace.table[-1], [iv.as_event() for iv in trace.chosen]


def brute_force_schedule(
    events: Sequence[Sequence], priority_events: Iterable[str], max_events: int = 20
) -> tuple[int, list[list[str]]]:
    """Try every subset (2^n): the obviously-correct answer the DP is checked against."""
    ivs = _intervals(events, priority_events)
    if len(ivs) > max_events:
        raise ValueError(f"brute force over {len(ivs)} events would try 2^{len(ivs)} subsets")
    best: tuple[int, tuple[Interval, ...]] = (0, ())
    for r in range(1, len(ivs) + 1):
        for subset in itertools.combinations(ivs, r):
            ordered = sorted(subset, key=lambda iv: iv.start)
            if all(a.end <= b.start for a, b in zip(ordered, ordered[1:])):
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
    for iv in sorted(_intervals(events, priority_events), key=keys[rule]):
        if not any(overlaps(iv, k) for k in kept):
            kept.append(iv)
    kept.sort(key=lambda iv: iv.start)
    return sum(iv.value for iv in kept), [iv.as_event() for iv in kept]


GREEDY_RULES = ("earliest_end", "earliest_start", "highest_value", "longest", "priority_first")
