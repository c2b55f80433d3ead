"""The course's training pipeline as a script: evaluate, warm-start, GRPO, evaluate.

Same utils and configuration as notebook 05. One GPU or CPU::

    python scripts/train_grpo.py --profile gpu --out outputs/gpu_run

Several GPUs (data-parallel, TRL + accelerate do the distribution)::

    accelerate launch --num_processes 2 scripts/train_grpo.py --profile gpu --out outputs/ddp_run

Writes ``results.json`` (evaluations before training, after SFT and after GRPO, timings,
GRPO log history) and the completions of each evaluation as JSONL into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


#: The options that set a profile knob (the rest of the knobs: $COURSE_OVERRIDES).
OPTION_KNOBS = {
    "steps": "grpo.steps",
    "train_n": "data.n_train",
    "eval_n": "data.n_eval",
    "model": "model",
    "batch": "grpo.per_device_batch",
    "lr": "grpo.learning_rate",
    "max_completion": "grpo.max_completion_length",
    "sft_epochs": "warm_start.epochs",
    "save_steps": "grpo.save_steps",
}

#: What this script writes into --out (a folder it marked as its own): none of these may be a symbolic link.
OUT_OWN = ("results.json", "completions_base.jsonl", "completions_sft.jsonl", "completions_grpo.jsonl", "sft", "grpo")


def needs_base_model(args) -> bool:
    """The profile's model is used unless --base replaces it and its evaluation is skipped."""
    return not args.base or "base" not in args.skip_eval


def check_arguments(args):
    """Everything the user chose, checked before anything is created, loaded or trained; a bad
    choice raises ValueError / RuntimeError / OSError with one clear line."""
    from utils.train import preload_backend

    backend = preload_backend(args.backend)  # checks the backend; Unsloth first, before transformers/TRL load
    from accelerate import PartialState

    from utils.llm import choose_model, model_source, resolve_source
    from utils.llm.generation import requested_generation
    from utils.paths import claim_folder, output_dir
    from utils.profiles import get_profile
    from utils.rewards import load_reward_set
    from utils.rewards.checker import assert_reward_set_ok

    given = {option: getattr(args, option) for option in OPTION_KNOBS if getattr(args, option) is not None}
    try:  # every knob in its range (utils.profiles.RANGES): --profile, $COURSE_OVERRIDES and the options
        profile = get_profile(args.profile, {OPTION_KNOBS[option]: value for option, value in given.items()})
    except ValueError as exc:
        option = next((o for o in given if str(exc).startswith(OPTION_KNOBS[o] + "=")), None)
        raise ValueError(f"--{option.replace('_', '-')}: {exc}" if option else str(exc)) from None
    spec = choose_model(profile.model)  # an unknown $COURSE_MODEL too
    requested_generation("train", backend)  # a bad $COURSE_GENERATION fails now, not after the first evaluation
    if args.base:
        try:
            resolve_source(args.base)
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"--base: {exc}") from None
    funcs, weights, where = load_reward_set()
    assert_reward_set_ok(funcs, weights)  # a reward that crashes fails now, not after the warm start
    base = None
    if PartialState().is_main_process and needs_base_model(args):
        base = model_source(spec)  # the embedded model is converted once; a Hub model offline fails here
    out = claim_folder(args.out or output_dir() / "script_run", "training script's output", own=OUT_OWN)
    return profile, spec, base, funcs, weights, where, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: $COURSE_PROFILE or hardware)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=None, help="GRPO steps (default: the profile's)")
    ap.add_argument("--train-n", type=int, default=None, help="GRPO problems (beyond the 500 committed: generated)")
    ap.add_argument("--eval-n", type=int, default=None)
    ap.add_argument("--model", default=None, help="key of utils.llm.MODELS (default: the profile's)")
    ap.add_argument("--backend", default=None, help="auto | trl | unsloth")
    ap.add_argument("--no-sft", action="store_true", help="skip the warm-start")
    ap.add_argument("--base", default=None, help="start GRPO from this checkpoint (e.g. an earlier warm-start)")
    ap.add_argument("--skip-eval", action="append", default=[], choices=["base", "sft", "grpo"])
    ap.add_argument("--batch", type=int, default=None, help="completions per device step")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--max-completion", type=int, default=None)
    ap.add_argument("--sft-epochs", type=float, default=None)
    ap.add_argument("--save-steps", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        checked = check_arguments(args)
    except (ValueError, RuntimeError, OSError) as exc:  # what the user typed (or set): one line, no traceback
        print(f"{Path(__file__).name}: error: {exc}", file=sys.stderr)
        return 2
    profile, spec, base, funcs, weights, where, out = checked
    from utils.profiles import profile_warning, use_torch_threads

    if warning := profile_warning(profile):  # the notebooks' setup cell says the same
        print(warning)
    if threads := use_torch_threads(profile):  # the same thread count as the notebooks
        print(f"CPU: {threads}")

    from accelerate import PartialState

    from utils.evaluate import evaluate, save_completions
    from utils.llm import model_source
    from utils.task import load_problems, training_problems
    from utils.train import run_sft, train_grpo

    state = PartialState()
    data = profile.data  # the notebooks' problems: 05's training ones (committed first, then generated), 06's test
    train_rows = load_problems("train", limit=data.n_train, max_events=data.max_events, style=data.train_style)
    test_rows = load_problems("test", limit=data.n_eval, max_events=data.max_events)
    results: dict = {
        "profile": dataclasses.asdict(profile),
        "model": spec.key,
        "processes": state.num_processes,
        "evaluations": {},
        "seconds": {},
    }

    def save() -> None:  # after every stage, so an interrupted run still leaves its figures
        if state.is_main_process:
            (out / "results.json").write_text(json.dumps(results, indent=1, default=str))

    def record_eval(stage: str, source: str, adapter=None) -> None:
        if stage in args.skip_eval or not state.is_main_process:
            return
        from utils.llm import model_completions

        texts, secs, path = model_completions(
            source,
            test_rows,
            adapter=adapter,
            desc=f"eval {stage}",
            max_new_tokens=profile.eval.max_new_tokens,
            batch_size=profile.eval.batch_size,
        )
        save_completions(out / f"completions_{stage}.jsonl", texts, extra={"stage": stage})
        summary = evaluate(test_rows, texts).as_dict()
        results["evaluations"][stage] = summary
        results["seconds"][f"eval_{stage}"] = round(secs, 1)
        results["eval_generation"] = path
        print(f"[{stage}] {summary}  ({secs:.0f} s)", flush=True)
        save()

    state.wait_for_everyone()  # the main process converted the embedded model: the others read it now
    if not state.is_main_process and needs_base_model(args):
        base = model_source(spec)
    record_eval("base", base)
    state.wait_for_everyone()

    policy_base = args.base or base
    if spec.warm_start and not args.no_sft and not args.base:
        t0 = time.perf_counter()
        warm = profile.warm_start
        sft_rows = training_problems(warm.n_problems, warm.style, max_events=data.max_events)  # as notebook 05's
        policy_base = str(run_sft(base, sft_rows, profile, out / "sft"))
        results["seconds"]["sft"] = round(time.perf_counter() - t0, 1)
        save()
        state.wait_for_everyone()
        record_eval("sft", policy_base)
        state.wait_for_everyone()

    print(f"rewards: {[f.__name__ for f in funcs]}, weights {weights}, from {where}")
    result = train_grpo(
        train_rows, funcs, profile, base=policy_base, reward_weights=weights, backend=args.backend, out_dir=out / "grpo"
    )
    results["seconds"]["grpo"] = round(result.seconds, 1)
    results["grpo"] = {
        "steps": result.global_step,
        "backend": result.backend,
        "generation": result.generation,
        "seconds_per_step": round(result.seconds / max(1, result.global_step), 2),
    }
    results["log_history"] = result.log_history
    state.wait_for_everyone()
    record_eval("grpo", policy_base, adapter=result.adapter_dir)
    save()
    if state.is_main_process:
        print(json.dumps({k: results[k] for k in ("evaluations", "seconds", "grpo")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
