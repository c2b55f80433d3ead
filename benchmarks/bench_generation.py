"""Generation paths and GRPO step time: plain `generate` vs static (compiled) KV cache.

    python benchmarks/bench_generation.py [--quick] [--json PATH]

Uses a randomly initialised model of SmolLM2-135M's shape (no download; a random model
never stops early, so every completion is exactly --new tokens). Ratios are against
plain `generate` measured in the same run. On CPU use --quick (tiny sizes).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def smollm2_shape():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_generate(model, batch: int, prompt: int, new: int, static: bool, repeats: int = 2) -> float:
    import torch

    ids = torch.randint(10, 40000, (batch, prompt), device=model.device)
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=True, pad_token_id=2)
    if static:
        kw["cache_implementation"] = "static"
    with torch.inference_mode():
        model.generate(ids, **kw)  # warm-up (pays compilation once)
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.generate(ids, **kw)
        sync()
    return (time.perf_counter() - t0) / repeats


def bench_grpo(
    model_dir: str, batch: int, gens: int, new: int, static: bool, steps: int, prompt_words: int = 300
) -> float:
    """Mean seconds per GRPO step (LoRA, TRL) after one warm-up step."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    times = []

    class T(TrainerCallback):
        def on_step_begin(self, *a, **k):
            sync()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            sync()
            times.append(time.perf_counter() - self.t)

    tok = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    ds = Dataset.from_list([{"prompt": "word " * prompt_words} for _ in range(batch * (steps + 1))])
    cfg = dict(
        output_dir="/tmp/bench_grpo",
        per_device_train_batch_size=batch,
        num_generations=gens,
        max_completion_length=new,
        max_steps=steps + 1,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        bf16=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
    )
    if static:
        cfg["cache_implementation"] = "static"
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[lambda completions, **kw: [float(len(c) % 7) for c in completions]],
        args=GRPOConfig(**cfg),
        train_dataset=ds,
        processing_class=tok,
        peft_config=LoraConfig(r=32, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=[T()],
    )
    trainer.train()
    return sum(times[1:]) / max(1, len(times) - 1)


def grpo_model_dir(model) -> str:
    """Save ``model`` with a tokenizer to a temp folder for :func:`bench_grpo` (TRL loads from disk)."""
    import tempfile

    from transformers import AutoTokenizer

    from utils.llm.models import IM_END

    d = tempfile.mkdtemp()
    model.save_pretrained(d)
    try:
        from utils.llm.models import embedded_checkpoint

        tok = AutoTokenizer.from_pretrained(embedded_checkpoint(verbose=False))
    except Exception:  # noqa: BLE001 - no embedded model (e.g. on a bare GPU box): a tiny tokenizer is enough
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        t = Tokenizer(models.WordLevel({"[UNK]": 0, "word": 1, IM_END: 2}, unk_token="[UNK]"))
        t.pre_tokenizer = pre_tokenizers.Whitespace()
        tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", eos_token=IM_END, pad_token=IM_END)
    tok.padding_side = "left"
    tok.save_pretrained(d)
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-grpo", action="store_true")
    args = ap.parse_args(argv)
    import torch
    import transformers
    from transformers import LlamaForCausalLM

    gpu = torch.cuda.is_available()
    batch, prompt, new, gens, steps = (64, 320, 512, 8, 2) if gpu and not args.quick else (4, 64, 16, 2, 1)
    torch.manual_seed(0)
    model = (
        LlamaForCausalLM(smollm2_shape()).to("cuda" if gpu else "cpu", torch.bfloat16 if gpu else torch.float32).eval()
    )
    results = {
        "device": torch.cuda.get_device_name(0) if gpu else f"CPU ({platform.processor() or 'x86_64'})",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "batch": batch,
        "prompt_tokens": prompt,
        "new_tokens": new,
        "rows": [],
    }

    def add(name, secs, base=None, tokens=batch * new):
        row = {
            "path": name,
            "seconds": round(secs, 3),
            "tokens_per_s": round(tokens / secs, 1) if tokens else None,
            "speedup_vs_plain": round(base / secs, 2) if base else 1.0,
        }
        results["rows"].append(row)
        print(
            f"{name:<34} {secs:8.2f} s  {row['tokens_per_s'] or '':>10} tok/s  x{row['speedup_vs_plain']}", flush=True
        )
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))

    plain = bench_generate(model, batch, prompt, new, static=False)
    add("generate, dynamic cache (plain)", plain)
    add("generate, static cache (compiled)", bench_generate(model, batch, prompt, new, static=True), plain)
    if not args.skip_grpo:
        d = grpo_model_dir(model)
        del model
        g_plain = bench_grpo(d, batch, gens, new, static=False, steps=steps)
        add("GRPO step, plain generate", g_plain, tokens=batch * new)
        add(
            "GRPO step, static cache",
            bench_grpo(d, batch, gens, new, static=True, steps=steps),
            g_plain,
            tokens=batch * new,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
