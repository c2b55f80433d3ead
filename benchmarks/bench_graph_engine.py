#!/usr/bin/env python
"""Generation for one GRPO step: transformers ``generate`` against FastRollouts' two engines, same copy, same run.

    python benchmarks/bench_graph_engine.py --json results/bench_graph_engine_cpu.json           # CPU: 2 x 4 answers
    python benchmarks/bench_graph_engine.py --prompts 8 --answers 8 --new 512 --json results/X.json   # a GPU

On the embedded model (``--model`` for another checkpoint) it generates ``--prompts`` x ``--answers`` sampled
answers of exactly ``--new`` tokens (the end-of-answer token held back, so every method does the same work)
for training prompts, ``--repeats`` times with each method, after one warm-up call (which compiles or records
CUDA graphs):

* ``generate``: transformers ``generate`` on the model, left-padded to the longest prompt (TRL's plain path);
* ``fast-generate``: ``FastRollouts(engine="generate")``: the merged copy, static cache, compiled on CUDA;
* ``fast-graph``: ``FastRollouts(engine="graph")``: the decoding step as one CUDA graph (eager on CPU), each
  group's prompt prefilled once;
* ``fast-graph-compiled``: the same with each layer's blocks compiled by ``torch.compile`` (fused kernels);
* ``fast-graph-step-compiled``: the same with the decoding step's whole forward compiled as one graph (fused
  across the blocks and the attention too);
* ``fast-graph-tf32``: the graph engine with fp32 matrix products on tensor cores (TF32; not exact: its greedy
  answers against ``fast-generate`` say how far).

It also checks that the copies' greedy answers are the same tokens as transformers' ``generate`` on the same
copy (``fast-generate``; the plain path on a GPU runs the bf16 policy, whose greedy answers differ from an fp32
copy's over 512 tokens). Medians land in one JSON with the command, versions and hardware.
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


#: The copies' methods: (name, FastRollouts engine, compile, tf32); "generate" is TRL's plain path.
FAST_METHODS = (
    ("fast-generate", "generate", None, False),
    ("fast-graph", "graph", False, False),
    ("fast-graph-compiled", "graph", True, False),
    ("fast-graph-step-compiled", "graph", "step", False),
    ("fast-graph-tf32", "graph", False, True),
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint (default: the embedded model)")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--answers", type=int, default=4, help="answers per prompt (the GRPO group)")
    ap.add_argument("--new", type=int, default=192, help="new tokens per answer")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="float32", help="the copy's dtype (and the model's on CPU)")
    ap.add_argument("--skip", default="", help="methods to leave out, e.g. fast-graph-compiled (slow to compile)")
    ap.add_argument("--greedy-reference", default=None, help="method the others' greedy answers are compared with")
    ap.add_argument("--profile", action="store_true", help="profile one sampled generation of each graph method")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    skip = set(args.skip.split(","))
    names = [n for n in ("generate", *(m[0] for m in FAST_METHODS)) if n not in skip]
    same = args.greedy_reference or ("fast-generate" if "fast-generate" in names else "generate")
    if same not in names:  # before anything loads
        ap.error(f"the greedy reference {same!r} is skipped: name one of {', '.join(names)} (--greedy-reference)")

    import torch
    from transformers import GenerationConfig

    from utils.env import hardware, package_versions
    from utils.llm.models import default_dtype, embedded_checkpoint, load_causal_lm
    from utils.profiles import get_profile, use_torch_threads
    from utils.task.data import load_split
    from utils.task.prompts import build_messages
    from utils.train.fast_rollouts import (
        FastRollouts,
        _sync,
        left_padded,
        profile_generation,
        sampling_config,
        trim_after_eos,
    )

    threads = use_torch_threads(get_profile("cpu"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    model, tok = load_causal_lm(args.model or str(embedded_checkpoint(verbose=False)), default_dtype(device.type))
    model.to(device).eval()
    rows = load_split("train", args.prompts)
    ids = [
        tok.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        for r in rows
    ]
    batch = [p for p in ids for _ in range(args.answers)]
    width = max(map(len, batch))
    bucket = -(-width // 64) * 64
    eos = [tok.eos_token_id]

    def config(sample: bool) -> GenerationConfig:
        return sampling_config(args.new, sample, eos, tok.pad_token_id, min_new=args.new if sample else 0)

    def plain(prompts, cfg):
        input_ids, mask = left_padded(prompts, max(map(len, prompts)), tok.pad_token_id)
        cfg.disable_compile = True
        with torch.no_grad():
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), generation_config=cfg)
        return trim_after_eos(out[:, input_ids.shape[1] :].cpu(), eos)

    fasts = {}
    for name, engine, compiled, tf32 in FAST_METHODS:
        if name in skip:
            continue
        fasts[name] = FastRollouts(prompt_bucket=bucket, engine=engine, dtype=dtype, compile=compiled, tf32=tf32)
        fasts[name].refresh(model, device, dtype)
    methods = {} if "generate" in skip else {"generate": lambda cfg, p=batch: plain(p, cfg)}
    for name, fast in fasts.items():
        methods[name] = lambda cfg, p=batch, fast=fast: fast.generate(p, cfg, eos)

    result = {
        "command": "python benchmarks/bench_graph_engine.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "hardware": hardware(),
        "threads": threads,
        "versions": package_versions(("torch", "transformers", "trl", "peft")),
        "settings": {**vars(args), "prompt_tokens": width, "copy_dtype": args.dtype},
        "methods": {},
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    greedy, failed, first = {}, {}, {}
    for name, run in list(methods.items()):
        try:  # a method that fails on this machine (say, a compiler error) is recorded, and the others still run
            t0 = time.perf_counter()
            greedy[name] = run(config(False))
            _sync(device)
            first[name] = round(time.perf_counter() - t0, 1)  # the first call: compilation and graph capture
            print(name, f"first call (greedy) {first[name]} s", flush=True)
            result["first_call_s"] = first
            out.write_text(json.dumps(result, indent=1))
        except Exception as exc:  # noqa: BLE001
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            print(name, "failed:", failed[name], flush=True)
            del methods[name]
            fasts.pop(name, None)
    result["failed"] = failed
    # Greedy identity only means something at the same precision: on a GPU the plain path runs the bf16 policy,
    # the copies run in --dtype, so the copies are compared with transformers' generate on the same copy.
    result["greedy_reference"] = same
    result["greedy_identical"] = {
        name: f"{sum(a == b for a, b in zip(answers, greedy[same]))} of {len(batch)}" if same in greedy else "-"
        for name, answers in greedy.items()
    }
    for name, run in methods.items():
        run(config(True))  # warm-up: compilation / CUDA-graph capture
        times = []
        for k in range(args.repeats):
            torch.manual_seed(k)
            _sync(device)
            t0 = time.perf_counter()
            answers = run(config(True))
            _sync(device)
            times.append(time.perf_counter() - t0)
        assert all(len(a) == args.new for a in answers), "every answer has exactly --new tokens"
        result["methods"][name] = {
            "seconds": [round(t, 3) for t in times],
            "median_s": round(median(times), 3),
            "per_token_step_ms": round(1e3 * median(times) / args.new, 2),
        }
        print(name, result["methods"][name], flush=True)
        out.write_text(json.dumps(result, indent=1))
    if args.profile:  # where a decoding step's time goes (kernels replayed from the CUDA graph, one by one)
        result["profile"] = {}
        for name, fast in fasts.items():
            if fast.engine != "graph":
                continue
            prof = profile_generation(fast, batch, config(True), eos)
            result["profile"][name] = {"per_step_ms": round(prof["total_ms"] / args.new, 3), **prof}
            print(name, "profile", json.dumps(result["profile"][name])[:400], flush=True)
            out.write_text(json.dumps(result, indent=1))
    if "generate" in result["methods"]:
        base = result["methods"]["generate"]["median_s"]
        result["speedup_over_generate"] = {n: round(base / m["median_s"], 2) for n, m in result["methods"].items()}
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result.get("speedup_over_generate")), same, json.dumps(result["greedy_identical"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
