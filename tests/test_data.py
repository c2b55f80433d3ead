"""Loading problems: JSONL files, our splits, `datasets.Dataset`, and the published set."""

from __future__ import annotations

import json
import re

import pytest

import utils.task.data as data
from utils.paths import TRAIN_FILE
from utils.task.data import (
    PUBLISHED_DATASET,
    REQUIRED_COLUMNS,
    load_jsonl,
    load_problems,
    load_split,
    to_hf_dataset,
    validate_rows,
)


def test_load_jsonl_missing_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_jsonl(missing)


def test_load_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,\n{"a": 3}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"rows\.jsonl:3: not valid JSON"):
        load_jsonl(path)


def test_load_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": "é"}\n', encoding="utf-8")
    assert load_jsonl(path) == [{"a": 1}, {"a": "é"}]
    assert load_jsonl(str(path)) == load_jsonl(path)


def test_load_split_sizes_and_limit():
    train, test = load_split("train"), load_split("test")
    assert len(train) == 500 and len(test) == 100
    assert load_split("train", limit=7) == train[:7]
    assert load_split("test", limit=0) == []
    for row in train[:20] + test[:20]:
        assert set(REQUIRED_COLUMNS) <= set(row)


def test_load_split_unknown():
    with pytest.raises(ValueError, match="split must be one of"):
        load_split("validation")


def test_validate_rows_names_missing_columns():
    row = load_split("test", limit=1)[0]
    short = {k: v for k, v in row.items() if k != "optimal_score"}
    with pytest.raises(ValueError, match=r"row 1 lacks columns \['optimal_score'\]"):
        validate_rows([row, short], "mine")


def test_to_hf_dataset_columns():
    rows = load_split("train", limit=10)
    ds = to_hf_dataset(rows)
    assert set(ds.column_names) == set(REQUIRED_COLUMNS)
    assert len(ds) == 10
    assert ds[0]["events"] == rows[0]["events"]
    assert ds[3]["optimal_score"] == rows[3]["optimal_score"]


def test_hub_falls_back_when_offline(monkeypatch, capsys):
    def offline(split="train"):
        raise ConnectionError(f"could not load {PUBLISHED_DATASET!r} (no network in this test)")

    monkeypatch.setattr(data, "load_published", offline)
    rows = load_problems("test", source="hub", limit=5)
    assert rows == load_split("test", limit=5)
    out = capsys.readouterr().out
    assert PUBLISHED_DATASET in out and "using the course's own test split" in out


def test_load_published_wraps_hub_errors(monkeypatch):
    import datasets

    def boom(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(ConnectionError, match="needs internet access") as info:
        data.load_published("train")
    assert PUBLISHED_DATASET in str(info.value) and "OSError" in str(info.value)


def test_hub_rows_when_online(monkeypatch):
    published = load_split("train", limit=4)
    monkeypatch.setattr(data, "load_published", lambda split="train": [dict(r) for r in published])
    assert load_problems("train", source="hub") == published
    assert load_problems("train", source="hub", limit=2) == published[:2]


def test_hub_rows_are_topped_up_with_generated_ones_past_their_end(monkeypatch):
    published = load_split("train", limit=4)
    monkeypatch.setattr(data, "load_published", lambda split="train": [dict(r) for r in published])
    rows = load_problems("train", source="hub", limit=6, style="wide")
    assert rows[:4] == published and len(rows) == 6 and all(r not in published for r in rows[4:])


def test_load_problems_local_and_unknown_source():
    assert load_problems("train", limit=3) == load_split("train", limit=3)
    with pytest.raises(ValueError, match="source must be"):
        load_problems("train", source="s3")


def test_more_training_problems_than_committed_are_generated_in_the_style_asked():
    """The gpu profile's GRPO problems (data.n_train, data.train_style) past the 500 committed ones: the same
    problems in notebook 05 (load_problems) and in the scripts (training_problems)."""
    from utils.task import training_problems

    rows = load_problems("train", limit=600, style="wide")
    assert rows == training_problems(600, "wide") and rows[:500] == load_split("train")
    assert rows != load_problems("train", limit=600)  # the default style's generated problems differ
    assert load_problems("test", limit=600) == load_split("test")  # a test split is never made up


def test_a_limit_within_the_committed_split_never_generates_even_when_max_events_filters_it():
    """The cpu profile: data.n_train=500 with data.max_events=5 trains on the 192 small committed problems, as before
    the knob could reach past them; past 500, the generated ones are added to those."""
    small = load_split("train", max_events=5)
    assert load_problems("train", limit=500, max_events=5) == small and len(small) < 500
    more = load_problems("train", limit=600, max_events=5)
    assert more[: len(small)] == small and len(more) == len(small) + 100
    assert all(len(r["events"]) <= 5 for r in more)


def test_committed_files_are_one_json_object_per_line():
    lines = TRAIN_FILE.read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)


# ------------------------------------------------------------- bad files and rows (issue 18, item 14)
@pytest.fixture()
def own_train(tmp_path, monkeypatch):
    """load_split("train") reading a file of this test's making."""
    path = tmp_path / "train.jsonl"
    monkeypatch.setattr(data, "TRAIN_FILE", path)
    return path


def test_load_split_names_file_and_line_of_a_non_utf8_byte(own_train):
    good = TRAIN_FILE.read_bytes().splitlines()[0]
    own_train.write_bytes(good + b"\n" + good.replace(b'"events"', b'"ev\xffents"', 1) + b"\n")
    with pytest.raises(ValueError, match=r"train\.jsonl:2: not UTF-8 text \(byte 0xff at column \d+\)"):
        load_split("train")


@pytest.mark.parametrize(
    "change, expect",
    [
        ({"events": 5}, "row 1: events must be a non-empty list"),
        ({"priority_events": "Gym"}, "row 1: priority_events must be a list"),
        ({"optimal_score": "120"}, "row 1: optimal_score must be a finite number"),
        ({"optimal_score": 1}, "row 1: optimal_score 1 is below the value"),
    ],
)
def test_load_split_refuses_rows_that_are_not_problems(own_train, change, expect):
    first, second = load_split("test", limit=2)
    own_train.write_text(json.dumps(first) + "\n" + json.dumps({**second, **change}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(expect)):
        load_split("train")


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_load_split_refuses_an_empty_file(own_train, text):
    own_train.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl: no rows"):
        load_split("train")


def test_load_jsonl_is_strict_json_and_allows_a_bom(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": NaN}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"rows\.jsonl:1: not valid JSON \(NaN is not a JSON value"):
        load_jsonl(path)
    path.write_text('{"a": 1}\n', encoding="utf-8-sig")
    assert load_jsonl(path) == [{"a": 1}]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_jsonl(tmp_path)


def test_name_catalogue_errors_name_the_file(tmp_path):
    from utils.task.datagen import load_themes

    bad = tmp_path / "names.json"
    bad.write_bytes(b'{"themes": {"t": ["Caf\xe9"]}}')
    with pytest.raises(ValueError, match=r"names\.json: not a JSON name catalogue"):
        load_themes(bad)
    bad.write_text('{"names": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"names\.json: expected"):
        load_themes(bad)
    bad.write_text('{"themes": {"t": "Gym"}}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"theme 't' must be a list of names"):
        load_themes(bad)
