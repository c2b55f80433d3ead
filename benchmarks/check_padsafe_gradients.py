#!/usr/bin/env python
"""Do left-padded training batches give NaN gradients with transformers' SDPA, and with the course's attention?

A GRPO step's batch holds several prompts of different lengths, left-padded (TRL does this), so the pad positions
are query rows with no key to attend to. This runs forward + backward over such batches, under ``sdpa`` and under
the course's ``sdpa_padsafe`` (:mod:`utils.llm.attention`), and counts batches whose loss or gradients are not
finite. The batches have the gpu profile's shape: 8 prompts of different lengths, 4 answers each by default (the
step's 8 would double the activations of this full fine-tune, about 60 GB). The model has SmolLM2-135M's shape with
random weights, so nothing needs carrying to the GPU; the real model's NaN steps are in the committed runs
(results/README.md, Performance: NaN-proof by construction).

    python benchmarks/check_padsafe_gradients.py --batches 20 --json results/padsafe_gradients_h100.json
    python benchmarks/check_padsafe_gradients.py --tiny   # CPU: a tiny model, a check that the code runs
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.llm.attention import register_padsafe_attention  # noqa: E402


def model_of_shape(tiny: bool, attn: str, device: str, dtype: torch.dtype):
    from bench_generation import smollm2_shape  # the embedded model's shape, as the other benchmarks build it
    from transformers import LlamaConfig, LlamaForCausalLM

    if tiny:
        cfg = LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512,
        )  # fmt: skip
    else:
        cfg = smollm2_shape()
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    model.set_attn_implementation(attn)
    return model.to(device, dtype).train()


def batch(gen: torch.Generator, prompts: int, answers: int, vocab: int, tiny: bool, device: str):
    """ids, attention mask and loss mask: prompts left-padded to the longest, answers right-padded."""
    lo, hi, a_lo, a_hi = (4, 12, 2, 10) if tiny else (250, 420, 100, 512)
    p_len = torch.randint(lo, hi, (prompts,), generator=gen).repeat_interleave(answers)
    a_len = torch.randint(a_lo, a_hi, (prompts * answers,), generator=gen)
    width_p, width_a = int(p_len.max()), int(a_len.max())
    ids = torch.randint(3, vocab, (len(p_len), width_p + width_a), generator=gen)
    pos = torch.arange(width_p + width_a)
    attention = (pos >= width_p - p_len[:, None]) & (pos < width_p + a_len[:, None])
    answer = (pos >= width_p) & attention
    return ids.to(device), attention.long().to(device), answer.to(device)


def run(attn: str, args, device: str, dtype: torch.dtype) -> dict:
    model = model_of_shape(args.tiny, attn, device, dtype)
    gen = torch.Generator().manual_seed(args.seed)
    bad, empty_rows, seconds = [], 0, []
    for i in range(args.batches):
        ids, attention, answer = batch(gen, args.prompts, args.answers, model.config.vocab_size, args.tiny, device)
        empty_rows += int((attention.cumsum(1) == 0).sum())  # left pads: queries with no earlier real key
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]  # model dtype: 64 x 930 x 49k
        logp = logits.gather(-1, ids[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)
        loss = -(logp * answer[:, 1:]).sum() / answer[:, 1:].sum()
        loss.backward()
        norms = torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])
        finite = bool(torch.isfinite(loss)) and bool(torch.isfinite(norms).all())
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
        if not finite:
            bad.append({"batch": i, "loss": float(loss), "nonfinite_grads": int((~torch.isfinite(norms)).sum())})
    return {
        "attention": attn,
        "batches": args.batches,
        "nonfinite_batches": len(bad),
        "first_nonfinite": bad[:5],
        "left_pad_queries": empty_rows,
        "median_s": round(sorted(seconds)[len(seconds) // 2], 4),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument(
        "--answers",
        type=int,
        default=4,
        help="per prompt (GRPO's 8 doubles the activations: about 60 GB, full fine-tune)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="a tiny model on CPU: checks that the code runs")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    import transformers

    out = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "dtype": str(dtype),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "runs": [run(a, args, device, dtype) for a in ("sdpa", register_padsafe_attention())],
    }
    for r in out["runs"]:
        print(
            f"{r['attention']:>13}: {r['nonfinite_batches']} of {r['batches']} batches with NaN/inf "
            f"(left-pad query positions: {r['left_pad_queries']}), {r['median_s']} s a batch",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
