"""The course's attention (utils.llm.attention): no query row without a key ever reaches SDPA, in the policy's
training forward and in evaluation, and real tokens get exactly SDPA's logits and gradients.

Why it matters: GPU attention kernels return NaN for a row with no key (a left-pad position), forward or backward,
and 0 x NaN carries it into real rows. On an H100 (2026-12-07, results/bench_fast_rollouts_h100_2026-12-07.json)
TRL's GRPO step with stock SDPA had a finite loss and a NaN gradient norm at its first step. CPUs return finite
values for such rows, so the GPU's behaviour is reproduced here by a spy that writes NaN into them.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from helpers import tiny_llama  # noqa: E402
from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: E402
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS  # noqa: E402

from utils.llm import embedded_checkpoint, load_tokenizer  # noqa: E402
from utils.llm.attention import PADSAFE_ATTENTION, register_padsafe_attention  # noqa: E402
from utils.llm.models import load_causal_lm, load_model  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(str(embedded_checkpoint(verbose=False)))


def training_batch():
    """TRL's layout for two prompts of different lengths: prompts left-padded, answers right-padded."""
    ids = torch.tensor([[2, 2, 2, 11, 12, 13, 14, 15, 2], [21, 22, 23, 24, 25, 26, 27, 28, 29]])
    attention = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1]])
    answer = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1]]).bool()
    return ids, attention, answer


def gpu_like_sdpa(seen: dict):
    """SDPA as the H100 run behaved: the forward is finite, the backward of a query row whose mask allows no key
    is NaN (what the finite loss and NaN gradient norm of that run point to)."""

    def attend(module, query, key, value, attention_mask, **kwargs):
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            empty = ~attention_mask.any(dim=-1, keepdim=True)  # [batch, 1, queries, 1]; query: [batch, heads, q, d]
            seen["empty_rows"] += int(empty.sum())
            if empty.any() and query.requires_grad:
                query.register_hook(lambda grad: grad.masked_fill(empty, float("nan")))
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    return attend


def loss_and_grads(model, ids, attention, answer):
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    loss = -(logp * answer[:, 1:]).sum() / answer[:, 1:].sum()
    loss.backward()
    return loss, logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["sdpa", PADSAFE_ATTENTION])
def test_an_empty_attention_row_poisons_every_gradient_unless_none_reaches_sdpa(tok, attention, monkeypatch):
    """The failing pattern, then its cure: with stock SDPA the left pads' NaN reaches every weight's gradient
    (the loss stays finite, as in the H100 run); with the course's attention no row is empty and all is finite."""
    seen = {"empty_rows": 0}
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "sdpa", gpu_like_sdpa(seen))
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, PADSAFE_ATTENTION, gpu_like_sdpa(seen))
    model = tiny_llama(tok)
    model.set_attn_implementation(register_padsafe_attention() if attention == PADSAFE_ATTENTION else "sdpa")
    loss, _, grads = loss_and_grads(model.train(), *training_batch())
    finite = all(bool(torch.isfinite(g).all()) for g in grads.values())
    if attention == "sdpa":
        assert seen["empty_rows"] > 0 and torch.isfinite(loss) and not finite
    else:
        assert seen["empty_rows"] == 0 and torch.isfinite(loss) and finite


def test_real_tokens_get_exactly_sdpas_logits_and_gradients(tok):
    """Only rows that had no key change; their outputs are padding, outside the loss: same loss, same gradient."""
    ids, attention, answer = training_batch()
    stock = tiny_llama(tok)
    stock.set_attn_implementation("sdpa")
    safe = tiny_llama(tok)
    safe.set_attn_implementation(register_padsafe_attention())
    loss_a, logits_a, grads_a = loss_and_grads(stock.train(), ids, attention, answer)
    loss_b, logits_b, grads_b = loss_and_grads(safe.train(), ids, attention, answer)
    real = attention[:, :-1].bool()
    assert torch.equal(loss_a, loss_b)
    assert torch.allclose(logits_a[real], logits_b[real], atol=1e-6, rtol=0)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-7, rtol=1e-5), name


def test_the_policy_and_the_evaluated_model_attend_padsafe(tiny_model_dir):
    """Every model the course loads with transformers (training's policy, evaluation, merging) uses it; the saved
    config does not name it, so a merged model loads anywhere."""
    model, _ = load_causal_lm(tiny_model_dir, torch.float32)
    assert model.config._attn_implementation == PADSAFE_ATTENTION
    evaluated, _ = load_model(tiny_model_dir, device="cpu")
    assert evaluated.config._attn_implementation == PADSAFE_ATTENTION
    assert PADSAFE_ATTENTION not in model.config.to_json_string()
