"""One answer measured against its problem: which events are real, which clash, the weighted score.

A row that is not a problem of the course (:mod:`utils.task.validate`: a broken ``optimal_score``,
events an answer cannot write, a single-event optimum) is measured all the same, and
``ScheduleCheck.problem`` says what is wrong with it: the score rewards then give 0.

The course's score reward, the explainer and the inspector all read a :class:`ScheduleCheck`,
so they never disagree about an answer. Clashes use the task's geometry
(:mod:`utils.task.events`): touching events do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..task.events import clashing, event_key, is_chronological, overlapping_pairs, weight_of
from ..task.scheduling import free_events, schedule_score
from ..task.validate import problem_error
from .common import as_batch, problem_columns, safe
from .parsing import ParsedCompletion, ScheduledEvent, parse_completion

MAX_LISTED_PAIRS = 1000  # a check lists at most this many overlapping pairs


def event_value(ev: ScheduledEvent, priority_events: Iterable[str]) -> int:
    """Minutes of a parsed event, doubled for a priority event."""
    return weight_of(ev.name, priority_events) * (ev.end_min - ev.start_min)


@dataclass
class ScheduleCheck:
    """One completion's schedule measured against its problem."""

    parsed: ParsedCompletion
    invented: list[ScheduledEvent] = field(default_factory=list)  # not in the problem
    repeated: list[ScheduledEvent] = field(default_factory=list)  # listed more than once
    overlaps: list[tuple[int, int]] = field(default_factory=list)  # first MAX_LISTED_PAIRS pairs
    clashing: set[int] = field(default_factory=set)  # every event in some overlap
    chronological: bool = False
    weighted_score: int = 0  # events not in any overlap
    listed_value: int = 0  # every listed event, clashing or not
    optimal_score: float = 0.0
    problem: str | None = None  # why the row is not a problem of the course (utils.task.validate); None if it is
    problem_events: list = field(default_factory=list, repr=False)  # the problem's events (well-shaped ones)
    priority_events: frozenset = frozenset()
    _free: list | None = field(default=None, repr=False)  # free_events(), computed at most once

    @property
    def events(self) -> list[ScheduledEvent]:
        return self.parsed.events

    @property
    def impossible_times(self) -> list:
        """Well-formed events whose times cannot be real (25:99, ends before it starts)."""
        return self.parsed.invalid_events

    @property
    def score_ratio(self) -> float:
        return self.weighted_score / self.optimal_score if self.optimal_score else 0.0

    def free_events(self) -> list[list[str]]:
        """The problem's events the schedule leaves out although they clash with nothing it lists
        (:func:`utils.task.scheduling.free_events`); [] for a row that is not a problem. Computed on demand:
        quadratic in the events, so call it for real schedules (at most one entry per problem event). Kept once made."""
        if self._free is None:
            listed = [ev.as_list() for ev in self.events]
            self._free = [] if self.problem else free_events(self.problem_events, self.priority_events, listed)
        return self._free

    def free_value(self) -> int:
        """What adding :meth:`free_events` would add to the score (weighted minutes)."""
        return schedule_score(self.free_events(), self.priority_events)

    @property
    def all_real(self) -> bool:
        """Every listed event is one of the problem's, once, with possible times."""
        return not (self.invented or self.repeated or self.impossible_times)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _is_event_shaped(event: Any) -> bool:
    return _is_list(event) and len(event) == 3 and all(isinstance(part, str) for part in event)


def check_schedule(
    completion: Any, events: Sequence, priority_events: Sequence[str], optimal_score: float
) -> ScheduleCheck:
    """Parse ``completion`` (or take a :class:`ParsedCompletion`) and measure it against the problem."""
    parsed = completion if isinstance(completion, ParsedCompletion) else parse_completion(completion)
    problem = problem_error(events, priority_events, optimal_score)
    if problem:  # not a problem: measure against what is shaped like events and names (events=5 raised)
        events = [e for e in events if _is_event_shaped(e)] if _is_list(events) else []
        priority_events = [p for p in priority_events if isinstance(p, str)] if _is_list(priority_events) else []
    known = {event_key(e) for e in (events or [])}
    evs = parsed.events
    try:
        opt = float(optimal_score or 0)
    except (TypeError, ValueError, OverflowError):
        opt = 0.0
    prios = frozenset(priority_events or [])
    check = ScheduleCheck(
        parsed=parsed,
        optimal_score=opt if math.isfinite(opt) else 0.0,
        problem=problem,
        problem_events=list(events or []),
        priority_events=prios,
    )
    seen: set = set()
    for ev in evs:
        key = ev.key
        if key not in known:
            check.invented.append(ev)
        if key in seen:
            check.repeated.append(ev)
        seen.add(key)
    spans = [ev.span for ev in evs]
    check.overlaps = overlapping_pairs(spans, limit=MAX_LISTED_PAIRS)
    check.clashing = clashing(spans)
    check.chronological = is_chronological(spans)
    values = [event_value(ev, prios) for ev in evs]
    check.weighted_score = sum(v for i, v in enumerate(values) if i not in check.clashing)
    check.listed_value = sum(values)
    return check


def score_each(completions: Sequence[Any], columns: Mapping, score: Callable[[ScheduleCheck], float]) -> list[float]:
    """``score(check)`` for each completion, checked against its problem (TRL's keyword columns).

    The shared loop of the score rewards: a row that is not a problem of the course gives 0 with a
    warning (:func:`utils.task.validate.problem_error`), and nothing a completion holds makes it raise."""

    def one(completion, events, priority_events, optimal_score) -> float:
        check = check_schedule(completion, events, priority_events, optimal_score)
        if check.problem:
            raise ValueError(f"not a problem of the course: {check.problem}")
        return score(check)

    completions = as_batch(completions)  # one string is not a batch of answers
    rows = problem_columns(columns, len(completions))
    return [safe(lambda c=c, row=row: one(c, *row)) for c, row in zip(completions, rows)]
