"""The live monitor: what the *evaluation* says of the answers GRPO samples, logged next to the reward.

GRPO optimises the reward, but the course is judged by the evaluation (:mod:`utils.evaluate`, the
reference's rules: valid schedules and their score). When the two disagree, GRPO finds it: the reward
climbs while what we care about falls (Goodhart's law). The seed's ``score_reward`` drops clashing
pairs and pays for the rest, so GRPO learns to list clashing events; on the lent GPU valid test
answers fell from 28 to 0 while the reward rose (``results/ablation/weak_grpo.json``).

So at every step the monitor scores the same sampled answers the rewards just scored, the way the
evaluation scores test answers, and logs it into TRL's metrics (``trainer._metrics``, averaged over
the logging interval like TRL's own columns): it lands in ``trainer.state.log_history``, the live
plots of notebook 05 and every results file that keeps the log. The columns are in
:data:`MONITOR_COLUMNS`. It reads the text only (no model call): well under 2% of a GPU step
(``benchmarks/bench_rewards.py`` times it).

    >>> from utils.task.data import load_split
    >>> row = load_split("test", 1)[0]
    >>> m = monitor_batch(["no schedule"], [row["events"]], [row["priority_events"]], [row["optimal_score"]])
    >>> m["monitor/valid"], m["monitor/events"]
    (0.0, 0.0)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..evaluate.evaluation import evaluate_completion
from ..rewards.schedule_check import check_schedule
from ..rewards.trace import compare_clashes, named_clashes
from ..task.columns import PROBLEM_COLUMNS
from ..task.scheduling import optimal_schedule

MONITOR_COLUMNS: dict[str, str] = {
    "monitor/valid": "share of the sampled answers the evaluation counts valid",
    "monitor/score": "mean evaluation score of the sampled answers (weighted / optimal x 100; invalid answers 0)",
    "monitor/clash": "share of sampled answers that list two overlapping events",
    "monitor/invented": "share of answers listing an event not in the problem (or twice, or at impossible times)",
    "monitor/events": "events listed per sampled answer",
    "monitor/optimal_events": "events in the optimal schedule of each answer's problem (monitor/events' yardstick)",
    "monitor/free_events": "events per answer that a valid answer leaves out although they clash with nothing it lists",
    "monitor/trace_real_clashes": "share of the problems' clashing pairs that the <think> traces name (0 without any)",
    "monitor/trace_false_clashes": "share of the clashes the <think> traces name that are not clashes (0 if none is)",
    "monitor/seconds": "seconds the monitor took for the batch (its cost, to compare with step_time)",
}


def _optimal_events(events: Sequence, priority_events: Sequence[str], cache: dict) -> int:
    key = (tuple(tuple(e) for e in events), tuple(priority_events or ()))
    if key not in cache:  # a GRPO group shares one problem: solve it once
        cache[key] = len(optimal_schedule(events, priority_events or [])[1])
    return cache[key]


def monitor_batch(
    completions: Sequence[Any],
    events: Sequence[Sequence],
    priority_events: Sequence[Sequence[str]],
    optimal_score: Sequence[float],
) -> dict[str, float]:
    """The evaluation's view of a batch of answers (one problem per answer): the :data:`MONITOR_COLUMNS`
    means, without ``monitor/seconds``. An answer whose problem is not a problem of the course counts as
    not valid and scores 0 (the rewards give it 0 too)."""
    n = len(completions)
    if not (len(events) == len(priority_events) == len(optimal_score) == n):
        raise ValueError(
            f"monitor_batch: {n} completions but {len(events)} / {len(priority_events)} / "
            f"{len(optimal_score)} problem columns"
        )
    if n == 0:
        return {k: 0.0 for k in MONITOR_COLUMNS if k != "monitor/seconds"}
    totals = dict.fromkeys(("valid", "score", "clash", "invented", "events", "optimal_events", "free_events"), 0.0)
    named = false = found = real = 0  # the traces' clashes: shares of sums, not means of per-answer shares
    cache: dict = {}
    for c, ev, prio, opt in zip(completions, events, priority_events, optimal_score):
        row = {"events": ev, "priority_events": prio, "optimal_score": opt}
        try:
            result = evaluate_completion(row, c)
            totals["optimal_events"] += _optimal_events(ev, prio, cache)
        except ValueError:  # not a problem of the course: nothing to measure against
            continue
        check = check_schedule(c, ev, prio, opt)
        totals["valid"] += result.valid
        totals["score"] += 100.0 * result.score
        totals["clash"] += bool(check.overlaps)
        totals["invented"] += not check.all_real
        totals["events"] += len(check.events)
        if result.valid:  # only a valid answer's gaps are free (and then it lists each problem event once at most)
            totals["free_events"] += len(check.free_events())
        pairs = named_clashes(check.parsed.reasoning or "")
        wrong, hit, clashes = compare_clashes(ev, pairs)
        named, false, found, real = named + len(pairs), false + wrong, found + hit, real + clashes
    return {
        **{f"monitor/{k}": v / n for k, v in totals.items()},
        "monitor/trace_real_clashes": found / real if real else 0.0,
        "monitor/trace_false_clashes": false / named if named else 0.0,
    }


class RewardMonitor:
    """Feeds :func:`monitor_batch` of every scored batch into a trainer's metrics.

    :class:`~utils.train.callbacks.CompletionRecorder` calls :meth:`observe` with each batch its first
    reward function scores; :meth:`attach` gives it the ``GRPOTrainer`` to log into. ``latest`` keeps
    the last batch's values (for a display), ``seconds`` the cost of every call.
    Under several processes each logs its own slice of the batch (TRL gathers only its own columns).
    """

    def __init__(self) -> None:
        self.trainer: Any = None
        self.latest: dict[str, float] = {}
        self.seconds: list[float] = []

    def attach(self, trainer: Any) -> None:
        self.trainer = trainer

    def observe(self, completions: Sequence[Any], **columns: Any) -> dict[str, float]:
        problem = [columns.get(k) for k in PROBLEM_COLUMNS]
        if any(col is None for col in problem):  # a data set without the problem columns: nothing to measure
            return {}
        t0 = time.perf_counter()
        values = monitor_batch(completions, *problem)
        values["monitor/seconds"] = time.perf_counter() - t0
        self.seconds.append(values["monitor/seconds"])
        self.latest = values
        log_metrics(self.trainer, values)
        return values


def log_metrics(trainer: Any, values: dict[str, float]) -> None:
    """Append ``values`` to a ``GRPOTrainer``'s own metrics (``trainer._metrics[mode]``, TRL 1.14): TRL
    averages each list over the logging interval and writes it into ``log_history`` like its own columns.
    No-op without a trainer (or one without those metrics)."""
    metrics = getattr(trainer, "_metrics", None)
    if metrics is None:
        return
    mode = "train" if trainer.model.training else "eval"
    for key, value in values.items():
        metrics[mode][key].append(value)
