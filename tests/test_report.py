"""Notebook 06's comparisons and notebook 05's group-signal view, on hand-made answers."""

import matplotlib

matplotlib.use("Agg")

from utils.evaluate.baselines import baseline_completions  # noqa: E402
from utils.evaluate.evaluation import PUBLISHED_RESULTS, evaluate  # noqa: E402
from utils.evaluate.report import failure_gallery, pick_examples, plot_categories, plot_score_histograms, results_table  # noqa: E402
from utils.rewards import STRICT_ORDER_REWARDS, default_reward_funcs  # noqa: E402
from utils.train.group_probe import group_rewards, zero_variance_share  # noqa: E402


def _mixed(rows):
    """Optimal, greedy, all events (overlaps) and garbage, in turns."""
    kinds = ["dp_optimal", "greedy_earliest_end", "all_events", None]
    texts = []
    for i, row in enumerate(rows):
        kind = kinds[i % len(kinds)]
        texts.append("no schedule here" if kind is None else baseline_completions(kind, [row])[0])
    return texts


def test_results_table_and_examples(test_rows):
    rows = test_rows[:40]
    texts = _mixed(rows)
    mixed, dp = evaluate(rows, texts), evaluate(rows, baseline_completions("dp_optimal", rows))
    table = results_table({"mixed": mixed}, baselines={"dp": dp})
    assert table.loc["dp", "mean score"] == 100.0 and table.loc["mixed", "n"] == 40
    assert table.loc["mixed", "format_errors"] == 100.0 * mixed.counts["format_errors"] / 40
    assert all(p["model"] in table.index for p in PUBLISHED_RESULTS)

    picked = pick_examples(mixed, n=3)
    assert all(mixed.results[i].score >= 0.999 for i in picked["wins"])
    assert all(not mixed.results[i].valid and mixed.results[i].category != "overlap" for i in picked["failures"])
    assert picked["wins"] and picked["failures"]

    gallery = failure_gallery(mixed, texts, per_category=2)
    assert "format_error" in gallery and all(len(v) <= 2 for v in gallery.values())
    assert gallery["format_error"][0]["completion"] == "no schedule here"

    assert plot_categories({"mixed": mixed, "dp": dp}).get_xlim() == (0.0, 100.0)
    assert len(plot_score_histograms({"mixed": mixed, "dp": dp}).axes) == 2


def test_group_signal_table(test_rows):
    rows = test_rows[:2]
    same = ["nothing", "still nothing"]  # every reward 0: no signal
    varied = [baseline_completions("dp_optimal", [rows[1]])[0], "garbage"]
    frame = group_rewards(rows, [same, varied], default_reward_funcs(STRICT_ORDER_REWARDS))
    assert list(frame["problem"]) == [0, 0, 1, 1]
    assert frame.loc[frame.problem == 0, "advantage"].abs().max() == 0.0
    assert frame.loc[3, "total"] == 0.0 and frame.loc[2, "total"] == 100.0
    assert frame.loc[2, "advantage"] > 0 > frame.loc[3, "advantage"]
    assert zero_variance_share(frame) == 0.5


def test_reward_story_table_reads_rows_their_monitor_and_their_answers(tmp_path):
    import json

    from utils.evaluate.report import reward_story_table
    from utils.task.data import load_split
    from utils.train.warmstart import dp_answer

    rows = load_split("test", 4)
    logs = [{"step": s, "reward": 10.0 * s, "monitor/valid": 0.1 * s} for s in range(1, 5)]
    evals = {"test": {"valid": 1, "mean_score": 10.0}, "test_other_style": {"valid": 0, "mean_score": 0.0}}
    after = {"test": {"valid": 4, "mean_score": 100.0}, "test_other_style": {"valid": 2, "mean_score": 50.0}}
    result = {
        "grpo": {"rewards": ["format_reward", "strict_score_reward"], "log_history": logs},
        "warm_start": {"evaluations": evals},
        "evaluations": after,
    }
    (tmp_path / "weak_grpo_strict.json").write_text(json.dumps(result))
    (tmp_path / "weak_grpo_strict").mkdir()
    with open(tmp_path / "weak_grpo_strict" / "completions_grpo_test.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps({"completion": dp_answer(r)}) + "\n")
    with open(tmp_path / "weak_grpo_strict" / "completions_sft_test.jsonl", "w") as fh:  # 2 optimal, 2 unreadable
        for i, r in enumerate(rows):
            fh.write(json.dumps({"completion": dp_answer(r) if i < 2 else "no schedule"}) + "\n")
    table = reward_story_table(tmp_path)
    assert list(table.index) == ["weak_grpo_strict"]  # rows not committed are skipped
    rec = table.loc["weak_grpo_strict"]
    assert rec["valid test"] == "1 -> 4" and rec["valid other style"] == "0 -> 2"
    assert rec["training reward (first -> last 25 steps)"] == "25.0 -> 25.0"  # 4 steps: both windows hold all
    assert rec["sampled answers valid (monitor)"] == "25% -> 25%"
    assert rec["valid answers: share of the optimum (optimal)"] == "100% (2) -> 100% (4)"
    # the DP's traces name the real clashes only; the unreadable answers name none (rows 2-3 count as missed)
    assert rec["trace: real clashes named; named clashes that are false"].endswith("; 0% -> 0%")
    assert rec["trace: real clashes named; named clashes that are false"].split(" -> ")[1].startswith("100%")
    assert rec["contradicts own trace"] == "0%" and rec["events / answer (optimum)"].split()[0] == rec[
        "events / answer (optimum)"
    ].split()[1].strip("()")


def _row_file(folder, name, seed, valid_a, valid_b, score, p=0.001):
    import json

    result = {
        "profile": {"seed": seed},
        "evaluations": {"test": {"valid": valid_b, "mean_score": score}, "test_other_style": {"valid": 50}},
        "compare_sft_grpo": {"test": {"valid_a": valid_a, "valid_b": valid_b, "p_value": p}},
    }
    (folder / f"{name}.json").write_text(json.dumps(result))


def test_recipe_verdict_needs_both_figures_on_average_and_every_seeds_gain(tmp_path):
    from utils.evaluate.report import recipe_verdict

    for seed, (a, b, score) in zip((3407, 1, 2), [(50, 70, 60.0), (45, 66, 59.0), (48, 60, 57.0)]):
        _row_file(tmp_path, f"r{seed}", seed, a, b, score)
    table, verdict = recipe_verdict(tmp_path, ["r3407", "r1", "r2"])
    assert list(table["seed"]) == [3407, 1, 2] and table["gain ok"].all()
    assert "valid 65.3 (sd 5.0), mean score 58.67 (sd 1.53)" in verdict and "Beats it on both" in verdict
    assert "Not decided" not in verdict and "Other-style set: 50.0 valid on average, at or above the bar" in verdict
    assert "below the bar of 60" in recipe_verdict(tmp_path, ["r3407", "r1", "r2"], other_style=60)[1]
    _row_file(tmp_path, "r2", 2, 55, 60, 57.0)  # a gain of 5: not enough, though the means still beat the 7B
    assert "not every seed gains >= 10" in recipe_verdict(tmp_path, ["r3407", "r1", "r2"])[1]
    _row_file(tmp_path, "r2", 2, 48, 60, 50.0)  # the mean score falls below 58.54
    assert "Does not beat it on both" in recipe_verdict(tmp_path, ["r3407", "r1", "r2"])[1]
    assert recipe_verdict(tmp_path, ["r3407", "r9"])[1] == "not decided: no finished results for r9"
    assert recipe_verdict(tmp_path, [])[1] == "not decided: no rows given"  # e.g. none committed yet
    one = recipe_verdict(tmp_path, ["r3407"])[1]
    assert "over 1 seed: valid 70, mean score 60.00 (one seed: no spread)" in one
    assert one.endswith("Not decided: 1 of the 3 seeds the bar asks for.")  # figures alone are not the bar
    assert recipe_verdict(tmp_path, "r3407")[1] == one  # one row's name, not a list of its letters


def test_recipe_verdict_refuses_rows_that_are_not_seeds_of_one_recipe(tmp_path):
    """Two rows with other steps (or the same seed twice) are not seeds: averaging them would beat the 7B here."""
    import json

    from utils.evaluate.report import recipe_verdict

    for seed, steps in ((3407, 150), (1, 300), (2, 150)):
        _row_file(tmp_path, f"r{seed}", seed, 50, 70, 60.0)
        path = tmp_path / f"r{seed}.json"
        row = {"overrides": {"grpo.steps": steps, "seed": seed}, "rewards": ["format_reward"], "weights": [1]}
        path.write_text(json.dumps(json.loads(path.read_text()) | {"row": row}))
    verdict = recipe_verdict(tmp_path, ["r3407", "r1", "r2"])[1]
    assert verdict == "not decided: r3407 and r1 are not one recipe (they differ in grpo.steps)"
    assert "Beats it on both" in recipe_verdict(tmp_path, ["r3407", "r2"])[1]  # only the seed differs
    assert recipe_verdict(tmp_path, ["r3407", "r2", "r3407"])[1] == (
        "not decided: r3407 and r3407 have the same seed (3407): not two seeds"
    )


def test_ablation_table_labels_rows_by_file_so_a_rerun_keeps_its_own_row(tmp_path):
    """``weak_grpo_monitored.json`` is row ``weak_grpo`` run again with the monitor: labelled by the row's name, the
    table showed two rows called ``weak_grpo`` with different warm starts."""
    import json

    from utils.evaluate.report import ablation_table

    def result(valid: int, status: str = "") -> dict:
        test = {"test": {"valid": valid, "mean_score": float(valid)}}
        return {"row": {"name": "weak_grpo", "what": "w"}, "warm_start": {"evaluations": test}, "status": status}

    (tmp_path / "weak_grpo.json").write_text(json.dumps(result(28)))
    (tmp_path / "weak_grpo_monitored.json").write_text(json.dumps(result(25, "partial: step 148")))
    table = ablation_table(tmp_path)
    assert list(table.index) == ["weak_grpo", "weak_grpo_monitored"]
    assert table.loc["weak_grpo_monitored", "warm start test"] == "25 / 25.0"
    assert table.loc["weak_grpo_monitored", "status"] == "partial: step 148"


def test_warm_start_table_reads_the_committed_warm_starts_and_pairs_them(capsys):
    """Three warm starts of the same settings (4,000 problems, full trace, seed 3407) trained in three sessions.
    A name without committed warm-start answers (a typo, a row not run) is left out, and a line names it."""
    from pathlib import Path

    from utils.evaluate.report import warm_start_table

    folder = Path(__file__).resolve().parent.parent / "results" / "ablation"
    rows = ["strong_grpo_maximal", "strong_grpo_optimal", "strong_grpo_maximal_300", "not_a_row"]
    table = warm_start_table(folder, rows, against="strong_grpo_maximal")
    assert list(table.index) == rows[:3] and set(table["trace"]) == {"full"}
    assert list(table["valid"]) == [48, 45, 42]
    assert table.loc["strong_grpo_maximal_300", "vs strong_grpo_maximal"] == "+0 / -6, p = 0.031"
    assert table.loc["strong_grpo_maximal", "vs strong_grpo_maximal"] == ""  # not compared with itself
    assert table.loc["strong_grpo_maximal", "real clashes named"] == "32%"
    assert list(table["other style valid"]) == [6, 8, 5] and set(table["style"]) == {"default"}
    assert capsys.readouterr().out.strip().endswith(f"no committed warm-start answers in {folder}: not_a_row")


def test_warm_start_table_pairs_the_other_style_set_too():
    """The wide style's warm start against the default style's: the held-out names are where they differ."""
    from pathlib import Path

    from utils.evaluate.report import warm_start_table

    folder = Path(__file__).resolve().parent.parent / "results" / "ablation"
    table = warm_start_table(folder, ["warm_scan", "warm_scan_wide"], against="warm_scan")
    assert list(table["style"]) == ["default", "wide"] and list(table["other style valid"]) == [10, 54]
    assert table.loc["warm_scan_wide", "other style vs warm_scan"] == "+48 / -4, p = 1.3e-10"
    assert table.loc["warm_scan_wide", "vs warm_scan"] == "+18 / -8, p = 0.076"


def test_recipe_verdict_reads_a_knob_left_to_the_profile_from_the_recorded_profile(tmp_path):
    """Rows pin the answer length they ran with since the gpu profile's changed: a new seed that pins 512 and a
    committed row that ran at the profile's 512 without pinning it are one recipe; at 640 they are not. Other GRPO
    problems make another recipe too, whether a file records them as knobs or, as older files do, as grpo_problems."""
    import json

    from utils.evaluate.report import recipe_verdict

    def write(name, seed, overrides, length, problems=None):
        _row_file(tmp_path, name, seed, 50, 70, 60.0)
        path = tmp_path / f"{name}.json"
        row = {"overrides": {**overrides, "seed": seed}, "rewards": ["format_reward"], "weights": [1]}
        row |= {"grpo_problems": problems} if problems else {}
        profile = {"seed": seed, "grpo": {"max_completion_length": length}}
        path.write_text(json.dumps(json.loads(path.read_text()) | {"row": row, "profile": profile}))

    write("old", 3407, {"grpo.steps": 150}, 512)  # committed before the pin
    write("pinned", 1, {"grpo.steps": 150, "grpo.max_completion_length": 512}, 512)
    assert "Beats it on both" in recipe_verdict(tmp_path, ["old", "pinned"])[1]
    write("longer", 2, {"grpo.steps": 150, "grpo.max_completion_length": 640}, 640)
    assert recipe_verdict(tmp_path, ["old", "longer"])[1] == (
        "not decided: old and longer are not one recipe (they differ in grpo.max_completion_length)"
    )
    write("mixed", 2, {"grpo.steps": 150}, 512, problems={"n": 2400, "style": "wide"})  # the old files' key
    assert recipe_verdict(tmp_path, ["old", "mixed"])[1].endswith("(they differ in data.n_train, data.train_style)")
    write("knobs", 3, {"grpo.steps": 150, "data.n_train": 2400, "data.train_style": "wide"}, 512)  # the same, as knobs
    assert "Beats it on both" in recipe_verdict(tmp_path, ["mixed", "knobs"])[1]
    # knobs added to the profiles after "old" ran (its file has no record of them): it ran with their defaults
    write("pins", 4, {"grpo.steps": 150, "warm_start.style": "default", "data.train_style": "default"}, 512)
    assert "Beats it on both" in recipe_verdict(tmp_path, ["old", "pins"])[1]
    write("wide", 5, {"grpo.steps": 150, "warm_start.style": "wide"}, 512)
    assert recipe_verdict(tmp_path, ["old", "wide"])[1].endswith("(they differ in warm_start.style)")


def test_every_row_notebook_06_offers_has_what_its_committed_run_cell_reads():
    """Section 3's COMMITTED_ROW accepts the rows rows_with_grpo_answers names; each has the fields the cell prints
    and 100 answers of each model, and a warm-start-only row or one that stopped early is not offered."""
    import json

    from utils.evaluate.evaluation import load_completions
    from utils.evaluate.report import rows_with_grpo_answers
    from utils.paths import REPO_ROOT

    folder = REPO_ROOT / "results" / "ablation"
    rows = rows_with_grpo_answers(folder)
    assert "wide4000_grpo_maximal_scan" in rows and not {"warm_scan", "weak_grpo_monitored", "grpo_only_shaped"} & set(
        rows
    )
    for name in rows:
        run = json.loads((folder / f"{name}.json").read_text())
        ws, grpo = run["warm_start"]["settings"], run["grpo"]
        assert run["date"] and run["hardware"] and ws["trace"] and ws["epochs"] and grpo["seconds"] and grpo["rewards"]
        for stage in ("sft", "grpo"):
            assert len(load_completions(folder / name / f"completions_{stage}_test.jsonl", expected=100)) == 100
