"""Notebook 05: GRPO training with LoRA.

* :mod:`.backend` - Unsloth or TRL + PEFT; :mod:`.config` - every GRPO knob with its reason;
* :mod:`.warmstart` - the supervised warm start a tiny model needs first;
* :mod:`.trainer` - the policy and TRL's ``GRPOTrainer`` (:func:`build_trainer`), the run (:func:`train_grpo`);
* :mod:`.runs` - resume or restart, checkpoints, the run summary, the Hub;
* :mod:`.callbacks` - live plots, sample tables, a simulated disconnect;
* :mod:`.group_probe` - sample groups before training: is there any signal?

Heavy libraries load inside the functions: importing this package does not import torch or TRL.
"""

from .backend import choose_backend, preload_backend
from .config import Knob, build_grpo_config, grpo_knobs, knobs_table, lora_config
from .group_probe import group_rewards, group_signal, sample_groups, zero_variance_share
from .runs import (
    RUN_INFO,
    checkpoint_step,
    latest_checkpoint,
    prepare_run_dir,
    push_to_hub,
    read_run_info,
    run_settings,
    write_run_info,
)
from .trainer import TrainerSetup, TrainResult, build_trainer, grpo_records, load_policy, prompt_lengths, train_grpo
from .warmstart import dp_answer, dp_reasoning, run_sft, sft_records
