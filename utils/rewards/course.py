"""The course's three rewards: format (10) + order (20) + score (70) = 100.

They follow the public recipe (README, Sources) with one correction: touching events (one ends
when the next starts) are not an overlap, so the DP-optimal schedule always gets the full 100.
"Always" means on every problem of the course (:mod:`utils.task.validate`), which includes that
the optimal schedule has at least two events: like the reference, the order and score rewards
give 0 to a schedule of fewer than two events (listing one long event would otherwise be an easy
hack), so the generator never makes a problem whose optimum is a single event, and the loaders
and the evaluator refuse one. On a row that is not a problem the score reward gives 0 and warns why.
A completion never makes a reward raise or hang: it parses in linear time
(:mod:`utils.rewards.parsing`) and anything unreadable scores 0.

Each reward has TRL's signature ``fn(completions, **kwargs) -> list[float]``; completions are
strings, or lists of chat messages for conversational datasets: both work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..task.events import is_chronological
from .common import as_batch, safe
from .parsing import parse_completion
from .schedule_check import ScheduleCheck, score_each

FORMAT_POINTS = 10.0
SORTED_POINTS = 20.0
SCORE_POINTS = 70.0


def format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """10 if the answer opens with non-empty ``<think>`` reasoning and then a closed
    ``<schedule>`` holding at least one well-formed event with valid times; else 0."""

    def one(c: Any) -> float:
        p = parse_completion(c)
        ok = p.think_at_start and p.has_reasoning and p.schedule_closed and len(p.events) >= 1
        return FORMAT_POINTS if ok else 0.0

    return [safe(lambda c=c: one(c)) for c in as_batch(completions)]


def sorted_events_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """20 if the schedule lists at least two events with strictly increasing start times."""

    def one(c: Any) -> float:
        spans = [ev.span for ev in parse_completion(c).events]
        return SORTED_POINTS if is_chronological(spans) else 0.0

    return [safe(lambda c=c: one(c)) for c in as_batch(completions)]


def score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70 for the weighted duration achieved, relative to the DP optimum.

    0 when an event is not in the problem (impossible times included), is listed twice,
    or fewer than two are listed; 0 with a warning when the row is not a problem of the course
    (:func:`utils.task.validate.problem_error`: e.g. ``optimal_score`` NaN, negative or impossibly small).
    Both events of every truly overlapping pair are dropped (touching is fine); the rest
    score ``weighted / optimal * 70``.
    """

    def score(chk: ScheduleCheck) -> float:
        if not chk.all_real or len(chk.events) < 2 or chk.optimal_score <= 0:
            return 0.0
        return SCORE_POINTS * min(1.0, chk.score_ratio)  # chk.score_ratio: weighted / optimal, clashes dropped

    return score_each(completions, kwargs, score)


format_reward.reward_range = (0, FORMAT_POINTS)
sorted_events_reward.reward_range = (0, SORTED_POINTS)
score_reward.reward_range = (0, SCORE_POINTS)
