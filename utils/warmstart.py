"""Supervised warm-start: teach a tiny model the answer format before GRPO.

GRPO learns from differences between the rewards of completions to the same prompt.
The embedded 135M model never writes the format, so every reward is 0, every group has
zero variance and the gradient is exactly zero (notebook 04 shows it). A few minutes of
supervised fine-tuning on DP-optimal answers gives GRPO something to improve.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .prompts import build_messages, format_answer
from .scheduling import optimal_schedule, to_interval, overlaps


def dp_reasoning(row: Mapping) -> str:
    """A short, true explanation of the optimal choice: conflicts, what is dropped, total."""
    prios = list(row["priority_events"])
    ivs = [to_interval(e, prios) for e in row["events"]]
    score, chosen = optimal_schedule(row["events"], prios)
    kept = {tuple(e) for e in chosen}
    clashes = [f"{a.name} vs {b.name}" for i, a in enumerate(ivs) for b in ivs[i + 1:] if overlaps(a, b)]
    dropped = [e[0] for e in row["events"] if tuple(e) not in kept]
    parts = [f"Priority (x2): {', '.join(prios)}."]
    parts.append(f"Conflicts: {'; '.join(clashes)}." if clashes else "No conflicts.")
    parts.append(f"Drop: {', '.join(dropped)}." if dropped else "Keep everything.")
    parts.append(f"Total weighted minutes: {score}.")
    return " ".join(parts)


def dp_answer(row: Mapping) -> str:
    """The full target answer: reasoning, then the optimal schedule."""
    _, chosen = optimal_schedule(row["events"], row["priority_events"])
    return format_answer(dp_reasoning(row), chosen)


def sft_records(rows: Sequence[Mapping]) -> list[dict]:
    """Prompt/completion pairs in TRL's conversational form (loss on the answer only)."""
    return [{"prompt": build_messages(r), "completion": [{"role": "assistant", "content": dp_answer(r)}]} for r in rows]
