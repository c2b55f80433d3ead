"""Evaluate completions the way the public reference does, in linear time.

The reference ("Qwen Scheduler GRPO", anakin87 2025, ``evaluation/eval.py``) sorts each
test completion into the first category whose check fails:

1. ``format_error`` - the lenient format check fails: somewhere in the text, in this
   order, ``<schedule>``, ``<event>``, ``<name>...</name>``, ``<start>HH:MM</start>``,
   ``<end>HH:MM</end>``, ``</event>``, ``</schedule>`` (reasoning is not required, so
   models that do not reason are not penalised);
2. ``fewer_than_2_events`` - fewer than two strict events in the *whole* text (events
   inside ``<think>`` count too, names exactly as written);
3. ``nonexistent`` - an event whose name, start and end are not exactly one of the
   problem's events, or an event listed twice;
4. ``unsorted`` - start times not strictly increasing;
5. ``overlap`` - two events share time (touching is fine);
6. ``valid`` - score = weighted duration / optimal score (priority events count double).

The mean score over all rows (failures count 0), times 100, is the headline number.

Every row must be a problem of the course (:mod:`utils.task.validate`): a row that is not (an
``optimal_score`` that is not a finite number between the best single event and the DP optimum,
events or names an answer could not reproduce, an optimum of a single event, which the
``fewer_than_2_events`` rule would make unanswerable) is refused with a message naming it.

Here the checks run on :func:`utils.rewards.reference.reference_eval_format_ok` and
:func:`utils.rewards.reference.reference_events`: the same answers as the reference's regular
expressions (proven in ``tests/test_evaluation.py``) without their catastrophic
backtracking, so a 1 MB truncated completion takes milliseconds, not hours.

Command line (from the repository root)::

    python -m utils.evaluate --data data/test.jsonl --completions outputs/run.jsonl [--json]

``--completions`` is a JSONL file written by :func:`save_completions` or a folder of
``0.txt, 1.txt, ...`` (the layout of the reference's published outputs).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rewards.parsing import completion_text
from ..rewards.reference import reference_eval_format_ok, reference_events
from ..task.data import MAX_INPUT_BYTES, parse_json, read_capped
from ..task.events import overlapping_pairs, weight_of
from ..task.times import clock_minutes
from ..task.validate import PROBLEM_KEYS, check_row

CATEGORIES: tuple[str, ...] = (
    "format_error",
    "fewer_than_2_events",
    "nonexistent",
    "unsorted",
    "overlap",
    "valid",
)
# Summary keys for the five failure categories, in the reference's check order.
COUNT_KEYS: dict[str, str] = {
    "format_error": "format_errors",
    "fewer_than_2_events": "fewer_than_2_events",
    "nonexistent": "nonexistent",
    "unsorted": "unsorted",
    "overlap": "overlaps",
}
SUMMARY_KEYS: tuple[str, ...] = ("n", "valid", "mean_score", *COUNT_KEYS.values())
REQUIRED_ROW_KEYS = PROBLEM_KEYS

_SOURCE = (
    "'Qwen Scheduler GRPO' (anakin87, 2025): github.com/anakin87/qwen-scheduler-grpo, "
    "evaluation/eval.py on its published outputs"
)
_NOTE = "measured on the published anakin87/events-scheduling test set (100 rows), not on ours; greedy decoding"
PUBLISHED_RESULTS: list[dict[str, Any]] = [
    {"model": "Qwen2.5-Coder-7B-Instruct", "valid": 9, "mean_score": 8.05, "source": _SOURCE, "note": _NOTE},
    {"model": "Qwen2.5-Coder-14B-Instruct", "valid": 48, "mean_score": 45.85, "source": _SOURCE, "note": _NOTE},
    {
        "model": "anakin87/qwen-scheduler-7b-grpo",
        "valid": 63,
        "mean_score": 58.54,
        "source": _SOURCE,
        "note": _NOTE + "; the write-up's chart says 62 valid",
    },
    {
        "model": "qwen-scheduler-7b-grpo, 2-epoch checkpoint",
        "valid": 67,
        "mean_score": 62.26,
        "source": _SOURCE,
        "note": _NOTE,
    },
]
"""The reference's published figures (valid schedules out of 100, mean score x100)."""


# ------------------------------------------------------------------------ one completion
@dataclass(frozen=True)
class EvalResult:
    """How one completion fared: its category, its score (weighted / optimal, 0..1) and why."""

    category: str
    score: float
    events: list[list[str]] = field(default_factory=list)  # as extracted, names unstripped
    reason: str = ""
    weighted: int | None = None  # weighted duration, valid schedules only

    @property
    def valid(self) -> bool:
        return self.category == "valid"


def _check_row(row: Any, index: int | None = None) -> None:
    """A clear ``ValueError`` unless ``row`` is a problem (:mod:`utils.task.validate`): a broken row
    (an optimum that is zero, NaN, infinite or impossible, events that are not events, names an
    answer could not write) would otherwise give a traceback or a score that means nothing."""
    check_row(row, "row" if index is None else f"row {index}")


def _format_reason(text: str) -> str:
    """A hint at what the lenient format check missed (cheap: a few str.find)."""
    if not text.strip():
        return "empty completion"
    open_at = text.find("<schedule>")
    if open_at < 0:
        return "no <schedule> tag"
    if text.find("</schedule>", open_at) < 0:
        return "<schedule> never closed with </schedule> (truncated?)"
    return (
        "no complete <event> (<name>, <start>HH:MM</start>, <end>HH:MM</end>, </event>) "
        "between <schedule> and </schedule>"
    )


def evaluate_completion(row: Mapping, completion: Any) -> EvalResult:
    """Categorise and score one completion against its dataset row, like the reference.

    ``completion`` may be a string, a list of chat messages, ``None`` or bytes.
    """
    _check_row(row)
    text = completion_text(completion)
    if not reference_eval_format_ok(text):
        return EvalResult("format_error", 0.0, [], _format_reason(text))

    events = [ev.as_list() for ev in reference_events(text)]
    if len(events) < 2:
        return EvalResult(
            "fewer_than_2_events", 0.0, events, f"found {len(events)} complete event(s); at least 2 needed"
        )

    known = {tuple(e) for e in row["events"]}
    seen: set[tuple[str, str, str]] = set()
    for name, start, end in events:
        key = (name, start, end)
        if key not in known:
            return EvalResult("nonexistent", 0.0, events, f"{name!r} {start}-{end} is not one of the problem's events")
        if key in seen:  # the reference counts a set, so a repeat lands here too
            return EvalResult("nonexistent", 0.0, events, f"{name!r} {start}-{end} is listed twice")
        seen.add(key)

    # Like the reference: int() of each half. Only reached for events that are exactly one of
    # the problem's events, so the times are the dataset's own.
    spans = [(clock_minutes(s), clock_minutes(e)) for _, s, e in events]
    for k in range(1, len(spans)):
        if not spans[k - 1][0] < spans[k][0]:
            return EvalResult(
                "unsorted",
                0.0,
                events,
                f"{events[k][0]!r} starts at {events[k][1]}, not after {events[k - 1][0]!r} at {events[k - 1][1]}",
            )

    pairs = overlapping_pairs(spans)  # the first pair in list order, as the reference reports it
    if pairs:
        a, b = events[pairs[0][0]], events[pairs[0][1]]
        return EvalResult("overlap", 0.0, events, f"{a[0]!r} {a[1]}-{a[2]} overlaps {b[0]!r} {b[1]}-{b[2]}")

    prios = set(row["priority_events"] or [])
    weighted = sum(weight_of(name, prios) * (e - s) for (name, _, _), (s, e) in zip(events, spans))
    opt = row["optimal_score"]
    # Not clamped, like the reference: above 1 only if the dataset's optimal_score is wrong.
    return EvalResult("valid", float(weighted / opt), events, f"weighted {weighted} / optimal {opt:g}", weighted)


# --------------------------------------------------------------------------- many rows
@dataclass
class EvalSummary:
    """The reference's numbers for a set of completions, plus the per-row results."""

    n: int
    valid: int
    mean_score: float  # mean of per-row scores (failures 0), x100
    counts: dict[str, int]  # keys: COUNT_KEYS values
    results: list[EvalResult]

    def as_dict(self) -> dict[str, Any]:
        """``n, valid, mean_score`` and the five failure counts (what ``--json`` prints)."""
        return {"n": self.n, "valid": self.valid, "mean_score": self.mean_score, **self.counts}

    def to_frame(self):
        """Per-row results as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"row": i, "category": r.category, "score": r.score, "n_events": len(r.events), "reason": r.reason}
                for i, r in enumerate(self.results)
            ]
        )

    def to_text(self) -> str:
        """A small readable table."""
        labels = {
            "format_errors": "format errors",
            "fewer_than_2_events": "fewer than 2 events",
            "nonexistent": "nonexistent events",
            "unsorted": "unsorted",
            "overlaps": "overlaps",
        }
        lines = [f"{'completions':<22}{self.n:>8}"]
        lines += [f"{labels[k]:<22}{self.counts[k]:>8}" for k in COUNT_KEYS.values()]
        lines += [f"{'valid schedules':<22}{self.valid:>8}", f"{'mean score (x100)':<22}{self.mean_score:>8.2f}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def evaluate(rows: Iterable[Mapping], completions: Iterable[Any]) -> EvalSummary:
    """Evaluate one completion per row (same order). Raises ``ValueError`` on a count mismatch."""
    rows, completions = list(rows), list(completions)
    if len(rows) != len(completions):
        raise ValueError(
            f"{len(completions)} completions for {len(rows)} dataset rows: "
            "need exactly one completion per row, in the dataset's order"
        )
    if not rows:
        raise ValueError("nothing to evaluate: no dataset rows")
    for i, row in enumerate(rows):
        _check_row(row, i)  # fail early with the row number, before any work
    results = [evaluate_completion(r, c) for r, c in zip(rows, completions)]
    counts = {key: sum(r.category == cat for r in results) for cat, key in COUNT_KEYS.items()}
    return EvalSummary(
        n=len(results),
        valid=sum(r.valid for r in results),
        mean_score=float(100.0 * sum(r.score for r in results) / len(results)),
        counts=counts,
        results=results,
    )


# ----------------------------------------------------------------------- completions I/O
def save_completions(path: Path | str, completions: Iterable[Any], extra: Mapping[str, Any] | None = None) -> Path:
    """Write one ``{"completion": text, **extra}`` JSON object per line, in order.

    ``extra`` (e.g. ``{"model": "smollm2-135m"}``) is repeated on every line so that
    the file says where it came from. Chat-message completions are stored as their text.
    Written whole or not at all (a temporary file, then renamed): a process killed mid-write leaves no
    short file that a cache would take for a finished evaluation.
    """
    extra = dict(extra or {})
    if "completion" in extra:
        raise ValueError("extra must not contain the key 'completion'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as fh:
            for c in completions:
                record = {"completion": completion_text(c), **extra}
                # allow_nan=False: NaN/Infinity in extra would make a line strict JSON readers refuse
                fh.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


_NUMBERED_TXT = re.compile(r"(0|[1-9][0-9]*)\.txt")  # tiny, anchored: no backtracking risk


def _load_folder(folder: Path) -> list[str]:
    numbered = {}
    for p in folder.iterdir():
        m = _NUMBERED_TXT.fullmatch(p.name)
        if m and p.is_file():
            numbered[int(m.group(1))] = p
    if not numbered:
        raise ValueError(f"{folder}: no completion files named 0.txt, 1.txt, ... in this folder")
    n = max(numbered) + 1
    if n != len(numbered):  # a gap; count it without a list as long as the highest number
        first = []
        i = 0
        while len(first) < 5 and i < n:  # at most len(numbered) + 5 steps
            if i not in numbered:
                first.append(i)
            i += 1
        shown = ", ".join(f"{i}.txt" for i in first) + (" ..." if n - len(numbered) > len(first) else "")
        raise ValueError(
            f"{folder}: completions must be numbered 0..{len(numbered) - 1} without gaps; found {len(numbered)} "
            f"files up to {n - 1}.txt, missing {n - len(numbered)}: {shown}"
        )
    # Decoded as the reference reads its files (text mode: universal newlines), at most
    # MAX_INPUT_BYTES in all.
    out, left = [], MAX_INPUT_BYTES
    for i in range(n):
        try:
            raw = read_capped(numbered[i], "completion file", limit=left)
        except ValueError:
            raise ValueError(
                f"{folder}: the completions hold more than {MAX_INPUT_BYTES / 2**20:g} MiB in all "
                f"(at {i}.txt; the limit is utils.task.data.MAX_INPUT_BYTES); is this the right folder?"
            ) from None
        left -= len(raw)
        out.append(_universal_newlines(raw.decode("utf-8", errors="replace")))
    return out


def _universal_newlines(text: str) -> str:
    """What reading in text mode gives: ``\r\n`` and ``\r`` become ``\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _load_jsonl(path: Path) -> list[str]:
    text = _universal_newlines(read_capped(path, "completions file").decode("utf-8-sig", errors="replace"))
    out = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, f"{path}:{lineno}", strict=False)
        except ValueError as exc:
            raise ValueError(f'{exc}; expected one {{"completion": ...}} object per line') from None
        if not isinstance(record, dict) or "completion" not in record:
            raise ValueError(
                f'{path}:{lineno}: no "completion" key; expected one {{"completion": ...}} object per line'
            )
        out.append(completion_text(record["completion"]))
    if not out:
        raise ValueError(f"{path}: no completions in this file")
    return out


def load_completions(path: Path | str, expected: int | None = None) -> list[str]:
    """Completions from a JSONL file (:func:`save_completions`) or a folder of ``N.txt``.

    With ``expected`` (the dataset's row count), a different count is an error.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such completions file or folder: {path}")
    completions = _load_folder(path) if path.is_dir() else _load_jsonl(path)
    if expected is not None and len(completions) != expected:
        raise ValueError(f"{path}: {len(completions)} completions but the dataset has {expected} rows")
    return completions


# -------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m utils.evaluate``: print the reference's numbers for a completions file."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.evaluate",
        description="Evaluate completions like the public reference (first failing check wins).",
    )
    parser.add_argument("--data", required=True, help="dataset JSONL (events, priority_events, optimal_score, prompt)")
    parser.add_argument(
        "--completions", required=True, help='JSONL of {"completion": ...} or a folder of 0.txt, 1.txt, ...'
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    from ..task.data import load_jsonl

    try:
        rows = load_jsonl(args.data)
        if not rows:
            raise ValueError(f"{args.data}: no rows in this dataset")
        for i, row in enumerate(rows):  # rows are numbered from 0, like the completions 0.txt, 1.txt, ...
            check_row(row, f"{args.data} row {i}")
        completions = load_completions(args.completions, expected=len(rows))
        summary = evaluate(rows, completions)
    except (OSError, ValueError) as exc:  # user errors: a message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_dict(), allow_nan=False))  # strict JSON: rows are checked, so finite
    else:
        print(f"{args.completions} against {args.data}")
        print(summary.to_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
