#!/usr/bin/env python
"""How many kernels one decoding step of the graph engine launches, and what they are (a profile on CPU).

A CUDA graph replays a decoding step's kernels one after another; for the course's 135M model each is tiny (a
batch of 64 rows of 576 numbers), so the step's time is about (kernels) x (time a replayed kernel takes), not
bytes over bandwidth. This counts the operators one step runs (``utils/train/graph_decode.py``, the same aten
operators a GPU would run, each about one kernel; views launch none), for a GRPO step's batch of prompts x
answers with the embedded model's real shape, by operator and per layer. With a decoding step's measured GPU
time (``--step-ms``, from a results file) it gives the time per kernel, and how many kernels a 1 ms step allows.

    python benchmarks/count_decode_ops.py --step-ms 5.61 --json results/decode_ops_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Operators that only reinterpret memory (no kernel on a GPU).
VIEWS = frozenset(
    "view _unsafe_view reshape _reshape_alias transpose t permute slice select expand unsqueeze squeeze as_strided "
    "alias detach split split_with_sizes unbind chunk narrow lift_fresh empty empty_like empty_strided".split()
)


class OpLog(TorchDispatchMode):
    """Records the name of every aten operator dispatched inside it."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def kernels(ops: list[str]) -> Counter:
    """The operators of ``ops`` that launch a kernel, counted.

    >>> kernels(["view", "mm", "add", "transpose", "add"])
    Counter({'add': 2, 'mm': 1})
    """
    return Counter(o for o in ops if o not in VIEWS)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--answers", type=int, default=8)
    p.add_argument("--attended", type=int, default=256, help="new-token columns the step attends over")
    p.add_argument("--step-ms", type=float, default=None, help="a decoding step's measured GPU time (ms)")
    p.add_argument("--step-source", default=None, help="where --step-ms was measured (a results file)")
    p.add_argument(
        "--cpu-layout",
        action="store_true",
        help="gate and up as two products, as on a CPU (default: fused, as on a GPU)",
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from utils.llm.models import embedded_checkpoint, load_causal_lm
    from utils.task.data import load_split
    from utils.task.prompts import build_messages
    from utils.train.graph_decode import GraphDecoder

    torch.manual_seed(0)
    model, tok = load_causal_lm(str(embedded_checkpoint(verbose=False)), torch.float32)
    rows = load_split("test", args.prompts)
    chat = [tok.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=False) for r in rows]
    prompts = [tok(c, add_special_tokens=False)["input_ids"] for c in chat]
    batch = [ids for ids in prompts for _ in range(args.answers)]  # a GRPO step: each prompt's answers together
    new = args.attended + 16  # room for the step counted, after the generation that builds the state
    width = -(-max(map(len, prompts)) // 64) * 64  # FastRollouts' prompt bucket
    eos = [tok.eos_token_id]
    engine = GraphDecoder(model.eval(), fuse_mlp=not args.cpu_layout)  # on a CPU its default is the CPU's layout
    # Outside inference mode (``generate`` enters it; its inner ``_generate`` does not): there composite operators
    # (linear, matmul, to) reach the log as what they run (mm, bmm, the copies a reshape makes), and a dtype
    # conversion to the same dtype as nothing.
    with torch.no_grad():
        engine._generate(batch, new, eos, tok.pad_token_id, 1.0, width, 0)  # the step's state, as generate builds it
        state = next(iter(engine._states.values()))
        state.step.fill_(args.attended - 1)  # the step feeding token attended - 1 attends over `attended` columns
        with OpLog() as log:
            engine._step(state, args.attended)
    counts = kernels(log.ops)
    layers = model.config.num_hidden_layers
    total = sum(counts.values())
    out = {
        "command": " ".join(["benchmarks/count_decode_ops.py", *(argv if argv is not None else sys.argv[1:])]),
        "what": "aten operators one graph-engine decoding step runs (views excluded: they launch no kernel), "
        "embedded model (SmolLM2-135M shape, fp32 copy), counted on CPU with a TorchDispatchMode",
        "machine": platform.platform(),
        "versions": {"torch": torch.__version__},
        "settings": {
            "rows": len(batch),
            "prompts": args.prompts,
            "answers": args.answers,
            "attended": args.attended,
            "layout": "cpu (gate, up apart)" if args.cpu_layout else "gpu (gate and up fused)",
        },
        "layers": layers,
        "kernels_per_step": total,
        "kernels_per_layer": round(total / layers, 1),
        "by_operator": dict(counts.most_common()),
    }
    if args.step_ms:
        out["measured_step_ms"] = args.step_ms
        out["measured_step_source"] = args.step_source
        out["us_per_kernel"] = round(1e3 * args.step_ms / total, 2)
        out["kernels_for_a_1ms_step"] = int(1e3 / out["us_per_kernel"])
    print(f"{total} kernels per decoding step ({out['kernels_per_layer']} per layer x {layers} layers + the head)")
    for op, n in counts.most_common(12):
        print(f"  {op:>16} {n}")
    if args.step_ms:
        print(
            f"{args.step_ms} ms measured: {out['us_per_kernel']} us per kernel; a 1 ms step allows "
            f"{out['kernels_for_a_1ms_step']} kernels at that rate"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
