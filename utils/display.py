"""What the notebooks show: saved figures, sample-answer tables and training curves.

One module for every notebook's display helpers: :func:`save_figure` keeps each picture under
``outputs/figures`` (headless runs too), :func:`show_samples` shows whole answers with their
rewards (notebooks 05 and 06), :func:`plot_history` draws a run's curves (live in notebook 05,
from ``run_info.json`` in notebook 06). Matplotlib, pandas and IPython load inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path


def save_figure(fig, name: str) -> Path:
    """Save into the outputs' figures folder (headless runs keep every picture)."""
    from .paths import figures_dir

    path = figures_dir() / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def samples_frame(rows: Sequence[dict], width: int | None = None):
    """Sample completions as a table: rewards first, then the whole text (or its first ``width`` characters)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if "completion" in frame:
        texts = frame.pop("completion").map(str)
        if width is not None:
            texts = [c if len(c) <= width else c[: width - 1] + "…" for c in texts]
        frame["completion"] = list(texts)  # last: the numbers stay readable next to long answers
    return frame.round(1)


def samples_text(rows: Sequence[dict]) -> str:
    """The samples as plain text: one header line of numbers per answer, then the whole answer."""
    blocks = []
    for i, row in enumerate(rows):
        numbers = "  ".join(
            f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "completion"
        )
        blocks.append(f"--- sample {i}: {numbers}\n{row.get('completion', '')}")
    return "\n".join(blocks)


def show_samples(rows: Sequence[dict], title: str = "") -> None:
    """Whole answers with their rewards: a table in a notebook (long text wraps), plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None and getattr(get_ipython(), "kernel", None) is not None:
            if title:
                print(title)
            display(_wrapping_table(samples_frame(rows)))
            return
    except ImportError:
        pass
    print(title, samples_text(rows), sep="\n")


def _wrapping_table(frame):
    """Pandas cuts cells at ``display.max_colwidth`` (50 characters by default): show the whole text instead,
    left-aligned, its line breaks kept."""
    import pandas as pd

    try:
        styled = frame.style.format(precision=1, escape="html")  # answers hold <tags>: show them
        if "completion" in frame:
            styled = styled.set_properties(
                subset=["completion"], **{"white-space": "pre-wrap", "text-align": "left", "min-width": "40em"}
            )
        styled._repr_html_()  # needs jinja2: fail here, not in display()
        return styled
    except Exception:  # noqa: BLE001 - no jinja2: a plain table without the column limit
        with pd.option_context("display.max_colwidth", None):
            from IPython.display import HTML

            return HTML(frame.to_html())


# Metric names TRL 1.x logs for GRPO, one panel each after the reward (utils.train.metrics explains them all).
CURVES = {
    "completions/mean_length": "answer length (tokens)",
    "frac_reward_zero_std": "share of answers in zero-variance groups",
    "completions/clipped_ratio": "share of answers cut at the token budget",
    "loss": "loss (not a progress measure: notebook 04)",
    "entropy": "entropy (nats per token)",
}


def new_curves_figure():
    """The empty figure :func:`plot_history` draws into: the reward, one panel per :data:`CURVES` entry, and
    three panels of the live monitor (:mod:`utils.train.monitor`)."""
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots(3, 3, figsize=(13, 9))
    return fig


def _plot_monitor(axes, steps: list, logs: Sequence[dict]) -> None:
    """Bottom row: what the evaluation says of the sampled answers, next to what the reward says."""
    get = lambda key: [h.get(key, math.nan) for h in logs]  # noqa: E731
    if not any("monitor/valid" in h for h in logs):
        for ax in axes:
            ax.text(0.5, 0.5, "no monitor columns in this log", ha="center", va="center", transform=ax.transAxes)
        return
    ax = axes[0]
    for key, label in (("monitor/valid", "valid"), ("monitor/clash", "with clashes"), ("monitor/invented", "invented")):
        ax.plot(steps, get(key), "-o", ms=3, label=label)
    if any("monitor/trace_real_clashes" in h for h in logs):  # logs from before 2026-12-06 (night) lack it
        ax.plot(steps, get("monitor/trace_real_clashes"), "--", color="tab:purple", label="trace: real clashes named")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("sampled answers: share (evaluation)", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]  # Goodhart's law, live: the reward against the evaluation of the same answers
    ax.plot(steps, [h["reward"] for h in logs], "k-o", ms=3, label="total reward")
    ax.plot(steps, get("monitor/score"), "-o", ms=3, color="tab:green", label="evaluation score (x100)")
    ax.set_title("reward vs evaluation, same answers", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(steps, get("monitor/events"), "-o", ms=3, label="listed")
    ax.plot(steps, get("monitor/optimal_events"), "--", color="grey", label="in the optimum")
    if any("monitor/free_events" in h for h in logs):  # logs from before 2026-12-06 (evening) lack it
        ax.plot(steps, get("monitor/free_events"), "-o", ms=3, color="tab:red", label="left out for free")
    ax.set_title("events per answer", fontsize=10)
    ax.legend(fontsize=7)


def plot_history(history: Sequence[dict], reward_names: Sequence[str] = (), fig=None):
    """Training curves from a Trainer log history: total and per-reward means, the :data:`CURVES`, and the
    live monitor's view of the same sampled answers (valid / clashing / invented shares, the evaluation
    score next to the reward, events per answer against the optimum's and those a valid answer left out
    although they clash with nothing)."""
    logs = [h for h in history if "reward" in h]
    if fig is None:
        fig = new_curves_figure()
    axes = fig.axes
    for ax in axes:
        ax.clear()
    steps = [h.get("step", i + 1) for i, h in enumerate(logs)]
    ax = axes[0]
    ax.plot(steps, [h["reward"] for h in logs], "k-o", ms=3, label="total")
    names = reward_names or sorted(
        {k.split("/")[1] for h in logs for k in h if k.startswith("rewards/") and k.endswith("/mean")}
    )
    for n in names:
        key = f"rewards/{n}/mean"
        ax.plot(steps, [h.get(key, math.nan) for h in logs], "-", label=n)
    ax.set_title("reward (mean per step)", fontsize=10)
    ax.legend(fontsize=7)
    for ax, (key, title) in zip(axes[1:], CURVES.items()):
        ax.plot(steps, [h.get(key, math.nan) for h in logs], "-o", ms=3)
        ax.set_title(title, fontsize=10)
    if len(axes) >= 9:
        _plot_monitor(axes[6:9], steps, logs)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_reward_vs_evaluation(histories: dict, window: int = 10):
    """Goodhart's law, run against run: for each labelled log history, the total reward GRPO optimised (left)
    and the live monitor's share of valid sampled answers (right), as moving means over ``window`` logged
    steps. A run whose reward climbs while its valid share falls is hacking its reward."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))

    def smooth(values: list) -> list:
        windows = (values[max(0, i - window + 1) : i + 1] for i in range(len(values)))
        return [sum(w) / len(w) for w in windows]

    for label, history in histories.items():
        logs = [h for h in history if "reward" in h]
        steps = [h.get("step", i + 1) for i, h in enumerate(logs)]
        (line,) = left.plot(steps, smooth([h["reward"] for h in logs]), label=label)
        if any("monitor/valid" in h for h in logs):
            monitored = [(s, h["monitor/valid"]) for s, h in zip(steps, logs) if "monitor/valid" in h]
            right.plot(
                [s for s, _ in monitored], smooth([v for _, v in monitored]), color=line.get_color(), label=label
            )
    left.set_title(f"total reward (moving mean of {window} steps)", fontsize=10)
    right.set_title("sampled answers the evaluation counts valid (monitor)", fontsize=10)
    right.set_ylim(-0.02, 1.02)
    for ax in (left, right):
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
