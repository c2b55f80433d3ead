"""Generating answers: which path, and batched generation for evaluation and probes.

One place picks how completions are generated, for evaluation and for GRPO's rollouts alike
(:func:`choose_generation`); ``COURSE_GENERATION`` forces a path, and says so:

* ``vllm``          - vLLM, when it is installed and imports, on a CUDA GPU (Colab);
* ``static-cache``  - a preallocated KV cache on a model with the LoRA adapter merged in: for evaluation,
  transformers ``generate`` compiled once (several times faster than the default on a GPU: ``benchmarks/``),
  the default on a CUDA GPU without vLLM. For GRPO's rollouts that model is a copy of the policy refreshed
  before every generation, decoding with :mod:`utils.train.graph_decode` (the whole step one CUDA graph on a
  GPU; each group's prompt prefilled once): the default for training with TRL everywhere, CPUs included;
* ``plain``         - ``model.generate`` with the default cache: evaluation on CPUs, where compiling does not pay.

With the Unsloth backend, training generates with Unsloth's own engine: vLLM when installed,
else its own ``generate`` (reported as ``plain``). Greedy by default, like the reference evaluation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..env import progress
from ..task.prompts import build_messages

PATHS = ("vllm", "static-cache", "plain")
GENERATION_ENV = "COURSE_GENERATION"


def vllm_usable() -> bool:
    """vLLM installed *and* importable (a wheel built for another CUDA fails at import)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means: do not use it
        print(
            f"vllm is installed but does not import ({type(exc).__name__}: {str(exc)[:150]}); "
            "generating with transformers instead"
        )
        return False
    return True


@dataclass(frozen=True)
class GenerationChoice:
    path: str
    reason: str


def requested_generation(purpose: str = "eval", backend: str = "trl", requested: str | None = None) -> GenerationChoice:
    """The path asked for (``auto`` when nothing is forced) and by whom, checked without looking at
    the hardware: a bad ``requested`` or ``$COURSE_GENERATION`` fails here with one line, before
    anything loads (scripts/train_grpo.py calls it first)."""
    if purpose not in ("eval", "train"):
        raise ValueError(f"purpose must be 'eval' or 'train', got {purpose!r}")
    forced_by = "the code"
    if requested in (None, "", "auto"):
        env = (os.environ.get(GENERATION_ENV) or "").strip()
        if env:
            forced_by = f"${GENERATION_ENV}"
        requested = env or "auto"
    requested = requested.strip().lower()
    if requested not in ("auto", *PATHS):
        where = f"${GENERATION_ENV}={requested!r}" if forced_by != "the code" else repr(requested)
        raise ValueError(f"generation path {where} is not one of {PATHS} or auto")
    if purpose == "train" and backend == "unsloth" and requested == "static-cache":
        raise ValueError(
            "with the unsloth backend, training generates with Unsloth's own engine: "
            "choose 'vllm' or 'plain' (or the trl backend for static-cache)"
        )
    return GenerationChoice(requested, f"chosen by {forced_by}")


def choose_generation(purpose: str = "eval", backend: str = "trl", requested: str | None = None) -> GenerationChoice:
    """How completions are generated for ``purpose`` (``"eval"`` or ``"train"``), and why.

    ``requested`` (or ``$COURSE_GENERATION`` when it is ``None``/``"auto"``) forces a path."""
    from ..profiles import has_cuda

    asked = requested_generation(purpose, backend, requested)
    if asked.path != "auto":
        if GENERATION_ENV in asked.reason:
            print(f"generation: {asked.path!r} from ${GENERATION_ENV}")
        return asked
    if not has_cuda():
        if purpose == "train" and backend == "trl":
            return GenerationChoice(
                "static-cache",
                "no CUDA GPU: a merged copy of the policy decodes on fixed tensors, each group's prompt prefilled "
                "once (GRPO steps about a quarter faster than TRL's generate on 2 cores; utils.train.graph_decode)",
            )
        return GenerationChoice("plain", "no CUDA GPU: compiling the decoding step does not pay on a CPU")
    if vllm_usable():
        return GenerationChoice("vllm", "vLLM is installed and imports")
    if purpose == "train" and backend == "unsloth":
        return GenerationChoice("plain", "Unsloth's own generate (vLLM is not installed)")
    if purpose == "train":
        return GenerationChoice(
            "static-cache",
            "CUDA without vLLM: a merged copy of the policy, refreshed every "
            "step, generates with a static KV cache compiled once (utils.train.fast_rollouts)",
        )
    return GenerationChoice("static-cache", "CUDA without vLLM: static KV cache, compiled once")


def generate_completions(
    model,
    tokenizer,
    rows: Sequence[dict],
    max_new_tokens: int = 768,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    path: str | None = None,
    desc: str = "generating",
) -> list[str]:
    """One completion per row, in order, with transformers (paths ``static-cache``/``plain``)."""
    import torch

    path = choose_generation("eval", requested=path).path
    if path == "vllm":
        path = (
            "static-cache" if torch.cuda.is_available() else "plain"
        )  # vLLM needs a saved model: see generate_with_vllm
    prompts = [
        tokenizer.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=False) for r in rows
    ]
    tokenizer.padding_side = "left"
    out: list[str] = [""] * len(prompts)
    bar = progress(len(prompts), desc)
    gen_kwargs = dict(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if do_sample:
        gen_kwargs["temperature"] = temperature
    if path == "static-cache":
        gen_kwargs["cache_implementation"] = "static"
    # Longest prompts first so padding inside a batch stays small.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            gen = model.generate(**enc, **gen_kwargs)
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for i, t in zip(idx, texts):
                out[i] = t
            bar.update(len(idx))
    bar.close()
    return out


def generate_with_vllm(
    model_dir: str, rows: Sequence[dict], max_new_tokens: int = 768, gpu_memory_utilization: float = 0.5
) -> list[str]:
    """Greedy completions with vLLM from a saved (merged) model folder. Needs vllm + a GPU."""
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [
        tokenizer.apply_chat_template(build_messages(r), add_generation_prompt=True, tokenize=False) for r in rows
    ]
    llm = LLM(model=model_dir, gpu_memory_utilization=gpu_memory_utilization, max_model_len=4096)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    return [o.outputs[0].text for o in llm.generate(prompts, params)]


def model_completions(
    source: str,
    rows: Sequence[dict],
    adapter: str | None = None,
    max_new_tokens: int = 768,
    batch_size: int = 32,
    path: str | None = None,
    desc: str = "generating",
) -> tuple[list[str], float, str]:
    """Greedy completions of a model (+ LoRA adapter) for ``rows``: (texts, seconds, path used).

    With vLLM usable the adapter is merged into a saved copy first (vLLM loads folders); if
    vLLM fails for any reason the transformers path takes over, with a message."""
    path = choose_generation("eval", requested=path).path
    t0 = time.perf_counter()
    if path == "vllm":
        try:
            model_dir = source
            if adapter is not None:
                import tempfile

                from ..paths import output_dir
                from .models import merge_and_save

                model_dir = str(
                    merge_and_save(source, adapter, Path(tempfile.mkdtemp(dir=output_dir(), prefix="merged-")))
                )
            return generate_with_vllm(model_dir, rows, max_new_tokens), time.perf_counter() - t0, "vllm"
        except Exception as exc:  # noqa: BLE001 - any vLLM trouble: fall back, do not lose the evaluation
            print(f"vLLM generation failed ({type(exc).__name__}: {str(exc)[:200]}); using transformers instead")
            import torch

            path = "static-cache" if torch.cuda.is_available() else "plain"
            t0 = time.perf_counter()
    from .models import load_model

    model, tokenizer = load_model(source, adapter=adapter)
    texts = generate_completions(
        model, tokenizer, rows, max_new_tokens=max_new_tokens, batch_size=batch_size, path=path, desc=desc
    )
    del model
    return texts, time.perf_counter() - t0, path
