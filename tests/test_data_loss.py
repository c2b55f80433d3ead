"""Issue 23, data loss and resume: the course deletes, renames or overwrites only in folders it marked
as its own, never through a symbolic link, and a checkpoint that contradicts itself, lacks its
optimizer or holds a pickle the safe loader refuses is set aside, never resumed and never a reason to
delete the good ones. No model is loaded: runs are faked as the trainer writes them."""

import json

import pytest

from utils.paths import MARKER, FolderNotOurs
from utils.train import prepare_run_dir


def _checkpoint(run, step, max_steps=10):
    """A whole checkpoint as the trainer writes it (state, adapter, optimizer, scheduler), in a marked run folder."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    run.mkdir(parents=True, exist_ok=True)
    (run / MARKER).touch()
    ckpt = run / "checkpoints" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps}))
    save_file({"lora_A": torch.zeros(2, 2)}, str(ckpt / "adapter_model.safetensors"))
    torch.save({"state": {}, "param_groups": []}, ckpt / "optimizer.pt")
    torch.save({"last_epoch": step}, ckpt / "scheduler.pt")
    return ckpt


def _users_folder(path):
    """A folder of the user's own, with a checkpoint of theirs: what must survive untouched."""
    (path / "checkpoint-7").mkdir(parents=True)
    (path / "checkpoint-7" / "weights.bin").write_text("a week of training")
    (path / "notes.txt").write_text("mine")
    return path


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# --- 23.1 and 23.24: symbolic links inside a run folder are never followed -----------------------------


@pytest.mark.parametrize("link", ["checkpoints", "checkpoints/checkpoint-9", "adapter"])
def test_a_link_inside_a_run_folder_is_refused_and_its_target_kept(tmp_path, link):
    """A fresh start emptied the target of a linked checkpoints/ (a Drive folder, say) and renamed the
    user's checkpoint-7; a linked adapter/ gave "OSError: Cannot call rmtree on a symbolic link"."""
    run = tmp_path / "grpo"
    _checkpoint(run, 2)
    if link == "checkpoints":
        (run / "checkpoints").rename(run / "old-checkpoints")
    theirs = _users_folder(tmp_path / "drive")
    before = _tree(theirs)
    (run / link).symlink_to(theirs, target_is_directory=True)
    for fresh in (True, None):
        with pytest.raises(FolderNotOurs, match=rf"{link} is a symbolic link .*remove the link.*nothing was changed"):
            prepare_run_dir(run, 2, fresh=fresh)
    assert _tree(theirs) == before and (theirs / "checkpoint-7" / "weights.bin").read_text() == "a week of training"
    assert (run / link).is_symlink()


def test_a_linked_run_folder_itself_is_the_users_choice(tmp_path):
    """The folder the user names may be a link (a run folder on Drive): its marker decides, as anywhere."""
    real = tmp_path / "drive" / "run"
    _checkpoint(real, 4)
    (tmp_path / "grpo").symlink_to(real, target_is_directory=True)
    assert prepare_run_dir(tmp_path / "grpo", 10).endswith(
        "resuming from " + str(tmp_path / "grpo/checkpoints/checkpoint-4")
    )
    (tmp_path / "gone").symlink_to(tmp_path / "unmounted-drive", target_is_directory=True)
    with pytest.raises(FolderNotOurs, match="unmounted-drive, which does not exist"):
        prepare_run_dir(tmp_path / "gone", 10)


# --- 23.2: only the marker makes a folder the course's ----------------------------------------------------


def test_a_users_folder_holding_only_run_names_is_not_emptied(tmp_path):
    theirs = tmp_path / "my-experiment"
    (theirs / "adapter").mkdir(parents=True)
    (theirs / "adapter" / "adapter_model.safetensors").write_text("my own adapter")
    (theirs / "samples.jsonl").write_text('{"mine": 1}\n')
    before = _tree(theirs)
    with pytest.raises(FolderNotOurs, match=r"did not make \(adapter, samples\.jsonl\).*nothing was changed"):
        prepare_run_dir(theirs, 2, fresh=True)
    assert _tree(theirs) == before and (theirs / "samples.jsonl").read_text() == '{"mine": 1}\n'


def test_the_model_cache_never_replaces_files_it_did_not_write(tmp_path, monkeypatch):
    """$COURSE_CACHE_DIR/smollm2-135m-instruct holding the user's files (names the conversion also writes,
    or a marked folder with one of theirs added) is refused before converting, never replaced."""
    from utils.llm import embedded_checkpoint

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text('{"my": "config"}')
    (target / "tokenizer.json").write_text("my tokenizer")
    with pytest.raises(FolderNotOurs, match="did not make"):
        embedded_checkpoint(verbose=False)
    assert (target / "config.json").read_text() == '{"my": "config"}' and not (target / MARKER).exists()

    (target / MARKER).touch()  # the course's (an interrupted conversion, say), with a file of the user's added
    (target / "my-lora.safetensors.txt").write_text("mine")
    with pytest.raises(FolderNotOurs, match=r"also holds files the course did not write \(my-lora"):
        embedded_checkpoint(verbose=False)
    assert (target / "my-lora.safetensors.txt").read_text() == "mine"


def test_training_script_does_not_overwrite_a_users_results(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    theirs = tmp_path / "my-results"
    theirs.mkdir()
    (theirs / "results.json").write_text('{"my": "figures"}')
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "scripts/train_grpo.py", "--profile", "smoke", "--no-sft", "--skip-eval", "base",
           "--out", str(theirs)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
    assert "holds files the course did not make (results.json)" in lines[0]
    assert _tree(theirs) == ["results.json"] and (theirs / "results.json").read_text() == '{"my": "figures"}'


# --- 23.3, 23.9, 23.17: damaged checkpoints are set aside, the good ones kept and resumed ----------------


def test_a_tampered_state_is_damaged_not_a_finished_run(tmp_path):
    """global_step 10^9 in checkpoint-6 made the run count as finished, and every checkpoint was deleted."""
    run = tmp_path / "grpo"
    _checkpoint(run, 2)
    good = _checkpoint(run, 4)
    tampered = _checkpoint(run, 6)
    (tampered / "trainer_state.json").write_text(json.dumps({"global_step": 10**9, "max_steps": 10}))
    beyond = _checkpoint(run, 12, max_steps=10)  # a step past its own run's end: no trainer writes that
    decision = prepare_run_dir(run, 10)
    assert "checkpoint-6 is damaged (trainer_state.json says step 1000000000, its folder name says 6)" in decision
    assert "checkpoint-12 is damaged (trainer_state.json says step 12, beyond the run's max_steps 10)" in decision
    assert decision.endswith(f"unfinished run found at step 4/10: resuming from {good}")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["checkpoint-2", "checkpoint-4", "damaged-checkpoint-12", "damaged-checkpoint-6"]
    assert not beyond.exists()


def test_a_checkpoint_without_its_optimizer_is_not_resumed(tmp_path):
    """The trainer resumed from it with a fresh optimizer and its schedule back at warm-up, without a word."""
    run = tmp_path / "grpo"
    good = _checkpoint(run, 2)
    (_checkpoint(run, 4) / "optimizer.pt").unlink()
    decision = prepare_run_dir(run, 10)
    assert "checkpoint-4 is damaged (no optimizer.pt: a resume would restart the optimizer" in decision
    assert decision.endswith(f"resuming from {good}") and (run / "checkpoints" / "damaged-checkpoint-4").is_dir()


class _Payload:
    def __reduce__(self):  # what a malicious pickle does on load; harmless here, and never reached
        return (print, ("the payload ran",))


def test_an_optimizer_the_safe_loader_refuses_is_set_aside(tmp_path, capsys):
    """Resume died with UnpicklingError; now the checkpoint is damaged, and nothing in it ran."""
    torch = pytest.importorskip("torch")

    run = tmp_path / "grpo"
    good = _checkpoint(run, 2)
    torch.save({"state": {}, "payload": _Payload()}, _checkpoint(run, 4) / "optimizer.pt")
    capsys.readouterr()
    decision = prepare_run_dir(run, 10)
    assert "checkpoint-4 is damaged (optimizer.pt is refused by the safe loader (it would import print))" in decision
    assert decision.endswith(f"resuming from {good}") and "the payload ran" not in capsys.readouterr().out


def test_a_real_trainer_checkpoints_extra_files_are_accepted(tmp_path):
    """training_args.bin (a pickled config the trainer never reads back) and rng_state.pth (numpy arrays,
    which the trainer's loader allows) do not make a checkpoint damaged."""
    import numpy as np
    import torch
    from transformers import TrainingArguments

    ckpt = _checkpoint(tmp_path / "grpo", 4)
    torch.save(TrainingArguments(output_dir=str(tmp_path / "x"), report_to="none"), ckpt / "training_args.bin")
    torch.save({"python": None, "numpy": np.random.get_state(), "cpu": torch.get_rng_state()}, ckpt / "rng_state.pth")
    assert prepare_run_dir(tmp_path / "grpo", 10).endswith(f"resuming from {ckpt}")


# --- 23.23: a run_settings.json that holds no settings -----------------------------------------------------


@pytest.mark.parametrize("text", ['[{"grpo.lora_r": 8}]', "[1, 2]", '"smoke"', "{not json"])
def test_damaged_run_settings_are_unknown_settings_said_in_one_line(tmp_path, text):
    from utils.profiles import get_profile
    from utils.train import run_settings

    run = tmp_path / "grpo"
    ckpt = _checkpoint(run, 4)
    (run / "run_settings.json").write_text(text)
    settings = run_settings(get_profile("smoke"), model_key="m", base="b", backend="trl", reward_names=["r"])
    decision = prepare_run_dir(run, 10, settings=settings)
    assert (
        "run_settings.json is damaged (not a JSON object of settings): the checkpoints' settings are unknown"
        in decision
    )
    assert decision.endswith(f"resuming from {ckpt}") and "\n" not in decision
    assert json.loads((run / "run_settings.json").read_text()) == settings  # rewritten for the next decision
