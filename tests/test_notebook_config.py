"""Notebook 05 writes the trainer itself: its GRPOConfig(...) and GRPOTrainer(...) cells must stay what the
library's knob table and build_trainer say, and its training cells must run, interrupt and resume.

The cells are read from the committed notebook (JSON) and parsed with ``ast``; nothing is copied here.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
from pathlib import Path

import pytest

from utils.env import headless
from utils.llm import MODELS
from utils.profiles import get_profile
from utils.train import config, trainer

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_grpo_training.ipynb"
#: The notebook's code cells by id.
CELLS = {
    c["id"]: "".join(c["source"])
    for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    if c["cell_type"] == "code"
}
#: What build_grpo_config adds to the knobs (the run folder, the weights, when to save).
NOT_KNOBS = {"output_dir", "reward_weights", "save_strategy"}


def _cell_with(text: str) -> tuple[str, ast.Module]:
    found = [cid for cid, src in CELLS.items() if text in src]
    assert len(found) == 1, f"expected one code cell of notebook 05 with {text!r}, found {found}"
    return found[0], ast.parse(CELLS[found[0]])


def _call(tree: ast.AST, name: str) -> ast.Call:
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]
    assert len(calls) == 1, f"expected one {name}(...) call, found {len(calls)}"
    return calls[0]


def _defaults() -> dict:
    from trl import GRPOConfig

    return {f.name: f.default for f in dataclasses.fields(GRPOConfig)}


def test_the_notebooks_grpo_config_is_the_knob_table(monkeypatch):
    """For every profile, backend, generation path, CPU/GPU (bf16 or not) and model: each knob has the
    knob table's value in the notebook's GRPOConfig(...), and what the cell sets beyond the knobs is
    TRL's default (changes nothing) or what build_grpo_config adds. The GPU is a T4's 14.6 GiB, so the 135M
    model's loss passes shrink (8 answers) in both, and the cell's own ``micro = ...`` line is what is run."""
    _, tree = _cell_with("config = GRPOConfig(")
    call = _call(tree, "GRPOConfig")
    (micro_line,) = [n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "micro"]
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    assert [k for k in call.keywords if k.arg is None], "the cell no longer passes **EXTRA_CONFIG"
    defaults = _defaults()
    checked = 0
    for profile_name, precision, backend, gen_path, on_gpu, bf16, spec in itertools.product(
        ("smoke", "cpu", "gpu"),
        ("auto", "fp32"),
        ("trl", "unsloth"),
        ("plain", "static-cache", "vllm"),
        (False, True),
        (False, True),
        MODELS.values(),
    ):
        monkeypatch.setattr(config, "bf16_supported", lambda bf16=bf16: bf16)
        profile = get_profile(profile_name, {"grpo.precision": precision})
        gpu_gib = 14.6 if on_gpu else None
        knobs = {k.name: k.value for k in config.grpo_knobs(profile, backend, 400, gen_path, on_gpu, spec, gpu_gib)}
        micro = eval(  # noqa: S307
            compile(ast.Expression(micro_line.value), "cell", "eval"),
            {
                "P": profile,
                "spec": spec,
                "on_gpu": on_gpu,
                "gpu_memory_gib": lambda: 14.6,
                "loss_micro_batch": config.loss_micro_batch,
                "training_gib": config.training_gib,
                "backend": backend,
                "gen_path": gen_path,
            },
        )
        names = {
            "P": profile,
            "spec": spec,
            "backend": backend,
            "gen_path": gen_path,
            "on_gpu": on_gpu,
            "bf16_supported": lambda bf16=bf16: bf16,
            "headless": headless,
            "RUN_DIR": Path("run"),
            "reward_weights": [1.0, 2.0],
            "micro": micro,
        }
        cell = {k: eval(compile(ast.Expression(v), "cell", "eval"), names) for k, v in keywords.items()}  # noqa: S307
        where = f"{profile_name}/{precision}/{backend}/{gen_path}/gpu={on_gpu}/bf16={bf16}/{spec.key}"
        missing = sorted(set(knobs) - set(cell))
        assert not missing, f"{where}: the notebook's GRPOConfig lacks the knobs {missing}"
        differ = {k: (cell[k], knobs[k]) for k in knobs if cell[k] != knobs[k] or type(cell[k]) is not type(knobs[k])}
        assert not differ, f"{where}: notebook vs knob table {differ}"
        beyond = {k: v for k, v in cell.items() if k not in knobs and k not in NOT_KNOBS and v != defaults[k]}
        assert not beyond, f"{where}: the notebook sets {beyond} where the library keeps TRL's defaults"
        checked += 1
    assert checked == 3 * 2 * 2 * 3 * 2 * 2 * len(MODELS)


def test_the_notebooks_trainer_call_is_build_trainers():
    """The notebook's GRPOTrainer(...) passes what build_trainer passes (the API-drift tests check those
    keywords against the installed and the Colab TRL), attaches the recorder right after, and trains
    with resume_from_checkpoint."""
    cid, tree = _cell_with("trainer = GRPOTrainer(")
    nb_keywords = {k.arg for k in _call(tree, "GRPOTrainer").keywords}
    lib_tree = ast.parse(Path(trainer.__file__).read_text(encoding="utf-8"))
    build = next(n for n in ast.walk(lib_tree) if isinstance(n, ast.FunctionDef) and n.name == "build_trainer")
    assert nb_keywords == {k.arg for k in _call(build, "GRPOTrainer").keywords}
    for body in (tree.body, build.body):
        at = next(i for i, s in enumerate(body) if "GRPOTrainer(" in ast.unparse(s))
        assert ast.unparse(body[at + 1]) == "recorder.attach(trainer)", "attach the recorder right after GRPOTrainer"
    trains = [src for src in CELLS.values() if "trainer.train(resume_from_checkpoint=" in src]
    assert len(trains) == 2  # the run that stops on purpose, and its resume


def test_the_notebooks_training_cells_stop_and_resume(tiny_model_dir, train_rows, capsys):
    """Notebook 05's own cells (imports, run folder, config, trainer, train, resume + save) on a tiny model:
    the run stops after step 1 on purpose, resumes to max_steps and writes the adapter and run_info.json."""
    from utils.llm import choose_model
    from utils.rewards import default_reward_funcs
    from utils.train import read_run_info

    ns: dict = {}
    exec(CELLS["c003"], ns)  # noqa: S102 - the notebook's import cell
    profile = get_profile(
        "smoke", {"grpo.steps": 2, "grpo.save_steps": 1, "grpo.max_completion_length": 8, "grpo.sample_every": 1}
    )
    funcs = default_reward_funcs()
    ns.update(
        P=profile,
        spec=choose_model("smollm2-135m"),
        backend="trl",
        gen_path="plain",
        policy_base=tiny_model_dir,
        reward_funcs=funcs,
        reward_weights=[1.0] * len(funcs),
        train_rows=train_rows[:4],
        lengths=[400],
        SEQUENCE_BUDGET=2048,
    )
    for cid in ("c021", "t05cfg", "t05lora", "t05tr", "c022"):
        exec(CELLS[cid], ns)  # noqa: S102
    assert ns["trainer"].state.global_step == 1 and ns["recorder"].trainer is ns["trainer"]
    capsys.readouterr()
    exec(CELLS["c023"], ns)  # noqa: S102 - asserts the run ends at max_steps
    out = capsys.readouterr().out
    assert "unfinished run found at step 1/2: resuming from" in out
    assert "GRPO training: step 2/2" in out
    result = ns["result"]
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
    info = read_run_info(ns["RUN_DIR"])
    assert info["global_step"] == 2 and info["rewards"] == [f.__name__ for f in funcs]
    assert [h["step"] for h in result.log_history if "reward" in h] == [1, 2]  # the first call's log survives


def test_time_left_does_not_swing_with_one_slow_step(monkeypatch, capsys):
    """Issue 25: the estimate swung from 12.9 to 20.8 min. One slow step (a checkpoint save, a long answer)
    now moves it little: the median of the recent steps, not the mean since the start."""
    from types import SimpleNamespace

    from utils.train import ProgressPrinter, callbacks

    clock = iter([0.0, 40.0, 80.0, 120.0, 240.0, 280.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    printer = ProgressPrinter()
    printer.on_train_begin(None, SimpleNamespace(global_step=0), None)
    for step in range(1, 6):
        printer.on_step_end(None, SimpleNamespace(global_step=step, max_steps=20), None)
    lines = capsys.readouterr().out.splitlines()
    minutes = [float(line.split("about ")[1].split(" min")[0]) for line in lines]
    assert all(line.startswith("GRPO training: step ") for line in lines)
    assert minutes[2] == pytest.approx(40 * 17 / 60, abs=0.05)
    assert minutes[3] == pytest.approx(40 * 16 / 60, abs=0.05)  # the 120-s step does not move the median
    assert callbacks.time_left([], 3) != callbacks.time_left([], 3)  # nan: no step timed yet


def test_the_probe_sentence_says_what_the_numbers_say():
    """Issue 25: the prose said the warm start's groups "differ" while the cell printed 100% zero-variance."""
    import pandas as pd

    from utils.train import signal_sentence

    alike = pd.DataFrame({"problem": [0, 0, 1, 1], "total": [0.0, 0.0, 0.0, 0.0]})
    assert signal_sentence(alike, 1.0) == (
        "mean total reward 0.0; every group scored its answers alike (zero-variance groups 100%): no gradient yet"
    )
    mixed = pd.DataFrame({"problem": [0, 0, 1, 1], "total": [0.0, 30.0, 0.0, 0.0]})
    assert "answers differ within 50% of the groups" in signal_sentence(mixed, 0.5)


def test_the_notebooks_lora_config_is_the_one_the_library_builds():
    """Notebook 05 writes LoraConfig(...) out, one reason a line, and load_policy trains with it: for every profile
    its arguments are lora_config(profile)'s, so scripts/train_grpo.py and the notebook train the same adapter."""
    from utils.train.config import LORA_TARGETS

    _, tree = _cell_with("lora = LoraConfig(")
    keywords = {k.arg: k.value for k in _call(tree, "LoraConfig").keywords}
    for name in ("smoke", "cpu", "gpu"):
        profile = get_profile(name)
        names = {"P": profile, "LORA_TARGETS": LORA_TARGETS}
        cell = {k: eval(compile(ast.Expression(v), "cell", "eval"), names) for k, v in keywords.items()}  # noqa: S307
        built = config.lora_config(profile)
        assert {k: getattr(built, k) for k in cell} == {**cell, "target_modules": set(LORA_TARGETS)}, name
    _, tree = _cell_with("load_policy(")
    call = _call(tree, "load_policy")
    assert [a.id for a in call.args][-1] == "lora", "the trainer cell no longer passes the notebook's LoraConfig"


@pytest.mark.parametrize("profile_name", ["smoke", "cpu", "gpu"])
def test_what_differs_between_machines_is_not_a_setting_a_resume_must_match(profile_name):
    """A Colab run resumed after a disconnect may land on another card (a T4 after an L4) or the CPU: the knobs that
    follow the machine (precision, micro-batch split, checkpointing, pinned memory, generation engine) must be
    left out of the recorded settings (``UNRECORDED_CONFIG``), or the resume would start the run over. The values
    the learner chooses (the learning rate, the budget, the group size) are not machine knobs and stay recorded."""
    from utils.train.runs import UNRECORDED_CONFIG

    profile, spec = get_profile(profile_name), MODELS["smollm2-135m"]
    machines = [("static-cache", False, None), ("static-cache", True, 15.0), ("static-cache", True, 80.0)]
    machines += [("vllm", True, 22.5)]
    values = [{k.name: k.value for k in config.grpo_knobs(profile, "trl", 400, *m[:2], spec, m[2])} for m in machines]
    differ = {k for a, b in itertools.combinations(values, 2) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert differ, "the machines above should differ somewhere"
    assert not [k for k in differ if not k.startswith(UNRECORDED_CONFIG)]
    assert not [
        k for k in ("learning_rate", "max_completion_length", "num_generations") if k.startswith(UNRECORDED_CONFIG)
    ]
