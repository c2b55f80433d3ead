"""What the models actually write: events per answer against the optimum's, and the trace against the schedule.

A mean score hides *how* a model is valid. A model rewarded only for valid schedules can stay valid by
listing fewer events (a short valid schedule pays more than a full invalid one), and its ``<think>``
trace can say one thing while the schedule does another. This module reads the answers for both:

* events listed per answer, next to the number of events in the optimal schedule;
* the trace against the schedule: the warm start taught a trace that names what it drops
  (``Drop: A, B.`` or ``Keep everything.``) or what it keeps (``Keep: A, B.``) and states a total
  (``Total weighted minutes: 450.`` / ``Total: 450.``). An answer *contradicts its trace* when it schedules
  an event the trace drops or leaves out one the trace keeps (the short trace keeps every event it does not
  drop); its *total is wrong* when the stated total is not the value of the events it lists;
* the clashes the trace names (``Conflicts: A vs B; ...`` or ``Clashes: A ends 10:30 after B starts 10:00;
  ...``) against the problem: a named clash is *false* when the two events do not overlap (or one is not in
  the problem). A trace that invents clashes can justify dropping events that fit.

    >>> from utils.task.data import load_split
    >>> from utils.train.warmstart import dp_answer
    >>> row = load_split("test", 1)[0]
    >>> read_answer(row, dp_answer(row)).contradicts
    False
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..rewards.parsing import parse_completion
from ..rewards.schedule_check import check_schedule
from ..rewards.trace import clause, compare_clashes, named_clashes
from ..task.events import event_key, overlapping_pairs, to_intervals
from ..task.scheduling import optimal_schedule
from .evaluation import evaluate_completion

_TOTAL = re.compile(r"Total(?: weighted minutes)?:\s*(\d+)")


@dataclass(frozen=True)
class AnswerReading:
    """One answer, read for what it does rather than for its score."""

    events: int  # events the schedule lists (well-formed ones)
    optimal_events: int  # events in the problem's optimal schedule
    has_trace: bool  # a <think> trace in the warm start's form (Drop / Keep / Total)
    scheduled_but_dropped: tuple[str, ...] = ()  # names the trace drops and the schedule lists
    kept_but_missing: tuple[str, ...] = ()  # names the trace keeps and the schedule leaves out
    total_stated: int | None = None
    total_listed: int = 0  # the weighted minutes of the listed events (clashing or not)
    clashes_named: int = 0  # clashing pairs the trace names
    clashes_false: int = 0  # ... of which the problem's events do not overlap (or are not in the problem)
    clashes_found: int = 0  # the problem's clashing pairs that the trace names
    clashes_real: int = 0  # the problem's clashing pairs

    @property
    def total_wrong(self) -> bool:
        return self.total_stated is not None and self.total_stated != self.total_listed

    @property
    def contradicts(self) -> bool:
        """The schedule lists an event its own trace drops, or leaves out one the trace keeps."""
        return bool(self.scheduled_but_dropped or self.kept_but_missing)


def _names(listed: str, known: Sequence[str] = ()) -> list[str]:
    """The names in a trace's comma-separated list, a ``known`` name with commas of its own kept whole.

    >>> _names("Help Ben move, 3rd floor, Gym", ["Gym", "Help Ben move, 3rd floor"])
    ['Help Ben move, 3rd floor', 'Gym']
    """
    pieces = [n.strip() for n in listed.split(",")]
    known = set(known)
    widest = 1 + max((n.count(",") for n in known), default=0)  # the longest join worth trying: linear time
    names, i = [], 0
    while i < len(pieces):
        j = next((j for j in range(min(len(pieces), i + widest), i + 1, -1) if ", ".join(pieces[i:j]) in known), i + 1)
        names.append(", ".join(pieces[i:j]))
        i = j
    return [n for n in names if n]


def read_answer(row: Mapping, completion: Any) -> AnswerReading:
    """Read one answer against its problem (see the module docstring)."""
    parsed = parse_completion(completion)
    check = check_schedule(parsed, row["events"], row["priority_events"], row["optimal_score"])
    listed = [ev.name.strip() for ev in check.events]
    optimal = len(optimal_schedule(row["events"], row["priority_events"])[1])
    trace = parsed.reasoning or ""
    drop, keep, total = clause(trace, "Drop:"), clause(trace, "Keep:"), _TOTAL.search(trace)
    clashes = named_clashes(trace)
    false_named, found, real = compare_clashes(row["events"], clashes)
    has_trace = drop is not None or keep is not None or bool(total) or "Keep everything" in trace
    known = [e[0] for e in row["events"]]
    dropped = set(_names(drop, known)) if drop is not None else set()
    if keep is not None:
        kept = set(_names(keep, known))
    elif "Keep everything" in trace or drop is not None:  # the short trace keeps every event it does not drop
        kept = {e[0] for e in row["events"]} - dropped
    else:
        kept = set()
    return AnswerReading(
        events=len(check.events),
        optimal_events=optimal,
        has_trace=has_trace,
        scheduled_but_dropped=tuple(n for n in listed if n in dropped),
        kept_but_missing=tuple(sorted(kept - set(listed))),
        total_stated=int(total.group(1)) if total else None,
        total_listed=check.listed_value,
        clashes_named=len(clashes),
        clashes_false=false_named,
        clashes_found=found,
        clashes_real=real,
    )


def answer_profile(rows: Sequence[Mapping], completions: Sequence[Any]) -> dict[str, float]:
    """Means over a set of answers: events listed and in the optimum (per answer), and the shares of
    answers with a trace, contradicting it, scheduling a dropped event, and stating a wrong total
    (shares of the answers that have a trace), and the clashes the traces name: the share that are false
    (NaN when none is named) and the share of the problems' real clashes they name."""
    if len(rows) != len(completions):
        raise ValueError(f"answer_profile: {len(rows)} rows but {len(completions)} completions")
    readings = [read_answer(r, c) for r, c in zip(rows, completions)]
    n = max(len(readings), 1)
    traced = [r for r in readings if r.has_trace]
    t = max(len(traced), 1)
    named = sum(r.clashes_named for r in readings)
    return {
        "answers": len(readings),
        "events_per_answer": sum(r.events for r in readings) / n,
        "optimal_events_per_answer": sum(r.optimal_events for r in readings) / n,
        "with_trace": len(traced) / n,
        "contradicts_trace": sum(r.contradicts for r in traced) / t,
        "schedules_a_dropped_event": sum(bool(r.scheduled_but_dropped) for r in traced) / t,
        "leaves_out_a_kept_event": sum(bool(r.kept_but_missing) for r in traced) / t,
        "states_a_wrong_total": sum(r.total_wrong for r in traced) / t,
        "clashes_named": named,
        "false_clashes_named": sum(r.clashes_false for r in readings) / named if named else float("nan"),
        "real_clashes_named": sum(r.clashes_found for r in readings) / max(sum(r.clashes_real for r in readings), 1),
    }


def valid_quality(rows: Sequence[Mapping], completions: Sequence[Any]) -> dict[str, float]:
    """How good the valid answers are: how many (``valid``), their mean share of the optimum's weighted minutes
    (``share_of_optimum``) and how many reach it (``optimal``). The evaluation's mean score is
    ``100 x valid x share_of_optimum / answers``, so a model can raise it with more valid answers or with better
    ones; a reward that pays only for validity buys the first with the second.

    >>> from utils.task.data import load_split
    >>> from utils.train.warmstart import dp_answer
    >>> rows = load_split("test", 2)
    >>> valid_quality(rows, [dp_answer(rows[0]), "no schedule"])
    {'answers': 2, 'valid': 1, 'share_of_optimum': 1.0, 'optimal': 1}
    """
    if len(rows) != len(completions):
        raise ValueError(f"valid_quality: {len(rows)} rows but {len(completions)} completions")
    shares = [
        r.score for r in (evaluate_completion(row, c) for row, c in zip(rows, completions)) if r.category == "valid"
    ]
    return {
        "answers": len(rows),
        "valid": len(shares),
        "share_of_optimum": sum(shares) / len(shares) if shares else float("nan"),
        "optimal": sum(s >= 1 - 1e-9 for s in shares),
    }


def completion_gap(rows: Sequence[Mapping], completions: Sequence[Any]) -> dict[str, float]:
    """How much the valid answers leave on the table *for free*: events left out although they clash with
    nothing the answer lists (:func:`utils.task.scheduling.free_events`). ``not_maximal``: valid answers that
    could take another event without a clash; ``free_events``: how many such events in all; ``mean_score`` and
    ``mean_score_completed``: the evaluation's mean score (x100, invalid answers 0) as written, and with every
    free event added to every valid answer (the schedule stays valid: it only fills gaps).

    A model that stays valid by writing short schedules shows it here: GRPO with the strict score left 197 free
    events in its 91 valid test answers (``weak_grpo_strict``), worth 42.9 -> 85.5 points of mean score.

    >>> from utils.task.data import load_split
    >>> from utils.train.warmstart import dp_answer
    >>> rows = load_split("test", 2)
    >>> completion_gap(rows, [dp_answer(rows[0]), "no schedule"])["not_maximal"]  # an optimal schedule is maximal
    0
    """
    if len(rows) != len(completions):
        raise ValueError(f"completion_gap: {len(rows)} rows but {len(completions)} completions")
    valid = not_maximal = free = 0
    score = completed = 0.0
    for row, completion in zip(rows, completions):
        result = evaluate_completion(row, completion)
        if result.category != "valid":
            continue
        check = check_schedule(completion, row["events"], row["priority_events"], row["optimal_score"])
        gained = check.free_events()
        valid += 1
        not_maximal += bool(gained)
        free += len(gained)
        score += result.score
        completed += min(1.0, (check.weighted_score + check.free_value()) / row["optimal_score"])
    n = max(len(rows), 1)
    return {
        "answers": len(rows),
        "valid": valid,
        "not_maximal": not_maximal,
        "free_events": free,
        "mean_score": 100 * score / n,
        "mean_score_completed": 100 * completed / n,
    }


# after a name: its times (where the trace copies them), a worked sum ("25+20=", scan_worked), then the minutes;
# matched anchored at the name's end, so each try is linear in what it reads
_STATED = re.compile(r"(?:\d{1,2}:\d{2}-\d{1,2}:\d{2} )?(?:[\d+-]+=)?(\d+)")


def stated_durations(rows: Sequence[Mapping], completions: Sequence[Any]) -> dict[str, float]:
    """Does the ``<think>`` trace compute the events' values, or only imitate them? The warm start's ``full``,
    ``timeline`` and ``scan`` traces state each event's duration in minutes (then ``x2=`` its value for a
    priority): this reads the number written after each event's first mention (after its times, where the trace
    copies them) and compares it with the real duration. ``durations_right``: the share stated correctly;
    ``most_common`` and ``most_common_share``: the number written most often and its share of the stated ones.
    A model that writes one number for most events has learned the form of the trace, not the subtraction.

    >>> from utils.task.data import load_split
    >>> from utils.train.warmstart import dp_answer
    >>> rows = load_split("test", 20)
    >>> stated_durations(rows, [dp_answer(r, "full") for r in rows])["durations_right"]
    1.0
    >>> fifteen = "<think>Values (minutes, x2 for priority): Gym 15, Call 15.</think><schedule></schedule>"
    >>> row = {"events": [["Gym", "09:00", "10:30"], ["Call", "10:00", "10:15"]], "priority_events": []}
    >>> stated_durations([row], [fifteen])
    {'answers': 1, 'durations_stated': 2, 'durations_right': 0.5, 'most_common': 15, 'most_common_share': 1.0}
    """
    if len(rows) != len(completions):
        raise ValueError(f"stated_durations: {len(rows)} rows but {len(completions)} completions")
    stated: list[int] = []
    right = 0
    for row, completion in zip(rows, completions):
        trace = parse_completion(completion).reasoning or ""
        for iv in to_intervals(row["events"]):
            at = trace.find(iv.name + " ")
            m = _STATED.match(trace, at + len(iv.name) + 1) if at >= 0 else None
            if m:
                stated.append(int(m.group(1)))
                right += stated[-1] == iv.end - iv.start
    common, times = Counter(stated).most_common(1)[0] if stated else (None, 0)
    return {
        "answers": len(rows),
        "durations_stated": len(stated),
        "durations_right": right / len(stated) if stated else float("nan"),
        "most_common": common,
        "most_common_share": times / len(stated) if stated else float("nan"),
    }


def kept_clashes(completions: Sequence[Any]) -> dict[str, int]:
    """Why a schedule keeps two events that clash: its trace missed the clash, or named it and kept both anyway.
    For the answers whose schedule lists a clashing pair: ``answers``, and the clashing pairs they list, split
    into ``named`` (the answer's own ``<think>`` trace names that pair as a clash: a decision failure) and
    ``not_named`` (a detection failure). Mostly ``not_named`` means a better trace (finding clashes) is the
    lever, not a better choice between clashing events. (The answer alone says it: no problem is needed.)

    >>> both = "<schedule><event><name>Gym</name><start>09:00</start><end>10:30</end></event>" \\
    ...        "<event><name>Call</name><start>10:00</start><end>11:00</end></event></schedule>"
    >>> kept_clashes(["<think>No clashes.</think>" + both, "<think>Conflicts: Gym vs Call.</think>" + both])
    {'answers': 2, 'named': 1, 'not_named': 1}
    """
    answers = named = not_named = 0
    for completion in completions:
        parsed = parse_completion(completion)
        pairs = overlapping_pairs([e.span for e in parsed.events])
        if not pairs:
            continue
        answers += 1
        said = {frozenset(p) for p in named_clashes(parsed.reasoning or "")}
        for i, j in pairs:
            hit = frozenset((parsed.events[i].name, parsed.events[j].name)) in said
            named += hit
            not_named += not hit
    return {"answers": answers, "named": named, "not_named": not_named}


def sample_problem(sample: Mapping, index: Mapping[tuple, set[int]], problems: Sequence[Mapping]) -> Mapping | None:
    """The problem a recorded GRPO sample answered: its own ``problem`` field (recorded since 2026-12-06,
    evening), else the one training problem that holds every event the answer lists (older files; None when
    no single problem does, e.g. an answer with an invented event). ``index`` maps event keys to problems."""
    if sample.get("problem"):
        return sample["problem"]
    keys = [event_key(ev.as_list()) for ev in parse_completion(sample.get("completion", "")).events]
    found = set.intersection(*(index.get(k, set()) for k in keys)) if keys else set()
    return problems[next(iter(found))] if len(found) == 1 else None


def sample_gaps(samples: Sequence[Mapping], problems: Sequence[Mapping]) -> dict[int, dict[str, float]]:
    """Per recorded step of a GRPO run (``samples.jsonl``, ``results/ablation/<row>/grpo_samples.jsonl.gz``): the
    sampled answers, how many are valid, how many of those leave out a free event, and free events per valid
    answer. ``problems``: the run's training problems (to find the problem of samples recorded without one)."""
    index: dict[tuple, set[int]] = {}
    for i, row in enumerate(problems):
        for event in row["events"]:
            index.setdefault(event_key(event), set()).add(i)
    by_step: dict[int, list[Mapping]] = {}
    for sample in samples:
        by_step.setdefault(int(sample["step"]), []).append(sample)
    steps: dict[int, dict[str, float]] = {}
    for step, batch in by_step.items():
        found = [(row, s["completion"]) for s in batch if (row := sample_problem(s, index, problems)) is not None]
        gap = completion_gap([row for row, _ in found], [c for _, c in found])  # the rest: counted, not measured
        steps[step] = {"answers": len(batch), **{k: gap[k] for k in ("valid", "not_maximal", "free_events")}}
        steps[step]["free_per_valid"] = gap["free_events"] / gap["valid"] if gap["valid"] else float("nan")
    return dict(sorted(steps.items()))
