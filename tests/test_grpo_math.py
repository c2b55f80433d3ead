"""The hand-written GRPO update (``utils.grpo``) gives exactly the numbers of TRL's own loss.

One batch is built by hand: three scheduling prompts, four completions each, of unequal
lengths (some end with EOS, some are cut off at max_completion_length), with rewards
chosen per completion (one group has zero variance). Only text generation is replaced
(``GRPOTrainer._generate_single_turn`` returns the hand-made completions); everything
else is TRL's real code path: ``_generate_and_score_completions`` tokenizes the prompts,
pads, calls the reward function, computes the advantages, the old per-token log-probs
(``num_iterations=2``) and the reference log-probs (``beta > 0``). The batch is then split
into micro-batches the way ``_prepare_inputs`` does, one real optimizer step is taken on
it (so the policy ratio is no longer 1 and clipping kicks in), and each micro-batch goes
through ``trainer.compute_loss`` and through ``utils.grpo.grpo_loss_for_trl_batch``:
loss, gradients and logged metrics must agree, for every loss type written out.

A TRL upgrade that changes the maths fails here (and ``test_trl_version_is_the_one_written_out``
asks for a re-read of TRL's source first). The model is a tiny random Llama (hidden 32,
2 layers) over the course tokenizer's vocabulary. CPU only.
"""

from __future__ import annotations

import dataclasses
import doctest
import inspect
import re

import pytest
from helpers import tiny_llama

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict  # noqa: E402

import utils.grpo as gm  # noqa: E402
from utils.grpo import advantages, group, logprobs, loss, trl_check, vllm_correction  # noqa: E402

# --------------------------------------------------------------------------------------
# The hand-made batch
# --------------------------------------------------------------------------------------

GROUP = 4  # num_generations
MAX_LEN = 12  # max_completion_length: completions of 12 tokens without EOS are "truncated"
TEMPERATURE = 0.7  # != 1 so that the temperature division is exercised
PROMPTS = [
    "Plan my day: gym 1h, lunch 30min, free from 9:00.",
    "Schedule a meeting 9-10, the dentist (45 min) and a call with mum.",
    "Fit a 2h study block.",
]
COMPLETION_TEXTS = [
    # prompt 0
    "09:00 gym",
    "09:00-10:00 gym; 12:00-12:30 lunch; rest free",
    "gym",
    "12:00 lunch, then 13:00-14:00 gym",
    # prompt 1
    "09:00-10:00 meeting; 10:15-11:00 dentist; 11:30 call mum",
    "call mum",
    "09:00-10:00 meeting, 10:00 dentist, then call",
    "dentist 14:00-14:45",
    # prompt 2 (every completion gets the same reward: a zero-variance group)
    "14:00-16:00 study block",
    "14:00-16:00 study",
    "study 2h",
    "16:00 study block until 18:00 then dinner",
    # extra completions for a fourth prompt (advantage tests only)
    "08:00 study",
    "study",
    "10:00-12:00 study, 12:00 lunch",
    "18:00-20:00 study",
]
# Rewards are float32 in TRL; 0.5 and 0.25 are exact in binary, 0.1 is not.
LOSS_REWARDS = [1.0, 0.25, 0.0, 0.75, 0.9, 0.2, 0.6, 0.2, 0.5, 0.5, 0.5, 0.5]
ADVANTAGE_REWARDS = [1.0, 0.25, 0.0, 0.75, 0.9, None, 0.6, 0.2, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1]
BASE_CONFIG = dict(
    num_generations=GROUP,
    max_completion_length=MAX_LEN,
    per_device_train_batch_size=6,  # two micro-batches of 6 completions ...
    gradient_accumulation_steps=2,  # ... accumulated into one optimizer step (steps_per_generation = 2)
    num_iterations=2,  # the batch is reused once after an optimizer step: TRL stores old log-probs
    temperature=TEMPERATURE,
    epsilon=0.2,
    epsilon_high=0.28,  # DAPO's asymmetric "clip-higher"
)
KEYS_FROM_SCORING = {
    "prompt_ids",
    "prompt_mask",
    "completion_ids",
    "completion_mask",
    "advantages",
    "num_items_in_batch",
}
OPTIONAL_KEYS = {"old_per_token_logps", "ref_per_token_logps", "importance_sampling_ratio", "sampling_per_token_logps"}
METRIC_NAMES = [
    "clip_ratio/low_mean",
    "clip_ratio/high_mean",
    "clip_ratio/region_mean",
    "clip_ratio/low_min",
    "clip_ratio/high_max",
    "entropy",
    "kl",
]


def reward_from_table(completions, reward, **kwargs):
    """The reward of each completion is a column of the hand-made batch (None: unscorable)."""
    return list(reward)


# --------------------------------------------------------------------------------------
# Fixtures: the course tokenizer, a tiny checkpoint, trainers
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tensors are tiny: on a shared 2-core machine, intra-op threads cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _course_tokenizer():
    from utils.llm import embedded_checkpoint, load_tokenizer

    return load_tokenizer(str(embedded_checkpoint(verbose=False)))


@pytest.fixture(scope="session")
def tok():
    return _course_tokenizer()


@pytest.fixture(scope="session")
def completions(tok):
    """Token lists as TRL's generation returns them: up to and including EOS, or cut at MAX_LEN."""
    out = []
    for text in COMPLETION_TEXTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        out.append(ids[:MAX_LEN] if len(ids) >= MAX_LEN else ids + [tok.eos_token_id])
    lengths = [len(c) for c in out]
    assert len(set(lengths[:12])) > 3 and MAX_LEN in lengths and min(lengths) < MAX_LEN / 2, lengths
    return out


@pytest.fixture(scope="session")
def checkpoint(tok, tmp_path_factory):
    """A tiny random Llama over the course vocabulary, saved so that TRL can load it (and its reference copy)."""
    model = tiny_llama(tok)
    path = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_trainer(checkpoint, tok, completions, dtype=torch.float64, **overrides) -> GRPOTrainer:
    """A real GRPOTrainer whose text generation returns the hand-made completions (and, to play
    vLLM, the sampler's per-token log-probs when ``trainer.sampling_logprobs`` is set)."""
    from datasets import Dataset

    settings = {**BASE_CONFIG, **overrides}
    args = GRPOConfig(
        output_dir=str(checkpoint / "out"),
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        model_init_kwargs={"dtype": dtype},
        **settings,
    )
    trainer = GRPOTrainer(
        model=str(checkpoint),
        reward_funcs=reward_from_table,
        args=args,
        processing_class=tok,
        train_dataset=Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in PROMPTS]}),
    )

    def generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        ids = [list(completions[i]) for i in range(len(prompt_ids))]
        sampling_logprobs = getattr(trainer, "sampling_logprobs", None)
        return ids, (None if sampling_logprobs is None else [list(lp) for lp in sampling_logprobs])

    trainer._generate_single_turn = generate_single_turn
    # Set by Trainer's training loop (transformers trainer.py: len(batch_samples)) before compute_loss runs.
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps
    trainer.model.train()
    return trainer


def score(trainer: GRPOTrainer, rewards, group: int = GROUP) -> dict:
    """TRL's own scoring of the hand-made batch: `_generate_and_score_completions`."""
    inputs = [
        {"prompt": [{"role": "user", "content": PROMPTS[i // group % len(PROMPTS)]}], "reward": r}
        for i, r in enumerate(rewards)
    ]
    return trainer._generate_and_score_completions(inputs)


def micro_batches(batch: dict, steps_per_generation: int) -> list[dict]:
    """What `_prepare_inputs` does with a generation batch: shuffle, split into micro-batches."""
    torch.manual_seed(1)
    return split_tensor_dict(shuffle_sequence_dict(batch), steps_per_generation)


@dataclasses.dataclass
class Scored:
    batch: dict  # the full generation batch, as TRL scored it
    parts: list[dict]  # its micro-batches
    old_state: dict  # weights that sampled the batch (pi_old, also the reference)
    new_state: dict  # weights after one optimizer step
    trainer: GRPOTrainer


def _scored(checkpoint, tok, completions, dtype) -> Scored:
    trainer = make_trainer(checkpoint, tok, completions, dtype=dtype, beta=0.04)
    batch = score(trainer, LOSS_REWARDS)
    model = trainer.model
    old_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    parts = micro_batches(batch, trainer.args.steps_per_generation)
    # Iteration 1 of num_iterations=2: the training loop backpropagates each micro-batch, then steps once.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    for part in parts:
        trainer.compute_loss(model, part).backward()
    optimizer.step()
    optimizer.zero_grad()
    new_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer._metrics["train"].clear()
    return Scored(batch, parts, old_state, new_state, trainer)


@pytest.fixture(scope="session")
def scored64(checkpoint, tok, completions):
    return _scored(checkpoint, tok, completions, torch.float64)


@pytest.fixture(scope="session")
def scored32(checkpoint, tok, completions):
    return _scored(checkpoint, tok, completions, torch.float32)


# --------------------------------------------------------------------------------------
# Comparison helper
# --------------------------------------------------------------------------------------


def compare_with_trl(
    trainer: GRPOTrainer, parts: list[dict], *, rtol: float, atol: float, training: bool = True
) -> list[gm.GRPOLossOutput]:
    """For each micro-batch: TRL's loss, gradients and metrics == the hand-written ones."""
    model = trainer.model
    model.train(training)
    params = [p for p in model.parameters() if p.requires_grad]
    outputs = []
    for part in parts:
        model.zero_grad()
        trainer._metrics["train"].clear()
        trainer._metrics["eval"].clear()
        trl_loss = trainer.compute_loss(model, part)
        trl_loss.backward()
        trl_grads = [p.grad.clone() for p in params]
        trl_metrics = {k: v[-1] for k, v in trainer._metrics["train" if training else "eval"].items()}

        model.zero_grad()
        ours = gm.grpo_loss_for_trl_batch(model, part, trainer.args, training=training)
        ours.loss.backward()
        our_grads = [p.grad.clone() for p in params]

        torch.testing.assert_close(ours.loss, trl_loss, rtol=rtol, atol=atol)
        for ours_g, trl_g in zip(our_grads, trl_grads, strict=True):
            torch.testing.assert_close(ours_g, trl_g, rtol=rtol, atol=atol)
        expected = [m for m in METRIC_NAMES if m != "kl" or trainer.args.beta != 0.0]
        assert set(expected) <= set(trl_metrics), trl_metrics
        for name in expected:
            assert ours.metrics[name] == pytest.approx(trl_metrics[name], rel=max(rtol, 1e-6), abs=1e-9), name
        outputs.append(ours)
    model.zero_grad()
    return outputs


def load(trainer: GRPOTrainer, state: dict) -> None:
    trainer.model.load_state_dict(state)


def without(batch: dict, *keys: str) -> dict:
    return {k: v for k, v in batch.items() if k not in keys}


# --------------------------------------------------------------------------------------
# 1. The scored batch and the per-token log-probabilities
# --------------------------------------------------------------------------------------


def test_scored_batch_has_the_keys_compute_loss_reads(scored64):
    """TRL's `_generate_and_score_completions` output, which `compute_loss` consumes. A new key
    (a new mask or weight) means TRL's loss may have gained a term: re-read `_compute_loss`."""
    batch = scored64.batch
    assert KEYS_FROM_SCORING <= set(batch) <= KEYS_FROM_SCORING | OPTIONAL_KEYS
    assert set(batch) >= {"old_per_token_logps", "ref_per_token_logps"}  # num_iterations=2; beta > 0
    mask = batch["completion_mask"]
    lengths = mask.sum(1)
    assert len(set(lengths.tolist())) > 3  # unequal lengths, right-padded
    assert batch["num_items_in_batch"].item() == mask.sum().item()  # one process: tokens of the generation batch
    assert (batch["prompt_mask"][:, 0] == 0).any()  # left-padded prompts


def test_completion_logprobs_match_trl(scored64):
    """Old log-probs (computed by TRL before the step) and reference log-probs, by hand."""
    trainer, batch = scored64.trainer, scored64.batch
    args = (batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"])
    mask = batch["completion_mask"].bool()
    load(trainer, scored64.old_state)
    try:
        with torch.no_grad():
            ours = gm.completion_logprobs(trainer.model, *args, temperature=TEMPERATURE)
            ref = gm.completion_logprobs(trainer.ref_model, *args, temperature=TEMPERATURE)
            at_t1 = gm.completion_logprobs(trainer.model, *args, temperature=1.0)
            logp, entropies = gm.completion_logprobs(trainer.model, *args, temperature=TEMPERATURE, return_entropy=True)
            input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
            attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
            trl_logp, trl_entropies, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, input_ids, attention, batch["completion_ids"].size(1), compute_entropy=True
            )
    finally:
        load(trainer, scored64.new_state)
    torch.testing.assert_close(ours, batch["old_per_token_logps"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ref, batch["ref_per_token_logps"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logp, trl_logp, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(entropies, trl_entropies, rtol=1e-12, atol=1e-12)
    assert (ours[~mask] == 0).all() and (ours[mask] < 0).all()  # padding: 0, real tokens: log p < 0
    assert not torch.allclose(at_t1[mask], ours[mask])  # without the temperature division they differ


# --------------------------------------------------------------------------------------
# 2. The loss, for every loss type, with and without KL, with clipping active
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss_type, beta",
    [(loss_type, 0.04) for loss_type in gm.LOSS_TYPES]
    + [("dapo", 0.0)],  # every type with the KL term; the default without
)
def test_loss_matches_trl_after_one_step(scored64, checkpoint, tok, completions, loss_type, beta):
    trainer = make_trainer(checkpoint, tok, completions, loss_type=loss_type, beta=beta)
    load(trainer, scored64.new_state)
    parts = scored64.parts if beta else [without(p, "ref_per_token_logps") for p in scored64.parts]
    outputs = compare_with_trl(trainer, parts, rtol=1e-10, atol=1e-12)

    masks = [p["completion_mask"].bool() for p in parts]
    ratios = torch.cat([o.ratio.detach()[m] for o, m in zip(outputs, masks)])
    low = sum(o.is_low_clipped[m].sum().item() for o, m in zip(outputs, masks))
    high = sum(o.is_high_clipped[m].sum().item() for o, m in zip(outputs, masks))
    assert (ratios - 1).abs().max() > 0.3  # the step moved the policy: this is not the on-policy ratio of 1
    assert low >= 2 and high >= 2, (low, high)  # clipping is active on both sides
    if beta:
        assert all(o.metrics["kl"] > 0 for o in outputs)


def test_loss_matches_trl_float32(scored32, checkpoint, tok, completions):
    trainer = make_trainer(checkpoint, tok, completions, dtype=torch.float32, loss_type="dapo", beta=0.04)
    load(trainer, scored32.new_state)
    outputs = compare_with_trl(trainer, scored32.parts, rtol=1e-5, atol=1e-7)
    assert sum(o.is_low_clipped.sum() + o.is_high_clipped.sum() for o in outputs) > 0


@pytest.mark.parametrize(
    "overrides",
    [
        dict(loss_type="grpo", delta=1.5),  # INTELLECT-2 two-sided clipping
        dict(loss_type="grpo", delta=1.1),  # delta < 1 + epsilon_high: pins TRL's order (clip first, then cap)
        dict(loss_type="dapo", beta=0.04, use_bias_correction_kl=False),  # the paper's plain k3 term
        dict(loss_type="bnpo", beta=0.04, epsilon_high=None),  # symmetric clipping
    ],
    ids=["delta", "delta-below-clip", "kl-no-bias-correction", "symmetric-eps"],
)
def test_loss_matches_trl_other_settings(scored64, checkpoint, tok, completions, overrides):
    trainer = make_trainer(checkpoint, tok, completions, **overrides)
    load(trainer, scored64.new_state)
    part = scored64.parts[0] if trainer.args.beta else without(scored64.parts[0], "ref_per_token_logps")
    outputs = compare_with_trl(trainer, [part], rtol=1e-10, atol=1e-12)  # one micro-batch is enough here
    if "delta" in overrides:
        assert any((o.ratio.detach() > overrides["delta"]).any() for o in outputs)  # the cap is reached


def test_on_policy_step_matches_trl(scored64, checkpoint, tok, completions, beta=0.04):
    """num_iterations=1: TRL stores no old log-probs and uses logp.detach(). The ratio is 1 in
    value but not in gradient (and with beta > 0 the bias-corrected KL gets a gradient from it)."""
    trainer = make_trainer(checkpoint, tok, completions, loss_type="grpo", beta=beta, num_iterations=1)
    load(trainer, scored64.new_state)
    drop = ("old_per_token_logps",) if beta else ("old_per_token_logps", "ref_per_token_logps")
    outputs = compare_with_trl(trainer, [without(scored64.parts[0], *drop)], rtol=1e-10, atol=1e-12)
    for o in outputs:
        assert torch.equal(o.ratio.detach(), torch.ones_like(o.ratio))
        assert o.metrics["clip_ratio/region_mean"] == 0.0


def test_eval_mode_matches_trl(scored64, checkpoint, tok, completions):
    """In evaluation TRL neither divides by the accumulation steps nor rescales num_items_in_batch."""
    trainer = make_trainer(checkpoint, tok, completions, loss_type="dapo")
    load(trainer, scored64.new_state)
    compare_with_trl(
        trainer, [without(scored64.parts[0], "ref_per_token_logps")], rtol=1e-10, atol=1e-12, training=False
    )


def test_dapo_with_steps_per_generation_not_equal_to_accumulation(scored64, checkpoint, tok, completions):
    """One generation batch feeding two optimizer steps (G=1, S=2): the normaliser is N * G / S."""
    trainer = make_trainer(
        checkpoint, tok, completions, loss_type="dapo", gradient_accumulation_steps=1, steps_per_generation=2
    )
    assert trainer.args.steps_per_generation == 2 and trainer.args.gradient_accumulation_steps == 1
    load(trainer, scored64.new_state)
    compare_with_trl(trainer, [without(scored64.parts[0], "ref_per_token_logps")], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_micro_batches_add_up_to_the_whole_batchs_gradient(checkpoint, tok, completions, loss_type):
    """The Qwen models send a step's answers through the loss a few at a time (``loss_micro_batch``: TRL's
    per_device_train_batch_size, with gradient_accumulation_steps passes a step). TRL generates and scores the
    whole step together and sums the passes' gradients: for TRL's default loss (dapo: divided by the step's
    token count) and for "grpo" (a mean over answers) that sum is the one-pass gradient. ("bnpo" divides each
    pass by its own token count, so there the split changes the weights.)"""
    grads = {}
    for micro in (12, 4, 3):
        passes = 12 // micro
        trainer = make_trainer(
            checkpoint,
            tok,
            completions,
            loss_type=loss_type,
            per_device_train_batch_size=micro,
            gradient_accumulation_steps=passes,
            num_iterations=1,
        )
        assert trainer.args.generation_batch_size == 12  # one generation for the whole step
        batch = score(trainer, LOSS_REWARDS)
        trainer.model.zero_grad()
        for part in split_tensor_dict(batch, passes):
            trainer.compute_loss(trainer.model, part).backward()
        grads[micro] = [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]
    assert grads[12] and any(g.abs().sum() > 0 for g in grads[12])
    for micro in (4, 3):
        for whole, summed in zip(grads[12], grads[micro], strict=True):
            torch.testing.assert_close(summed, whole, rtol=1e-9, atol=1e-12)


VLLM_MODES = ["sequence_mask", "token_truncate"]  # TRL's default, and the other choice on both axes


@pytest.mark.parametrize("mode", VLLM_MODES)
def test_vllm_importance_sampling_matches_trl(scored64, checkpoint, tok, completions, mode):
    """The course's GPU runs sample with vLLM. TRL then recomputes the old log-probs with the
    training model and weights each token's surrogate by pi_train / pi_vLLM (truncated or masked).
    vLLM itself is played by the stub: it returns the trainer's own log-probs, perturbed."""
    batch0 = scored64.batch
    trainer = make_trainer(
        checkpoint,
        tok,
        completions,
        loss_type="dapo",
        num_iterations=1,
        beta=0.04,
        vllm_importance_sampling_mode=mode,
        vllm_importance_sampling_clip_min=0.5,
    )
    load(trainer, scored64.new_state)
    with torch.no_grad():
        train_logp = gm.completion_logprobs(
            trainer.model,
            batch0["prompt_ids"],
            batch0["prompt_mask"],
            batch0["completion_ids"],
            batch0["completion_mask"],
            TEMPERATURE,
        )
    noise = torch.randn(train_logp.shape, generator=torch.Generator().manual_seed(2), dtype=train_logp.dtype) * 0.05
    sampler = train_logp + noise
    sampler[1] -= 0.3  # vLLM found completion 1 less likely: sequence weight exp(+3.6) > clip_max
    sampler[4] += 0.15  # ... completion 4 more likely: sequence weight exp(-1.8) < clip_min
    sampler[6, 2] -= 1.5  # one token far off: token weight exp(1.5) > clip_max
    sampling_logprobs = [[float(x) for x in row[: int(n)]] for row, n in zip(sampler, batch0["completion_mask"].sum(1))]
    sampling_logprobs[7][0] = None  # a token vLLM could not score
    trainer.sampling_logprobs = sampling_logprobs
    trainer.use_vllm = trainer.args.use_vllm = True  # what use_vllm=True would set, without starting vLLM
    batch = score(trainer, LOSS_REWARDS)
    assert {
        "old_per_token_logps",
        "importance_sampling_ratio",
        "sampling_per_token_logps",
        "ref_per_token_logps",
    } <= set(batch)
    assert KEYS_FROM_SCORING <= set(batch) <= KEYS_FROM_SCORING | OPTIONAL_KEYS

    mask = batch["completion_mask"]
    weights = gm.vllm_importance_weights(
        batch["old_per_token_logps"], batch["sampling_per_token_logps"], mask, mode=mode, clip_min=0.5, clip_max=3.0
    )
    torch.testing.assert_close(weights, batch["importance_sampling_ratio"], rtol=1e-12, atol=0)
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    ours = gm.sampling_metrics(batch["old_per_token_logps"], batch["sampling_per_token_logps"], mask, weights)
    for name, value in ours.items():
        assert value == pytest.approx(logged[name], rel=1e-9), name
    limit_hits = (weights == 0) if mode.endswith("mask") else ((weights == 3.0) | (weights == 0.5))
    assert limit_hits.sum() >= (2 if mode.startswith("sequence") else 1)

    outputs = compare_with_trl(trainer, [batch], rtol=1e-10, atol=1e-12)  # the whole batch as one micro-batch
    without_correction = gm.grpo_loss_for_trl_batch(
        trainer.model, without(batch, "importance_sampling_ratio"), trainer.args
    )
    assert abs(outputs[0].loss.item() - without_correction.loss.item()) > 1e-4  # the correction matters


# --------------------------------------------------------------------------------------
# 3. What the aggregation means, on TRL's own numbers
# --------------------------------------------------------------------------------------


def test_dapo_micro_batches_add_up_to_one_token_mean(scored64, checkpoint, tok, completions):
    """DAPO's micro-batch losses sum to one token-mean over the whole generation batch."""
    trainer = make_trainer(checkpoint, tok, completions, loss_type="dapo")
    load(trainer, scored64.new_state)
    parts = [without(p, "ref_per_token_logps") for p in scored64.parts]
    with torch.no_grad():
        total = sum(trainer.compute_loss(trainer.model, p) for p in parts)
        whole = gm.grpo_loss_for_trl_batch(
            trainer.model, without(scored64.batch, "ref_per_token_logps"), trainer.args, training=False
        )
        mask = scored64.batch["completion_mask"]
        token_mean = (whole.per_token_loss * mask).sum() / mask.sum()
    torch.testing.assert_close(total, whole.loss, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(total, token_mean, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss_type", gm.LOSS_TYPES)
def test_first_step_loss_value(scored64, checkpoint, tok, completions, loss_type):
    """On-policy, beta = 0: the loss *value* is -Σ_i w_i A_i (the ratio is 1). grpo weighs every
    completion alike, so over a whole generation batch it is ~0 (advantages average to 0 in a
    group); the token-weighted types give longer completions more weight, so their value is
    -Σ_i L_i A_i / norm, which is not 0 when length and advantage are correlated."""
    trainer = make_trainer(checkpoint, tok, completions, loss_type=loss_type, num_iterations=1)
    load(trainer, scored64.new_state)
    parts = [without(p, "old_per_token_logps", "ref_per_token_logps") for p in scored64.parts]
    with torch.no_grad():
        total = sum(trainer.compute_loss(trainer.model, p) for p in parts).item()
    batch = scored64.batch
    adv, lengths = batch["advantages"].double(), batch["completion_mask"].sum(1).double()
    n = len(adv)
    expected = {
        "dr_grpo": -(adv * lengths).sum() / (n * MAX_LEN),
        "dapo": -(adv * lengths).sum() / lengths.sum(),
    }
    if loss_type == "grpo":  # equal-sized micro-batches: the mean of their means is the mean of all A_i
        assert abs(total) < 1e-6
        assert abs(adv.mean().item()) < 1e-6
    if loss_type in ("dr_grpo", "dapo"):
        assert total == pytest.approx(expected[loss_type].item(), rel=1e-6)
        assert abs(total) > 1e-3  # visibly non-zero: lengths and advantages are correlated in this batch
    if loss_type == "bnpo":  # per micro-batch token mean, averaged over the micro-batches
        per_part = [
            -(p["advantages"].double() * p["completion_mask"].sum(1)).sum() / p["completion_mask"].sum() for p in parts
        ]
        assert total == pytest.approx((sum(per_part) / len(parts)).item(), rel=1e-6)


# --------------------------------------------------------------------------------------
# 4. Advantages and reward/length metrics, through TRL's scoring code path
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_match_trl(checkpoint, tok, completions, scale):
    trainer = make_trainer(
        checkpoint, tok, completions, scale_rewards=scale, num_iterations=1, per_device_train_batch_size=8
    )  # beta=0, aligned steps: scoring runs no forward pass
    batch = score(trainer, ADVANTAGE_REWARDS)
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    rewards = torch.tensor([float("nan") if r is None else r for r in ADVANTAGE_REWARDS], dtype=torch.float32)

    ours = gm.group_advantages(rewards, GROUP, scale=scale)
    assert torch.equal(ours, batch["advantages"])  # bit for bit
    assert batch["advantages"][5] == 0  # the unscorable completion (reward None) gets no signal
    assert torch.equal(batch["advantages"][8:12], torch.zeros(4))  # zero-variance group, mean exact: exactly 0
    assert torch.equal(batch["advantages"][12:16], torch.zeros(4))  # 0.1 is inexact, but 4 equal float32 values
    # average exactly; with 8 they may not (next test)
    if scale == "none":
        torch.testing.assert_close(ours[:4], rewards[:4] - rewards[:4].mean())

    for name, value in gm.reward_metrics(rewards, GROUP, scale=scale).items():
        assert value == pytest.approx(metrics[name], rel=1e-6, abs=1e-9), name
    expected_zero_std = {"group": 0.5, "none": 0.5, "batch": 0.0}[scale]  # 2 of 4 groups; batch: batch std
    assert metrics["frac_reward_zero_std"] == pytest.approx(expected_zero_std)
    lengths = gm.completion_length_metrics(completions[:16], trainer.eos_token_ids, tok.pad_token_id)
    for name, value in lengths.items():
        assert value == pytest.approx(metrics[name]), name


def test_equal_rewards_in_a_group_of_8_are_not_exactly_zero(checkpoint, tok, completions):
    """TRL computes rewards in float32. The mean of 8 equal float32 values can be 1 ulp off, so a
    group of identical rewards (0.806 x 8) gets a std of ~1e-7 instead of 0: every completion of the
    group gets the same small advantage (~1e-3, not 0), and `frac_reward_zero_std` (isclose with
    atol 1e-8) does not count the group. The hand-written code reproduces this bit for bit."""
    trainer = make_trainer(
        checkpoint, tok, completions, num_generations=8, per_device_train_batch_size=8, num_iterations=1
    )
    rewards = [1.0, 0.0, 0.5, 0.25, 0.75, 0.0, 1.0, 0.5] + [0.806] * 8
    batch = score(trainer, rewards, group=8)
    ours = gm.group_advantages(rewards, 8)
    assert torch.equal(ours, batch["advantages"])
    residue = batch["advantages"][8:]
    assert (residue == residue[0]).all() and 1e-4 < residue.abs().max() < 2e-3
    assert trainer._metrics["train"]["frac_reward_zero_std"][-1] == 0.0  # the equal-reward group is missed
    assert gm.reward_metrics(rewards, 8)["frac_reward_zero_std"] == 0.0
    assert torch.equal(gm.group_advantages([0.5] * 8, 8), torch.zeros(8))  # dyadic rewards: exactly 0


def test_group_advantages_by_hand():
    """The formulas, on numbers small enough to check with a pencil."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])  # mean 0.5, sample std sqrt(1/3)
    expected = (rewards - 0.5) / (3**-0.5 + 1e-4)
    torch.testing.assert_close(gm.group_advantages(rewards, 4), expected)
    torch.testing.assert_close(gm.group_advantages(rewards, 4, scale="none"), rewards - 0.5)
    two_groups = torch.tensor([1.0, 0.0, 3.0, 2.0])  # group means 0.5 and 2.5, batch std of all four
    batch_std = two_groups.std()  # torch's std is the sample std (n - 1) too
    torch.testing.assert_close(
        gm.group_advantages(two_groups, 2, scale="batch"),
        (two_groups - torch.tensor([0.5, 0.5, 2.5, 2.5])) / (batch_std + 1e-4),
    )
    with pytest.raises(ValueError):
        gm.group_advantages(torch.ones(6), 4)
    # plain Python numbers (notebook 03, the group probe): float32 tensors, one value per completion
    assert gm.group_advantages([0, 0, 0, 0], 4).tolist() == [0.0] * 4
    adv = gm.group_advantages([0, 10, 0, 10, 5, 5], 2)
    assert adv.dtype == torch.float32 and adv[:2].tolist() == pytest.approx([-0.7071, 0.7071], abs=1e-3)
    assert adv[4:].tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------------------
# 5. Guards: fail loudly when TRL changes under the course
# --------------------------------------------------------------------------------------


def test_trl_version_is_the_one_written_out():
    assert trl.__version__ == gm.TRL_VERSION, (
        f"TRL {trl.__version__} is installed; utils/grpo and its TRL_NOTES.md were checked line by line against "
        f"{gm.TRL_VERSION}. Re-read GRPOTrainer._compute_loss / _generate_and_score_completions, update the "
        f"notes (line numbers), then update TRL_VERSION."
    )


def test_trl_loss_types_are_the_known_ones():
    """The loss types TRL documents and the ones its `_compute_loss` branches on."""
    help_text = {f.name: f for f in dataclasses.fields(GRPOConfig)}["loss_type"].metadata["help"]
    sentence = re.search(r"Supported values are (.*?)\.\s", help_text).group(1)
    documented = set(re.findall(r"'(\w+)'", sentence))
    source = inspect.getsource(GRPOTrainer._compute_loss)
    branched = set(re.findall(r'"(\w+)"', " ".join(re.findall(r"self\.loss_type (?:==|in) [^:]+:", source))))
    known = set(gm.TRL_LOSS_TYPES)
    assert documented == known, f"GRPOConfig.loss_type now documents {sorted(documented)}; known: {sorted(known)}"
    assert branched == known, f"_compute_loss now branches on {sorted(branched)}; known: {sorted(known)}"
    assert set(gm.LOSS_TYPES) <= known


def test_trl_defaults_the_course_relies_on():
    args = GRPOConfig(output_dir="unused", report_to=[], use_cpu=True)
    assert args.loss_type == "dapo"
    assert (args.epsilon, args.epsilon_high, args.delta, args.beta) == (0.2, None, None, 0.0)
    assert args.scale_rewards == "group" and args.num_iterations == 1 and args.temperature == 1.0
    assert args.use_bias_correction_kl is True  # KL term multiplied by the ratio (not in the GRPO paper)
    gm.check_supported_config(args)  # TRL's defaults are inside what utils.grpo reproduces


def test_unsupported_settings_are_refused():
    gm.check_supported_config(
        GRPOConfig(output_dir="unused", report_to=[], use_cpu=True, vllm_importance_sampling_mode="token_mask")
    )
    for bad in (
        dict(top_entropy_quantile=0.2),
        dict(loss_type="cispo"),
        dict(importance_sampling_level="sequence"),
        dict(entropy_coef=0.01),
        dict(off_policy_mask_threshold=0.5),
    ):
        args = GRPOConfig(output_dir="unused", report_to=[], use_cpu=True, **bad)
        with pytest.raises(NotImplementedError):
            gm.check_supported_config(args)


def test_docstring_examples():
    attempted = 0
    for module in (advantages, group, logprobs, loss, trl_check, vllm_correction):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 10
