"""SkipNonFiniteSteps: one NaN gradient must not write NaN into every weight (seen on an H100, step 148)."""

from __future__ import annotations

import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from utils.train.callbacks import SkipNonFiniteSteps


def step(model, optimizer, guard, state, grad_value: float) -> None:
    optimizer.zero_grad()
    (model(torch.ones(1, 3)).sum() * grad_value).backward()
    guard.on_pre_optimizer_step(TrainingArguments("unused", report_to=[]), state, TrainerControl(), model=model)
    optimizer.step()
    state.global_step += 1


def test_a_nan_step_is_skipped_and_training_goes_on(capsys):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    guard, state = SkipNonFiniteSteps(), TrainerState()
    step(model, optimizer, guard, state, 1.0)
    before = [p.detach().clone() for p in model.parameters()]
    moments = [optimizer.state[p]["exp_avg"].clone() for p in model.parameters()]
    step(model, optimizer, guard, state, float("nan"))
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))  # weights untouched
    assert all(torch.equal(m, optimizer.state[p]["exp_avg"]) for m, p in zip(moments, model.parameters()))
    assert guard.skipped == [2] and "step 2: non-finite gradients" in capsys.readouterr().out
    step(model, optimizer, guard, state, float("inf"))
    step(model, optimizer, guard, state, 1.0)  # a finite step after them trains as usual
    assert guard.skipped == [2, 3]
    assert all(torch.isfinite(p).all() and not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    state.log_history.append({"loss": 0.1, "step": 4})
    guard.on_log(None, state, None, logs={})
    assert state.log_history[-1]["skipped_steps"] == 2
