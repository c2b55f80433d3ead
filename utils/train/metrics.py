"""What every column TRL's ``GRPOTrainer`` logs means, and what healthy and unhealthy curves look like.

Notebook 05 shows :func:`glossary_table` next to its live plots. Written for TRL 1.14 with the
course's settings (``beta=0``, one optimizer step per batch, ``loss_type="dapo"``); notebook 04
derives the loss values. ``tests/test_training.py`` checks that every column a real (tiny)
training run logs has an entry here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .monitor import MONITOR_COLUMNS


@dataclass(frozen=True)
class Metric:
    meaning: str
    healthy: str
    warning: str


GLOSSARY: dict[str, Metric] = {
    "reward": Metric(
        "mean total reward per answer (the weighted sum of the reward functions)",
        "rises, then levels off",
        "rises while the evaluation (notebook 06) does not: the model found a way to please the reward, not the task",
    ),
    "reward_std": Metric(
        "spread of the total reward over the whole batch (not within groups)",
        "stays clearly above 0",
        "falls towards 0: every answer scores the same, nothing left to learn from",
    ),
    "rewards/<name>/mean": Metric(
        "mean of one reward function, before its weight",
        "the rewards you care about rise (format first, then score)",
        "one rises while another falls: the model trades one goal for another",
    ),
    "rewards/<name>/std": Metric(
        "spread of one reward function over the batch", "above 0", "0: this reward gives no signal"
    ),
    "frac_reward_zero_std": Metric(
        "share of answers in groups whose rewards are all equal: their advantages are 0, they teach nothing",
        "low, and falling (say below 0.3)",
        "near 1: no learning signal (all fail alike, as for the untrained model, or all succeed alike: task too easy); "
        "under dapo those groups still count in the normaliser and shrink the step",
    ),
    "completions/mean_length": Metric(
        "mean answer length in tokens (end token included)",
        "stable, or changing slowly with the reward",
        "grows while the reward stays flat: rambling or padding for reward (length hacking); "
        "collapses to a few tokens: degenerate answers",
    ),
    "completions/min_length": Metric("shortest answer of the step", "-", "-"),
    "completions/max_length": Metric(
        "longest answer of the step", "below the token budget", "stuck at max_completion_length: answers are cut"
    ),
    "completions/clipped_ratio": Metric(
        "share of answers cut at max_completion_length (truncated; nothing to do with ratio clipping)",
        "near 0",
        "high or rising: answers run out of budget before </schedule>, so they lose the format and score rewards; "
        "raise max_completion_length",
    ),
    "completions/mean_terminated_length": Metric(
        "mean length of the answers that ended by themselves (0 if none did)",
        "close to mean_length",
        "0 or far below mean_length: the long answers are the cut ones",
    ),
    "completions/min_terminated_length": Metric("shortest answer that ended by itself", "-", "-"),
    "completions/max_terminated_length": Metric("longest answer that ended by itself", "-", "-"),
    "loss": Metric(
        "the GRPO loss of the step (notebook 04). With beta = 0 and one step per batch the ratio is 1, so its value is "
        "-sum(w_i A_i): about 0 under loss_type='grpo'; under 'dapo' (the default) -sum(L_i A_i)/N, the covariance "
        "of length and advantage",
        "anything near 0; it is not a progress measure and need not fall",
        "dapo: steadily negative while completions/mean_length grows: longer answers are being rewarded",
    ),
    "grad_norm": Metric(
        "size of the gradient before clipping to max_grad_norm (0.1 in the course)",
        "stable; above 0.1 means the step was clipped, which is normal here",
        "sudden spikes of 10-100x: an outlier batch; nan/inf: numerical trouble",
    ),
    "learning_rate": Metric("the scheduled learning rate (cosine with warm-up)", "follows the schedule", "-"),
    "entropy": Metric(
        "mean uncertainty of the model over the answer tokens, in nats (0 = always sure)",
        "slow decline as the policy sharpens",
        "fast collapse towards 0: no exploration, groups become identical, frac_reward_zero_std rises; "
        "a sudden rise: the model is falling apart",
    ),
    "clip_ratio/low_mean": Metric(
        "share of tokens whose ratio fell below 1 - epsilon with a negative advantage (gradient switched off)",
        "0 with one optimizer step per batch (the course): the ratio is 1",
        "above 0.1-0.2 with num_iterations > 1: steps too large for the trust region",
    ),
    "clip_ratio/low_min": Metric("smallest per-answer share of low-clipped tokens", "0 here", "-"),
    "clip_ratio/high_mean": Metric(
        "share of tokens whose ratio rose above 1 + epsilon with a positive advantage",
        "0 with one optimizer step per batch",
        "as clip_ratio/low_mean",
    ),
    "clip_ratio/high_max": Metric(
        "largest per-answer share of high-clipped tokens", "0 here", "near 1: very off-policy"
    ),
    "clip_ratio/region_mean": Metric("low + high clipped share", "0 here", "as clip_ratio/low_mean"),
    "kl": Metric(
        "mean KL estimate to the reference model (logged only when beta > 0)",
        "small, growing slowly",
        "runaway growth: the policy drifts far from the reference (raise beta or lower the learning rate)",
    ),
    "num_tokens": Metric("prompt + answer tokens processed so far", "grows steadily", "-"),
    "step_time": Metric(
        "seconds per optimizer step, generation included", "stable", "growing with answer length: generation dominates"
    ),
    "epoch": Metric("how far through the training problems", "-", "-"),
    # The live monitor (utils/train/monitor.py): the evaluation's verdict on the same sampled answers.
    "monitor/valid": Metric(
        MONITOR_COLUMNS["monitor/valid"],
        "rises with the reward",
        "falls while the reward rises: the reward pays for something the evaluation does not (reward hacking)",
    ),
    "monitor/score": Metric(
        MONITOR_COLUMNS["monitor/score"],
        "rises with the reward",
        "flat or falling while the reward rises: see monitor/valid, monitor/clash, monitor/invented",
    ),
    "monitor/clash": Metric(
        MONITOR_COLUMNS["monitor/clash"],
        "falls",
        "rises: the reward pays for clashes (the seed's score_reward drops clashing pairs and pays the rest)",
    ),
    "monitor/invented": Metric(
        MONITOR_COLUMNS["monitor/invented"], "falls towards 0", "rises: the reward pays for events that do not exist"
    ),
    "monitor/events": Metric(
        MONITOR_COLUMNS["monitor/events"],
        "close to monitor/optimal_events",
        "far below it: the model drops events to stay valid; far above: it lists everything",
    ),
    "monitor/optimal_events": Metric(MONITOR_COLUMNS["monitor/optimal_events"], "-", "-"),
    "monitor/free_events": Metric(
        MONITOR_COLUMNS["monitor/free_events"],
        "stays near 0",
        "rises: valid answers leave out events that clash with nothing (the strict score pays a short safe "
        "schedule nearly as well as a whole one; maximal_score_reward charges for it)",
    ),
    "monitor/trace_real_clashes": Metric(
        MONITOR_COLUMNS["monitor/trace_real_clashes"],
        "rises towards 1: the reasoning finds what the schedule must resolve",
        "low and flat: the trace copies the form of the reasoning (the committed warm starts: 16-32%)",
    ),
    "monitor/trace_false_clashes": Metric(
        MONITOR_COLUMNS["monitor/trace_false_clashes"],
        "falls towards 0",
        "high: the trace invents clashes, which can justify dropping events that fit (warm starts: 69-83%)",
    ),
    "monitor/seconds": Metric(MONITOR_COLUMNS["monitor/seconds"], "under 2% of step_time", "-"),
    "skipped_steps": Metric(
        "optimizer steps skipped so far because their gradients held NaN or inf (SkipNonFiniteSteps)",
        "0",
        "above 0: those updates were dropped (the weights stayed finite); many: lower the learning rate",
    ),
    # The fast rollouts (utils/train/fast_rollouts.py), on the static-cache path (TRL without vLLM).
    "rollouts/generate_s": Metric("seconds the fast copy spent generating the batch", "stable after step 1", "-"),
    "rollouts/merge_s": Metric("seconds spent writing the policy's weights into the copy", "a few ms", "-"),
    "rollouts/decode_step_ms": Metric(
        "milliseconds per decoding step of the copy",
        "stable after step 1 (2 CPU cores: about 100 ms; results/cpu_grpo_step_engines.json)",
        "growing: a compiled step re-compiles, or the prompts outgrow the bucket",
    ),
    "rollouts/logp_diff_abs": Metric(
        "mean |copy - policy| log-probability per answer token: are the fast rollouts on-policy?",
        "near 0 (fp32 copy: the bf16 forward's own noise)",
        "large (a bf16 copy: 0.02): the answers come from another distribution than the one trained",
    ),
    "rollouts/logp_diff": Metric(
        "mean copy - policy log-probability per answer token",
        "about 0",
        "above 0: the copy samples a sharper distribution than the policy (a bf16 merge rounds the LoRA away)",
    ),
    "rollouts/nonfinite_batches": Metric(
        "batches so far whose copy gave NaN/inf logits (regenerated by the policy itself)", "0", "above 0: report it"
    ),
}


def glossary_key(column: str) -> str:
    """``rewards/score_reward/mean`` -> ``rewards/<name>/mean``; other names unchanged."""
    parts = column.split("/")
    if len(parts) == 3 and parts[0] == "rewards":
        return f"rewards/<name>/{parts[2]}"
    return column


def glossary_table(columns: Iterable[str] | None = None):
    """The glossary as a table; with ``columns``, only the entries those logged columns need, in their order."""
    import pandas as pd

    keys = list(GLOSSARY) if columns is None else list(dict.fromkeys(glossary_key(c) for c in columns))
    rows = [
        {
            "metric": k,
            "meaning": GLOSSARY[k].meaning,
            "healthy": GLOSSARY[k].healthy,
            "warning signs": GLOSSARY[k].warning,
        }
        for k in keys
        if k in GLOSSARY
    ]
    return pd.DataFrame(rows).set_index("metric")


def unexplained(columns: Iterable[str]) -> list[str]:
    """Logged columns the glossary does not explain (``step``, the x axis, needs no entry)."""
    return sorted({c for c in columns if c != "step" and glossary_key(c) not in GLOSSARY})
