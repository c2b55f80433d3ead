"""The course's reward functions, an explainer, and a checker for your own rewards.

Every reward has TRL's signature: ``fn(completions, **kwargs) -> list[float]``. TRL
passes ``prompts``, ``completions``, ``completion_ids`` and every dataset column
(``events``, ``priority_events``, ``optimal_score``) as keyword arguments, one list
entry per completion. Completions are strings, or lists of chat messages for
conversational datasets: both work here.

The default set follows the public recipe (format 10 + order 20 + score 70 = 100) with
one correction: touching events (one ends when the next starts) are not an overlap, so
the DP-optimal schedule always gets the full 70. A completion never makes a reward
raise or hang: it parses in linear time and anything unreadable scores 0.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .parsing import ParsedCompletion, ScheduledEvent, parse_completion
from .scheduling import PRIORITY_WEIGHT, NORMAL_WEIGHT

RewardFn = Callable[..., list]

FORMAT_POINTS = 10.0
SORTED_POINTS = 20.0
SCORE_POINTS = 70.0


# ----------------------------------------------------------------------------- helpers
def _problem_columns(kwargs: Mapping, n: int) -> list[tuple[list, list, float]]:
    """(events, priority_events, optimal_score) per completion, from TRL's keyword args."""
    missing = [c for c in ("events", "priority_events", "optimal_score") if kwargs.get(c) is None]
    if missing:
        raise ValueError(
            f"this reward needs the dataset columns {missing}; TRL passes every dataset column "
            f"as a keyword argument, and got {sorted(k for k in kwargs if k != 'completions')}"
        )
    cols = [list(kwargs[c]) for c in ("events", "priority_events", "optimal_score")]
    if any(len(c) != n for c in cols):
        raise ValueError(f"{n} completions but columns of lengths {[len(c) for c in cols]}")
    return list(zip(*cols))


def event_key(ev: ScheduledEvent | Sequence[str]) -> tuple[str, str, str]:
    if isinstance(ev, ScheduledEvent):
        return (ev.name, ev.start, ev.end)
    return (str(ev[0]).strip(), str(ev[1]), str(ev[2]))


def event_value(ev: ScheduledEvent, priority_events: Iterable[str]) -> int:
    weight = PRIORITY_WEIGHT if ev.name in set(priority_events) else NORMAL_WEIGHT
    return weight * (ev.end_min - ev.start_min)


def overlapping_pairs(events: Sequence[ScheduledEvent]) -> list[tuple[int, int]]:
    """Index pairs that share time. Touching (end == start) is not an overlap."""
    return [
        (i, j)
        for i in range(len(events))
        for j in range(i + 1, len(events))
        if events[i].start_min < events[j].end_min and events[j].start_min < events[i].end_min
    ]


def _safe(fn: Callable[[], float]) -> float:
    """Any surprise in a reward becomes 0.0 with a warning: never crash a training run."""
    try:
        value = float(fn())
    except Exception as exc:  # noqa: BLE001 - a reward must not kill training
        warnings.warn(f"reward error treated as 0: {type(exc).__name__}: {exc}", RuntimeWarning)
        return 0.0
    return value if math.isfinite(value) else 0.0


# ------------------------------------------------------------------- schedule analysis
@dataclass
class ScheduleCheck:
    """One completion's schedule measured against its problem."""

    parsed: ParsedCompletion
    invented: list[ScheduledEvent] = field(default_factory=list)  # not in the problem
    repeated: list[ScheduledEvent] = field(default_factory=list)  # listed more than once
    overlaps: list[tuple[int, int]] = field(default_factory=list)
    chronological: bool = False
    weighted_score: int = 0  # events not in any overlap
    optimal_score: float = 0.0

    @property
    def events(self) -> list[ScheduledEvent]:
        return self.parsed.events

    @property
    def score_ratio(self) -> float:
        return self.weighted_score / self.optimal_score if self.optimal_score else 0.0


def check_schedule(completion: Any, events: Sequence, priority_events: Sequence[str], optimal_score: float) -> ScheduleCheck:
    parsed = completion if isinstance(completion, ParsedCompletion) else parse_completion(completion)
    known = {event_key(e) for e in (events or [])}
    evs = parsed.events
    check = ScheduleCheck(parsed=parsed, optimal_score=float(optimal_score or 0))
    seen: set = set()
    for ev in evs:
        key = event_key(ev)
        if key not in known:
            check.invented.append(ev)
        if key in seen:
            check.repeated.append(ev)
        seen.add(key)
    check.overlaps = overlapping_pairs(evs)
    check.chronological = len(evs) >= 2 and all(a.start_min < b.start_min for a, b in zip(evs, evs[1:]))
    clashing = {i for pair in check.overlaps for i in pair}
    prios = set(priority_events or [])
    check.weighted_score = sum(event_value(ev, prios) for i, ev in enumerate(evs) if i not in clashing)
    return check


# ------------------------------------------------------------------ the course's rewards
def format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """10 if the answer opens with non-empty ``<think>`` reasoning and then a closed
    ``<schedule>`` holding at least one well-formed event with valid times; else 0."""

    def one(c: Any) -> float:
        p = parse_completion(c)
        ok = p.think_at_start and p.has_reasoning and p.schedule_closed and len(p.events) >= 1
        return FORMAT_POINTS if ok else 0.0

    return [_safe(lambda c=c: one(c)) for c in completions]


def sorted_events_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """20 if the schedule lists at least two events with strictly increasing start times."""
    return [
        _safe(lambda c=c: SORTED_POINTS if _chronological(parse_completion(c).events) else 0.0)
        for c in completions
    ]


def _chronological(evs: Sequence[ScheduledEvent]) -> bool:
    return len(evs) >= 2 and all(a.start_min < b.start_min for a, b in zip(evs, evs[1:]))


def score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70 for the weighted duration achieved, relative to the DP optimum.

    0 when an event is not in the problem, is listed twice, or fewer than two are listed.
    Both events of every truly overlapping pair are dropped (touching is fine); the rest
    score ``weighted / optimal * 70``.
    """
    out = []
    for c, (events, prios, opt) in zip(completions, _problem_columns(kwargs, len(completions))):
        def one(c=c, events=events, prios=prios, opt=opt) -> float:
            chk = check_schedule(c, events, prios, opt)
            if chk.invented or chk.repeated or len(chk.events) < 2 or not chk.optimal_score:
                return 0.0
            return SCORE_POINTS * min(1.0, chk.score_ratio)

        out.append(_safe(one))
    return out


for _fn, _range in ((format_reward, (0, FORMAT_POINTS)), (sorted_events_reward, (0, SORTED_POINTS)),
                    (score_reward, (0, SCORE_POINTS))):
    _fn.reward_range = _range


# --------------------------------------------------------------- alternatives to try
def partial_format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 10 in steps: 2 each for opening with <think>, closing it, opening <schedule>,
    closing it, and one well-formed event. Gives a signal before the full format appears."""

    def one(c: Any) -> float:
        p = parse_completion(c)
        parts = [p.think_at_start, p.reasoning is not None, p.schedule_open, p.schedule_closed, bool(p.events)]
        return 2.0 * sum(parts)

    return [_safe(lambda c=c: one(c)) for c in completions]


def partial_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70 with partial credit: invented or repeated events are ignored (each costs
    5 points) instead of zeroing everything; overlapping pairs are dropped as usual."""
    out = []
    for c, (events, prios, opt) in zip(completions, _problem_columns(kwargs, len(completions))):
        def one(c=c, events=events, prios=prios, opt=opt) -> float:
            parsed = parse_completion(c)
            known = {event_key(e) for e in events}
            kept, seen, bad = [], set(), 0
            for ev in parsed.events:
                key = event_key(ev)
                if key in known and key not in seen:
                    kept.append(ev)
                    seen.add(key)
                else:
                    bad += 1
            if not opt:
                return 0.0
            clash = {i for pair in overlapping_pairs(kept) for i in pair}
            value = sum(event_value(ev, prios) for i, ev in enumerate(kept) if i not in clash)
            return max(0.0, SCORE_POINTS * min(1.0, value / opt) - 5.0 * bad)

        out.append(_safe(one))
    return out


def overlap_penalty_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70: every listed event counts, minus 15 points per overlapping pair.
    Easier to satisfy than removal; notebook 03 shows how it can be gamed."""
    out = []
    for c, (events, prios, opt) in zip(completions, _problem_columns(kwargs, len(completions))):
        def one(c=c, events=events, prios=prios, opt=opt) -> float:
            chk = check_schedule(c, events, prios, opt)
            if chk.invented or chk.repeated or len(chk.events) < 2 or not chk.optimal_score:
                return 0.0
            total = sum(event_value(ev, prios) for ev in chk.events)
            return max(0.0, SCORE_POINTS * min(1.0, total / chk.optimal_score) - 15.0 * len(chk.overlaps))

        out.append(_safe(one))
    return out


def truncation_penalty_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """-10 when the answer never closes its schedule (it ran out of tokens), else 0."""

    def one(c: Any) -> float:
        p = parse_completion(c)
        return -10.0 if not p.schedule_closed else 0.0

    return [_safe(lambda c=c: one(c)) for c in completions]


def length_penalty_reward(completions: Sequence[Any], max_chars: int = 1500, **kwargs) -> list[float]:
    """0 up to ``max_chars`` characters, then down linearly to -10 at twice that."""

    def one(c: Any) -> float:
        n = len(parse_completion(c).text)
        return -10.0 * min(1.0, max(0, n - max_chars) / max_chars)

    return [_safe(lambda c=c: one(c)) for c in completions]


partial_format_reward.reward_range = (0, FORMAT_POINTS)
partial_score_reward.reward_range = (0, SCORE_POINTS)
overlap_penalty_score_reward.reward_range = (0, SCORE_POINTS)
truncation_penalty_reward.reward_range = (-10, 0)
length_penalty_reward.reward_range = (-10, 0)


def _registry() -> dict[str, RewardFn]:
    from . import reference

    fns = [format_reward, sorted_events_reward, score_reward, partial_format_reward,
           partial_score_reward, overlap_penalty_score_reward, truncation_penalty_reward,
           length_penalty_reward, *reference.REFERENCE_REWARDS]
    return {f.__name__: f for f in fns}


DEFAULT_REWARDS: tuple[str, ...] = ("format_reward", "sorted_events_reward", "score_reward")


def get_reward(name: str) -> RewardFn:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown reward {name!r}; library rewards: {sorted(registry)}")
    return registry[name]


def default_reward_funcs() -> list[RewardFn]:
    return [get_reward(n) for n in DEFAULT_REWARDS]


def total_reward(
    funcs: Sequence[RewardFn], completions: Sequence[Any], weights: Sequence[float] | None = None, **columns
) -> list[float]:
    """Weighted sum of several rewards, per completion (what GRPO's advantage uses)."""
    weights = list(weights) if weights is not None else [1.0] * len(funcs)
    totals = [0.0] * len(completions)
    for fn, w in zip(funcs, weights):
        for i, v in enumerate(fn(completions=list(completions), **columns)):
            totals[i] += w * (v or 0.0)
    return totals


# --------------------------------------------------------------------------- explain
@dataclass
class Explanation:
    check: ScheduleCheck
    rewards: dict[str, float]
    weights: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.weights[k] * v for k, v in self.rewards.items())

    def event_rows(self) -> list[dict]:
        invented = {id(e) for e in self.check.invented}
        repeated = {id(e) for e in self.check.repeated}
        clash = {i for pair in self.check.overlaps for i in pair}
        rows = []
        for i, ev in enumerate(self.check.events):
            status = ("not in problem" if id(ev) in invented else "repeated" if id(ev) in repeated
                      else "overlaps" if i in clash else "ok")
            rows.append({"#": i + 1, "name": ev.name, "start": ev.start, "end": ev.end, "status": status})
        return rows

    def to_text(self) -> str:
        c, p = self.check, self.check.parsed
        lines = [
            f"reasoning: {'yes' if p.has_reasoning else 'no'}   schedule: "
            f"{'closed' if p.schedule_closed else 'truncated' if p.truncated else 'missing'}   "
            f"events parsed: {len(c.events)}",
        ]
        lines += [f"  {r['#']:>2}. {r['start']}-{r['end']}  {r['name']:<28} {r['status']}" for r in self.event_rows()]
        if c.invented:
            lines.append(f"not in the problem: {[e.name for e in c.invented]}")
        if c.overlaps:
            lines.append("overlapping pairs: " + ", ".join(f"{c.events[i].name} / {c.events[j].name}" for i, j in c.overlaps))
        lines.append(f"chronological: {c.chronological}")
        lines.append(f"weighted score (overlaps removed): {c.weighted_score} / optimal {c.optimal_score:g}"
                     f" = {c.score_ratio:.1%}")
        if p.problems:
            lines.append("problems: " + "; ".join(p.problems))
        for k, v in self.rewards.items():
            w = self.weights[k]
            lines.append(f"  {k:<32} {v:7.2f}" + (f"  x {w:g}" if w != 1 else ""))
        lines.append(f"  {'TOTAL':<32} {self.total:7.2f}")
        return "\n".join(lines)

    def __str__(self) -> str:  # print(explain(...)) shows the breakdown
        return self.to_text()


def explain(
    problem: Mapping, completion: Any, reward_funcs: Sequence[RewardFn] | None = None,
    weights: Sequence[float] | None = None,
) -> Explanation:
    """Everything about one (problem, completion): parsed events, which are invented,
    overlapping pairs, order, weighted score vs optimal, each reward and the total."""
    funcs = list(reward_funcs) if reward_funcs is not None else default_reward_funcs()
    weights = list(weights) if weights is not None else [1.0] * len(funcs)
    check = check_schedule(completion, problem["events"], problem["priority_events"], problem["optimal_score"])
    columns = {"events": [problem["events"]], "priority_events": [problem["priority_events"]],
               "optimal_score": [problem["optimal_score"]]}
    rewards = {}
    for fn in funcs:
        try:
            value = fn(completions=[completion], prompts=[problem.get("prompt", "")], **columns)[0]
        except Exception as exc:  # noqa: BLE001 - show it, don't crash the inspector
            warnings.warn(f"{getattr(fn, '__name__', fn)} raised {type(exc).__name__}: {exc}")
            value = float("nan")
        rewards[getattr(fn, "__name__", repr(fn))] = float(value) if value is not None else 0.0
    return Explanation(check, rewards, dict(zip(rewards, weights)))
