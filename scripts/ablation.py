"""The recipe experiments: warm start, GRPO, evaluation on both test sets, paired statistics.

Each row of ``experiments/ablation.json`` is one real run; this script runs rows and writes one
results file per row (settings, command, versions, hardware, evaluations, paired comparisons,
the GRPO log) plus the completions of every evaluated model::

    python scripts/ablation.py --rows sft_strong,grpo_strong --out outputs/ablation   # one GPU, in turn
    python scripts/ablation.py --rows all --gpus 0,1,2,3 --out outputs/ablation        # one row per GPU

``--out`` is a new or empty folder, or one this script made (it marks it): a folder holding other files (the
committed ``results/ablation``, say) is refused, never written into; ``scripts/commit_rows.py`` copies finished
rows there.

A warm start (and its evaluation) is cached by its settings under ``--cache``: rows that share
one train it once. Rows on several GPUs run as separate processes (``CUDA_VISIBLE_DEVICES``).
``--warm-eval-beside`` evaluates a GRPO row's warm start in a second process while GRPO trains, and the GRPO
model's two test sets at once (a 135M model leaves the GPU mostly idle): the same greedy answers, about two and a
half minutes less of a row on an H200 (estimated from the recipe row's times; not yet run on a GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ROWS_FILE = ROOT / "experiments" / "ablation.json"
EVAL_SETS = ("test", "test_other_style")


#: What a row may say (the rows file's "about" explains each); anything else is a typo that would run silently.
ROW_KEYS = {"name", "what", "overrides", "rewards", "weights", "grpo_config", "no_sft", "grpo"}


def load_rows(path: Path = ROWS_FILE) -> dict[str, dict]:
    """The rows by name, each checked before anything runs: known keys, a profile its overrides build,
    rewards that exist with one weight each."""
    from utils.profiles import get_profile
    from utils.rewards import get_reward

    data = json.loads(path.read_text())
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f'{path}: expected {{"rows": [{{"name": ..., ...}}, ...]}}, a non-empty list of rows')
    names = [r.get("name") for r in rows]
    if len(set(map(str, names))) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{path}: every row needs a name of its own (a string); got {names}")
    for r in rows:
        where = f"{path.name}, row {r['name']!r}"
        if extra := set(r) - ROW_KEYS:
            raise ValueError(f"{where}: unknown keys {sorted(extra)} (a row may have {sorted(ROW_KEYS)})")
        try:
            get_profile("gpu", r.get("overrides", {}))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        for name in r.get("rewards", []):
            get_reward(name)  # raises with the known names
        if not all(isinstance(r.get(k, []), list) for k in ("rewards", "weights")):
            raise ValueError(f"{where}: rewards and weights are lists")
        if "weights" in r and len(r["weights"]) != len(r.get("rewards", [])):
            raise ValueError(f"{where}: {len(r['weights'])} weights for {len(r.get('rewards', []))} rewards")
    return dict(zip(names, rows))


@contextmanager
def locked(path: Path):
    """An exclusive lock file: two rows needing the same warm start train it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def versions() -> dict[str, str]:
    from utils.env import package_versions

    return {k: v for k, v in package_versions(("torch", "transformers", "trl", "peft", "datasets")).items()}


def hardware() -> str:
    from utils.env import hardware as hw

    return f"{hw()}; {os.cpu_count()} CPU cores; {platform.platform()}"


def evaluate_model(source: str, adapter, sets, profile, out: Path, label: str) -> dict:
    """Greedy completions on each test set, saved, evaluated; returns {set: summary dict + timing}."""
    from utils.evaluate import evaluate, save_completions
    from utils.llm import model_completions
    from utils.task import load_split

    results = {}
    for name in sets:
        rows = load_split(name, profile.data.n_eval)
        texts, seconds, path = model_completions(
            source,
            rows,
            adapter=adapter,
            max_new_tokens=profile.eval.max_new_tokens,
            batch_size=profile.eval.batch_size,
            desc=f"{label} on {name}",
        )
        save_completions(out / f"completions_{label}_{name}.jsonl", texts, extra={"model": label, "set": name})
        summary = evaluate(rows, texts)
        results[name] = {**summary.as_dict(), "seconds": round(seconds, 1), "generation": path}
        print(f"[{label} / {name}] valid {summary.valid} mean {summary.mean_score:.2f} ({seconds:.0f} s)", flush=True)
    return results


def comparisons(out: Path, before: str, after: str, sets) -> dict:
    """Paired comparison (McNemar + bootstrap) of two evaluated models, per test set."""
    from utils.evaluate import compare, evaluate, load_completions
    from utils.task import load_split

    found = {}
    for name in sets:
        files = [out / f"completions_{label}_{name}.jsonl" for label in (before, after)]
        if not all(f.exists() for f in files):
            continue
        a, b = (load_completions(f) for f in files)
        rows = load_split(name, len(a))
        c = compare(evaluate(rows, a), evaluate(rows, b), before, after)
        found[name] = dataclasses.asdict(c)
        print(c, flush=True)
    return found


def warm_start_key(model_key: str, profile) -> tuple[dict, str]:
    """What a cached warm start depends on (the model, the seed, every warm_start knob) and its short hash:
    rows that agree on all of them share one warm start; each seed gets its own."""
    key_data = {"model": model_key, "seed": profile.seed, **dataclasses.asdict(profile.warm_start)}
    return key_data, hashlib.sha1(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:10]


def warm_start(row: dict, profile, cache: Path, out: Path, sets, evaluate: bool = True) -> tuple[str, dict | None]:
    """The row's warm-started checkpoint (trained once per settings) and its evaluation (cached too).

    ``evaluate=False``: the checkpoint only (trained or reused), and ``None`` for the evaluation: a later call
    evaluates, or finds what another process (``--warm-start-eval``) evaluated meanwhile under the same lock."""
    from utils.llm import choose_model, model_source
    from utils.task import training_problems
    from utils.train import run_sft
    from utils.train.warmstart import SFT_SETTINGS

    spec = choose_model(profile.model)
    base = model_source(spec)
    if row.get("no_sft"):
        return base, None
    key_data, key = warm_start_key(spec.key, profile)
    folder = cache / f"sft-{key}"
    with locked(cache / f"sft-{key}.lock"):
        t0, started = time.perf_counter(), time.time()
        rows = training_problems(profile.warm_start.n_problems, profile.warm_start.style)
        checkpoint = run_sft(base, rows, profile, folder / "sft")  # run_sft owns that folder; the rest is ours
        record = folder / "sft" / SFT_SETTINGS  # written last by a warm start that trained: newer than `started`
        if not (folder / "settings.json").exists() or record.stat().st_mtime >= started:  # a reuse keeps the time
            (folder / "settings.json").write_text(json.dumps({**key_data, "seconds": time.perf_counter() - t0}))
        if not evaluate:
            return str(checkpoint), None
        evals = {}
        for name in sets:  # the warm start's completions, once per setting
            cached = folder / f"completions_sft_{name}.jsonl"
            if not cached.exists():
                evaluate_model(str(checkpoint), None, [name], profile, folder, "sft")
            evals[name] = cached
    for cached in evals.values():  # every row carries its own copy of what it compares against
        (out / cached.name).write_text(cached.read_text())
    from utils.evaluate import evaluate, load_completions
    from utils.task import load_split

    summary = {}
    for name, cached in evals.items():
        texts = load_completions(cached)
        summary[name] = evaluate(load_split(name, len(texts)), texts).as_dict()
    sft_info = json.loads((folder / "settings.json").read_text())
    return str(checkpoint), {"evaluations": summary, "settings": sft_info, "checkpoint": str(checkpoint)}


def limit_gpu_memory(fraction: float | None) -> None:
    """Cap this process at ``fraction`` of the GPU (torch frees its cached blocks before it fails), so that
    two rows can share one card: beside another row on an 80 GB H100, a row ran out of memory while its
    neighbour's allocator held 70.6 GiB (2026-12-06)."""
    if fraction is None:
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction)


def grpo_extra(row: dict, checkpointing: bool) -> dict | None:
    """The row's extra GRPOConfig settings, with gradient checkpointing when asked (a resource setting)."""
    extra = {**(row.get("grpo_config") or {}), **({"gradient_checkpointing": True} if checkpointing else {})}
    return extra or None


def resource_flags(
    checkpointing: bool, memory_fraction: float | None, compile_step: bool, eval_beside: bool = False
) -> list[str]:
    """The command-line flags of a run's resource settings (not part of its row): what a row's process is started
    with (:func:`schedule`) and what its results file records (:func:`run_command`)."""
    return [
        *(["--memory-fraction", str(memory_fraction)] if memory_fraction is not None else []),
        *(["--gradient-checkpointing"] if checkpointing else []),
        *(["--compile-step"] if compile_step else []),
        *(["--warm-eval-beside"] if eval_beside else []),
    ]


def run_command(
    name: str,
    out_root: Path,
    checkpointing: bool = False,
    memory_fraction: float | None = None,
    eval_beside: bool = False,
) -> str:
    """The command that runs one row as this process does, resource flags included (the results file's
    ``command``: rows run side by side under a memory cap are reproduced under the same cap).

    >>> run_command("r", Path("out"), checkpointing=True, memory_fraction=0.48)
    'python scripts/ablation.py --rows r --out out --memory-fraction 0.48 --gradient-checkpointing'
    """
    from utils.train.fast_rollouts import ROLLOUT_COMPILE_ENV

    compile_step = os.environ.get(ROLLOUT_COMPILE_ENV) == "step"
    flags = resource_flags(checkpointing, memory_fraction, compile_step, eval_beside)
    return " ".join([f"python scripts/ablation.py --rows {name} --out {out_root}", *flags])


def self_command(name: str, rows_file: Path, out_root: Path, cache: Path, sets) -> list[str]:
    """This script on one row, as a separate process (:func:`schedule`'s rows, :func:`start_beside`'s helpers):
    the caller adds its flags."""
    where = ["--rows-file", str(rows_file), "--out", str(out_root), "--cache", str(cache), "--sets", ",".join(sets)]
    return [sys.executable, __file__, "--rows", name, *where]


#: What the second process of GRPO's evaluation beside it writes (its sets' summaries), in the row's folder.
BESIDE_EVALUATIONS = "evaluations_grpo_beside.json"


def start_beside(
    row: dict, out_root: Path, cache: Path, sets, memory_fraction: float | None, task: list[str], log_name: str
):
    """A second process of this script on ``row`` (written beside the cache as a rows file of its own, so the
    row's settings travel exactly), doing ``task`` (``--warm-start-eval``, or ``--evaluate-grpo CKPT ADAPTER``)
    on ``sets`` while this one goes on; its log is ``<out_root>/<row>/<log_name>``."""
    rows_file = cache / f"row-{row['name']}.json"
    cache.mkdir(parents=True, exist_ok=True)
    rows_file.write_text(json.dumps({"rows": [row]}, indent=1))
    cmd = [
        *self_command(row["name"], rows_file, out_root, cache, sets),
        *task,
        *resource_flags(False, memory_fraction, False),
    ]
    log = open(out_root / row["name"] / log_name, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.close()  # the child holds its own handle
    print(f"{' '.join(task[:1])} on {','.join(sets)} runs beside (pid {proc.pid}, log {log.name})", flush=True)
    return proc


def stop_beside(proc, grace: float = 60) -> None:
    """Ends a second process (if still running) when the row that started it fails."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()


def evaluate_grpo_beside(
    base: str, adapter, sets, profile, out: Path, row: dict, cache: Path, memory_fraction: float | None
) -> dict:
    """:func:`evaluate_model` of the GRPO model with its sets shared: the first here, the others in a second
    process at the same time (the GPU has room for both); what that process fails to evaluate is evaluated here."""
    if len(sets) < 2:
        return evaluate_model(base, adapter, sets, profile, out, "grpo")
    (out / BESIDE_EVALUATIONS).unlink(missing_ok=True)  # never an older run's
    task = ["--evaluate-grpo", str(base), str(adapter)]
    other = start_beside(row, out.parent, cache, sets[1:], memory_fraction, task, "grpo_eval.log")
    try:
        results = evaluate_model(base, adapter, sets[:1], profile, out, "grpo")
    except BaseException:
        stop_beside(other)  # nothing left writing into the row's folder after the row failed
        raise
    rc = other.wait()
    if rc == 0 and (out / BESIDE_EVALUATIONS).exists():
        results.update(json.loads((out / BESIDE_EVALUATIONS).read_text()))
    if missing := [name for name in sets if name not in results]:
        print(f"GRPO's evaluation beside failed (rc={rc}) on {missing}: evaluating them here", flush=True)
        results.update(evaluate_model(base, adapter, missing, profile, out, "grpo"))
    return {name: results[name] for name in sets}


def run_row(
    row: dict,
    out_root: Path,
    cache: Path,
    sets,
    checkpointing: bool = False,
    memory_fraction: float | None = None,
    eval_beside: bool = False,
) -> dict:
    """Warm start (cached), GRPO, evaluations and paired comparisons of one row, into ``out_root``.

    ``checkpointing``: GRPO recomputes activations in the backward pass instead of keeping them (the same
    gradients, about a quarter more time; a row beside another on one 80 GB card needs it: kept, a strong row's
    activations and logits are estimated at about 40 GiB). ``memory_fraction``: the cap this process runs under
    (:func:`limit_gpu_memory`). ``eval_beside``: a GRPO row's warm start is evaluated by a second process while
    GRPO trains, and the GRPO model's test sets by two at once (:func:`start_beside`,
    :func:`evaluate_grpo_beside`; what a second process fails to evaluate, this one evaluates afterwards). All three
    are recorded in the results file, not part of the row."""
    from utils.env import gpu_peak_memory
    from utils.profiles import get_profile
    from utils.rewards import SEED_REWARDS, default_reward_funcs, get_reward
    from utils.task import load_problems
    from utils.train import train_grpo
    from utils.train.callbacks import StepTimer
    from utils.train.fast_rollouts import ROLLOUT_COMPILE_ENV

    out = out_root / row["name"]
    out.mkdir(parents=True, exist_ok=True)
    profile = get_profile("gpu", row.get("overrides", {}))
    result = {
        "row": row,
        "command": run_command(row["name"], out_root, checkpointing, memory_fraction, eval_beside),
        "profile": dataclasses.asdict(profile),
        "versions": versions(),
        "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d"),
        "gradient_checkpointing": checkpointing,
        "memory_fraction": memory_fraction,
        "warm_eval_beside": eval_beside,
        "rollout_compile": os.environ.get(ROLLOUT_COMPILE_ENV) or "none",
    }

    def save() -> None:
        (out_root / f"{row['name']}.json").write_text(json.dumps(result, indent=1, default=str))

    t0 = time.perf_counter()
    grpo = row.get("grpo", True) and profile.grpo.steps > 0
    beside = eval_beside and grpo and not row.get("no_sft")
    base, sft = warm_start(row, profile, cache, out, sets, evaluate=not beside)
    evaluating = None
    if beside:
        evaluating = start_beside(
            row, out_root, cache, sets, memory_fraction, ["--warm-start-eval"], "warm_start_eval.log"
        )
    result["warm_start"] = sft
    save()
    try:
        if grpo:
            if row.get("rewards"):
                funcs = [get_reward(name) for name in row["rewards"]]
                weights = [float(w) for w in row.get("weights", [1.0] * len(funcs))]
            else:
                funcs, weights = default_reward_funcs(SEED_REWARDS), [1.0, 1.0, 1.0]  # the committed rows' set
            timer = StepTimer()
            trained = train_grpo(
                load_problems(  # notebook 05's and scripts/train_grpo.py's: committed first, then generated
                    "train",
                    limit=profile.data.n_train,
                    max_events=profile.data.max_events,
                    style=profile.data.train_style,
                ),
                funcs,
                profile,
                base=base,
                reward_weights=weights,
                backend="trl",
                out_dir=out / "grpo",
                callbacks=[timer],
                extra_config=grpo_extra(row, checkpointing),
                resume=False,
            )
            result["grpo"] = {
                "peak_memory": gpu_peak_memory(),  # what a second row beside this one would have to fit next to
                "steps": trained.global_step,
                "seconds": round(trained.seconds, 1),
                "generation": trained.generation,
                "step_seconds": timer.seconds,
                "rewards": [f.__name__ for f in funcs],
                "weights": weights,
                "log_history": trained.log_history,
            }
            save()
            if eval_beside:
                result["evaluations"] = evaluate_grpo_beside(
                    base, trained.adapter_dir, sets, profile, out, row, cache, memory_fraction
                )
            else:
                result["evaluations"] = evaluate_model(base, trained.adapter_dir, sets, profile, out, "grpo")
            if evaluating is not None:
                if rc := evaluating.wait():  # what it evaluated is cached; the rest is evaluated here, now
                    print(f"The warm start's evaluation beside GRPO failed (rc={rc}): evaluating it here", flush=True)
                _, sft = warm_start(row, profile, cache, out, sets)
                result["warm_start"] = sft
            if sft is not None:
                result["compare_sft_grpo"] = comparisons(out, "sft", "grpo", sets)
    except BaseException:
        stop_beside(evaluating)  # a failed row leaves nothing running on the GPU under the lane's next row
        raise
    result["seconds"] = round(time.perf_counter() - t0, 1)
    save()
    return result


def schedule(names: list[str], gpus: list[str], args) -> int:
    """Run rows as separate processes, one per slot of ``gpus`` at a time; returns the number that failed.

    A GPU named twice (``--gpus 0,0``) runs two rows side by side on it (an H200 holds two rows)."""
    pending, running, failed = list(names), {}, 0
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    while pending or running:
        for slot, gpu in enumerate(gpus):
            if slot not in running and pending:
                name = pending.pop(0)
                cmd = [
                    *self_command(name, args.rows_file, args.out, args.cache, args.sets),
                    *resource_flags(
                        args.gradient_checkpointing, args.memory_fraction, args.compile_step, args.warm_eval_beside
                    ),
                ]
                env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu, "PYTHONUNBUFFERED": "1"}
                log = open(log_dir / f"{name}.log", "w")
                running[slot] = (name, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log)
                print(f"{time.strftime('%H:%M:%S')} GPU {gpu}: {name}", flush=True)
        time.sleep(5)
        for slot, (name, proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                failed += proc.returncode != 0
                print(
                    f"{time.strftime('%H:%M:%S')} GPU {gpus[slot]}: {name} finished, rc={proc.returncode}", flush=True
                )
                del running[slot]
    return failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", required=True, help="comma-separated row names of the rows file, or 'all'")
    ap.add_argument("--rows-file", type=Path, default=ROWS_FILE)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=None, help="warm starts shared by rows (default: OUT/cache)")
    ap.add_argument("--gpus", default=None, help="e.g. 0,1,2,3: rows in parallel, one per GPU; 0,0: two on GPU 0")
    ap.add_argument("--sets", default=",".join(EVAL_SETS), help="test sets to evaluate on")
    ap.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in GRPO's backward (same gradients, less memory: two rows on one card)",
    )
    ap.add_argument(
        "--memory-fraction", type=float, default=None, help="cap each row at this share of its GPU (two rows: 0.48)"
    )
    ap.add_argument(
        "--compile-step",
        action="store_true",
        help="compile the rollout copy's whole decoding step ($COURSE_ROLLOUT_COMPILE=step: the same tokens; measured "
        "x6.6 slower than the graph engine on an H200, 2026-12-07: an experiment, not a speed-up; recorded in the "
        "results file)",
    )
    ap.add_argument(
        "--warm-eval-beside",
        action="store_true",
        help="evaluate a GRPO row's warm start in a second process while GRPO trains, and its GRPO model's test "
        "sets two at once (the same answers, sooner; recorded in the results file)",
    )
    ap.add_argument(
        "--evaluate-grpo",
        nargs=2,
        metavar=("CHECKPOINT", "ADAPTER"),
        help=f"only evaluate this GRPO model of the row on --sets, into OUT/ROW/{BESIDE_EVALUATIONS}: what "
        "--warm-eval-beside starts",
    )
    ap.add_argument(
        "--warm-start-eval",
        action="store_true",
        help="only train (or reuse) and evaluate the rows' warm starts into --cache, no results file: what "
        "--warm-eval-beside starts",
    )
    args = ap.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    args.cache = args.cache or args.out / "cache"
    try:
        rows = load_rows(args.rows_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a missing file, bad JSON, a row that would not run
        why = str(exc) if str(args.rows_file) in str(exc) else f"{args.rows_file}: {exc}"  # name the file once
        print(f"error: {why}", file=sys.stderr)
        return 2
    if args.memory_fraction is not None and not 0 < args.memory_fraction <= 1:
        print(f"error: --memory-fraction {args.memory_fraction} is out of range (above 0, up to 1)", file=sys.stderr)
        return 2
    names = list(rows) if args.rows == "all" else args.rows.split(",")
    unknown = [n for n in names if n not in rows]
    if unknown:
        print(f"error: unknown rows {unknown}; the rows file has {list(rows)}", file=sys.stderr)
        return 2
    from utils.paths import FolderNotOurs, claim_folder
    from utils.profiles import has_cuda

    try:  # a folder of someone else's files (the committed results/ablation, say) is never written into
        claim_folder(args.out, "ablation results")
    except FolderNotOurs as exc:
        print(f"error: --out: {exc}", file=sys.stderr)
        return 2
    if not has_cuda():
        print(
            "Warning: no CUDA GPU here: every row is the gpu profile's (a warm start of thousands of problems, 150 "
            "GRPO steps of 64 answers), many hours of CPU time each"
        )
    if args.gpus:
        return 1 if schedule(names, args.gpus.split(","), args) else 0
    if args.compile_step:  # read by the rollout hook (utils.train.fast_rollouts.rollout_compile_from_env)
        from utils.train.fast_rollouts import ROLLOUT_COMPILE_ENV

        os.environ[ROLLOUT_COMPILE_ENV] = "step"
    limit_gpu_memory(args.memory_fraction)
    if args.warm_start_eval or args.evaluate_grpo:
        from utils.profiles import get_profile

        for name in names:
            row = rows[name]
            profile = get_profile("gpu", row.get("overrides", {}))
            (args.out / name).mkdir(parents=True, exist_ok=True)
            if args.evaluate_grpo:
                base, adapter = args.evaluate_grpo
                done = evaluate_model(base, adapter, args.sets, profile, args.out / name, "grpo")
                (args.out / name / BESIDE_EVALUATIONS).write_text(json.dumps(done, indent=1))
            else:
                warm_start(row, profile, args.cache, args.out / name, args.sets)
        return 0
    for name in names:
        run_row(
            rows[name],
            args.out,
            args.cache,
            args.sets,
            args.gradient_checkpointing,
            args.memory_fraction,
            args.warm_eval_beside,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
