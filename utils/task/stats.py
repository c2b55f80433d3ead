"""Dataset statistics: one row of numbers per problem, and the plots notebook 01 shows.

Pure functions over dataset rows (``events``, ``priority_events``, ``optimal_score``):
nothing here reads files or changes its input. Plots return Matplotlib figures so a
notebook can show them and :func:`utils.display.save_figure` can keep them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .events import count_overlapping_pairs, to_interval
from .scheduling import GREEDY_RULES, greedy_schedule, optimal_schedule

Row = Mapping
Datasets = Mapping[str, Sequence[Row]]


def problem_stats(row: Row, rules: Sequence[str] = GREEDY_RULES) -> dict:
    """The numbers describing one problem.

    ``optimal_share`` is the share of events the optimum keeps; ``greedy_<rule>`` is that
    greedy rule's score divided by the optimal score (1.0 = greedy found an optimum).
    """
    events, prios = row["events"], row["priority_events"]
    ivs = [to_interval(ev, prios) for ev in events]
    best, chosen = optimal_schedule(events, prios)
    stats = {
        "n_events": len(events),
        "n_priority": len(prios),
        "priority_share": len(prios) / len(events) if events else 0.0,
        "overlapping_pairs": count_overlapping_pairs(events),
        "total_minutes": sum(iv.end - iv.start for iv in ivs),
        "optimal_score": best,
        "n_optimal": len(chosen),
        "optimal_share": len(chosen) / len(events) if events else 0.0,
    }
    for rule in rules:
        score, _ = greedy_schedule(events, prios, rule)
        stats[f"greedy_{rule}"] = score / best if best else 1.0
    return stats


def problem_table(rows: Sequence[Row], rules: Sequence[str] = GREEDY_RULES) -> pd.DataFrame:
    """:func:`problem_stats` for every row, one line per problem (index = row number)."""
    return pd.DataFrame([problem_stats(r, rules) for r in rows])


def event_table(rows: Sequence[Row]) -> pd.DataFrame:
    """One line per event of every problem: problem, name, start/end minutes, duration, priority."""
    records = []
    for i, row in enumerate(rows):
        prios = set(row["priority_events"])
        for ev in row["events"]:
            iv = to_interval(ev)
            records.append(
                {
                    "problem": i,
                    "name": iv.name,
                    "start": iv.start,
                    "end": iv.end,
                    "duration": iv.end - iv.start,
                    "priority": iv.name in prios,
                }
            )
    return pd.DataFrame(records, columns=["problem", "name", "start", "end", "duration", "priority"])


def greedy_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per greedy rule: mean and worst score ratio, and how often it is optimal."""
    cols = [c for c in table.columns if c.startswith("greedy_")]
    return (
        pd.DataFrame(
            {
                "mean_ratio": table[cols].mean(),
                "worst_ratio": table[cols].min(),
                "optimal_share": (table[cols] >= 1.0 - 1e-12).mean(),
            }
        )
        .rename(index=lambda c: c.removeprefix("greedy_"))
        .sort_values("mean_ratio", ascending=False)
    )


def _as_datasets(data: Sequence[Row] | Datasets) -> dict[str, Sequence[Row]]:
    return dict(data) if isinstance(data, Mapping) else {"dataset": data}


def _int_bins(values: pd.Series) -> list[float]:
    lo, hi = int(values.min()), int(values.max())
    return [x - 0.5 for x in range(lo, hi + 2)]


def _hist(ax, series: Mapping[str, pd.Series], bins, title: str, xlabel: str) -> None:
    many = len(series) > 1
    for label, values in series.items():
        # several datasets: bar heights are shares, so different sizes compare on one axis
        weights = [1 / len(values)] * len(values) if many and len(values) else None
        ax.hist(values, bins=bins, weights=weights, alpha=0.55 if many else 0.9, label=label, edgecolor="white")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("share of problems" if len(series) > 1 else "problems")
    if len(series) > 1:
        ax.legend(fontsize=8)


def plot_overview(data: Sequence[Row] | Datasets, figsize=(11, 7)):
    """Four histograms: events per problem, event durations, overlapping pairs, priorities.

    ``data`` is a list of rows, or ``{label: rows}`` to overlay several datasets.
    """
    datasets = _as_datasets(data)
    tables = {k: problem_table(v, rules=()) for k, v in datasets.items()}
    events = {k: event_table(v) for k, v in datasets.items()}
    fig, axes = plt.subplots(2, 2, figsize=figsize)
    n = {k: t["n_events"] for k, t in tables.items()}
    _hist(axes[0, 0], n, _int_bins(pd.concat(n.values())), "Events per problem", "events")
    durs = {k: e["duration"] for k, e in events.items()}
    all_durs = pd.concat(durs.values())
    step = 15 if all_durs.max() > 60 else 5
    centers = list(range(step, int(all_durs.max()) + step, step))
    _hist(axes[0, 1], durs, [c - step / 2 for c in centers] + [centers[-1] + step / 2], "Event durations", "minutes")
    axes[0, 1].set_xticks(centers[:: 2 if len(centers) > 12 else 1])
    axes[0, 1].set_ylabel("share of events" if len(durs) > 1 else "events")
    ov = {k: t["overlapping_pairs"] for k, t in tables.items()}
    _hist(axes[1, 0], ov, _int_bins(pd.concat(ov.values())), "Overlapping pairs per problem", "pairs")
    pr = {k: t["n_priority"] for k, t in tables.items()}
    _hist(axes[1, 1], pr, _int_bins(pd.concat(pr.values())), "Priority events per problem", "priority events")
    fig.suptitle(", ".join(f"{k}: {len(v)} problems" for k, v in datasets.items()), fontsize=11)
    fig.tight_layout()
    return fig


def plot_greedy_ratios(table: pd.DataFrame, figsize=(9, 4)):
    """Box plot of each greedy rule's score / optimal score over the problems in ``table``."""
    cols = [c for c in table.columns if c.startswith("greedy_")]
    order = sorted(cols, key=lambda c: -table[c].mean())
    fig, ax = plt.subplots(figsize=figsize)
    parts = ax.boxplot([table[c] for c in order], vert=False, showmeans=True)
    ax.set_yticks(range(1, len(order) + 1), [c.removeprefix("greedy_") for c in order])
    ax.axvline(1.0, color="black", lw=1, ls="--")
    # what the marks mean: the first box's own artists stand for all of them
    ax.legend(
        [parts["medians"][0], parts["means"][0], parts["boxes"][0], parts["fliers"][0]],
        ["median", "mean", "box: the middle half of the problems", "problems beyond the whiskers (1.5 box lengths)"],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    ax.set_xlabel("greedy score / optimal score (1.0 = optimal)")
    ax.set_title(f"Greedy heuristics vs the DP optimum on {len(table)} problems", fontsize=10)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def plot_timings(timings: pd.DataFrame, logx: bool = True, figsize=(8, 4.5)):
    """Log-scale runtime against the number of events, one line per method.

    ``timings`` has columns ``method``, ``n_events`` and ``seconds``. On log-log axes a
    polynomial cost is a straight line and an exponential one bends sharply upwards.
    """
    fig, ax = plt.subplots(figsize=figsize)
    for method, grp in timings.groupby("method", sort=False):
        grp = grp.sort_values("n_events")
        ax.plot(grp["n_events"], grp["seconds"], marker="o", label=method)
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel("events in the problem" + (" (log scale)" if logx else ""))
    ax.set_ylabel("seconds per problem (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Cost of finding the optimal schedule", fontsize=10)
    fig.tight_layout()
    return fig


def random_problem(
    n: int,
    seed: int = 0,
    day: tuple[str, str] = ("07:00", "23:00"),
    durations: Sequence[int] = (15, 30, 45, 60, 75, 90, 105, 120),
) -> tuple[list, list]:
    """``n`` events with names ``E0..E{n-1}`` placed uniformly in the day; about 30% priorities.

    For timing solvers at sizes the themed generator cannot reach (it has 16 names a theme).
    """
    import random

    from .times import minutes_to_time, time_to_minutes

    rng = random.Random(seed)
    lo, hi = time_to_minutes(day[0]), time_to_minutes(day[1])
    events = []
    for i in range(n):
        d = rng.choice(durations)
        s = rng.randrange(lo, hi - d + 1, 5) if hi - d > lo else lo
        events.append([f"E{i}", minutes_to_time(s), minutes_to_time(s + d)])
    events.sort(key=lambda e: (e[1], e[2], e[0]))
    priority = [e[0] for e in events if rng.random() < 0.3]
    return events, priority


def time_call(fn, *args, min_seconds: float = 0.02, max_repeats: int = 1000) -> float:
    """Seconds per call of ``fn(*args)``: repeats until ``min_seconds`` have passed, keeps the mean."""
    import time

    total, calls = 0.0, 0
    while calls == 0 or (total < min_seconds and calls < max_repeats):
        t0 = time.perf_counter()
        fn(*args)
        total += time.perf_counter() - t0
        calls += 1
    return total / calls


def time_solvers(solvers: Mapping[str, tuple], seed: int = 0, min_seconds: float = 0.02) -> pd.DataFrame:
    """Time each solver over its sizes: ``{label: (fn(events, priority), [n, ...])}``.

    Every solver sees the same random problem for a given ``n``. Returns columns
    ``method``, ``n_events``, ``seconds``.
    """
    records = []
    for label, (fn, sizes) in solvers.items():
        for n in sizes:
            events, priority = random_problem(n, seed=seed + n)
            records.append(
                {"method": label, "n_events": n, "seconds": time_call(fn, events, priority, min_seconds=min_seconds)}
            )
    return pd.DataFrame(records)
