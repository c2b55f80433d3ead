"""Trainer callbacks: live plots, sample completions, a controlled interruption."""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from transformers import TrainerCallback

from ..display import new_curves_figure, plot_history, show_samples
from ..rewards.parsing import completion_text
from ..rewards.total import weighted_total
from ..task.columns import PROBLEM_COLUMNS
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
        self.trainer = None  # the GRPOTrainer these rewards serve, once attach() is called
        self.problems: list[dict] = []  # the latest batch's problems (events, priority_events, optimal_score)

    def attach(self, trainer) -> None:
        """Keep the trainer the wrapped rewards were given to, right after ``GRPOTrainer(...)`` (the notebook
        and :func:`~utils.train.build_trainer` both call it): the live monitor logs into its metrics."""
        self.trainer = trainer
        self.monitor.attach(trainer)

    def _wrap(self, fn: Callable, first: bool = False) -> Callable:
        @functools.wraps(fn)
        def wrapper(completions, **kwargs):
            if first:  # TRL calls every reward function on the same batch: monitor it once
                self.monitor.observe(completions, **kwargs)
                # each answer's problem, kept with the samples: the answers can be re-read later (free events...)
                cols = [kwargs.get(k) for k in PROBLEM_COLUMNS]
                complete = all(c is not None for c in cols)
                self.problems = [dict(zip(PROBLEM_COLUMNS, p)) for p in zip(*cols)] if complete else []
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
                problems = recorder.problems if len(recorder.problems) == len(rows) else [None] * len(rows)
                with open(recorder.path, "a", encoding="utf-8") as fh:
                    for r, problem in zip(rows, problems):
                        extra = {"problem": problem} if problem else {}
                        fh.write(json.dumps({"step": state.global_step, **r, **extra}, default=str) + "\n")
                if recorder.show:
                    show_samples(rows[: recorder.show], title=f"step {state.global_step}: sample completions")

        return _Samples()


def time_left(step_seconds: Sequence[float], steps_left: int, recent: int = 5) -> float:
    """Seconds left, from the median of the last ``recent`` steps: one slow step (a checkpoint save,
    a long answer, a busy machine) moves it little, unlike the mean since the start.

    >>> time_left([10.0, 10.0, 60.0], 4)
    40.0
    """
    if not step_seconds:
        return math.nan
    return statistics.median(step_seconds[-recent:]) * max(0, steps_left)


class ProgressPrinter(TrainerCallback):
    """One line per optimizer step: that it trains, the step's time and an estimate of the time left
    (:func:`time_left`), so a headless log (make course, a script) shows where a long training cell is."""

    def __init__(self, label: str = "GRPO training"):
        self.label = label
        self.step_seconds: list[float] = []
        self._last = None

    def on_train_begin(self, args, state, control, **kw):
        self._last, self.step_seconds = time.perf_counter(), []

    def on_step_end(self, args, state, control, **kw):
        if self._last is None:
            return
        now = time.perf_counter()
        self.step_seconds.append(now - self._last)
        self._last = now
        left = time_left(self.step_seconds, state.max_steps - state.global_step)
        print(
            f"{self.label}: step {state.global_step}/{state.max_steps} took {self.step_seconds[-1]:.1f} s, "
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


class SkipNonFiniteSteps(TrainerCallback):
    """Skips an optimizer step whose gradients hold NaN or inf, instead of writing NaN into every weight.

    Why: on an H100 (2026-12-06, the seed's reward from a weak warm start), step 148 of 150 had a finite
    loss but a NaN gradient norm; the optimizer wrote NaN into every LoRA weight, every logit after it was
    NaN, and the run ended in a device-side assert. Gradient clipping does not help (the norm itself is NaN).
    Here the step's gradients are dropped (``grad = None``: AdamW leaves those weights and their moments
    as they were), a line says so, and ``skipped_steps`` counts them in ``log_history``."""

    def __init__(self):
        self.skipped: list[int] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        import torch

        grads = [p.grad for p in model.parameters() if p.grad is not None] if model is not None else []
        if not grads:
            return
        if bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):  # one host sync a step
            return
        for p in model.parameters():
            p.grad = None
        self.skipped.append(state.global_step + 1)
        print(
            f"step {state.global_step + 1}: non-finite gradients; this update is skipped, the weights stay as they "
            f"were ({len(self.skipped)} skipped so far)",
            flush=True,
        )

    def on_log(self, args, state, control, logs=None, **kw):
        if state.log_history and "loss" in state.log_history[-1]:
            state.log_history[-1]["skipped_steps"] = len(self.skipped)


class StopAfterStep(TrainerCallback):
    """Stop (with a checkpoint) after ``step`` optimizer steps: simulates a disconnect."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True
        return control


class LivePlot(TrainerCallback):
    """Redraws the curves in the notebook as logs arrive; always saves them to ``path``."""

    def __init__(self, path: Path, reward_names: Sequence[str] = ()):
        self.path = Path(path)
        self.reward_names = list(reward_names)
        self.handle = None
        self.fig = None

    def on_train_begin(self, args, state, control, **kw):
        self.handle = None  # a new train() call (a resume) draws in its own cell's output

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
