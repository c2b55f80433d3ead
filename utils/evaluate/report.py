"""Compare evaluated models: tables, category bars, score histograms, examples, failures.

Everything here takes :class:`utils.evaluate.EvalSummary` objects (one per model, same
problems, same order), so notebook 06 and the tests call the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..profiles import DEFAULT_SEED, Profile
from ..task.scheduling import optimal_schedule
from .evaluation import CATEGORIES, COUNT_KEYS, PUBLISHED_RESULTS, EvalSummary

Summaries = Mapping[str, EvalSummary]
CATEGORY_COLORS = {
    "format_error": "#9e9e9e",
    "fewer_than_2_events": "#bcaaa4",
    "nonexistent": "#edae49",
    "unsorted": "#f28e2b",
    "overlap": "#d1495b",
    "valid": "#00798c",
}


def results_table(summaries: Summaries, baselines: Summaries | None = None, published: bool = True):
    """One row per model: valid share, mean score (x100) and the failure counts (as % of rows).

    Published rows come from the reference's own evaluation on *its* test set: comparable in
    kind, not problem for problem. The ``source`` column says where each figure comes from."""
    import pandas as pd

    def row(name: str, s: EvalSummary, kind: str) -> dict:
        return {
            "model": name,
            "kind": kind,
            "n": s.n,
            "valid %": 100.0 * s.valid / s.n,
            "mean score": s.mean_score,
            **{k: 100.0 * v / s.n for k, v in s.counts.items()},
            "source": "this notebook",
        }

    rows = [row(n, s, "ours") for n, s in summaries.items()]
    rows += [row(n, s, "baseline (no model)") for n, s in (baselines or {}).items()]
    if published:
        rows += [
            {
                "model": p["model"],
                "kind": "published",
                "n": 100,
                "valid %": float(p["valid"]),
                "mean score": p["mean_score"],
                "source": p["source"],
            }
            for p in PUBLISHED_RESULTS
        ]
    return pd.DataFrame(rows).set_index("model").round(1)


def plot_categories(summaries: Summaries, ax=None, title: str = "Where the answers end up"):
    """Stacked horizontal bars: share of answers in each reference category, per model."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.6 * len(summaries) + 1.4))
    names = list(summaries)
    left = [0.0] * len(names)
    for cat in CATEGORIES:
        key = COUNT_KEYS.get(cat)
        shares = [100.0 * (s.valid if cat == "valid" else s.counts[key]) / s.n for s in summaries.values()]
        ax.barh(names, shares, left=left, color=CATEGORY_COLORS[cat], label=cat.replace("_", " "))
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of test problems")
    ax.invert_yaxis()
    # below the axis label, whatever the number of models
    ax.legend(
        ncol=3,
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(0.0, -0.6 / (0.6 * len(names) + 1.4) - 0.12),
        frameon=False,
    )
    ax.figure.tight_layout()
    ax.set_title(title)
    return ax


def plot_score_histograms(summaries: Summaries, bins: int = 10, per_row: int = 3):
    """Per model: the distribution of per-problem scores in % of its problems (failures are the bar at 0),
    ``per_row`` panels a row."""
    import math

    import matplotlib.pyplot as plt

    n = len(summaries)
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), sharey=True, squeeze=False)
    flat = axes.flatten()
    for ax, (name, s) in zip(flat, summaries.items()):
        scores = [r.score for r in s.results]  # in % of the model's problems: comparable whatever their number
        ax.hist(scores, bins=bins, range=(0, 1), weights=[100.0 / max(1, len(scores))] * len(scores), color="#00798c")
        ax.set_title(f"{name} ({s.n} problems)\nmean score {s.mean_score:.1f}", fontsize=9)
        ax.set_xlabel("score (weighted / optimal; failures: 0)")
        ax.grid(axis="y", alpha=0.3)
    for ax in flat[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("% of problems")
    fig.tight_layout()
    return fig


def pick_examples(summary: EvalSummary, n: int = 2) -> dict[str, list[int]]:
    """Row indices worth drawing: wins (optimal), near misses (valid but below optimal, best
    first; then overlaps, one clash from valid) and failures (the other categories)."""
    res = summary.results
    wins = [i for i, r in enumerate(res) if r.valid and r.score >= 0.999]
    near = sorted((i for i, r in enumerate(res) if r.valid and r.score < 0.999), key=lambda i: -res[i].score)
    near += [i for i, r in enumerate(res) if r.category == "overlap"]
    failures = [i for i, r in enumerate(res) if r.category not in ("valid", "overlap")]
    return {"wins": wins[:n], "near misses": near[:n], "failures": failures[:n]}


def model_schedule(result) -> list[list[str]]:
    """The events a model listed, as ``[name, start, end]`` (names stripped for drawing)."""
    return [[str(e[0]).strip(), e[1], e[2]] for e in result.events]


def draw_example(row: Mapping, result, label: str = "model", ax=None):
    """The problem's events, the model's schedule and the optimum, in lanes."""
    from ..task.plotting import compare_schedules

    best = optimal_schedule(row["events"], row["priority_events"])[1]
    title = f"{result.category}, score {result.score:.2f}: {result.reason[:90]}"
    return compare_schedules(row, {label: model_schedule(result), "optimal (DP)": best}, ax=ax, title=title)


def failure_gallery(
    summary: EvalSummary, completions: Sequence[str], per_category: int = 2, max_chars: int = 700
) -> dict[str, list[dict]]:
    """Failed answers grouped by category, with the reason and the raw text (shortened)."""
    out: dict[str, list[dict]] = {}
    for i, (r, text) in enumerate(zip(summary.results, completions)):
        if r.valid or len(out.setdefault(r.category, [])) >= per_category:
            continue
        text = str(text)
        out[r.category].append(
            {"row": i, "reason": r.reason, "completion": text if len(text) <= max_chars else text[:max_chars] + " […]"}
        )
    return {k: v for k, v in out.items() if v}


def _paired_text(result: dict) -> str:
    """GRPO against its warm start on the test set, from a results file: +improved / -worsened problems,
    exact McNemar p, the score change and its 95% paired bootstrap interval ("" when not compared)."""
    c = (result.get("compare_sft_grpo") or {}).get("test")
    if not c:
        return ""
    t = c["transitions"]
    return (
        f"+{t['invalid->valid']} / -{t['valid->invalid']}, p = {c['p_value']:.2g}, "
        f"score {c['score_diff']:+.1f} [{c['score_low']:+.1f}, {c['score_high']:+.1f}]"
    )


def ablation_table(folder) -> pd.DataFrame:  # noqa: F821 - pandas is imported inside
    """One row per experiment of ``results/ablation/*.json`` (scripts/ablation.py): the warm start and
    GRPO on both test sets (valid / 100, mean score), GRPO's paired comparison with its own warm start
    (+improved / -worsened problems, exact McNemar p, 95% bootstrap interval of the score change), steps.
    Rows are labelled by file name: a row run again under another file (``weak_grpo_monitored.json`` is row
    ``weak_grpo`` with the live monitor) keeps its own label."""
    import json
    from pathlib import Path

    import pandas as pd

    records = []
    for path in sorted(Path(folder).glob("*.json")):
        d = json.loads(path.read_text())
        row = d.get("row", {})
        rec = {"row": path.stem, "what": row.get("what", ""), "status": d.get("status", "")}
        warm = (d.get("warm_start") or {}).get("evaluations", {})
        for tag, evals in (("warm start", warm), ("GRPO", d.get("evaluations", {}))):
            for name, short in (("test", "test"), ("test_other_style", "other style")):
                e = evals.get(name)
                rec[f"{tag} {short}"] = f"{e['valid']} / {e['mean_score']:.1f}" if e else ""
        rec["GRPO vs warm start (test)"] = _paired_text(d)
        grpo = d.get("grpo") or {}
        if grpo.get("step_seconds"):
            times = sorted(grpo["step_seconds"][1:]) or grpo["step_seconds"]
            rec["GRPO steps"], rec["s / step"] = grpo.get("steps"), round(times[len(times) // 2], 2)
        records.append(rec)
    return pd.DataFrame(records).set_index("row").fillna("")


def rows_with_grpo_answers(folder) -> list[str]:
    """The committed rows (``results/ablation/*.json``) that hold what notebook 06 section 3 reads: a warm start's
    settings, a GRPO run's steps and both models' test answers. Warm-start-only rows, rows that stopped early
    (``weak_grpo_monitored``: curves only) and ``grpo_only_shaped`` (no warm start) are not among them.

    >>> from utils.paths import REPO_ROOT
    >>> rows = rows_with_grpo_answers(REPO_ROOT / "results" / "ablation")
    >>> "wide4000_grpo_maximal_scan" in rows, "warm_scan" in rows, "weak_grpo_monitored" in rows
    (True, False, False)
    """
    import json
    from pathlib import Path

    found = []
    for path in sorted(Path(folder).glob("*.json")):
        d = json.loads(path.read_text())
        answers = [path.with_suffix("") / f"completions_{stage}_test.jsonl" for stage in ("sft", "grpo")]
        if (
            ((d.get("warm_start") or {}).get("settings") or {}).get("n_problems")
            and (d.get("grpo") or {}).get("steps")
            and all(a.exists() for a in answers)
        ):
            found.append(path.stem)
    return found


def warm_start_table(folder, rows: Sequence[str], against: str | None = None) -> pd.DataFrame:  # noqa: F821
    """The warm starts of committed rows side by side (``results/ablation``; a warm-start-only row, ``"grpo":
    false``, or any row's warm start): its trace and problems, valid answers and mean score on the test set, and
    what its ``<think>`` traces say of the clashes (the share of the real ones named, the share of the named ones
    that are false) and of the durations (the share stated right), from the committed warm-start completions;
    and its valid answers on the held-out other-style set (``test_other_style``: names it never saw).
    ``against``: a row to compare each with, paired on the same problems of each set (+improved / -worsened valid
    answers, exact McNemar p). Rows without committed warm-start answers (not run yet, a typo, a row with no warm
    start) are left out, and one printed line names them.
    """
    import json
    from pathlib import Path

    import pandas as pd

    from ..task.data import load_split
    from .answers import answer_profile, stated_durations
    from .evaluation import evaluate, load_completions
    from .statistics import compare

    def answers(name: str, split: str = "test") -> list | None:
        path = Path(folder) / name / f"completions_sft_{split}.jsonl"
        return load_completions(path) if path.exists() else None

    base = {split: answers(against, split) for split in ("test", "test_other_style")} if against else {}
    base_scored: dict[tuple[str, int], object] = {}  # (set, n): the reference row on its first n problems, once

    def versus(split: str, after, name: str) -> str:
        if (split, after.n) not in base_scored:
            base_scored[split, after.n] = evaluate(load_split(split, after.n), base[split][: after.n])
        c = compare(base_scored[split, after.n], after, against, name)
        return f"+{c.transitions['invalid->valid']} / -{c.transitions['valid->invalid']}, p = {c.p_value:.2g}"

    records, left_out = [], []
    for name in rows:
        texts = answers(name)
        if texts is None:
            left_out.append(name)
            continue
        problems = load_split("test", len(texts))
        summary, trace = evaluate(problems, texts), answer_profile(problems, texts)
        durations = stated_durations(problems, texts)
        ws = json.loads((Path(folder) / f"{name}.json").read_text()).get("profile", {}).get("warm_start", {})
        rec = {
            "row": name,
            "trace": ws.get("trace", ""),
            "style": ws.get("style", "default"),  # the training problems' names (utils.task.datagen)
            "problems": ws.get("n_problems", ""),
            "valid": summary.valid,
            "mean score": round(summary.mean_score, 2),
            "real clashes named": f"{trace['real_clashes_named']:.0%}",
            "named clashes false": f"{trace['false_clashes_named']:.0%}",
            "durations right": f"{durations['durations_right']:.0%}" if durations["durations_stated"] else "",
        }
        other_texts = answers(name, "test_other_style")
        other = evaluate(load_split("test_other_style", len(other_texts)), other_texts) if other_texts else None
        rec["other style valid"] = other.valid if other else ""
        if base.get("test") is not None and name != against:
            rec[f"vs {against}"] = versus("test", summary, name)
            if other and base["test_other_style"]:
                rec[f"other style vs {against}"] = versus("test_other_style", other, name)
        records.append(rec)
    if left_out:
        print(f"left out, no committed warm-start answers in {folder}: {', '.join(left_out)}")
    return pd.DataFrame(records).set_index("row").fillna("") if records else pd.DataFrame()


def recipe_verdict(
    folder, rows: Sequence[str], min_gain: int = 10, alpha: float = 0.01, seeds: int = 3, other_style: int = 50
) -> tuple[pd.DataFrame, str]:  # noqa: F821
    """A recipe run once per seed (one committed row each) against the published GRPO 7B model's two figures.

    Returns a table (a row per seed: valid and mean score on the test set, GRPO's gain in valid answers over its
    own warm start with the exact McNemar p, the other-style set) and one line of verdict: it beats the 7B when
    the seeds' mean valid count and mean score both reach the 7B's (63, 58.54) and every seed's gain is at least
    ``min_gain`` valid answers at p < ``alpha``, over at least ``seeds`` seeds (fewer: the line says the bar is
    not reached yet, whatever the figures). The line also says whether the seeds' mean valid count on the
    held-out other-style set reaches ``other_style`` (the issue's generalisation bar). Rows missing from
    ``folder`` are named, never guessed; rows that differ in anything but the seed (their overrides, rewards or
    weights), or share a seed, are not seeds of one recipe, and the verdict says so instead of averaging them.
    """
    import json
    from pathlib import Path
    from statistics import mean, stdev

    import pandas as pd

    target = next(p for p in PUBLISHED_RESULTS if p["model"] == "anakin87/qwen-scheduler-7b-grpo")
    rows = [rows] if isinstance(rows, str) else rows  # one row's name, not its letters
    records, missing = [], []
    for name in rows:
        path = Path(folder) / f"{name}.json"
        result = json.loads(path.read_text()) if path.exists() else {}
        test = (result.get("evaluations") or {}).get("test")
        paired = (result.get("compare_sft_grpo") or {}).get("test")
        if not test or not paired:
            missing.append(name)
            continue
        other = (result.get("evaluations") or {}).get("test_other_style") or {}
        gain = paired["valid_b"] - paired["valid_a"]
        records.append(
            {
                "row": name,
                "seed": (result.get("profile") or {}).get("seed", DEFAULT_SEED),  # older files: the default
                "valid": test["valid"],
                "mean score": round(test["mean_score"], 2),
                "gain in valid (p)": f"{gain:+d} (p = {paired['p_value']:.2g})",
                "gain ok": gain >= min_gain and paired["p_value"] < alpha,
                "other-style valid": other.get("valid"),
            }
        )
    table = pd.DataFrame(records).set_index("row") if records else pd.DataFrame()
    if missing:
        return table, f"not decided: no finished results for {', '.join(missing)}"
    if not records:
        return table, "not decided: no rows given"
    if drift := _recipe_drift(folder, [r["row"] for r in records], [r["seed"] for r in records]):
        return table, f"not decided: {drift}"
    valid, score = [r["valid"] for r in records], [r["mean score"] for r in records]
    spread = (
        f"valid {mean(valid):.1f} (sd {stdev(valid):.1f}), mean score {mean(score):.2f} (sd {stdev(score):.2f})"
        if len(records) > 1
        else f"valid {valid[0]}, mean score {score[0]:.2f} (one seed: no spread)"
    )
    beats = mean(valid) >= target["valid"] and mean(score) >= target["mean_score"]
    gains = all(r["gain ok"] for r in records)
    verdict = (
        f"over {len(records)} seed{'s' * (len(records) != 1)}: {spread}; "
        f"the published 7B: {target['valid']} valid, {target['mean_score']}. "
        f"{'Beats it on both' if beats else 'Does not beat it on both'}; "
        f"{'every' if gains else 'not every'} seed gains >= {min_gain} valid at p < {alpha}."
    )
    other = [r["other-style valid"] for r in records if r["other-style valid"] is not None]
    if other:
        verdict += (
            f" Other-style set: {mean(other):.1f} valid on average, "
            f"{'at or above' if mean(other) >= other_style else 'below'} the bar of {other_style}."
        )
    if len(records) < seeds:
        verdict += f" Not decided: {len(records)} of the {seeds} seeds the bar asks for."
    return table, verdict


def row_overrides(result: Mapping) -> dict:
    """The overrides a committed results file's row ran with (older files' ``grpo_problems`` as the data knobs that
    replaced it)."""
    row = result.get("row") or {}
    overrides = dict(row.get("overrides") or {})
    if legacy := row.get("grpo_problems"):  # files from before the data.n_train / train_style knobs
        overrides |= {"data.n_train": legacy.get("n"), "data.train_style": legacy.get("style", "default")}
    return overrides


def ran_with(result: Mapping, knob: str):
    """What a committed results file's run had for ``knob`` (``"grpo.steps"``): its row's override, else its recorded
    profile, else, for a knob added to the profiles after the run, that knob's default (it did not exist then).

    >>> ran_with({"row": {"overrides": {"grpo.steps": 300}}, "profile": {"grpo": {"steps": 150}}}, "grpo.steps")
    300
    >>> ran_with({"row": {}, "profile": {"data": {"n_train": 500}}}, "data.train_style")
    'default'
    >>> ran_with({"row": {}, "profile": {"seed": 1}}, "seed"), ran_with({"row": {}, "profile": {}}, "data.n_train")
    (1, None)
    """
    import dataclasses
    import typing

    overrides = row_overrides(result)
    if knob in overrides:
        return overrides[knob]
    recorded, kind = result.get("profile") or {}, Profile
    *groups, name = knob.split(".")  # "grpo.steps" -> profile["grpo"]["steps"]; "seed" -> profile["seed"]
    for group in groups:
        recorded = recorded.get(group) if isinstance(recorded, dict) else None
        kind = typing.get_type_hints(kind).get(group) if dataclasses.is_dataclass(kind) else None
    if isinstance(recorded, dict) and name in recorded:
        return recorded[name]
    fields = {f.name: f for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else {}
    default = fields[name].default if name in fields else dataclasses.MISSING  # a knob added after the run
    return None if default is dataclasses.MISSING else default


def _recipe_drift(folder, rows: Sequence[str], seeds: Sequence[int]) -> str:
    """Why committed rows are not seeds of one recipe ("" when they are): the first row whose recipe (the knobs its
    ``experiments/ablation.json`` row overrides but the seed, GRPO's problems among them; its rewards and weights)
    differs from the first row's, or two rows with the same seed. A knob one row overrides is read from the other
    row's recorded profile when that row left it to the profile (:func:`ran_with`): a row that pins a default it ran
    with (as every row pins its answer length since the gpu profile's changed) is the same recipe as one that did
    not."""
    import json
    from pathlib import Path

    results = {name: json.loads((Path(folder) / f"{name}.json").read_text()) for name in rows}

    def knobs(name: str) -> set[str]:
        return set(row_overrides(results[name])) - {"seed"}

    def unlike(a: str, b: str) -> list[str]:
        ra, rb = results[a].get("row") or {}, results[b].get("row") or {}
        differ = [k for k in knobs(a) | knobs(b) if ran_with(results[a], k) != ran_with(results[b], k)]
        return sorted(differ + [k for k in ("rewards", "weights") if ra.get(k) != rb.get(k)])

    for name in rows[1:]:
        if keys := unlike(rows[0], name):
            return f"{rows[0]} and {name} are not one recipe (they differ in {', '.join(keys)})"
    for i, seed in enumerate(seeds):
        if seed in seeds[:i]:
            return f"{rows[seeds.index(seed)]} and {rows[i]} have the same seed ({seed}): not two seeds"
    return ""


#: The reward story's committed rows: from the same warm-start settings, the seed's set, the strict one and its
#: variants (a bonus for the optimum, a charge for events left out for free).
REWARD_STORY_ROWS = (
    *("weak_grpo", "weak_grpo_monitored", "weak_grpo_strict", "weak_grpo_maximal"),
    *("strong_grpo", "strong_grpo_strict", "strong_grpo_optimal", "strong_grpo_maximal"),
)


def _window_mean(logs: list, key: str, first: bool, width: int = 25) -> float:
    values = [h[key] for h in logs if key in h]
    part = values[:width] if first else values[-width:]
    return sum(part) / len(part) if part else float("nan")


def reward_story_table(folder, rows: tuple[str, ...] = REWARD_STORY_ROWS) -> pd.DataFrame:  # noqa: F821
    """The seed's reward set against the strict one, from the committed rows of ``results/ablation/``:
    the reward GRPO optimised and the evaluation of the same sampled answers during training (first and
    last 25 logged steps; the live monitor, for runs that logged it), then the test set before and after
    GRPO with the paired comparison, the other-style set, and what the GRPO model writes (events per answer
    against the optimum's, answers whose schedule contradicts their own trace, the clashes the traces name
    against the real ones, valid answers that leave out events clashing with nothing,
    :func:`~utils.evaluate.answers.completion_gap`). Rows not committed are skipped."""
    import json
    from pathlib import Path

    import pandas as pd

    from ..task.data import load_split
    from .answers import answer_profile, completion_gap, valid_quality
    from .evaluation import load_completions

    records = []
    for name in rows:
        path = Path(folder) / f"{name}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        grpo = d.get("grpo") or {}
        logs = [h for h in grpo.get("log_history", []) if "reward" in h]
        warm = (d.get("warm_start") or {}).get("evaluations", {})
        after = d.get("evaluations", {})
        rec = {"row": name, "rewards": " + ".join(grpo.get("rewards", []))}
        rec["training reward (first -> last 25 steps)"] = (
            f"{_window_mean(logs, 'reward', True):.1f} -> {_window_mean(logs, 'reward', False):.1f}" if logs else ""
        )
        rec["sampled answers valid (monitor)"] = (
            f"{_window_mean(logs, 'monitor/valid', True):.0%} -> {_window_mean(logs, 'monitor/valid', False):.0%}"
            if any("monitor/valid" in h for h in logs)
            else "not logged"
        )
        rec["sampled answers with a clash (monitor)"] = (
            f"{_window_mean(logs, 'monitor/clash', True):.0%} -> {_window_mean(logs, 'monitor/clash', False):.0%}"
            if any("monitor/clash" in h for h in logs)
            else "not logged"
        )
        if d.get("status", "").startswith("partial"):
            rec["valid test"] = f"not evaluated: {d['status'].split(':')[1].split(';')[0].strip()}"
        for tag, short in (("test", "test"), ("test_other_style", "other style")):
            a, b = warm.get(tag), after.get(tag)
            rec[f"valid {short}"] = f"{a['valid']} -> {b['valid']}" if a and b else rec.get(f"valid {short}", "")
            if tag == "test":
                rec["mean score test"] = f"{a['mean_score']:.1f} -> {b['mean_score']:.1f}" if a and b else ""
        rec["paired (test)"] = _paired_text(d)
        answers = {}  # stage -> (test rows, completions), each file read once
        for stage in ("sft", "grpo"):
            path = Path(folder) / name / f"completions_{stage}_test.jsonl"
            if path.exists():
                texts = load_completions(path)
                answers[stage] = (load_split("test", len(texts)), texts)
        if len(answers) == 2:  # warm start -> GRPO: what the valid answers are worth
            quality = {stage: valid_quality(*pair) for stage, pair in answers.items()}
            share = {
                k: f"{q['share_of_optimum']:.0%} ({q['optimal']})" if q["valid"] else "none" for k, q in quality.items()
            }
            rec["valid answers: share of the optimum (optimal)"] = f"{share['sft']} -> {share['grpo']}"
        profiles = {stage: answer_profile(*pair) for stage, pair in answers.items()}
        if len(answers) == 2:  # does the <think> trace find the clashes? (the warm start was taught the true ones)
            rec["trace: real clashes named; named clashes that are false"] = "; ".join(
                f"{profiles['sft'][k]:.0%} -> {profiles['grpo'][k]:.0%}"
                for k in ("real_clashes_named", "false_clashes_named")
            )
        if "grpo" in answers:
            prof = profiles["grpo"]
            rec["events / answer (optimum)"] = (
                f"{prof['events_per_answer']:.2f} ({prof['optimal_events_per_answer']:.2f})"
            )
            rec["contradicts own trace"] = f"{prof['contradicts_trace']:.0%}"
            gap = completion_gap(*answers["grpo"])
            rec["valid answers leaving out a free event (free events); mean score with them added"] = (
                f"{gap['not_maximal']} of {gap['valid']} ({gap['free_events']}); {gap['mean_score_completed']:.1f}"
            )
        records.append(rec)
    return pd.DataFrame(records).set_index("row").fillna("") if records else pd.DataFrame()
