"""Training plumbing: profiles, backend choice, run folders, and a real GRPO run with an
interruption and a resume on a tiny random model (seconds on CPU)."""

import json

import pytest

from utils.profiles import OVERRIDES_ENV, get_profile, parse_overrides
from utils.train import checkpoint_step, choose_backend, prepare_run_dir


def test_overrides_are_typed_and_applied(monkeypatch):
    assert parse_overrides("grpo.steps=20, grpo.learning_rate=2e-4,model=qwen2.5-0.5b") == {
        "grpo.steps": "20",
        "grpo.learning_rate": "2e-4",
        "model": "qwen2.5-0.5b",
    }
    monkeypatch.setenv(OVERRIDES_ENV, "grpo.steps=7,data.n_eval=3,warm_start.epochs=0.5")
    p = get_profile("smoke")
    assert (p.name, p.grpo.steps, p.data.n_eval, p.warm_start.epochs) == ("smoke", 7, 3, 0.5)
    assert get_profile("smoke", {"grpo.steps": 9}).grpo.steps == 9  # code wins over the environment


@pytest.mark.parametrize("text", ["grpo.steps", "nope=1", "grpo_steps=3", "name=gpu"])
def test_bad_overrides_say_what_is_wrong(text):
    with pytest.raises(ValueError, match="knob=value"):
        parse_overrides(text)


def test_override_strings_written_in_the_repository_are_valid():
    """Scripts and docs that set COURSE_OVERRIDES must use today's knob names (scripts/gpu_check.sh still
    used the old flat names after the knobs were grouped, and would have stopped at its first line)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [*root.glob("scripts/*"), *root.glob("*.md"), *root.glob("notebooks/*.ipynb"), root / "Makefile"]
    found = []
    for path in files:
        for text in re.findall(r'COURSE_OVERRIDES=\\?"([^"\\]*)', path.read_text(encoding="utf-8")):
            found.append(text)
            get_profile("smoke", parse_overrides(re.sub(r"\$\{?\w+\}?", "1", text)))
    assert len(found) >= 4


@pytest.mark.parametrize("knob, value", [("grpo.steps", "many"), ("grpo.steps", "2.5"), ("grpo.learning_rate", "x")])
def test_bad_override_values_say_which_knob(knob, value):
    with pytest.raises(ValueError, match=knob.replace(".", r"\.")):
        get_profile("smoke", {knob: value})


def test_backend_choice_on_cpu(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_BACKEND", raising=False)
    assert choose_backend() == "trl"
    monkeypatch.setenv("COURSE_BACKEND", "trl")
    assert choose_backend("auto") == "trl"  # "auto" in code leaves the choice to the environment...
    assert "from $COURSE_BACKEND" in capsys.readouterr().out  # ... and says so
    monkeypatch.setenv("COURSE_BACKEND", "unsloth")
    with pytest.raises(RuntimeError, match="CUDA GPU"):
        choose_backend("auto")
    with pytest.raises(ValueError, match="auto, unsloth or trl"):
        choose_backend("jax")


def _fake_checkpoint(run_dir, step, marked=True):
    """What the trainer reads back on a resume: its state, the adapter, the optimizer and scheduler;
    in a run folder the course marked as its own (``marked=False``: one from before the marker)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from utils.paths import MARKER

    run_dir.mkdir(parents=True, exist_ok=True)
    if marked:
        (run_dir / MARKER).touch()
    ckpt = run_dir / "checkpoints" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 10}))
    save_file({"lora_A": torch.zeros(2, 2)}, str(ckpt / "adapter_model.safetensors"))
    torch.save({"state": {}}, ckpt / "optimizer.pt")
    torch.save({"last_epoch": step}, ckpt / "scheduler.pt")
    return ckpt


def test_prepare_run_dir_resumes_unfinished_and_restarts_finished(tmp_path):
    run = tmp_path / "grpo"
    assert "new run" in prepare_run_dir(run, 10)
    ckpt = _fake_checkpoint(run, 4)
    assert checkpoint_step(ckpt) == 4
    assert "resuming" in prepare_run_dir(run, 10) and ckpt.exists()
    assert "new run" in prepare_run_dir(run, 10, fresh=True) and not ckpt.exists()
    _fake_checkpoint(run, 10)
    assert "finished" in prepare_run_dir(run, 10) and not (run / "checkpoints").exists()
    _fake_checkpoint(run, 10)
    assert "resuming" in prepare_run_dir(run, 10, fresh=False)


def test_prepare_run_dir_never_empties_a_folder_it_did_not_make(tmp_path):
    """Issue 18.1: a learner's RUN_DIR (on Google Drive, say) that holds their own files."""
    theirs = tmp_path / "my-documents"
    theirs.mkdir()
    (theirs / "thesis.docx").write_text("three years of work")
    refused = r"holds files the course did not make \(thesis\.docx\).*nothing was changed"
    with pytest.raises(ValueError, match=refused):
        prepare_run_dir(theirs, 300)
    assert sorted(p.name for p in theirs.iterdir()) == ["thesis.docx"]
    assert (theirs / "thesis.docx").read_text() == "three years of work"

    from utils.paths import MARKER

    with pytest.raises(ValueError, match="is a file"):
        prepare_run_dir(theirs / "thesis.docx", 300)

    run = tmp_path / "grpo"  # a course run folder where the learner also keeps a note
    assert "new run" in prepare_run_dir(run, 10) and (run / MARKER).exists()
    _fake_checkpoint(run, 10)
    (run / "run_info.json").write_text("{}")
    (run / "my notes.txt").write_text("lr 1e-4 looked best")
    assert "finished" in prepare_run_dir(run, 10)
    assert sorted(p.name for p in run.iterdir()) == sorted([MARKER, "my notes.txt"])  # only the run's own files went

    legacy = tmp_path / "old-run"  # made before the marker existed: refused, with what to do (issue 23.2)
    _fake_checkpoint(legacy, 3, marked=False)
    with pytest.raises(ValueError, match=f"add an empty file named {MARKER} to it to reuse it"):
        prepare_run_dir(legacy, 10)
    (legacy / MARKER).touch()
    assert "resuming" in prepare_run_dir(legacy, 10)


def test_nothing_else_writes_over_a_folder_it_did_not_make(tmp_path, monkeypatch):
    """Issue 18.1's bug class elsewhere: the converted-model cache ($COURSE_CACHE_DIR may point
    anywhere), a merged model's target and a warm start's folder refuse someone else's folder."""
    from utils.llm import embedded_checkpoint, merge_and_save
    from utils.train import run_sft

    def theirs(name):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        (folder / "thesis.docx").write_text("mine")
        return folder

    refused = "holds files the course did not make"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    cached = theirs("cache/smollm2-135m-instruct")  # was deleted after the conversion
    with pytest.raises(ValueError, match=refused):
        embedded_checkpoint(verbose=False)
    with pytest.raises(ValueError, match=refused):
        merge_and_save("no-model", tmp_path / "no-adapter", theirs("merged"))
    with pytest.raises(ValueError, match=refused):
        run_sft("no-model", [], get_profile("smoke"), theirs("sft"))
    for folder in (cached, tmp_path / "merged", tmp_path / "sft"):
        assert sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]


def test_damaged_checkpoints_are_set_aside_and_the_previous_one_resumed(tmp_path):
    """Issue 18.4 without training: what a resume would read is checked first."""
    run = tmp_path / "grpo"
    good = _fake_checkpoint(run, 2)
    header = _fake_checkpoint(run, 4)
    (header / "adapter_model.safetensors").write_bytes(b"\xff" * 7 + b"\x7f{}")  # "header too large"
    cut = _fake_checkpoint(run, 6)
    data = (cut / "optimizer.pt").read_bytes()
    (cut / "optimizer.pt").write_bytes(data[: len(data) // 2])  # a save interrupted half way
    (run / "checkpoints" / "checkpoint-8").mkdir()  # an empty checkpoint folder

    decision = prepare_run_dir(run, 10)
    assert "checkpoint-4 is damaged (adapter_model.safetensors unreadable" in decision
    assert "checkpoint-6 is damaged (optimizer.pt" in decision
    assert "checkpoint-8 is damaged (no trainer_state.json)" in decision
    assert decision.endswith(f"unfinished run found at step 2/10: resuming from {good}")
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())  # set aside, not deleted
    assert kept == ["checkpoint-2", "damaged-checkpoint-4", "damaged-checkpoint-6", "damaged-checkpoint-8"]
    assert "new run" in prepare_run_dir(run, 10, fresh=True)  # starting over keeps what was set aside
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == kept[1:]


def test_grpo_interrupted_and_resumed_ends_at_max_steps(tiny_model_dir, train_rows, tmp_path):
    from utils.llm import merge_and_save
    from utils.rewards import STRICT_ORDER_REWARDS, default_reward_funcs
    from utils.train import read_run_info, train_grpo

    profile = get_profile(
        "smoke", {"grpo.steps": 2, "grpo.save_steps": 1, "grpo.max_completion_length": 8, "grpo.sample_every": 1}
    )
    run = tmp_path / "grpo"
    kwargs = dict(base=tiny_model_dir, out_dir=run, backend="trl", reward_weights=[1.0, 2.0, 0.5])
    strict_order = default_reward_funcs(STRICT_ORDER_REWARDS)  # three rewards, one weight each
    first = train_grpo(train_rows[:4], strict_order, profile, stop_after=1, **kwargs)
    assert first.global_step == 1
    assert "resuming" in prepare_run_dir(run, profile.grpo.steps)
    second = train_grpo(train_rows[:4], strict_order, profile, **kwargs)
    assert second.global_step == profile.grpo.steps

    logged = [h for h in second.log_history if "reward" in h]
    assert [h["step"] for h in logged] == [1, 2]  # the first call's log survives the resume
    for name in ("format_reward", "sorted_events_reward", "strict_score_reward"):
        assert all(f"rewards/{name}/mean" in h for h in logged)
    assert (second.adapter_dir / "adapter_model.safetensors").exists()
    info = read_run_info(run)
    assert info["global_step"] == 2 and info["adapter_dir"] == str(second.adapter_dir)
    samples = [json.loads(line) for line in second.samples_file.read_text().splitlines()]
    assert {s["step"] for s in samples} == {1, 2} and all("strict_score_reward" in s for s in samples)
    # each step's answers once, although the Trainer logs twice at the step where a run stops (the run summary)
    per_step = profile.grpo.per_device_batch
    assert [s["step"] for s in samples] == [1] * per_step + [2] * per_step
    from utils.display import CURVES
    from utils.train.metrics import unexplained

    assert unexplained(k for h in logged for k in h) == []  # notebook 05's glossary explains every logged column
    from utils.train.monitor import MONITOR_COLUMNS

    assert all(key in h for h in logged for key in MONITOR_COLUMNS)  # the live monitor, at every logged step
    assert all(key in h for h in logged for key in CURVES)
    for s in samples:  # the sample table's total is the weighted sum GRPO optimises
        expected = s["format_reward"] + 2.0 * s["sorted_events_reward"] + 0.5 * s["strict_score_reward"]
        assert abs(s["total"] - expected) < 1e-9

    merged = merge_and_save(tiny_model_dir, second.adapter_dir, tmp_path / "merged")
    assert (merged / "config.json").exists() and not (merged / "adapter_config.json").exists()


def test_grpo_through_the_fast_rollout_path(tiny_model_dir, train_rows, tmp_path, monkeypatch):
    """COURSE_GENERATION=static-cache: the course's own trainer generates with FastRollouts (the GPU
    default), logs rewards and saves the adapter; here on CPU, uncompiled."""
    from utils.rewards import default_reward_funcs
    from utils.train import build_trainer

    monkeypatch.setenv("COURSE_GENERATION", "static-cache")
    profile = get_profile("smoke", {"grpo.steps": 1, "grpo.max_completion_length": 8})
    setup = build_trainer(
        train_rows[:4], default_reward_funcs(), profile, base=tiny_model_dir, out_dir=tmp_path / "grpo", backend="trl"
    )
    assert setup.generation == "static-cache" and setup.trainer.rollout_func is not None
    assert setup.recorder.trainer is setup.trainer  # attached right after GRPOTrainer(...)
    fast = setup.trainer.rollout_func.__self__
    setup.trainer.train()
    assert fast.history and fast.history[0].path == "graph"  # the bucketed graph engine ran (eagerly on CPU)
    assert any("reward" in h for h in setup.trainer.state.log_history)
    assert any(h.get("skipped_steps") == 0 for h in setup.trainer.state.log_history)  # the NaN guard is attached


def _tiny_profile(steps):
    return get_profile(
        "smoke", {"grpo.steps": steps, "grpo.save_steps": 1, "grpo.max_completion_length": 8, "grpo.sample_every": 1}
    )


def test_a_finished_run_does_not_train_past_its_end(tiny_model_dir, train_rows, tmp_path, capsys):
    """Issue 18.3: the same training call twice. The second resumed from the last checkpoint
    and trained one step past max_steps; now a finished run starts over and ends at max_steps."""
    from utils.rewards import default_reward_funcs
    from utils.train import read_run_info, train_grpo

    run = tmp_path / "grpo"
    kwargs = dict(base=tiny_model_dir, out_dir=run, backend="trl")
    assert train_grpo(train_rows[:4], default_reward_funcs(), _tiny_profile(2), **kwargs).global_step == 2
    capsys.readouterr()
    again = train_grpo(train_rows[:4], default_reward_funcs(), _tiny_profile(2), **kwargs)
    assert "the last run finished (2/2 steps): starting a new run" in capsys.readouterr().out
    assert again.global_step == 2 and read_run_info(run)["global_step"] == 2
    states = [json.loads((c / "trainer_state.json").read_text()) for c in (run / "checkpoints").glob("checkpoint-*")]
    assert states and all(s["global_step"] <= s["max_steps"] == 2 for s in states)


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tiny_model_dir, train_rows, tmp_path, capsys):
    """Issue 18.4: the newest checkpoint is damaged (and an empty one lies around): the run resumes
    from the checkpoint before it, says so, and keeps the damaged one aside."""
    from utils.rewards import default_reward_funcs
    from utils.train import train_grpo

    run = tmp_path / "grpo"
    kwargs = dict(base=tiny_model_dir, out_dir=run, backend="trl")
    train_grpo(train_rows[:4], default_reward_funcs(), _tiny_profile(2), **kwargs)
    ckpts = run / "checkpoints"
    (ckpts / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"\xff" * 7 + b"\x7f{}")
    (ckpts / "checkpoint-9").mkdir()
    capsys.readouterr()
    result = train_grpo(train_rows[:4], default_reward_funcs(), _tiny_profile(3), **kwargs)
    out = capsys.readouterr().out
    assert "checkpoint-2 is damaged (adapter_model.safetensors unreadable" in out and "checkpoint-9 is damaged" in out
    assert f"unfinished run found at step 1/3: resuming from {ckpts / 'checkpoint-1'}" in out
    assert result.global_step == 3
    assert (ckpts / "damaged-checkpoint-2" / "adapter_model.safetensors").exists()


def test_a_run_with_other_settings_is_not_resumed(tiny_model_dir, train_rows, tmp_path, capsys):
    """Found running `make test` then `make course` in one clone: the cpu profile resumed the smoke
    profile's unfinished checkpoint (LoRA rank 8) into a rank-16 model and died with a size-mismatch
    traceback. A checkpoint trained with other settings now starts a new run, saying which changed."""
    from utils.rewards import default_reward_funcs
    from utils.train import train_grpo

    run = tmp_path / "grpo"
    kwargs = dict(base=tiny_model_dir, out_dir=run, backend="trl")
    train_grpo(train_rows[:4], default_reward_funcs(), _tiny_profile(3), stop_after=1, **kwargs)  # unfinished
    wider = get_profile(
        "smoke",
        {"grpo.steps": 3, "grpo.save_steps": 1, "grpo.max_completion_length": 8, "grpo.lora_r": 16},
    )
    capsys.readouterr()
    result = train_grpo(train_rows[:4], default_reward_funcs(), wider, **kwargs)
    out = capsys.readouterr().out
    changed = "grpo.lora_r 8 -> 16; lora.lora_alpha 8 -> 16; lora.r 8 -> 16"  # the knob, and the LoraConfig it made
    assert f"checkpoint-1 comes from a run with other settings ({changed}): starting a new run" in out
    assert result.global_step == 3
    adapter = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert adapter["r"] == 16


def test_forcing_a_resume_under_other_settings_is_refused(tmp_path):
    from utils.train import run_settings

    run = tmp_path / "grpo"
    common = dict(model_key="smollm2-135m", base="b", backend="trl", reward_names=["format_reward"])
    smoke = run_settings(get_profile("smoke"), **common)
    cpu = run_settings(get_profile("cpu"), **common)
    prepare_run_dir(run, 10, settings=smoke)
    _fake_checkpoint(run, 4)
    assert "resuming" in prepare_run_dir(run, 10, settings=smoke)  # same settings (steps may change)
    assert "resuming" in prepare_run_dir(
        run, 20, settings=run_settings(get_profile("smoke", {"grpo.steps": 20}), **common)
    )
    with pytest.raises(
        ValueError, match=r"cannot resume .*checkpoint-4: it was trained with other settings \(.*grpo\.lora_r 8 -> 16"
    ):
        prepare_run_dir(run, 10, fresh=False, settings=cpu)
    assert (run / "checkpoints" / "checkpoint-4").exists()  # refused: nothing removed
    assert "other settings" in prepare_run_dir(run, 10, settings=cpu) and not (run / "checkpoints").exists()


def test_another_seed_starts_a_new_grpo_run_and_reaches_grpo_config(tmp_path):
    from utils.llm import MODELS
    from utils.train import config, run_settings

    common = dict(model_key="smollm2-135m", base="b", backend="trl", reward_names=["format_reward"])
    knobs = config.grpo_knobs(
        get_profile("smoke", {"seed": 5}), "trl", 400, "static-cache", False, MODELS["smollm2-135m"]
    )
    assert {k.name: k.value for k in knobs}["seed"] == 5
    run = tmp_path / "grpo"
    prepare_run_dir(run, 10, settings=run_settings(get_profile("smoke"), **common))
    _fake_checkpoint(run, 4)
    # run_settings.json from before the knob existed: the default seed resumes, another one starts over
    stored = json.loads((run / "run_settings.json").read_text())
    (run / "run_settings.json").write_text(json.dumps({k: v for k, v in stored.items() if k != "seed"}))
    decision = prepare_run_dir(run, 10, settings=run_settings(get_profile("smoke"), **common))
    assert "other settings" not in decision
    decision = prepare_run_dir(run, 10, settings=run_settings(get_profile("smoke", {"seed": 1}), **common))
    assert "seed 3407 -> 1" in decision


def test_other_grpo_problems_start_a_new_run_and_older_settings_files_resume(tmp_path):
    from utils.train import run_settings

    common = dict(model_key="smollm2-135m", base="b", backend="trl", reward_names=["format_reward"])
    run = tmp_path / "grpo"
    prepare_run_dir(run, 10, settings=run_settings(get_profile("smoke"), **common))
    _fake_checkpoint(run, 4)
    wide = run_settings(get_profile("smoke", {"data.train_style": "wide", "data.n_train": 600}), **common)
    with pytest.raises(ValueError, match=r"data\.n_train 16 -> 600; data\.train_style 'default' -> 'wide'"):
        prepare_run_dir(run, 10, fresh=False, settings=wide)
    # a settings file written before the data knobs were recorded: its problems are unknown, so it resumes
    stored = json.loads((run / "run_settings.json").read_text())
    (run / "run_settings.json").write_text(json.dumps({k: v for k, v in stored.items() if not k.startswith("data.")}))
    assert "resuming" in prepare_run_dir(run, 10, settings=wide)
    assert json.loads((run / "run_settings.json").read_text())["data.train_style"] == "wide"  # recorded from now on


def test_other_problems_with_the_same_knobs_start_a_new_run(tmp_path, train_rows):
    """The knobs cannot tell the published problems from the course's own (DATA_SOURCE) or a learner's own
    notebook-01 problems: the rows' digest can. A file without it (from before) resumes."""
    from utils.train import run_settings

    common = dict(model_key="smollm2-135m", base="b", backend="trl", reward_names=["format_reward"])
    run = tmp_path / "grpo"
    prepare_run_dir(run, 10, settings=run_settings(get_profile("smoke"), problems=train_rows[:4], **common))
    _fake_checkpoint(run, 4)
    same = run_settings(get_profile("smoke"), problems=[dict(r) for r in train_rows[:4]], **common)
    assert "resuming" in prepare_run_dir(run, 10, settings=same)
    other = run_settings(get_profile("smoke"), problems=train_rows[4:8], **common)
    with pytest.raises(ValueError, match=r"problems '4 problems, sha1 \w{12}' -> '4 problems, sha1 \w{12}'"):
        prepare_run_dir(run, 10, fresh=False, settings=other)
    stored = json.loads((run / "run_settings.json").read_text())
    (run / "run_settings.json").write_text(json.dumps({k: v for k, v in stored.items() if k != "problems"}))
    assert "resuming" in prepare_run_dir(run, 10, settings=other)


def test_training_script_one_process(tiny_model_dir, tmp_path):
    """scripts/train_grpo.py (what `accelerate launch` runs on several GPUs), as one CPU process."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "scripts/train_grpo.py",
        "--profile",
        "smoke",
        "--base",
        tiny_model_dir,
        "--steps",
        "1",
        "--backend",
        "trl",
        "--skip-eval",
        "base",
        "--skip-eval",
        "sft",
        "--skip-eval",
        "grpo",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["processes"] == 1 and results["grpo"]["steps"] == 1 and results["grpo"]["backend"] == "trl"
    assert any("reward" in h for h in results["log_history"])
    assert (out / "grpo" / "adapter" / "adapter_model.safetensors").exists()


def _script(*args, env=None, timeout=600):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "scripts/train_grpo.py", *args]
    return subprocess.run(
        cmd, cwd=root, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


PICKY = """
def picky_reward(completions, **kwargs):
    return [float(len(c[0]["content"].split("<event>")[3])) for c in completions]
"""


def _save_picky_set():
    from utils.rewards import my_rewards_path

    my_rewards_path().write_text(
        f"from utils.rewards import format_reward\n{PICKY}\nREWARDS = [format_reward, picky_reward]\n"
    )


def test_train_grpo_checks_the_rewards_before_anything_else(train_rows, tmp_path):
    """Issue 18.5: a reward that raises is refused before a model is even loaded."""
    import runpy

    from utils.rewards import format_reward
    from utils.train import train_grpo

    path = tmp_path / "my_rewards.py"
    path.write_text(PICKY)
    picky = runpy.run_path(str(path))["picky_reward"]
    with pytest.raises(ValueError, match=r"(?s)not training.*picky_reward: \[plain\] raised"):
        train_grpo(train_rows[:2], [format_reward, picky], get_profile("smoke"), base=str(tmp_path / "no-model"))
    assert not (tmp_path / "no-model").exists()


def test_training_script_checks_the_saved_rewards_first(tiny_model_dir, tmp_path):
    """Issue 18.5: the script loaded a saved reward that raises and died in training with a bare
    IndexError; now it stops before anything is created, with the reward's name and error."""
    _save_picky_set()
    out = tmp_path / "run"
    proc = _script("--profile", "smoke", "--base", tiny_model_dir, "--steps", "1", "--backend", "trl",
                   "--skip-eval", "base", "--skip-eval", "grpo", "--out", str(out))  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "picky_reward: [plain] raised" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "top, message",
    [
        ("import sys\nsys.exit(0)", "calls sys.exit()"),
        ("import os\nos._exit(0)", "ended the process while it was imported"),
        ("raise KeyboardInterrupt", "cannot be imported: KeyboardInterrupt"),
    ],
)
def test_training_script_refuses_a_rewards_file_that_ends_the_program(top, message, tmp_path):
    """Issue 23.18: sys.exit(0) / os._exit(0) at the top of my_rewards.py ended the script with exit
    code 0, having done nothing; KeyboardInterrupt there gave a traceback. Now: one line, exit code 2."""
    from utils.rewards import my_rewards_path

    my_rewards_path().write_text(f"{top}\nfrom utils.rewards import format_reward\nREWARDS = [format_reward]\n")
    out = tmp_path / "run"
    proc = _script("--profile", "smoke", "--skip-eval", "base", "--out", str(out), timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
    assert lines[0].startswith("train_grpo.py: error: ") and message in lines[0] and "my_rewards.py" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--profile", "bogus"], {}, "unknown profile 'bogus'"),
        (["--backend", "bogus"], {}, "backend must be auto, unsloth or trl"),
        (["--model", "bogus"], {}, "unknown model 'bogus'"),
        (["--backend", "unsloth"], {}, "needs a CUDA GPU"),
        ([], {"COURSE_OVERRIDES": "grpo.steps=many"}, "grpo.steps: 'many'"),
        ([], {"COURSE_OVERRIDES": "steps=3"}, "bad $COURSE_OVERRIDES item"),
        (["--base", "./no-such-folder"], {}, "--base: the local model folder './no-such-folder' does not exist"),
        (["--out", "FILE"], {}, "is a file, not a folder"),
        (["--out", "THEIRS"], {}, "holds files the course did not make (thesis.docx)"),
    ],
)
def test_training_script_says_what_is_wrong_in_one_line(args, env, message, tmp_path):
    """Issue 18.15: a mistake in what the user typed gives one line and exit code 2, and creates nothing."""
    from utils.profiles import has_cuda

    if "unsloth" in args and has_cuda():
        pytest.skip("a CUDA GPU is visible")
    (tmp_path / "FILE").write_text("not a folder")
    (tmp_path / "THEIRS").mkdir()
    (tmp_path / "THEIRS" / "thesis.docx").write_text("mine")
    args = [str(tmp_path / a) if a in ("FILE", "THEIRS") else a for a in args]
    out = tmp_path / "out"
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    proc = _script("--profile", "smoke", "--skip-eval", "base", *args, env=env, timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
    assert lines[0].startswith("train_grpo.py: error: ") and message in lines[0]
    assert not out.exists() and (tmp_path / "FILE").read_text() == "not a folder"
    assert sorted(p.name for p in (tmp_path / "THEIRS").iterdir()) == ["thesis.docx"]


def test_model_completions_falls_back_when_vllm_fails(tiny_model_dir, train_rows, capsys):
    """Asked for vLLM where it cannot run (not installed here), evaluation still gets its answers."""
    from utils.llm import model_completions

    texts, seconds, path = model_completions(tiny_model_dir, train_rows[:2], max_new_tokens=4, path="vllm")
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts) and seconds > 0
    assert path == "plain" and "vLLM generation failed" in capsys.readouterr().out


def test_sample_table_total_uses_the_reward_weights(tmp_path, test_rows):
    from utils.evaluate import baseline_completions
    from utils.rewards import STRICT_ORDER_REWARDS, default_reward_funcs
    from utils.train.callbacks import CompletionRecorder

    row = test_rows[0]
    recorder = CompletionRecorder(
        default_reward_funcs(STRICT_ORDER_REWARDS), tmp_path / "s.jsonl", weights=[1.0, 2.0, 0.5]
    )
    texts = [baseline_completions("dp_optimal", [row])[0], "garbage"]
    columns = {k: [row[k]] * 2 for k in ("events", "priority_events", "optimal_score")}
    for fn in recorder.wrapped:
        fn(completions=texts, **columns)
    best, worst = recorder.rows()
    assert best["total"] == 10.0 + 2.0 * 20.0 + 0.5 * 70.0 and worst["total"] == 0.0


def test_samples_are_recorded_once_per_step(tmp_path, test_rows):
    """The Trainer calls on_log twice at the last step (the step's metrics, then the run summary): the
    answers of that step must be written and shown once, not twice."""
    from types import SimpleNamespace

    from utils.rewards import default_reward_funcs
    from utils.train.callbacks import CompletionRecorder

    row = test_rows[0]
    recorder = CompletionRecorder(default_reward_funcs(), tmp_path / "s.jsonl", every=2)
    callback = recorder.callback()
    texts = ["a", "b", "c"]
    columns = {k: [row[k]] * 3 for k in ("events", "priority_events", "optimal_score")}
    for fn in recorder.wrapped:
        fn(completions=texts, **columns)
    for step, logs in ((1, {"loss": 0.0}), (2, {"loss": 0.0}), (2, {"train_runtime": 1.0})):
        callback.on_log(None, SimpleNamespace(global_step=step), None, logs=logs)
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [s["step"] for s in lines] == [2, 2, 2] and [s["completion"] for s in lines] == texts
    # each answer keeps its problem, so the samples can be evaluated later (utils.evaluate.answers.sample_gaps)
    assert all(s["problem"] == {k: row[k] for k in ("events", "priority_events", "optimal_score")} for s in lines)


def test_sample_tables_show_whole_answers(capsys):
    from utils.display import samples_frame, show_samples

    answer = "<think>" + "x" * 400 + "</think>\n<schedule>...</schedule>"
    frame = samples_frame([{"total": 10.0, "completion": answer}])
    assert frame["completion"][0] == answer and list(frame.columns) == ["total", "completion"]
    assert samples_frame([{"completion": answer}], width=20)["completion"][0] == answer[:19] + "…"
    show_samples([{"total": 10.0, "completion": answer}], title="step 1")
    assert answer in capsys.readouterr().out  # headless: the whole text, not a table cut at 50 characters


@pytest.mark.parametrize(
    "on_gpu, key, backend, expected",
    [
        (False, "smollm2-135m", "trl", True),
        (True, "smollm2-135m", "trl", False),
        (True, "qwen2.5-0.5b", "trl", True),
        (True, "qwen2.5-coder-7b", "trl", True),
        (True, "qwen2.5-0.5b", "unsloth", False),
    ],
)
def test_gradient_checkpointing_where_memory_is_the_limit(on_gpu, key, backend, expected, monkeypatch, tmp_path):
    """Measured in notebook 05's cpu settings: the kernel peaked at 11.5 GiB without gradient checkpointing
    and 5.3 GiB with it (+7% time), too much for an 8 GB laptop; on a GPU the 135M model keeps it off for speed,
    the Qwen models turn it on (memory is their limit), and Unsloth applies its own."""
    from utils.llm import MODELS
    from utils.train import config

    monkeypatch.setattr(config, "bf16_supported", lambda: on_gpu)
    knobs = {k.name: k.value for k in config.grpo_knobs(get_profile("cpu"), backend, 400, "plain", on_gpu, MODELS[key])}
    assert knobs["gradient_checkpointing"] is expected
    if not on_gpu:  # and it reaches TRL's config
        built = config.build_grpo_config(config.grpo_knobs(get_profile("cpu"), "trl", 400, "plain", False), tmp_path)
        assert built.gradient_checkpointing is True


@pytest.mark.parametrize(
    "key, overrides, micro",
    [
        ("smollm2-135m", {}, 64),
        ("qwen2.5-0.5b", {}, 8),
        ("qwen2.5-coder-7b", {}, 8),
        ("qwen2.5-3b", {"grpo.micro_batch": 16}, 16),
    ],
)
def test_a_step_is_generated_whole_and_sent_through_the_loss_in_passes(key, overrides, micro, tmp_path):
    """The gpu profile's 64 answers a step: one generation of all 64 (8 prompts x 8), then the loss in passes of
    ``micro`` answers (the Qwen models' logits over 151,936 tokens did not fit 64 at once on an 80 GB H100)."""
    from utils.llm import MODELS
    from utils.train import config

    profile = get_profile("gpu", overrides)
    built = config.build_grpo_config(config.grpo_knobs(profile, "trl", 400, "plain", False, MODELS[key]), tmp_path)
    assert built.per_device_train_batch_size == micro
    assert built.gradient_accumulation_steps == built.steps_per_generation == 64 // micro
    assert built.generation_batch_size == 64 and built.num_generations == 8


@pytest.mark.parametrize(
    "key, overrides, gpu_gib, micro",
    [
        (
            "smollm2-135m",
            {"grpo.max_completion_length": 512},
            79.2,
            64,
        ),  # 80 GB, 512 tokens: as the full-trace rows ran
        ("smollm2-135m", {"grpo.max_completion_length": 512}, 39.4, 32),  # an A100 40 GB
        ("smollm2-135m", {}, 79.2, 32),  # the gpu profile's 768 tokens (the wide recipe's answers): more memory each
        ("smollm2-135m", {}, 22.0, 8),  # an L4: 16 at 640 tokens, 8 at 768
        ("smollm2-135m", {}, 14.6, 8),  # a T4: 64 at once needed 64.6 GiB (H200, 2026-12-07)
        ("smollm2-135m", {"grpo.max_completion_length": 1536}, 79.2, 32),  # longer answers, more memory each
        ("smollm2-135m", {"grpo.micro_batch": 32}, 14.6, 32),  # the learner's own choice wins
        ("qwen2.5-0.5b", {}, 14.6, 8),  # the Qwen models keep their measured 8
    ],
)
def test_the_loss_passes_shrink_to_the_gpus_memory(key, overrides, gpu_gib, micro):
    """On a GPU the embedded model sends as many answers through the loss at once as the card holds (its
    measured GiB per answer), the same update in fewer or more passes; the knob says why."""
    from utils.llm import MODELS
    from utils.train import config

    profile = get_profile("gpu", overrides)
    knobs = {k.name: k for k in config.grpo_knobs(profile, "trl", 400, "plain", True, MODELS[key], gpu_gib)}
    assert knobs["per_device_train_batch_size"].value == micro
    assert knobs["gradient_accumulation_steps"].value == 64 // micro
    if micro < 64 and key == "smollm2-135m" and not overrides.get("grpo.micro_batch"):
        assert f"training may use {gpu_gib:.1f} GiB of this GPU" in knobs["per_device_train_batch_size"].why
    on_cpu = {k.name: k.value for k in config.grpo_knobs(profile, "trl", 400, "plain", False, MODELS[key], gpu_gib)}
    assert on_cpu["per_device_train_batch_size"] == (
        8 if key != "smollm2-135m" else overrides.get("grpo.micro_batch", 64)
    )


def test_gpu_memory_is_the_cards_times_the_processs_cap(monkeypatch):
    """A run capped to a smaller card (measure_memory --card, ablation --memory-fraction) plans for the cap."""
    import types

    import torch

    from utils import profiles

    monkeypatch.setattr(profiles, "has_cuda", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: types.SimpleNamespace(total_memory=80 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda d: 0.25)
    assert profiles.gpu_memory_gib() == 20.0
    monkeypatch.setattr(profiles, "has_cuda", lambda: False)
    assert profiles.gpu_memory_gib() is None


def test_vllm_on_the_same_gpu_leaves_the_loss_less():
    """Colocated vLLM keeps its share of the GPU (GRPOConfig's vllm_gpu_memory_utilization), so the loss plans for
    the rest: on an A100 40 GB the embedded model's passes go from 32 answers to 16. Unsloth's loss is its own
    (chunked): the TRL figure does not apply there, and nothing changes."""
    from utils.llm import MODELS
    from utils.train import config

    profile, spec = get_profile("gpu", {"grpo.max_completion_length": 512}), MODELS["smollm2-135m"]
    knobs = {k.name: k.value for k in config.grpo_knobs(profile, "trl", 400, "vllm", True, spec, 39.4)}
    assert knobs["vllm_gpu_memory_utilization"] == config.VLLM_GPU_MEMORY_UTILIZATION
    assert knobs["per_device_train_batch_size"] == 16
    knobs = {k.name: k.value for k in config.grpo_knobs(profile, "trl", 400, "static-cache", True, spec, 39.4)}
    assert knobs["per_device_train_batch_size"] == 32
    knobs = {k.name: k.value for k in config.grpo_knobs(profile, "unsloth", 400, "vllm", True, spec, 39.4)}
    assert knobs["per_device_train_batch_size"] == 64


def test_a_value_edited_in_the_grpo_config_or_lora_config_starts_a_new_run(tmp_path):
    """Notebook 05 writes ``GRPOConfig`` and ``LoraConfig`` out: a learning rate or a LoRA alpha typed there is not a
    profile knob, and resuming under it mixed two runs in one adapter (the first steps at one rate, the rest at
    another). Their values are settings now; what may differ on a resume (steps, saving, the machine) is not."""
    from peft import LoraConfig
    from trl import GRPOConfig

    from utils.train import run_settings
    from utils.train.runs import config_settings

    common = dict(model_key="smollm2-135m", base="b", backend="trl", reward_names=["format_reward"])
    smoke = get_profile("smoke")

    def configs(*, lr=1e-5, alpha=8, **other):
        args = dict(output_dir=str(tmp_path / "ck"), use_cpu=True, learning_rate=lr, max_steps=10, save_steps=1)
        lora = LoraConfig(r=8, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        return dict(config=GRPOConfig(**{**args, **other}), lora=lora)

    run = tmp_path / "grpo"
    prepare_run_dir(run, 10, settings=run_settings(smoke, **common, **configs()))
    _fake_checkpoint(run, 4)
    # a resume after a disconnect: the same cells again, on a machine that splits the step into other passes,
    # with more steps and another save interval
    again = configs(per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=20, save_steps=5)
    assert "resuming" in prepare_run_dir(run, 20, settings=run_settings(smoke, **common, **again))
    with pytest.raises(ValueError, match=r"config\.learning_rate 1e-05 -> 5e-06"):
        prepare_run_dir(run, 10, fresh=False, settings=run_settings(smoke, **common, **configs(lr=5e-6)))
    with pytest.raises(ValueError, match=r"lora\.lora_alpha 8 -> 32"):
        prepare_run_dir(run, 10, fresh=False, settings=run_settings(smoke, **common, **configs(alpha=32)))
    # settings recorded before the configs were (or by a caller that passes none): not a change
    assert "resuming" in prepare_run_dir(run, 10, settings=run_settings(smoke, **common))
    assert "resuming" in prepare_run_dir(run, 10, settings=run_settings(smoke, **common, **configs()))
    decision = prepare_run_dir(run, 10, settings=run_settings(smoke, **common, **configs(beta=0.04)))
    assert "config.beta 0.0 -> 0.04" in decision and "starting a new run" in decision
    # nothing of the machine, the run's length or its logging is recorded, and never a token
    recorded = config_settings(**configs(hub_token="secret", bf16=False, logging_steps=3))
    assert not any(k.split(".", 1)[1].startswith(("hub_", "output_dir", "max_steps", "use_cpu")) for k in recorded)
    assert "secret" not in json.dumps(recorded) and recorded["config.learning_rate"] == 1e-5
