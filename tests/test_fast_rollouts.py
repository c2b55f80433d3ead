"""FastRollouts on CPU with a tiny random Llama (course tokenizer) and a LoRA whose B is non-zero.

About 30 s on 2 idle cores. The GPU figures are in benchmarks/bench_fast_rollouts.py.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings

import pytest
import torch
from helpers import tiny_llama

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from utils.llm.attention import PADSAFE_ATTENTION, padsafe_sdpa_mask, register_padsafe_attention
from utils.llm.models import embedded_checkpoint, load_tokenizer
from utils.task.data import load_split
from utils.task.prompts import build_messages
from utils.train.fast_rollouts import TESTED_TRL, FastRollouts, NonFiniteLogits, left_padded, trim_after_eos

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(str(embedded_checkpoint(verbose=False)))


@pytest.fixture(scope="module")
def rows():
    return load_split("test", 8)


def tiny_policy(tok, seed: int = 0, modules_to_save: list[str] | None = None):
    """Tiny random Llama + LoRA with random (non-zero) B; ``modules_to_save`` copies perturbed so they matter."""
    from peft import LoraConfig, get_peft_model

    model = tiny_llama(tok, seed)
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        init_lora_weights=False,
        modules_to_save=modules_to_save,
        task_type="CAUSAL_LM",
    )
    policy = get_peft_model(model, lora)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "modules_to_save" in name:
                p.add_(0.5 * torch.randn_like(p))
    return policy


def chat_ids(tok, rows, cut: list[int] | None = None) -> list[list[int]]:
    """Templated prompt ids of course rows, optionally cut to the given lengths (short = fast on CPU)."""
    build = build_messages
    ids = [
        tok.apply_chat_template(build(r), add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        for r in rows
    ]
    return [i[:n] for i, n in zip(ids, cut)] if cut else ids


def plain_generate(policy, tok, prompt_ids, config, eos) -> list[list[int]]:
    """What TRL's plain path does: left-pad to the batch's longest prompt, generate on the PEFT model, trim."""
    width = max(map(len, prompt_ids))
    ids = torch.full((len(prompt_ids), width), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(prompt_ids):
        ids[r, width - len(p) :] = torch.tensor(p)
        mask[r, width - len(p) :] = 1
    with torch.no_grad():
        out = policy.generate(input_ids=ids, attention_mask=mask, generation_config=copy.deepcopy(config))
    return trim_after_eos(out[:, width:], eos)


def greedy(tok, max_new: int, eos: list[int]):
    from transformers import GenerationConfig

    return GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=eos, pad_token_id=tok.pad_token_id)


def merged_reference(policy) -> dict[str, torch.Tensor]:
    return copy.deepcopy(policy).merge_and_unload().state_dict()


# ----------------------------------------------------------------------------- (a) the merge
@pytest.mark.parametrize("modules_to_save", [None, ["norm"]])
def test_merged_copy_matches_peft_and_merge_and_unload(tok, modules_to_save):
    policy = tiny_policy(tok, modules_to_save=modules_to_save)
    fast = FastRollouts()
    fast.refresh(policy, "cpu", torch.float32)
    reference = merged_reference(policy)
    mine = fast.infer.state_dict()
    assert set(mine) == set(reference)
    for name, value in reference.items():
        torch.testing.assert_close(mine[name], value, rtol=0, atol=1e-6, msg=name)
    x = torch.randint(0, len(tok), (3, 17))
    with torch.no_grad():
        torch.testing.assert_close(fast.infer(x).logits, policy(x).logits, rtol=1e-5, atol=1e-5)
    # The LoRA must matter here, or the test proves nothing.
    with torch.no_grad(), policy.disable_adapter():
        assert (policy(x).logits - fast.infer(x).logits).abs().max() > 1e-3


def test_refresh_writes_in_place(tok):
    """Compiled graphs / CUDA graphs keep tensor addresses: a refresh must not replace any tensor."""
    policy = tiny_policy(tok)
    fast = FastRollouts()
    fast.refresh(policy, "cpu", torch.float32)
    before = {n: p.data_ptr() for n, p in fast.infer.named_parameters()}
    with torch.no_grad():
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.mul_(-2.0)
    fast.refresh(policy, "cpu")
    assert before == {n: p.data_ptr() for n, p in fast.infer.named_parameters()}
    for name, value in merged_reference(policy).items():
        torch.testing.assert_close(fast.infer.state_dict()[name], value, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- (b) same tokens as plain generate
@pytest.mark.parametrize("engine", ["graph", "generate"])
def test_greedy_tokens_equal_plain_generate_with_eos_and_padding(tok, rows, engine):
    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:4], cut=[40, 47, 54, 61])  # different lengths: real left padding
    fast = FastRollouts(prompt_bucket=128, engine=engine)
    fast.refresh(policy, "cpu", torch.float32)
    eos = [tok.eos_token_id]
    first = plain_generate(policy, tok, prompts, greedy(tok, 12, eos), eos)
    # A tiny random model never says <|im_end|>: declare a token it does emit mid-answer in some rows a second EOS.
    stop = next(t for t in first[0][1:] if any(t not in row for row in first[1:]))
    eos = [tok.eos_token_id, stop]
    config = greedy(tok, 12, eos)
    expected = plain_generate(policy, tok, prompts, config, eos)
    got = fast.generate(prompts, config, eos)
    assert got == expected
    lengths = [len(c) for c in got]
    assert min(lengths) < 12 and max(lengths) == 12  # some rows stopped (EOS kept as last token), some ran out
    assert all(c[-1] in eos for c in got if len(c) < 12)
    assert fast.history[-1].path == {"graph": "graph", "generate": "static"}[engine]
    assert fast.history[-1].prompt_width == 128


def test_nonfinite_logits_fall_back_to_the_policy(tok, rows):
    """Seen on an H200: the copy rarely gave NaN logits, and sampling hit a device-side assert that
    ended the run. The guard notices, and the batch is generated by the policy itself instead."""
    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:2], cut=[40, 47])
    fast = FastRollouts(prompt_bucket=64, engine="generate")
    fast.refresh(policy, "cpu", torch.float32)
    eos = [tok.eos_token_id]
    fast.infer.lm_head.register_forward_hook(lambda module, args, out: out * float("nan"))
    with pytest.raises(NonFiniteLogits, match="2 of 2 rows"):
        fast.generate(prompts, greedy(tok, 6, eos), eos)
    with pytest.warns(UserWarning, match="generated by the policy itself"):
        got = fast._plain_fallback(policy, prompts, greedy(tok, 6, eos), eos, 3, NonFiniteLogits("x"))
    assert got == plain_generate(policy, tok, prompts, greedy(tok, 6, eos), eos)
    assert fast.infer is None and fast.nonfinite_fallbacks == 1  # rebuilt (hook-free) at the next refresh
    assert fast.history[-1].path == "nonfinite-fallback" and fast.history[-1].step == 3
    fast.refresh(policy, "cpu", torch.float32)
    assert fast.generate(prompts, greedy(tok, 6, eos), eos) == got


def test_graph_engine_reports_nonfinite_logits_as_the_last_resort(tok, rows):
    """The graph engine cannot produce NaN through attention, but a broken weight still must not pass
    silently: the rows are counted and ``rollout_func`` falls back exactly as with generate."""
    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:2], cut=[40, 47])
    fast = FastRollouts(prompt_bucket=64, engine="graph")
    fast.refresh(policy, "cpu", torch.float32)
    eos = [tok.eos_token_id]
    with torch.no_grad():
        fast.infer.model.norm.weight[0] = float("nan")
    with pytest.raises(NonFiniteLogits, match="2 of 2 rows"):
        fast.generate(prompts, greedy(tok, 6, eos), eos)


def test_a_failing_graph_engine_falls_back_to_generate_when_auto(tok, rows, monkeypatch):
    """A GPU the graph engine cannot record on (say, a capture error) must not end the run under "auto": one
    warning, then transformers generate for good. Asked for by name, the error is raised."""
    from utils.train import graph_decode

    def broken(self, *args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graph_decode.GraphDecoder, "generate", broken)
    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:2], cut=[40, 47])
    eos = [tok.eos_token_id]
    fast = FastRollouts(prompt_bucket=64)
    fast.refresh(policy, "cpu", torch.float32)
    with pytest.warns(UserWarning, match="graph engine failed .*RuntimeError"):
        got = fast.generate(prompts, greedy(tok, 6, eos), eos)
    assert got == plain_generate(policy, tok, prompts, greedy(tok, 6, eos), eos)
    assert fast.engine == "generate" and fast.history[-1].path == "static"
    named = FastRollouts(prompt_bucket=64, engine="graph")
    named.refresh(policy, "cpu", torch.float32)
    with pytest.raises(RuntimeError, match="stream is capturing"):
        named.generate(prompts, greedy(tok, 6, eos), eos)


def test_the_graph_engine_by_name_refuses_settings_it_does_not_compute(tok, rows):
    policy = tiny_policy(tok)
    fast = FastRollouts(prompt_bucket=64, engine="graph")
    fast.refresh(policy, "cpu", torch.float32)
    config = greedy(tok, 6, [tok.eos_token_id])
    config.suppress_tokens = [10]
    with pytest.raises(ValueError, match="cannot generate with these settings: generation settings .*suppress_tokens"):
        fast.generate(chat_ids(tok, rows[:2], cut=[20, 30]), config, [tok.eos_token_id])


def test_compile_takes_the_known_choices_only():
    assert FastRollouts(compile="step").compile == "step"
    with pytest.raises(ValueError, match="compile='steps': None, False, True .* or 'step'"):
        FastRollouts(compile="steps")


def test_banned_tokens_are_not_mistaken_for_nonfinite_logits(tok, rows):
    """Processors that run before the guard ban tokens with -inf (here ``suppress_tokens``, as a learner's
    ``generation_kwargs`` might): that is not a fault, and the fast path must not fall back for it."""
    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:2], cut=[40, 47])
    fast = FastRollouts(prompt_bucket=64)
    fast.refresh(policy, "cpu", torch.float32)
    eos = [tok.eos_token_id]
    config = greedy(tok, 6, eos)
    config.suppress_tokens = list(range(10, 2000))
    got = fast.generate(prompts, config, eos)  # raises NonFiniteLogits if the guard misreads -inf
    assert got == plain_generate(policy, tok, prompts, config, eos)
    assert all(not 10 <= t < 2000 for c in got for t in c)
    assert fast.history[-1].path == "static"  # the graph engine does not ban tokens: generate does it


def test_sampled_tokens_equal_plain_generate_with_same_seed(tok, rows):
    from transformers import GenerationConfig

    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:3], cut=[30, 45, 60])
    fast = FastRollouts(prompt_bucket=64)
    fast.refresh(policy, "cpu", torch.float32)
    eos = [tok.eos_token_id]
    config = GenerationConfig(
        max_new_tokens=10,
        do_sample=True,
        temperature=0.9,
        top_k=50,
        top_p=0.95,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(123)
    expected = plain_generate(policy, tok, prompts, config, eos)
    torch.manual_seed(123)
    assert fast.generate(prompts, config, eos) == expected


# ----------------------------------------------------------------------------- (c) prompts longer than the bucket
@pytest.mark.parametrize("engine", ["graph", "generate"])
def test_long_prompts_grow_the_bucket_or_fall_back(tok, rows, engine):
    policy = tiny_policy(tok)
    eos = [tok.eos_token_id]
    config = greedy(tok, 6, eos)
    fast = FastRollouts(prompt_bucket=32, bucket_multiple=32, max_prompt_bucket=64, engine=engine)
    fast.refresh(policy, "cpu", torch.float32)
    short = chat_ids(tok, rows[:2], cut=[20, 30])
    assert fast.generate(short, config, eos) == plain_generate(policy, tok, short, config, eos)
    grown = chat_ids(tok, rows[:2], cut=[20, 50])
    with pytest.warns(UserWarning, match="bucket is now 64"):
        assert fast.generate(grown, config, eos) == plain_generate(policy, tok, grown, config, eos)
    too_long = chat_ids(tok, rows[:2], cut=[20, 90])
    with pytest.warns(UserWarning, match="plain generate"):
        assert fast.generate(too_long, config, eos) == plain_generate(policy, tok, too_long, config, eos)
    bucketed = {"graph": "graph", "generate": "static"}[engine]
    assert [h.path for h in fast.history] == [bucketed, bucketed, "fallback"]
    assert [h.prompt_width for h in fast.history] == [32, 64, 90]


def test_trim_matches_trl_rule():
    eos = [2, 7]
    rows = torch.tensor([[5, 2, 2, 2], [5, 6, 7, 2], [5, 6, 8, 9], [2, 2, 2, 2]])
    assert trim_after_eos(rows, eos) == [[5, 2], [5, 6, 7], [5, 6, 8, 9], [2]]


def test_left_padded_puts_every_last_prompt_token_in_the_same_column():
    ids, mask = left_padded([[4, 5, 6], [7], []], 4, pad_id=0)
    assert ids.tolist() == [[0, 4, 5, 6], [0, 0, 0, 7], [0, 0, 0, 0]]
    assert mask.tolist() == [[0, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert left_padded([[3]], 2, pad_id=None)[0].tolist() == [[0, 3]]  # no pad token: 0, masked out anyway


# ----------------------------------------------------------------------------- (d) a real GRPOTrainer run
def _trainer(tok, rows, policy, fast_hook, out_dir, **config):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    build = build_messages
    data = Dataset.from_list([{"prompt": build(r), "row_id": i} for i, r in enumerate(rows)])
    # Short prompts keep CPU time down; the trainer tokenises them itself (chat template).
    data = data.map(
        lambda x: {"prompt": [x["prompt"][0], {"role": "user", "content": x["prompt"][1]["content"][-120:]}]}
    )
    defaults = dict(
        output_dir=str(out_dir),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        learning_rate=5e-2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        seed=0,
        bf16=False,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    args = GRPOConfig(**{**defaults, **config})

    def varied_reward(completions, completion_ids, **kwargs):
        # Extra rollout keys reach the rewards by name: a list is split per completion, anything else is
        # copied to every completion (so the reward sees a list of it too).
        assert kwargs["probe"] == list(range(len(completions))) and kwargs["tag"] == ["fast"] * len(completions)
        assert len(kwargs["row_id"]) == len(completions)
        return [float(sum(ids) % 7) for ids in completion_ids]  # varies: non-zero advantages, real gradients

    return GRPOTrainer(
        model=policy,
        reward_funcs=[varied_reward],
        args=args,
        train_dataset=data,
        processing_class=tok,
        rollout_func=fast_hook,
    )


def _recording_hook(fast: FastRollouts, calls: list[dict]):
    def hook(prompts, trainer):
        out = fast.rollout_func(prompts, trainer)
        policy = trainer.accelerator.unwrap_model(trainer.model)
        calls.append(
            {
                "prompts": prompts,
                "out": out,
                "step": trainer.state.global_step,
                "copy": {k: v.clone() for k, v in fast.infer.state_dict().items()},
                "reference": merged_reference(policy),
                "lora": {k: v.detach().clone() for k, v in policy.named_parameters() if "lora_" in k},
            }
        )
        return {**out, "probe": list(range(len(prompts))), "tag": "fast"}

    return hook


def test_grpo_trainer_two_steps_refreshes_copy_every_step(tok, rows, tmp_path):
    fast, calls = FastRollouts(), []
    trainer = _trainer(tok, rows, tiny_policy(tok), _recording_hook(fast, calls), tmp_path)
    trainer.train()

    assert [c["step"] for c in calls] == [0, 1]
    # TRL passes the raw (untemplated) chat prompts, each already repeated num_generations times.
    first = calls[0]["prompts"]
    assert len(first) == 4 and first[0] == first[1] and first[2] == first[3] and first[0] != first[2]
    assert isinstance(first[0], list) and first[0][0]["role"] == "system"
    out = calls[0]["out"]
    assert len(out["prompt_ids"]) == len(out["completion_ids"]) == len(out["logprobs"]) == 4
    assert [len(lp) for lp in out["logprobs"]] == [len(c) for c in out["completion_ids"]]
    assert all(1 <= len(c) <= 8 for c in out["completion_ids"])
    # On-policy: each rollout's copy equals PEFT's merge of the weights at that moment...
    for call in calls:
        for name, value in call["reference"].items():
            torch.testing.assert_close(call["copy"][name], value, rtol=0, atol=1e-6, msg=name)
    # ...and the optimizer step in between changed both the LoRA and the copy.
    assert any(not torch.equal(calls[0]["lora"][k], calls[1]["lora"][k]) for k in calls[0]["lora"])
    changed = [k for k in calls[0]["copy"] if not torch.equal(calls[0]["copy"][k], calls[1]["copy"][k])]
    assert any(k.endswith("q_proj.weight") for k in changed)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 2 and all("rewards/varied_reward/mean" in h for h in logs)
    assert [h.step for h in fast.history] == [0, 1] and all(h.merge_s > 0 for h in fast.history)


def test_resume_from_checkpoint_uses_loaded_weights(tok, rows, tmp_path):
    first_calls: list[dict] = []
    trainer = _trainer(
        tok,
        rows,
        tiny_policy(tok, seed=0),
        _recording_hook(FastRollouts(), first_calls),
        tmp_path,
        max_steps=2,
        save_strategy="steps",
        save_steps=1,
    )
    trainer.train()
    checkpoint = tmp_path / "checkpoint-1"
    assert checkpoint.is_dir()

    calls: list[dict] = []  # a new process, in effect: other initial LoRA, a new FastRollouts
    trainer = _trainer(
        tok, rows, tiny_policy(tok, seed=1), _recording_hook(FastRollouts(), calls), tmp_path, max_steps=2
    )
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert [c["step"] for c in calls] == [1]
    for name, value in calls[0]["lora"].items():  # the adapter came from the checkpoint...
        torch.testing.assert_close(value, first_calls[1]["lora"][name], rtol=0, atol=0)
    for name, value in calls[0]["reference"].items():  # ...and the copy was built from it
        torch.testing.assert_close(calls[0]["copy"][name], value, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- (e) the TRL contract
def test_trl_rollout_func_contract_unchanged(tok):
    """Fails loudly when TRL changes what this module relies on (read off TRL 1.14.2's source)."""
    import trl
    from trl import GRPOConfig, GRPOTrainer
    from trl.trainer import grpo_trainer

    if trl.__version__ != TESTED_TRL:
        warnings.warn(f"FastRollouts was checked against TRL {TESTED_TRL}, this is {trl.__version__}", stacklevel=1)
    assert "rollout_func" in inspect.signature(GRPOTrainer.__init__).parameters
    assert "RolloutFunc" in dir(grpo_trainer)
    generate = inspect.getsource(GRPOTrainer._generate)
    for needle in (
        "self.rollout_func(prompts, self)",
        'required_keys = {"prompt_ids", "completion_ids", "logprobs"}',
        "extra_fields = {k: v for k, v in output.items() if k not in required_keys}",
        'extra_fields.pop("env_mask", None)',
    ):
        assert needle in generate, f"TRL's _generate changed: {needle!r} is gone"
    single = inspect.getsource(GRPOTrainer._generate_single_turn)  # the plain path whose trimming we copy
    assert "is_eos.int().argmax(dim=1)" in single and "sequence_indices <= eos_idx.unsqueeze(1)" in single
    score = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "self._generate(prompts)" in score and "if self.mask_truncated_completions:" in score
    assert list(inspect.signature(GRPOTrainer._tokenize_prompts).parameters) == ["self", "prompts"]
    # log_sampling_mismatch reads the loss's own forward: the inputs key and the call it wraps.
    assert list(inspect.signature(GRPOTrainer._compute_loss).parameters) == ["self", "model", "inputs"]
    loss = inspect.getsource(GRPOTrainer._compute_loss)
    assert "per_token_logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(" in loss
    assert 'output["sampling_per_token_logps"] = sampling_per_token_logps' in score
    # The sampling settings the hook reuses, built in __init__ from the config.
    from datasets import Dataset

    trainer = GRPOTrainer(
        model=tiny_policy(tok),
        reward_funcs=[lambda completions, **k: [0.0] * len(completions)],
        args=GRPOConfig(
            output_dir="/tmp/fast_rollouts_contract",
            per_device_train_batch_size=2,
            num_generations=2,
            max_completion_length=5,
            temperature=0.7,
            top_k=5,
            report_to="none",
            use_cpu=True,
            generation_kwargs={"min_new_tokens": 2},
        ),
        train_dataset=Dataset.from_list([{"prompt": "a"}, {"prompt": "b"}]),
        processing_class=tok,
        rollout_func=lambda p, t: {},
    )
    kw = trainer.generation_kwargs
    assert {k: kw[k] for k in ("max_new_tokens", "do_sample", "temperature", "top_k", "min_new_tokens")} == {
        "max_new_tokens": 5,
        "do_sample": True,
        "temperature": 0.7,
        "top_k": 5,
        "min_new_tokens": 2,
    }
    assert kw["eos_token_id"] == trainer.eos_token_ids and kw["pad_token_id"] == tok.pad_token_id
    assert trainer.generation_config.to_dict() == _with(trainer.generation_config, **kw).to_dict()


def _with(config, **kwargs):
    from transformers import GenerationConfig

    return GenerationConfig(**{**kwargs, "disable_compile": config.disable_compile})


def test_static_cache_is_reused_with_stable_addresses(tok, rows):
    """CUDA graphs replay only while the KV cache tensors stay where they were recorded."""
    policy = tiny_policy(tok)
    fast = FastRollouts(prompt_bucket=64, engine="generate")
    fast.refresh(policy, "cpu", torch.float32)
    eos = [tok.eos_token_id]
    prompts = chat_ids(tok, rows[:2], cut=[20, 30])
    first = fast.generate(prompts, greedy(tok, 6, eos), eos)
    ((cache, length),) = fast._caches.values()
    pointers = [layer.keys.data_ptr() for layer in cache.layers]
    assert fast.generate(prompts, greedy(tok, 4, eos), eos) == [c[:4] for c in first]  # shorter: same cache
    assert fast.generate(prompts, greedy(tok, 6, eos), eos) == first  # reset between calls: same answer
    ((again, _),) = fast._caches.values()
    assert again is cache and [layer.keys.data_ptr() for layer in again.layers] == pointers
    assert fast.cache_lengths() == {(2, 64): 70}


@pytest.mark.skipif(
    os.environ.get("FAST_ROLLOUTS_COMPILE_TEST") != "1",
    reason="slow (about a minute of inductor compilation): FAST_ROLLOUTS_COMPILE_TEST=1 runs it",
)
def test_compiled_decoding_sees_in_place_updates_without_recompiling(tok, rows):
    """torch.compile of transformers' generate (engine "generate") on CPU (no CUDA graphs here): one graph for all
    calls, and it reads the refreshed weights. (The graph engine's compiled blocks: tests/test_graph_decode.py.)"""
    from torch._dynamo.utils import counters
    from transformers.generation.configuration_utils import CompileConfig

    policy = tiny_policy(tok)
    prompts = chat_ids(tok, rows[:4], cut=[20, 25, 30, 35])
    eos = [tok.eos_token_id]
    config = greedy(tok, 8, eos)
    config.compile_config = CompileConfig(mode="default", fullgraph=False)
    config.compile_config._compile_all_devices = True  # transformers compiles on CUDA only unless told
    fast = FastRollouts(prompt_bucket=64, compile=True, engine="generate")
    graphs = None
    for _ in range(3):
        fast.refresh(policy, "cpu", torch.float32)
        assert fast.generate(prompts, config, eos) == plain_generate(policy, tok, prompts, greedy(tok, 8, eos), eos)
        assert hasattr(fast.infer, "_compiled_call")
        graphs = graphs or counters["stats"]["unique_graphs"]
        assert counters["stats"]["unique_graphs"] == graphs  # no recompilation after a weight refresh
        with torch.no_grad():
            for name, p in policy.named_parameters():
                if "lora_B" in name:
                    p.add_(0.5 * torch.randn_like(p))


# ----------------------------------------------------------------------------- (g) exact: the copy samples the policy
def policy_logprobs(policy, prompt: list[int], completion: list[int], temperature: float) -> torch.Tensor:
    """What TRL's loss computes: log_softmax(logits / temperature) at each completion token."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = policy(input_ids=ids).logits[0, len(prompt) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(completion)[:, None]).squeeze(1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_copy_logprobs_equal_the_policys_after_lora_updates(tok, rows, temperature):
    """After each LoRA update (as an optimizer step would make) the refreshed copy's sampled-token
    log-probabilities, which rollout_func returns to TRL, equal the policy's own for the same tokens."""
    from transformers import GenerationConfig

    policy, fast = tiny_policy(tok), FastRollouts(prompt_bucket=64)
    prompts = chat_ids(tok, rows[:3], cut=[20, 33, 41])  # different lengths: left padding in the batch
    config = GenerationConfig(
        max_new_tokens=10, do_sample=True, temperature=temperature, top_k=0, top_p=1.0, pad_token_id=tok.pad_token_id
    )
    for update in range(3):
        with torch.no_grad():
            for name, p in policy.named_parameters():
                if "lora_" in name:
                    p.add_(0.05 * torch.randn_like(p))
        fast.refresh(policy, "cpu", torch.float32)
        torch.manual_seed(update)
        completions = fast.generate(prompts, config, [tok.eos_token_id])
        assert [len(lp) for lp in fast.last_logprobs] == [len(c) for c in completions]
        for prompt, completion, logps in zip(prompts, completions, fast.last_logprobs):
            want = policy_logprobs(policy, prompt, completion, temperature)
            torch.testing.assert_close(torch.tensor(logps), want, rtol=0, atol=1e-4)


def test_fp32_copy_keeps_a_small_lora_delta_that_bf16_rounds_away(tok):
    """Why the copy is fp32 by default: bf16 weights hold 8 significant bits, so a LoRA delta a few hundred
    times smaller than a weight (a few GRPO steps at lr 1e-5) vanishes when merged into bf16."""
    policy = tiny_policy(tok)
    base = policy.get_base_model()
    layer = base.model.layers[0].self_attn.q_proj
    with torch.no_grad():
        for name, p in base.named_parameters():
            if "lora_" not in name:
                p.copy_(p.to(torch.bfloat16).float())  # base weights exactly representable in bf16
        # a delta 1/1000 of the typical weight, as after a few small GRPO steps
        ratio = layer.get_delta_weight("default").abs().mean() / layer.get_base_layer().weight.abs().mean()
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.mul_(1e-3 / float(ratio))
    exact = layer.get_base_layer().weight.float() + layer.get_delta_weight("default").float()
    delta = exact - layer.get_base_layer().weight.float()
    fp32, bf16 = FastRollouts(), FastRollouts()
    fp32.refresh(policy, "cpu", torch.float32)
    bf16.refresh(policy, "cpu", torch.bfloat16)
    kept = lambda fast: fast.infer.model.layers[0].self_attn.q_proj.weight.float() - layer.get_base_layer().weight  # noqa: E731
    torch.testing.assert_close(kept(fp32), delta, rtol=1e-5, atol=1e-7)
    lost = 1 - (kept(bf16) * delta).sum() / (delta * delta).sum()  # share of the delta the bf16 merge lost
    assert lost > 0.5, f"bf16 kept too much of the delta ({1 - lost:.2f}): the test proves nothing"


def test_rollout_func_defaults_to_an_fp32_copy(tok, rows, tmp_path):
    fast = FastRollouts()
    trainer = _trainer(tok, rows, tiny_policy(tok), _recording_hook(fast, []), tmp_path, max_steps=1)
    trainer.train()
    assert fast.infer.dtype == torch.float32
    # ... and TRL's loss forward, compared with the copy's sampled-token log-probs, logs the mismatch:
    # the same weights, both fp32 on CPU, so it is rounding noise.
    logged = next(h for h in trainer.state.log_history if "rollouts/logp_diff_abs" in h)
    assert 0 <= logged["rollouts/logp_diff_abs"] < 1e-5 and abs(logged["rollouts/logp_diff"]) < 1e-5


def test_a_large_model_gets_a_copy_in_its_own_dtype_said_once(tok, monkeypatch, capsys):
    """fp32 copies only up to FP32_COPY_MAX_GIB: beyond it (a 7B model: 28 GiB) the copy keeps the policy's dtype,
    and the trainer's log says so once, with the way to an exact sampler."""
    from utils.train import fast_rollouts

    policy = tiny_policy(tok).to(torch.bfloat16)
    fast = FastRollouts()
    assert fast._copy_dtype(policy) == torch.float32 and capsys.readouterr().out == ""  # small: exact copy
    monkeypatch.setattr(fast_rollouts, "FP32_COPY_MAX_GIB", 1e-6)  # this model now counts as large
    assert fast._copy_dtype(policy) == torch.bfloat16
    assert fast._copy_dtype(policy) == torch.bfloat16
    said = capsys.readouterr().out
    assert said.count("FastRollouts: the rollout copy is bfloat16, not fp32") == 1
    assert "COURSE_GENERATION=plain" in said


# ----------------------------------------------------------------------------- (h) NaN-proof by construction
def left_padded_mask_inputs(model):
    """The failing pattern: a batch whose first row is left-padded (3 pads), at prefill."""
    from transformers.masking_utils import create_causal_mask

    ids = torch.tensor([[2, 2, 2, 5, 6], [5, 6, 7, 8, 9]])
    attention = torch.tensor([[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
    return create_causal_mask(
        config=model.config,
        inputs_embeds=model.get_input_embeddings()(ids),
        attention_mask=attention,
        past_key_values=None,
        position_ids=torch.arange(5)[None].expand(2, -1),
    )


def test_stock_sdpa_mask_leaves_pad_queries_without_a_key_and_padsafe_does_not(tok):
    """transformers 5.x's SDPA mask gives every left-pad query an all-False row (SDPA's NaN on GPU kernels);
    the copy's mask gives none, and leaves every row that had a key exactly as it was."""
    model = tiny_llama(tok)
    model.set_attn_implementation("sdpa")
    stock = left_padded_mask_inputs(model)
    assert int((~stock.any(dim=-1)).sum()) == 3  # if transformers repairs this again, the pattern is gone
    model.set_attn_implementation(register_padsafe_attention())
    safe = left_padded_mask_inputs(model)
    assert not (~safe.any(dim=-1)).any()
    had_key = stock.any(dim=-1, keepdim=True).expand_as(stock)
    assert torch.equal(safe[had_key], stock[had_key])
    assert padsafe_sdpa_mask(batch_size=1, q_length=4, kv_length=4) is None  # no padding: SDPA's is_causal


def test_no_query_row_without_a_key_reaches_sdpa_in_the_copy(tok, rows, monkeypatch):
    """Every attention call of a real left-padded generation (prefill and decoding) gets a mask in which
    each query row has at least one key."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    seen = {"calls": 0, "empty_rows": 0}

    def spy(module, query, key, value, attention_mask, **kwargs):
        seen["calls"] += 1
        if attention_mask is not None:
            seen["empty_rows"] += int((~attention_mask.any(dim=-1)).sum())
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    policy, fast = tiny_policy(tok), FastRollouts(prompt_bucket=64, engine="generate")
    fast.refresh(policy, "cpu", torch.float32)  # builds the copy (and registers the attention)
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, PADSAFE_ATTENTION, spy)
    assert fast.infer.config._attn_implementation == PADSAFE_ATTENTION
    prompts = chat_ids(tok, rows[:3], cut=[9, 30, 50])  # 55, 34 and 14 pad positions in the bucket of 64
    fast.generate(prompts, greedy(tok, 6, [tok.eos_token_id]), [tok.eos_token_id])
    assert seen["calls"] > 0 and seen["empty_rows"] == 0


def test_the_mismatch_metric_sees_a_bf16_copy(tok, rows, tmp_path):
    """The logged mismatch is not 0 by construction: a bf16 copy of an fp32 policy shows up in it."""
    fast = FastRollouts(dtype=torch.bfloat16)
    trainer = _trainer(tok, rows, tiny_policy(tok), _recording_hook(fast, []), tmp_path, max_steps=1)
    trainer.train()
    logged = next(h for h in trainer.state.log_history if "rollouts/logp_diff_abs" in h)
    assert logged["rollouts/logp_diff_abs"] > 1e-4  # the fp32 copy: below 1e-5 (the test above)


def test_profile_generation_names_where_the_time_goes(tok, rows):
    from utils.train.fast_rollouts import profile_generation

    fast = FastRollouts(prompt_bucket=64, engine="graph")
    prompts = chat_ids(tok, rows[:2], cut=[40, 40])
    eos = [tok.eos_token_id]
    with pytest.raises(RuntimeError, match="refresh"):
        profile_generation(fast, prompts, greedy(tok, 4, eos), eos)
    fast.refresh(tiny_policy(tok), "cpu", torch.float32)
    prof = profile_generation(fast, prompts, greedy(tok, 4, eos), eos, top=5)
    assert len(prof["top"]) == 5 and prof["total_ms"] > 0
    assert {"op", "calls", "self_ms"} <= set(prof["top"][0])
    assert prof["top"][0]["self_ms"] >= prof["top"][-1]["self_ms"]  # ranked by time
    assert any("mm" in op["op"] for op in prof["top"])  # the matrix products are among the largest


def test_the_compile_choice_comes_from_the_environment_and_reaches_the_hook(monkeypatch):
    """$COURSE_ROLLOUT_COMPILE picks FastRollouts(compile=...) for training; a typo fails with one line (before
    build_trainer loads anything) instead of running uncompiled under a name that looks right."""
    from utils.train.fast_rollouts import ROLLOUT_COMPILE_ENV, rollout_compile_from_env
    from utils.train.trainer import rollout_func_for

    monkeypatch.setenv(ROLLOUT_COMPILE_ENV, " Step ")
    assert rollout_compile_from_env() == "step"
    monkeypatch.setenv(ROLLOUT_COMPILE_ENV, "blocks")
    assert rollout_compile_from_env() is True
    monkeypatch.setenv(ROLLOUT_COMPILE_ENV, "graph")
    with pytest.raises(ValueError, match=r"^\$COURSE_ROLLOUT_COMPILE='graph': one of step, blocks, none$"):
        rollout_compile_from_env()
    hook = rollout_func_for("static-cache", 330, "step")
    assert hook.__self__.compile == "step" and hook.__self__.prompt_bucket == 384
    monkeypatch.setenv(ROLLOUT_COMPILE_ENV, "step")  # notebook 05 passes no choice: the environment's counts
    assert rollout_func_for("static-cache", 330).__self__.compile == "step"
    assert rollout_func_for("vllm", 330, "step") is None


def test_build_trainer_refuses_a_bad_compile_choice_before_loading(monkeypatch, tmp_path):
    from utils.profiles import get_profile
    from utils.rewards import default_reward_funcs
    from utils.train import trainer

    monkeypatch.setenv("COURSE_ROLLOUT_COMPILE", "fast")
    monkeypatch.setattr(trainer, "load_policy", lambda *a, **k: pytest.fail("the model loaded"))
    with pytest.raises(ValueError, match="COURSE_ROLLOUT_COMPILE='fast'"):
        trainer.build_trainer([], default_reward_funcs(), get_profile("smoke"), out_dir=tmp_path / "run")
