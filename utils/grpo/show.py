"""Notebook 04's pictures and printouts: one group's rewards, log-probabilities, ratios and loss weights."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping, Sequence

import torch

from .loss import aggregate

POSITIVE = "#00798c"
NEGATIVE = "#d1495b"
NEUTRAL = "#9e9e9e"


def code(fn: Callable) -> str:
    """The source of ``fn`` without its docstring: the lines that compute something."""
    source = textwrap.dedent(inspect.getsource(fn))
    body = ast.parse(source).body[0]
    first = body.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        lines = source.splitlines()
        del lines[first.lineno - 1 : first.end_lineno]
        source = "\n".join(lines) + "\n"
    return source


def token_weights(completion_mask: torch.Tensor, loss_type: str, **aggregate_kwargs) -> torch.Tensor:
    """How much each token's loss counts in the aggregated loss: d loss / d (per-token loss).

    Computed by differentiating :func:`utils.grpo.aggregate` itself, so it is exactly the
    weighting TRL applies.

    >>> mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    >>> token_weights(mask, "grpo")  # each completion weighs 1/2 in total, spread over its tokens
    tensor([[0.1250, 0.1250, 0.1250, 0.1250],
            [0.5000, 0.0000, 0.0000, 0.0000]])
    >>> token_weights(mask, "dapo")  # every real token weighs the same: 1/5
    tensor([[0.2000, 0.2000, 0.2000, 0.2000],
            [0.2000, 0.0000, 0.0000, 0.0000]])
    """
    x = torch.zeros(completion_mask.shape, dtype=torch.float64, requires_grad=True)
    aggregate(x, completion_mask, loss_type, **aggregate_kwargs).backward()
    return x.grad.float()


def _bar_colors(values: Sequence[float]) -> list[str]:
    return [POSITIVE if v > 1e-9 else NEGATIVE if v < -1e-9 else NEUTRAL for v in values]


def plot_rewards_and_advantages(rewards: Sequence[float], advantages: Mapping[str, Sequence[float]], labels=None):
    """Left: each answer's total reward. Right: its advantage under each ``scale_rewards`` choice."""
    import matplotlib.pyplot as plt

    n = len(rewards)
    labels = list(labels) if labels is not None else [f"answer {i}" for i in range(n)]
    fig, axes = plt.subplots(1, 1 + len(advantages), figsize=(3.6 * (1 + len(advantages)), 3.2))
    axes[0].bar(range(n), rewards, color="#555555")
    axes[0].set_title("total reward")
    for ax, (name, adv) in zip(axes[1:], advantages.items()):
        adv = [float(a) for a in adv]
        ax.bar(range(n), adv, color=_bar_colors(adv))
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"advantage, scale_rewards={name!r}")
    for ax in axes:
        ax.set_xticks(range(n))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def token_logprob_title(labels: Sequence[str], injected: Sequence[int] = ()) -> str:
    """The heatmap's title: says which rows the model did not write (e.g. the DP answer put in the group)."""
    if not injected:
        return "log-probability of each token the model wrote (0 = certain)"
    rows = ", ".join(labels[i] for i in injected)
    return (
        "log-probability the model gives each answer's tokens (0 = certain)\n"
        f"sampled by the model, except {rows}: put in the group, not written by the model"
    )


def plot_token_logprobs(
    logp: torch.Tensor, mask: torch.Tensor, advantages: Sequence[float], labels=None, injected: Sequence[int] = ()
):
    """One row per answer, one cell per token: how likely the model finds each token of the answer.

    ``injected``: rows the model did not sample (the notebook's DP answer); the title names them."""
    import matplotlib.pyplot as plt
    import numpy as np

    values = logp.detach().float().cpu().numpy().copy()
    values[mask.cpu().numpy() == 0] = np.nan
    n, width = values.shape
    labels = list(labels) if labels is not None else [f"answer {i}" for i in range(n)]
    if any(not 0 <= i < n for i in injected):
        raise ValueError(f"injected rows {list(injected)} are not rows of a {n}-answer group")
    fig, ax = plt.subplots(figsize=(11, 0.55 * n + 1.6))
    image = ax.imshow(
        values,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        vmin=max(-10.0, float(np.nanmin(values))),
        vmax=0.0,
    )
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{lab} (A = {float(a):+.2f})" for lab, a in zip(labels, advantages)], fontsize=8)
    for i in injected:
        ax.get_yticklabels()[i].set_fontweight("bold")
    ax.set_xlabel("token position in the answer (white: padding after the answer ended)")
    ax.set_title(token_logprob_title(labels, injected))
    fig.colorbar(image, ax=ax, label="log π(token)", fraction=0.03)
    fig.tight_layout()
    return fig


def plot_clipping(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
):
    """PPO's clipped objective ``min(r A, clip(r) A)`` as a function of the ratio r, for A > 0 and
    A < 0, with the answer tokens placed on it. Where the curve is flat the gradient is 0."""
    import matplotlib.pyplot as plt
    import numpy as np

    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    r = ratio.detach().float().cpu()
    adv = advantages.detach().float().cpu()
    real = mask.bool().cpu()
    top = max(1.6, float(r[real].max()) + 0.1) if real.any() else 1.6
    bottom = min(0.4, float(r[real].min()) - 0.1) if real.any() else 0.4
    grid = np.linspace(bottom, top, 400)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for ax, sign, color in ((axes[0], 1.0, POSITIVE), (axes[1], -1.0, NEGATIVE)):
        curve = np.minimum(grid * sign, np.clip(grid, 1 - epsilon_low, 1 + epsilon_high) * sign)
        ax.plot(grid, curve, color="black", lw=1.5, label=f"min(r·A, clip(r)·A) for A = {sign:+.0f}")
        ax.axvspan(1 - epsilon_low, 1 + epsilon_high, color="#eeeeee", zorder=0, label="clip range")
        rows = [i for i in range(len(adv)) if (adv[i] > 0 if sign > 0 else adv[i] < 0)]
        if rows:
            xs = torch.cat([r[i][real[i]] for i in rows]).numpy()
            ys = np.minimum(xs * sign, np.clip(xs, 1 - epsilon_low, 1 + epsilon_high) * sign)
            ax.scatter(
                xs, ys, s=10, color=color, alpha=0.6, label=f"tokens of answers with A {'>' if sign > 0 else '<'} 0"
            )
        else:
            ax.text(0.5, 0.5, "no answer with this sign", transform=ax.transAxes, ha="center", color=NEUTRAL)
        ax.set_xlabel("ratio r = π_new / π_old")
        ax.set_title(f"advantage {'positive' if sign > 0 else 'negative'} (drawn for |A| = 1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left" if sign > 0 else "lower left")
    axes[0].set_ylabel("objective (higher is better)")
    fig.tight_layout()
    return fig


def plot_loss_weights(completion_mask: torch.Tensor, loss_types: Mapping[str, Mapping], labels=None):
    """Each answer's total weight in the loss (the sum of its tokens' weights), per loss type."""
    import matplotlib.pyplot as plt
    import numpy as np

    n = completion_mask.shape[0]
    lengths = completion_mask.sum(1).tolist()
    labels = list(labels) if labels is not None else [f"answer {i}" for i in range(n)]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    width = 0.8 / len(loss_types)
    for k, (name, kwargs) in enumerate(loss_types.items()):
        per_answer = token_weights(completion_mask, name, **kwargs).sum(1).numpy()
        ax.bar(np.arange(n) + (k - (len(loss_types) - 1) / 2) * width, per_answer, width, label=name)
    ax.set_xticks(range(n))
    ax.set_xticklabels([f"{lab}\n{int(L)} tokens" for lab, L in zip(labels, lengths)], fontsize=8)
    ax.set_ylabel("weight in the loss (sum over its tokens)")
    ax.set_title("How much each answer counts in the loss, by loss_type")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
