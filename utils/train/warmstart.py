"""Supervised warm-start: teach a tiny model the answer format before GRPO.

GRPO learns from differences between the rewards of completions to the same prompt.
The embedded 135M model never writes the format, so every reward is 0, every group has
zero variance and the gradient is exactly zero (notebook 05 shows it). A few minutes of
supervised fine-tuning on DP-optimal answers gives GRPO something to improve.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..env import headless
from ..llm.models import bf16_supported, load_tokenizer
from ..paths import claim_folder
from ..profiles import TRACES, Profile
from ..task.events import overlapping_pairs, to_intervals
from ..task.prompts import build_messages, format_answer
from ..task.scheduling import optimal_schedule
from .config import check_supported
from .runs import read_settings, settings_changes

#: The settings a warm start's model was trained with: another warm start is trained for other ones.
SFT_SETTINGS = "sft_settings.json"
#: What a warm start writes into its folder.
SFT_OWN = ("final", "checkpoints", "sft_log_history.json", SFT_SETTINGS)


def dp_reasoning(row: Mapping, trace: str = "short") -> str:
    """A true explanation of the optimal choice, written before the answer.

    ``short``: the priorities, the clashing pairs, what is dropped, the total.
    ``full``: every event's value in time order ("Gym 60", "Call 30x2=60" for a priority), every
    clash with the two times compared ("A ends 10:30 after B starts 10:00"), then what is kept and
    the total. About twice as long, but the model writes out each comparison it must make.
    ``timeline``: as ``full``, with each event's times next to its value ("Gym 09:00-10:00 60"). The
    committed full-trace warm start named only 32% of the real clashes, and 69% of those it named were false:
    the times it compares are far back in the prompt. Here they are the ones it has just copied, a line up.
    The cost is length: 373 tokens on average against 300 for ``full`` (p99 510 against 414, on 2,000 training
    problems), close to the gpu profile's answer budget of then, 512 tokens.
    ``scan``: the events in time order, each with its times, its value and one comparison: its start against the
    latest end before it (usually the end just written a line up). A start before it is a clash, with the earlier
    events that end after that start; then the clashes as pairs, what is kept and the total. Finding the clashes
    becomes one comparison of two nearby times a line instead of a search over pairs. Longer still: 408 tokens on
    average (p99 567, max 594; 17% of 2,000 training problems over 512), so a GRPO row on it needs a larger
    ``grpo.max_completion_length``.
    ``scan_worked``: as ``scan``, each duration worked out in steps a small model can take ("13:35-14:20
    25+20=45": the minutes to the next full hour, 60 for each whole hour, the minutes past the last one): the
    committed warm starts' traces stated 14-15% of durations right and wrote "15" for about two thirds of them
    (``utils.evaluate.answers.stated_durations``).
    """
    if trace in ("full", "timeline"):
        return _full_reasoning(row, with_times=trace == "timeline")
    if trace in ("scan", "scan_worked"):
        return _scan_reasoning(row, worked=trace == "scan_worked")
    if trace != "short":
        raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
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


def _full_reasoning(row: Mapping, with_times: bool = False) -> str:
    prios = set(row["priority_events"])
    ivs = sorted(to_intervals(row["events"], prios), key=lambda iv: (iv.start, iv.end))
    score, chosen = optimal_schedule(row["events"], row["priority_events"])
    names = [f"{iv.name} {'-'.join(iv.as_event()[1:])}" if with_times else iv.name for iv in ivs]
    values = [
        f"{name} {iv.end - iv.start}x2={iv.value}" if iv.name in prios else f"{name} {iv.value}"
        for name, iv in zip(names, ivs)
    ]
    clashes = []
    for i, j in overlapping_pairs([iv.span for iv in ivs]):  # i starts first: it ends after j starts
        a, b = ivs[i].as_event(), ivs[j].as_event()
        clashes.append(f"{a[0]} ends {a[2]} after {b[0]} starts {b[1]}")
    return "\n".join(
        [
            f"Values (minutes, x2 for priority): {', '.join(values)}.",
            f"Clashes: {'; '.join(clashes)}." if clashes else "No clashes.",
            f"Keep: {', '.join(e[0] for e in chosen)}. Total: {score}.",
        ]
    )


def worked_minutes(start: int, end: int) -> str:
    """A duration in minutes as sums of small steps: the minutes to the next full hour, 60 for each whole hour
    between, the minutes past the last full hour (within one hour: a single subtraction).

    >>> worked_minutes(13 * 60 + 35, 14 * 60 + 20), worked_minutes(16 * 60 + 35, 18 * 60 + 20)
    ('25+20=45', '25+60+20=105')
    >>> worked_minutes(9 * 60, 10 * 60), worked_minutes(10 * 60 + 15, 10 * 60 + 45), worked_minutes(9 * 60, 11 * 60)
    ('60', '45-15=30', '60+60=120')
    """
    (h1, m1), (h2, m2) = divmod(start, 60), divmod(end, 60)
    if h1 == h2:
        return f"{m2}-{m1}={end - start}"
    parts = [60 - m1] + [60] * (h2 - h1 - 1) + ([m2] if m2 else [])
    return f"{'+'.join(map(str, parts))}={end - start}" if len(parts) > 1 else str(end - start)


def _scan_reasoning(row: Mapping, worked: bool = False) -> str:
    """``scan``: one line per event in time order, its start against the latest end before it.

    >>> print(_scan_reasoning({"events": [["Gym", "09:00", "10:30"], ["Call", "10:00", "11:00"],
    ...     ["Nap", "11:00", "12:00"], ["Tea", "11:15", "11:45"]], "priority_events": ["Call"]}))
    In time order:
    Gym 09:00-10:30 90.
    Call 10:00-11:00 60x2=120, before 10:30: clashes with Gym.
    Nap 11:00-12:00 60, not before 11:00.
    Tea 11:15-11:45 30, before 12:00: clashes with Nap, still 12:00.
    Clashes: Gym vs Call; Nap vs Tea.
    Keep: Call, Nap. Total: 180.
    """
    prios = set(row["priority_events"])
    ivs = sorted(to_intervals(row["events"], prios), key=lambda iv: (iv.start, iv.end))
    score, chosen = optimal_schedule(row["events"], row["priority_events"])
    pairs = overlapping_pairs([iv.span for iv in ivs])  # (i, j): i comes first in time order
    lines, latest = ["In time order:"], None  # latest: (minutes, "HH:MM") of the latest end so far
    for k, iv in enumerate(ivs):
        name, start, end = iv.as_event()
        minutes = worked_minutes(iv.start, iv.end) if worked else str(iv.end - iv.start)
        line = f"{name} {start}-{end} {minutes}" + (f"x2={iv.value}" if iv.name in prios else "")
        if latest is not None:
            earlier = [ivs[i].name for i, j in pairs if j == k]  # non-empty exactly when it starts before `latest`
            line += (
                f", before {latest[1]}: clashes with {', '.join(earlier)}" if earlier else f", not before {latest[1]}"
            )
        if latest is None or iv.end > latest[0]:
            latest = (iv.end, end)
        else:  # it ends before an earlier event does: the latest end stays, said so
            line += f", still {latest[1]}"
        lines.append(line + ".")
    clashes = [f"{ivs[i].name} vs {ivs[j].name}" for i, j in pairs]
    lines.append(f"Clashes: {'; '.join(clashes)}." if clashes else "No clashes.")  # the pairs, as other traces say them
    lines.append(f"Keep: {', '.join(e[0] for e in chosen)}. Total: {score}.")
    return "\n".join(lines)


def dp_answer(row: Mapping, trace: str = "short") -> str:
    """The full target answer: reasoning, then the optimal schedule."""
    _, chosen = optimal_schedule(row["events"], row["priority_events"])
    return format_answer(dp_reasoning(row, trace), chosen)


def sft_records(rows: Sequence[Mapping], trace: str = "short") -> list[dict]:
    """Prompt/completion pairs in TRL's conversational form (loss on the answer only)."""
    return [
        {"prompt": build_messages(r), "completion": [{"role": "assistant", "content": dp_answer(r, trace)}]}
        for r in rows
    ]


def sft_settings(base: str, rows: Sequence[Mapping], profile: Profile) -> dict[str, Any]:
    """What a warm start's model depends on, as plain JSON values: the base model, the problems
    (their number and a fingerprint), the seed and every ``warm_start`` knob (the trace, the learning rate...).

    >>> from utils.profiles import get_profile
    >>> s = sft_settings("base", [], get_profile("smoke"))
    >>> s["warm_start.trace"], s["problems"], s["seed"]
    ('short', '0 problems, sha256 4f53cda18c2baa0c', 3407)
    """
    digest = hashlib.sha256(json.dumps(list(rows), sort_keys=True, default=str).encode()).hexdigest()[:16]
    knobs = {f"warm_start.{k}": v for k, v in dataclasses.asdict(profile.warm_start).items()}
    settings = {"base": str(base), "problems": f"{len(rows)} problems, sha256 {digest}", "seed": profile.seed, **knobs}
    return json.loads(json.dumps(settings, default=str))  # the form it has once written and read back


def reuse_decision(out_dir: Path, settings: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the finished warm start in ``out_dir`` can be reused for ``settings``, and why, in
    one line: only one trained with the same settings is (like a GRPO run's resume:
    :func:`utils.train.runs.prepare_run_dir`)."""
    done = Path(out_dir) / "final"
    if not (done / "config.json").exists():
        return False, f"Warm-start: none finished in {done}: training one"
    before = read_settings(Path(out_dir) / SFT_SETTINGS)  # None: from before the record existed, or unreadable
    if before is None:
        return False, f"Warm-start in {done} has no record of its settings: training a new one"
    changes = settings_changes(before, settings)
    if changes:
        return False, f"Warm-start in {done} was trained with other settings ({'; '.join(changes)}): training a new one"
    return True, f"Warm-start already done: {done} (same settings)"


def run_sft(base: str, rows: Sequence[dict], profile: Profile, out_dir: Path, force: bool = False) -> Path:
    """Full fine-tune of the (small) base model on DP-optimal answers; returns the checkpoint.

    ``rows`` are the problems (:func:`utils.task.training_problems` makes as many as the profile's
    ``warm_start.n_problems``); each target answer carries the profile's ``warm_start.trace``.

    Skipped when ``out_dir`` already holds a finished warm-start trained with the same settings
    (:func:`sft_settings`; resume-friendly); other settings train a new one, and say what changed."""
    out_dir = claim_folder(out_dir, "warm start", own=SFT_OWN)  # never a folder holding someone else's files
    done = out_dir / "final"
    settings = sft_settings(base, rows, profile)
    reuse, decision = reuse_decision(out_dir, settings)
    if force:
        decision = f"Warm-start: training a new one in {done} (force=True)"
    print(decision)
    if reuse and not force:
        return done
    # The old model and its record go first: an interrupted run must not leave them paired with new settings.
    (out_dir / SFT_SETTINGS).unlink(missing_ok=True)
    if done.is_symlink():
        done.unlink()
    elif done.exists():
        shutil.rmtree(done)
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from .callbacks import ProgressPrinter

    on_gpu = torch.cuda.is_available()
    steps = math.ceil(len(rows) / profile.warm_start.batch_size) * profile.warm_start.epochs
    print(
        f"Warm-start: {len(rows)} problems x {profile.warm_start.epochs} epochs = about {steps} steps of "
        f"{profile.warm_start.batch_size} on {'the GPU' if on_gpu else 'the CPU'}; a line per step follows",
        flush=True,
    )
    tokenizer = load_tokenizer(base)  # resolves `base` (and silences the weight-loading bar) first
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
        disable_tqdm=headless(),
        dataloader_pin_memory=on_gpu,
        bf16=on_gpu and bf16_supported(),
        # no truncation: a cut target teaches an answer without its schedule (scan_worked's longest prompt +
        # answer is 1,052 tokens, 14 of 4,000 training problems over TRL's default 1,024)
        max_length=None,
        seed=profile.seed,  # with another seed, another warm start: seeds are compared from their own
        completion_only_loss=True,
        eos_token=tokenizer.eos_token,
    )  # pad: set on the tokenizer
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**check_supported(SFTConfig, kwargs)),
        train_dataset=Dataset.from_list(sft_records(rows, profile.warm_start.trace)),
        processing_class=tokenizer,
        callbacks=[ProgressPrinter("warm start")],  # a line per step, like GRPO's: never minutes of silence
    )
    t0 = time.perf_counter()
    trainer.train()
    print(f"Warm-start: {trainer.state.global_step} steps in {time.perf_counter() - t0:.0f} s")
    trainer.save_model(str(done))
    tokenizer.save_pretrained(str(done))
    (out_dir / "sft_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    (out_dir / SFT_SETTINGS).write_text(json.dumps(settings, indent=1), encoding="utf-8")  # last: the model is whole
    return done
