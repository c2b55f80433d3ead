"""Fast GRPO rollouts for TRL's ``GRPOTrainer``: a merged, compiled inference copy of the LoRA policy.

Why: on a GPU, TRL's plain ``generate`` on the PEFT model spends a GRPO step launching kernels, not
moving memory (every decoding step runs ~2k small kernels: the unmerged LoRA layers, the dynamic
KV cache). This module generates with a *second*, inference-only copy of the policy instead:

* the LoRA deltas are merged into it (``W + scaling * B @ A``), so a decoding step is the plain
  model's; the merge is redone **before every generation**, writing into the copy's existing
  tensors in place, so the rollouts stay on-policy and compiled graphs / CUDA graphs (which hold
  those tensor addresses) stay valid;
* it decodes with the graph engine (:mod:`utils.train.graph_decode`, the default): the Llama step written out
  on fixed tensors, recorded once as a CUDA graph and replayed, each group's prompt prefilled once, no empty
  attention row by construction. Sampling settings it does not compute (top-k, top-p, min-p, repetition
  penalty, banned tokens) switch to the ``generate`` engine: transformers' ``generate`` with a static KV
  cache (``StaticCache``, kept and reset between calls so its addresses never change) and prompts
  left-padded to one fixed length ("bucket"), so transformers compiles the decoding step once (on CUDA:
  ``torch.compile`` mode "reduce-overhead", i.e. CUDA graphs) and replays it.

Usage (TRL 1.14.2)::

    fast = FastRollouts(prompt_bucket=448)
    trainer = GRPOTrainer(model, reward_funcs, args=config, ..., rollout_func=fast.rollout_func)

TRL calls ``rollout_func(prompts, trainer)`` itself, so no bind step is needed. One
``FastRollouts`` per process (under ``accelerate launch`` each process builds its own copy on its
own device). The copy is built lazily at the first rollout, from the weights the trainer holds
then, so resuming from a checkpoint works. Timings of every call are in ``history``.

The rollout_func contract (TRL 1.14.2, ``GRPOTrainer._generate``; ``test_fast_rollouts.py`` guards it):

* called as ``rollout_func(prompts, trainer)`` once per generation batch, on every process, in
  train and eval mode; ``prompts`` is this process's slice of the generation batch, raw dataset
  ``prompt`` values (chat message lists or strings, deep-copied, *not* templated), already repeated
  ``num_generations`` times by TRL's ``RepeatSampler`` (``[p0]*G + [p1]*G + ...``; the docstring
  saying "no duplication" is wrong for 1.14.2): return exactly one completion per entry, in order;
* it must return a dict with ``prompt_ids`` (list of unpadded token-id lists), ``completion_ids``
  (list of unpadded token-id lists) and ``logprobs`` (``None`` or per-token lists); TRL pads both
  itself (prompts left, completions right, ``pad_to_multiple_of``). Other keys go to the reward
  functions as keyword arguments, one value per completion (TRL writes ``values[i]`` of a list, or
  the value itself, into each input row, and the rewards get a list over the rows);
  ``env_mask`` is special (a tool mask);
* TRL does *not* trim completions after the hook: its plain path cuts after the first token in
  ``trainer.eos_token_ids`` (EOS kept), so this hook does the same. TRL still applies
  ``mask_truncated_completions`` (a completion is "truncated" when its last id is neither an EOS
  nor the pad id), decodes completions for the rewards, computes old log-probs when
  ``gradient_accumulation_steps % (steps_per_generation * num_iterations) != 0`` and the reference
  log-probs when ``beta != 0``;
* ``logprobs=None`` is accepted and is exactly what the plain path passes on; real values would
  only feed the vLLM importance-sampling correction and ``off_policy_mask_threshold``;
* sampling settings: the plain path builds ``trainer.generation_kwargs`` (max_new_tokens =
  max_completion_length, do_sample=True, temperature, top_p, top_k, min_p, repetition_penalty,
  eos_token_id = trainer.eos_token_ids, pad/bos ids, cache_implementation, then
  ``args.generation_kwargs`` on top) and ``trainer.generation_config`` from them; this hook uses
  those same kwargs, changing only the cache and compilation.

Known differences from the plain path (none matters for the course's settings): the copy has no
LoRA dropout (the plain path samples with the policy in train mode, so ``lora_dropout > 0`` is
active there; the course uses 0); every row is left-padded to the bucket, so with
``repetition_penalty != 1`` the pad id (= EOS for SmolLM2) is penalised in every row rather than
all but the longest (the course uses 1.0); the fp32 copy computes in fp32 while TRL's loss runs the
policy in bf16 (the policy's own bf16 forward is about 0.01 nats per token from its fp32 forward, measured
on an H100): the logged ``rollouts/logp_diff_abs`` shows what remains. The copy attends with
:data:`~utils.llm.attention.PADSAFE_ATTENTION`, as the policy does, so a left-padded batch can never produce
NaN through an empty attention row.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

import torch
from torch import nn
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, PreTrainedModel

from ..llm.attention import register_padsafe_attention
from .graph_decode import GraphDecoder, supports
from .monitor import log_metrics

TESTED_TRL = "1.14.2"
ENGINES = ("auto", "graph", "generate")


@dataclass
class RolloutTiming:
    """One generation call: what was done and how long it took (seconds, device-synchronised)."""

    step: int  # trainer.state.global_step at the call (-1 outside a trainer)
    batch: int  # sequences generated
    prompt_width: int  # padded prompt length used (the bucket, or the longest prompt on the fallback)
    decode_steps: int  # new positions generated (generate stops once every sequence has ended)
    merge_s: float  # refreshing the copy from the policy (0 when called without a policy)
    generate_s: float  # the generation, prefill included
    path: str  # "graph", "static" (generate, bucketed, compiled on CUDA), "fallback" (too long: plain generate)
    # or "nonfinite-fallback"


class FastRollouts:
    """Generates GRPO rollouts with a merged inference copy of a (PEFT) policy.

    Args:
        prompt_bucket: padded prompt length. ``None``: the first batch's longest prompt rounded up
            to ``bucket_multiple``. Pass one that holds the dataset's longest prompt to compile once.
        bucket_multiple: rounding for automatic and enlarged buckets.
        max_prompt_bucket: longer prompts than this use plain ``generate`` (no static cache, no
            compilation) rather than a new, ever larger compiled shape.
        dtype: dtype of the copy. ``None``: fp32 (default, "exact"): a LoRA delta merged into bf16 weights
            is mostly rounded away (bf16 keeps 8 bits of mantissa; a delta 1/500 of a weight vanishes), so
            a bf16 copy samples from a sharper, older policy than the one TRL trains (measured on an H100
            after 150 steps: |copy - policy| 0.020 nats per sampled token, +0.0065 signed;
            ``results/fast_rollouts_check_h100.json``). 135M parameters in fp32 are 0.5 GB; decoding was
            about 3x slower than with the bf16 copy there (results/README.md, Performance). Pass ``torch.bfloat16`` for
            the faster, inexact copy.
        compile: let transformers compile the decoding step (``None``: on CUDA only, where it also
            captures CUDA graphs; transformers skips compilation on CPU unless the generation config's
            ``compile_config._compile_all_devices`` is set, which the optional compile test does).
            With the graph engine: ``True`` compiles each layer's blocks (fewer, fused kernels in the CUDA graph);
            ``"step"`` compiles the decoding step's whole forward, every layer in one graph (fused across
            blocks too); ``None`` / ``False``: not compiled (the default until it is measured on a GPU).
        engine: ``"graph"``: :class:`~utils.train.graph_decode.GraphDecoder` (the whole decoding step one
            CUDA graph, prompts of a group prefilled once, no empty attention row by construction);
            ``"generate"``: transformers ``generate`` with a static cache; ``"auto"`` (default): graph
            when it supports the model and the sampling settings (:func:`~utils.train.graph_decode.supports`),
            else generate.
        tf32: the graph engine multiplies fp32 matrices on tensor cores (TF32). Faster on a GPU, not exact;
            off by default until its mismatch against a bf16 policy is measured.
    """

    def __init__(
        self,
        prompt_bucket: int | None = None,
        bucket_multiple: int = 64,
        max_prompt_bucket: int = 2048,
        dtype: torch.dtype | None = None,
        compile: bool | str | None = None,
        engine: str = "auto",
        tf32: bool = False,
    ):
        if engine not in ENGINES:
            raise ValueError(f"engine={engine!r}: one of {', '.join(ENGINES)}")
        if compile not in (None, False, True, "step"):
            raise ValueError(f"compile={compile!r}: None, False, True (each layer's blocks) or 'step' (the whole step)")
        self.engine = engine
        self.prompt_bucket = prompt_bucket
        self.bucket_multiple = bucket_multiple
        self.max_prompt_bucket = max_prompt_bucket
        self.dtype = dtype
        self.compile = compile
        self.tf32 = tf32
        self.infer: PreTrainedModel | None = None  # the inference copy, built at the first refresh
        self.history: list[RolloutTiming] = []
        self.last_output: Any = None
        self.last_logprobs: list[list[float]] | None = None  # per sampled token, of the last generate()
        self.nonfinite_fallbacks = 0  # batches the policy generated because the copy gave NaN/inf logits
        self._plan: _MergePlan | None = None
        self._plan_key: tuple | None = None
        self._caches: dict[tuple[int, int], tuple[Any, int]] = {}  # (batch, width) -> (StaticCache, length)
        self._graph: GraphDecoder | None = None  # the graph engine, on the current copy
        self._said_dtype = False

    # ------------------------------------------------------------------ the TRL hook
    def rollout_func(self, prompts: list, trainer) -> dict[str, Any]:
        """TRL's ``rollout_func`` (TRL calls it with this process's prompts and itself).

        Tokenises like TRL, refreshes the copy from the trainer's current weights, generates one
        completion per prompt with TRL's sampling settings, trims like TRL.
        """
        if getattr(trainer, "use_vllm", False):
            raise ValueError("use_vllm=True: leave rollout_func unset (FastRollouts replaces transformers generate)")
        if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
            raise NotImplementedError("FastRollouts needs the full policy weights on every process (DDP or one GPU)")
        # TRL's own tokenisation (chat template, tools, chat_template_kwargs): the same prompt ids as the plain path.
        prompt_ids, images, _ = trainer._tokenize_prompts(prompts)
        if images is not None:
            raise NotImplementedError("FastRollouts handles text prompts only")
        prompt_ids = [[int(t) for t in ids] for ids in prompt_ids]
        policy = trainer.accelerator.unwrap_model(trainer.model)
        log_sampling_mismatch(trainer)  # once per trainer (idempotent)
        merge_s = self.refresh(policy, trainer.accelerator.device, self.dtype or self._copy_dtype(policy))
        config = GenerationConfig(**trainer.generation_kwargs)  # exactly the plain path's sampling settings
        step = trainer.state.global_step
        try:
            completion_ids = self.generate(prompt_ids, config, trainer.eos_token_ids, step=step)
            logprobs = self.last_logprobs
        except NonFiniteLogits as exc:
            completion_ids = self._plain_fallback(policy, prompt_ids, config, trainer.eos_token_ids, step, exc)
            logprobs = None  # the policy itself sampled: TRL's plain path passes None too
        self.history[-1].merge_s = merge_s
        self._log(trainer, self.history[-1])
        # The copy's log-probability of each sampled token. TRL 1.14 (and 1.16) stores them as
        # ``sampling_per_token_logps`` and reads them only for ``off_policy_mask_threshold`` (its importance-
        # sampling correction and mismatch metrics run with vLLM only): log_sampling_mismatch logs the mismatch.
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs}

    def _copy_dtype(self, policy: nn.Module) -> torch.dtype:
        """fp32 (exact) while that copy takes at most ``FP32_COPY_MAX_GIB``, else the policy's own dtype, said once."""
        dtype = copy_dtype(policy)
        if dtype != torch.float32 and not self._said_dtype:
            self._said_dtype = True
            print(
                f"FastRollouts: the rollout copy is {str(dtype).removeprefix('torch.')}, not fp32: an fp32 copy of "
                f"this model would take {fp32_copy_gib(policy):.0f} GiB (over {FP32_COPY_MAX_GIB:g}); its samples "
                "are slightly off-policy (rollouts/logp_diff_abs says how far). COURSE_GENERATION=plain samples from "
                "the policy."
            )
        return dtype

    def _log(self, trainer, timing: RolloutTiming) -> None:
        """The call's timings and the fallback count, into TRL's metrics (averaged at each log, in log_history)."""
        log_metrics(
            trainer,
            {
                "rollouts/generate_s": timing.generate_s,
                "rollouts/merge_s": timing.merge_s,
                "rollouts/decode_step_ms": 1e3 * timing.generate_s / max(timing.decode_steps, 1),
                "rollouts/nonfinite_batches": float(self.nonfinite_fallbacks),
            },
        )

    def _plain_fallback(self, policy, prompt_ids, config, eos_token_ids, step: int, exc: Exception) -> list[list[int]]:
        """The copy gave non-finite logits (seen on an H200, rarely, cause not found): this batch is
        generated by the policy itself, as TRL's plain path would, and the copy is rebuilt next time."""
        self.nonfinite_fallbacks += 1
        warnings.warn(
            f"FastRollouts: {exc} at step {step}; this batch is generated by the policy itself (plain "
            f"generate) and the copy is rebuilt ({self.nonfinite_fallbacks} time(s) so far)",
            stacklevel=3,
        )
        self.infer, self._plan, self._plan_key, self._graph = None, None, None, None
        self.release_caches()
        device = next(policy.parameters()).device
        width = max(len(p) for p in prompt_ids)
        input_ids, attention_mask = left_padded(prompt_ids, width, config.pad_token_id)
        plain = copy.deepcopy(config)
        plain.cache_implementation, plain.disable_compile = None, True
        _sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = policy.generate(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), generation_config=plain
            )
        _sync(device)
        sequences = out.sequences if hasattr(out, "sequences") else out
        completions = sequences[:, width:].cpu()
        eos = list(eos_token_ids) if eos_token_ids is not None else _as_list(config.eos_token_id)
        self.history.append(
            RolloutTiming(
                step, len(prompt_ids), width, completions.size(1), 0.0, time.perf_counter() - t0, "nonfinite-fallback"
            )
        )
        return trim_after_eos(completions, eos)

    # ------------------------------------------------------------------ weights
    @torch.no_grad()
    def refresh(
        self, policy: nn.Module, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> float:
        """Write the policy's current merged weights into the copy (built on first use); returns seconds."""
        device = torch.device(device) if device is not None else next(policy.parameters()).device
        _sync(device)
        t0 = time.perf_counter()
        base = _base_model(policy)
        if self.infer is None:
            self.infer = _blank_copy(base, device, dtype or base.get_input_embeddings().weight.dtype)
        # A PeftModel's active adapters (a plain transformers model has a method of that name: no adapters).
        adapters = getattr(policy, "active_adapters", ()) if hasattr(policy, "get_base_model") else ()
        key = (id(policy), tuple(adapters or ()))
        if self._plan is None or key != self._plan_key:  # adapters switched (or a new policy): re-map names
            self._plan, self._plan_key = _MergePlan.build(base, self.infer), key
        self._plan.apply()
        _sync(device)
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        config: GenerationConfig,
        eos_token_ids: Sequence[int] | None = None,
        step: int = -1,
    ) -> list[list[int]]:
        """One completion per prompt with the copy, trimmed like TRL (up to and including the first EOS).

        ``config`` carries the sampling settings (TRL's); only the cache and compilation are changed here.
        """
        if self.infer is None:
            raise RuntimeError("call refresh(policy) first (rollout_func does it)")
        device = self.infer.device
        longest = max(len(p) for p in prompt_ids)
        width = self._bucket_for(longest)
        if width is not None and self.engine_for(config) == "graph":
            try:
                return self._generate_graph(prompt_ids, config, eos_token_ids, width, step)
            except NonFiniteLogits:
                raise
            except Exception as exc:  # noqa: BLE001 - chosen by "auto": fall back to generate, once and loudly
                if self.engine == "graph":
                    raise
                warnings.warn(
                    f"FastRollouts: the graph engine failed ({type(exc).__name__}: {str(exc)[:200]}); "
                    "generating with transformers generate from now on (engine='generate')",
                    stacklevel=3,
                )
                self.engine, self._graph = "generate", None
        config = copy.deepcopy(config)
        cache = None
        if width is not None:
            # One StaticCache per (batch, width), reset and reused: its tensors keep their addresses, so the
            # CUDA graphs recorded for the decoding step replay instead of re-recording on every call.
            cache = self._static_cache(len(prompt_ids), width, width + config.max_new_tokens)
            config.cache_implementation = None  # a cache object is passed instead
            config.disable_compile = not (self.compile if self.compile is not None else device.type == "cuda")
            path = "static"
        else:  # too long for any bucket: plain generate, padded to this batch only, never compiled
            width, path = longest, "fallback"
            config.cache_implementation = None
            config.disable_compile = True
        input_ids, attention_mask = left_padded(prompt_ids, width, config.pad_token_id)
        # Our config replaces the copy's own one, so no default of the checkpoint leaks into sampling.
        self.infer.generation_config = config
        _sync(device)
        t0 = time.perf_counter()
        guard = _NonFiniteGuard()
        recorder = _SampledLogprobs(config.temperature if config.do_sample else 1.0)
        out = self.infer.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=config,
            logits_processor=LogitsProcessorList([guard, recorder]),
            **({"past_key_values": cache} if cache is not None else {}),
        )
        _sync(device)
        if guard.rows_hit():  # one device-to-host read per generation
            raise NonFiniteLogits(f"non-finite logits in {guard.rows_hit()} of {len(prompt_ids)} rows")
        seconds = time.perf_counter() - t0
        self.last_output = out  # the raw generate output (with logits when the config asks for them)
        sequences = out.sequences if hasattr(out, "sequences") else out
        completions = sequences[:, width:].cpu()
        eos = list(eos_token_ids) if eos_token_ids is not None else _as_list(config.eos_token_id)
        self.history.append(RolloutTiming(step, len(prompt_ids), width, completions.size(1), 0.0, seconds, path))
        trimmed = trim_after_eos(completions, eos)
        logps = recorder.sampled(sequences[:, width:]).cpu()
        self.last_logprobs = [logps[row, : len(ids)].tolist() for row, ids in enumerate(trimmed)]
        return trimmed

    def engine_for(self, config: GenerationConfig) -> str:
        """The engine that generates with ``config``: ``"graph"`` or ``"generate"`` (see ``engine``)."""
        if self.engine != "auto":
            return self.engine
        return "graph" if self.infer is not None and supports(self.infer, config) is None else "generate"

    def _generate_graph(
        self, prompt_ids: Sequence[Sequence[int]], config: GenerationConfig, eos_token_ids, width: int, step: int
    ) -> list[list[int]]:
        if self.engine == "graph":  # chosen by name: say why it cannot ("auto" checked this in engine_for)
            why = supports(self.infer, config)
            if why is not None:
                raise ValueError(f"engine='graph' cannot generate with these settings: {why}")
        if self._graph is None or self._graph.model is not self.infer:
            self._graph = GraphDecoder(
                self.infer, compile_blocks=self.compile is True, compile_step=self.compile == "step", tf32=self.tf32
            )
        eos = list(eos_token_ids) if eos_token_ids is not None else _as_list(config.eos_token_id)
        pad = config.pad_token_id if config.pad_token_id is not None else eos[0]
        temperature = (config.temperature or 1.0) if config.do_sample else None
        device = self.infer.device
        _sync(device)
        t0 = time.perf_counter()
        new, logps, steps, bad = self._graph.generate(
            prompt_ids, config.max_new_tokens, eos, pad, temperature, width, config.min_new_tokens or 0
        )
        _sync(device)
        if bad:  # attention cannot cause it (no empty row); NaN weights still can: the last resort stays
            raise NonFiniteLogits(f"non-finite logits in {bad} of {len(prompt_ids)} rows")
        self.history.append(RolloutTiming(step, len(prompt_ids), width, steps, 0.0, time.perf_counter() - t0, "graph"))
        new, logps = new.cpu(), logps.cpu()
        self.last_output = new
        trimmed = trim_after_eos(new, eos)
        self.last_logprobs = [logps[row, : len(ids)].tolist() for row, ids in enumerate(trimmed)]
        return trimmed

    def _static_cache(self, batch: int, width: int, needed: int):
        """The reusable StaticCache for this shape, reset; replaced by a longer one only when ``needed`` grows."""
        from transformers import StaticCache

        cache, length = self._caches.get((batch, width), (None, 0))
        if cache is None or length < needed:
            cache, length = StaticCache(config=self.infer.config, max_cache_len=needed), needed
            self._caches[(batch, width)] = (cache, length)
        else:
            cache.reset()
        return cache

    def cache_lengths(self) -> dict[tuple[int, int], int]:
        """``{(batch, prompt width): KV cache length}`` of the caches held, by either engine (for memory estimates)."""
        lengths = {key: length for key, (_, length) in self._caches.items()}
        if self._graph is not None:
            for b, _, width, new, _ in self._graph._states:
                lengths[(b, width)] = max(lengths.get((b, width), 0), width + new)
        return lengths

    def release_caches(self) -> None:
        """Free the KV caches (they are rebuilt on demand), e.g. between training and a large evaluation."""
        self._caches.clear()
        if self._graph is not None:
            self._graph.release()

    def _bucket_for(self, longest: int) -> int | None:
        """The padded prompt width: the current bucket, a larger one (compiled once more), or None (fallback)."""
        if self.prompt_bucket is None:
            self.prompt_bucket = _round_up(longest, self.bucket_multiple)
        if longest <= self.prompt_bucket:
            return self.prompt_bucket
        bigger = _round_up(longest, self.bucket_multiple)
        if bigger > self.max_prompt_bucket:
            warnings.warn(
                f"prompt of {longest} tokens exceeds max_prompt_bucket={self.max_prompt_bucket}: "
                "plain generate for this batch",
                stacklevel=3,
            )
            return None
        warnings.warn(
            f"prompt of {longest} tokens exceeds the bucket ({self.prompt_bucket}): bucket is now {bigger} "
            "(one more compilation)",
            stacklevel=3,
        )
        self.prompt_bucket = bigger  # keep it: later batches reuse this shape instead of switching back
        return bigger

    # ------------------------------------------------------------------ profiling
    def summary(self, skip_first: int = 1) -> dict[str, Any]:
        """Medians over the calls after the first ``skip_first`` (the first one compiles)."""
        rows = self.history[skip_first:] or self.history
        if not rows:
            return {}
        return {
            "calls": len(self.history),
            "first": asdict(self.history[0]),
            "median_merge_s": median(r.merge_s for r in rows),
            "median_generate_s": median(r.generate_s for r in rows),
            "median_decode_step_ms": median(1e3 * r.generate_s / max(r.decode_steps, 1) for r in rows),
            "fallbacks": sum(r.path == "fallback" for r in self.history),
        }


# ---------------------------------------------------------------------- is the copy on-policy?
#: Environment variable that compiles the copy's decoding step: ``step`` (the whole step one graph), ``blocks``
#: (each layer's element-wise blocks), ``none`` (default). A resource setting: the same tokens (tested on CPU; on an
#: H200 its greedy answers were the graph engine's, 64 of 64), and a first call that compiles.
ROLLOUT_COMPILE_ENV = "COURSE_ROLLOUT_COMPILE"
_COMPILE_CHOICES = {"": None, "none": None, "step": "step", "blocks": True}


def rollout_compile_from_env() -> bool | str | None:
    """``FastRollouts(compile=...)`` from ``$COURSE_ROLLOUT_COMPILE``; an unknown value fails with one line.

    >>> import os; os.environ["COURSE_ROLLOUT_COMPILE"] = "step"; rollout_compile_from_env()
    'step'
    >>> del os.environ["COURSE_ROLLOUT_COMPILE"]; rollout_compile_from_env() is None
    True
    """
    value = os.environ.get(ROLLOUT_COMPILE_ENV, "").strip().lower()
    if value not in _COMPILE_CHOICES:
        raise ValueError(f"${ROLLOUT_COMPILE_ENV}={value!r}: one of step, blocks, none")
    return _COMPILE_CHOICES[value]


#: The largest fp32 rollout copy (GiB) made by default: 1.07B parameters. The embedded 135M model's is 0.5 GiB and
#: decodes launch-bound, where fp32 costs little; a 7B model's would be 28 GiB beside its 14 GiB bf16 policy.
FP32_COPY_MAX_GIB = 4.0


def copy_dtype(policy: nn.Module, max_gib: float | None = None) -> torch.dtype:
    """The rollout copy's default dtype: fp32 while the copy takes at most ``max_gib`` (an fp32 copy keeps the
    LoRA delta that bf16 weights round away), else the policy's own floating dtype. ``max_gib``: default
    :data:`FP32_COPY_MAX_GIB`.

    >>> copy_dtype(nn.Linear(1000, 1000, dtype=torch.bfloat16), max_gib=0.01)  # 4 MB in fp32
    torch.float32
    >>> copy_dtype(nn.Linear(1000, 1000, dtype=torch.bfloat16), max_gib=0.001)
    torch.bfloat16
    """
    limit = FP32_COPY_MAX_GIB if max_gib is None else max_gib
    if fp32_copy_gib(policy) <= limit:
        return torch.float32
    return next((p.dtype for p in _base_model(policy).parameters() if p.is_floating_point()), torch.float32)


def fp32_copy_gib(policy: nn.Module) -> float:
    """GiB an fp32 rollout copy of ``policy`` takes (its base model's parameters, 4 bytes each)."""
    return 4 * sum(p.numel() for p in _base_model(policy).parameters()) / 2**30


def log_sampling_mismatch(trainer) -> None:
    """Log, at every step, how far the sampled tokens' log-probabilities (the copy's, returned by
    ``rollout_func``) are from the policy's own, computed by TRL's loss on the same tokens:
    ``rollouts/logp_diff_abs`` (mean |copy - policy| per answer token) and ``rollouts/logp_diff``
    (mean copy - policy: above 0, the copy samples a sharper distribution than the policy).

    TRL logs this (``sampling/sampling_logp_difference/*``) only with vLLM; with ``rollout_func`` it keeps the
    values but never compares them. This wraps two methods of *this* trainer instance (TRL 1.14.2's
    ``_compute_loss`` and ``_get_per_token_logps_and_entropies``; the API-drift tests guard both names): the
    loss's own forward is read, so nothing is computed twice. Idempotent; ``FastRollouts`` calls it itself."""
    if getattr(trainer, "_course_mismatch_logged", False):
        return
    compute_loss, logps_and_entropies = trainer._compute_loss, trainer._get_per_token_logps_and_entropies
    pending: dict[str, Any] = {}

    def _compute_loss(model, inputs):
        pending["sampled"], pending["mask"] = inputs.get("sampling_per_token_logps"), inputs.get("completion_mask")
        try:
            return compute_loss(model, inputs)
        finally:
            pending.clear()

    def _get_per_token_logps_and_entropies(*args, **kwargs):
        out = logps_and_entropies(*args, **kwargs)
        sampled, mask = pending.pop("sampled", None), pending.pop("mask", None)  # the loss's forward only
        if sampled is not None and mask is not None and out[0] is not None and out[0].shape == sampled.shape:
            diff = (sampled - out[0].detach().float())[mask.bool()]
            diff = diff[~torch.isnan(diff)]
            if diff.numel():
                log_metrics(
                    trainer,
                    {"rollouts/logp_diff_abs": diff.abs().mean().item(), "rollouts/logp_diff": diff.mean().item()},
                )
        return out

    trainer._compute_loss = _compute_loss
    trainer._get_per_token_logps_and_entropies = _get_per_token_logps_and_entropies
    trainer._course_mismatch_logged = True


# ---------------------------------------------------------------------- non-finite logits (the last resort)
class NonFiniteLogits(RuntimeError):
    """The inference copy produced NaN or infinite logits for some rows."""


class _NonFiniteGuard(LogitsProcessor):
    """Notes rows whose logits hold NaN or +inf (or are -inf everywhere) and gives them finite scores,
    so sampling never hits torch.multinomial's device-side assert (which would end the CUDA context);
    the caller then regenerates the batch another way.

    A -inf score alone is normal: processors that run before this one (``suppress_tokens``,
    ``bad_words_ids``, ``min_new_tokens``) ban tokens that way."""

    def __init__(self):
        self.bad: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        bad = (torch.isnan(scores) | torch.isposinf(scores)).any(dim=-1) | torch.isneginf(scores).all(dim=-1)
        self.bad = bad if self.bad is None else self.bad | bad
        return torch.where(bad[:, None], torch.zeros_like(scores), scores)

    def rows_hit(self) -> int:
        return 0 if self.bad is None else int(self.bad.sum())


class _SampledLogprobs(LogitsProcessor):
    """Keeps ``log_softmax(scores / temperature)`` one step at a time, and reads off the log-probability of
    the token that was drawn when the next step shows it (``input_ids[:, -1]``).

    That is TRL's definition of a token's log-probability (its loss divides the logits by the temperature;
    top-k / top-p are not part of it). transformers runs the processors a caller passes *before* its own
    temperature / top-k / top-p warpers, so the scores seen here are the model's logits (after any
    processor that bans tokens). Only one step of scores is held (batch x vocabulary)."""

    def __init__(self, temperature: float = 1.0):
        self.temperature = float(temperature) if temperature else 1.0
        self.prev: torch.Tensor | None = None  # log-probabilities of the previous step
        self.picked: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev is not None:
            self.picked.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        self.prev = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def sampled(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """(batch, generated) log-probabilities of ``new_tokens`` (the generated part of the sequences)."""
        picked = list(self.picked)
        if self.prev is not None and len(picked) < new_tokens.size(1):  # the last step's token
            picked.append(
                self.prev.gather(1, new_tokens[:, len(picked) : len(picked) + 1].to(self.prev.device)).squeeze(1)
            )
        if not picked:
            return torch.zeros(new_tokens.shape, dtype=torch.float32)
        return torch.stack(picked, dim=1)


def profile_generation(
    fast: FastRollouts, batch: list[list[int]], config: GenerationConfig, eos: Sequence[int], top: int = 15
) -> dict:
    """One ``fast.generate`` under ``torch.profiler``: where a generation's time goes.

    Returns ``{"total_ms": ..., "top": [...]}``: the summed self time of every operator and kernel, and the
    ``top`` of them by self time, each ``{"op", "calls", "self_ms"}``. Device time on a GPU (kernels replayed
    from a CUDA graph are recorded one by one), CPU time on a CPU. Used by ``scripts/check_fast_rollouts.py``
    and ``benchmarks/bench_graph_engine.py --profile``.
    """
    from torch.profiler import ProfilerActivity, profile

    if fast.infer is None:
        raise RuntimeError("call refresh(policy) first: the copy is built there")
    cuda = next(fast.infer.parameters()).device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fast.generate(batch, config, eos)
        if cuda:
            torch.cuda.synchronize()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    ranked = sorted(events, key=lambda e: getattr(e, key, 0), reverse=True)[:top]
    return {
        "total_ms": round(sum(getattr(e, key, 0) for e in events) / 1e3, 2),
        "top": [{"op": e.key[:120], "calls": e.count, "self_ms": round(getattr(e, key, 0) / 1e3, 2)} for e in ranked],
    }


def sampling_config(
    max_new: int, sample: bool, eos_token_ids: Sequence[int], pad_token_id: int | None, min_new: int = 0
) -> GenerationConfig:
    """TRL's default GRPO sampling (temperature 1, no top-k / top-p), or greedy: the settings the graph engine
    computes. ``min_new`` holds the end of answer back (benchmarks time fixed lengths with it)."""
    return GenerationConfig(
        max_new_tokens=max_new,
        do_sample=sample,
        temperature=1.0 if sample else None,
        top_k=0 if sample else None,
        top_p=1.0 if sample else None,
        eos_token_id=list(eos_token_ids),
        pad_token_id=pad_token_id,
        **({"min_new_tokens": min_new} if min_new else {}),
    )


def left_padded(
    prompt_ids: Sequence[Sequence[int]], width: int, pad_id: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts left-padded to ``width``: the last prompt token of every row sits in the same column."""
    input_ids = torch.full((len(prompt_ids), width), pad_id if pad_id is not None else 0, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(prompt_ids):
        if ids:
            input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


def trim_after_eos(completions: torch.Tensor, eos_token_ids: Sequence[int]) -> list[list[int]]:
    """TRL's rule (``_generate_single_turn``): keep tokens up to and including the first EOS of each row."""
    is_eos = torch.isin(completions, torch.tensor(list(eos_token_ids), dtype=completions.dtype))
    length = torch.full((completions.size(0),), completions.size(1), dtype=torch.long)
    ended = is_eos.any(dim=1)
    length[ended] = is_eos.int().argmax(dim=1)[ended] + 1
    return [row[:n].tolist() for row, n in zip(completions, length.tolist())]


# ---------------------------------------------------------------------- the merge
class _MergePlan:
    """Which source tensor(s) feed each parameter of the copy; built once, applied before every generation.

    * a LoRA layer's weight: ``base_layer.weight + sum(scaling * B @ A)`` over the active adapters,
      computed in fp32 (more exact than PEFT's bf16 merge on GPU), then cast into the copy;
      its bias: the base bias (+ ``scaling * lora_B.bias`` with ``lora_bias=True``);
    * a ``modules_to_save`` module: the active adapter's trained copy;
    * every other parameter: the policy's own (frozen) tensor, copied too: cheap, and always right.
    """

    def __init__(
        self,
        plain: list[tuple[torch.Tensor, nn.Module, str]],
        lora: list[tuple[torch.Tensor, nn.Module, list[str], str]],
    ):
        # Sources are kept as (module, name) and looked up at every apply: a checkpoint load that replaces
        # parameter objects (load_state_dict(assign=True)) is then still seen.
        self.plain = plain  # (destination, source module, parameter name)
        self.lora = lora  # (destination, LoRA layer, adapters, "weight" | "bias")

    @classmethod
    def build(cls, base: nn.Module, infer: nn.Module) -> _MergePlan:
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper, ModulesToSaveWrapper

        special = {n: m for n, m in base.named_modules() if isinstance(m, (LoraLayer, AuxiliaryTrainingWrapper))}
        plain, lora = [], []
        for name, dst in infer.named_parameters():  # tied weights appear once here, and once in the policy
            owner = next((p for p in _prefixes(name) if p in special), None)
            if owner is None:
                plain.append((dst, base, name))
                continue
            module, rel = special[owner], name[len(owner) + 1 :]
            if isinstance(module, LoraLayer):
                adapters = _lora_adapters(module)
                if rel == "weight" and adapters:
                    lora.append((dst, module, adapters, "weight"))
                elif rel == "bias" and any(module.lora_bias.get(a, False) for a in adapters):
                    lora.append((dst, module, adapters, "bias"))
                else:
                    plain.append((dst, module.get_base_layer(), rel))
            elif isinstance(module, ModulesToSaveWrapper):
                active = [a for a in module.active_adapters if a in module.modules_to_save]
                use_original = module.disable_adapters or not active
                source = module.original_module if use_original else module.modules_to_save[active[0]]
                plain.append((dst, source, rel))
            else:  # e.g. TrainableTokensWrapper: not used by the course; refuse rather than guess
                raise NotImplementedError(f"FastRollouts cannot merge {type(module).__name__} at {owner}")
        for _, module, rel in plain:
            module.get_parameter(rel)  # fail now, with the name, if a parameter has no source
        return cls(plain, lora)

    @torch.no_grad()
    def apply(self) -> None:
        if self.plain:  # one fused launch for all straight copies (dtype cast included)
            torch._foreach_copy_([d for d, _, _ in self.plain], [m.get_parameter(n) for _, m, n in self.plain])
        for dst, layer, adapters, what in self.lora:
            base_layer = layer.get_base_layer()
            if what == "bias":
                merged = base_layer.bias.float()
                for a in adapters:
                    if layer.lora_bias.get(a, False):
                        merged = merged + layer.scaling[a] * layer.lora_B[a].bias.float()
            else:
                merged = base_layer.weight.float()
                for a in adapters:
                    merged = merged + _delta(layer, a)
            dst.copy_(merged)


def _lora_adapters(layer) -> list[str]:
    """Adapters whose delta the forward adds: active, not disabled, not already merged into the base weight."""
    if layer.disable_adapters:
        if layer.merged:
            raise NotImplementedError("a LoRA layer is merged but disabled: unmerge it first")
        return []
    adapters = [
        a
        for a in layer.active_adapters
        if a not in layer.merged_adapters
        and (a in getattr(layer, "lora_A", {}) or a in getattr(layer, "lora_embedding_A", {}))
    ]
    for a in adapters:
        if a in getattr(layer, "lora_variant", {}):  # DoRA and other variants merge differently
            raise NotImplementedError(f"LoRA variant {type(layer.lora_variant[a]).__name__} is not supported")
    return adapters


def _delta(layer, adapter: str) -> torch.Tensor:
    """``scaling * B @ A`` in fp32 for a LoRA Linear (the course's case); PEFT's own formula otherwise."""
    from peft.tuners.lora import Linear as LoraLinear

    if isinstance(layer, LoraLinear):
        a, b = layer.lora_A[adapter].weight.float(), layer.lora_B[adapter].weight.float()
        delta = (b @ a) * layer.scaling[adapter]
        return delta.T if layer.fan_in_fan_out else delta
    return layer.get_delta_weight(adapter).float()


# ---------------------------------------------------------------------- helpers
def _base_model(policy: nn.Module) -> nn.Module:
    """The transformers model inside a PeftModel (LoRA layers in place), or the model itself."""
    return policy.get_base_model() if hasattr(policy, "get_base_model") else policy


def _blank_copy(base: nn.Module, device: torch.device, dtype: torch.dtype) -> PreTrainedModel:
    """A model of the same class and config, no LoRA, no gradients; its values come from the merge.

    It attends with :data:`~utils.llm.attention.PADSAFE_ATTENTION` (SDPA whose masks never leave a query row empty)."""
    config = copy.deepcopy(base.config)
    with torch.device(device):
        infer = type(base)._from_config(config, dtype=dtype, attn_implementation=register_padsafe_attention())
    infer.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return infer


def _prefixes(name: str) -> list[str]:
    """'a.b.c.weight' -> ['a.b.c', 'a.b', 'a']: module paths from the innermost out."""
    parts = name.split(".")[:-1]
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _as_list(x) -> list[int]:
    return [] if x is None else [x] if isinstance(x, int) else list(x)


def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
