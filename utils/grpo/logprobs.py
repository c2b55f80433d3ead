"""Model -> per-token log-probabilities of a completion, as TRL computes them.

Also the completions' length metrics TRL logs (``completions/*``): how long the answers
are and how many ran into ``max_completion_length``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def completion_logprobs(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    temperature: float = 1.0,
    return_entropy: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``log π(o_t | prompt, o_<t)`` for every completion token, as TRL computes it.

    Shapes: prompts (B, P), left-padded; completions (B, C), right-padded; masks are 1 on
    real tokens. The model reads ``[prompt | completion]`` once; the logits at position t
    predict token t + 1, so the C logits that predict the completion are the ones at
    positions P-1 ... P+C-2 (the very last logit predicts a token after the completion
    and is dropped). Like TRL, we ask the model for the last C + 1 logits only
    (``logits_to_keep``, supported by transformers' causal LMs).

    Two details matter for matching TRL:

    * the logits are divided by the **sampling temperature** before the softmax: the
      probabilities are those of the distribution the completions were sampled from;
    * padded positions get log-prob 0 (and entropy 0), not a real number.

    TRL passes no ``position_ids``, so left-padded prompts are numbered from the padding;
    with rotary embeddings (Llama, Qwen, SmolLM) only relative positions matter, so this
    does not change the result. With ``return_entropy`` the entropy of each predicted
    distribution (in nats, also at the temperature) is returned too; TRL logs its mean.

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> _ = torch.manual_seed(0)
    >>> tiny = LlamaForCausalLM(LlamaConfig(vocab_size=10, hidden_size=8, intermediate_size=16,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    >>> logp = completion_logprobs(tiny, torch.tensor([[0, 3, 4]]), torch.tensor([[0, 1, 1]]),
    ...                            torch.tensor([[5, 6, 0]]), torch.tensor([[1, 1, 0]]))
    >>> logp.shape, bool((logp[0, :2] < 0).all()), logp[0, 2].item()
    (torch.Size([1, 3]), True, 0.0)
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    num_completion_tokens = completion_ids.size(1)

    # Only the last C + 1 positions are turned into logits (vocabulary-sized vectors): the
    # prompt's own predictions are never used, and skipping them saves most of the memory.
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        logits_to_keep=num_completion_tokens + 1,
        use_cache=False,
    ).logits
    logits = logits[:, :-1, :]  # drop the prediction made after the last token
    logits = logits[:, -num_completion_tokens:, :]  # the C predictions of the completion tokens
    logits = logits / temperature

    # log softmax(x)_i = x_i - logsumexp(x): the score of the chosen token minus the normaliser
    chosen = torch.gather(logits, dim=-1, index=completion_ids.unsqueeze(-1)).squeeze(-1)
    logps = chosen - torch.logsumexp(logits, dim=-1)
    logps = logps.masked_fill(completion_mask == 0, 0.0)
    if not return_entropy:
        return logps

    with torch.no_grad():  # TRL only logs the entropy (no gradient unless an entropy bonus is on)
        all_logps = torch.log_softmax(logits, dim=-1)
        entropies = -(all_logps.exp() * all_logps).sum(-1)
        entropies = entropies.masked_fill(completion_mask == 0, 0.0)
    return logps, entropies


def completion_length_metrics(
    completion_ids: Sequence[Sequence[int]], eos_token_ids: Sequence[int], pad_token_id: int
) -> dict[str, float]:
    """TRL's ``completions/*`` metrics from the generated token lists (unpadded, EOS included).

    A completion whose last token is neither EOS nor pad ran into ``max_completion_length``:
    it was cut off ("truncated"). ``completions/clipped_ratio`` is the share of those; it
    has nothing to do with the ratio clipping of the loss (``clip_ratio/*``).

    >>> stats = completion_length_metrics([[5, 6, 2], [5, 6, 7, 8]], eos_token_ids=[2], pad_token_id=2)
    >>> stats["completions/clipped_ratio"], stats["completions/mean_length"]
    (0.5, 3.5)
    """
    lengths = torch.tensor([len(ids) for ids in completion_ids], dtype=torch.float32)
    stop = set(eos_token_ids) | {pad_token_id}
    truncated = torch.tensor([ids[-1] not in stop for ids in completion_ids])
    terminated = lengths[~truncated] if (~truncated).any() else torch.zeros(1)
    return {
        "completions/mean_length": lengths.mean().item(),
        "completions/min_length": lengths.min().item(),
        "completions/max_length": lengths.max().item(),
        "completions/clipped_ratio": truncated.float().mean().item(),
        "completions/mean_terminated_length": terminated.mean().item(),
        "completions/min_terminated_length": terminated.min().item(),
        "completions/max_terminated_length": terminated.max().item(),
    }
