"""Notebook 05: GRPO training with LoRA.

* :mod:`.backend` - Unsloth or TRL + PEFT; :mod:`.config` - every GRPO knob with its reason;
* :mod:`.warmstart` - the supervised warm start a tiny model needs first;
* :mod:`.trainer` - the small parts notebook 05's own ``GRPOConfig``/``GRPOTrainer`` cells call
  (:func:`load_policy`, :func:`grpo_records`, :func:`rollout_func_for`, :func:`prepare_run`,
  :func:`save_run`), and the same parts put together for scripts (:func:`build_trainer`, :func:`train_grpo`);
* :mod:`.runs` - resume or restart, checkpoints, the run summary, the Hub;
* :mod:`.callbacks` - the completion recorder, progress lines, live plots, a simulated disconnect;
* :mod:`.group_probe` - sample groups before training: is there any signal?

Heavy libraries load inside the functions: importing this package does not import torch or TRL
(the callbacks, which need transformers, load when first named: ``utils.train.CompletionRecorder``).
"""

from .backend import choose_backend, preload_backend
from .config import (
    LORA_TARGETS,
    Knob,
    build_grpo_config,
    grpo_knobs,
    knobs_table,
    lora_config,
    loss_micro_batch,
    training_gib,
)
from .group_probe import group_rewards, group_signal, sample_groups, signal_sentence, zero_variance_share
from .runs import (
    RUN_INFO,
    checkpoint_step,
    latest_checkpoint,
    prepare_run_dir,
    push_to_hub,
    read_run_info,
    resume_checkpoint,
    run_settings,
    write_run_info,
)
from .trainer import (
    TrainerSetup,
    TrainResult,
    build_trainer,
    grpo_records,
    load_policy,
    prepare_run,
    prompt_lengths,
    rollout_func_for,
    save_run,
    train_grpo,
)
from .warmstart import dp_answer, dp_reasoning, run_sft, sft_records

#: Trainer callbacks (:mod:`.callbacks`): they subclass transformers' ``TrainerCallback``, so they load on first use.
CALLBACKS = ("CompletionRecorder", "LivePlot", "ProgressPrinter", "SkipNonFiniteSteps", "StepTimer", "StopAfterStep")


def __getattr__(name: str):
    if name in CALLBACKS:
        from . import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
