"""A gallery of answers to one problem: good, wrong in a typical way, and reward hacks.

Notebook 03 runs every reward on every gallery item, so you can see what each reward
pays for before a model finds out the hard way. :func:`make_gallery` builds the items
from the problem itself (the DP optimum, a greedy answer, ...), so they work for any row
of the dataset. :func:`back_to_back_completion` builds the long, cut-off answer that makes
the reference's format regex backtrack (notebook 03, the checker and the benchmark use it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..task.events import event_spans, in_time_order, overlapping_pairs, overlaps, to_interval, to_intervals
from ..task.prompts import format_answer, format_schedule
from ..task.scheduling import GREEDY_RULES, greedy_schedule, optimal_schedule
from ..task.times import minutes_to_time, time_to_minutes

INVENTED_NAME = "Coffee with Sam"

#: Gallery labels, in display order. Reward hacks start with "hack:".
GALLERY_LABELS = (
    "optimal (DP)",
    "greedy",
    "plausible wrong answer",
    "unsorted",
    "overlapping",
    "invented event",
    "empty reasoning",
    "truncated",
    "no tags (plain text)",
    "hack: every event",
    "hack: only priority events",
    "hack: one event repeated",
)


def reasoning_for(problem: Mapping, chosen: Sequence[Sequence[str]]) -> str:
    """A short, plausible ``<think>`` text: values, the clashes, what was kept."""
    prios = set(problem["priority_events"])
    kept = {tuple(e) for e in chosen}
    lines = [f"Priority events count double: {', '.join(sorted(prios)) or 'none'}."]
    ivs = to_intervals(problem["events"], prios)
    for i, j in overlapping_pairs([iv.span for iv in ivs]):
        a, b = ivs[i], ivs[j]
        lines.append(f"{a.name} ({a.value}) overlaps {b.name} ({b.value}).")
    dropped = [e[0] for e in problem["events"] if tuple(e) not in kept]
    lines.append(f"Dropping: {', '.join(dropped) or 'nothing'}. Keeping {len(chosen)} events in time order.")
    return "\n".join(lines)


def _answer(problem: Mapping, events: Sequence[Sequence[str]]) -> str:
    return format_answer(reasoning_for(problem, events), events)


def _greedy(problem: Mapping) -> tuple[str, list[list[str]]]:
    """The first greedy rule that misses the optimum (all of them can hit it on easy rows)."""
    events, prios = problem["events"], problem["priority_events"]
    best = optimal_schedule(events, prios)[0]
    for rule in GREEDY_RULES:
        score, chosen = greedy_schedule(events, prios, rule)
        if score < best:
            return rule, chosen
    return GREEDY_RULES[0], greedy_schedule(events, prios, GREEDY_RULES[0])[1]


def _free_slot(events: Sequence[Sequence[str]], minutes: int = 30) -> tuple[str, str]:
    """A slot clear of every event (for an invented event that overlaps nothing)."""
    busy = sorted(event_spans(events))
    t = 0
    for s, e in busy:
        if s - t >= minutes:
            break
        t = max(t, e)
    return minutes_to_time(t), minutes_to_time(min(t + minutes, 24 * 60))


def make_gallery(problem: Mapping) -> dict[str, str]:
    """label -> completion for one problem (see :data:`GALLERY_LABELS`)."""
    events, prios = [list(e) for e in problem["events"]], list(problem["priority_events"])
    best = optimal_schedule(events, prios)[1]
    rule, greedy = _greedy(problem)
    optimal_text = _answer(problem, best)

    # Plausible wrong: the optimal plan with one end time mis-copied by 15 minutes.
    wrong = [list(e) for e in best]
    last = wrong[-1]
    last[2] = minutes_to_time(min(time_to_minutes(last[2]) + 15, 24 * 60)) if last[2] != "24:00" else "23:45"

    # Overlapping: the optimum plus one event that clashes with it.
    chosen = {tuple(e) for e in best}
    clash = next(
        (
            e
            for e in events
            if tuple(e) not in chosen and any(overlaps(to_interval(e).span, to_interval(b).span) for b in best)
        ),
        None,
    )
    overlapping = in_time_order(best + ([clash] if clash else []))

    start, end = _free_slot(events)
    invented = in_time_order(best + [[INVENTED_NAME, start, end]])

    cut = optimal_text.rfind("</end>")  # in the middle of the last event
    truncated = optimal_text[: cut - 3]

    top = max(events, key=lambda e: to_interval(e, prios).value)
    plain = "I would do " + ", then ".join(f"{n} from {s} to {e}" for n, s, e in best) + "."
    gallery = {
        "optimal (DP)": optimal_text,
        "greedy": _answer(problem, greedy).replace("Keeping", f"Greedy ({rule.replace('_', ' ')}): keeping"),
        "plausible wrong answer": format_answer(reasoning_for(problem, best), wrong),
        "unsorted": format_answer(reasoning_for(problem, best), best[::-1]),
        "overlapping": _answer(problem, overlapping),
        "invented event": _answer(problem, invented),
        "empty reasoning": "<think></think>\n" + format_schedule(best),
        "truncated": truncated,
        "no tags (plain text)": plain,
        "hack: every event": format_answer("Keep everything.", in_time_order(events)),
        "hack: only priority events": format_answer(
            "Only priorities matter.", in_time_order([e for e in events if e[0] in prios])
        ),
        "hack: one event repeated": format_answer(f"{top[0]} is worth the most.", [top] * 4),
    }
    return {label: gallery[label] for label in GALLERY_LABELS}


def back_to_back_completion(n_events: int, reasoning: str = "Checking every event.") -> str:
    """A long answer cut off before ``</schedule>``, events written back to back.

    This is what a length limit produces mid-schedule. With no separator between
    ``</event>`` and the next ``<event>``, the reference's ``(<event>...</event>)+`` group
    can split the events into repetitions in exponentially many ways, and the regex tries
    them all before it gives up: about 4x longer per extra event.
    """
    parts = []
    for i in range(n_events):
        start = (8 * 60 + 15 * i) % (24 * 60 - 15)
        parts.append(
            f"<event><name>Event {i + 1}</name><start>{minutes_to_time(start)}</start>"
            f"<end>{minutes_to_time(start + 15)}</end></event>"
        )
    return f"<think>{reasoning}</think>\n<schedule>" + "".join(parts)
