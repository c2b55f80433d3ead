"""Issue 23, items 6-8 and 13-15: no setting is silently wrong, and a bad one stops with one line
before anything loads (no model, no reward file, no training)."""

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from utils.profiles import PROFILES, RANGES, check_profile, get_profile, knob_names, torch_threads, use_torch_threads

ROOT = Path(__file__).resolve().parent.parent

# Each: a knob, a value the issue found accepted (or failing late with a traceback), and the valid range said.
BAD = [
    ("grpo.steps", -1, "an integer >= 1"),  # trained 48 steps
    ("grpo.steps", 0, "an integer >= 1"),  # trained 1 step
    ("grpo.steps", "1e400", "an integer >= 1"),  # OverflowError
    ("grpo.save_steps", 0, "an integer >= 1"),  # saved nothing until the end
    ("eval.batch_size", -1, "an integer >= 1"),  # evaluated empty completions
    ("eval.batch_size", 0, "an integer >= 1"),
    ("data.n_eval", -1, "an integer from 1 to 100"),  # evaluated 99 problems (a negative slice)
    ("data.n_eval", 0, "an integer from 1 to 100"),
    ("data.n_eval", 101, "an integer from 1 to 100"),  # only 100 are committed
    ("data.n_train", 0, "an integer >= 1"),
    ("data.train_style", "fancy", "one of 'default', 'mixed', 'wide'"),
    ("grpo.num_generations", 0, "an integer >= 2"),
    ("grpo.num_generations", 1, "an integer >= 2"),
    ("grpo.per_device_batch", 3, "a multiple of grpo.num_generations=2"),
    ("grpo.micro_batch", -1, "an integer >= 0"),
    ("grpo.micro_batch", 3, "a divisor of grpo.per_device_batch=2"),  # passes that do not add up to a step
    ("grpo.max_completion_length", 0, "an integer >= 1"),
    ("warm_start.n_problems", 0, "an integer >= 1"),
    ("grpo.lora_r", 0, "an integer >= 1"),
    ("grpo.learning_rate", -1, "a finite number > 0"),
    ("grpo.learning_rate", "nan", "a finite number > 0"),
    ("grpo.learning_rate", math.inf, "a finite number > 0"),
    ("warm_start.epochs", 0, "a finite number > 0"),
    ("warm_start.trace", "fulll", "one of 'short', 'full'"),
    ("warm_start.style", "odd", "one of 'default', 'mixed'"),
    ("data.max_events", 3, "an integer >= 4"),  # no committed problem is that small
    ("threads", -1, "an integer >= 0"),
]


def test_every_knob_has_a_valid_range():
    assert set(knob_names()) == {"model", *RANGES}
    for profile in PROFILES.values():
        check_profile(profile)


@pytest.mark.parametrize("knob, value, valid", BAD)
def test_a_knob_out_of_range_stops_with_one_line(knob, value, valid, monkeypatch):
    """In code, in $COURSE_OVERRIDES and in every profile: the knob, the value and the range, one line."""
    with pytest.raises(ValueError) as info:
        get_profile("smoke", {knob: value})
    message = str(info.value)
    assert message.startswith(f"{knob}=") and valid in message and "\n" not in message
    monkeypatch.setenv("COURSE_OVERRIDES", f"{knob}={value}")
    for name in PROFILES:
        with pytest.raises(ValueError, match="^" + knob.replace(".", r"\.") + "="):
            get_profile(name)


def test_values_at_the_edges_of_the_ranges_are_accepted():
    edges = {"grpo.steps": 1, "data.n_eval": 100, "data.n_train": 500, "grpo.num_generations": 2, "threads": 0}
    assert get_profile("smoke", edges).data.n_eval == 100


def test_an_unknown_model_knob_is_refused():
    with pytest.raises(ValueError, match="unknown model 'qwen-9000' \\(knob model\\)"):
        get_profile("smoke", {"model": "qwen-9000"})


def test_course_model_is_refused_when_unknown_and_reported_when_a_profile_overrules_it(monkeypatch, capsys):
    """Item 6: the smoke and cpu profiles name the embedded model; $COURSE_MODEL was dropped without a word."""
    from utils.llm import choose_model

    monkeypatch.setenv("COURSE_MODEL", "qwen-9000")
    with pytest.raises(ValueError, match=r"unknown model 'qwen-9000' in \$COURSE_MODEL"):
        choose_model(get_profile("smoke").model)
    monkeypatch.setenv("COURSE_MODEL", "qwen2.5-0.5b")
    assert choose_model(get_profile("cpu").model).key == "smollm2-135m"
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 1 and "$COURSE_MODEL='qwen2.5-0.5b' is ignored" in said[0]
    assert choose_model(get_profile("cpu", {"model": "auto"}).model).key == "qwen2.5-0.5b"  # what the note says
    capsys.readouterr()
    monkeypatch.setenv("COURSE_MODEL", "smollm2-135m")
    choose_model("smollm2-135m")
    assert capsys.readouterr().out == ""  # nothing ignored, nothing to say


def test_a_bad_course_generation_fails_without_looking_at_the_hardware(monkeypatch):
    """Item 15: checked up front (scripts/train_grpo.py calls this before loading anything)."""
    from utils.llm import generation

    monkeypatch.setattr(generation, "vllm_usable", lambda: pytest.fail("looked for vLLM"))
    monkeypatch.setenv("COURSE_GENERATION", "garbage")
    with pytest.raises(ValueError, match=r"\$COURSE_GENERATION='garbage' is not one of"):
        generation.requested_generation("train", "trl")
    monkeypatch.setenv("COURSE_GENERATION", "Plain ")
    assert generation.choose_generation("eval").path == "plain"


def _script():
    spec = importlib.util.spec_from_file_location("train_grpo_script", ROOT / "scripts" / "train_grpo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--eval-n", "-1"], {}, "--eval-n: data.n_eval=-1 is out of range"),
        (["--steps", "0"], {}, "--steps: grpo.steps=0 is out of range"),
        (["--save-steps", "0"], {}, "--save-steps: grpo.save_steps=0 is out of range"),
        (["--lr", "nan"], {}, "--lr: grpo.learning_rate=nan is out of range"),
        (["--lr", "-1"], {}, "--lr: grpo.learning_rate=-1.0 is out of range"),
        (["--batch", "3"], {}, "--batch: grpo.per_device_batch=3 is out of range"),
        (["--max-completion", "0"], {}, "--max-completion: grpo.max_completion_length=0"),
        (["--train-n", "0"], {}, "--train-n: data.n_train=0"),
        ([], {"COURSE_OVERRIDES": "grpo.steps=1e400"}, "grpo.steps='1e400' is out of range"),
        ([], {"COURSE_OVERRIDES": "grpo.num_generations=1,grpo.per_device_batch=1"}, "grpo.num_generations=1"),
        ([], {"COURSE_OVERRIDES": "warm_start.n_problems=0"}, "warm_start.n_problems=0"),
        ([], {"COURSE_OVERRIDES": "grpo.lora_r=0"}, "grpo.lora_r=0"),
        ([], {"COURSE_OVERRIDES": "eval.batch_size=0"}, "eval.batch_size=0"),
        ([], {"COURSE_MODEL": "garbage"}, "unknown model 'garbage' in $COURSE_MODEL"),
        ([], {"COURSE_GENERATION": "garbage"}, "$COURSE_GENERATION='garbage' is not one of"),
    ],
)
def test_the_training_script_refuses_bad_settings_before_loading_anything(
    args, env, message, monkeypatch, capsys, tmp_path
):
    """Items 7, 13-15: one line and exit code 2, before the reward file, the model or a folder is touched."""
    import utils.llm
    import utils.rewards

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(utils.llm, "model_source", lambda *a, **k: pytest.fail("loaded the model"))
    monkeypatch.setattr(utils.rewards, "load_reward_set", lambda *a, **k: pytest.fail("loaded the rewards"))
    out = tmp_path / "run"
    assert _script().main(["--profile", "smoke", "--out", str(out), *args]) == 2
    said = capsys.readouterr()
    lines = [line for line in (said.out + said.err).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("train_grpo.py: error: ") and message in lines[0], lines
    assert not out.exists()


def test_cpu_threads_are_chosen_in_one_place_and_can_be_lowered():
    """The cpu profile's thread count is deliberate (torch_threads says why); a shared machine sets 1."""
    import os

    import torch

    before = torch.get_num_threads()
    try:
        assert PROFILES["cpu"].threads == 0
        assert 1 <= torch_threads(PROFILES["cpu"]) <= len(os.sched_getaffinity(0))
        line = use_torch_threads(get_profile("cpu", {"threads": 1}))
        if line is not None:  # None on a CUDA machine: torch's default stays
            assert torch.get_num_threads() == 1 and line.startswith("1 torch thread ")
    finally:
        torch.set_num_threads(before)


def test_the_gpu_profile_on_a_machine_without_cuda_is_said_in_the_setup_cell(monkeypatch, capsys):
    """A learner who sets COURSE_PROFILE=gpu on a laptop hears, in every notebook's setup cell, why it will be slow
    and which profile fits; the other profiles say nothing."""
    import utils.profiles
    from utils.env import show_environment

    monkeypatch.setattr(utils.profiles, "has_cuda", lambda: False)
    for name, warned in (("gpu", True), ("cpu", False), ("smoke", False)):
        monkeypatch.setenv("COURSE_PROFILE", name)
        show_environment(packages=())
        out = capsys.readouterr().out
        assert ("Warning: the gpu profile on a machine without CUDA" in out) is warned, out
        assert ("COURSE_PROFILE=cpu is the one made for a CPU." in out) is warned


def _fake_sft(monkeypatch):
    """run_sft with everything heavy replaced: counts the trainings, writes a 'model'."""
    import transformers
    import trl

    from utils.train import warmstart

    trained = []

    class FakeTrainer:
        def __init__(self, args, train_dataset, **kwargs):
            self.state = SimpleNamespace(global_step=1, log_history=[])
            self.dataset = train_dataset

        def train(self):
            trained.append(self.dataset[0]["completion"][0]["content"])

        def save_model(self, path):
            Path(path).mkdir(parents=True, exist_ok=True)
            (Path(path) / "config.json").write_text("{}")

    tokenizer = SimpleNamespace(eos_token="<|im_end|>", pad_token="<|im_end|>", save_pretrained=lambda path: None)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: object())
    monkeypatch.setattr(warmstart, "load_tokenizer", lambda source: tokenizer)
    monkeypatch.setattr(trl, "SFTTrainer", FakeTrainer)
    return warmstart.run_sft, trained


def test_a_warm_start_with_other_settings_is_trained_again(monkeypatch, tmp_path, train_rows, capsys):
    """Item 8: `warm_start.trace=full` reused the short-trace model ("Warm-start already done")."""
    run_sft, trained = _fake_sft(monkeypatch)
    folder = tmp_path / "sft"
    short = get_profile("smoke")
    run_sft("base", train_rows[:2], short, folder)
    run_sft("base", train_rows[:2], short, folder)  # same settings: reused
    assert len(trained) == 1 and "Warm-start already done" in capsys.readouterr().out

    run_sft("base", train_rows[:2], get_profile("smoke", {"warm_start.trace": "full"}), folder)
    said = [line for line in capsys.readouterr().out.splitlines() if "Warm-start" in line and "other" in line]
    assert len(trained) == 2 and "Values (minutes" in trained[1]  # the full trace this time
    assert len(said) == 1 and "warm_start.trace 'short' -> 'full'" in said[0]
    assert json.loads((folder / "sft_settings.json").read_text())["warm_start.trace"] == "full"

    run_sft("base", train_rows[2:4], get_profile("smoke", {"warm_start.trace": "full"}), folder)  # other problems
    run_sft("other-base", train_rows[2:4], get_profile("smoke", {"warm_start.trace": "full"}), folder)
    assert len(trained) == 4


def test_a_warm_start_without_a_record_of_its_settings_is_not_trusted(monkeypatch, tmp_path, train_rows, capsys):
    run_sft, trained = _fake_sft(monkeypatch)
    folder = tmp_path / "sft"
    run_sft("base", train_rows[:2], get_profile("smoke"), folder)
    (folder / "sft_settings.json").unlink()  # as a warm start made before the record existed, or cut short
    run_sft("base", train_rows[:2], get_profile("smoke"), folder)
    assert len(trained) == 2 and "no record of its settings" in capsys.readouterr().out


def test_fp32_precision_loads_an_fp32_policy_and_refuses_unsloth(tiny_model_dir):
    """grpo.precision='fp32': the trl backend loads the policy in fp32 (TRL's loss then computes like the fp32
    rollout copy); Unsloth chooses its own dtypes, so it is refused with one line, before it is imported."""
    import torch

    from utils.llm.models import choose_model
    from utils.train.trainer import load_policy

    profile = get_profile("smoke", {"grpo.precision": "fp32"})
    spec = choose_model("smollm2-135m")
    model, _, peft_config = load_policy("trl", spec, str(tiny_model_dir), profile, 256, "static-cache")
    assert next(model.parameters()).dtype == torch.float32 and peft_config is not None
    with pytest.raises(ValueError, match="grpo.precision='fp32' needs the trl backend"):
        load_policy("unsloth", spec, str(tiny_model_dir), profile, 256, "plain")
    with pytest.raises(ValueError, match="grpo.precision"):
        get_profile("smoke", {"grpo.precision": "fp16"})


# ---------------------------------------------------------------- the seed knob (runs repeated across seeds)


def test_the_seed_is_a_checked_knob():
    assert get_profile("smoke").seed == 3407  # the public recipe's
    assert get_profile("smoke", {"seed": "7"}).seed == 7
    for bad in ("-1", str(2**32)):
        with pytest.raises(ValueError, match="seed=.* is out of range: valid is an integer from 0 to 4294967295"):
            get_profile("smoke", {"seed": bad})
    with pytest.raises(ValueError, match="value for seed: '1.5' is not an integer"):
        get_profile("smoke", {"seed": "1.5"})


def test_another_seed_trains_another_warm_start_with_that_seed(monkeypatch, tmp_path, train_rows, capsys):
    import trl

    run_sft, trained = _fake_sft(monkeypatch)
    seeds = []
    real = trl.SFTTrainer
    monkeypatch.setattr(trl, "SFTTrainer", lambda args, **kw: seeds.append(args.seed) or real(args=args, **kw))
    folder = tmp_path / "sft"
    run_sft("base", train_rows[:2], get_profile("smoke"), folder)
    run_sft("base", train_rows[:2], get_profile("smoke", {"seed": 1}), folder)
    assert seeds == [3407, 1] and "seed 3407 -> 1" in capsys.readouterr().out
    # a record from before the knob existed (no "seed") was trained with 3407: reused for it, not for seed 1
    record = json.loads((folder / "sft_settings.json").read_text())
    del record["seed"]
    (folder / "sft_settings.json").write_text(json.dumps(record))
    run_sft("base", train_rows[:2], get_profile("smoke"), folder)
    assert seeds == [3407, 1] and "Warm-start already done" in capsys.readouterr().out
    run_sft("base", train_rows[:2], get_profile("smoke", {"seed": 1}), folder)
    assert seeds == [3407, 1, 1]


def test_a_warm_start_record_nested_too_deep_reads_as_damaged(tmp_path):
    from utils.train.warmstart import SFT_SETTINGS, reuse_decision

    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "config.json").write_text("{}")
    (tmp_path / SFT_SETTINGS).write_text("[" * 100_000)  # gave a RecursionError before the shared reader
    reuse, why = reuse_decision(tmp_path, {"seed": 3407})
    assert not reuse and "no record of its settings" in why


def test_the_policy_trains_the_lora_it_is_given_and_refuses_a_rank_the_run_would_not_record(tiny_model_dir):
    """Notebook 05 hands its own LoraConfig to load_policy: the trl backend trains exactly that one; a rank that
    differs from grpo.lora_r (which the run's settings record and a resume checks) stops with one line."""
    from peft import LoraConfig

    from utils.llm.models import choose_model
    from utils.train.trainer import load_policy

    profile = get_profile("smoke")
    spec = choose_model("smollm2-135m")
    mine = LoraConfig(r=profile.grpo.lora_r, lora_alpha=2 * profile.grpo.lora_r, target_modules=["q_proj"])
    _, _, peft_config = load_policy("trl", spec, str(tiny_model_dir), profile, 256, "static-cache", mine)
    assert peft_config is mine
    other = LoraConfig(r=profile.grpo.lora_r + 1, target_modules=["q_proj"])
    with pytest.raises(ValueError, match=r"LoraConfig\(r=9\) but the profile's grpo.lora_r is 8: .*grpo.lora_r=9"):
        load_policy("trl", spec, str(tiny_model_dir), profile, 256, "static-cache", other)
