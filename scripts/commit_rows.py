#!/usr/bin/env python
"""Copy finished ablation rows from a GPU session's archive into ``results/ablation/``, as the course commits them.

    python scripts/commit_rows.py recipe.tgz                      # every finished row in the archive
    python scripts/commit_rows.py recipe.tgz --rows big_grpo_maximal --dest results/ablation

``scripts/gpu_recipe.sh collect`` packs the machine's ``/root/exp`` into ``recipe.tgz``. Each row there is
``ablation/ROW.json`` plus ``ablation/ROW/`` with the completions and ``grpo/samples.jsonl``. This script
copies the results file, the four completion files and the samples (gzip-compressed, as
``grpo_samples.jsonl.gz``: a tenth of the size, and every device call carries the tree). A row counts
as finished when its results file has evaluations after GRPO; a warm-start-only row (``"grpo": false``) when it
ran to the end, and then only its warm start's two completion files are copied. A row already in ``--dest`` is
left alone unless ``--force`` is given, and the archive is only read, never unpacked onto disk.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
import tarfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from utils.env import error_line  # noqa: E402  (utils.env imports only the standard library)

#: What a committed row holds besides ROW.json, and where each file comes from in the row's run folder.
ROW_FILES = {
    "completions_sft_test.jsonl": "completions_sft_test.jsonl",
    "completions_sft_test_other_style.jsonl": "completions_sft_test_other_style.jsonl",
    "completions_grpo_test.jsonl": "completions_grpo_test.jsonl",
    "completions_grpo_test_other_style.jsonl": "completions_grpo_test_other_style.jsonl",
    "grpo_samples.jsonl.gz": "grpo/samples.jsonl",  # compressed on the way (utils.task.data.load_jsonl reads it)
}
#: What a warm-start-only row (``"grpo": false`` in experiments/ablation.json) holds besides ROW.json.
WARM_START_FILES = {k: v for k, v in ROW_FILES.items() if k.startswith("completions_sft_")}
#: A row's name as experiments/ablation.json writes them: it becomes a file and a folder name in --dest, so no path
#: separators and no leading dot ("..", ".hidden").
ROW_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _evaluations_ok(evals) -> bool:
    """Evaluations as scripts/ablation.py writes them: per test set, a valid count and a finite mean score."""
    return (
        isinstance(evals, dict)
        and bool(evals)
        and all(
            isinstance(e, dict)
            and isinstance(e.get("valid"), int)
            and isinstance(e.get("mean_score"), (int, float))
            and math.isfinite(e["mean_score"])
            for e in evals.values()
        )
    )


def _warm_start_only(result: dict) -> bool:
    """A row run without GRPO, to the end (``seconds`` is written last), with its warm start evaluated."""
    row = result.get("row") or {}
    warm = result.get("warm_start") or {}
    return (
        isinstance(row, dict)
        and row.get("grpo", True) is False
        and "seconds" in result
        and isinstance(warm, dict)
        and _evaluations_ok(warm.get("evaluations"))
    )


def _members(archive: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular files by their path inside the archive, without a leading ``./``."""
    return {m.name.removeprefix("./"): m for m in archive.getmembers() if m.isfile()}


def finished_rows(archive: tarfile.TarFile) -> dict[str, dict]:
    """The rows whose results file holds evaluations after GRPO (or, for a warm-start-only row, of its warm start),
    by name, with their results. A file of another shape, or under a name that is no row name, is not a row."""
    rows = {}
    for name, member in _members(archive).items():
        parts = name.split("/")
        if len(parts) == 2 and parts[0] == "ablation" and parts[1].endswith(".json"):
            row = parts[1].removesuffix(".json")
            try:
                result = json.loads(archive.extractfile(member).read())
            except ValueError:
                continue  # a results file cut short while it was written
            if not ROW_NAME.fullmatch(row) or not isinstance(result, dict):
                continue
            if _evaluations_ok(result.get("evaluations")) or _warm_start_only(result):
                rows[row] = result
    return rows


def commit_rows(tgz: Path, dest: Path, names: list[str] | None = None, force: bool = False) -> list[str]:
    """Copies the finished rows (``names``: only these) from ``tgz`` into ``dest``; returns one line per row."""
    lines = []
    with tarfile.open(tgz) as archive:
        members, done = _members(archive), finished_rows(archive)
        wanted = names if names is not None else sorted(done)
        for name in wanted:
            if f"ablation/{name}.json" not in members:
                lines.append(f"{name}: not in {tgz.name}: skipped")
                continue
            if name not in done:
                lines.append(f"{name}: not finished in {tgz.name} (no evaluations after GRPO): skipped")
                continue
            if ((dest / f"{name}.json").exists() or (dest / name).exists()) and not force:
                lines.append(f"{name}: already in {dest} (pass --force to replace it): skipped")
                continue
            only_warm = _warm_start_only(done[name])
            files = WARM_START_FILES if only_warm else ROW_FILES
            missing = [src for src in files.values() if f"ablation/{name}/{src}" not in members]
            if missing:
                lines.append(f"{name}: the archive lacks {missing}: skipped")
                continue
            (dest / name).mkdir(parents=True, exist_ok=True)
            for target, src in files.items():
                data = archive.extractfile(members[f"ablation/{name}/{src}"]).read()
                (dest / name / target).write_bytes(gzip.compress(data, 9, mtime=0) if target.endswith(".gz") else data)
            (dest / f"{name}.json").write_bytes(archive.extractfile(members[f"ablation/{name}.json"]).read())
            evals = done[name]["warm_start"]["evaluations"] if only_warm else done[name]["evaluations"]
            test = evals.get("test", {})
            what = "warm start only; test" if only_warm else "test"
            lines.append(
                f"{name}: copied ({what}: {test.get('valid')} valid, mean score {test.get('mean_score', 0):.2f})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive", type=Path, help="recipe.tgz from scripts/gpu_recipe.sh collect")
    ap.add_argument("--rows", default=None, help="comma-separated row names (default: every finished row)")
    ap.add_argument("--dest", type=Path, default=ROOT / "results" / "ablation")
    ap.add_argument("--force", action="store_true", help="replace rows already in --dest")
    args = ap.parse_args(argv)
    if args.dest.exists() and not args.dest.is_dir():
        print(f"error: --dest {args.dest} is a file, not a folder", file=sys.stderr)
        return 2
    try:
        lines = commit_rows(args.archive, args.dest, args.rows.split(",") if args.rows else None, args.force)
    except (tarfile.TarError, EOFError, zlib.error) as exc:  # EOFError: cut short; tarfile explains over lines
        why = error_line(exc).rstrip(":")
        print(f"error: {args.archive}: not a readable archive ({why})", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.archive}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print("\n".join(lines) or f"no finished rows in {args.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
