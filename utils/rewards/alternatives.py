"""Alternative rewards to try against the course's three (notebook 03 compares them all).

Partial credit gives a signal earlier (useful before the format is learned, or for a model
that still invents an event now and then) and is easier to exploit; penalties price a
behaviour instead of forbidding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..task.events import clashing, event_key
from ..task.validate import problem_error
from .common import as_batch, problem_columns, safe
from .course import FORMAT_POINTS, SCORE_POINTS
from .parsing import parse_completion
from .schedule_check import ScheduleCheck, event_value, score_each
from .trace import compare_clashes, named_clashes


def partial_format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 10 in steps: 2 each for opening with <think>, closing it, opening <schedule>,
    closing it, and one well-formed event. Gives a signal before the full format appears."""

    def one(c: Any) -> float:
        p = parse_completion(c)
        parts = [p.think_at_start, p.reasoning is not None, p.schedule_open, p.schedule_closed, bool(p.events)]
        return 2.0 * sum(parts)

    return [safe(lambda c=c: one(c)) for c in as_batch(completions)]


def partial_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70 with partial credit: invented or repeated events are ignored (each costs
    5 points) instead of zeroing everything; overlapping pairs are dropped as usual.
    0 with a warning on a row that is not a problem (:func:`utils.task.validate.problem_error`)."""
    completions = as_batch(completions)
    out = []
    for c, (events, prios, opt) in zip(completions, problem_columns(kwargs, len(completions))):

        def one(c=c, events=events, prios=prios, opt=opt) -> float:
            if why := problem_error(events, prios, opt):
                raise ValueError(f"not a problem of the course: {why}")
            parsed = parse_completion(c)
            known = {event_key(e) for e in events}
            kept, seen, bad = [], set(), len(parsed.invalid_events)
            for ev in parsed.events:
                key = ev.key
                if key in known and key not in seen:
                    kept.append(ev)
                    seen.add(key)
                else:
                    bad += 1
            clash = clashing([ev.span for ev in kept])
            value = sum(event_value(ev, prios) for i, ev in enumerate(kept) if i not in clash)
            return max(0.0, SCORE_POINTS * min(1.0, value / opt) - 5.0 * bad)

        out.append(safe(one))
    return out


def overlap_penalty_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70: every listed event counts, minus 15 points per overlapping pair.
    Easier to satisfy than removal; notebook 03 shows how it can be gamed."""

    def score(chk: ScheduleCheck) -> float:
        if not chk.all_real or len(chk.events) < 2 or chk.optimal_score <= 0:
            return 0.0
        paid = SCORE_POINTS * min(1.0, chk.listed_value / chk.optimal_score)
        return max(0.0, paid - 15.0 * len(chk.overlaps))

    return score_each(completions, kwargs, score)


def strict_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 70, but only for a schedule the reference evaluation counts as valid: a closed schedule,
    every event one of the problem's, written exactly (no spaces around a name), listed once, in time
    order, and no two overlapping; then ``weighted / optimal * 70``. Anything else scores 0.

    Why: :func:`~utils.rewards.course.score_reward` drops clashing pairs and pays for the rest, and
    strips names. On the lent GPU, GRPO from a weak warm start learned exactly that: its training
    reward rose while its valid test answers fell from 28 to 0 (more events listed, names padded with
    spaces; ``results/ablation/weak_grpo.json``). This reward pays only for what the evaluation pays for.
    """

    def score(chk: ScheduleCheck) -> float:
        return SCORE_POINTS * min(1.0, chk.score_ratio) if _counted_valid(chk) else 0.0

    return score_each(completions, kwargs, score)


OPTIMAL_BONUS_POINTS = 30.0


def optimal_bonus_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """30 for a schedule the evaluation counts valid (as :func:`strict_score_reward`) that also reaches the
    optimal score; anything else 0. Use it next to ``strict_score_reward``.

    Why: paid only in proportion to the score, GRPO from a weak warm start learned to stay valid by writing
    about half the optimum's events (2.1 against 4.2 per answer, ``results/ablation/weak_grpo_strict.json``):
    a short valid schedule pays more than a full invalid one. A bonus for the exact optimum makes the whole
    schedule worth the risk.

    >>> from utils.rewards.gallery import make_gallery
    >>> from utils.task.data import load_split
    >>> row = load_split("test", 1)[0]
    >>> cols = {k: [row[k]] for k in ("events", "priority_events", "optimal_score")}
    >>> gallery = make_gallery(row)
    >>> optimal_bonus_reward([gallery["optimal (DP)"]], **cols), optimal_bonus_reward([gallery["overlapping"]], **cols)
    ([30.0], [0.0])
    """

    def bonus(chk: ScheduleCheck) -> float:
        return OPTIMAL_BONUS_POINTS if _counted_valid(chk) and chk.score_ratio >= 1.0 - 1e-9 else 0.0

    return score_each(completions, kwargs, bonus)


def squared_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Like :func:`strict_score_reward` (only schedules the evaluation counts valid), but the share of the optimum is
    squared: ``(weighted / optimal) ** 2 * 70``. A schedule at 90% of the optimum earns 57 instead of 63, one at
    70% earns 34 instead of 49; the optimum still earns 70.

    Why: with the linear strict score GRPO bought validity with quality. From the strong warm start, valid test
    answers went 45 -> 74 while their average share of the optimum fell from 86% to 72% (15 -> 9 optimal;
    ``results/ablation/strong_grpo_optimal.json``, ``utils.evaluate.answers.valid_quality``): a short safe
    schedule was paid almost as well as a whole one, which risks a clash. Squaring widens the gap between a whole
    schedule and a short one and narrows the gap between a short one and a clash. Not measured on a GPU yet
    (ablation row ``strong_grpo_squared``).

    >>> from utils.rewards.gallery import make_gallery
    >>> from utils.task.data import load_split
    >>> row = load_split("test", 1)[0]
    >>> cols = {k: [row[k]] for k in ("events", "priority_events", "optimal_score")}
    >>> gallery = make_gallery(row)
    >>> [round(squared_score_reward([gallery[k]], **cols)[0], 1) for k in ("optimal (DP)", "greedy", "overlapping")]
    [70.0, 55.3, 0.0]
    >>> round(strict_score_reward([gallery["greedy"]], **cols)[0], 1)  # the same greedy answer, linear
    62.2
    """

    def score(chk: ScheduleCheck) -> float:
        return SCORE_POINTS * min(1.0, chk.score_ratio) ** 2 if _counted_valid(chk) else 0.0

    return score_each(completions, kwargs, score)


def maximal_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Like :func:`strict_score_reward` (only schedules the evaluation counts valid), but an event the schedule
    leaves out although it clashes with nothing it lists costs its value: ``(weighted - free) / optimal * 70``,
    at least 0, where ``free`` is what adding those events would add (:func:`utils.task.scheduling.free_events`).
    Leaving a free event out is then worse than writing it by twice its value; a *maximal* schedule (nothing can
    be added without a clash, as in every optimal one) is paid exactly as the strict score pays it.

    Why: GRPO with the strict score learned to leave out events that clash with nothing. Of the 74 valid test
    answers of ``strong_grpo_optimal``, 53 could take another event without any clash (70 such events); of
    ``weak_grpo_strict``'s 91, all 91 (197). Adding them would lift the mean score from 53.4 to 67.6 and from
    42.9 to 85.5 (``utils.evaluate.answers.completion_gap`` on the committed completions). The strict score pays a short
    safe schedule nearly as well as a whole one; this one charges for the free events left out. Measured (H100,
    150 steps, rows ``weak_grpo_maximal``, ``strong_grpo_maximal``): the valid answers kept more of the optimum
    (79% and 78%, against 47% and 72% with the strict score) but fewer were valid (50 and 71, against 91 and 74;
    paired, p = 5.9e-11 and 0.70); neither mean score moved beyond noise, and from the strong warm start it is the
    best so far (55.1). From the scan trace's warm start it gave ``strong_grpo_maximal_scan`` (67 -> 83 valid, mean
    score 74.8) and the gpu profile's recipe ``wide4000_grpo_maximal_scan`` (57 -> 82, 70.0), and it is the course's
    default score since 2026-12-07
    (:data:`~utils.rewards.registry.DEFAULT_REWARDS`).

    >>> from utils.task.prompts import format_answer
    >>> A, B, C, D = ["A", "08:00", "09:00"], ["B", "09:00", "10:30"], ["C", "11:00", "12:00"], ["D", "08:30", "09:30"]
    >>> cols = {"events": [[A, B, C, D]], "priority_events": [[]], "optimal_score": [210]}  # A + B + C
    >>> whole, short = format_answer("A, B, C.", [A, B, C]), format_answer("A, B.", [A, B])
    >>> maximal_score_reward([whole], **cols), maximal_score_reward([short], **cols)  # C was free: (150 - 60) / 210
    ([70.0], [30.0])
    >>> strict_score_reward([short], **cols)  # the strict score pays the short answer 5/7 of the whole one
    [50.0]
    """

    def score(chk: ScheduleCheck) -> float:
        if not _counted_valid(chk):
            return 0.0
        return SCORE_POINTS * max(0.0, min(1.0, (chk.weighted_score - chk.free_value()) / chk.optimal_score))

    return score_each(completions, kwargs, score)


#: Points of :func:`trace_clash_reward`: a process reward, small next to the score's 70.
TRACE_POINTS = 10


def trace_clash_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Up to 10 points for a ``<think>`` trace that names the problem's clashes and no others:
    ``10 x precision x recall`` of the clashing pairs it names (``Conflicts: A vs B; ...`` or ``Clashes: A ends
    10:30 after B starts 10:00; ...``; :func:`utils.rewards.trace.named_clashes`). A problem without clashes pays
    10 for ``No conflicts.`` / ``No clashes.``; a trace that says nothing about clashes gets 0. It pays for the
    reasoning, not the schedule: use it next to a score reward.

    Why: the warm starts' traces name only 16-32% of the real clashes, and 69-83% of the clashes they name are
    not clashes (two events that fit); GRPO with a score reward raised the first in the strong rows (31-32% ->
    43-46%, McNemar p = 0.006 and 0.009 over the 161 clashes, optimistic: one problem's clashes are not
    independent) and left the second (``utils.evaluate.answers.answer_profile`` on the committed rows). A trace
    that finds the real clashes is what the schedule should follow. Measured twice on a GPU at weight 1 beside
    ``maximal_score_reward`` (rows ``strong_grpo_maximal_scan_trace`` and ``strong_grpo_maximal_trace``): it moved
    neither the schedules nor the traces (results/README.md); a larger weight is untested.

    >>> A, B, C = ["A", "08:00", "09:00"], ["B", "08:30", "09:30"], ["C", "10:00", "11:00"]
    >>> cols = {"events": [[A, B, C]], "priority_events": [[]], "optimal_score": [120]}
    >>> right = "<think>Conflicts: A vs B. Drop: B.</think><schedule></schedule>"
    >>> half = "<think>Conflicts: A vs B; B vs C. Drop: B.</think><schedule></schedule>"  # B and C fit
    >>> silent = "<think>Drop: B.</think><schedule></schedule>"
    >>> [trace_clash_reward([c], **cols)[0] for c in (right, half, silent)]
    [10.0, 5.0, 0.0]
    """

    def score(chk: ScheduleCheck) -> float:
        trace = chk.parsed.reasoning or ""
        pairs = named_clashes(trace)
        if not pairs and "No conflicts" not in trace and "No clashes" not in trace:
            return 0.0  # the trace does not say which events clash
        false, found, real = compare_clashes(chk.problem_events, pairs)
        precision = (len(pairs) - false) / len(pairs) if pairs else 1.0
        return TRACE_POINTS * precision * (found / real if real else 1.0)

    return score_each(completions, kwargs, score)


def _counted_valid(chk: ScheduleCheck) -> bool:
    """What the reference evaluation counts valid: a closed schedule of the problem's own events, written exactly
    (no spaces around a name), in time order, none overlapping; and an optimum above 0 to measure it against
    (the strict rewards all need both)."""
    p = chk.parsed
    valid = p.schedule_closed and chk.all_real and chk.chronological and not chk.overlaps and not p.padded_names
    return valid and chk.optimal_score > 0


def truncation_penalty_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """-10 when the answer never closes its schedule (it ran out of tokens), else 0."""

    def one(c: Any) -> float:
        p = parse_completion(c)
        return -10.0 if not p.schedule_closed else 0.0

    return [safe(lambda c=c: one(c)) for c in as_batch(completions)]


def length_penalty_reward(completions: Sequence[Any], max_chars: int = 1500, **kwargs) -> list[float]:
    """0 up to ``max_chars`` characters, then down linearly to -10 at twice that."""

    def one(c: Any) -> float:
        n = len(parse_completion(c).text)
        return -10.0 * min(1.0, (n - max_chars) / max_chars) if n > max_chars else 0.0  # 0.0, never -0.0

    return [safe(lambda c=c: one(c)) for c in as_batch(completions)]


partial_format_reward.reward_range = (0, FORMAT_POINTS)
partial_score_reward.reward_range = (0, SCORE_POINTS)
strict_score_reward.reward_range = (0, SCORE_POINTS)
squared_score_reward.reward_range = (0, SCORE_POINTS)
maximal_score_reward.reward_range = (0, SCORE_POINTS)
trace_clash_reward.reward_range = (0, TRACE_POINTS)
optimal_bonus_reward.reward_range = (0, OPTIMAL_BONUS_POINTS)
overlap_penalty_score_reward.reward_range = (0, SCORE_POINTS)
truncation_penalty_reward.reward_range = (-10, 0)
length_penalty_reward.reward_range = (-10, 0)
