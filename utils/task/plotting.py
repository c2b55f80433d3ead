"""Pictures used across notebooks: Gantt charts of problems and schedules.

Every function draws on a Matplotlib ``Axes`` (made if not given) and returns it, so
notebooks can compose figures and headless runs can save them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence

import matplotlib

matplotlib.use(matplotlib.get_backend())  # keep whatever the kernel chose (inline / Agg)
import matplotlib.pyplot as plt  # noqa: E402

from .events import event_key as _key  # noqa: E402
from .events import weight_of  # noqa: E402
from .times import time_to_minutes  # noqa: E402

PRIORITY_COLOR = "#d1495b"
NORMAL_COLOR = "#00798c"
CHOSEN_EDGE = "#222222"
FADED_ALPHA = 0.25


def _safe_minutes(t: str) -> int | None:
    try:
        return time_to_minutes(t)
    except ValueError:
        return None


def _hour_axis(ax, lo: int, hi: int) -> None:
    lo_h, hi_h = max(0, lo // 60), min(24, -(-hi // 60))
    ax.set_xlim(lo_h * 60, hi_h * 60)
    step = 1 if hi_h - lo_h <= 10 else 2
    ticks = list(range(lo_h, hi_h + 1, step))
    ax.set_xticks([h * 60 for h in ticks])
    ax.set_xticklabels([f"{h:02d}:00" for h in ticks])
    ax.grid(axis="x", alpha=0.3)


def gantt(
    events: Sequence[Sequence[str]],
    priority_events: Iterable[str] = (),
    chosen: Iterable[Sequence] | None = None,
    ax=None,
    title: str | None = None,
):
    """One row per event (in start order); priority events in red, others in teal.

    With ``chosen``, chosen events are solid with a dark edge and the rest are faded.
    """
    prios = set(priority_events)
    chosen_keys = None if chosen is None else {_key(c) for c in chosen}
    rows = sorted(events, key=lambda e: (_safe_minutes(e[1]) or 0, e[0]))
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.45 * max(3, len(rows)) + 0.8))
    lo, hi = 24 * 60, 0
    for y, ev in enumerate(rows):
        s, e = _safe_minutes(ev[1]), _safe_minutes(ev[2])
        if s is None or e is None:
            continue
        lo, hi = min(lo, s), max(hi, e)
        picked = chosen_keys is None or _key(ev) in chosen_keys
        ax.barh(
            y,
            e - s,
            left=s,
            height=0.6,
            color=PRIORITY_COLOR if ev[0] in prios else NORMAL_COLOR,
            alpha=1.0 if picked else FADED_ALPHA,
            edgecolor=CHOSEN_EDGE if (chosen_keys is not None and picked) else "none",
            linewidth=1.5,
        )
        ax.text(e + 4, y, f"{ev[0]}{' ★' if ev[0] in prios else ''}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{e[1]}-{e[2]}" for e in rows], fontsize=8)
    ax.invert_yaxis()
    if hi > lo:
        _hour_axis(ax, lo - 30, hi + 150)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def compare_schedules(problem: Mapping, schedules: Mapping[str, Sequence[Sequence]], ax=None, title: str | None = None):
    """Lanes: all of the problem's events (top, faded, stacked where they overlap), then
    one lane per labelled schedule. Events not in the problem are drawn hatched grey.

    A name too long for its bar is replaced by the event's number (events numbered by start
    time), and a key under the chart lists the numbers with the full names: every bar is labelled."""
    prios = set(problem["priority_events"])
    known = {_key(e) for e in problem["events"]}
    numbers = {
        _key(e): i + 1 for i, e in enumerate(sorted(problem["events"], key=lambda e: (_safe_minutes(e[1]) or 0, e[0])))
    }
    lanes = [("problem", list(problem["events"]))] + [(k, list(v)) for k, v in schedules.items()]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.9 + 0.7 * len(lanes) + 0.25 * len(problem["events"])))
    y, yticks, ylabels = 0.0, [], []
    lo, hi = 24 * 60, 0
    spans = [(_safe_minutes(e[1]), _safe_minutes(e[2])) for _, evs in lanes for e in evs]
    spans = [(a, b) for a, b in spans if a is not None and b is not None and b > a]
    # how many minutes one character of a 7-pt label covers, so labels stay inside their bar
    minutes_per_char = ((max(b for _, b in spans) - min(a for a, _ in spans) + 60) / 125) if spans else 10.0
    keyed: dict[int, str] = {}  # events shown by their number: number -> name
    for label, evs in lanes:
        # stack overlapping events of one lane into sub-rows so all stay visible
        rows_end: list[int] = []
        placed = []
        for ev in sorted(evs, key=lambda e: _safe_minutes(e[1]) or 0):
            s, e = _safe_minutes(ev[1]), _safe_minutes(ev[2])
            if s is None or e is None or e <= s:
                continue
            r = next((i for i, end in enumerate(rows_end) if end <= s), len(rows_end))
            rows_end[r : r + 1] = [e] if r < len(rows_end) else rows_end.append(e) or [e]
            placed.append((ev, s, e, r))
        n_rows = max(1, len(rows_end))
        for ev, s, e, r in placed:
            lo, hi = min(lo, s), max(hi, e)
            invented = _key(ev) not in known
            yy = y + r * 0.7
            ax.barh(
                yy,
                e - s,
                left=s,
                height=0.55,
                color="lightgrey" if invented else PRIORITY_COLOR if weight_of(ev[0], prios) > 1 else NORMAL_COLOR,
                hatch="//" if invented else None,
                alpha=0.45 if label == "problem" else 1.0,
                edgecolor=CHOSEN_EDGE if label != "problem" else "none",
            )
            chars = (e - s) / minutes_per_char  # how many label characters fit in the bar
            name = str(ev[0])
            if len(name) <= int(chars) - 1:
                ax.text(s + 2, yy, name, va="center", fontsize=7, color="black" if invented else "white")
            elif invented:  # not in the key: its (shortened) name, in black, after the bar
                ax.text(e + 2, yy, name[:20] + ("…" if len(name) > 20 else ""), va="center", fontsize=7)
            else:
                number = numbers[_key(ev)]
                keyed[number] = name
                inside = chars >= 1.5
                ax.text(
                    (s + e) / 2 if inside else e + 2,
                    yy,
                    str(number),
                    va="center",
                    ha="center" if inside else "left",
                    fontsize=7,
                    color="white" if inside else "black",
                )
        yticks.append(y + (n_rows - 1) * 0.35)
        ylabels.append(label)
        y += n_rows * 0.7 + 0.6
    ax.set_yticks(yticks)
    ax.set_yticklabels(ylabels)
    ax.invert_yaxis()
    if hi > lo:
        _hour_axis(ax, lo - 30, hi + 30)
    if keyed:
        key = "   ".join(f"{n} {keyed[n]}" for n in sorted(keyed))
        ax.annotate(
            "\n".join(textwrap.wrap(key, 150)),
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -22),
            textcoords="offset points",
            va="top",
            fontsize=7.5,
        )
    if title:
        ax.set_title(title, fontsize=10)
    return ax
