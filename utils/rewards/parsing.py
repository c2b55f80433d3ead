r"""Parse a model completion into a structured result, in linear time.

No backtracking regular expression here: every search is ``str.find`` moving forward
(plus a ``\s*`` scan for whitespace, which cannot backtrack), so a 1 MB
completion (truncated, repeated tags, junk) parses in milliseconds. The course shows
why in notebook 03: the reference's regex backtracks catastrophically on exactly the
completions a training run produces when it cuts generation short.

Two views of the same text:

* :func:`parse_completion` - the course's view: reasoning, the ``<schedule>`` block and
  the well-formed events inside it, plus a list of what was wrong.
* :func:`find_strict_events` - events in the reference's strict shape
  ``<event> <name>N</name> <start>DD:DD</start> <end>DD:DD</end> </event>`` (whitespace
  allowed between tags) anywhere in a span; the reference evaluation extracts events this way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..task.times import time_to_minutes

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SCHEDULE_OPEN, SCHEDULE_CLOSE = "<schedule>", "</schedule>"
EVENT_OPEN, EVENT_CLOSE = "<event>", "</event>"


#: Containers read inside one completion: messages -> message -> content -> parts is 4 deep. Anything
#: deeper (a list that holds itself, 100,000 nested lists) is not a completion and reads as no text.
MAX_NESTING = 6
#: Items read in one completion, in all: a list holding itself 1,000 times, six deep, must not mean 10**18 steps.
MAX_PARTS = 100_000


def completion_text(completion: Any) -> str:
    """The text of one completion as TRL hands it over.

    Plain strings pass through; conversational completions are lists of message dicts
    (the assistant's ``content`` is used); ``None``, bytes and anything else become text
    without raising. Nesting deeper than :data:`MAX_NESTING` (a list that holds itself) or
    more than :data:`MAX_PARTS` items reads as no text: never a RecursionError, never a hang.
    """
    budget = [MAX_PARTS]
    return _text(completion, 0, budget)


def _text(completion: Any, depth: int, budget: list[int]) -> str:
    if isinstance(completion, str):
        return completion
    if completion is None:
        return ""
    if isinstance(completion, (bytes, bytearray)):
        return bytes(completion).decode("utf-8", errors="replace")
    if depth >= MAX_NESTING or budget[0] <= 0:
        return ""
    budget[0] -= 1
    if isinstance(completion, dict):
        return _text(completion.get("content"), depth + 1, budget)
    if isinstance(completion, (list, tuple)):
        parts = []
        for message in completion:
            if budget[0] <= 0:
                break
            budget[0] -= 1
            if isinstance(message, dict):
                if message.get("role", "assistant") == "assistant":
                    parts.append(_text(message.get("content"), depth + 2, budget))
            else:
                parts.append(_text(message, depth + 1, budget))
        return "".join(parts)
    return ""


@dataclass(frozen=True)
class RawEvent:
    """An event as written: strings, not yet checked against the problem."""

    name: str
    start: str
    end: str
    position: int  # index of its ``<event>`` tag in the text

    def as_list(self) -> list[str]:
        return [self.name, self.start, self.end]


# ``\s*`` at one position cannot backtrack: it is a single forward scan, done in C (a
# Python loop over a megabyte of spaces would take a tenth of a second).
_SPACE_RUN = re.compile(r"\s*")


def _skip_space(text: str, i: int, stop: int) -> int:
    return _SPACE_RUN.match(text, i, stop).end()


def _expect(text: str, i: int, stop: int, literal: str) -> int:
    """Index after ``literal`` if it sits at ``i``, else -1."""
    j = i + len(literal)
    return j if j <= stop and text.startswith(literal, i) else -1


def _time_token(text: str, i: int, stop: int) -> int:
    """Index after a ``DD:DD`` token at ``i`` (``\\d`` semantics: any decimal digit), else -1."""
    if i + 5 > stop:
        return -1
    t = text[i : i + 5]
    if t[2] == ":" and t[0].isdecimal() and t[1].isdecimal() and t[3].isdecimal() and t[4].isdecimal():
        return i + 5
    return -1


def _match_event(text: str, i: int, stop: int) -> tuple[RawEvent, int] | None:
    """Match one strict event starting at ``i`` (which holds ``<event>``)."""
    j = _expect(text, i, stop, EVENT_OPEN)
    j = _skip_space(text, j, stop)
    j = _expect(text, j, stop, "<name>")
    if j < 0:
        return None
    name_end = text.find("<", j, stop)
    if name_end <= j:  # empty name or no '<' at all
        return None
    name = text[j:name_end]
    j = _expect(text, name_end, stop, "</name>")
    if j < 0:
        return None
    fields = []
    for tag in ("start", "end"):
        j = _expect(text, _skip_space(text, j, stop), stop, f"<{tag}>")
        if j < 0:
            return None
        k = _time_token(text, j, stop)
        if k < 0:
            return None
        fields.append(text[j:k])
        j = _expect(text, k, stop, f"</{tag}>")
        if j < 0:
            return None
    j = _expect(text, _skip_space(text, j, stop), stop, EVENT_CLOSE)
    if j < 0:
        return None
    return RawEvent(name, fields[0], fields[1], i), j


def find_strict_events(text: str, start: int = 0, stop: int | None = None) -> list[RawEvent]:
    """All strict events in ``text[start:stop]``, left to right, never overlapping."""
    stop = len(text) if stop is None else stop
    events: list[RawEvent] = []
    i = text.find(EVENT_OPEN, start, stop)
    while i >= 0:
        found = _match_event(text, i, stop)
        if found:
            events.append(found[0])
            i = text.find(EVENT_OPEN, found[1], stop)
        else:
            i = text.find(EVENT_OPEN, i + 1, stop)
    return events


@dataclass(frozen=True)
class ScheduledEvent:
    """A well-formed event with valid times."""

    name: str
    start: str
    end: str
    start_min: int
    end_min: int

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)`` in minutes: what the task's geometry functions take."""
        return (self.start_min, self.end_min)

    @property
    def key(self) -> tuple[str, str, str]:
        """``(name, start, end)`` as written: matched against the problem's events."""
        return (self.name, self.start, self.end)

    def as_list(self) -> list[str]:
        return [self.name, self.start, self.end]


@dataclass
class ParsedCompletion:
    """What a completion contains, and what is wrong with it."""

    text: str = field(repr=False)  # may be a megabyte: keep it out of printouts
    think_at_start: bool = False  # ``<think>`` opens the completion (leading whitespace ok)
    reasoning: str | None = None  # text between <think> and the first </think>; None if not closed
    schedule_open: bool = False
    schedule_closed: bool = False
    events: list[ScheduledEvent] = field(default_factory=list)  # well-formed, valid times, start < end
    invalid_events: list[RawEvent] = field(default_factory=list)  # well-formed tags, impossible times
    event_tags: int = 0  # ``<event>`` tags in the schedule block, well-formed or not
    padded_names: int = 0  # events whose name has spaces around it (the reference evaluation rejects them)
    problems: list[str] = field(default_factory=list)

    @property
    def has_reasoning(self) -> bool:
        """Closed reasoning with something in it (whitespace alone does not count)."""
        return bool(self.reasoning and self.reasoning.strip())

    @property
    def truncated(self) -> bool:
        """The schedule was opened and never closed: what a length cut-off looks like."""
        return self.schedule_open and not self.schedule_closed

    @property
    def malformed_events(self) -> int:
        """``<event>`` tags in the schedule that are not a complete, strict event."""
        return self.event_tags - len(self.events) - len(self.invalid_events)

    @property
    def well_formed(self) -> bool:
        """Reasoning first, a closed schedule, at least one event, and nothing broken in it."""
        return (
            self.think_at_start
            and self.has_reasoning
            and self.schedule_closed
            and len(self.events) >= 1
            and len(self.events) == self.event_tags
        )


def parse_completion(completion: Any) -> ParsedCompletion:
    """Parse one completion (string, chat messages, ``None`` or junk). Never raises."""
    text = completion_text(completion)
    result = ParsedCompletion(text=text)
    if not isinstance(completion, (str, list, tuple, dict, bytes, bytearray)) and completion is not None:
        result.problems.append(f"completion is a {type(completion).__name__}, not text")
    if not text.strip():
        result.problems.append("empty completion")
        return result

    # Reasoning: <think> must open the answer; its text runs to the first </think>.
    lead = _skip_space(text, 0, len(text))
    after_think = 0
    if text.startswith(THINK_OPEN, lead):
        result.think_at_start = True
        body = lead + len(THINK_OPEN)
        close = text.find(THINK_CLOSE, body)
        if close >= 0:
            result.reasoning = text[body:close]
            after_think = close + len(THINK_CLOSE)
            if not result.reasoning.strip():
                result.problems.append("empty reasoning")
        else:
            result.problems.append("reasoning never closed with </think>")
    elif THINK_OPEN in text:
        result.problems.append("text before <think>: reasoning must come first")
    else:
        result.problems.append("no <think> reasoning")

    # Schedule: the first <schedule> after the reasoning.
    open_at = text.find(SCHEDULE_OPEN, after_think)
    if open_at < 0:
        result.problems.append("no <schedule> block")
        return result
    result.schedule_open = True
    body = open_at + len(SCHEDULE_OPEN)
    close_at = text.find(SCHEDULE_CLOSE, body)
    if close_at < 0:
        result.problems.append("schedule never closed with </schedule> (truncated?)")
        end = len(text)
    else:
        result.schedule_closed = True
        end = close_at

    # Events inside the block.
    tags = 0
    i = text.find(EVENT_OPEN, body, end)
    while i >= 0:
        tags += 1
        i = text.find(EVENT_OPEN, i + len(EVENT_OPEN), end)
    result.event_tags = tags
    bad_times: list[str] = []
    for k, ev in enumerate(find_strict_events(text, body, end), start=1):
        name = ev.name.strip()
        try:
            s, e = time_to_minutes(ev.start), time_to_minutes(ev.end)
            if e <= s:
                raise ValueError(f"ends ({ev.end}) before it starts ({ev.start})")
        except ValueError as exc:
            result.invalid_events.append(ev)
            if len(bad_times) < 5:  # a megabyte of bad events must not make a megabyte of messages
                bad_times.append(f"event {k} ({name[:40]!r}): {exc}")
            continue
        result.padded_names += name != ev.name
        result.events.append(ScheduledEvent(name, ev.start, ev.end, s, e))
    result.problems += bad_times
    if len(result.invalid_events) > len(bad_times):
        result.problems.append(f"... {len(result.invalid_events) - len(bad_times)} more events with bad times")
    if result.malformed_events:
        result.problems.append(f"{result.malformed_events} malformed <event> block(s)")
    if tags == 0:
        result.problems.append("no <event> in the schedule")
    return result
