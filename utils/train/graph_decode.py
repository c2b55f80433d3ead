"""A whole decoding step as one CUDA graph: the rollout engine behind ``FastRollouts(engine="graph")``.

Why: a GRPO rollout of the 135M model is 64 answers x up to 512 steps, and each step is about a
thousand small kernels (30 layers of norms, projections, rotary embeddings, attention, MLP).
transformers' ``generate`` launches them from Python (tens of microseconds each, plus its own per-step
bookkeeping), so the GPU waits on the CPU (measured on an H100: 8 ms a step in bf16,
24 ms in fp32, against a memory floor near 0.1 ms). Here the step (embedding, 30 layers with a
static KV cache, the LM head, sampling, the end-of-answer bookkeeping) is plain torch on fixed-size
tensors, so it is recorded once as a CUDA graph and replayed: one launch a step, no host sync but a
cheap check every ``check_every`` steps. A GRPO group's answers share one prompt: each distinct prompt is
prefilled once and its cache copied. ``compile_blocks=True`` also fuses each layer's element-wise kernels
with ``torch.compile`` (the graph still runs every kernel, so fewer kernels is what is left to win).

What it computes is the Llama forward of transformers (RMSNorm in fp32, rotary embeddings from
``inv_freq``, grouped-query attention, SiLU MLP, tied or separate LM head), reading the weights of an
existing ``LlamaForCausalLM``-shaped model *by reference*: when ``FastRollouts`` merges new LoRA
weights into that model in place, the graph sees them. ``tests/test_graph_decode.py`` checks its
logits against transformers' on CPU (where it runs the same step without a graph).

NaN-proof by construction: every query row may attend to its own position (a pad row sees itself),
so no softmax row is ever empty, and real rows never attend to pad keys.

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
        fuse_mlp: bool | None = None,
    ):
        self.model = model
        self.cfg = model.config
        self.check_every = check_every
        device = next(model.parameters()).device
        self.use_graphs = device.type == "cuda" if use_graphs is None else use_graphs
        # compile_blocks: torch.compile fuses each layer's small element-wise kernels (norms, rotary, SiLU) into a
        # few; a CUDA-graph step still runs every kernel, so fewer kernels is what is left to win on a GPU.
        compile_fn = (lambda f: torch.compile(f, dynamic=False)) if compile_blocks else (lambda f: f)
        self._pre, self._post = compile_fn(before_attention), compile_fn(after_attention)
        self._states: dict[tuple[int, int, int, int], _State] = {}  # (batch, width, new tokens, EOS ids)
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

    def _forward(self, ids, cos, sin, k_cache, v_cache, write_at, mask) -> torch.Tensor:
        """Hidden states after the final norm for ``ids`` [B, S]; writes keys/values at columns ``write_at`` [S].

        ``mask`` [B, 1, S, T] is additive (0 or -inf) over the whole cache width T.
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
            if s == 1:  # decoding: G query rows per key head
                out = decode_attention(q, k_cache[i], v_cache[i], mask, attn.scaling)
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
        Identical prompts (a GRPO group) are prefilled once and their cache copied.
        """
        device_type = self.model.lm_head.weight.device.type
        with torch.autocast(device_type, enabled=False):  # the copy's own dtype, even inside a trainer's autocast
            return self._generate(
                prompt_ids, max_new_tokens, eos_token_ids, pad_token_id, temperature, width, min_new_tokens
            )

    def _generate(self, prompt_ids, max_new_tokens, eos_token_ids, pad_token_id, temperature, width, min_new_tokens):
        b = len(prompt_ids)
        width = width or max(len(p) for p in prompt_ids)
        st = self._state(b, width, max_new_tokens, len(eos_token_ids))
        st.reset(pad_token_id, eos_token_ids, temperature, min_new_tokens)
        if self.use_graphs and st.graph is None:
            self._capture(st)
        self._prefill(st, prompt_ids, width)
        steps = 1
        while steps < max_new_tokens:
            run = min(self.check_every, max_new_tokens - steps)
            for _ in range(run):
                if st.graph is not None:
                    st.graph.replay()
                else:
                    self._step(st)
            steps += run
            if bool(st.done.all()):  # one host sync per check_every steps
                break
        return st.out[:, :steps].clone(), st.logp[:, :steps].clone(), steps, int(st.bad.sum())

    def _state(self, b: int, width: int, new: int, n_eos: int) -> _State:
        key = (b, width, new, n_eos)
        if key not in self._states:
            param = next(self.model.parameters())
            vocab = self.model.lm_head.weight.shape[0]
            self._states[key] = _State(self.cfg, b, width, new, n_eos, vocab, param.device, param.dtype)
        return self._states[key]

    def release(self) -> None:
        self._states.clear()

    def _prefill(self, st: _State, prompt_ids, width: int) -> None:
        """Runs the prompts (each distinct one once), fills the cache, samples the first new token."""
        unique: dict[tuple[int, ...], int] = {}
        rows = [unique.setdefault(tuple(p), len(unique)) for p in prompt_ids]
        dev = st.out.device
        u = len(unique)
        ids = torch.full((u, width), st.pad, dtype=torch.long)
        valid = torch.zeros((u, width), dtype=torch.bool)
        for p, r in unique.items():
            ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            valid[r, width - len(p) :] = True
        ids, valid = ids.to(dev), valid.to(dev)
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        mask = additive(prefill_allowed(valid, st.k.shape[3]), st.k.dtype)
        k = st.k.new_zeros((st.k.shape[0], u, *st.k.shape[2:]))
        v = torch.zeros_like(k)
        cos, sin = self._rope(positions, st.k.dtype)
        hidden = self._forward(ids, cos, sin, k, v, torch.arange(width, device=dev), mask[:, None])
        index = torch.tensor(rows, device=dev)
        st.k.copy_(k.index_select(1, index))
        st.v.copy_(v.index_select(1, index))
        st.prompt_valid.copy_(valid.index_select(0, index))
        st.pos.copy_(valid.long().sum(-1).index_select(0, index))  # next position = real prompt length
        st.step.zero_()
        logits = self.logits(hidden[:, -1]).index_select(0, index)
        _sample(st, logits)

    def _step(self, st: _State) -> None:
        """One decoding step on the state's fixed tensors (what the CUDA graph records)."""
        at = (st.step + st.width).view(1)  # cache column of the token being fed
        mask = additive(decode_allowed(st.prompt_valid, st.gen_cols, st.step), st.k.dtype)
        positions = (st.pos + st.step)[:, None]
        cos, sin = self._rope(positions, st.k.dtype)
        hidden = self._forward(st.tok[:, None], cos, sin, st.k, st.v, at, mask[:, None, None])
        st.step += 1
        _sample(st, self.logits(hidden[:, -1]))

    def _capture(self, st: _State) -> None:
        """Records ``_step`` as a CUDA graph (after warm-up runs on a side stream, as PyTorch requires)."""
        saved = [x.clone() for x in st.tensors()]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._step(st)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step(st)
        for x, y in zip(st.tensors(), saved):
            x.copy_(y)
        st.graph = graph


class _State:
    """The fixed-address tensors one (batch, width, new) shape decodes with."""

    def __init__(self, cfg, b: int, width: int, new: int, n_eos: int, vocab: int, device, dtype):
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        t = width + new
        self.width = width
        self.k = torch.zeros(
            (cfg.num_hidden_layers, b, cfg.num_key_value_heads, t, head_dim), dtype=dtype, device=device
        )
        self.v = torch.zeros_like(self.k)
        self.prompt_valid = torch.zeros((b, width), dtype=torch.bool, device=device)
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
        self.graph: torch.cuda.CUDAGraph | None = None

    def tensors(self) -> list[torch.Tensor]:
        return [
            self.k,
            self.v,
            self.prompt_valid,
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


def decode_attention(q, k, v, mask, scale: float) -> torch.Tensor:
    """Attention of a decoding step written out: two batched matrix products and a softmax.

    ``q`` [B, KV, G, D] (one new token: the G query heads of each key head), ``k``/``v`` [B, KV, T, D], ``mask``
    additive, broadcastable to [B, KV, G, T]. In fp32, SDPA has only its memory-efficient kernel, made for long
    query blocks: with G = 3 rows it took 159 us a layer on an H100, half of a decoding step. These two products
    only have to read the cache once each. Same formula as SDPA's; every row has at least its own key (no NaN)."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale + mask
    return torch.matmul(torch.softmax(scores, -1), v)


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


def decode_allowed(prompt_valid: torch.Tensor, gen_cols: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """[B, T] the keys of the token fed at ``step``: the real prompt tokens and new tokens 0..step (itself included)."""
    return torch.cat([prompt_valid, (gen_cols <= step)[None].expand(prompt_valid.shape[0], -1)], 1)


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
