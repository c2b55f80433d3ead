"""Look at what GRPO will see before training: groups of sampled answers and their rewards.

GRPO's gradient comes only from differences *within* a group (see
:func:`utils.grpo.group_advantages`). :func:`group_signal` samples a group per
problem from a model, scores every answer with the reward set and reports how many
groups have zero reward variance, i.e. teach nothing. Notebook 05 runs it on the base
model (all zero: no signal) and after the warm-start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..rewards.common import reward_name
from ..rewards.total import check_reward_set, weighted_total
from ..task.columns import PROBLEM_COLUMNS


def sample_groups(
    model,
    tokenizer,
    rows: Sequence[dict],
    group_size: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    batch_size: int = 32,
) -> list[list[str]]:
    """``group_size`` sampled completions per row (sampling, like GRPO's rollouts)."""
    from ..llm.generation import generate_completions

    repeated = [r for r in rows for _ in range(group_size)]
    texts = generate_completions(
        model,
        tokenizer,
        repeated,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        do_sample=True,
        temperature=temperature,
        desc="sampling groups",
    )
    return [texts[i : i + group_size] for i in range(0, len(texts), group_size)]


def group_rewards(
    rows: Sequence[dict],
    groups: Sequence[Sequence[str]],
    funcs: Sequence[Callable],
    weights: Sequence[float] | None = None,
):
    """One row per completion: problem, each reward, weighted total and GRPO's advantage."""
    import pandas as pd

    from ..grpo.advantages import group_advantages  # imports torch: only when needed

    weights = check_reward_set(funcs, weights)  # names too: the rewards are added up by name below
    records = []
    for p, (row, group) in enumerate(zip(rows, groups)):
        columns = {k: [row[k]] * len(group) for k in PROBLEM_COLUMNS}
        values = [f(completions=list(group), prompts=[row["prompt"]] * len(group), **columns) for f in funcs]
        per_fn = {reward_name(f): v for f, v in zip(funcs, values)}  # the table's columns (names differ: checked)
        totals = [weighted_total([v[i] for v in values], weights) for i in range(len(group))]
        advantages = group_advantages(totals, len(group)).tolist()
        for i, text in enumerate(group):
            records.append(
                {
                    "problem": p,
                    "sample": i,
                    **{n: v[i] for n, v in per_fn.items()},
                    "total": totals[i],
                    "advantage": advantages[i],
                    "completion": text,
                }
            )
    return pd.DataFrame(records)


def zero_variance_share(frame) -> float:
    """Share of groups whose totals are all equal (TRL logs it as ``frac_reward_zero_std``)."""
    spread = frame.groupby("problem")["total"].agg(lambda s: s.max() - s.min())
    return float((spread < 1e-9).mean()) if len(spread) else float("nan")


def group_signal(
    model,
    tokenizer,
    rows: Sequence[dict],
    funcs: Sequence[Callable],
    weights=None,
    group_size: int = 4,
    max_new_tokens: int = 256,
):
    """(table, zero-variance share) for sampled groups on ``rows``."""
    frame = group_rewards(rows, sample_groups(model, tokenizer, rows, group_size, max_new_tokens), funcs, weights)
    return frame, zero_variance_share(frame)


def signal_sentence(frame, zero_share: float) -> str:
    """What a probe (:func:`group_signal`) means for GRPO, in one sentence built from its own numbers.

    >>> import pandas as pd
    >>> signal_sentence(pd.DataFrame({"problem": [0, 0], "total": [0.0, 0.0]}), 1.0)
    'mean total reward 0.0; every group scored its answers alike (zero-variance groups 100%): no gradient yet'
    """
    numbers = f"mean total reward {frame['total'].mean():.1f}"
    if zero_share >= 1.0:
        return f"{numbers}; every group scored its answers alike (zero-variance groups 100%): no gradient yet"
    return (
        f"{numbers}; answers differ within {1 - zero_share:.0%} of the groups (zero-variance groups "
        f"{zero_share:.0%}): those groups give GRPO a gradient"
    )
