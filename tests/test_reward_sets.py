"""Saving the reward set chosen in notebook 03 and loading it for training (notebook 05, the script).

Your own rewards live in a file (notebook 03 writes it with %%writefile and imports it with
import_reward_file, as training does; %run works too, and ``runpy.run_path`` runs a file the way
%run does); reward_set.json holds names, weights and that file.
"""

import json
import runpy

import pytest

from utils.paths import output_dir
from utils.rewards import DEFAULT_REWARDS, format_reward, partial_format_reward, score_reward
from utils.rewards.saved import load_reward_set, reward_set_path, save_reward_set

RewardSetError = ValueError  # utils.rewards.RewardSetError, a ValueError with a one-line message


def my_rewards_path():
    return output_dir() / "my_rewards.py"  # utils.rewards.my_rewards_path()


# What section 9 of notebook 03 leaves behind: notebook variables that share names with attributes.
values = [1.0, 2.0]
name = "mixed quality"

MY_REWARDS = """
import re
from collections import Counter

from utils.rewards import parse_completion

THINK = re.compile(r"<think>", re.I)
BONUS = 2.5


def helper(text):
    return len(THINK.findall(text))


def thinks_twice(completions, **kwargs):
    return [BONUS * helper(c if isinstance(c, str) else c[0]["content"]) for c in completions]


thinks_twice.reward_range = (0, 100)


def weighted_priority_reward(completions, **kwargs):
    out = []
    for c in completions:
        counts = Counter(e.name for e in parse_completion(c).events)
        out.append(float(sum(counts.values())))
    return out
"""

ANSWER = "<think>x</think><THINK><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event></schedule>"


def _run_rewards_file(text=MY_REWARDS):
    """Write the ✏️ cell to outputs/my_rewards.py, then %run it (notebook 03 imports it instead)."""
    path = my_rewards_path()
    path.write_text(text, encoding="utf-8")
    return runpy.run_path(str(path))


def test_missing_file_gives_the_default():
    funcs, weights, where = load_reward_set()
    assert [f.__name__ for f in funcs] == list(DEFAULT_REWARDS) and weights == [1.0, 1.0, 1.0]
    assert "default" in where


def test_library_rewards_round_trip():
    path = save_reward_set([format_reward, partial_format_reward, score_reward], [1, 0.5, 2])
    assert path == reward_set_path() and path.exists()
    funcs, weights, where = load_reward_set()
    assert funcs == [format_reward, partial_format_reward, score_reward] and weights == [1.0, 0.5, 2.0]
    assert where.startswith(f"{path} (saved ") and "just now" in where


def test_own_rewards_round_trip_from_their_file():
    """Issue 18.6: `counts.values()` and `e.name` are attributes, not the notebook's `values` and
    `name`; saving refused the first and pasted `name = 'mixed quality'` into the second."""
    ns = _run_rewards_file()
    mine = [ns["thinks_twice"], ns["weighted_priority_reward"], score_reward]
    path = save_reward_set(mine, [1.0, 0.5, 2.0])
    text = path.read_text()
    assert "mixed quality" not in text and "source" not in text
    entries = json.loads(text)["rewards"]
    assert [(e["name"], e.get("file")) for e in entries] == [
        ("thinks_twice", "my_rewards.py"),
        ("weighted_priority_reward", "my_rewards.py"),
        ("score_reward", None),
    ]
    funcs, weights, _ = load_reward_set(path)
    assert funcs[0]([ANSWER]) == [5.0] and funcs[0].reward_range == (0, 100)
    assert funcs[1]([ANSWER]) == ns["weighted_priority_reward"]([ANSWER]) == [1.0]
    assert funcs[2] is score_reward and weights == [1.0, 0.5, 2.0]


def test_the_notebook_flow_writefile_run_save_load():
    """Notebook 03's cells in a real IPython shell: %%writefile, import, check, save; then load.
    And the same with %run instead of the import."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    cells = [
        "from utils.rewards import check_reward_function, import_reward_file, my_rewards_path, save_reward_set\n"
        "from utils.rewards import score_reward\n"
        "REWARDS_FILE = my_rewards_path()\nvalues = [1.0, 2.0]\nname = 'mixed quality'",
        f'%%writefile "{{REWARDS_FILE}}"\n{MY_REWARDS}',
        "my_rewards = import_reward_file(REWARDS_FILE)\n"
        "MY_REWARDS = [my_rewards.weighted_priority_reward, score_reward]",
        "assert check_reward_function(my_rewards.weighted_priority_reward).ok",
        "saved = save_reward_set(MY_REWARDS, [0.5, 1.0])",
        '%run "{REWARDS_FILE}"\nsaved = save_reward_set([weighted_priority_reward, score_reward], [0.5, 1.0])',
    ]
    try:
        for cell in cells:
            result = shell.run_cell(cell)
            assert result.success, (cell, result.error_before_exec or result.error_in_exec)
        funcs, weights, where = load_reward_set()
        assert [f.__name__ for f in funcs] == ["weighted_priority_reward", "score_reward"] and weights == [0.5, 1.0]
        assert where.startswith(str(reward_set_path())) and funcs[0]([ANSWER]) == [1.0]
    finally:
        InteractiveShell.clear_instance()


def test_what_cannot_be_saved():
    in_a_cell = {}
    exec(compile(MY_REWARDS, "/tmp/ipykernel_1234/2779183.py", "exec"), in_a_cell)  # a notebook cell
    with pytest.raises(RewardSetError, match="defined in a notebook cell.*%%writefile"):
        save_reward_set([in_a_cell["thinks_twice"]])
    with pytest.raises(RewardSetError, match="lambda"):
        save_reward_set([lambda completions, **kw: [0.0] * len(completions)])
    ns = _run_rewards_file()
    my_rewards_path().write_text(MY_REWARDS.replace("BONUS * helper", "3 * BONUS * helper"))
    with pytest.raises(RewardSetError, match="changed since the function was imported.*imports the file again"):
        save_reward_set([ns["thinks_twice"]])  # the file was edited, not imported (or run) again
    with pytest.raises(RewardSetError, match="2 weights"):
        save_reward_set([format_reward], [1.0, 2.0])
    with pytest.raises(RewardSetError, match="finite"):
        save_reward_set([format_reward], [float("nan")])
    with pytest.raises(RewardSetError, match="empty"):
        save_reward_set([])
    with pytest.raises(RewardSetError, match="more than once"):
        save_reward_set([format_reward, format_reward])


def test_a_failed_save_leaves_the_previous_set_whole():
    path = save_reward_set([format_reward, score_reward], [1.0, 2.0])
    before = path.read_text()
    with pytest.raises(RewardSetError):
        save_reward_set([format_reward, lambda completions, **kw: [0.0]])
    assert path.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no half-written file next to it


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"rewards": []}', "lists no rewards"),
        ('{"rewards": [{"name": "format_reward", "weight": NaN}]}', "finite numbers"),
        ('{"rewards": [{"name": "format_reward", "weight": -Infinity}]}', "finite numbers"),
        ('{"rewards": [{"name": "format_reward", "weight": "2"}]}', "finite numbers"),
        ('{"rewards": [{"name": "format_reward", "weight": true}]}', "finite numbers"),
        ('{"rewards": [{"name": "no_such_reward", "weight": 1}]}', "unknown reward 'no_such_reward'"),
        ('{"rewards": [{"name": "mine", "weight": 1, "file": "gone.py"}]}', "does not exist"),
        ('{"rewards": [{"name": "mine", "weight": 1, "source": "def mine(): pass"}]}', "older version"),
        ('{"rewards": [{"weight": 1}]}', "needs a name"),
        ("[1, 2]", "lists no rewards"),
        ("{not json", "not a readable reward set"),
    ],
)
def test_an_unusable_set_is_refused_with_one_line(text, message):
    """Issue 18.11: no silent empty set, no NaN weight, no quiet fallback to another set."""
    reward_set_path().write_text(text)
    with pytest.raises(RewardSetError, match=message) as info:
        load_reward_set()
    assert "\n" not in str(info.value) and str(reward_set_path()) in str(info.value)
    assert "delete it to train with the library default" in str(info.value)


def test_a_reward_file_edited_after_saving_is_noted(capsys):
    ns = _run_rewards_file()
    save_reward_set([ns["thinks_twice"]])
    my_rewards_path().write_text(MY_REWARDS.replace("BONUS = 2.5", "BONUS = 3.0"))
    funcs, _, _ = load_reward_set()
    assert "my_rewards.py changed after the set was saved" in capsys.readouterr().out
    assert funcs[0]([ANSWER]) == [6.0]  # the file as it is now
