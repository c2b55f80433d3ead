"""Trainer callbacks: live plots, sample completions, a controlled interruption."""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from transformers import TrainerCallback

from ..rewards.parsing import completion_text
from ..rewards.total import weighted_total
from .monitor import RewardMonitor


class CompletionRecorder:
    """Wraps reward functions so the latest batch (completions + each reward) is kept.

    The wrapped functions keep their names, so TRL logs ``rewards/<name>/mean`` as usual.
    """

    def __init__(
        self,
        reward_funcs: Sequence[Callable],
        path: Path,
        every: int = 10,
        show: int = 0,
        weights: Sequence[float] | None = None,
    ):
        self.path = Path(path)
        # the total is what GRPO optimises: the weighted sum, as TRL computes it
        self.weights = {f.__name__: float(w) for f, w in zip(reward_funcs, weights or [1.0] * len(reward_funcs))}
        self.every = max(1, every)
        self.show = show  # also display this many samples (a table in a notebook, text headless)
        self.latest: dict = {}
        self.recorded_steps: set[int] = set()
        self.monitor = RewardMonitor()  # the evaluation's view of the same answers, logged beside the reward
        self.wrapped = [self._wrap(f, first=i == 0) for i, f in enumerate(reward_funcs)]

    def attach(self, trainer) -> None:
        """Give the recorder the ``GRPOTrainer`` (after building it): the monitor logs into its metrics."""
        self.trainer = trainer
        self.monitor.attach(trainer)

    def _wrap(self, fn: Callable, first: bool = False) -> Callable:
        @functools.wraps(fn)
        def wrapper(completions, **kwargs):
            if first:  # TRL calls every reward function on the same batch: monitor it once
                self.monitor.observe(completions, **kwargs)
            values = fn(completions=completions, **kwargs)
            self.latest["completions"] = [completion_text(c) for c in completions]
            self.latest[fn.__name__] = [None if v is None else float(v) for v in values]
            return values

        return wrapper

    def rows(self) -> list[dict]:
        comps = self.latest.get("completions", [])
        names = [k for k in self.latest if k != "completions"]
        out = []
        for i, c in enumerate(comps):
            rewards = {n: self.latest[n][i] for n in names if i < len(self.latest[n])}
            total = weighted_total(list(rewards.values()), [self.weights.get(n, 1.0) for n in rewards])
            out.append({"total": total, **rewards, "completion": c})
        return out

    def callback(self) -> TrainerCallback:
        recorder = self

        class _Samples(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kw):
                # The Trainer logs more than once at a step (the run summary comes at the last step, also after a
                # stop): record each step's answers once.
                step = state.global_step
                if step % recorder.every or not recorder.latest or step in recorder.recorded_steps:
                    return
                recorder.recorded_steps.add(step)
                rows = recorder.rows()
                with open(recorder.path, "a", encoding="utf-8") as fh:
                    for r in rows:
                        fh.write(json.dumps({"step": state.global_step, **r}) + "\n")
                if recorder.show:
                    show_samples(rows[: recorder.show], title=f"step {state.global_step}: sample completions")

        return _Samples()


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


class ProgressPrinter(TrainerCallback):
    """One line per optimizer step with the time per step and an estimate of the time left, so a
    headless log (make course, a script) shows where a long training cell is."""

    def __init__(self, label: str = "GRPO"):
        self.label = label
        self._t0 = None
        self._start_step = 0

    def on_train_begin(self, args, state, control, **kw):
        self._t0, self._start_step = time.perf_counter(), state.global_step

    def on_step_end(self, args, state, control, **kw):
        if self._t0 is None:
            return
        done = state.global_step - self._start_step
        per_step = (time.perf_counter() - self._t0) / max(1, done)
        left = per_step * max(0, state.max_steps - state.global_step)
        print(
            f"{self.label} step {state.global_step}/{state.max_steps}: {per_step:.1f} s/step, "
            f"about {left / 60:.1f} min left",
            flush=True,
        )


class StepTimer(TrainerCallback):
    """Wall-clock seconds of every optimizer step (generation, rewards, loss, backward), in ``seconds``."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start = None

    def on_step_begin(self, args, state, control, **kw):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._start is not None:
            self.seconds.append(round(time.perf_counter() - self._start, 3))


class StopAfterStep(TrainerCallback):
    """Stop (with a checkpoint) after ``step`` optimizer steps: simulates a disconnect."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True
        return control


# Metric names TRL 1.x logs for GRPO, one panel each after the reward (utils.train.metrics explains them all).
CURVES = {
    "completions/mean_length": "answer length (tokens)",
    "frac_reward_zero_std": "share of answers in zero-variance groups",
    "completions/clipped_ratio": "share of answers cut at the token budget",
    "loss": "loss (not a progress measure: notebook 04)",
    "entropy": "entropy (nats per token)",
}


def new_curves_figure():
    """The empty figure :func:`plot_history` draws into: the reward and one panel per :data:`CURVES` entry."""
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots(2, 3, figsize=(13, 6))
    return fig


def plot_history(history: Sequence[dict], reward_names: Sequence[str] = (), fig=None):
    """Training curves from a Trainer log history: total and per-reward means, then the :data:`CURVES`."""
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
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


class LivePlot(TrainerCallback):
    """Redraws the curves in the notebook as logs arrive; always saves them to ``path``."""

    def __init__(self, path: Path, reward_names: Sequence[str] = ()):
        self.path = Path(path)
        self.reward_names = list(reward_names)
        self.handle = None
        self.fig = None

    def on_log(self, args, state, control, logs=None, **kw):
        import matplotlib.pyplot as plt

        if not any("reward" in h for h in state.log_history):
            return
        if self.fig is None:
            self.fig = new_curves_figure()
            plt.close(self.fig)  # we display it ourselves, once, and update in place
        plot_history(state.log_history, self.reward_names, self.fig)
        self.fig.savefig(self.path, dpi=100)
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is None:
                return
            if self.handle is None:
                self.handle = display(self.fig, display_id=True)
            else:
                self.handle.update(self.fig)
        except ImportError:
            pass
