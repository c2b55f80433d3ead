"""An interactive reward inspector for notebook 03: pick a problem and an answer (or type
your own) and see the parsed schedule over the problem's events, with every reward.

The logic lives in pure functions (:func:`inspect_completion`, :func:`draw_view`,
:func:`completion_options`) that the tests call directly; :class:`Inspector` only wires
them to ipywidgets. Headless (CI, nbmake) the widgets build but draw nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .explain import Explanation, explain
from .gallery import make_gallery

CUSTOM = "✏️ my own text"
OPTIMAL = "optimal (DP)"


@dataclass
class InspectorView:
    """Everything the inspector shows for one (problem, completion)."""

    problem: Mapping
    completion: str
    explanation: Explanation

    @property
    def schedules(self) -> dict[str, list[list[str]]]:
        """Lanes for :func:`utils.task.plotting.compare_schedules`: the DP optimum and this answer."""
        return {OPTIMAL: optimal_events(self.problem), "this answer": answer_events(self.explanation)}

    @property
    def text(self) -> str:
        return self.explanation.to_text()

    @property
    def total(self) -> float:
        return self.explanation.total


def optimal_events(problem: Mapping) -> list[list[str]]:
    from ..task.scheduling import optimal_schedule

    return optimal_schedule(problem["events"], problem["priority_events"])[1]


def answer_events(explanation: Explanation) -> list[list[str]]:
    """The events the answer lists (as written, invented ones included) that can be drawn."""
    return [ev.as_list() for ev in explanation.check.events]


def completion_options(problem: Mapping) -> dict[str, str]:
    """Dropdown choices: the gallery (DP answer first), then a slot for your own text."""
    return {**make_gallery(problem), CUSTOM: ""}


def inspect_completion(
    problem: Mapping,
    completion: Any,
    reward_funcs: Sequence[Callable] | None = None,
    weights: Sequence[float] | None = None,
) -> InspectorView:
    """Parse and score one completion. Never raises on a bad completion."""
    return InspectorView(
        problem,
        completion if isinstance(completion, str) else str(completion or ""),
        explain(problem, completion, reward_funcs, weights),
    )


def draw_view(view: InspectorView, ax=None):
    """The answer drawn over the problem's events (and the optimum), totals in the title."""
    from ..task.plotting import compare_schedules

    exp = view.explanation
    top = exp.max_total
    title = (
        f"total reward {exp.total:.1f}"
        + (f" / {top:g}" if top is not None else "")
        + "   |   "
        + "  ".join(f"{k.replace('_reward', '')} {v:.1f}" for k, v in exp.rewards.items())
    )
    return compare_schedules(view.problem, view.schedules, ax=ax, title=title)


def problem_label(i: int, problem: Mapping) -> str:
    return f"#{i}: {len(problem['events'])} events, optimum {problem['optimal_score']}"


class Inspector:
    """The widget. ``Inspector(problems).widget`` is what the notebook displays."""

    def __init__(
        self,
        problems: Sequence[Mapping],
        reward_funcs: Sequence[Callable] | None = None,
        weights: Sequence[float] | None = None,
        index: int = 0,
    ):
        import ipywidgets as W

        if not problems:
            raise ValueError("the inspector needs at least one problem")
        self.problems, self.reward_funcs, self.weights = list(problems), reward_funcs, weights
        self.options: dict[str, str] = {}
        self.view: InspectorView | None = None
        self._syncing = False
        self.problem = W.Dropdown(
            options=[(problem_label(i, p), i) for i, p in enumerate(self.problems)],
            value=index,
            description="problem",
            layout=W.Layout(width="420px"),
        )
        self.choice = W.Dropdown(description="answer", layout=W.Layout(width="420px"))
        self.text = W.Textarea(
            layout=W.Layout(width="100%", height="150px"), placeholder="Type or paste a completion here"
        )
        self.plot = W.Output()
        self.report = W.HTML()
        self.problem.observe(lambda _: self._new_problem(), names="value")
        self.choice.observe(lambda _: self._new_choice(), names="value")
        self.text.observe(lambda _: self._edited(), names="value")
        self.widget = W.VBox([W.HBox([self.problem, self.choice]), self.text, self.plot, self.report])
        self._new_problem()

    # -- callbacks: thin, the work is in the pure functions above
    def _new_problem(self) -> None:
        self.options = completion_options(self.problems[self.problem.value])
        self._syncing = True
        self.choice.options = list(self.options)
        self.choice.value = OPTIMAL
        self._syncing = False
        self._new_choice()

    def _new_choice(self) -> None:
        if self._syncing:
            return
        if self.choice.value != CUSTOM:
            self._syncing = True
            self.text.value = self.options[self.choice.value]
            self._syncing = False
        self.render()

    def _edited(self) -> None:
        if self._syncing:
            return
        if self.choice.value != CUSTOM and self.text.value != self.options.get(self.choice.value):
            self._syncing = True
            self.choice.value = CUSTOM
            self._syncing = False
        self.render()

    def render(self) -> InspectorView:
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.view = inspect_completion(
            self.problems[self.problem.value], self.text.value, self.reward_funcs, self.weights
        )
        self.report.value = f"<pre style='font-size:12px'>{html.escape(self.view.text)}</pre>"
        with self.plot:
            self.plot.clear_output(wait=True)
            ax = draw_view(self.view)
            display(ax.figure)
            plt.close(ax.figure)
        return self.view


def build_inspector(
    problems: Sequence[Mapping],
    reward_funcs: Sequence[Callable] | None = None,
    weights: Sequence[float] | None = None,
    index: int = 0,
):
    """The inspector widget for ``problems`` (display it as a cell's last expression)."""
    return Inspector(problems, reward_funcs, weights, index).widget
