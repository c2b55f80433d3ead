"""``explain()``: everything about one (problem, answer), for people: parsed events, what is wrong, every reward."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..task.events import PRIORITY_WEIGHT, weight_of
from ..task.validate import PROBLEM_KEYS
from .common import RewardFn, reward_name
from .registry import default_reward_funcs
from .schedule_check import ScheduleCheck, check_schedule
from .total import check_weights, weighted_total

MAX_TEXT_ROWS = 40  # to_text() lists at most this many events


@dataclass
class Explanation:
    """The breakdown :func:`explain` returns; ``print()`` it, or read its fields."""

    check: ScheduleCheck
    rewards: dict[str, float]
    weights: dict[str, float]
    ranges: dict[str, tuple[float, float] | None] = field(default_factory=dict)  # each reward's reward_range
    priorities: tuple[str, ...] = ()
    show_total: bool = True  # False when the rewards are alternatives to compare, not parts of one set

    @property
    def total(self) -> float:
        return weighted_total(list(self.rewards.values()), [self.weights[k] for k in self.rewards])

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
            status = (
                "not in problem"
                if id(ev) in invented
                else "repeated"
                if id(ev) in repeated
                else "overlaps"
                if i in c.clashing
                else "ok"
            )
            weight = weight_of(ev.name, prios)
            rows.append(
                {
                    "#": i + 1,
                    "name": ev.name,
                    "start": ev.start,
                    "end": ev.end,
                    "priority": weight == PRIORITY_WEIGHT,  # names compared as weight_of does
                    "value": weight * (ev.end_min - ev.start_min),
                    "status": status,
                }
            )
        return rows

    def summary(self) -> dict:
        """The headline facts as a flat dict (one table row per completion)."""
        c, p = self.check, self.check.parsed
        return {
            "reasoning": p.has_reasoning,
            "schedule": self.schedule_state,
            "events": len(c.events),
            "invented": len(c.invented) + len(c.impossible_times),
            "repeated": len(c.repeated),
            "overlapping pairs": len(c.overlaps),
            "chronological": c.chronological,
            "weighted": c.weighted_score,
            "optimal": c.optimal_score,
            **self.rewards,
            "TOTAL": self.total,
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
        lines += [
            f"  {r['#']:>2}. {r['start']}-{r['end']}  {r['name'][:28]:<28}{' *' if r['priority'] else '  '}"
            f" {r['value']:>4}  {r['status']}"
            for r in rows[:MAX_TEXT_ROWS]
        ]
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
        if c.all_real and not c.overlaps and (free := c.free_events()):  # bounded: each problem event once at most
            shown = ", ".join(f"{name} ({start}-{end})" for name, start, end in free[:10])
            lines.append(f"left out though nothing listed clashes with them: {shown} (+{c.free_value()} weighted)")
        lines.append(
            f"weighted score (overlapping events removed): {c.weighted_score} / optimal "
            f"{c.optimal_score:g} = {c.score_ratio:.1%}"
        )
        if p.problems:
            lines.append("problems: " + "; ".join(p.problems))
        if c.problem:
            lines.append(f"NOT A PROBLEM OF THE COURSE (score rewards give 0): {c.problem}")
        for k, v in self.rewards.items():
            w = self.weights[k]
            lines.append(f"  {k:<32} {v:7.2f}" + (f"  x {w:g}" if w != 1 else ""))
        if self.show_total:
            top = self.max_total
            lines.append(f"  {'TOTAL':<32} {self.total:7.2f}" + (f" / {top:g}" if top is not None else ""))
        else:
            lines.append("  (no total: these rewards are alternatives to compare, not parts of one reward set)")
        return "\n".join(lines)

    def __str__(self) -> str:  # print(explain(...)) shows the breakdown
        return self.to_text()


def explain(
    problem: Mapping,
    completion: Any,
    reward_funcs: Sequence[RewardFn] | None = None,
    weights: Sequence[float] | None = None,
    total: bool = True,
) -> Explanation:
    """Everything about one (problem, completion): parsed events, which are invented,
    overlapping pairs, order, weighted score vs optimal, each reward and the total.

    ``total=False`` leaves the total out of the printout: for rewards that are alternatives to
    each other (two versions of the score reward), whose sum means nothing.

    A reward that raises or returns something that is not a finite number shows as
    ``nan`` (with a warning) instead of breaking the caller; the total is then ``nan`` too.
    ``problem`` must be a mapping with ``events``, ``priority_events`` and ``optimal_score`` (a
    dataset row); anything else is a one-line error.
    """
    if not isinstance(problem, Mapping):
        raise TypeError(
            f"explain(problem, completion): problem must be a dataset row, a dict with {list(PROBLEM_KEYS)}; "
            f"got {type(problem).__name__}"
        )
    if missing := [k for k in PROBLEM_KEYS if k not in problem]:
        raise ValueError(
            f"explain(problem, completion): the problem lacks {missing}; a dataset row has {list(PROBLEM_KEYS)}"
        )
    funcs = list(reward_funcs) if reward_funcs is not None else default_reward_funcs()
    weights = check_weights(weights, len(funcs))
    check = check_schedule(completion, problem["events"], problem["priority_events"], problem["optimal_score"])
    columns = {
        "events": [problem["events"]],
        "priority_events": [problem["priority_events"]],
        "optimal_score": [problem["optimal_score"]],
    }
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
            warnings.warn(f"{name} failed: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            value = float("nan")
        rewards[name], weight_of[name] = value, w
        ranges[name] = getattr(fn, "reward_range", None)
    prios = problem["priority_events"]  # a row that is not a problem may hold anything here
    return Explanation(
        check,
        rewards,
        weight_of,
        ranges=ranges,
        priorities=tuple(p for p in prios if isinstance(p, str)) if isinstance(prios, (list, tuple)) else (),
        show_total=total,
    )
