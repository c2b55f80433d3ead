#!/usr/bin/env python
"""Is the fast copy the policy? The same sampled tokens scored by the copy and by the PEFT policy.

    python scripts/check_fast_rollouts.py --base WARM_START --adapter GRPO_ADAPTER --json results/X.json
    python scripts/check_fast_rollouts.py --tiny --json outputs/check_tiny.json     # CPU, tiny random model

For each dtype of the copy (bf16, the old default; fp32, the default now) and each engine (``graph``: the whole
decoding step one CUDA graph, the default; ``generate``: transformers generate) it refreshes the copy from the
policy (warm start + trained LoRA, loaded as the trainer holds it: bf16 base, fp32 adapter), samples
``--prompts`` x ``--samples`` answers of the test set with the copy (temperature 1, up to ``--max-new``
tokens) and compares, token by token, the copy's log-probabilities (what ``rollout_func`` returns to TRL)
with the policy's for the same tokens: a bf16-autocast forward like TRL's loss, and an fp32 forward of
the same weights (the exact policy, to tell the copy's error from the bf16 forward's own noise).
It also counts the prompts whose greedy answer is the same from the copy and from the policy
(plain ``generate``), times a GRPO-sized generation (8 prompts x 8) and profiles one (the top operators),
and, after the first copy's row, counts the batches whose logits were not finite over ``--nan-calls``
generations of mixed prompt lengths (left padding) with the fp32 copy.
Everything lands in one JSON, rewritten after each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import median

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def stats(diff) -> dict:
    """Summary of per-token log-prob differences (copy - policy)."""
    import torch

    d = diff.double()
    a = d.abs()
    return {
        "tokens": int(d.numel()),
        "mean_abs": float(a.mean()),
        "mean_signed": float(d.mean()),
        "p99_abs": float(torch.quantile(a.float(), 0.99)),
        "max_abs": float(a.max()),
        "share_above_0.1": float((a > 0.1).double().mean()),
    }


def policy_logprobs(policy, prompt, completion, device, autocast: bool):
    """Log-probs of ``completion`` after ``prompt``: bf16 autocast (TRL's loss) or the model's own dtype."""
    import torch

    ids = torch.tensor([list(prompt) + list(completion)], device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = policy(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(completion, device=device)[:, None]).squeeze(1).cpu()


def load(args):
    """(policy, tokenizer, prompt ids of the test set, prompt ids of the train set, device)."""
    import torch

    from utils.llm.models import default_dtype, embedded_checkpoint, load_causal_lm, load_tokenizer
    from utils.task.data import load_split
    from utils.task.prompts import build_messages

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if args.tiny:
        from peft import LoraConfig, get_peft_model

        sys.path.insert(0, str(ROOT / "tests"))
        from helpers import tiny_llama

        tok = load_tokenizer(str(embedded_checkpoint(verbose=False)))
        policy = get_peft_model(
            tiny_llama(tok).to(torch.bfloat16),
            LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
        )
    else:
        from peft import PeftModel

        model, tok = load_causal_lm(args.base, default_dtype(device.type))  # as the trainer holds it
        policy = PeftModel.from_pretrained(model, args.adapter)  # adapter weights in fp32 (PEFT's autocast)
    policy.to(device).eval()

    def ids(split: str, n: int) -> list[list[int]]:
        rows = load_split(split, n)
        out = [
            tok.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
            for r in rows
        ]
        return [o[-args.cut :] for o in out] if args.cut else out

    return policy, tok, ids("test", 100), ids("train", 500), device


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="the warm-start checkpoint the adapter sits on")
    ap.add_argument("--adapter", help="the trained LoRA adapter folder")
    ap.add_argument("--tiny", action="store_true", help="CPU: tiny random model, tiny settings")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=512)
    ap.add_argument("--nan-calls", type=int, default=20, help="generations of 64 for the NaN count")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="copies to check, in order (the default first)")
    ap.add_argument(
        "--engines", default="graph,generate", help="FastRollouts engines to check on each copy (the default first)"
    )
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profiled generation")
    ap.add_argument("--cut", type=int, default=0, help="keep only the last N prompt tokens (tiny runs)")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    if not args.tiny and not (args.base and args.adapter):
        ap.error("--base and --adapter are needed (or --tiny)")
    if args.tiny:
        args.prompts, args.samples, args.max_new, args.nan_calls, args.cut = 2, 2, 8, 2, args.cut or 40

    import torch
    from transformers import GenerationConfig

    from utils.env import error_line, hardware, package_versions
    from utils.train.fast_rollouts import FastRollouts, left_padded, profile_generation, sampling_config

    torch.manual_seed(0)
    try:
        policy, tok, test_ids, train_ids, device = load(args)
    except (OSError, ValueError, RuntimeError) as exc:  # a wrong --base or --adapter, no internet: one line
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    eos = [tok.eos_token_id]
    result = {
        "command": "python scripts/check_fast_rollouts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "hardware": hardware(),
        "versions": package_versions(("torch", "transformers", "trl", "peft")),
        "settings": vars(args),
        "copies": {},
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    save = lambda: out.write_text(json.dumps(result, indent=1))  # noqa: E731

    def config(sample: bool, max_new: int) -> GenerationConfig:
        return sampling_config(max_new, sample, eos, tok.pad_token_id)

    prompts = [p for p in test_ids[: args.prompts] for _ in range(args.samples)]
    bucket = -(-max(map(len, test_ids + train_ids)) // 64) * 64
    # The policy's own greedy answers (plain generate on the PEFT model, as TRL's plain path).
    width = max(map(len, test_ids[: args.prompts]))
    pad, mask = left_padded(test_ids[: args.prompts], width, tok.pad_token_id)
    t0 = time.perf_counter()
    with torch.no_grad():
        seqs = policy.generate(
            input_ids=pad.to(device), attention_mask=mask.to(device), generation_config=config(False, args.max_new)
        )
    from utils.train.fast_rollouts import trim_after_eos

    policy_greedy = trim_after_eos(seqs[:, width:].cpu(), eos)
    result["policy_greedy_seconds"] = round(time.perf_counter() - t0, 1)

    import copy

    policy32 = copy.deepcopy(policy).float()  # the same weights, an fp32 forward: the exact policy
    combos = [(name, engine) for name in args.dtypes.split(",") for engine in args.engines.split(",")]
    for index, (name, engine) in enumerate(combos):
        dtype = getattr(torch, name)
        fast = FastRollouts(prompt_bucket=bucket, dtype=dtype, engine=engine)
        fast.refresh(policy, device, dtype)
        torch.manual_seed(1)
        completions = fast.generate(prompts, config(True, args.max_new), eos)
        copy_lp = torch.cat([torch.tensor(lp) for lp in fast.last_logprobs])
        bf16 = torch.cat([policy_logprobs(policy, p, c, device, True) for p, c in zip(prompts, completions)])
        fp32 = torch.cat([policy_logprobs(policy32, p, c, device, False) for p, c in zip(prompts, completions)])
        greedy = fast.generate(test_ids[: args.prompts], config(False, args.max_new), eos)
        same = sum(a == b for a, b in zip(greedy, policy_greedy))
        row = {
            "copy_vs_policy_bf16_forward": stats(copy_lp - bf16),
            "copy_vs_policy_fp32_forward": stats(copy_lp - fp32),
            "policy_bf16_vs_fp32_forward": stats(bf16 - fp32),
            "mean_logprob_copy": float(copy_lp.mean()),
            "mean_logprob_policy_bf16": float(bf16.mean()),
            "greedy_identical": f"{same} of {args.prompts}",
        }
        # GRPO-sized generation: 8 prompts x 8 answers, the first call compiles.
        batch = [p for p in train_ids[:8] for _ in range(8)]
        times = []
        for k in range(4):
            torch.manual_seed(10 + k)
            fast.generate(batch, config(True, args.max_new), eos)
            times.append(fast.history[-1])
        row["generation_64"] = {
            "first_s": round(times[0].generate_s, 2),
            "median_s": round(median(t.generate_s for t in times[1:]), 3),
            "median_decode_step_ms": round(median(1e3 * t.generate_s / max(t.decode_steps, 1) for t in times[1:]), 2),
        }
        if args.profile:  # where a generation's time goes: the top operators by device (or CPU) time
            row["profile"] = profile_generation(fast, batch, config(True, args.max_new), eos)
        row["engine"] = fast.history[-1].path
        result["copies"][f"{name}/{engine}"] = row
        print(name, engine, json.dumps(row), flush=True)
        save()
        del fast
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if index == 0:  # the default copy's NaN count comes before the other rows (a time limit cuts the last)
            result["nonfinite"] = nonfinite_count(
                args, policy, train_ids, bucket, device, config(True, args.max_new), eos, engine
            )
            save()
            print(json.dumps(result["nonfinite"]), flush=True)
    return 0


def nonfinite_count(args, policy, train_ids, bucket, device, sample_config, eos, engine: str) -> dict:
    """Generations of 64 answers from 8 varied prompts (mixed lengths: left padding), fp32 copy, the given
    engine: how many calls met non-finite logits."""
    import torch

    from utils.train.fast_rollouts import FastRollouts

    fast = FastRollouts(prompt_bucket=bucket, engine=engine)
    fast.refresh(policy, device, torch.float32)
    hits, sequences = 0, 0
    for k in range(args.nan_calls):
        group = [train_ids[(8 * k + j) % len(train_ids)] for j in range(8)]
        group[0] = group[0][-max(8, len(group[0]) // 3) :]  # one short prompt: many pad rows in the batch
        try:
            fast.generate([p for p in group for _ in range(8)], sample_config, eos)
        except Exception as exc:  # noqa: BLE001 - NonFiniteLogits or anything else: count it
            hits += 1
            print(f"call {k}: {type(exc).__name__}: {exc}", flush=True)
        sequences += 64
    del fast
    return {"engine": engine, "calls": args.nan_calls, "sequences": sequences, "calls_with_nonfinite_logits": hits}


if __name__ == "__main__":
    sys.exit(main())
