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


MAX_LISTED_PAIRS = 1000  # explain() lists at most this many overlapping pairs


def _by_start(events: Sequence[ScheduledEvent]) -> list[int]:
    return sorted(range(len(events)), key=lambda i: (events[i].start_min, events[i].end_min))


def overlapping_pairs(events: Sequence[ScheduledEvent], limit: int | None = MAX_LISTED_PAIRS) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, that share time. Touching (end == start) is not an overlap.

    A sweep over events sorted by start: O(n log n + pairs), stopped after ``limit`` pairs
    (a completion that repeats one event 10,000 times has 50 million pairs).
    """
    order = _by_start(events)
    pairs = []
    for a, i in enumerate(order):
        for j in order[a + 1:]:
            if events[j].start_min >= events[i].end_min:
                break
            pairs.append((min(i, j), max(i, j)))
            if limit is not None and len(pairs) >= limit:
                return sorted(pairs)
    return sorted(pairs)


def clashing_events(events: Sequence[ScheduledEvent]) -> set[int]:
    """Indices of events that overlap at least one other, in O(n log n).

    Sorted by start, an event overlaps something exactly when an earlier one ends after
    it starts, or the next one starts before it ends (every event has start < end).
    """
    order = _by_start(events)
    clash: set[int] = set()
    latest_end = -1
    for a, i in enumerate(order):
        ev = events[i]
        if latest_end > ev.start_min or (a + 1 < len(order) and events[order[a + 1]].start_min < ev.end_min):
            clash.add(i)
        latest_end = max(latest_end, ev.end_min)
    return clash


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
    overlaps: list[tuple[int, int]] = field(default_factory=list)  # first MAX_LISTED_PAIRS pairs
    clashing: set[int] = field(default_factory=set)  # every event in some overlap
    chronological: bool = False
    weighted_score: int = 0  # events not in any overlap
    optimal_score: float = 0.0

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

    @property
    def all_real(self) -> bool:
        """Every listed event is one of the problem's, once, with possible times."""
        return not (self.invented or self.repeated or self.impossible_times)


def check_schedule(completion: Any, events: Sequence, priority_events: Sequence[str], optimal_score: float) -> ScheduleCheck:
    """Parse ``completion`` (or take a :class:`ParsedCompletion`) and measure it against the problem."""
    parsed = completion if isinstance(completion, ParsedCompletion) else parse_completion(completion)
    known = {event_key(e) for e in (events or [])}
    evs = parsed.events
    try:
        opt = float(optimal_score or 0)
    except (TypeError, ValueError):
        opt = 0.0
    check = ScheduleCheck(parsed=parsed, optimal_score=opt if math.isfinite(opt) else 0.0)
    seen: set = set()
    for ev in evs:
        key = event_key(ev)
        if key not in known:
            check.invented.append(ev)
        if key in seen:
            check.repeated.append(ev)
        seen.add(key)
    check.overlaps = overlapping_pairs(evs)
    check.clashing = clashing_events(evs)
    check.chronological = _chronological(evs)
    prios = set(priority_events or [])
    check.weighted_score = sum(event_value(ev, prios) for i, ev in enumerate(evs) if i not in check.clashing)
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

    0 when an event is not in the problem (impossible times included), is listed twice,
    or fewer than two are listed.
    Both events of every truly overlapping pair are dropped (touching is fine); the rest
    score ``weighted / optimal * 70``.
    """
    out = []
    for c, (events, prios, opt) in zip(completions, _problem_columns(kwargs, len(completions))):
        def one(c=c, events=events, prios=prios, opt=opt) -> float:
            chk = check_schedule(c, events, prios, opt)
            if not chk.all_real or len(chk.events) < 2 or chk.optimal_score <= 0:
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
            kept, seen, bad = [], set(), len(parsed.invalid_events)
            for ev in parsed.events:
                key = event_key(ev)
                if key in known and key not in seen:
                    kept.append(ev)
                    seen.add(key)
                else:
                    bad += 1
            if not opt:
                return 0.0
            clash = clashing_events(kept)
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
            if not chk.all_real or len(chk.events) < 2 or chk.optimal_score <= 0:
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
MAX_TEXT_ROWS = 40  # to_text() lists at most this many events


@dataclass
class Explanation:
    """The breakdown :func:`explain` returns; ``print()`` it, or read its fields."""

    check: ScheduleCheck
    rewards: dict[str, float]
    weights: dict[str, float]
    ranges: dict[str, tuple[float, float] | None] = field(default_factory=dict)  # each reward's reward_range
    priorities: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return sum(self.weights[k] * v for k, v in self.rewards.items())

    @property
    def max_total(self) -> float | None:
        """Sum of weight x top of ``reward_range`` when every reward declares one."""
        tops = [self.weights[k] * self.ranges[k][1] for k in self.rewards if self.ranges.get(k)]
        return sum(tops) if len(tops) == len(self.rewards) else None

    def event_rows(self) -> list[dict]:
        """One row per parsed event: name, times, value and its status."""
        c = self.check
        invented = {id(e) for e in c.invented}
        repeated = {id(e) for e in c.repeated}
        prios = set(self.priorities)
        rows = []
        for i, ev in enumerate(c.events):
            status = ("not in problem" if id(ev) in invented else "repeated" if id(ev) in repeated
                      else "overlaps" if i in c.clashing else "ok")
            weight = PRIORITY_WEIGHT if ev.name in prios else NORMAL_WEIGHT
            rows.append({"#": i + 1, "name": ev.name, "start": ev.start, "end": ev.end,
                         "priority": ev.name in prios, "value": weight * (ev.end_min - ev.start_min),
                         "status": status})
        return rows

    def summary(self) -> dict:
        """The headline facts as a flat dict (one table row per completion)."""
        c, p = self.check, self.check.parsed
        return {
            "reasoning": p.has_reasoning, "schedule": self.schedule_state, "events": len(c.events),
            "invented": len(c.invented) + len(c.impossible_times), "repeated": len(c.repeated),
            "overlapping pairs": len(c.overlaps), "chronological": c.chronological,
            "weighted": c.weighted_score, "optimal": c.optimal_score, **self.rewards, "TOTAL": self.total,
        }

    @property
    def schedule_state(self) -> str:
        p = self.check.parsed
        return "closed" if p.schedule_closed else "truncated" if p.truncated else "missing"

    def to_text(self) -> str:
        c, p = self.check, self.check.parsed
        lines = [
            f"reasoning: {'yes' if p.has_reasoning else 'no'}   schedule: {self.schedule_state}   "
            f"events parsed: {len(c.events)}",
        ]
        rows = self.event_rows()
        lines += [f"  {r['#']:>2}. {r['start']}-{r['end']}  {r['name'][:28]:<28}{' *' if r['priority'] else '  '}"
                  f" {r['value']:>4}  {r['status']}" for r in rows[:MAX_TEXT_ROWS]]
        if len(rows) > MAX_TEXT_ROWS:
            lines.append(f"  ... {len(rows) - MAX_TEXT_ROWS} more events")
        if c.invented:
            lines.append(f"not in the problem: {sorted({e.name[:40] for e in c.invented})[:10]}")
        if c.impossible_times:
            lines.append(f"impossible times: {[f'{e.start}-{e.end}' for e in c.impossible_times[:10]]}")
        if c.repeated:
            lines.append(f"listed more than once: {sorted({e.name[:40] for e in c.repeated})[:10]}")
        if c.overlaps:
            shown = ", ".join(f"{c.events[i].name} / {c.events[j].name}" for i, j in c.overlaps[:10])
            more = f" (+{len(c.overlaps) - 10} more)" if len(c.overlaps) > 10 else ""
            lines.append(f"overlapping pairs: {shown}{more}")
        lines.append(f"chronological (strictly increasing starts, >= 2 events): {c.chronological}")
        lines.append(f"weighted score (overlapping events removed): {c.weighted_score} / optimal "
                     f"{c.optimal_score:g} = {c.score_ratio:.1%}")
        if p.problems:
            lines.append("problems: " + "; ".join(p.problems))
        for k, v in self.rewards.items():
            w = self.weights[k]
            lines.append(f"  {k:<32} {v:7.2f}" + (f"  x {w:g}" if w != 1 else ""))
        top = self.max_total
        lines.append(f"  {'TOTAL':<32} {self.total:7.2f}" + (f" / {top:g}" if top is not None else ""))
        return "\n".join(lines)

    def __str__(self) -> str:  # print(explain(...)) shows the breakdown
        return self.to_text()


def reward_name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or repr(fn)


def explain(
    problem: Mapping, completion: Any, reward_funcs: Sequence[RewardFn] | None = None,
    weights: Sequence[float] | None = None,
) -> Explanation:
    """Everything about one (problem, completion): parsed events, which are invented,
    overlapping pairs, order, weighted score vs optimal, each reward and the total.

    A reward that raises or returns something that is not a finite number shows as
    ``nan`` (with a warning) instead of breaking the caller; the total is then ``nan`` too.
    """
    funcs = list(reward_funcs) if reward_funcs is not None else default_reward_funcs()
    weights = [float(w) for w in weights] if weights is not None else [1.0] * len(funcs)
    if len(weights) != len(funcs):
        raise ValueError(f"{len(funcs)} reward functions but {len(weights)} weights")
    check = check_schedule(completion, problem["events"], problem["priority_events"], problem["optimal_score"])
    columns = {"events": [problem["events"]], "priority_events": [problem["priority_events"]],
               "optimal_score": [problem["optimal_score"]]}
    rewards: dict[str, float] = {}
    weight_of: dict[str, float] = {}
    ranges: dict[str, tuple[float, float] | None] = {}
    for fn, w in zip(funcs, weights):
        name = reward_name(fn)
        while name in rewards:  # two rewards with one name: keep both
            name += "'"
        try:
            value = fn(completions=[completion], prompts=[problem.get("prompt", "")], **columns)[0]
            value = 0.0 if value is None else float(value)
        except Exception as exc:  # noqa: BLE001 - show it, don't crash the inspector
            warnings.warn(f"{name} failed: {type(exc).__name__}: {exc}", RuntimeWarning)
            value = float("nan")
        rewards[name], weight_of[name] = value, w
        ranges[name] = getattr(fn, "reward_range", None)
    return Explanation(check, rewards, weight_of, ranges=ranges,
                       priorities=tuple(problem.get("priority_events") or ()))


# ------------------------------------------------------------------ GRPO's view of rewards
def group_advantages(rewards: Sequence[float], group_size: int, eps: float = 1e-4) -> list[float]:
    """GRPO's advantage: within each group of ``group_size`` completions of one prompt,
    ``(r - mean) / (std + eps)``, with the sample standard deviation (n - 1), as TRL's
    default ``scale_rewards="group"``. A group whose rewards are all equal gets 0
    everywhere: nothing to learn from it."""
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    out: list[float] = []
    for g in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[g:g + group_size]]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1)) if len(group) > 1 else 0.0
        out += [(r - mean) / (std + eps) for r in group]
    return out
