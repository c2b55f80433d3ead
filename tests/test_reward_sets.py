"""The reward set notebook 03 writes (outputs/my_rewards.py: REWARDS and WEIGHTS) and training loads.

load_reward_set() is what notebook 03's checks, notebook 05 and scripts/train_grpo.py call: the
file, checked, or the course's default without it. A file that cannot be used gives one line; a
file that hangs, exits or is a link is refused without running anything else (issue 23, items 4,
5, 10, 18, 22).
"""

import os
import time

import pytest

from utils.rewards import (
    DEFAULT_REWARDS,
    SEED_REWARDS,
    RewardSetError,
    format_reward,
    load_reward_set,
    maximal_score_reward,
    my_rewards_path,
    score_reward,
    sorted_events_reward,
    strict_score_reward,
)

MY_REWARDS = """
import re

from utils.rewards import format_reward, parse_completion, strict_score_reward

THINK = re.compile(r"<think>", re.I)
BONUS = 2.5


def thinks_twice(completions, **kwargs):
    return [BONUS * len(THINK.findall(parse_completion(c).text)) for c in completions]


thinks_twice.reward_range = (0, 100)

REWARDS = [format_reward, thinks_twice, strict_score_reward]
WEIGHTS = [1, 0.5, 2.0]
"""

ANSWER = "<think>x</think><THINK><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event></schedule>"


def _write(text: str):
    path = my_rewards_path()
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_the_working_default_and_the_seed_is_one_switch_away():
    funcs, weights, where = load_reward_set()
    assert [f.__name__ for f in funcs] == list(DEFAULT_REWARDS) and weights == [1.0, 1.0]
    assert funcs == [format_reward, maximal_score_reward]  # no order reward: it paid for invented events in order
    assert "default" in where and str(my_rewards_path()) in where and "\n" not in where
    assert SEED_REWARDS == ("format_reward", "sorted_events_reward", "score_reward")
    _write("from utils.rewards import *\nREWARDS = [format_reward, sorted_events_reward, score_reward]\n")
    funcs, weights, _ = load_reward_set()
    assert funcs == [format_reward, sorted_events_reward, score_reward] and weights == [1.0, 1.0, 1.0]


def test_own_rewards_load_from_the_file():
    path = _write(MY_REWARDS)
    funcs, weights, where = load_reward_set()
    assert [f.__name__ for f in funcs] == ["format_reward", "thinks_twice", "strict_score_reward"]
    assert funcs[0] is format_reward and funcs[2] is strict_score_reward and weights == [1.0, 0.5, 2.0]
    assert funcs[1]([ANSWER]) == [5.0] and funcs[1].reward_range == (0, 100)
    assert where.startswith(f"{path} (written ") and where.endswith("just now)")


def test_the_notebook_flow_writefile_then_load():
    """Notebook 03's cells in a real IPython shell: %%writefile, then load as training will."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    cells = [
        "from utils.rewards import check_reward_function, load_reward_set, my_rewards_path\n"
        "REWARDS_FILE = my_rewards_path()",
        f'%%writefile "{{REWARDS_FILE}}"\n{MY_REWARDS}',
        "REWARDS, WEIGHTS, where = load_reward_set()\nassert all(check_reward_function(f).ok for f in REWARDS)",
    ]
    try:
        for cell in cells:
            result = shell.run_cell(cell)
            assert result.success, (cell, result.error_before_exec or result.error_in_exec)
        assert shell.user_ns["WEIGHTS"] == [1.0, 0.5, 2.0]
    finally:
        InteractiveShell.clear_instance()


@pytest.mark.parametrize(
    "text, message",
    [
        ("X = 1\n", "defines no REWARDS"),
        ("REWARDS = []\n", "non-empty list"),
        ("REWARDS = 'format_reward'\n", "non-empty list"),
        ("REWARDS = [1]\n", "reward 0 is 1, not a function"),
        ("from utils.rewards import *\nREWARDS = [format_reward, format_reward]\n", "named 'format_reward'"),
        ("from utils.rewards import *\nREWARDS = [format_reward]\nWEIGHTS = [1, 2]\n", "1 rewards but 2 weights"),
        ("from utils.rewards import *\nREWARDS = [format_reward]\nWEIGHTS = [float('nan')]\n", "finite number"),
        ("from utils.rewards import *\nREWARDS = [format_reward]\nWEIGHTS = ['2']\n", "finite number"),
        ("from utils.rewards import *\nREWARDS = [format_reward]\nWEIGHTS = [True]\n", "finite number"),
        ("from utils.rewards import *\nREWARDS = [format_reward]\nWEIGHTS = 1.0\n", "list of 1 numbers"),
        ("def broken(:\n", "SyntaxError"),
        ("import no_such_module_here\n", "ModuleNotFoundError: No module named 'no_such_module_here'"),
        ("raise RuntimeError('line one\\nline two')\n", "RuntimeError: line one"),
    ],
)
def test_an_unusable_file_is_refused_with_one_line(text, message):
    """Issue 18.11: no silent empty set, no NaN weight, no quiet fallback to another set."""
    _write(text)
    with pytest.raises(RewardSetError, match=message) as info:
        load_reward_set()
    assert "\n" not in str(info.value) and str(my_rewards_path()) in str(info.value)
    assert "delete the file to train with the course's default" in str(info.value)


@pytest.mark.parametrize("weight", ["1e308", "-1e308", "1e7"])
def test_a_weight_that_makes_the_total_infinite_is_refused(weight):
    """Issue 23.10: a weight of 1e308 was accepted and the total reward became inf."""
    _write(f"from utils.rewards import *\nREWARDS = [format_reward, score_reward]\nWEIGHTS = [1.0, {weight}]\n")
    with pytest.raises(RewardSetError, match="too large"):
        load_reward_set()


def test_a_file_that_never_finishes_importing_is_stopped():
    """Issue 23.4: `while True: pass` at the top of my_rewards.py hung loading and training forever."""
    _write("while True:\n    pass\n")
    t0 = time.perf_counter()
    with pytest.raises(RewardSetError, match="did not finish importing within 2 s") as info:
        load_reward_set(timeout=2)
    assert time.perf_counter() - t0 < 20 and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "top, message",
    [
        ("import sys\nsys.exit(0)\n", "calls sys.exit()"),
        ("exit()\n", "calls sys.exit()"),
        ("import os\nos._exit(0)\n", r"ended the process while it was imported \(exit code 0\)"),
        ("raise KeyboardInterrupt\n", "cannot be imported: KeyboardInterrupt"),
    ],
)
def test_a_file_that_ends_the_program_is_refused_with_one_line(top, message):
    """Issue 23.18: sys.exit / os._exit at the top ended training with rc 0; KeyboardInterrupt gave a traceback."""
    _write(top + "from utils.rewards import *\nREWARDS = [format_reward]\n")
    with pytest.raises(RewardSetError, match=message) as info:
        load_reward_set()
    assert "\n" not in str(info.value)


def test_only_the_file_at_its_own_place_is_read(tmp_path):
    """Issue 23.5: a saved set could name any .py on disk (a link, ../.., the standard library),
    and it was run. Now the course reads one plain file at its place; a link there is refused
    without running its target."""
    ran = tmp_path / "ran"
    target = tmp_path / "elsewhere.py"
    target.write_text(f"open({str(ran)!r}, 'w').close()\nREWARDS = []\n")
    my_rewards_path().symlink_to(target)
    for call in (load_reward_set, my_rewards_path):
        with pytest.raises(RewardSetError, match="is a link") as info:
            call()
        assert "\n" not in str(info.value)
    link = tmp_path / "a_link.py"
    link.symlink_to(target)
    with pytest.raises(RewardSetError, match="is a link"):
        load_reward_set(link)
    assert not ran.exists()


def test_bad_paths_give_one_line(tmp_path):
    """Issue 23.22: a NUL byte gave a bare ValueError; a folder was reported as missing; saving
    to a folder gave IsADirectoryError."""
    with pytest.raises(RewardSetError, match="NUL byte"):
        load_reward_set(str(tmp_path / "my\0rewards.py"))
    with pytest.raises(RewardSetError, match="ending in .py"):
        load_reward_set(tmp_path / "rewards.json")
    (tmp_path / "folder.py").mkdir()
    with pytest.raises(RewardSetError, match="is a folder"):
        load_reward_set(tmp_path / "folder.py")
    my_rewards_path().mkdir()  # where notebook 03's ✏️ cell writes: the cell would fail with a traceback
    for call in (my_rewards_path, load_reward_set):
        with pytest.raises(RewardSetError, match="is a folder: delete or rename it") as info:
            call()
        assert "\n" not in str(info.value)


def test_the_file_is_run_in_this_process_once_the_fork_saw_it_finish(tmp_path):
    """The functions training gets are this process's (TRL calls them here), from the same text."""
    _write(MY_REWARDS + f"\nimport os\nPID = os.getpid()\nopen({str(tmp_path / 'runs')!r}, 'a').write('x')\n")
    funcs, _, _ = load_reward_set()
    module = __import__("sys").modules[funcs[1].__module__]
    assert module.PID == os.getpid() and (tmp_path / "runs").read_text() == "xx"  # once in the fork, once here


def test_a_reward_of_yours_named_like_a_library_one_is_refused_before_it_hides_one():
    """Notebook 05's extra reward cell: a learner's own ``format_reward`` next to the library's. The group probe adds
    rewards up by name, so one hid the other (a total of 6.0 or 0.0 where 3.0 is right); TRL logs them under one
    name. Now every place that takes a set refuses it with one line naming the clash."""
    from utils.rewards import check_reward_set
    from utils.rewards import format_reward as library_format
    from utils.rewards.checker import assert_reward_set_ok
    from utils.train.group_probe import group_rewards

    def format_reward(completions, **kwargs):  # the learner's own, under the library's name
        return [3.0] * len(completions)

    for check in (
        lambda: check_reward_set([library_format, format_reward], [1.0, 1.0]),
        lambda: assert_reward_set_ok([format_reward, library_format], [1.0, 1.0]),
        lambda: group_rewards([], [], [library_format, format_reward], [1.0, 1.0]),
    ):
        with pytest.raises(ValueError, match="two rewards are named 'format_reward'") as info:
            check()
        assert "\n" not in str(info.value) and "rename yours" in str(info.value)
    assert check_reward_set([library_format], None) == [1.0]  # one of each: fine
