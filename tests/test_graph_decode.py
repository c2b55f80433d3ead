"""The graph engine (utils/train/graph_decode.py) on CPU: the same step the GPU records as a CUDA graph,
run eagerly, against transformers' own forward of a tiny random Llama (grouped-query attention)."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import tiny_llama

from utils.llm.models import embedded_checkpoint, load_tokenizer
from utils.train.graph_decode import (
    GraphDecoder,
    additive,
    decode_attention,
    fuse_linears,
    gumbel_argmax,
    prefill_allowed,
    supports,
)

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15]]  # a repeated prompt, padding


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(str(embedded_checkpoint(verbose=False)))


@pytest.fixture
def model(tok):
    m = tiny_llama(tok).eval()
    assert m.config.num_attention_heads != m.config.num_key_value_heads  # the grouped-query path is tested
    return m


def reference_logprobs(model, prompt: list[int], new: list[int], temperature: float = 1.0) -> torch.Tensor:
    """transformers' log-probabilities of ``new`` after ``prompt`` (no padding, one row)."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + new])).logits[0, len(prompt) - 1 : -1].float()
    return torch.log_softmax(logits / temperature, -1).gather(1, torch.tensor(new)[:, None]).squeeze(1)


@pytest.mark.parametrize("block", [64, 3])  # 3: the step attends over 3, 6, then 8 new-token columns
def test_greedy_answers_and_logprobs_equal_transformers(tok, model, block):
    engine = GraphDecoder(model, block=block)
    out, logp, steps, bad = engine.generate(PROMPTS, 8, [tok.eos_token_id], tok.pad_token_id, None, 16)
    assert steps == 8 and bad == 0
    for row, prompt in enumerate(PROMPTS):
        seq = list(prompt)
        for _ in range(8):  # transformers' greedy answer, one token at a time
            with torch.no_grad():
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
        assert out[row].tolist() == seq[len(prompt) :]
        ref = reference_logprobs(model, prompt, seq[len(prompt) :])
        assert torch.allclose(logp[row], ref, atol=1e-5)


def test_a_grpo_batch_keeps_each_prompt_once_and_computes_the_same(tok, model):
    """Groups of answers to one prompt, in order (a GRPO batch): one cache slot per prompt, read once per group,
    and every row's log-probabilities are still transformers'."""
    grouped = [PROMPTS[0]] * 3 + [PROMPTS[2]] * 3
    engine = GraphDecoder(model, block=2)
    out, logp, *_ = engine.generate(grouped, 6, [tok.eos_token_id], tok.pad_token_id, 1.0, 8)
    assert [key[1] for key in engine._states] == [2]  # (batch, prompt slots, ...): 2 slots for 6 rows
    for row, prompt in enumerate(grouped):
        assert torch.allclose(logp[row], reference_logprobs(model, prompt, out[row].tolist()), atol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampled_logprobs_are_the_policys_at_the_temperature(tok, model, temperature):
    torch.manual_seed(0)
    out, logp, steps, _ = GraphDecoder(model).generate(
        PROMPTS, 10, [tok.eos_token_id], tok.pad_token_id, temperature, 16
    )
    assert len({tuple(r) for r in out.tolist()}) == 4  # the two rows of the repeated prompt drew differently
    for row, prompt in enumerate(PROMPTS):
        ref = reference_logprobs(model, prompt, out[row].tolist(), temperature)
        assert torch.allclose(logp[row], ref, atol=1e-5)


def test_padding_width_changes_nothing(tok, model):
    engine = GraphDecoder(model)
    narrow = engine.generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8)
    wide = engine.generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 40)
    assert torch.equal(narrow[0], wide[0])
    assert torch.allclose(narrow[1], wide[1], atol=1e-5)


def test_rows_stop_at_eos_and_the_loop_stops_when_all_have(tok, model):
    engine = GraphDecoder(model, check_every=2)

    def sample(eos: list[int], new: int = 6):
        torch.manual_seed(1)  # the same draws every time: only the end-of-answer tokens differ
        return engine.generate(PROMPTS, new, eos, tok.pad_token_id, 1.0, 8)

    first, *_ = sample([tok.eos_token_id])
    assert first[2, 1] not in first[2, :1]
    stop = int(first[2, 1])  # declare row 2's second token an end-of-answer token
    out, logp, steps, _ = sample([tok.eos_token_id, stop])
    assert out[2, 1] == stop and (out[2, 2:] == tok.pad_token_id).all() and (logp[2, 2:] == 0).all()
    assert torch.equal(out[:, :2], first[:, :2])
    # every row ends at its first token: the loop stops at the first check, not after max_new_tokens
    _, _, steps, _ = sample(sorted({int(t) for t in first[:, 0]}), new=30)
    assert steps == 3  # 1 from the prefill + one check of 2 steps


def test_min_new_tokens_holds_back_the_end(tok, model):
    engine = GraphDecoder(model)
    torch.manual_seed(1)
    first, *_ = engine.generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, 1.0, 8)
    ends = sorted({int(t) for t in first[:, 0]})  # every row would end at once
    out, _, steps, _ = engine.generate(PROMPTS, 6, ends, tok.pad_token_id, 1.0, 8, min_new_tokens=6)
    assert steps == 6 and not torch.isin(out[:, :5], torch.tensor(ends)).any()


def test_in_place_weight_updates_are_seen(tok, model):
    """FastRollouts merges new LoRA weights into the copy in place; the engine reads them by reference."""
    engine = GraphDecoder(model)
    before, *_ = engine.generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    after, logp, *_ = engine.generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8)
    assert not torch.equal(before, after)
    ref = reference_logprobs(model, PROMPTS[2], after[2].tolist())
    assert torch.allclose(logp[2], ref, atol=1e-5)


@pytest.mark.parametrize("fuse_mlp", [False, True])  # True: what a GPU runs (the gate and up matrices stacked)
def test_fused_mlp_or_not_computes_transformers_forward(tok, model, fuse_mlp):
    out, logp, *_ = GraphDecoder(model, fuse_mlp=fuse_mlp).generate(
        PROMPTS, 5, [tok.eos_token_id], tok.pad_token_id, 1.0, 8
    )
    for row, prompt in enumerate(PROMPTS):
        assert torch.allclose(logp[row], reference_logprobs(model, prompt, out[row].tolist()), atol=1e-5)


def test_fused_projections_are_views_of_one_matrix(tok, model):
    """q, k, v (and gate, up) are multiplied as one matrix; the layers' weights become views of it, so the values
    stay and an in-place write to one layer's weight (the merge's copy_) reaches the fused matrix."""
    attn = model.model.layers[0].self_attn
    q, k, v = (lin.weight.detach().clone() for lin in (attn.q_proj, attn.k_proj, attn.v_proj))
    stacked = fuse_linears(attn.q_proj, attn.k_proj, attn.v_proj)
    assert torch.equal(stacked, torch.cat([q, k, v])) and torch.equal(attn.k_proj.weight, k)
    with torch.no_grad():
        attn.k_proj.weight.copy_(torch.ones_like(k))
    assert torch.equal(stacked[len(q) : len(q) + len(k)], torch.ones_like(k))
    # a second engine on the same model fuses again and still computes transformers' forward
    GraphDecoder(model)
    out, logp, *_ = GraphDecoder(model).generate(PROMPTS, 4, [tok.eos_token_id], tok.pad_token_id, None, 8)
    assert torch.allclose(logp[2], reference_logprobs(model, PROMPTS[2], out[2].tolist()), atol=1e-5)


def test_matmul_precision_is_the_engines_during_generation_only(tok, model, monkeypatch):
    """tf32 (fp32 products on tensor cores) is a per-engine choice: set while it generates, then put back."""
    import utils.train.graph_decode as gd

    seen, sample = [], gd._sample
    monkeypatch.setattr(
        gd, "_sample", lambda st, logits: (seen.append(torch.get_float32_matmul_precision()), sample(st, logits))
    )
    before = torch.get_float32_matmul_precision()
    GraphDecoder(model, tf32=True).generate(PROMPTS, 3, [tok.eos_token_id], tok.pad_token_id, None, 8)
    GraphDecoder(model).generate(PROMPTS, 3, [tok.eos_token_id], tok.pad_token_id, None, 8)
    assert seen == ["high"] * 3 + ["highest"] * 3 and torch.get_float32_matmul_precision() == before


@pytest.mark.parametrize("slots", [2, 6])  # 2: groups of 3 rows share a prompt; 6: a prompt copy per row
def test_written_out_decode_attention_is_sdpa_over_prompt_and_new_tokens(slots):
    """The decoding step's attention (a shared prompt part and each row's new tokens, matrix products + softmax)
    against SDPA over each row's whole key sequence [its prompt; its new tokens]: 6 rows, 2 key heads of 3 query
    heads, a 5-position prompt with pads, 4 new-token columns of which the first 2 are written."""
    torch.manual_seed(0)
    b, kv, g, d, w, n = 6, 2, 3, 8, 5, 4
    q, k, v = torch.randn(b, kv, g, d), torch.randn(b, kv, n, d), torch.randn(b, kv, n, d)
    pk, pv = torch.randn(slots, kv, w, d), torch.randn(slots, kv, w, d)
    prompt_ok = torch.rand(slots, w) > 0.3
    prompt_ok[0] = False  # a prompt slot that is all padding: the rows still have their own new key
    written = torch.arange(n) <= 1
    prompt_mask = additive(prompt_ok, torch.float32)[:, None, None]
    mask = additive(written, torch.float32)[None, None, None]
    out = decode_attention(q, pk, pv, prompt_mask, k, v, mask, 0.3)
    slot = torch.arange(b) // (b // slots)
    keys, values = torch.cat([pk[slot], k], 2), torch.cat([pv[slot], v], 2)
    allowed = torch.cat([prompt_ok[slot], written[None].expand(b, -1)], 1)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, keys, values, attn_mask=additive(allowed, torch.float32)[:, None, None], scale=0.3
    )
    assert torch.isfinite(out).all() and torch.allclose(out, expected, atol=1e-6)


def test_no_attention_row_is_ever_empty(tok, model, monkeypatch):
    """transformers 5.x leaves left-pad queries with no key (SDPA's NaN); here every mask that reaches attention,
    prefill (SDPA) and decoding (written out), has at least one key in every row, and real rows never see a pad
    key."""
    import utils.train.graph_decode as gd

    seen = {"calls": 0, "empty": 0}
    sdpa, written_out = torch.nn.functional.scaled_dot_product_attention, gd.decode_attention

    def spy(q, k, v, attn_mask=None, **kwargs):  # the prompt: SDPA
        seen["calls"] += 1
        seen["empty"] += int(torch.isneginf(attn_mask).all(-1).sum())
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    def spy_decode(q, pk, pv, prompt_mask, k, v, mask, scale):  # each new token: the written-out attention
        seen["calls"] += 1
        slot = torch.arange(q.shape[0]) // (q.shape[0] // pk.shape[0])
        both = torch.cat([prompt_mask[slot].expand(-1, *q.shape[1:3], -1), mask.expand(*q.shape[:3], -1)], -1)
        seen["empty"] += int(torch.isneginf(both).all(-1).sum())
        return written_out(q, pk, pv, prompt_mask, k, v, mask, scale)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    monkeypatch.setattr(gd, "decode_attention", spy_decode)
    _, logp, *_ = GraphDecoder(model).generate([[7], [8, 9, 10]], 4, [tok.eos_token_id], tok.pad_token_id, 1.0, 32)
    assert seen["calls"] == 4 * model.config.num_hidden_layers and seen["empty"] == 0
    assert torch.isfinite(logp).all()
    valid = torch.tensor([[False, False, True], [True, True, True]])
    allowed = prefill_allowed(valid, 5)
    assert allowed.any(-1).all()
    assert not allowed[1, :, 3:].any() and not allowed[0, 2, :2].any()  # no future key, no pad key for a real row
    assert additive(valid, torch.float32)[0].tolist() == [float("-inf")] * 2 + [0.0]  # a decoding row's prompt part


def test_gumbel_argmax_draws_from_the_softmax():
    torch.manual_seed(0)
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    draws = gumbel_argmax(probs.log()[None].expand(40_000, -1).contiguous())
    freq = torch.bincount(draws, minlength=4).float() / 40_000
    assert torch.allclose(freq, probs, atol=0.01)
    assert (gumbel_argmax(probs.log()[None].expand(50, -1).contiguous(), 0.0) == 0).all()  # no noise: argmax


def test_supports_only_what_it_computes(model):
    from transformers import GenerationConfig

    plain = dict(max_new_tokens=8, do_sample=True, temperature=0.9, top_k=0, top_p=1.0, eos_token_id=[2])
    assert supports(model, GenerationConfig(**plain)) is None
    assert "top_k" in supports(model, GenerationConfig(**{**plain, "top_k": 50}))
    assert "repetition_penalty" in supports(model, GenerationConfig(**{**plain, "repetition_penalty": 1.1}))
    assert "suppress_tokens" in supports(model, GenerationConfig(**plain, suppress_tokens=[3]))


@pytest.mark.skipif(
    os.environ.get("FAST_ROLLOUTS_COMPILE_TEST") != "1",
    reason="slow (inductor compiles the two layer blocks): FAST_ROLLOUTS_COMPILE_TEST=1 runs it",
)
def test_compiled_blocks_compute_the_same(tok, model):
    eager = GraphDecoder(model).generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8)
    compiled = GraphDecoder(model, compile_blocks=True).generate(
        PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8
    )
    assert torch.equal(eager[0], compiled[0]) and torch.allclose(eager[1], compiled[1], atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_replay_equals_the_eager_step(tok):
    model = tiny_llama(tok).cuda().eval()
    graph = GraphDecoder(model, block=4).generate(PROMPTS, 12, [tok.eos_token_id], tok.pad_token_id, None, 16)
    eager = GraphDecoder(model, use_graphs=False, block=4).generate(
        PROMPTS, 12, [tok.eos_token_id], tok.pad_token_id, None, 16
    )
    assert torch.equal(graph[0], eager[0]) and torch.allclose(graph[1], eager[1], atol=1e-5)


def test_a_trainers_autocast_does_not_change_what_the_copy_computes(tok, model):
    """TRL may hold an autocast region; the fp32 copy must still compute in fp32 (else it is a bf16 copy)."""
    plain = GraphDecoder(model).generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = GraphDecoder(model).generate(PROMPTS, 6, [tok.eos_token_id], tok.pad_token_id, None, 8)
    assert torch.equal(plain[0], inside[0]) and torch.equal(plain[1], inside[1])


def test_the_compiled_step_computes_the_same(tok, model):
    """compile_step: the decoding step's whole forward as one torch.compile graph (Inductor's C++ backend on a
    CPU, Triton on a GPU): the same greedy tokens and log-probabilities as the eager step, attended lengths that
    change (block 3: 3, 6, then 8 columns) compiled once, and a GRPO batch sampled with the same seed drawing
    the same tokens (sampling stays outside the compiled graph)."""
    from torch._dynamo.utils import counters

    engine = GraphDecoder(model, block=3, compile_step=True)
    eager = GraphDecoder(model, block=3).generate(PROMPTS, 8, [tok.eos_token_id], tok.pad_token_id, None, 16)
    graphs = counters["stats"]["unique_graphs"]
    compiled = engine.generate(PROMPTS, 8, [tok.eos_token_id], tok.pad_token_id, None, 16)
    assert counters["stats"]["unique_graphs"] - graphs == 1, "one compilation for every attended length"
    assert torch.equal(eager[0], compiled[0]) and torch.allclose(eager[1], compiled[1], atol=1e-5)
    group = [[5, 6, 7, 8]] * 4 + [[9, 10]] * 4
    torch.manual_seed(0)
    eager = GraphDecoder(model, block=3).generate(group, 8, [tok.eos_token_id], tok.pad_token_id, 1.0, 8)
    torch.manual_seed(0)
    compiled = engine.generate(group, 8, [tok.eos_token_id], tok.pad_token_id, 1.0, 8)
    assert torch.equal(eager[0], compiled[0]) and torch.allclose(eager[1], compiled[1], atol=1e-5)
    with pytest.raises(ValueError, match="one of compile_step, compile_blocks"):
        GraphDecoder(model, compile_step=True, compile_blocks=True)
