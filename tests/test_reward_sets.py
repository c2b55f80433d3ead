"""Saving the reward set chosen in notebook 03 and loading it in notebook 05."""

import json
import re

import pytest

from utils.rewards import DEFAULT_REWARDS, format_reward, partial_format_reward, score_reward
from utils.rewards.saved import load_reward_set, reward_set_path, save_reward_set

THINK = re.compile(r"<think>", re.I)
BONUS = 2.5


def helper(text):
    return len(THINK.findall(text))


def thinks_twice(completions, **kwargs):
    import math

    return [min(BONUS * helper(c if isinstance(c, str) else c[0]["content"]), math.inf) for c in completions]


thinks_twice.reward_range = (0, 100)


def test_missing_file_gives_the_default():
    funcs, weights, where = load_reward_set()
    assert [f.__name__ for f in funcs] == list(DEFAULT_REWARDS) and weights == [1.0, 1.0, 1.0]
    assert "default" in where


def test_library_rewards_round_trip():
    path = save_reward_set([format_reward, partial_format_reward, score_reward], [1, 0.5, 2])
    assert path == reward_set_path() and path.exists()
    funcs, weights, where = load_reward_set()
    assert funcs == [format_reward, partial_format_reward, score_reward] and weights == [1.0, 0.5, 2.0]
    assert where == str(path)


def test_own_function_round_trip_with_its_globals(tmp_path):
    path = save_reward_set([thinks_twice, score_reward], [1.0, 2.0], path=tmp_path / "set.json")
    source = json.loads(path.read_text())["rewards"][0]["source"]
    assert "BONUS = 2.5" in source and "def helper" in source and "THINK = _re.compile" in source
    funcs, weights, _ = load_reward_set(path)
    assert funcs[0](["<think>x</think><THINK>"]) == [5.0]
    assert funcs[0].reward_range == (0, 100) and funcs[1] is score_reward and weights == [1.0, 2.0]


def test_what_cannot_be_saved():
    table = {"a": 1}

    def uses_a_dict(completions, **kwargs):
        return [float(table["a"])] * len(completions)

    with pytest.raises(ValueError, match="table"):
        save_reward_set([uses_a_dict])
    with pytest.raises(ValueError, match="weights"):
        save_reward_set([format_reward], [1.0, 2.0])
    with pytest.raises(ValueError, match="source"):
        save_reward_set([eval("lambda completions, **kw: [0.0] * len(completions)")])


def test_broken_file_falls_back(capsys):
    reward_set_path().write_text("{not json")
    funcs, _, where = load_reward_set()
    assert [f.__name__ for f in funcs] == list(DEFAULT_REWARDS) and "unreadable" in where
    assert "Could not load" in capsys.readouterr().out
