"""A whole decoding step as one CUDA graph: the rollout engine behind ``FastRollouts(engine="graph")``.

Why: a GRPO rollout of the 135M model is 64 answers x up to 512 steps, and each step is about a
thousand small kernels (30 layers of norms, projections, rotary embeddings, attention, MLP).
transformers' ``generate`` launches them from Python (tens of microseconds each, plus its own per-step
bookkeeping), so the GPU waits on the CPU (measured on an H100: 8 ms a step in bf16,
24 ms in fp32, against a memory floor near 0.1 ms). Here the step (embedding, 30 layers with a
static KV cache, the LM head, sampling, the end-of-answer bookkeeping) is plain torch on fixed-size
tensors, so it is recorded once as a CUDA graph and replayed: one launch a step, no host sync but a
cheap check every ``check_every`` steps. A GRPO group's answers share one prompt: each distinct prompt is
prefilled once, its keys and values are kept once, and at each step the group's answers read them together
(:func:`decode_attention`); each row's new tokens have their own cache, attended up to the next multiple of
``block`` columns. ``compile_blocks=True`` also fuses each layer's element-wise kernels
with ``torch.compile`` (the graph still runs every kernel, so fewer kernels is what is left to win).

What it computes is the Llama forward of transformers (RMSNorm in fp32, rotary embeddings from
``inv_freq``, grouped-query attention, SiLU MLP, tied or separate LM head), reading the weights of an
existing ``LlamaForCausalLM``-shaped model *by reference*: when ``FastRollouts`` merges new LoRA
weights into that model in place, the graph sees them. ``tests/test_graph_decode.py`` checks its
logits against transformers' on CPU (where it runs the same step without a graph).

NaN-proof by construction: every query row may attend to its own position (a pad row sees itself; a new token
its own key), so no softmax row is ever empty, and real rows never attend to pad keys.

Sampling: temperature sampling by the Gumbel-max trick (``argmax(logits / T + Gumbel noise)`` is an
exact draw from ``softmax(logits / T)``) or greedy; the log-probability of each drawn token under
``softmax(logits / T)`` is what TRL receives. Other warpers (top-k, top-p, min-p, repetition
penalty) are not implemented: :func:`supports` says so and ``FastRollouts`` then uses ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def supports(model: nn.Module, config) -> str | None:
    """``None`` when this engine can decode ``model`` with ``config`` (a GenerationConfig), else why not."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in ("llama",):
        return f"model type {getattr(cfg, 'model_type', None)!r} (only llama)"
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        return f"rope type {rope.get('rope_type')!r}"
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        return "biases in attention or MLP"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act!r}"
    if config.do_sample:
        if config.top_k not in (None, 0) or config.top_p not in (None, 1.0) or config.min_p not in (None, 0.0):
            return f"sampling warpers top_k={config.top_k} top_p={config.top_p} min_p={config.min_p}"
    if config.repetition_penalty not in (None, 1.0):
        return f"repetition_penalty={config.repetition_penalty}"
    if not config.max_new_tokens:
        return "no max_new_tokens"
    # Anything else that changes what is drawn (suppress_tokens, bad_words_ids, min_new_tokens, beams, ...).
    other = {k: v for k, v in config.to_diff_dict().items() if k not in _HANDLED and v not in (None, False, [], {})}
    return f"generation settings {sorted(other)}" if other else None


# GenerationConfig fields this engine honours or that do not change the tokens drawn.
_HANDLED = {
    *("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty"),
    *("pad_token_id", "bos_token_id", "eos_token_id", "cache_implementation", "disable_compile", "compile_config"),
    *("use_cache", "return_dict_in_generate", "transformers_version", "_from_model_config", "min_new_tokens"),
}


class GraphDecoder:
    """Prefill + graph-replayed decoding for one model; caches and graphs are kept per (batch, width, new).

    ``model`` is a transformers Llama causal LM whose tensors may change in place between calls.
    """

    def __init__(
        self,
        model: nn.Module,
        check_every: int = 16,
        use_graphs: bool | None = None,
        compile_blocks: bool = False,
        compile_step: bool = False,
        fuse_mlp: bool | None = None,
        block: int = 64,
        tf32: bool = False,
    ):
        self.model = model
        self.cfg = model.config
        self.check_every = check_every
        # Attention reads the cache up to the prompt plus the next multiple of ``block`` new tokens, not the whole
        # budget: one recorded graph per length (a 512-token budget: 8), about a quarter less cache read on average.
        self.block = block
        # tf32: fp32 matrix products on a GPU's tensor cores (10-bit mantissa inputs, fp32 sums). Not exact: for
        # a policy trained in bf16, whose own forward is further than that from fp32, to be measured first.
        self.tf32 = tf32
        device = next(model.parameters()).device
        self.use_graphs = device.type == "cuda" if use_graphs is None else use_graphs
        # compile_blocks: torch.compile fuses each layer's small element-wise kernels (norms, rotary, SiLU) into a
        # few; a CUDA-graph step still runs every kernel, so fewer kernels is what is left to win on a GPU.
        compile_fn = (lambda f: torch.compile(f, dynamic=False)) if compile_blocks else (lambda f: f)
        self._pre, self._post = compile_fn(before_attention), compile_fn(after_attention)
        # compile_step: torch.compile the decoding step's whole forward (every layer, the attention included, not
        # the sampling) into one graph, so Inductor fuses across the blocks too: norms with residuals, the mask
        # and softmax. The step is launch-bound: an H100 profile of the earlier attention counted about 1,200 small
        # element-wise kernels besides 210 matrix products, and a step takes 5.6 ms where reading the weights takes
        # 0.2 ms. The attended length is marked dynamic before the first call, so one compilation serves all
        # lengths (unmarked: compiled for the first length, then again for the second, now dynamic);
        # sampling stays eager, so its random draws stay CUDA-graph safe.
        if compile_step and compile_blocks:
            raise ValueError("compile_step compiles the blocks too: pass one of compile_step, compile_blocks")
        self._compile_step = compile_step
        self._decode = torch.compile(self._forward, dynamic=None, fullgraph=True) if compile_step else self._forward
        self._states: dict[tuple[int, ...], _State] = {}  # (batch, prompt slots, width, new tokens, EOS ids)
        # One matrix for q, k, v per layer, and on a GPU one for gate, up: 4 matrix products a layer instead of 7
        # (a decoding step multiplies only batch-many rows, so each product there is launch-bound). On a CPU the
        # 3,072-row gate-up product was 1.5x slower than its two halves (2 threads): ``fuse_mlp`` defaults to GPU.
        self._fused = [fuse_linears(layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)
                       for layer in model.model.layers]  # fmt: skip
        fuse_mlp = device.type == "cuda" if fuse_mlp is None else fuse_mlp
        mlps = [layer.mlp for layer in model.model.layers] if fuse_mlp else []
        self._fused_mlp = [fuse_linears(mlp.gate_proj, mlp.up_proj) for mlp in mlps]

    # ------------------------------------------------------------------ the model, written out
    def _rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin for ``positions`` [B, S] as transformers computes them (fp32, then the model's dtype)."""
        rot = self.model.model.rotary_emb
        freqs = positions.float()[..., None] * rot.inv_freq.float()  # [B, S, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * rot.attention_scaling).to(dtype), (emb.sin() * rot.attention_scaling).to(dtype)

    def _forward(self, ids, cos, sin, k_cache, v_cache, write_at, mask, prompt=None) -> torch.Tensor:
        """Hidden states after the final norm for ``ids`` [B, S]; writes keys/values at columns ``write_at`` [S].

        ``mask`` is additive (0 or -inf) over the cache columns T: [B, 1, S, T] for a prompt; for a decoding step
        (S = 1), ``k_cache``/``v_cache`` hold the new tokens' columns, ``mask`` [1, 1, 1, N] says which of the
        first N are written yet (the step reads only those N), and ``prompt`` = (prompt keys, prompt values,
        prompt mask) of the shared prompts (:func:`decode_attention`).
        """
        m = self.model.model
        cfg = self.cfg
        heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        group = heads // kv_heads
        b, s = ids.shape
        h = m.embed_tokens(ids)
        cos, sin = cos[:, :, None], sin[:, :, None]  # [B, S, 1, D]: one rotation for every head
        mask = mask.repeat(1, 1, group, 1) if group > 1 and s > 1 else mask  # rows (g, s) -> g * S + s
        for i, layer in enumerate(m.layers):
            attn, mlp = layer.self_attn, layer.mlp
            norm1, norm2 = layer.input_layernorm, layer.post_attention_layernorm
            q, k, v = self._pre(
                h, norm1.weight, norm1.variance_epsilon, self._fused[i], cos, sin, heads, kv_heads, head_dim
            )
            k_cache[i].index_copy_(2, write_at, k)
            v_cache[i].index_copy_(2, write_at, v)
            if s == 1:  # decoding: G query rows per key head, over the first n new-token columns (the mask's)
                pk, pv, prompt_mask = prompt
                n = mask.shape[-1]
                k_new, v_new = k_cache[i][:, :, :n], v_cache[i][:, :, :n]
                out = decode_attention(q, pk[i], pv[i], prompt_mask, k_new, v_new, mask, attn.scaling)
            else:
                out = nn.functional.scaled_dot_product_attention(
                    q, k_cache[i], v_cache[i], attn_mask=mask, scale=attn.scaling
                )
            gate_up = self._fused_mlp[i] if self._fused_mlp else (mlp.gate_proj.weight, mlp.up_proj.weight)
            h = self._post(
                h, out, attn.o_proj.weight, norm2.weight, norm2.variance_epsilon, gate_up, mlp.down_proj.weight, heads
            )
        return m.norm(h)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(hidden, self.model.lm_head.weight).float()

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        max_new_tokens: int,
        eos_token_ids: Sequence[int],
        pad_token_id: int,
        temperature: float | None,
        width: int | None = None,
        min_new_tokens: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """(new tokens [B, steps], their log-probs [B, steps], steps run, rows that met non-finite logits).

        Rows are pad after their EOS.

        ``temperature=None``: greedy. Prompts are left-padded to ``width`` (default: the longest). Before
        ``min_new_tokens`` tokens no end-of-answer token is drawn (benchmarks time fixed lengths with it).
        Identical prompts (a GRPO group) are prefilled once; in a grouped batch their keys are kept and read once.
        """
        device_type = self.model.lm_head.weight.device.type
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high" if self.tf32 else "highest")  # recorded graphs keep the choice
        try:
            with torch.autocast(device_type, enabled=False):  # the copy's own dtype, even in a trainer's autocast
                return self._generate(
                    prompt_ids, max_new_tokens, eos_token_ids, pad_token_id, temperature, width, min_new_tokens
                )
        finally:
            torch.set_float32_matmul_precision(precision)

    def _generate(self, prompt_ids, max_new_tokens, eos_token_ids, pad_token_id, temperature, width, min_new_tokens):
        b = len(prompt_ids)
        width = width or max(len(p) for p in prompt_ids)
        unique: dict[tuple[int, ...], int] = {}
        rows = [unique.setdefault(tuple(p), len(unique)) for p in prompt_ids]
        # A GRPO batch is U groups of R answers to one prompt, in order: then the cache holds each prompt once
        # and a group's answers read it once. Any other layout keeps one prompt copy per row.
        r = b // len(unique)
        slots = len(unique) if rows == [i // r for i in range(b)] else b
        st = self._state(b, slots, width, max_new_tokens, len(eos_token_ids))
        st.reset(pad_token_id, eos_token_ids, temperature, min_new_tokens)
        if self.use_graphs and not st.graphs:
            self._capture(st, max_new_tokens)
        self._prefill(st, list(unique), rows, width)
        steps = 1  # new tokens so far; the next step feeds token steps - 1
        while steps < max_new_tokens:
            run = min(self.check_every, max_new_tokens - steps)
            for j in range(steps - 1, steps - 1 + run):
                n = self._active(j, max_new_tokens)
                if st.graphs:
                    st.graphs[n].replay()
                else:
                    self._step(st, n)
            steps += run
            if bool(st.done.all()):  # one host sync per check_every steps
                break
        return st.out[:, :steps].clone(), st.logp[:, :steps].clone(), steps, int(st.bad.sum())

    def _state(self, b: int, slots: int, width: int, new: int, n_eos: int) -> _State:
        key = (b, slots, width, new, n_eos)
        if key not in self._states:
            param = next(self.model.parameters())
            vocab = self.model.lm_head.weight.shape[0]
            self._states[key] = _State(self.cfg, b, slots, width, new, n_eos, vocab, param.device, param.dtype)
        return self._states[key]

    def release(self) -> None:
        self._states.clear()

    def _prefill(self, st: _State, unique: list[tuple[int, ...]], rows: list[int], width: int) -> None:
        """Runs each distinct prompt once, fills the prompt cache, samples the first new token of every row
        (``rows[b]``: row b's prompt in ``unique``)."""
        dev = st.out.device
        u = len(unique)
        ids = torch.full((u, width), st.pad, dtype=torch.long)
        valid = torch.zeros((u, width), dtype=torch.bool)
        for r, p in enumerate(unique):
            ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            valid[r, width - len(p) :] = True
        ids, valid = ids.to(dev), valid.to(dev)
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        mask = additive(prefill_allowed(valid, width), st.k.dtype)
        index = torch.tensor(rows, device=dev)
        shared = st.pk.shape[1] == u  # one cache slot per distinct prompt: fill it directly
        k = st.pk if shared else st.pk.new_zeros((st.pk.shape[0], u, *st.pk.shape[2:]))
        v = st.pv if shared else torch.zeros_like(k)
        cos, sin = self._rope(positions, st.k.dtype)
        hidden = self._forward(ids, cos, sin, k, v, torch.arange(width, device=dev), mask[:, None])
        if not shared:
            st.pk.copy_(k.index_select(1, index))
            st.pv.copy_(v.index_select(1, index))
        st.prompt_mask.copy_(additive(valid if shared else valid.index_select(0, index), st.k.dtype)[:, None, None])
        st.pos.copy_(valid.long().sum(-1).index_select(0, index))  # next position = real prompt length
        st.step.zero_()
        logits = self.logits(hidden[:, -1]).index_select(0, index)
        _sample(st, logits)

    def _active(self, j: int, new: int) -> int:
        """New-token columns the step feeding token ``j`` attends over: ``j + 1`` rounded up to a block."""
        return min(new, -(-(j + 1) // self.block) * self.block)

    def _step(self, st: _State, n: int) -> None:
        """One decoding step on the state's fixed tensors (what a CUDA graph records), attending over the prompt
        and the first ``n`` new-token columns of the cache (the token fed is one of them)."""
        at = st.step.view(1)  # new-token column of the token being fed
        written = additive((st.gen_cols[:n] <= st.step)[None, None, None], st.k.dtype)  # itself and those before
        positions = (st.pos + st.step)[:, None]
        cos, sin = self._rope(positions, st.k.dtype)
        if self._compile_step:  # the attended length varies by block: one graph for every length
            torch._dynamo.maybe_mark_dynamic(written, 3)
        # The whole new-token cache goes in and the mask's width says how much of it is read: a slice made here
        # would give the compiled step inputs whose strides depend on n (a recompilation per length).
        hidden = self._decode(st.tok[:, None], cos, sin, st.k, st.v, at, written, (st.pk, st.pv, st.prompt_mask))
        st.step += 1
        _sample(st, self.logits(hidden[:, -1]))

    def _capture(self, st: _State, new: int) -> None:
        """Records ``_step`` as one CUDA graph per attended length (after warm-up runs on a side stream, as
        PyTorch requires), then puts the state back as it was."""
        saved = [x.clone() for x in st.tensors()]
        for n in sorted({self._active(j, new) for j in range(new)}):
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._step(st, n)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._step(st, n)
            st.graphs[n] = graph
        for x, y in zip(st.tensors(), saved):
            x.copy_(y)


class _State:
    """The fixed-address tensors one (batch, prompt slots, width, new) shape decodes with."""

    def __init__(self, cfg, b: int, slots: int, width: int, new: int, n_eos: int, vocab: int, device, dtype):
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        layers, kv_heads = cfg.num_hidden_layers, cfg.num_key_value_heads
        # the prompts' keys and values, one slot per distinct prompt of a grouped batch (else per row) ...
        self.pk = torch.zeros((layers, slots, kv_heads, width, head_dim), dtype=dtype, device=device)
        self.pv = torch.zeros_like(self.pk)
        # ... and each row's new tokens' (one spare column: a step reads at most ``new``, so what it reads is never
        # the whole, contiguous cache, and a compiled step needs one graph for every length instead of two)
        self.k = torch.zeros((layers, b, kv_heads, new + 1, head_dim), dtype=dtype, device=device)
        self.v = torch.zeros_like(self.k)
        self.prompt_mask = torch.zeros((slots, 1, 1, width), dtype=dtype, device=device)  # additive: no pad key
        self.gen_cols = torch.arange(new, device=device)
        self.pos = torch.zeros(b, dtype=torch.long, device=device)  # position of the first new token, per row
        self.step = torch.zeros((), dtype=torch.long, device=device)  # index of the token being fed
        self.tok = torch.zeros(b, dtype=torch.long, device=device)
        self.out = torch.zeros((b, new), dtype=torch.long, device=device)
        self.logp = torch.zeros((b, new), dtype=torch.float32, device=device)
        self.done = torch.zeros(b, dtype=torch.bool, device=device)
        self.bad = torch.zeros(b, dtype=torch.bool, device=device)  # rows that met non-finite logits
        self.eos = torch.zeros(n_eos, dtype=torch.long, device=device)
        self.pad = 0
        self.pad_t = torch.zeros((), dtype=torch.long, device=device)
        self.inv_temp = torch.ones((), dtype=torch.float32, device=device)
        self.noise_scale = torch.ones((), dtype=torch.float32, device=device)  # 0: greedy
        self.min_new = torch.zeros((), dtype=torch.long, device=device)
        self.is_eos = torch.zeros(vocab, dtype=torch.bool, device=device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}  # attended new-token columns -> recorded step

    def tensors(self) -> list[torch.Tensor]:
        """What a decoding step changes (saved around the graph capture's warm-up steps; the prompt cache is not
        among them: a step only reads it)."""
        return [
            self.k,
            self.v,
            self.pos,
            self.step,
            self.tok,
            self.out,
            self.logp,
            self.done,
            self.bad,
        ]

    def reset(self, pad: int, eos: Sequence[int], temperature: float | None, min_new: int = 0) -> None:
        """New settings, written into the same tensors (a recorded graph reads them from there)."""
        self.pad = int(pad)
        self.pad_t.fill_(self.pad)
        self.eos.copy_(torch.tensor(list(eos), dtype=torch.long))
        self.is_eos.zero_()
        self.is_eos[self.eos] = True
        self.min_new.fill_(int(min_new))
        self.inv_temp.fill_(1.0 / temperature if temperature else 1.0)
        self.noise_scale.fill_(1.0 if temperature else 0.0)
        self.done.zero_()
        self.bad.zero_()
        self.out.fill_(self.pad)
        self.logp.zero_()


def rms_norm(h: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' LlamaRMSNorm: in fp32, then back to the input's dtype, times the weight."""
    x = h.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(h.dtype)


def before_attention(h, norm_w, eps, w_qkv, cos, sin, heads: int, kv_heads: int, head_dim: int):
    """Norm, projections, rotary embedding of one layer: (queries grouped by key head [B, KV, G*S, D], keys and
    values [B, KV, S, D]). ``w_qkv``: the q, k and v matrices stacked (:func:`fuse_linears`); ``cos``/``sin``
    [B, S, 1, D]. Weights are arguments, so one compiled graph serves every layer."""
    b, s, _ = h.shape
    x = rms_norm(h, norm_w, eps)
    qkv = nn.functional.linear(x, w_qkv).view(b, s, heads + 2 * kv_heads, head_dim)
    qk = qkv[:, :, : heads + kv_heads]
    qk = qk * cos + _rotate_half(qk) * sin  # queries and keys rotated together: the same element-wise formula
    q, k = qk[:, :, :heads].transpose(1, 2), qk[:, :, heads:].transpose(1, 2)
    v = qkv[:, :, heads + kv_heads :].transpose(1, 2)
    # Grouped-query attention without copying keys: the G query heads of one key head become G x S rows.
    return q.reshape(b, kv_heads, -1, head_dim), k, v


def after_attention(h, attn, wo, norm_w, eps, w_gate_up, wd, heads: int) -> torch.Tensor:
    """Output projection and residual, then the norm, the SiLU MLP and its residual, of one layer
    (``w_gate_up``: the gate and up matrices stacked, or the pair)."""
    b, kv_heads, gs, head_dim = attn.shape
    s = gs * kv_heads // heads
    out = attn.reshape(b, heads, s, head_dim).transpose(1, 2).reshape(b, s, heads * head_dim)
    h = h + nn.functional.linear(out, wo)
    x = rms_norm(h, norm_w, eps)
    if isinstance(w_gate_up, tuple):
        gate, up = (nn.functional.linear(x, w) for w in w_gate_up)
    else:
        gate, up = nn.functional.linear(x, w_gate_up).chunk(2, -1)
    return h + nn.functional.linear(nn.functional.silu(gate) * up, wd)


def decode_attention(q, pk, pv, prompt_mask, k, v, mask, scale: float) -> torch.Tensor:
    """Attention of one decoding step over a shared prompt and each row's own new tokens, written out.

    ``q`` [B, KV, G, D] (the new token's G query heads of each key head); ``pk``/``pv`` [U, KV, W, D] the prompt
    cache, row b reading slot ``b // (B // U)`` (U = B: one slot per row); ``prompt_mask`` additive [U, 1, 1, W];
    ``k``/``v`` [B, KV, N, D] the rows' new tokens, ``mask`` additive, broadcastable to [B, KV, G, N].

    It is softmax attention over the keys [prompt; new tokens], split in two: the R answers of a group read their
    prompt's keys once, as R x G query rows (a GRPO group of 8 reads its prompt once instead of 8 times). Matrix
    products, not SDPA: in fp32 SDPA has only its memory-efficient kernel, made for long query blocks, which took
    159 us a layer on an H100 with G = 3 rows, half of a decoding step. Every row has at least its own new key,
    so no row is empty (no NaN)."""
    b, kv, g, d = q.shape
    u, w = pk.shape[0], pk.shape[2]
    r = b // u
    shared_q = q.view(u, r, kv, g, d).transpose(1, 2).reshape(u, kv, r * g, d)  # a group's rows together
    prompt_scores = torch.matmul(shared_q, pk.transpose(-1, -2)) * scale + prompt_mask  # [U, KV, R*G, W]
    prompt_scores = prompt_scores.view(u, kv, r, g, w).transpose(1, 2).reshape(b, kv, g, w)
    own_scores = torch.matmul(q, k.transpose(-1, -2)) * scale + mask  # [B, KV, G, N]
    p = torch.softmax(torch.cat([prompt_scores, own_scores], -1), -1)
    p_prompt = p[..., :w].reshape(u, r, kv, g, w).transpose(1, 2).reshape(u, kv, r * g, w)
    out = torch.matmul(p_prompt, pv).view(u, kv, r, g, d).transpose(1, 2).reshape(b, kv, g, d)
    return out + torch.matmul(p[..., w:], v)


def fuse_linears(*linears: nn.Linear) -> torch.Tensor:
    """Stacks the weights of bias-free ``linears`` (same input) into one matrix and makes each layer's weight a
    view of its rows: values unchanged, and an in-place update of a layer's weight (FastRollouts' merge) writes
    into the stacked matrix, so the engine (and a recorded graph) sees it."""
    with torch.no_grad():
        stacked = torch.cat([lin.weight.detach() for lin in linears], 0)
        start = 0
        for lin in linears:
            rows = lin.weight.shape[0]
            lin.weight.data = stacked[start : start + rows]
            start += rows
    return stacked


def prefill_allowed(valid: torch.Tensor, total: int) -> torch.Tensor:
    """[U, W, T] which cache columns each prompt position may attend to: earlier real tokens (causal, no pads),
    and always itself, so a pad position has one key too and no softmax row is empty (no NaN by construction)."""
    u, width = valid.shape
    col = torch.arange(total, device=valid.device)
    row = torch.arange(width, device=valid.device)
    keys = torch.cat([valid, valid.new_zeros(u, total - width)], 1)
    return ((col[None, :] <= row[:, None])[None] & keys[:, None, :]) | (col[None, :] == row[:, None])[None]


def additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where allowed, -inf elsewhere (SDPA adds it to the scores)."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, float("-inf"))


def _sample(st: _State, logits: torch.Tensor) -> None:
    """Draws the next token of every row into ``st.tok`` / ``st.out[:, st.step]`` with its log-prob.

    Greedy and sampling share one graph: the Gumbel noise is multiplied by 0 for greedy decoding.
    """
    logp = torch.log_softmax(logits * st.inv_temp, -1)  # TRL's log-probability (no warper, no ban)
    banned = st.is_eos[None] & (st.step < st.min_new)  # min_new_tokens: no end yet
    tok = gumbel_argmax(logp.masked_fill(banned, float("-inf")), st.noise_scale)
    lp = logp.gather(1, tok[:, None]).squeeze(1)
    st.bad |= ~torch.isfinite(lp) & ~st.done  # last resort: attention cannot cause it, NaN weights can
    tok = torch.where(st.done, st.pad_t, tok)
    lp = torch.where(st.done, torch.zeros_like(lp), lp)
    col = st.step.view(1)
    st.out.index_copy_(1, col, tok[:, None])
    st.logp.index_copy_(1, col, lp[:, None])
    st.tok.copy_(tok)
    st.done |= torch.isin(tok, st.eos)


def gumbel_argmax(logp: torch.Tensor, noise_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """One draw per row from ``softmax(logp)``: ``argmax(logp + G)`` with G standard Gumbel noise
    (the Gumbel-max trick; exact, and free of the host syncs ``torch.multinomial`` makes). ``noise_scale=0``:
    argmax (greedy)."""
    u = torch.rand_like(logp).clamp_(min=1e-20, max=1.0 - 1e-7)
    return torch.argmax(logp - noise_scale * torch.log(-torch.log(u)), -1)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)
