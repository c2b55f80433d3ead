"""Supervised warm-start: teach a tiny model the answer format before GRPO.

GRPO learns from differences between the rewards of completions to the same prompt.
The embedded 135M model never writes the format, so every reward is 0, every group has
zero variance and the gradient is exactly zero (notebook 05 shows it). A few minutes of
supervised fine-tuning on DP-optimal answers gives GRPO something to improve.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..llm.models import bf16_supported, load_tokenizer
from ..paths import claim_folder
from ..profiles import Profile
from ..task.events import overlapping_pairs, to_intervals
from ..task.prompts import build_messages, format_answer
from ..task.scheduling import optimal_schedule
from .config import check_supported

#: What a warm start writes into its folder.
SFT_OWN = ("final", "checkpoints", "sft_log_history.json")


def dp_reasoning(row: Mapping) -> str:
    """A short, true explanation of the optimal choice: conflicts, what is dropped, total."""
    prios = list(row["priority_events"])
    ivs = to_intervals(row["events"], prios)
    score, chosen = optimal_schedule(row["events"], prios)
    kept = {tuple(e) for e in chosen}
    clashes = [f"{ivs[i].name} vs {ivs[j].name}" for i, j in overlapping_pairs([iv.span for iv in ivs])]
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


def run_sft(base: str, rows: Sequence[dict], profile: Profile, out_dir: Path, force: bool = False) -> Path:
    """Full fine-tune of the (small) base model on DP-optimal answers; returns the checkpoint.

    Skipped when ``out_dir`` already holds a finished warm-start (resume-friendly)."""
    out_dir = claim_folder(out_dir, "warm start", own=SFT_OWN)  # never a folder holding someone else's files
    done = out_dir / "final"
    if (done / "config.json").exists() and not force:
        print(f"Warm-start already done: {done}")
        return done
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    on_gpu = torch.cuda.is_available()
    tokenizer = load_tokenizer(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    kwargs = dict(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=profile.warm_start.epochs,
        per_device_train_batch_size=profile.warm_start.batch_size,
        learning_rate=profile.warm_start.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        bf16=on_gpu and bf16_supported(),
        max_length=1024,
        seed=3407,
        completion_only_loss=True,
        eos_token=tokenizer.eos_token,
    )  # pad: set on the tokenizer
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**check_supported(SFTConfig, kwargs)),
        train_dataset=Dataset.from_list(sft_records(rows)),
        processing_class=tokenizer,
    )
    t0 = time.perf_counter()
    trainer.train()
    print(f"Warm-start: {trainer.state.global_step} steps in {time.perf_counter() - t0:.0f} s")
    trainer.save_model(str(done))
    tokenizer.save_pretrained(str(done))
    (out_dir / "sft_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    return done
