"""Loading the problems: our JSONL files, a `datasets.Dataset`, or the published dataset."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..paths import TEST_FILE, TEST_OTHER_STYLE_FILE, TRAIN_FILE
from .columns import PROBLEM_COLUMNS
from .validate import check_row

PUBLISHED_DATASET = "anakin87/events-scheduling"
REQUIRED_COLUMNS = (*PROBLEM_COLUMNS, "prompt")


#: The most bytes any input file may hold (a dataset, a completions file or folder, a file ``--check``
#: compares): the committed test set is 60 kB, and 100 completions of a megabyte each are 100 MB. A
#: larger input (``/dev/zero``, a wrong path) is refused in one line instead of filling the memory.
MAX_INPUT_BYTES = 256 * 2**20


def read_capped(path: Path | str, what: str = "input file", limit: int | None = None) -> bytes:
    """The bytes of ``path``, refused with a one-line ``ValueError`` past ``limit`` bytes
    (default :data:`MAX_INPUT_BYTES`). Never reads more than ``limit + 1`` bytes: a device or a
    pipe that never ends (``/dev/zero``) is stopped there."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size  # 0 for devices and /proc files: read to find out
        data = b"" if size > limit else fh.read(limit + 1)
    if size > limit or len(data) > limit:
        raise ValueError(
            f"{path}: more than {limit / 2**20:g} MiB, too large for a {what} "
            "(the limit is utils.task.data.MAX_INPUT_BYTES); is this the right file?"
        )
    return data


def gunzip_capped(data: bytes, path: Path | str, limit: int | None = None) -> bytes:
    """``data`` (a gzip file's bytes) decompressed, refused with a one-line ``ValueError`` past ``limit`` bytes
    of output (default :data:`MAX_INPUT_BYTES`: a small file can hold a huge output) or when it is not gzip."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        out = unzip.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"{path}: not a readable gzip file ({exc})") from None
    if len(out) > limit or unzip.unconsumed_tail:
        raise ValueError(f"{path}: more than {limit / 2**20:g} MiB once decompressed, too large to read")
    if not unzip.eof or unzip.unused_data:
        raise ValueError(f"{path}: a gzip file cut short, or with bytes after its end")
    return out


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value; strict JSON readers refuse it")


def parse_json(text: str, where: str, strict: bool = True):
    """``json.loads(text)``, with every failure one ``ValueError`` starting with ``where``
    (e.g. ``data/test.jsonl:12``): bad JSON, ``NaN``/``Infinity`` when ``strict`` (they are not
    JSON), and nesting too deep for Python's parser (100,000 ``[`` gave a RecursionError)."""
    try:
        return json.loads(text, parse_constant=_no_constant) if strict else json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply to read; is this the right file?") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
    except ValueError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc})") from None


def load_jsonl(path: Path | str) -> list[dict]:
    """Rows of a JSONL file (UTF-8, a byte-order mark allowed; gzip-compressed when its name ends in ``.gz``);
    a clear error names the file and line of text that is not UTF-8 or not JSON (``NaN`` and ``Infinity``
    included: they are not JSON, nor is nesting too deep to read). Files over :data:`MAX_INPUT_BYTES` are
    refused, before or after decompression."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such dataset file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a JSONL dataset file")
    raw = read_capped(path, "dataset file")
    if path.name.endswith(".gz"):  # the committed GRPO samples (results/ablation/<row>/grpo_samples.jsonl.gz)
        raw = gunzip_capped(raw, path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); save the file as UTF-8"
        ) from None
    rows = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            rows.append(parse_json(line, f"{path}:{lineno}"))
    return rows


def validate_rows(rows: Iterable[dict], source: str = "dataset") -> None:
    """Every row has the columns and is a problem (:mod:`utils.task.validate`); at least one row."""
    n = 0
    for i, row in enumerate(rows):
        n += 1
        if not isinstance(row, Mapping):
            raise ValueError(f"{source} row {i} is a {type(row).__name__}, not an object with {list(REQUIRED_COLUMNS)}")
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{source} row {i} lacks columns {missing}; expected {list(REQUIRED_COLUMNS)}")
        check_row(row, f"{source} row {i}")
    if not n:
        raise ValueError(f"{source}: no rows (an empty dataset)")


def load_split(split: str = "train", limit: int | None = None, max_events: int | None = None) -> list[dict]:
    """Our committed problems: ``train`` (500), ``test`` (100) or ``test_other_style`` (100, held out:
    names and times written in another style). ``max_events`` keeps only problems with at most that
    many events (shorter prompts and answers: the cpu profile uses it), before ``limit`` applies."""
    files = {"train": TRAIN_FILE, "test": TEST_FILE, "test_other_style": TEST_OTHER_STYLE_FILE}
    if split not in files:
        raise ValueError(f"split must be one of {sorted(files)}, got {split!r}")
    rows = load_jsonl(files[split])
    validate_rows(rows, str(files[split]))
    if max_events is not None:
        rows = [r for r in rows if len(r["events"]) <= max_events]
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


def load_problems(
    split: str = "train",
    source: str = "local",
    limit: int | None = None,
    max_events: int | None = None,
    style: str = "default",
) -> list[dict]:
    """``source='local'`` (default) or ``'hub'`` (published; falls back to local with a message).

    For ``split="train"``, a ``limit`` beyond the split's size is made up with generated problems whose names
    are in ``style`` (:func:`utils.task.datagen.training_problems`): the gpu profile's GRPO runs on more than
    the 500 committed ones. ``max_events`` filters the split first; a limit within the split's size never
    generates (the cpu profile's 500 with at most 5 events are the 192 committed ones that small)."""
    if source not in ("local", "hub"):
        raise ValueError(f"source must be 'local' or 'hub', got {source!r}")
    rows = None
    if source == "hub":
        try:
            rows = [dict(r) for r in load_published(split)]
        except ConnectionError as exc:
            print(f"{exc}\n-> using the course's own {split} split instead.")
    if rows is None:
        rows = load_split(split)
    size = len(rows)
    if max_events is not None:
        rows = [r for r in rows if len(r["events"]) <= max_events]
    if split == "train" and limit is not None and limit > size:
        from .datagen import training_problems  # datagen reads this module's splits: imported here, not above

        return training_problems(limit - size + len(rows), style, max_events=max_events, start=rows)
    return rows[:limit] if limit is not None else rows
