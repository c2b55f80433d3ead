"""One prompt, a group of sampled completions, padded the way TRL pads them.

Notebook 04 follows such a group through the whole update. TRL's ``GRPOTrainer`` does the
same for every prompt of a batch: it samples ``num_generations`` completions, cuts each one
after its first end-of-sequence token (which it keeps), then pads prompts on the left and
completions on the right, with a mask that is 1 on real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Group:
    """Token tensors of one group, in the layout ``GRPOTrainer.compute_loss`` reads."""

    prompt_ids: torch.Tensor
    """(G, P): the prompt, once per completion (one prompt: no padding needed)."""
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    """(G, C): the completions, right-padded to the longest one."""
    completion_mask: torch.Tensor
    """(G, C): 1 on real tokens (the end-of-sequence token included), 0 on padding."""
    texts: list[str]
    truncated: list[bool]
    """True for a completion that ran into the token budget instead of ending by itself."""

    @property
    def lengths(self) -> list[int]:
        return [int(n) for n in self.completion_mask.sum(1)]

    def __len__(self) -> int:
        return len(self.texts)


def prompt_token_ids(tokenizer, messages: Sequence[dict]) -> list[int]:
    """The chat prompt as the model reads it: template applied, assistant turn opened."""
    return list(
        tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )


def cut_at_eos(ids: Sequence[int], eos_token_id: int) -> list[int]:
    """Tokens up to and including the first end-of-sequence token, as TRL keeps them.

    >>> cut_at_eos([5, 6, 2, 2, 2], eos_token_id=2), cut_at_eos([5, 6, 7], eos_token_id=2)
    ([5, 6, 2], [5, 6, 7])
    """
    ids = [int(i) for i in ids]
    return ids[: ids.index(eos_token_id) + 1] if eos_token_id in ids else ids


def sample_completions(
    model,
    tokenizer,
    prompt_ids: Sequence[int],
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int | None = None,
) -> list[list[int]]:
    """``n`` sampled completions of one prompt (token ids, cut after the first end-of-sequence token).

    Plain sampling at ``temperature`` (no top-k, no top-p), which is what TRL's defaults do
    and what the log-probabilities of :func:`utils.grpo.completion_logprobs` assume.
    """
    if seed is not None:
        torch.manual_seed(seed)
    input_ids = torch.tensor([list(prompt_ids)] * n, device=model.device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    return [cut_at_eos(row[input_ids.shape[1] :].tolist(), tokenizer.eos_token_id) for row in out]


def text_completion(tokenizer, text: str) -> list[int]:
    """A written answer as completion tokens: the text, then the end-of-sequence token."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def make_group(tokenizer, prompt_ids: Sequence[int], completions: Sequence[Sequence[int]]) -> Group:
    """Pad one prompt's completions into TRL's layout (see :class:`Group`)."""
    width = max(len(c) for c in completions)
    pad = tokenizer.pad_token_id
    completion_ids = torch.tensor([list(c) + [pad] * (width - len(c)) for c in completions])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in completions])
    prompt = torch.tensor([list(prompt_ids)] * len(completions))
    eos = tokenizer.eos_token_id
    return Group(
        prompt_ids=prompt,
        prompt_mask=torch.ones_like(prompt),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        texts=[tokenizer.decode(c, skip_special_tokens=True) for c in completions],
        truncated=[len(c) == 0 or c[-1] != eos for c in completions],
    )
