"""Issue 23, the input-robustness items: hostile input to the rewards, the reward checker, explain(),
the data readers and both command lines gives one line saying what is wrong, never a traceback,
a RecursionError, a MemoryError, an overwritten file or a process left running."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import pytest

from utils.evaluate import evaluation
from utils.paths import TRAIN_FILE
from utils.rewards import explain, format_reward, score_reward
from utils.rewards.checker import SAMPLE_PROBLEM, check_reward_function
from utils.rewards.parsing import completion_text, parse_completion
from utils.rewards.reference import REFERENCE_REWARDS, reference_score_reward
from utils.rewards.registry import LIBRARY_REWARDS
from utils.task import data
from utils.task.datagen import GeneratorConfig, generate_problem
from utils.task.datagen import main as task_main
from utils.task.prompts import format_answer
from utils.task.scheduling import optimal_schedule

PROBLEM = {k: v for k, v in SAMPLE_PROBLEM.items() if k != "prompt"}
GOOD = format_answer("keep the run", optimal_schedule(PROBLEM["events"], PROBLEM["priority_events"])[1])


def columns(n: int) -> dict:
    return {k: [v] * n for k, v in PROBLEM.items()}


def one_line(text: str) -> bool:
    return "\n" not in text.strip() and "Traceback" not in text


# --------------------------------------------------------------- item 11: column lengths
def test_reference_score_reward_refuses_columns_of_another_length_like_the_course():
    """It padded or cut the columns and scored each answer against another row's problem ([70, 0])."""
    two = [GOOD, "junk"]
    with pytest.raises(ValueError, match="lengths") as ours:
        score_reward(two, **columns(1))
    with pytest.raises(ValueError, match="lengths") as theirs:
        reference_score_reward(two, **columns(1))
    assert str(theirs.value) == str(ours.value)
    with pytest.raises(ValueError, match="lengths"):
        reference_score_reward([GOOD], **columns(3))
    assert reference_score_reward([GOOD], **columns(1)) == [70.0]  # the right length still scores


def test_reference_score_reward_keeps_its_touching_events_defect():
    """Only the length check changed: two touching events still count as overlapping."""
    events = [["A", "08:00", "09:00"], ["B", "09:00", "10:00"], ["C", "08:30", "09:30"]]
    cols = {"events": [events], "priority_events": [[]], "optimal_score": [120]}
    answer = format_answer("touching", [events[0], events[1]])
    assert score_reward([answer], **cols) == [70.0]
    assert reference_score_reward([answer], **cols) == [0.0]


# --------------------------------------------------------------- item 12: one string
@pytest.mark.parametrize("name", sorted(LIBRARY_REWARDS))
@pytest.mark.parametrize("single", [GOOD, GOOD.encode(), bytearray(GOOD.encode())], ids=["str", "bytes", "bytearray"])
def test_every_reward_refuses_one_string_instead_of_a_list(name, single):
    """format_reward("<think>...") scored each character as an answer (one 0 per character)."""
    with pytest.raises(TypeError, match=r"wrap a single answer as \[answer\]") as err:
        LIBRARY_REWARDS[name](single, **columns(1))
    assert one_line(str(err.value))


@pytest.mark.parametrize("name", sorted(LIBRARY_REWARDS))
def test_every_reward_still_takes_a_list_a_tuple_or_chat_messages(name):
    fn = LIBRARY_REWARDS[name]
    chat = [[{"role": "assistant", "content": GOOD}]]
    assert fn([GOOD], **columns(1)) == fn((GOOD,), **columns(1)) == fn(chat, **columns(1))


# --------------------------------------------------------------- item 16: 10**400
def test_checker_reports_a_value_no_float_can_hold_in_one_line():
    def huge(completions, **kwargs):
        return [10**400] * len(completions)

    report = check_reward_function(huge)  # raised OverflowError
    assert not report.ok
    assert any("not a finite number" in m for m in report.messages)
    assert all(one_line(m) and len(m) < 200 for m in report.messages)


# --------------------------------------------------------------- item 19: deep JSON
DEEP = "[" * 100_000


def test_load_jsonl_names_file_and_line_of_json_nested_too_deeply(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text(f'{{"x": 1}}\n{DEEP}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}:2: JSON nested too deeply") as err:  # was RecursionError
        data.load_jsonl(path)
    assert one_line(str(err.value))


@pytest.mark.parametrize("which", ["--data", "--completions"])
def test_evaluate_cli_names_file_and_line_of_json_nested_too_deeply(which, tmp_path, capsys, test_rows):
    deep = tmp_path / "deep.jsonl"
    deep.write_text(DEEP + "\n", encoding="utf-8")
    dataset = tmp_path / "data.jsonl"
    dataset.write_text(json.dumps(test_rows[0]) + "\n", encoding="utf-8")
    completions = tmp_path / "completions.jsonl"
    completions.write_text('{"completion": "x"}\n', encoding="utf-8")
    paths = {"--data": dataset, "--completions": completions, which: deep}
    assert evaluation.main([f"{k}={v}" for k, v in paths.items()]) == 2
    err = capsys.readouterr().err
    assert f"{deep}:1: JSON nested too deeply" in err and one_line(err)


# --------------------------------------------------------------- item 20: a list holding itself
def _self_referential() -> list:
    loop: list = []
    loop.append(loop)
    return loop


def _wide_self_referential() -> list:
    loop: list = []
    loop.extend([loop] * 1000)  # 1000**depth paths if nothing stopped the walk
    return loop


@pytest.mark.parametrize("make", [_self_referential, _wide_self_referential])
def test_a_list_holding_itself_is_no_text_for_every_reader(make):
    completion = make()
    t0 = time.perf_counter()
    assert completion_text(completion) == ""
    assert parse_completion(completion).events == []
    for fn in REFERENCE_REWARDS:  # each raised RecursionError
        assert fn([completion], **columns(1)) == [0.0]
    assert format_reward([completion]) == [0.0]
    assert explain(PROBLEM, completion).check.events == []
    assert time.perf_counter() - t0 < 5


def test_deep_but_honest_chat_messages_still_read():
    parts = [{"role": "assistant", "content": [{"content": GOOD}]}]  # content given as a list of parts
    assert completion_text(parts) == GOOD


# --------------------------------------------------------------- item 21: explain's problem
def test_explain_says_what_a_problem_is():
    with pytest.raises(ValueError, match=r"lacks \['events', 'priority_events', 'optimal_score'\]"):
        explain({}, "x")  # was KeyError
    with pytest.raises(TypeError, match="problem must be a dataset row"):
        explain(None, "x")  # was "'NoneType' object is not subscriptable"
    with pytest.raises(ValueError, match=r"lacks \['optimal_score'\]"):
        explain({"events": PROBLEM["events"], "priority_events": []}, GOOD)


@pytest.mark.parametrize(
    "row",
    [
        dict(events=5, priority_events=5, optimal_score=5),
        dict(events=[5, None], priority_events=[3], optimal_score="x"),
    ],
)
def test_explain_shows_a_row_that_is_not_a_problem_instead_of_raising(row):
    """A row of the right keys but wrong shapes is shown as not a problem (it raised TypeError)."""
    with pytest.warns(RuntimeWarning, match="not a problem of the course"):  # the score reward says why it gives 0
        shown = str(explain(row, GOOD))
    assert "NOT A PROBLEM OF THE COURSE" in shown


# --------------------------------------------------------------- item 25: python -m utils.task
def _outputs(tmp_path: Path, train: Path | str) -> list[str]:
    """All three outputs away from data/: the course's own test files may be replaced without --force."""
    return ["--train", str(train), "--test", str(tmp_path / "t.jsonl"), "--test-other-style", str(tmp_path / "o.jsonl")]


@pytest.mark.parametrize("target", ["folder", "/proc/version"])
def test_task_cli_refuses_a_folder_or_a_system_file_in_one_line(target, tmp_path, capsys):
    if target == "folder":
        target = tmp_path / "a folder"
        target.mkdir()
    elif not Path(target).exists():
        pytest.skip(f"{target} does not exist here")
    assert task_main(_outputs(tmp_path, target)) == 2  # tracebacks before
    err = capsys.readouterr().err
    assert err.startswith("error: --train") and one_line(err)
    assert not (tmp_path / "t.jsonl").exists()  # refused before anything was written


def test_task_cli_never_overwrites_a_file_that_is_not_the_courses_without_force(tmp_path, capsys):
    mine = tmp_path / "mine.jsonl"
    mine.write_text("my notes\n", encoding="utf-8")
    assert task_main(_outputs(tmp_path, mine)) == 2
    err = capsys.readouterr().err
    assert "--force" in err and one_line(err)
    assert mine.read_text(encoding="utf-8") == "my notes\n"
    assert task_main([*_outputs(tmp_path, mine), "--force"]) == 0
    assert mine.read_bytes() == TRAIN_FILE.read_bytes()


def test_task_cli_refuses_two_outputs_in_one_file(tmp_path, capsys):
    same = tmp_path / "same.jsonl"
    argv = ["--train", str(same), "--test", str(same), "--test-other-style", str(tmp_path / "o.jsonl")]
    assert task_main(argv) == 2
    assert "name the same file" in capsys.readouterr().err
    assert not same.exists()


def test_task_cli_check_on_a_file_that_is_not_utf8_says_it_differs(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\xff\xfe not text")
    assert task_main(["--check", *_outputs(tmp_path, bad)]) == 1  # was UnicodeDecodeError
    assert f"{bad} (not UTF-8 text)" in capsys.readouterr().out


def test_task_cli_help_documents_force(capsys):
    with pytest.raises(SystemExit):
        task_main(["--help"])
    assert "--force" in capsys.readouterr().out


# --------------------------------------------------------------- item 26: input size
@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(data, "MAX_INPUT_BYTES", 2**20)
    monkeypatch.setattr(evaluation, "MAX_INPUT_BYTES", 2**20)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_load_jsonl_stops_at_the_size_limit_on_an_endless_file(small_limit):
    with pytest.raises(ValueError, match="MAX_INPUT_BYTES") as err:  # was MemoryError
        data.load_jsonl("/dev/zero")
    assert one_line(str(err.value))


def test_a_file_over_the_limit_is_refused_before_it_is_read(small_limit, tmp_path):
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as fh:
        fh.truncate(2**20 + 1)  # sparse: costs no disk
    with pytest.raises(ValueError, match="MAX_INPUT_BYTES"):
        data.load_jsonl(big)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("which", ["--data", "--completions"])
def test_evaluate_cli_stops_at_the_size_limit(which, small_limit, tmp_path, capsys, test_rows):
    dataset = tmp_path / "data.jsonl"
    dataset.write_text(json.dumps(test_rows[0]) + "\n", encoding="utf-8")
    completions = tmp_path / "completions.jsonl"
    completions.write_text('{"completion": "x"}\n', encoding="utf-8")
    paths = {"--data": dataset, "--completions": completions, which: "/dev/zero"}
    assert evaluation.main([f"{k}={v}" for k, v in paths.items()]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero: more than 1 MiB" in err and one_line(err)


def test_a_completions_folder_over_the_limit_is_refused(small_limit, tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text("x" * 2**19, encoding="utf-8")
    with pytest.raises(ValueError, match="in all"):
        evaluation.load_completions(tmp_path)


def test_completions_still_read_as_before(tmp_path):
    (tmp_path / "0.txt").write_bytes(b"a\r\nb\rc\xff")
    assert evaluation.load_completions(tmp_path) == ["a\nb\nc\ufffd"]
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"completion": "x", "score": NaN}\r\n\r\n{"completion": [{"content": "y"}]}\n')
    assert evaluation.load_completions(path) == ["x", "y"]


# --------------------------------------------------------------- item 27: the checker
def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "gone"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_checker_kills_what_a_hanging_reward_started(tmp_path):
    pids = tmp_path / "pids"

    def starts_and_hangs(completions, **kwargs):
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pids.write_text(str(child.pid))
        while True:
            time.sleep(0.05)

    report = check_reward_function(starts_and_hangs, timeout=2.0)  # time to start its child on a busy machine
    assert not report.ok and "did not return" in str(report)
    pid = int(pids.read_text())
    deadline = time.monotonic() + 5
    while _state(pid) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    state = _state(pid)
    if state not in ("gone", "Z"):
        os.kill(pid, 9)  # don't leave it behind when the test fails
    assert state in ("gone", "Z"), "the reward's own child was still running after the check"


def test_checker_reports_a_keyboard_interrupt_in_one_line_and_the_child_stays_quiet(capfd):
    def interrupted(completions, **kwargs):
        raise KeyboardInterrupt

    report = check_reward_function(interrupted)
    assert not report.ok
    assert all(one_line(m) for m in report.messages)
    assert "KeyboardInterrupt" in report.messages[0] and "stop the run" in report.messages[0]
    assert "Traceback" not in capfd.readouterr().err  # the forked children printed theirs


def test_checker_notes_a_reward_that_is_none_for_everything():
    def never_applies(completions, **kwargs):
        return [None] * len(completions)

    report = check_reward_function(never_applies)
    assert report.ok  # None is allowed...
    assert any("no signal" in m for m in report.messages)  # ...but all None teaches nothing


# --------------------------------------------------------------- item 28: GeneratorConfig types
@pytest.mark.parametrize(
    "knobs, knob",
    [
        (dict(min_events="4"), "min_events"),
        (dict(max_events=8.0), "max_events"),
        (dict(durations=(15, "30")), "durations"),
        (dict(durations=30), "durations"),
        (dict(day_start=700), "day_start"),
        (dict(overlap_probability="0.2"), "overlap_probability"),
        (dict(theme=["fitness"]), "theme"),
        (dict(names=None), "names"),
        (dict(max_tries=True), "max_tries"),
    ],
)
def test_generator_config_names_a_knob_of_the_wrong_type(knobs, knob):
    with pytest.raises(TypeError, match=f"GeneratorConfig.{knob} must be") as err:
        GeneratorConfig(**knobs)
    assert one_line(str(err.value))


@pytest.mark.parametrize(
    "knobs, message",
    [(dict(max_tries=0), "max_tries"), (dict(max_overlap_ratio=float("nan")), "max_overlap_ratio")],
)
def test_generator_config_ranges_the_types_let_through(knobs, message):
    with pytest.raises(ValueError, match=message):
        generate_problem(random.Random(0), GeneratorConfig(**knobs))


def test_generator_config_takes_durations_as_a_list():
    assert GeneratorConfig(durations=[15, 30]).durations == (15, 30)


def test_gzip_jsonl_is_read_and_bombs_and_junk_are_refused(tmp_path, monkeypatch):
    """The committed GRPO samples are gzip-compressed JSONL: read like plain JSONL, with the same size cap
    applied to what they decompress to, and one-line errors for a damaged file."""
    import gzip

    good = tmp_path / "samples.jsonl.gz"
    good.write_bytes(gzip.compress(b'{"step": 10}\n{"step": 20}\n'))
    assert data.load_jsonl(good) == [{"step": 10}, {"step": 20}]
    monkeypatch.setattr(data, "MAX_INPUT_BYTES", 1000)
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * 100_000))  # 100 KB of output from a few hundred bytes
    assert bomb.stat().st_size < 1000
    with pytest.raises(ValueError, match="once decompressed, too large"):
        data.load_jsonl(bomb)
    junk = tmp_path / "junk.jsonl.gz"
    junk.write_bytes(b'{"step": 10}\n')  # plain text under a .gz name
    with pytest.raises(ValueError, match="not a readable gzip file"):
        data.load_jsonl(junk)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(b'{"step": 10}\n' * 50)[:-12])
    with pytest.raises(ValueError, match="cut short"):
        data.load_jsonl(cut)
