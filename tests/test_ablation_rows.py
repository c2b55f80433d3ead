"""scripts/ablation.py: every committed row would run, and a row that would not is refused before anything loads."""

from __future__ import annotations

import json

import pytest
from helpers import script_module

from utils.task import training_problems
from utils.task.datagen import GeneratorConfig

ablation = script_module("ablation")


def test_the_gpu_profile_is_its_recipe_row():
    """Issue 21.5: the gpu profile's defaults are the recipe row's settings and reward set, so a learner's GPU run
    (notebook 05, scripts/train_grpo.py) trains what the committed row measured; a change to either fails here."""
    from utils.profiles import GPU_RECIPE_ROW, get_profile
    from utils.rewards import DEFAULT_REWARDS

    row = ablation.load_rows()[GPU_RECIPE_ROW]
    assert get_profile("gpu", row["overrides"]) == get_profile("gpu")
    assert tuple(row["rewards"]) == DEFAULT_REWARDS and row["weights"] == [1] * len(DEFAULT_REWARDS)
    assert not {"grpo_config", "no_sft"} & set(row) and row.get("grpo", True)
    committed = json.loads((ablation.ROOT / "results" / "ablation" / f"{GPU_RECIPE_ROW}.json").read_text())
    assert committed["row"]["overrides"] == row["overrides"] and committed["row"]["rewards"] == row["rewards"]


def test_every_committed_row_would_run_again_as_it_ran():
    """A change of the gpu profile's defaults (its recipe row changed on 2026-12-07) must not change what a committed
    row means: rerunning it (a new seed, a check) trains what its results file ran. Rows pin the knobs they ran with.
    Only what a row used counts: no warm-start knobs without a warm start, no GRPO knobs without GRPO."""
    import dataclasses

    from utils.evaluate.report import ran_with
    from utils.profiles import get_profile

    rows = ablation.load_rows()
    checked, drifted = 0, []
    for path in sorted((ablation.ROOT / "results" / "ablation").glob("*.json")):
        result = json.loads(path.read_text())
        name = (result.get("row") or {}).get("name")
        if name not in rows or not result.get("profile") or result.get("error"):
            continue  # a row that failed (strong_grpo_g16: out of memory) was changed to run: nothing to keep
        row, now = rows[name], dataclasses.asdict(get_profile("gpu", rows[name].get("overrides", {})))
        groups = [g for g, used in (("warm_start", not row.get("no_sft")), ("grpo", row.get("grpo", True))) if used]
        knobs = [f"{g}.{k}" for g in groups for k in now[g]]
        knobs += ["data.n_train", "data.train_style"] if row.get("grpo", True) else []
        for knob in knobs:
            group, key = knob.split(".")
            if ran_with(result, knob) != now[group][key]:
                drifted.append(f"{name}: {knob} ran {ran_with(result, knob)!r}, now {now[group][key]!r}")
        checked += 1
    assert checked >= 20 and not drifted, drifted  # 24 on 2026-12-07


def test_every_committed_row_loads():
    rows = ablation.load_rows()
    assert {"weak_grpo_strict", "strong_grpo_optimal", "big_grpo", "mixed_grpo_mixed"} <= set(rows)


def write(tmp_path, *rows):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"about": "test", "rows": list(rows)}))
    return path


GOOD = {"name": "r", "overrides": {"grpo.steps": 3}, "rewards": ["format_reward"], "weights": [1]}


@pytest.mark.parametrize(
    "row, message",
    [
        ({**GOOD, "reward": ["format_reward"]}, "unknown keys \\['reward'\\]"),  # a typo would run the seed's set
        ({**GOOD, "overrides": {"grpo.stepz": 3}}, "row 'r'"),
        ({**GOOD, "overrides": {"grpo.steps": -1}}, "row 'r'"),
        ({**GOOD, "rewards": ["no_such_reward"]}, "unknown reward"),
        ({**GOOD, "weights": [1, 1]}, "2 weights for 1 rewards"),
        ({**GOOD, "overrides": {"data.train_style": "fancy"}}, "data.train_style='fancy' is out of range"),
        ({**GOOD, "overrides": {"data.n_train": 0}}, "data.n_train=0 is out of range"),
        ({**GOOD, "grpo_problems": {"n": 2400}}, "unknown keys \\['grpo_problems'\\]"),  # knobs now: data.n_train
    ],
)
def test_a_row_that_would_not_run_is_refused(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        ablation.load_rows(write(tmp_path, row))


def test_duplicate_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="name of its own"):
        ablation.load_rows(write(tmp_path, GOOD, GOOD))


def test_the_command_line_says_one_line(tmp_path, capsys):
    path = write(tmp_path, {**GOOD, "wieghts": [1]})
    assert ablation.main(["--rows", "r", "--rows-file", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "wieghts" in err and "\n" not in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_mixed_grpo_problems_are_part_made_up_style():
    """Row mixed_grpo_mixed's GRPO problems: the 500 committed ones, then every other one in the made-up style."""
    from utils.profiles import get_profile

    data = get_profile("gpu", ablation.load_rows()["mixed_grpo_mixed"]["overrides"]).data
    rows = training_problems(data.n_train, data.train_style)
    default_names = {name for names in GeneratorConfig().catalogue().values() for name in names}
    made_up = [r for r in rows if any(event[0] not in default_names for event in r["events"])]
    assert len(rows) == 2400 and len(made_up) == 950
    assert all(r not in made_up for r in rows[:500])  # the committed problems come first, unchanged


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.2"])
def test_a_memory_fraction_outside_0_1_is_refused_before_anything_runs(tmp_path, capsys, fraction):
    path = write(tmp_path, GOOD)
    argv = ["--rows", "r", "--rows-file", str(path), "--out", str(tmp_path / "out"), "--memory-fraction", fraction]
    assert ablation.main(argv) == 2
    assert "--memory-fraction" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_each_seed_gets_its_own_warm_start():
    """The seed knob is part of the warm start's cache key: seeds are compared each from its own warm start."""
    from utils.profiles import get_profile

    key = ablation.warm_start_key
    assert key("m", get_profile("gpu"))[1] == key("m", get_profile("gpu"))[1]
    assert key("m", get_profile("gpu"))[1] != key("m", get_profile("gpu", {"seed": 1}))[1]
    assert key("m", get_profile("gpu"))[1] != key("m", get_profile("gpu", {"warm_start.trace": "short"}))[1]


def test_gpu_peak_memory_is_empty_without_cuda():
    from utils.env import gpu_peak_memory

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine")
    assert gpu_peak_memory() == {}


def test_gradient_checkpointing_is_a_run_setting_added_to_the_rows_own():
    assert ablation.grpo_extra({"name": "r"}, False) is None
    assert ablation.grpo_extra({"name": "r", "grpo_config": {"seed": 2}}, True) == {
        "seed": 2,
        "gradient_checkpointing": True,
    }


def test_a_warm_start_only_row_stops_after_its_evaluation(tmp_path, monkeypatch):
    """``"grpo": false``: the warm start and its evaluation, no GRPO; the results file ends as commit_rows expects."""
    import utils.train

    evals = {"evaluations": {"test": {"valid": 44, "mean_score": 38.5}}, "settings": {}, "checkpoint": "ckpt"}
    monkeypatch.setattr(ablation, "warm_start", lambda row, profile, cache, out, sets, evaluate=True: ("ckpt", evals))
    monkeypatch.setattr(utils.train, "train_grpo", lambda *a, **k: pytest.fail("GRPO ran in a warm-start-only row"))
    row = ablation.load_rows()["warm_scan"]
    result = ablation.run_row(row, tmp_path, tmp_path / "cache", ["test"])
    assert "grpo" not in result and "evaluations" not in result and result["warm_start"] == evals
    saved = json.loads((tmp_path / "warm_scan.json").read_text())
    assert script_module("commit_rows")._warm_start_only(saved) and saved["profile"]["warm_start"]["trace"] == "scan"


def test_warm_start_rows_share_their_warm_start_with_the_grpo_rows_they_feed():
    from utils.profiles import get_profile

    rows = ablation.load_rows()

    def key(name: str) -> str:
        return ablation.warm_start_key("m", get_profile("gpu", rows[name].get("overrides", {})))[1]

    pairs = [("warm_timeline", "strong_grpo_maximal_timeline"), ("warm_scan", "strong_grpo_maximal_scan")]
    assert all(key(a) == key(b) for a, b in [*pairs, ("warm_big", "big_grpo_maximal")])
    assert key("warm_scan") != key("warm_timeline") != key("strong_grpo_maximal")


def test_a_results_file_records_the_resource_flags_its_row_ran_under(tmp_path, monkeypatch):
    """Rows run side by side under a memory cap: the recorded command and fields say so, so a rerun can match."""
    evals = {"evaluations": {"test": {"valid": 44, "mean_score": 38.5}}, "settings": {}, "checkpoint": "ckpt"}
    monkeypatch.setattr(ablation, "warm_start", lambda row, profile, cache, out, sets, evaluate=True: ("ckpt", evals))
    row = ablation.load_rows()["warm_scan"]
    ablation.run_row(row, tmp_path, tmp_path / "cache", ["test"], checkpointing=True, memory_fraction=0.48)
    saved = json.loads((tmp_path / "warm_scan.json").read_text())
    assert saved["memory_fraction"] == 0.48 and saved["gradient_checkpointing"] is True
    assert saved["command"].endswith(
        "--rows warm_scan --out " + str(tmp_path) + " --memory-fraction 0.48 --gradient-checkpointing"
    )
    ablation.run_row(row, tmp_path, tmp_path / "cache", ["test"])
    saved = json.loads((tmp_path / "warm_scan.json").read_text())
    assert (
        saved["memory_fraction"] is None
        and saved["command"] == f"python scripts/ablation.py --rows warm_scan --out {tmp_path}"
    )


@pytest.mark.parametrize("text", ["[]", '{"rows": 5}', '{"rows": [5]}', "{}", "", '{"rows": [{"name": ["a"]}]}'])
def test_a_rows_file_of_the_wrong_shape_says_one_line_naming_it(tmp_path, capsys, text):
    path = tmp_path / "rows.json"
    path.write_text(text)
    assert ablation.main(["--rows", "r", "--rows-file", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}") and "\n" not in err and not (tmp_path / "out").exists()


def test_an_out_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path, capsys):
    """--out results/ablation (committed files) or a folder of one's own: refused before anything runs."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "r.json").write_text("my notes")
    argv = ["--rows", "r", "--rows-file", str(write(tmp_path, GOOD)), "--out", str(out)]
    assert ablation.main(argv) == 2
    assert "--out" in capsys.readouterr().err and [p.name for p in out.iterdir()] == ["r.json"]
    assert (out / "r.json").read_text() == "my notes"


def _fake_warm_start_steps(monkeypatch, calls: list) -> None:
    """run_sft trains once (a folder and its record, as the real one leaves them); evaluate_model writes n answers."""
    import utils.task
    import utils.train
    from utils.evaluate import save_completions
    from utils.train.warmstart import SFT_SETTINGS

    def run_sft(base, rows, profile, out_dir):
        done = out_dir / "final"
        if not done.exists():
            calls.append("train")
            done.mkdir(parents=True)
            (out_dir / SFT_SETTINGS).write_text("{}")
        return done

    def evaluate_model(source, adapter, sets, profile, out, label):
        calls.append(f"eval {label} {','.join(sets)}")
        for name in sets:
            save_completions(out / f"completions_{label}_{name}.jsonl", ["no answer"] * 3)
        return {}

    monkeypatch.setattr(utils.task, "training_problems", lambda n, style: [])
    monkeypatch.setattr(utils.train, "run_sft", run_sft)
    monkeypatch.setattr(ablation, "evaluate_model", evaluate_model)


def test_a_warm_start_trained_without_its_evaluation_is_evaluated_once_later(tmp_path, monkeypatch):
    """``evaluate=False`` (GRPO starts while another process evaluates): the checkpoint only; the next call evaluates,
    the one after reuses both, and a reuse keeps the training's recorded time."""
    from utils.profiles import get_profile

    calls = []
    _fake_warm_start_steps(monkeypatch, calls)
    row, profile = ablation.load_rows()["warm_scan"], get_profile("gpu")
    out, cache = tmp_path / "out", tmp_path / "cache"
    out.mkdir()
    checkpoint, sft = ablation.warm_start(row, profile, cache, out, ["test"], evaluate=False)
    assert sft is None and calls == ["train"] and checkpoint.endswith("final")
    settings = next(cache.glob("sft-*/settings.json"))
    trained = json.loads(settings.read_text())["seconds"]
    _, sft = ablation.warm_start(row, profile, cache, out, ["test"])
    assert calls == ["train", "eval sft test"] and sft["evaluations"]["test"]["n"] == 3
    assert (out / "completions_sft_test.jsonl").exists()  # the row's own copy
    _, again = ablation.warm_start(row, profile, cache, out, ["test"])
    assert calls == ["train", "eval sft test"] and again["evaluations"] == sft["evaluations"]
    assert json.loads(settings.read_text())["seconds"] == trained


def test_a_grpo_row_evaluates_its_warm_start_beside_grpo_and_reports_it_as_before(tmp_path, monkeypatch):
    """``--warm-eval-beside``: the warm start trains, its evaluation starts in a second process, GRPO trains meanwhile;
    after GRPO's own evaluation the row waits for it and compares as a row without the flag does."""
    import types

    import utils.train

    calls = []
    evals = {"evaluations": {"test": {"valid": 44, "mean_score": 38.5}}, "settings": {}, "checkpoint": "ckpt"}

    def warm_start(row, profile, cache, out, sets, evaluate=True):
        calls.append(f"warm start evaluate={evaluate}")
        return "ckpt", evals if evaluate else None

    class Child:
        def wait(self):
            calls.append("wait")
            return 1  # failed: the row evaluates what is missing itself, through warm_start

    trained = types.SimpleNamespace(global_step=2, seconds=1.0, generation="g", log_history=[], adapter_dir="a")
    monkeypatch.setattr(ablation, "warm_start", warm_start)
    monkeypatch.setattr(ablation, "start_beside", lambda *a: calls.append(f"start {a[5][0]}") or Child())
    monkeypatch.setattr(utils.train, "train_grpo", lambda *a, **k: calls.append("grpo") or trained)
    monkeypatch.setattr(ablation, "evaluate_grpo_beside", lambda *a: calls.append("eval grpo") or {})
    monkeypatch.setattr(ablation, "comparisons", lambda *a: calls.append("compare") or {"test": {}})
    row = ablation.load_rows()["wide4000_grpo_maximal_scan_seed1"]
    result = ablation.run_row(row, tmp_path, tmp_path / "cache", ["test"], eval_beside=True)
    assert calls == [
        "warm start evaluate=False",
        "start --warm-start-eval",
        "grpo",
        "eval grpo",
        "wait",
        "warm start evaluate=True",
        "compare",
    ]
    saved = json.loads((tmp_path / f"{row['name']}.json").read_text())
    assert saved["warm_start"] == evals and saved["warm_eval_beside"] is True and result["compare_sft_grpo"]
    assert saved["command"].endswith("--warm-eval-beside")


def test_the_processes_beside_a_row_are_commands_this_script_runs(tmp_path, monkeypatch):
    """Both second processes' command lines parse, load the row from the file written for it, and do only their
    task: the warm start's evaluation (no results file), or the GRPO model's on the sets given (their summaries)."""
    from utils.paths import claim_folder

    started = []

    class Popen:
        def __init__(self, cmd, **kwargs):
            started.append(cmd)
            self.pid = 1

    row = ablation.load_rows()["wide4000_grpo_maximal_scan_seed1"]
    out = tmp_path / "out"
    claim_folder(out, "ablation results")  # as the row's own process did
    (out / row["name"]).mkdir()
    monkeypatch.setattr(ablation.subprocess, "Popen", Popen)
    monkeypatch.setattr(ablation, "limit_gpu_memory", lambda fraction: None)
    seen = []

    def warm_start(row, profile, cache, out, sets, evaluate=True):
        seen.append(("warm start", profile.seed, out.name, sets, evaluate))
        return "ckpt", {}

    def evaluate_model(source, adapter, sets, profile, out, label):
        seen.append(("evaluate", source, adapter, sets, out.name, label))
        return {name: {"valid": 1} for name in sets}

    monkeypatch.setattr(ablation, "warm_start", warm_start)
    monkeypatch.setattr(ablation, "evaluate_model", evaluate_model)
    ablation.start_beside(row, out, tmp_path / "cache", ["test"], 0.48, ["--warm-start-eval"], "w.log")
    ablation.start_beside(row, out, tmp_path / "cache", ["o"], None, ["--evaluate-grpo", "ck", "ad"], "g.log")
    warm, grpo = started
    assert warm[1] == ablation.__file__ and warm[warm.index("--memory-fraction") + 1] == "0.48"
    assert ablation.main(warm[2:]) == 0 and seen == [("warm start", 1, row["name"], ["test"], True)]
    assert not list(out.glob("*.json"))  # no results file
    assert ablation.main(grpo[2:]) == 0 and seen[1] == ("evaluate", "ck", "ad", ["o"], row["name"], "grpo")
    assert json.loads((out / row["name"] / ablation.BESIDE_EVALUATIONS).read_text()) == {"o": {"valid": 1}}


@pytest.mark.parametrize("child_ok", [True, False])
def test_grpo_evaluation_beside_returns_every_set_in_order_even_when_the_second_process_fails(
    tmp_path, monkeypatch, child_ok
):
    out = tmp_path / "row"
    out.mkdir()
    (out / ablation.BESIDE_EVALUATIONS).write_text('{"b": {"valid": 0, "stale": true}}')  # an older run's
    here = []

    class Child:
        def wait(self):
            if child_ok:
                (out / ablation.BESIDE_EVALUATIONS).write_text('{"b": {"valid": 2}}')
            return 0 if child_ok else 1

    def evaluate_model(source, adapter, sets, profile, out, label):
        here.append(sets)
        return {name: {"valid": 1} for name in sets}

    monkeypatch.setattr(ablation, "start_beside", lambda *a: Child())
    monkeypatch.setattr(ablation, "evaluate_model", evaluate_model)
    got = ablation.evaluate_grpo_beside("ck", "ad", ["a", "b"], None, out, {"name": "row"}, tmp_path, None)
    assert list(got) == ["a", "b"] and got["a"] == {"valid": 1}
    assert got["b"] == ({"valid": 2} if child_ok else {"valid": 1})
    assert here == ([["a"]] if child_ok else [["a"], ["b"]])


def test_a_row_that_fails_stops_the_process_evaluating_beside_it(tmp_path, monkeypatch):
    """GRPO fails: the warm start's evaluation beside it is ended, not left on the GPU under the lane's next row."""
    import utils.train

    class Child:
        ended = False

        def poll(self):
            return 0 if self.ended else None

        def terminate(self):
            self.ended = True

        def wait(self, timeout=None):
            return 0

    child = Child()
    monkeypatch.setattr(ablation, "warm_start", lambda *a, evaluate=True: ("ckpt", None))
    monkeypatch.setattr(ablation, "start_beside", lambda *a: child)

    def train_grpo(*a, **k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(utils.train, "train_grpo", train_grpo)
    row = ablation.load_rows()["wide4000_grpo_maximal_scan_seed1"]
    with pytest.raises(RuntimeError, match="out of memory"):
        ablation.run_row(row, tmp_path, tmp_path / "cache", ["test"], eval_beside=True)
    assert child.ended
