"""Source of notebooks/05_evaluation.ipynb (run: python scripts/notebook_sources/nb05.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nbtools import build  # noqa: E402

CELLS = [
("md", r"""
Did GRPO help? This notebook answers with numbers and pictures. It evaluates three models on the test
problems, the way the public reference does:

* the **untrained** model,
* the **warm-started** model (after the short supervised step of notebook 04, when it was used),
* the **GRPO-trained** model (warm start + LoRA adapter).

Every answer falls into the first check it fails: format error → fewer than 2 events → an event not in
the problem → not in time order → overlapping events → **valid**. A valid schedule scores its weighted
duration divided by the optimum (notebook 02); failures score 0. The headline number is the mean score x100.

It also reads the results of a longer run on an H100 that are committed to the repository, so even a
CPU-only learner sees what real training changes.
"""),
("code", r"""
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from utils.baselines import evaluate_baselines
from utils.callbacks import plot_history
from utils.data import load_problems, load_split
from utils.evaluation import evaluate, load_completions, save_completions
from utils.generation import timed_generate
from utils.models import choose_model, load_model, model_source
from utils.paths import REPO_ROOT, output_dir
from utils.plotting import save_figure
from utils.profiles import get_profile
from utils.report import (draw_example, failure_gallery, pick_examples, plot_categories, plot_score_histograms,
                          results_table)
from utils.reward_sets import load_reward_set
from utils.training import read_run_info, train_grpo

P = get_profile()
print(f"profile {P.name}: {P.n_eval} test problems, up to {P.eval_max_new_tokens} new tokens, greedy")
"""),
("md", r"""
## 1. What notebook 04 left behind

Notebook 04 writes `outputs/grpo/run_info.json`: where the adapter is, which model it sits on, the profile
and the training log. If it is missing (you opened this notebook first), we say so and make a **tiny run**
here instead, so every cell below still runs. Its numbers mean nothing; run notebook 04 for real ones.
"""),
("code", r"""
RUN_DIR = output_dir() / "grpo"  # ✏️ point at another run folder (e.g. on Google Drive)
info = read_run_info(RUN_DIR)
if info is None or not Path(info["adapter_dir"]).exists():
    print(f"No finished notebook-04 run in {RUN_DIR}: making a tiny one (1 GRPO step, no warm start).")
    tiny = get_profile("smoke")
    funcs, weights, _ = load_reward_set()
    RUN_DIR = output_dir() / "grpo-fallback"
    train_grpo(load_split("train", 4), funcs, tiny, reward_weights=weights, out_dir=RUN_DIR, max_steps=1, resume=False)
    info = read_run_info(RUN_DIR)
print(json.dumps({k: info[k] for k in ("model_key", "base_model", "adapter_dir", "backend", "generation",
                                       "global_step", "train_seconds")}, indent=1))
print("trained with profile:", info["profile"]["name"])
"""),
("md", r"""
## 2. Answers from each model

Greedy decoding (no sampling), like the reference evaluation, so the numbers are repeatable. The answers
are saved as JSONL, so you can evaluate again later without the model, also from the command line.
"""),
("code", r"""
test_rows = load_problems("test", "local", limit=P.n_eval)
spec = choose_model(info["model_key"])
untrained = model_source(spec)
MODELS = {"untrained": (untrained, None)}
if info["base_model"] != untrained:
    MODELS["warm start"] = (info["base_model"], None)
MODELS["GRPO"] = (info["base_model"], info["adapter_dir"])

EVAL_DIR = output_dir() / "eval"
EVAL_DIR.mkdir(parents=True, exist_ok=True)
completions, seconds = {}, {}
for name, (source, adapter) in MODELS.items():
    model, tok = load_model(source, adapter=adapter)
    completions[name], seconds[name] = timed_generate(model, tok, test_rows, max_new_tokens=P.eval_max_new_tokens,
                                                      batch_size=P.eval_batch_size, desc=name)
    save_completions(EVAL_DIR / f"{name.replace(' ', '_')}.jsonl", completions[name], extra={"model": name})
    del model
print({k: f"{v:.0f} s" for k, v in seconds.items()})
live = {name: evaluate(test_rows, texts) for name, texts in completions.items()}
for name, summary in live.items():
    print(f"--- {name} ---\n{summary}\n")
"""),
("md", r"""
The same evaluation from the command line, on the files just written (`--json` prints one object):
"""),
("code", r"""
subset = EVAL_DIR / "test_subset.jsonl"
subset.write_text("".join(json.dumps(r) + "\n" for r in test_rows))
cmd = [sys.executable, "-m", "utils.evaluation", "--data", str(subset), "--completions", str(EVAL_DIR / "GRPO.jsonl"), "--json"]
print("$ python -m utils.evaluation --data", subset.name, "--completions GRPO.jsonl --json")
print(subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout)
"""),
("md", r"""
## 3. A longer run on a GPU (committed results)

`results/` holds the answers of the three models from a run of `scripts/train_grpo.py` on an H100 (embedded
135M model, 500-problem warm start, 80 GRPO steps; the exact command and timings are in
`results/gpu_h100_embedded_grpo.json`). They are evaluated here with the same evaluator, on all 100 test problems.
"""),
("code", r"""
all_test = load_split("test")
gpu_run = json.loads((REPO_ROOT / "results" / "gpu_h100_embedded_grpo.json").read_text())
h100 = {f"H100 {label}": evaluate(all_test, load_completions(REPO_ROOT / "results" / f"completions_{stage}.jsonl",
                                                             expected=len(all_test)))
        for stage, label in (("base", "untrained"), ("sft", "warm start"), ("grpo", "GRPO"))}
baselines = evaluate_baselines(all_test)
table = results_table({**live, **h100}, baselines=baselines)
with pd.option_context("display.max_colwidth", 60):
    display(table)
"""),
("md", r"""
How to read the table:

* **ours** rows from this notebook use `P.n_eval` problems (2 in the smoke profile); the H100 rows use all 100.
* **baselines** need no model: the DP optimum scores 100 by construction; greedy rules and random valid
  schedules show what "easy" looks like. This task is easy for a rule, and hard for a small language model
  that must copy names and times exactly and check overlaps in its head.
* **published** rows are the reference's own figures for Qwen2.5-Coder models on *its* test set ("Qwen
  Scheduler GRPO", anakin87, 2025; see the `source` column): the same kind of problems, not the same ones.

## 4. Where the answers go wrong
"""),
("code", r"""
compare = {**live, **h100}
ax = plot_categories(compare)
save_figure(ax.figure, "05_categories.png")
plt.show()
fig = plot_score_histograms(compare)
save_figure(fig, "05_score_histograms.png")
plt.show()
"""),
("md", r"""
On the H100 run the warm start removes every format error (the model learned the tags) and GRPO moves
answers from "overlap" and "event not in the problem" to "valid". Overlaps stay the largest failure:
checking every pair of times is the hard part for a 135M model.

## 5. Schedules side by side

For the model chosen below: two **wins** (optimal schedules), two **near misses** (valid but below the
optimum, or one clash away) and two **failures**. Each picture has the problem's events on top (faded,
stacked where they overlap), the model's schedule, and the optimum. Events the model invented are hatched grey.
"""),
("code", r"""
FOCUS = "H100 GRPO"  # ✏️ any key of `compare`, e.g. "GRPO" for the model you trained
focus_rows = all_test if FOCUS.startswith("H100") else test_rows
focus_texts = ({**{f"H100 {l}": load_completions(REPO_ROOT / "results" / f"completions_{s}.jsonl")
                   for s, l in (("base", "untrained"), ("sft", "warm start"), ("grpo", "GRPO"))}, **completions})[FOCUS]
examples = pick_examples(compare[FOCUS], n=2)
for kind, indices in examples.items():
    if not indices:
        print(f"{kind}: none")
    for i in indices:
        ax = draw_example(focus_rows[i], compare[FOCUS].results[i], label=FOCUS)
        ax.set_title(f"{kind} (problem {i}) - {ax.get_title()}", fontsize=9)
        save_figure(ax.figure, f"05_{kind.replace(' ', '_')}_{i}.png")
        plt.show()
"""),
("md", r"""
## 6. Failure gallery

Raw answers, grouped by what went wrong first. Reading them is the best way to get ideas for a better reward
or a better warm start.
"""),
("code", r"""
for category, items in failure_gallery(compare[FOCUS], focus_texts, per_category=2).items():
    print(f"==================== {category} ====================")
    for item in items:
        print(f"--- problem {item['row']}: {item['reason']}\n{item['completion']}\n")
"""),
("md", r"""
## 7. Training curves

From the log history: notebook 04's run (yours) and the committed H100 run.
"""),
("code", r"""
reward_names = info.get("rewards") or []
fig = plot_history(info["log_history"], reward_names)
fig.suptitle(f"your run ({info['profile']['name']} profile, {info['global_step']} steps)", y=1.02)
save_figure(fig, "05_training_curves_yours.png")
plt.show()
fig = plot_history(gpu_run["log_history"])
fig.suptitle(f"H100 run ({gpu_run['grpo']['steps']} steps, {gpu_run['grpo']['seconds_per_step']} s per step)", y=1.02)
save_figure(fig, "05_training_curves_h100.png")
plt.show()
"""),
("md", r"""
## 8. Optional: the published model

With a GPU and internet you can evaluate the reference's trained 7B model, `anakin87/qwen-scheduler-7b-grpo`,
on our test problems with the same code. It needs about 16 GB of GPU memory in bf16 and a download of about 15 GB.
"""),
("code", r"""
LOAD_PUBLISHED = False  # ✏️
if LOAD_PUBLISHED:
    import torch
    if not torch.cuda.is_available():
        print("no CUDA GPU here: skipping the published 7B model")
    else:
        model, tok = load_model("anakin87/qwen-scheduler-7b-grpo")  # clear message when offline
        texts, secs = timed_generate(model, tok, all_test, max_new_tokens=1024, batch_size=16, desc="published 7B")
        print(evaluate(all_test, texts), f"\n({secs:.0f} s)")
"""),
("md", r"""
## Takeaways and exercises

* A 135M model cannot start GRPO alone (notebook 04): the warm start gives it the format, GRPO then pushes
  more answers to valid.
* The evaluation is strict: one invented or clashing event makes the whole answer worth 0. Compare that with
  the *reward*, which gives partial credit; a reward is a teacher, the evaluation is the exam.

1. Which failure category did GRPO reduce most in the H100 run? Which reward term is responsible?
2. Write a reward that targets the largest remaining failure category (notebook 03), train (04), evaluate here.
3. Evaluate with `max_new_tokens` halved. Which categories grow, and why (think about truncated answers)?
"""),
]

if __name__ == "__main__":
    print(build("05_evaluation.ipynb", "Part 4 - Evaluation", CELLS))
