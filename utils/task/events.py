"""Events and how they sit in time: one vocabulary for the whole course.

An event is written ``[name, "HH:MM", "HH:MM"]``, as in the public `events-scheduling`
dataset. Its value is its duration in minutes, doubled when it is a priority event.

Everything that asks "do these events clash?" works on **spans**, ``(start, end)`` in
minutes after midnight, so the dataset's events, the DP's :class:`Interval` and the events
parsed out of a model's answer (``ScheduledEvent.span``) all use the same functions here.
Two spans overlap when one starts strictly before the other ends: touching events
(``a.end == b.start``) do not overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .times import minutes_to_time, time_to_minutes

PRIORITY_WEIGHT = 2
NORMAL_WEIGHT = 1

Span = tuple[int, int]  # (start, end) in minutes after midnight, start < end


# ------------------------------------------------------------------------ one event
@dataclass(frozen=True)
class Interval:
    """An event in minutes, with its weight already applied to ``value``."""

    name: str
    start: int
    end: int
    value: int

    @property
    def span(self) -> Span:
        return (self.start, self.end)

    def as_event(self) -> list[str]:
        return [self.name, minutes_to_time(self.start), minutes_to_time(self.end)]


def name_key(name: object) -> str:
    """A name as the course compares it: surrounding spaces stripped (the answer parser strips them).

    The one rule for names: :func:`event_key` (is this event one of the problem's?) and
    :func:`weight_of` (is it a priority?) both use it. Problems never need it: the generator and
    the loaders refuse names with surrounding spaces (:func:`utils.task.validate.name_problem`)."""
    return str(name).strip()


class PriorityKeys(frozenset):
    """A problem's priority names as :func:`name_key` keys: built once, then each lookup is O(1)."""


def priority_keys(priority_events: Iterable[str]) -> PriorityKeys:
    """The priority names as a set of keys (returned as is when it already is one).

    Build it once per problem: :func:`weight_of` on a plain list rebuilds it on every call, so a loop
    over the events would cost events x priorities (the DP would be quadratic, not n log n)."""
    if isinstance(priority_events, PriorityKeys):
        return priority_events
    if isinstance(priority_events, (str, bytes)):
        raise ValueError(f"priority_events must be a list of names, got the string {priority_events!r}")
    return PriorityKeys(name_key(p) for p in priority_events)


def weight_of(name: str, priority_events: Iterable[str]) -> int:
    """2 for a priority event, 1 otherwise (names compared by :func:`name_key`).

    In a loop over events pass :func:`priority_keys` of the priorities: a set lookup per event."""
    return PRIORITY_WEIGHT if name_key(name) in priority_keys(priority_events) else NORMAL_WEIGHT


def to_interval(event: Sequence, priority_events: Iterable[str] = ()) -> Interval:
    """Validate one ``[name, start, end]`` event and turn it into an :class:`Interval`.

    >>> to_interval(["Gym", "07:00", "08:00"], ["Gym"])
    Interval(name='Gym', start=420, end=480, value=120)
    """
    if isinstance(event, (str, bytes)) or not isinstance(event, Sequence) or len(event) != 3:
        raise ValueError(f"event must be [name, 'HH:MM', 'HH:MM'], got {event!r}")
    name, start, end = event
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"event name must be a non-empty string, got {name!r} in {event!r}")
    s, e = time_to_minutes(start), time_to_minutes(end)
    if e <= s:
        raise ValueError(f"event must end after it starts, got {event!r}")
    return Interval(name, s, e, weight_of(name, priority_events) * (e - s))


def to_intervals(events: Iterable[Sequence], priority_events: Iterable[str] = ()) -> list[Interval]:
    prios = priority_keys(priority_events)  # once per problem: a set lookup per event
    return [to_interval(ev, prios) for ev in events]


def event_key(event: Sequence) -> tuple[str, str, str]:
    """``(name, start, end)`` as written, the name stripped: how answers are matched to the problem."""
    return (name_key(event[0]), str(event[1]), str(event[2]))


def in_time_order(events: Iterable[Sequence]) -> list[list[str]]:
    """The events as ``[name, start, end]`` lists sorted by start, then end (a new list)."""
    return sorted((list(e) for e in events), key=lambda e: (time_to_minutes(e[1]), time_to_minutes(e[2])))


# ------------------------------------------------------------------------- geometry
def overlaps(a: Span, b: Span) -> bool:
    """True when the two spans share time; touching end-to-start is fine.

    >>> overlaps((540, 600), (600, 660)), overlaps((540, 601), (600, 660))
    (False, True)
    """
    return a[0] < b[1] and b[0] < a[1]


def _by_start(spans: Sequence[Span]) -> list[int]:
    return sorted(range(len(spans)), key=lambda i: spans[i])


def overlapping_pairs(spans: Sequence[Span], limit: int | None = None) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of spans that overlap, sorted.

    A sweep over the spans sorted by start: O(n log n + pairs). With ``limit`` it stops after
    that many pairs (an answer that repeats one event 10,000 times has 50 million pairs).

    >>> overlapping_pairs([(540, 600), (570, 630), (600, 660)])
    [(0, 1), (1, 2)]
    """
    order = _by_start(spans)
    pairs = []
    for a, i in enumerate(order):
        for b in range(a + 1, len(order)):  # indices, not order[a + 1:]: a slice would copy the rest every time
            j = order[b]
            if spans[j][0] >= spans[i][1]:
                break
            pairs.append((min(i, j), max(i, j)))
            if limit is not None and len(pairs) >= limit:
                return sorted(pairs)
    return sorted(pairs)


def clashing(spans: Sequence[Span]) -> set[int]:
    """Indices of spans that overlap at least one other, in O(n log n).

    Sorted by start, a span overlaps something exactly when an earlier one ends after it
    starts, or the next one starts before it ends (every span has start < end).

    >>> sorted(clashing([(540, 600), (570, 630), (700, 720)]))
    [0, 1]
    """
    order = _by_start(spans)
    found: set[int] = set()
    latest_end = -1
    for a, i in enumerate(order):
        start, end = spans[i]
        if latest_end > start or (a + 1 < len(order) and spans[order[a + 1]][0] < end):
            found.add(i)
        latest_end = max(latest_end, end)
    return found


def is_chronological(spans: Sequence[Span]) -> bool:
    """At least two spans, with strictly increasing starts (what the order reward pays for)."""
    return len(spans) >= 2 and all(a[0] < b[0] for a, b in zip(spans, spans[1:]))


def event_spans(events: Iterable[Sequence]) -> list[Span]:
    """Spans of ``[name, start, end]`` events (times checked)."""
    return [(time_to_minutes(e[1]), time_to_minutes(e[2])) for e in events]


def count_overlapping_pairs(events: Iterable[Sequence]) -> int:
    """How many pairs of ``[name, start, end]`` events share time (touching does not count)."""
    return len(overlapping_pairs(event_spans(events)))
