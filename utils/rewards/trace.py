"""What a ``<think>`` trace says, read in linear time: its clauses and the clashes it names.

The warm start teaches a trace in one of these forms (``utils.train.warmstart.dp_reasoning``)::

    Priority (x2): Gym. Conflicts: Gym vs Call. Drop: Call. Total weighted minutes: 150.       (short)
    Values (...): ... \\n Clashes: Gym ends 10:30 after Call starts 10:00. \\n Keep: Gym, Nap. Total: 150.  (full)

(``timeline`` is ``full`` with times next to the values; ``scan`` compares each event with the latest end before
it, a line per event, then lists the pairs the short way: ``Clashes: Gym vs Call.``)

A *clause* is the text after a label up to the first full stop that ends a line (or the text), or that the next
label of the trace follows (``. Total:``, ``. Drop:``): event names may hold a full stop and a space of their own
("Film no. 7"). It is found with ``str.find`` moving forward, never a backtracking regular expression:
``Drop:\\s*(.*?)\\.(?:\\s|$)`` took 4 s on 64 KB of repeated ``Drop: x`` (quadratic), and a reward reads every
sampled answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..task.events import overlapping_pairs, to_intervals

#: What may follow a clause's closing ". " on the same line: the next part of a warm-start trace.
NEXT_LABELS = ("Drop:", "Keep", "Total", "Clashes:", "Conflicts:", "No clashes", "No conflicts", "Priority", "Values")


def clause(trace: str, *labels: str) -> str | None:
    """The text after the first of ``labels`` in ``trace``, up to the first ``.`` that ends a line or the text, or
    that the trace's next label follows (:data:`NEXT_LABELS`); leading whitespace stripped. None when no label
    occurs or nothing ends the clause.

    >>> clause("Conflicts: Gym vs Call. Drop: Call. Total weighted minutes: 150.", "Drop:")
    'Call'
    >>> clause("Clashes: Gym ends 10:30 after Call starts 10:00.\\nKeep: Gym.", "Conflicts:", "Clashes:")
    'Gym ends 10:30 after Call starts 10:00'
    >>> clause("Keep: Film no. 7, Gym. Total: 150.", "Keep:")  # a name's own ". " does not end it
    'Film no. 7, Gym'
    >>> clause("Drop: Call", "Drop:") is None  # nothing ends it
    True
    """
    found = [(i, label) for i, label in ((trace.find(label), label) for label in labels) if i >= 0]
    if not found:
        return None
    i, label = min(found)
    start = i + len(label)
    while start < len(trace) and trace[start].isspace():
        start += 1
    k = start
    while (k := trace.find(".", k)) >= 0:
        rest = trace[k + 1 : k + 16]  # enough for the longest label: constant work per full stop
        after = rest.lstrip(" \t")  # spaces, then: a line break, the end, or (after a space) the next label
        if after[:1] in ("\r", "\n") or (not after and k + 1 + len(rest) == len(trace)):
            return trace[start:k]
        if after != rest and after.startswith(NEXT_LABELS):
            return trace[start:k]
        k += 1
    return None


def named_clashes(trace: str) -> list[tuple[str, str]]:
    """The pairs of event names a trace says clash, in either of the warm start's forms.

    >>> named_clashes("Priority (x2): Gym. Conflicts: Gym vs Call; Lunch vs Nap. Drop: Call.")
    [('Gym', 'Call'), ('Lunch', 'Nap')]
    >>> named_clashes("Clashes: Gym ends 10:30 after Call starts 10:00.\\nKeep: Gym. Total: 90.")
    [('Gym', 'Call')]
    >>> named_clashes("No clashes.\\nKeep: Gym. Total: 90.")
    []
    """
    listed = clause(trace, "Conflicts:", "Clashes:")
    pairs = []
    for part in (p.strip() for p in listed.split(";")) if listed else ():
        ends = part.find(" ends ")
        after = part.find(" after ", ends + 1) if ends > 0 else -1
        starts = part.find(" starts ", after + 1) if after > 0 else -1
        if starts > 0:  # "A ends 10:30 after B starts 10:00"
            a, b = part[:ends], part[after + len(" after ") : starts]
        else:  # "A vs B"
            a, _, b = part.partition(" vs ")
        if a.strip() and b.strip():
            pairs.append((a.strip(), b.strip()))
    return pairs


def compare_clashes(events: Sequence[Sequence], pairs: Sequence[tuple[str, str]]) -> tuple[int, int, int]:
    """``(false, found, real)``: the named pairs that are not a clash of the problem (events that do not overlap,
    touching ones included, one event with itself, or a name the problem does not have); the problem's clashing
    pairs that are named; and the problem's clashing pairs. ``events``: the problem's (a row's ``"events"``).

    >>> events = [["Gym", "09:00", "10:30"], ["Call", "10:00", "11:00"], ["Nap", "11:00", "12:00"]]
    >>> compare_clashes(events, [("Call", "Gym"), ("Call", "Nap")])  # Call ends when Nap starts: no clash
    (1, 1, 1)
    """
    ivs = to_intervals(events)
    real = {frozenset((ivs[i].name, ivs[j].name)) for i, j in overlapping_pairs([iv.span for iv in ivs])}
    named = [frozenset(p) for p in pairs]
    return sum(p not in real for p in named), len(real & set(named)), len(real)
