"""Loading the problems: our JSONL files, a `datasets.Dataset`, or the published dataset."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..paths import TEST_FILE, TEST_OTHER_STYLE_FILE, TRAIN_FILE

PUBLISHED_DATASET = "anakin87/events-scheduling"
REQUIRED_COLUMNS = ("events", "priority_events", "optimal_score", "prompt")


def load_jsonl(path: Path | str) -> list[dict]:
    """Rows of a JSONL file; a clear error names the file and line of bad JSON."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such dataset file: {path}")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return rows


def validate_rows(rows: Iterable[dict], source: str = "dataset") -> None:
    for i, row in enumerate(rows):
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{source} row {i} lacks columns {missing}; expected {list(REQUIRED_COLUMNS)}")


def load_split(split: str = "train", limit: int | None = None) -> list[dict]:
    """Our committed problems: ``train`` (500), ``test`` (100) or ``test_other_style`` (100, held out:
    names and times written in another style)."""
    files = {"train": TRAIN_FILE, "test": TEST_FILE, "test_other_style": TEST_OTHER_STYLE_FILE}
    if split not in files:
        raise ValueError(f"split must be one of {sorted(files)}, got {split!r}")
    rows = load_jsonl(files[split])
    validate_rows(rows, str(files[split]))
    return rows[:limit] if limit is not None else rows


def to_hf_dataset(rows: list[dict]):
    """A `datasets.Dataset` with the same columns (what TRL trainers take)."""
    from datasets import Dataset

    return Dataset.from_list(rows)


def load_published(split: str = "train"):
    """The published `anakin87/events-scheduling` split from the Hugging Face Hub.

    Needs internet. Offline (or behind a firewall) it raises ``ConnectionError`` with a
    message saying so and pointing at our own committed dataset, which has the same schema.
    """
    try:
        from datasets import load_dataset

        ds = load_dataset(PUBLISHED_DATASET, split=split)
    except Exception as exc:  # noqa: BLE001 - the hub client raises many kinds
        raise ConnectionError(
            f"could not load {PUBLISHED_DATASET!r} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{str(exc)[:200]}). This needs internet access; the course's own dataset "
            "(utils.task.load_split) has the same columns and works offline."
        ) from exc
    validate_rows(ds, PUBLISHED_DATASET)
    return ds


def load_problems(split: str = "train", source: str = "local", limit: int | None = None) -> list[dict]:
    """``source='local'`` (default) or ``'hub'`` (published; falls back to local with a message)."""
    if source == "hub":
        try:
            rows = [dict(r) for r in load_published(split)]
            return rows[:limit] if limit is not None else rows
        except ConnectionError as exc:
            print(f"{exc}\n-> using the course's own {split} split instead.")
    elif source != "local":
        raise ValueError(f"source must be 'local' or 'hub', got {source!r}")
    return load_split(split, limit)
