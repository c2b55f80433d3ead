#!/usr/bin/env python
"""GRPO step time: TRL's plain generation vs FastRollouts, in one run, on the same warm-started model.

Run from the course repository's root::

    python benchmarks/bench_fast_rollouts.py --json results/bench_fast_rollouts.json

It warm-starts the model (the course's SFT, ``--warm-start-epochs``; 0 uses ``--model`` as it is), then
runs ``--steps`` GRPO steps with TRL's plain ``generate`` and ``--steps`` with FastRollouts, each from a
fresh LoRA on that same model with the same seed, data and settings (8 prompts x 8 generations, up to
512 new tokens). It reports per-step times (first step = compilation, separately), where the time
goes (generation, merge, rewards, log-prob forward, the rest = backward + optimizer), the decoding
step time against the memory floor, and a greedy evaluation of the test prompts (100 x 768 tokens)
with the fast generator next to the course's own evaluation path. Everything lands in one JSON.

Expected on one H100/H200 (estimate, not measured): warm start ~40 s, plain path 6 steps x 15-28 s,
fast path ~30 s compile + 5 x ~2.5 s, evaluation ~1 min with compilation: about 5-7 minutes in all,
under the 10-minute command limit. The JSON is rewritten after every phase, so a run stopped by a
time limit still leaves what it measured. Needs transformers 5.17, trl 1.14.2, peft, datasets.

``--tiny`` runs the same code on CPU with a tiny random model in 1-2 minutes (a check, not a benchmark).
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.llm.generation import generate_completions  # noqa: E402
from utils.llm.models import embedded_checkpoint, load_causal_lm, load_tokenizer  # noqa: E402
from utils.profiles import get_profile  # noqa: E402
from utils.rewards import default_reward_funcs  # noqa: E402
from utils.task.data import load_split  # noqa: E402
from utils.task.prompts import build_messages  # noqa: E402
from utils.train.callbacks import SkipNonFiniteSteps  # noqa: E402
from utils.train.config import build_grpo_config, grpo_knobs, lora_config  # noqa: E402
from utils.train.fast_rollouts import FastRollouts, left_padded  # noqa: E402
from utils.train.trainer import grpo_records  # noqa: E402
from utils.train.warmstart import run_sft  # noqa: E402


# ----------------------------------------------------------------------------- measuring
def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_method(obj: Any, name: str, store: list[float]) -> None:
    """Replace ``obj.name`` by a wrapper that appends its (synchronised) duration to ``store``."""
    fn = getattr(obj, name)

    def wrapper(*args, **kwargs):
        sync()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sync()
            store.append(time.perf_counter() - t0)

    setattr(obj, name, wrapper)


def step_timer():
    """A TrainerCallback that records each optimizer step's wall time (device-synchronised)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self._t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            sync()
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            self.times.append(time.perf_counter() - self._t0)

    return StepTimer()


def memory_bandwidth_gbs() -> float | None:
    """Device-to-device copy bandwidth (bytes read + written), the yardstick of the memory floor."""
    import torch

    if not torch.cuda.is_available():
        return None
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    sync()
    t0 = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    sync()
    seconds = (time.perf_counter() - t0) / 10
    del x, y
    return 2 * (1 << 30) / seconds / 1e9


def med(xs: list[float]) -> float | None:
    return median(xs) if xs else None


def steady(xs: list[float]) -> list[float]:
    """All but the first value (the first step compiles / warms up), or all if there is one."""
    return xs[1:] if len(xs) > 1 else xs


# ----------------------------------------------------------------------------- the runs
def tiny_model_dir(work: Path, tokenizer) -> Path:
    """A tiny random Llama with the course tokenizer, saved like a checkpoint (both runs load the same)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    target = work / "tiny-model"
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def grpo_config(profile, out_dir: Path, max_prompt: int, on_gpu: bool):
    """The course's GRPO settings (grpo_knobs -> build_grpo_config), never saving."""
    knobs = grpo_knobs(profile, "trl", max_prompt, "plain", on_gpu)
    return build_grpo_config(knobs, out_dir, None)


#: The generation paths a GRPO step is timed with (``--paths``).
PATHS = ("plain", "fast", "fast-compiled", "fast-generate")


def run_path(
    path: str,
    model_dir: str,
    profile,
    records: list[dict],
    rewards: list[Callable],
    work: Path,
    max_prompt: int,
    bucket: int,
    decode_ks: tuple[int, int],
) -> tuple[dict, Any, Any]:
    """N GRPO steps on one generation path; returns (report, trainer, FastRollouts or None)."""
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    on_gpu = torch.cuda.is_available()
    # Every path attends with the course's padsafe SDPA (load_causal_lm): on an H100 (2026-12-07) stock SDPA gave
    # the plain path a NaN gradient norm at its first step (left-padded training batch) and killed the run.
    model, tokenizer = load_causal_lm(model_dir, _dtype(on_gpu))
    config = grpo_config(profile, work / path, max_prompt, on_gpu)
    # "fast": FastRollouts' default engine (the graph engine); "fast-compiled": the same, its decoding step's
    # forward compiled as one graph; "fast-generate": its transformers-generate engine.
    engine = {"fast": "auto", "fast-compiled": "graph", "fast-generate": "generate"}.get(path)
    compiled = "step" if path == "fast-compiled" else None
    fast = FastRollouts(prompt_bucket=bucket, engine=engine, compile=compiled) if engine else None
    timer = step_timer()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=lora_config(profile),
        callbacks=[timer, SkipNonFiniteSteps()],  # the course trainer's last resort, so a bad step costs one update
        rollout_func=fast.rollout_func if fast else None,
    )
    times: dict[str, list[float]] = {k: [] for k in ("score", "generate", "rewards", "logp_forward")}
    timed_method(trainer, "_generate_and_score_completions", times["score"])
    timed_method(trainer, "_calculate_rewards", times["rewards"])
    timed_method(trainer, "_get_per_token_logps_and_entropies", times["logp_forward"])
    if fast is None:
        timed_method(trainer, "_generate_single_turn", times["generate"])
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    dynamo_before = _dynamo_counters()
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    if fast is not None:
        times["generate"] = [h.generate_s for h in fast.history]
        times["merge"] = [h.merge_s for h in fast.history]
    else:
        times["merge"] = [0.0] * len(times["generate"])
    steps = timer.times
    # One generation per step here (gradient_accumulation_steps=1), so the lists line up step by step.
    n = min(len(steps), len(times["score"]))
    rest = [steps[i] - times["score"][i] - _sum_step(times["logp_forward"], i, n) for i in range(n)]
    other_score = [times["score"][i] - times["generate"][i] - times["merge"][i] - times["rewards"][i] for i in range(n)]
    logs = [h for h in trainer.state.log_history if "reward" in h]
    report = {
        "steps": len(steps),
        "train_s": train_s,
        "step_s": steps,
        "first_step_s": steps[0] if steps else None,
        "median_step_s": med(steady(steps)),
        "median_generate_s": med(steady(times["generate"])),
        "first_generate_s": (times["generate"] or [None])[0],
        "median_merge_s": med(steady(times["merge"])),
        "median_rewards_s": med(steady(times["rewards"])),
        "median_logp_forward_s": med([_sum_step(times["logp_forward"], i, n) for i in range(n)][1:] or [0.0]),
        "median_other_scoring_s": med(steady(other_score)),
        "median_backward_optimizer_rest_s": med(steady(rest)),
        "per_step": {k: v for k, v in times.items()},
        "reward": [h.get("reward") for h in logs],
        "completion_mean_length": [h.get("completions/mean_length") for h in logs],
        "clipped_ratio": [h.get("completions/clipped_ratio") for h in logs],
        "skipped_steps": max([h.get("skipped_steps", 0) for h in trainer.state.log_history] or [0]),
        "trl_step_time": [h.get("step_time") for h in logs],
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
        "dynamo_counters_delta": _counter_delta(dynamo_before, _dynamo_counters()),
    }
    if fast is not None:
        report["fast_summary"] = fast.summary()
        report["fast_history"] = [vars(h).copy() for h in fast.history]
        report["in_place_check"] = guarded(in_place_check, trainer, fast, microbench_prompt_ids(trainer, records))
    report["decode_step"] = guarded(decode_microbench, trainer, fast, records, decode_ks)
    return report, trainer, fast


def _sum_step(per_call: list[float], i: int, n_steps: int) -> float:
    """Log-prob forwards are called once or more per step; split the calls evenly over the steps."""
    if not per_call or not n_steps:
        return 0.0
    k = max(len(per_call) // n_steps, 1)
    return sum(per_call[i * k : (i + 1) * k])


def microbench_prompt_ids(trainer, records: list[dict]) -> list[list[int]]:
    """A training-shaped batch (the first prompts, each repeated num_generations times), tokenised by TRL."""
    batch = trainer.args.generation_batch_size  # one step's answers (the loss may take them in passes)
    prompts = [r["prompt"] for r in records[: batch // trainer.num_generations] for _ in range(trainer.num_generations)]
    return [list(ids) for ids in trainer._tokenize_prompts(prompts)[0]]


def decode_microbench(trainer, fast, records: list[dict], ks: tuple[int, int]) -> dict:
    """Time of one decoding step: generate k1 and k2 tokens (EOS suppressed) on a training batch; (t2-t1)/(k2-k1)."""
    import torch
    from transformers import GenerationConfig

    prompt_ids = microbench_prompt_ids(trainer, records)
    results = {}
    for k in ks:
        config = GenerationConfig(**{**trainer.generation_kwargs, "max_new_tokens": k, "min_new_tokens": k})
        if fast is not None:
            fast.refresh(trainer.accelerator.unwrap_model(trainer.model), trainer.accelerator.device)
            fast.generate(prompt_ids, config, trainer.eos_token_ids)  # warm (same shapes as training)
            fast.generate(prompt_ids, config, trainer.eos_token_ids)
            results[k] = fast.history[-1].generate_s
            del fast.history[-2:]  # keep the training history clean
        else:
            from torch.nn.utils.rnn import pad_sequence

            ids = [torch.tensor(p) for p in prompt_ids]
            pad = trainer.processing_class.pad_token_id
            input_ids = pad_sequence(ids, batch_first=True, padding_value=pad, padding_side="left")
            ones = [torch.ones_like(t) for t in ids]
            mask = pad_sequence(ones, batch_first=True, padding_value=0, padding_side="left")
            model = trainer.accelerator.unwrap_model(trainer.model)
            config.disable_compile = True
            dev = trainer.accelerator.device
            with torch.no_grad():
                model.generate(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), generation_config=config)
                sync()
                t0 = time.perf_counter()
                model.generate(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), generation_config=config)
                sync()
            results[k] = time.perf_counter() - t0
    k1, k2 = ks
    return {
        "batch": len(prompt_ids),
        "tokens": list(ks),
        "generate_s": [results[k1], results[k2]],
        "decode_step_ms": 1e3 * (results[k2] - results[k1]) / (k2 - k1),
    }


def in_place_check(trainer, fast, prompt_ids: list[list[int]], k: int = 4) -> dict:
    """Do the graphs recorded at the first step see the weights written in place since?

    Adds a large random change to every LoRA B, refreshes, generates k greedy tokens with the copy through its
    own engine (the graph engine returns no logits, so the check reads the sampled tokens' log-probabilities it
    hands TRL) and compares them with the PEFT policy's own forward, with the changed B ("fresh") and with the
    original B ("stale"). In-place updates work when the copy is nearer fresh than stale: a copy that missed the
    update would equal stale. B is restored afterwards.
    """
    import torch
    import torch.nn.functional as F
    from transformers import GenerationConfig

    policy = trainer.accelerator.unwrap_model(trainer.model)
    device = trainer.accelerator.device
    lora_b = [p for n, p in policy.named_parameters() if "lora_B" in n]
    saved = [p.detach().clone() for p in lora_b]
    generator = torch.Generator(device="cpu").manual_seed(0)
    config = GenerationConfig(
        **{**trainer.generation_kwargs, "do_sample": False, "max_new_tokens": k, "min_new_tokens": k}
    )
    try:
        with torch.no_grad():
            for p in lora_b:
                p.add_(0.05 * torch.randn(p.shape, generator=generator).to(p.device, p.dtype))
        fast.refresh(policy, device)
        completions = fast.generate(prompt_ids, config, trainer.eos_token_ids)
        timing = fast.history.pop()
        if any(len(c) != k for c in completions):
            raise RuntimeError(f"expected {k} tokens per answer, got {sorted({len(c) for c in completions})}")
        copy_logp = torch.tensor(fast.last_logprobs)  # (B, k): the copy's log-prob of each token it chose
        width = timing.prompt_width
        # each answer has k tokens, so prompt + answer left-padded to width + k puts the answers in the last k columns
        sequences, mask = left_padded([[*ids, *new] for ids, new in zip(prompt_ids, completions)], width + k, 0)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        chosen = sequences[:, width:].unsqueeze(-1)

        def policy_logp() -> torch.Tensor:
            with torch.no_grad():
                logits = policy(
                    input_ids=sequences.to(device),
                    attention_mask=mask.to(device),
                    position_ids=positions.to(device),
                    logits_to_keep=k + 1,
                ).logits[:, :k]
            return F.log_softmax(logits.float(), dim=-1).cpu().gather(-1, chosen).squeeze(-1)

        fresh = policy_logp()
        with torch.no_grad():
            for p, original in zip(lora_b, saved):
                p.copy_(original)
        stale = policy_logp()
    finally:
        with torch.no_grad():
            for p, original in zip(lora_b, saved):
                p.copy_(original)
        fast.refresh(policy, device)

    def gap(ref: torch.Tensor, steps: slice) -> float:  # mean |log-prob difference| of the chosen tokens
        return (ref - copy_logp)[:, steps].abs().mean().item()

    decode = slice(1, k)  # token 0 comes from the prefill; later ones from the recorded decoding step
    out = {
        "engine": timing.path,
        "logp_gap_fresh_prefill": gap(fresh, slice(0, 1)),
        "logp_gap_fresh_decode": gap(fresh, decode),
        "logp_gap_stale_decode": gap(stale, decode),
    }
    out["updates_seen"] = out["logp_gap_fresh_decode"] < out["logp_gap_stale_decode"]
    return out


def memory_floor(fast, batch: int, bandwidth_gbs: float | None) -> dict:
    """Bytes one decoding step must read (weights; the whole static KV cache) and the time at the measured bandwidth."""
    model = fast.infer
    cfg = model.config
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    elem = next(model.parameters()).element_size()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    cache_len = max((n for (b, _), n in fast.cache_lengths().items() if b == batch), default=0)
    kv_bytes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * elem * batch * cache_len
    out = {
        "weight_bytes": weight_bytes,
        "static_kv_bytes_per_step": kv_bytes,
        "static_cache_len": cache_len,
        "batch": batch,
        "bandwidth_gbs": bandwidth_gbs,
    }
    if bandwidth_gbs:
        out["floor_weights_ms"] = 1e3 * weight_bytes / (bandwidth_gbs * 1e9)
        out["floor_weights_plus_static_kv_ms"] = 1e3 * (weight_bytes + kv_bytes) / (bandwidth_gbs * 1e9)
    return out


def evaluate(trainer, fast, rows: list[dict], max_new: int, rewards: list[Callable], course_baseline: bool) -> dict:
    """Greedy completions of the test prompts with the fast generator (cold: compiles; warm), and the course's path."""
    from transformers import GenerationConfig

    tokenizer = trainer.processing_class
    prompt_ids = [
        tokenizer.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        for r in rows
    ]
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new, eos_token_id=trainer.eos_token_ids, pad_token_id=tokenizer.pad_token_id
    )
    policy = trainer.accelerator.unwrap_model(trainer.model)
    fast.refresh(policy, trainer.accelerator.device)
    runs = []
    for _ in range(2):
        ids = fast.generate(prompt_ids, config, trainer.eos_token_ids)
        runs.append(vars(fast.history[-1]).copy())
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    out: dict[str, Any] = {
        "n": len(rows),
        "max_new_tokens": max_new,
        "cold": runs[0],
        "warm": runs[1],
        "mean_completion_tokens": sum(map(len, ids)) / len(ids),
        "rewards": _reward_means(rewards, texts, rows),
    }
    if course_baseline:
        out["course_path"] = guarded(course_evaluation, policy, fast, tokenizer, rows, max_new, rewards, texts)
    return out


def course_evaluation(
    policy, fast, tokenizer, rows: list[dict], max_new: int, rewards: list[Callable], fast_texts: list[str]
) -> dict:
    """The course's own evaluation path on PEFT's merge of the same weights: time, agreement, rewards."""
    import torch

    path = "static-cache" if torch.cuda.is_available() else "plain"
    merged = copy.deepcopy(policy).merge_and_unload().eval()  # PEFT's own merge, as the course evaluates
    mine = fast.infer.state_dict()
    weight_diff = max((v.float() - mine[k].float()).abs().max().item() for k, v in merged.state_dict().items())
    sync()
    t0 = time.perf_counter()
    course_texts = generate_completions(
        merged, tokenizer, rows, max_new_tokens=max_new, batch_size=len(rows), path=path, desc="course eval"
    )
    sync()
    del merged
    return {
        "path": path,
        "seconds": time.perf_counter() - t0,
        "max_abs_weight_diff_vs_fast_copy": weight_diff,
        "same_text_fraction": sum(a == b for a, b in zip(fast_texts, course_texts)) / len(rows),
        "rewards": _reward_means(rewards, course_texts, rows),
    }


def guarded(fn: Callable, *args) -> Any:
    """A secondary measurement: its failure is recorded in the JSON instead of ending the run."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def _reward_means(rewards: list[Callable], texts: list[str], rows: list[dict]) -> dict:
    columns = {k: [r[k] for r in rows] for k in ("events", "priority_events", "optimal_score")}
    result = {}
    for fn in rewards:
        values = [v for v in fn(completions=texts, prompts=[r["prompt"] for r in rows], **columns) if v is not None]
        result[fn.__name__] = sum(values) / len(values) if values else None
    return result


def _dtype(on_gpu: bool):
    import torch

    if not on_gpu:
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _dynamo_counters() -> dict:
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return {f"{group}.{key}": value for group in ("stats", "inductor") for key, value in counters[group].items()}


def _counter_delta(before: dict, after: dict) -> dict:
    keys = [k for k in after if after[k] != before.get(k, 0) and ("graph" in k or "compil" in k or "unique" in k)]
    return {k: after[k] - before.get(k, 0) for k in keys}


def versions() -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = None
    return out


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="the embedded model checkpoint (default: the course's converted copy)")
    parser.add_argument(
        "--warm-start-epochs",
        type=float,
        default=None,
        help="course SFT epochs before GRPO (default 3 on GPU, 0 with --tiny; 0 = use --model as is)",
    )
    parser.add_argument("--steps", type=int, default=6, help="GRPO steps per path (the first one compiles)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt")
    parser.add_argument("--max-new", type=int, default=512, help="max_completion_length")
    parser.add_argument(
        "--paths",
        default="plain,fast",
        help="paths to run, in order: plain, fast (graph engine), fast-compiled (its step compiled), fast-generate",
    )
    parser.add_argument("--prompt-bucket", type=int, default=None, help="default: longest prompt rounded up to 64")
    parser.add_argument("--eval-n", type=int, default=100)
    parser.add_argument("--eval-tokens", type=int, default=768)
    parser.add_argument("--no-course-eval", action="store_true", help="skip the course's evaluation path (baseline)")
    parser.add_argument("--work", default=None, help="scratch folder (default: outputs/bench_fast_rollouts)")
    parser.add_argument("--json", default="outputs/bench_fast_rollouts.json")
    parser.add_argument("--tiny", action="store_true", help="CPU check: tiny random model, tiny settings")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if unknown := [p for p in paths if p not in PATHS]:
        parser.error(f"unknown --paths {unknown}: choose from {', '.join(PATHS)}")  # one line, exit 2
    if args.tiny:
        for name, value in (
            ("steps", 2),
            ("prompts", 2),
            ("generations", 2),
            ("max_new", 16),
            ("eval_n", 4),
            ("eval_tokens", 24),
        ):
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    warm_epochs = args.warm_start_epochs if args.warm_start_epochs is not None else (0 if args.tiny else 3)

    import torch

    started = time.perf_counter()
    root = ROOT
    on_gpu = torch.cuda.is_available()
    work = Path(args.work or root / "outputs" / "bench_fast_rollouts")
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "command": " ".join([sys.executable, *sys.argv])
        if argv is None
        else " ".join(["benchmarks/bench_fast_rollouts.py", *argv]),
        "versions": versions(),
        "device": torch.cuda.get_device_name() if on_gpu else platform.processor() or "cpu",
        "gpu_capability": list(torch.cuda.get_device_capability()) if on_gpu else None,
        "settings": {**vars(args), "warm_start_epochs": warm_epochs},
    }
    result["bandwidth_gbs"] = memory_bandwidth_gbs()
    out_json = Path(args.json)
    out_json.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every phase: a run stopped at a time limit still leaves its numbers
        result["total_s"] = time.perf_counter() - started
        out_json.write_text(json.dumps(result, indent=1, default=str))

    train_rows, test_rows = load_split("train"), load_split("test")[: args.eval_n]
    source = args.model or str(embedded_checkpoint(verbose=False))
    tokenizer = load_tokenizer(source)
    model_dir = str(tiny_model_dir(work, tokenizer)) if args.tiny else source
    if warm_epochs > 0:  # the course's warm start: GRPO on the raw 135M model learns nothing (all rewards 0)
        t0 = time.perf_counter()
        profile = get_profile("gpu", {"warm_start.epochs": warm_epochs})
        n_sft = profile.warm_start.n_problems
        model_dir = str(run_sft(model_dir, train_rows[:n_sft], profile, work / f"sft-{warm_epochs:g}ep"))
        result["warm_start"] = {"dir": model_dir, "seconds": time.perf_counter() - t0}
        save()
    records = grpo_records(train_rows)
    lengths = [
        len(
            tokenizer.apply_chat_template(
                build_messages(r), add_generation_prompt=True, tokenize=True, return_dict=True
            )["input_ids"]
        )
        for r in train_rows + test_rows
    ]
    bucket = args.prompt_bucket or -(-max(lengths) // 64) * 64
    result["prompt_tokens"] = {"min": min(lengths), "max": max(lengths), "bucket": bucket}
    profile = get_profile(
        "smoke" if args.tiny else "gpu",
        {
            "grpo.per_device_batch": args.prompts * args.generations,
            "grpo.num_generations": args.generations,
            "grpo.max_completion_length": args.max_new,
            "grpo.steps": args.steps,
            "grpo.save_steps": 10**6,
            "grpo.logging_steps": 1,
        },
    )
    rewards = default_reward_funcs()
    decode_ks = (4, 12) if args.tiny else (64, 512)

    last = None
    result["paths"] = {}
    for path in paths:
        print(
            f"=== {path}: {args.steps} GRPO steps, {args.prompts}x{args.generations} completions, "
            f"<= {args.max_new} new tokens",
            flush=True,
        )
        report, trainer, fast = run_path(
            path,
            model_dir,
            profile,
            records,
            rewards,
            work,
            max(lengths),
            bucket,
            (min(decode_ks[0], args.max_new), min(decode_ks[1], args.max_new))
            if path.startswith("fast")
            else (2, 6)
            if args.tiny
            else (16, 80),
        )
        result["paths"][path] = report
        if fast is not None and path == "fast":
            report["memory_floor"] = memory_floor(fast, args.prompts * args.generations, result["bandwidth_gbs"])
            save()
            result["evaluation"] = evaluate(
                trainer, fast, test_rows, args.eval_tokens, rewards, course_baseline=not args.no_course_eval
            )
        save()
        print(
            json.dumps(
                {k: report[k] for k in ("first_step_s", "median_step_s", "median_generate_s", "median_merge_s")}
            ),
            flush=True,
        )
        del trainer, fast
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()
        last = path
    paths = result["paths"]
    if "plain" in paths and "fast" in paths and paths["fast"]["median_step_s"]:
        result["speedup_median_step"] = paths["plain"]["median_step_s"] / paths["fast"]["median_step_s"]
        result["speedup_median_generate"] = paths["plain"]["median_generate_s"] / paths["fast"]["median_generate_s"]
    if "plain" in paths and "fast-compiled" in paths and paths["fast-compiled"]["median_step_s"]:
        result["speedup_median_step_compiled"] = (
            paths["plain"]["median_step_s"] / paths["fast-compiled"]["median_step_s"]
        )
    if "fast-generate" in paths and "fast" in paths and paths["fast"]["median_step_s"]:
        result["graph_over_generate_engine_step"] = (
            paths["fast-generate"]["median_step_s"] / paths["fast"]["median_step_s"]
        )
    save()
    print(f"wrote {args.json} (last path: {last}); speedup per step: {result.get('speedup_median_step')}")
    return result


if __name__ == "__main__":
    main()
