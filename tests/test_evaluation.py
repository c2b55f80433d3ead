"""utils.evaluate: categories, precedence, agreement with the reference's regexes, I/O, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.evaluate.evaluation import (
    CATEGORIES,
    PUBLISHED_RESULTS,
    SUMMARY_KEYS,
    EvalSummary,
    evaluate,
    evaluate_completion,
    load_completions,
    save_completions,
)
from utils.paths import REPO_ROOT, TEST_FILE
from utils.rewards.reference import REFERENCE_EVAL_FORMAT_PATTERN
from utils.task import optimal_schedule
from utils.task.data import load_jsonl
from utils.task.prompts import format_answer

ROWS = load_jsonl(TEST_FILE)

# ------------------------------------------------------------- a literal regex reference
# The reference evaluation rewritten with its real regexes: only for short inputs (the
# format regex backtracks catastrophically on long truncated text).
from utils.rewards.reference import REFERENCE_CAPTURE_PATTERN  # noqa: E402

REF_FORMAT = re.compile(REFERENCE_EVAL_FORMAT_PATTERN, re.DOTALL)
REF_CAPTURE = re.compile(REFERENCE_CAPTURE_PATTERN)


def regex_reference(row: dict, text: str) -> tuple[str, float]:
    if not REF_FORMAT.match(text):
        return "format_error", 0.0
    found = [m.groups() for m in REF_CAPTURE.finditer(text)]
    if len(found) < 2:
        return "fewer_than_2_events", 0.0
    in_problem = {ev for ev in found if list(ev) in row["events"]}
    if len(in_problem) < len(found):
        return "nonexistent", 0.0

    def mins(t: str) -> int:
        h, m = t.split(":")
        return int(h) * 60 + int(m)

    spans = [(n, mins(s), mins(e)) for n, s, e in found]
    if any(spans[i][1] >= spans[i + 1][1] for i in range(len(spans) - 1)):
        return "unsorted", 0.0
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            if spans[i][1] < spans[j][2] and spans[i][2] > spans[j][1]:
                return "overlap", 0.0
    total = sum((2 if n in row["priority_events"] else 1) * (e - s) for n, s, e in spans)
    return "valid", total / row["optimal_score"]


def test_literal_pattern_is_the_published_one():
    assert REF_FORMAT.pattern == REFERENCE_EVAL_FORMAT_PATTERN


# ------------------------------------------------------------------------ hand-made cases
ROW = {
    "events": [
        ["Breakfast", "08:00", "08:30"],
        ["Gym", "08:30", "09:30"],
        ["Call", "09:00", "10:00"],
        ["Lunch", "12:00", "13:00"],
        ["Jog", "08:00", "08:15"],
    ],
    "priority_events": ["Call"],
    "optimal_score": 210,  # Breakfast 30 + Call 120 + Lunch 60 (Gym instead of Call: 60)
    "prompt": "",
}


def ev(name: str, start: str, end: str) -> str:
    return f"<event><name>{name}</name><start>{start}</start><end>{end}</end></event>"


def answer(*events: str, think: str = "plan") -> str:
    return f"<think>{think}</think>\n<schedule>\n" + "\n".join(events) + "\n</schedule>"


B, G, C, L, J = (ev(*e) for e in ROW["events"])

CASES = [
    # (id, completion, expected category, expected score)
    ("optimal", answer(B, C, L), "valid", 1.0),
    ("touching is fine", answer(B, G, L), "valid", 150 / 210),
    ("no reasoning needed", f"<schedule>{B}{C}{L}</schedule>", "valid", 1.0),
    ("no schedule", "<think>x</think> Breakfast then Call", "format_error", 0.0),
    ("empty", "", "format_error", 0.0),
    ("truncated: events parse but no </schedule>", f"<think>x</think><schedule>{B}{C}{L}", "format_error", 0.0),
    ("one event", answer(C), "fewer_than_2_events", 0.0),
    (
        "second event malformed",
        answer(B, "<event><name>Lunch</name><start>12:00</start></event>"),
        "fewer_than_2_events",
        0.0,
    ),
    (
        "single-digit hour",
        answer(B, ev("Lunch", "12:00", "13:00").replace("12:00", "12:0")),
        "fewer_than_2_events",
        0.0,
    ),
    ("wrong time", answer(B, ev("Lunch", "12:00", "13:30")), "nonexistent", 0.0),
    ("invented event", answer(B, ev("Nap", "14:00", "15:00")), "nonexistent", 0.0),
    ("name with surrounding spaces", answer(B, ev(" Lunch ", "12:00", "13:00")), "nonexistent", 0.0),
    ("repeated event", answer(B, L, L), "nonexistent", 0.0),
    ("unsorted", answer(L, B), "unsorted", 0.0),
    ("equal starts are unsorted", answer(J, B), "unsorted", 0.0),
    ("overlap", answer(B, G, C), "overlap", 0.0),
    ("unsorted AND overlapping -> unsorted", answer(C, G), "unsorted", 0.0),
    ("nonexistent AND unsorted -> nonexistent", answer(L, B, ev("Nap", "07:00", "07:30")), "nonexistent", 0.0),
    ("nonexistent AND overlapping -> nonexistent", answer(G, C, ev("Nap", "14:00", "15:00")), "nonexistent", 0.0),
    # The reference extracts events from the whole text, <think> included.
    ("events drafted in <think> are repeats", answer(B, C, L, think=f"draft: {B}{C}"), "nonexistent", 0.0),
    ("one event in <think>, one in schedule -> valid", answer(L, think=f"first {B}"), "valid", 90 / 210),
    ("<think> event out of order -> unsorted", answer(B, think=f"maybe {L}"), "unsorted", 0.0),
    (
        "whitespace between tags",
        "<schedule><event>\n <name>Breakfast</name>\n<start>08:00</start>\t"
        "<end>08:30</end>\n</event><event><name>Lunch</name><start>12:00</start><end>13:00</end></event></schedule>",
        "valid",
        90 / 210,
    ),
]


@pytest.mark.parametrize("completion,category,score", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_made_cases(completion, category, score):
    result = evaluate_completion(ROW, completion)
    assert (result.category, result.score) == (category, pytest.approx(score))
    assert result.reason
    assert regex_reference(ROW, completion) == (category, pytest.approx(score))  # the reference agrees


def test_completion_types():
    text = answer(B, C, L)
    assert evaluate_completion(ROW, [{"role": "assistant", "content": text}]).score == 1.0
    assert evaluate_completion(ROW, text.encode()).score == 1.0
    assert evaluate_completion(ROW, None).category == "format_error"


def test_result_events_are_as_written():
    result = evaluate_completion(ROW, answer(B, ev(" Lunch ", "12:00", "13:00")))
    assert result.events == [["Breakfast", "08:00", "08:30"], [" Lunch ", "12:00", "13:00"]]
    assert "Lunch" in result.reason


def test_bad_row_is_a_clear_error():
    with pytest.raises(ValueError, match="optimal_score"):
        evaluate_completion({**ROW, "optimal_score": 0}, answer(B, L))
    with pytest.raises(ValueError, match="lacks"):
        evaluate([{"events": []}], ["x"])


def test_pathological_completion_is_fast():
    # A 1 MB completion cut before </schedule>: the reference's regex never finishes this.
    text = "<think>x</think><schedule>" + (B * 16_000)[:1_000_000]
    t0 = time.perf_counter()
    assert evaluate_completion(ROW, text).category == "format_error"
    assert evaluate_completion(ROW, "<event><name>" * 80_000 + "</schedule>").category == "format_error"
    assert time.perf_counter() - t0 < 2.0


# ----------------------------------------------- property: agrees with the regex reference
WHITESPACE = st.sampled_from(["", "", " ", "\n", "\t", "\u00a0", "\u2003", "\x1c"])
NAMES = [e[0] for row in ROWS[:10] for e in row["events"]]


@st.composite
def mutated_event(draw, row):
    name, start, end = draw(st.sampled_from(row["events"]))
    kind = draw(
        st.sampled_from(
            ["same"] * 6 + ["spaces", "other_name", "time", "swap", "unicode_digit", "newline", "lt", "short_time"]
        )
    )
    if kind == "spaces":
        name = draw(st.sampled_from([" ", "\n"])) + name + draw(st.sampled_from(["", " "]))
    elif kind == "other_name":
        name = draw(st.sampled_from(NAMES))
    elif kind == "time":
        start = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15, 30, 45])):02d}"
    elif kind == "swap":
        start, end = end, start
    elif kind == "unicode_digit":
        start = "\u0660" + start[1:]  # ARABIC-INDIC ZERO: \d matches it
    elif kind == "newline":
        name = name.replace(" ", "\n", 1)
    elif kind == "lt":
        name = name + "<"
    elif kind == "short_time":
        end = end[:-1]
    w = [draw(WHITESPACE) for _ in range(4)]
    text = f"<event>{w[0]}<name>{name}</name>{w[1]}<start>{start}</start>{w[2]}<end>{end}</end>{w[3]}</event>"
    if draw(st.integers(0, 9)) == 0:  # occasionally drop a random slice of the event
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 12)))
        text = text[:a] + text[b:]
    return text


@st.composite
def completion_for(draw):
    row = draw(st.sampled_from(ROWS[:30]))
    # Mostly sorted subsets of the problem's events (so valid answers occur), then mutations.
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(row["events"]), min_size=2, max_size=6, unique_by=tuple))
        chosen.sort(key=lambda e: e[1])
        if draw(st.booleans()):  # out of order
            chosen = draw(st.permutations(chosen))
        events = [ev(*e) for e in chosen]
        if chosen and draw(st.booleans()):
            events.insert(draw(st.integers(0, len(events))), draw(mutated_event(row)))
    else:
        events = draw(st.lists(mutated_event(row), min_size=1, max_size=6))
    think_events = draw(st.lists(mutated_event(row), max_size=2)) if draw(st.integers(0, 3)) == 0 else []
    sep = draw(st.sampled_from(["", "\n", " junk "]))
    text = ""
    if draw(st.booleans()):
        text += "<think>reasoning " + "".join(think_events) + "</think>\n"
    text += draw(st.sampled_from(["<schedule>"] * 8 + ["", "<schedule"])) + sep
    text += sep.join(events) + sep
    text += draw(st.sampled_from(["</schedule>"] * 7 + ["", "</schedule", "</schedule>tail"]))
    if draw(st.integers(0, 9)) == 0:  # a length cut-off
        text = text[: draw(st.integers(0, len(text)))]
    return row, text


@given(completion_for())
def test_agrees_with_regex_reference(case):
    row, text = case
    result = evaluate_completion(row, text)
    assert (result.category, result.score) == regex_reference(row, text)
    assert 0.0 <= result.score <= 1.0


def test_generated_cases_cover_every_category():
    # The property test is only as good as its inputs: make sure they reach every category.
    seen = set()

    @settings(max_examples=300, derandomize=True, database=None)  # deterministic in CI
    @given(completion_for())
    def collect(case):
        seen.add(regex_reference(*case)[0])

    collect()
    assert seen == set(CATEGORIES)


# ------------------------------------------------------------------------------ evaluate
def dp_answer(row: dict) -> str:
    return format_answer("dp", optimal_schedule(row["events"], row["priority_events"])[1])


def test_evaluate_summary():
    completions = [answer(B, C, L), answer(B, G, L), "nothing", answer(C), answer(L, B), answer(B, G, C), answer(B, B)]
    summary = evaluate([ROW] * len(completions), completions)
    assert isinstance(summary, EvalSummary)
    d = summary.as_dict()
    assert (
        tuple(d)
        == SUMMARY_KEYS
        == ("n", "valid", "mean_score", "format_errors", "fewer_than_2_events", "nonexistent", "unsorted", "overlaps")
    )
    assert d == {
        "n": 7,
        "valid": 2,
        "mean_score": pytest.approx(100 * (1 + 150 / 210) / 7),
        "format_errors": 1,
        "fewer_than_2_events": 1,
        "nonexistent": 1,
        "unsorted": 1,
        "overlaps": 1,
    }
    frame = summary.to_frame()
    assert list(frame.columns) == ["row", "category", "score", "n_events", "reason"]
    assert frame["category"].tolist() == [
        "valid",
        "valid",
        "format_error",
        "fewer_than_2_events",
        "unsorted",
        "overlap",
        "nonexistent",
    ]
    assert "mean score" in str(summary)


def test_evaluate_test_split_dp_is_100():
    summary = evaluate(ROWS, [dp_answer(r) for r in ROWS])
    assert summary.valid == 100 and summary.mean_score == pytest.approx(100.0)


def test_count_mismatch():
    with pytest.raises(ValueError, match="2 completions for 1 dataset rows"):
        evaluate([ROW], ["a", "b"])
    with pytest.raises(ValueError, match="no dataset rows"):
        evaluate([], [])


def test_published_results():
    by_model = {r["model"]: r for r in PUBLISHED_RESULTS}
    assert by_model["Qwen2.5-Coder-7B-Instruct"]["mean_score"] == 8.05
    assert by_model["anakin87/qwen-scheduler-7b-grpo"]["valid"] == 63
    assert all("anakin87" in r["source"] and "not on ours" in r["note"] for r in PUBLISHED_RESULTS)


# --------------------------------------------------------------------------- file I/O
def test_save_load_roundtrip(tmp_path):
    completions = ["a\nb", [{"role": "assistant", "content": "chat"}], None, "ünïcode </schedule>"]
    path = save_completions(tmp_path / "sub" / "c.jsonl", completions, extra={"model": "m"})
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"completion": "a\nb", "model": "m"}
    assert load_completions(path) == ["a\nb", "chat", "", "ünïcode </schedule>"]
    with pytest.raises(ValueError, match="completion"):
        save_completions(tmp_path / "x.jsonl", ["a"], extra={"completion": 1})


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_short_one(tmp_path):
    """A cache takes an existing completions file for a finished evaluation: a failed write must not leave one."""
    path = save_completions(tmp_path / "c.jsonl", ["old"])

    def answers():
        yield "new"
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        save_completions(path, answers())
    assert load_completions(path) == ["old"] and [p.name for p in tmp_path.iterdir()] == ["c.jsonl"]
    with pytest.raises(RuntimeError):
        save_completions(tmp_path / "d.jsonl", answers())
    assert not (tmp_path / "d.jsonl").exists()


def test_load_folder(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(f"c{i}", encoding="utf-8")
    (tmp_path / "README.md").write_text("ignored")
    assert load_completions(tmp_path) == ["c0", "c1", "c2"]
    with pytest.raises(ValueError, match="dataset has 4 rows"):
        load_completions(tmp_path, expected=4)
    (tmp_path / "1.txt").unlink()
    with pytest.raises(ValueError, match="missing 1: 1.txt"):
        load_completions(tmp_path)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such completions"):
        load_completions(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"completion": "a"}\n{"completion": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        load_completions(bad)
    bad.write_text('{"completion": "a"}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r'bad.jsonl:2: no "completion" key'):
        load_completions(bad)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(ValueError, match="no completion files"):
        load_completions(empty)


# -------------------------------------------------------------------------------- CLI
def run_cli(*args: str, module: str = "utils.evaluate") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture()
def small_data(tmp_path) -> tuple[Path, list[str]]:
    rows = ROWS[:5]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    completions = [dp_answer(r) for r in rows[:3]] + ["no answer", dp_answer(rows[0])]
    return data, completions


def test_cli_jsonl_json(small_data, tmp_path):
    data, completions = small_data
    path = save_completions(tmp_path / "c.jsonl", completions)
    out = run_cli("--data", data, "--completions", path, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert tuple(result) == SUMMARY_KEYS
    assert result["n"] == 5 and result["valid"] == 3 and result["format_errors"] == 1
    assert result["nonexistent"] + result["fewer_than_2_events"] + result["unsorted"] + result["overlaps"] == 1
    assert result["mean_score"] == pytest.approx(60.0)


def test_cli_folder_table(small_data, tmp_path):
    data, completions = small_data
    folder = tmp_path / "published"
    folder.mkdir()
    for i, c in enumerate(completions):
        (folder / f"{i}.txt").write_text(c, encoding="utf-8")
    out = run_cli("--data", data, "--completions", folder)
    assert out.returncode == 0, out.stderr
    assert "valid schedules" in out.stdout and "60.00" in out.stdout


@pytest.mark.parametrize("problem", ["missing", "mismatch", "malformed", "missing_data"])
def test_cli_errors_exit_2(problem, small_data, tmp_path):
    data, completions = small_data
    path = tmp_path / "c.jsonl"
    if problem == "mismatch":
        save_completions(path, completions[:4])
        expect = "4 completions but the dataset has 5 rows"
    elif problem == "malformed":
        path.write_text('{"completion": "a"}\n{oops\n', encoding="utf-8")
        expect = "c.jsonl:2"
    elif problem == "missing_data":
        save_completions(path, completions)
        data = tmp_path / "nope.jsonl"
        expect = "no such dataset file"
    else:
        expect = "no such completions file"
    out = run_cli("--data", data, "--completions", path, "--json")
    assert out.returncode == 2
    assert expect in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


# --------------------------------------------------- rows and files that broke the CLI (issue 18)
def cli_with_row(tmp_path, line: str | bytes, completions=None) -> subprocess.CompletedProcess:
    data = tmp_path / "data.jsonl"
    (data.write_bytes if isinstance(line, bytes) else data.write_text)(line)
    path = save_completions(tmp_path / "c.jsonl", completions or [answer(B, C, L)])
    return run_cli("--data", data, "--completions", path, "--json")


@pytest.mark.parametrize(
    "change, expect",
    [
        ({"priority_events": 5}, "data.jsonl row 0: priority_events must be a list"),
        ({"events": 5}, "data.jsonl row 0: events must be a non-empty list"),
        ({"events": [["A"]]}, "data.jsonl row 0: event must be [name, 'HH:MM', 'HH:MM'], got ['A']"),
        ({"optimal_score": 1e-320}, "data.jsonl row 0: optimal_score 1e-320 is below the value of 'Call' alone"),
        ({"optimal_score": -5}, "row 0: optimal_score -5 is below"),
        ({"events": [["A<B", "08:00", "09:00"], ["L", "12:00", "13:00"]], "priority_events": []}, "'<'"),
        ({"priority_events": [" Call "]}, "priority event ' Call ': names must not start or end with spaces"),
    ],
)
def test_cli_refuses_rows_that_are_not_problems(change, expect, tmp_path):
    """Items 8, 9, 10 and 13: tracebacks (rc 1), or a score from a broken row (1e-320 gave
    "mean_score": Infinity, which strict JSON readers refuse)."""
    out = cli_with_row(tmp_path, json.dumps({**ROW, **change}) + "\n")
    assert out.returncode == 2 and expect in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN"])
def test_cli_refuses_non_json_numbers(constant, tmp_path):
    out = cli_with_row(tmp_path, json.dumps(ROW).replace("210", constant) + "\n")
    assert out.returncode == 2 and f"data.jsonl:1: not valid JSON ({constant} is not a JSON value" in out.stderr


def test_cli_names_file_and_line_of_a_non_utf8_byte(tmp_path):
    line = json.dumps(ROW).encode()
    out = cli_with_row(tmp_path, line + b"\n" + line.replace(b"Gym", b"G\xffm") + b"\n")
    assert out.returncode == 2 and "data.jsonl:2: not UTF-8 text (byte 0xff" in out.stderr, out.stderr


def test_cli_output_is_strict_json(small_data, tmp_path):
    data, completions = small_data
    out = run_cli("--data", data, "--completions", save_completions(tmp_path / "c.jsonl", completions), "--json")

    def refuse(name):
        raise AssertionError(f"{name} in the output")

    json.loads(out.stdout, parse_constant=refuse)


def test_a_folder_numbered_up_to_a_huge_number_is_a_quick_error(tmp_path):
    """Item 13: 0.txt and 100000000000000000000.txt made the loader build a list of 10^20 numbers."""
    (tmp_path / "0.txt").write_text("a")
    (tmp_path / "100000000000000000000.txt").write_text("b")
    with pytest.raises(
        ValueError,
        match=r"found 2 files up to 100000000000000000000.txt, missing 99999999999999999999: "
        r"1.txt, 2.txt, 3.txt, 4.txt, 5.txt \.\.\.",
    ):
        load_completions(tmp_path)


def test_evaluate_refuses_infinite_optimum_in_memory():
    with pytest.raises(ValueError, match="row 0: optimal_score must be a finite number, got inf"):
        evaluate([{**ROW, "optimal_score": float("inf")}], [answer(B, C, L)])


def test_save_completions_writes_strict_json(tmp_path):
    with pytest.raises(ValueError, match="JSON compliant"):
        save_completions(tmp_path / "c.jsonl", ["a"], extra={"temperature": float("nan")})
