"""Peak GPU memory of GRPO training and evaluation for each model of the table (``utils/llm/models.py``).

The model table promises which GPU each model fits. This script measures it: for each model key it
builds a model of the **published shape** (layers, widths, heads, vocabulary: ``SHAPES`` below, from
each model's ``config.json`` on the Hugging Face Hub) with random weights, because the lent GPU machine
cannot download the real ones, saves it, and runs a few GRPO steps of a profile's settings through the
course's own ``build_trainer`` (the backend's loading: 4-bit where Unsloth uses it, LoRA rank, the
completion budget, batch and group size, the loss's micro-batches, gradient checkpointing), then one evaluation
batch. (With all 64 answers of a step in one pass, every Qwen model ran out of memory on an 80 GB H100:
``results/memory_h100_2026-12-06.json``.)

Random weights never write the end-of-sequence token, so every completion runs to the full budget: the
worst case for memory, which a trained model reaches only when it rambles. Prompts are tokenised with the
course tokenizer (SmolLM2's); Qwen's own tokenizer makes them a little shorter. Peak figures are
``torch.cuda.max_memory_reserved`` (what the allocator holds, the figure that runs out) and
``max_memory_allocated``; fp16 (a T4) takes the same memory as bf16.

Each model runs in its own process under a time limit (``--timeout``). The process reports each phase as it
ends (``PROGRESS`` lines: the model built, loaded, each GRPO step, the evaluation) with its time and peak memory,
so a run that is cut off still records how far it got and what it held (``"failed": "timed out after N s"``,
``"partial"``), and the JSON file is rewritten after every model.

Usage (on a GPU; one model per process keeps the peaks apart)::

    python scripts/measure_memory.py --models all --backend unsloth --json results/memory_h200.json
    python scripts/measure_memory.py --models qwen2.5-0.5b,qwen2.5-1.5b --backend trl --steps 2

On a CPU, ``--models tiny`` checks the script itself in seconds (no memory figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIB = 2**30

#: Memory of the GPUs the course names, as ``nvidia-smi`` reports it (MiB; NVIDIA's data sheets: T4 16 GB,
#: L4 24 GB, A100 40 GB; the first two keep part for ECC). Colab's T4 shows 15,360 MiB. The 80 GB cards: the lent
#: H100's 81,559 MiB (an A100 80GB shows 81,920): on that H100 the cap is the whole card (torch sees 79.2 GiB).
CARDS_MIB: dict[str, int] = {"T4": 15360, "L4": 23034, "A100 40GB": 40960, "80GB": 81559}
#: What one process holds outside torch's allocator (CUDA context, cuBLAS workspaces): 0.83 GiB measured on an H100.
#: More than this on the card means other processes share it, and a card cap would come out wrong.
CONTEXT_MAX_GIB = 2.0

#: Published shapes (config.json of each Hub model, read 2026-11; the Qwen2.5 model cards list the same
#: layers and heads). ``family`` picks the transformers config class.
SHAPES: dict[str, dict] = {
    "qwen2.5-0.5b": dict(
        family="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
    ),
    "qwen2.5-1.5b": dict(
        family="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
    ),
    "qwen2.5-3b": dict(
        family="qwen2", hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
    ),
    "qwen2.5-coder-7b": dict(
        family="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
    ),
    # A two-layer toy for checking this script on a CPU (not a model of the table).
    "tiny": dict(
        family="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True,
    ),
}  # fmt: skip


def random_checkpoint(key: str, folder: Path, tokenizer) -> Path:
    """A model of ``key``'s shape with random weights (bf16), saved with the course tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if key == "smollm2-135m":  # the embedded model's own weights and config: its real shape
        from utils.llm.models import embedded_checkpoint

        return embedded_checkpoint(verbose=False)
    shape = dict(SHAPES[key])
    family = shape.pop("family")
    config_class = Qwen2Config if family == "qwen2" else LlamaConfig
    config = config_class(
        **shape,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    # Built on the GPU where there is one: initialising 7.6B parameters takes minutes on a few CPU cores. The
    # caller resets the peak counters after this, so the build does not count.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return folder


def scratch_dir(need_gib: float = 40.0) -> str | None:
    """Where the random checkpoint is written: ``/dev/shm`` (memory, fast) when it has room for the largest model
    (15 GB of bf16 weights for the 7B), else the system's temporary folder."""
    try:
        return "/dev/shm" if shutil.disk_usage("/dev/shm").free >= need_gib * GIB else None
    except OSError:
        return None


def progress(phase: str, started: float, **fields) -> None:
    """One ``PROGRESS`` line on stdout (the parent keeps the last one of a run that is cut off), with the card's
    free memory: run beside other jobs, an "out of memory" is the model's only if the card was free enough."""
    import torch

    from utils.env import gpu_peak_memory

    free = {"card_free_gib": round(torch.cuda.mem_get_info()[0] / GIB, 1)} if torch.cuda.is_available() else {}
    record = {"phase": phase, "seconds": round(time.perf_counter() - started, 1), **gpu_peak_memory(), **free}
    print("PROGRESS " + json.dumps({**record, **fields}), flush=True)


def outside_torch_bytes() -> int:
    """GPU memory in use that torch's allocator of this process does not hold: its CUDA context and workspaces,
    read from the whole card, so other processes on it count too."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return total - free - torch.cuda.memory_reserved()


def cap_memory(card_mib: int) -> float:
    """Lets torch's allocator use only what a card of ``card_mib`` MiB would leave it (its memory less what this
    process already holds outside torch, the CUDA context): a run that finishes under the cap fits that card, one
    that runs out of memory does not. Peaks measured on a big card overstate the need (the allocator keeps freed
    blocks while it has room: 75.7 GiB reserved for 44.0 allocated). Returns the cap in GiB."""
    import torch

    outside = outside_torch_bytes()
    if outside > CONTEXT_MAX_GIB * GIB:
        # Three capped runs side by side on one H100 (2026-12-07) got caps of 3.1, 6.6 and 10.2 GiB for a T4's 15 GB
        # and all "ran out of memory": the others' memory was taken for this process's context.
        raise RuntimeError(
            f"a card cap needs the GPU to itself: {outside / GIB:.1f} GiB is held outside this process's allocator "
            f"(other processes?); run the models one at a time"
        )
    total = torch.cuda.mem_get_info()[1]
    cap = min(card_mib * 2**20 - outside, total)  # a card as large as this one: all of it
    torch.cuda.set_per_process_memory_fraction(max(cap, 0) / total)
    return round(cap / GIB, 2)


def measure_one(
    key: str,
    backend: str,
    profile_name: str,
    steps: int,
    work: Path,
    eval_rows: int,
    tokenizer_dir: str | None = None,
    card: str | None = None,
) -> dict:
    """GRPO steps then one evaluation batch for one model key; peak memory of each phase (within ``card``'s
    memory when one is named)."""
    import torch
    from transformers import TrainerCallback

    from utils.env import gpu_peak_memory
    from utils.llm.generation import generate_completions
    from utils.llm.models import embedded_checkpoint, load_tokenizer
    from utils.profiles import get_profile
    from utils.rewards import default_reward_funcs
    from utils.task.data import load_split
    from utils.train.trainer import build_trainer

    cuda = torch.cuda.is_available()
    profile = get_profile(profile_name)
    started = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_dir or str(embedded_checkpoint(verbose=False)))
    t0 = time.perf_counter()
    source = random_checkpoint(key, work / "model", tokenizer)
    built_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # building the random weights is not part of what a learner runs
    cap = {"cap_gib": cap_memory(CARDS_MIB[card])} if card and cuda else {}  # the parent records the card
    progress("built", started, **cap)

    peak = gpu_peak_memory
    per_step: list[dict] = []

    class Peaks(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            per_step.append({"step": state.global_step, **peak()})
            progress(f"grpo step {state.global_step}", started)

    rows = load_split("train", max(profile.grpo.per_device_batch, 8))
    setup = build_trainer(
        rows,
        default_reward_funcs(),
        profile,
        base=str(source),
        backend=backend,
        out_dir=work / "grpo",
        max_steps=steps,
        model_key="smollm2-135m" if key == "tiny" else key,
        callbacks=[Peaks()],
    )
    loaded = peak()
    progress("loaded", started, generation=setup.generation)
    t1 = time.perf_counter()
    setup.trainer.train()
    train_s = time.perf_counter() - t1
    result = {
        "model": key,
        "shape": SHAPES.get(key, "the embedded checkpoint's config"),
        "backend": setup.backend,
        "generation": setup.generation,
        # answers per pass of the loss (utils.train.config.loss_micro_batch: shrinks to the card on the TRL backend)
        "loss_micro_batch": setup.trainer.args.per_device_train_batch_size,
        "after_loading": loaded,
        "grpo_steps": per_step,
        "grpo_peak": peak(),
        "grpo_seconds": round(train_s, 1),
        "build_seconds": round(built_s, 1),
        **cap,
    }
    # One evaluation batch of the profile's size, on the trained policy, as notebook 06 generates.
    model = setup.trainer.model
    model.eval()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    test = load_split("test", min(eval_rows, profile.eval.batch_size))
    progress("evaluating", started, grpo_peak=result["grpo_peak"])
    t2 = time.perf_counter()
    generate_completions(
        model, setup.tokenizer, test, max_new_tokens=profile.eval.max_new_tokens, batch_size=profile.eval.batch_size
    )
    result.update(eval_rows=len(test), eval_peak=peak(), eval_seconds=round(time.perf_counter() - t2, 1))
    if cuda:  # what the process holds beyond torch's allocator (CUDA context, cuBLAS workspaces): the card needs it too
        outside = outside_torch_bytes()
        if outside <= CONTEXT_MAX_GIB * GIB:
            result["outside_torch_gib"] = round(outside / GIB, 2)
        else:  # read from the whole card: other processes' memory would be counted as this run's context
            result["card_shared"] = round(outside / GIB, 1)
    return result


def fits(record: dict, cards: dict[str, int] = CARDS_MIB) -> dict[str, bool | None]:
    """Which cards hold a measured run. Run within a card's memory (``--card``): finished, it fits that card and
    every larger one; out of memory, it fits neither that card nor a smaller one. Otherwise: the larger of its GRPO
    and evaluation peaks (reserved by torch, an upper bound) plus what the process held outside torch, against
    each card's memory. None where nothing was measured, or where other processes shared the card
    (``card_shared``: GiB held outside this process's allocator), since what this run itself needs is then unknown.

    >>> fits(  # 14.9 + 0.6 GiB = 15,872 MiB: more than a T4's 15,360
    ...     {"grpo_peak": {"reserved_gib": 14.9}, "eval_peak": {"reserved_gib": 9.0}, "outside_torch_gib": 0.6})
    {'T4': False, 'L4': True, 'A100 40GB': True, '80GB': True}
    >>> fits({"card": "L4", "grpo_peak": {"reserved_gib": 20.1}, "eval_peak": {"reserved_gib": 9.0}})
    {'T4': None, 'L4': True, 'A100 40GB': True, '80GB': True}
    >>> fits({"card": "L4", "failed": "out of memory"})
    {'T4': False, 'L4': False, 'A100 40GB': None, '80GB': None}
    >>> fits({"grpo_peak": {"reserved_gib": 5.0}, "eval_peak": {"reserved_gib": 4.0}, "card_shared": 30.2})
    {'T4': None, 'L4': None, 'A100 40GB': None, '80GB': None}
    """
    if record.get("card") in cards:
        limit = cards[record["card"]]
        if "failed" not in record:
            return {card: True if mib >= limit else None for card, mib in cards.items()}
        if record["failed"] == "out of memory":
            return {card: False if mib <= limit else None for card, mib in cards.items()}
        return dict.fromkeys(cards)
    peaks = [record.get(k, {}).get("reserved_gib") for k in ("grpo_peak", "eval_peak")]
    if record.get("failed") or record.get("card_shared") or None in peaks:
        return dict.fromkeys(cards)
    need = max(peaks) + record.get("outside_torch_gib", 0.0)
    return {card: need * 1024 <= mib for card, mib in cards.items()}


def records_of(data: list | dict) -> list[dict]:
    """The records of a ``--json`` file (a list), or of a committed results file (``{"runs": [{"records": [...]},
    ...], ...}``: the records with the command, versions and hardware around them).

    >>> records_of([{"model": "a"}]) == records_of({"runs": [{"records": [{"model": "a"}]}]}) == [{"model": "a"}]
    True
    """
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return [r for run in data["runs"] for r in run.get("records", [])]
    raise ValueError("not a memory file: expected a list of records or a results file with 'runs'")


def _where(phase: str) -> str:
    """Where a run stopped, from the last phase it reported (a phase is reported when it ends; ``evaluating``
    when the evaluation starts).

    >>> [_where(p) for p in ("built", "loaded", "grpo step 1", "evaluating")]
    ['while loading', 'in GRPO step 1', 'in GRPO step 2', 'in the evaluation']
    """
    if phase == "built":
        return "while loading"
    if phase == "loaded":
        return "in GRPO step 1"
    if phase.startswith("grpo step "):
        return f"in GRPO step {int(phase.split()[-1]) + 1}"
    return "in the evaluation" if phase == "evaluating" else f"after {phase}"


def _peak(p: dict) -> str:
    held = f"{p['reserved_gib']:.1f}"
    return f"{p['allocated_gib']:.1f} / {held}" if p.get("allocated_gib") is not None else held


def table(records: list[dict]) -> str:
    """README's memory table (markdown) from the records of ``--json`` files."""
    head = [
        "model",
        "backend",
        "GRPO step peak, in use / held (GiB)",
        "evaluation peak, in use / held (GiB)",
        *CARDS_MIB,
    ]
    # a peak reads "in use / held": what the tensors needed, and what torch's allocator kept (up to a card's cap)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        marks = {True: "fits", False: "no", None: "-"}
        failed = r.get("failed", "-")
        partial = r.get("partial", {})
        if partial.get("reserved_gib") is not None:  # where a failed run stopped, and what it held
            failed += f" ({_where(partial['phase'])}, {partial['reserved_gib']:.1f} held)"
        # a run that failed in its evaluation still measured its GRPO steps
        grpo = r.get("grpo_peak") or partial.get("grpo_peak")
        peaks = [_peak(grpo) if grpo else failed, _peak(r["eval_peak"]) if r.get("eval_peak") else failed]
        model = r["model"] + (f" (within {r['card']} memory)" if r.get("card") else "")
        model += f" ({r['loss_micro_batch']} answers a loss pass)" if r.get("loss_micro_batch") else ""
        model += f" (card shared: {r['card_shared']} GiB held by others)" if r.get("card_shared") else ""
        cells = [model, r.get("backend", "-"), *peaks, *(marks[v] for v in fits(r).values())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="all", help="comma-separated keys of the model table, 'all', or 'tiny'")
    parser.add_argument("--backend", default="trl", choices=["trl", "unsloth"])
    parser.add_argument("--profile", default="gpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--eval-rows", type=int, default=100, help="problems in the evaluation batch")
    parser.add_argument("--json", type=Path, help="append one record per model to this JSON file")
    parser.add_argument(
        "--tokenizer", help="a folder with tokenizer files and config.json (default: the embedded model's)"
    )
    parser.add_argument("--table", type=Path, nargs="+", help="print README's table from these JSON files and stop")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one model may take (default: no limit); then it is "
        "stopped and recorded as timed out, with the phase it reached and its peaks so far",
    )
    parser.add_argument(
        "--card",
        choices=list(CARDS_MIB),
        help="run each model within this card's memory (torch's allocator capped to it): finishing is the proof "
        "that it fits",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this key in this process
    args = parser.parse_args(argv)

    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout {args.timeout:g}: a number of seconds above 0")
    if args.table:
        try:  # a wrong file: one line, which file and why
            records = [r for path in args.table for r in records_of(json.loads(path.read_text()))]
            print(table(records))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            parser.error(f"--table: {exc.__class__.__name__}: {exc} (files: {', '.join(map(str, args.table))})")
        return 0
    from utils.env import hardware
    from utils.llm.models import MODELS

    if args.one:
        with tempfile.TemporaryDirectory(prefix="memory-", dir=scratch_dir()) as work:
            record = measure_one(
                args.one, args.backend, args.profile, args.steps, Path(work), args.eval_rows, args.tokenizer, args.card
            )
        print("RESULT " + json.dumps(record))
        return 0

    if args.card:
        import torch

        if not torch.cuda.is_available():
            parser.error(f"--card {args.card}: needs a CUDA GPU (it caps GPU memory)")
    keys = list(MODELS) if args.models == "all" else [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS and k not in SHAPES]
    if unknown or not keys:
        parser.error(f"unknown model key(s) {unknown or args.models!r}; known: {sorted(set(MODELS) | set(SHAPES))}")
    old = []
    if args.json and args.json.exists():  # checked before any model runs: a finished measurement is never lost
        try:
            old = json.loads(args.json.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--json {args.json}: not a readable JSON file ({exc})")
        if not isinstance(old, list):
            parser.error(f"--json {args.json}: holds no list of records (a committed results file?): choose a new file")
    records = []
    for key in keys:  # one process per model: each starts with an empty GPU and its own peak counters
        cmd = [sys.executable, __file__, "--one", key, "--backend", args.backend, "--profile", args.profile]
        cmd += ["--steps", str(args.steps), "--eval-rows", str(args.eval_rows)]
        cmd += ["--tokenizer", args.tokenizer] if args.tokenizer else []
        cmd += ["--card", args.card] if args.card else []
        print(f"=== {key} ({args.backend}, profile {args.profile}, {args.steps} GRPO steps)", flush=True)
        record = run_one(cmd, args.timeout)
        record = {"model": key, "backend": args.backend, **({"card": args.card} if args.card else {}), **record}
        record.update(
            profile=args.profile, hardware=hardware(), platform=platform.platform(), command=" ".join(sys.argv)
        )
        print(json.dumps({k: record.get(k) for k in ("model", "grpo_peak", "eval_peak", "failed")}), flush=True)
        records.append(record)
        if args.json:  # after every model: a session that ends early keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(old + records, indent=1) + "\n")
            print(f"wrote {args.json}", flush=True)
    return 0 if all("failed" not in r for r in records) else 1


def _live_members(group: int) -> list[int]:
    """The processes of process group ``group`` that have not died yet (zombies have: they hold no memory).
    Reads ``/proc``; where there is none (not Linux) it reports none."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": the name may hold spaces
        except (OSError, IndexError):
            continue  # it ended while we looked
        if fields[0] not in ("Z", "X") and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def _wait_until_group_ended(group: int, timeout: float = 10.0) -> None:
    """SIGKILL returns before its target has died; wait (at most ``timeout`` s) until none of ``group`` runs."""
    deadline = time.monotonic() + timeout
    while _live_members(group) and time.monotonic() < deadline:
        time.sleep(0.02)


def run_one(cmd: list[str], timeout: float | None) -> dict:
    """Runs one ``--one`` process, echoing its ``PROGRESS`` lines; returns its record, or what is known of a run
    that failed: ``failed`` ("out of memory", "error", "timed out after N s"), the last progress as ``partial``
    (phase, seconds, peaks so far) and the last lines of its errors."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        lines: list[str] = []

        def read() -> None:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("PROGRESS "):
                    print("  " + line[len("PROGRESS ") :].strip(), flush=True)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # cut off, interrupted (Ctrl-C does not reach its own session) or done: none of its processes
            # (compile workers, data loaders) stays behind holding GPU memory that the next model would miss
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            _wait_until_group_ended(proc.pid)  # a killed process frees its GPU memory only once it has died
        reader.join(timeout=10)
        err.seek(0)
        errors = err.read()
    results = [ln for ln in lines if ln.startswith("RESULT ")]
    partial = [json.loads(ln[len("PROGRESS ") :]) for ln in lines if ln.startswith("PROGRESS ")]
    if proc.returncode == 0 and results:  # with its phases: their times and the card's free memory
        return {**json.loads(results[-1][len("RESULT ") :]), **({"phases": partial} if partial else {})}
    if timed_out:
        failed = f"timed out after {timeout:g} s"
    else:  # out of memory is a result too: say so and keep going
        failed = "out of memory" if "out of memory" in errors.lower() else "error"
    record: dict = {"failed": failed, "tail": (errors or "\n".join(lines)).strip().splitlines()[-3:]}
    if partial:
        record["partial"] = partial[-1]
    return record


if __name__ == "__main__":
    raise SystemExit(main())
