"""The checker catches what would hurt a training run, with a message that says what."""

import math
import re
import time

import pytest

from utils.rewards import LIBRARY_REWARDS
from utils.rewards.checker import (
    DEFAULT_TIMEOUT_S,
    assert_reward_ok,
    check_reward_function,
    extra_probes,
    probe_completions,
)
from utils.rewards.reference import REFERENCE_TRAIN_FORMAT_PATTERN

BACKTRACKING = re.compile(REFERENCE_TRAIN_FORMAT_PATTERN, re.DOTALL)


def _text(c):
    return c[0]["content"] if isinstance(c, list) else c


@pytest.mark.parametrize("name", sorted(LIBRARY_REWARDS))
def test_library_rewards_pass_quickly(name):
    t0 = time.perf_counter()
    report = check_reward_function(LIBRARY_REWARDS[name])
    assert report.ok, str(report)
    assert time.perf_counter() - t0 < 2.0  # a few forks, milliseconds of work


def test_backtracking_regex_is_caught_by_the_default_timeout():
    def regex_format_reward(completions, **kwargs):
        return [10.0 if BACKTRACKING.match(_text(c)) else 0.0 for c in completions]

    t0 = time.perf_counter()
    report = check_reward_function(regex_format_reward)
    took = time.perf_counter() - t0
    assert not report.ok and "did not return within" in str(report) and "long truncated" in str(report)
    assert took < DEFAULT_TIMEOUT_S + 2  # the chat form is not waited for a second time


def test_the_long_probe_is_long_enough():
    labels = dict(probe_completions())
    assert labels["long truncated"].count("<event>") >= 14 and "</schedule>" not in labels["long truncated"]


def test_signature_problems():
    def no_kwargs(completions):
        return [0.0] * len(completions)

    def needs_column(completions, difficulty, **kwargs):
        return [0.0] * len(completions)

    assert "**kwargs" in str(check_reward_function(no_kwargs))
    assert "difficulty" in str(check_reward_function(needs_column))
    assert "not callable" in str(check_reward_function(42))


def test_crash_names_the_probe():
    def crashes_on_empty(completions, **kwargs):
        return [10.0 / len(_text(c)) for c in completions]

    report = check_reward_function(crashes_on_empty, timeout=5)
    assert not report.ok and "ZeroDivisionError" in str(report) and "'empty string'" in str(report)


@pytest.mark.parametrize(
    "body, message",
    [
        (lambda cs: [0.0], "returned 1 values"),
        (lambda cs: [math.nan] * len(cs), "not a finite number"),
        (lambda cs: ["10"] * len(cs), "not a finite number"),
        (lambda cs: {"a": 1}, "must return a list"),
        (lambda cs: [(lambda: 0)] * len(cs), "cannot be sent back"),
    ],
)
def test_bad_return_values(body, message):
    def reward(completions, **kwargs):
        return body(completions)

    report = check_reward_function(reward, timeout=5)
    assert not report.ok and message in str(report), str(report)


def test_declared_range_is_enforced():
    def too_big(completions, **kwargs):
        return [100.0] * len(completions)

    too_big.reward_range = (0, 10)
    assert "outside the declared range" in str(check_reward_function(too_big))
    assert check_reward_function(too_big, value_range=(0, 100)).ok


def test_endless_loop():
    def spins(completions, **kwargs):
        while True:
            pass

    assert "did not return within 0.5 s" in str(check_reward_function(spins, timeout=0.5))


def test_notes_but_no_failure():
    def constant(completions, **kwargs):
        return [1.0] * len(completions)

    def fragile(completions, **kwargs):
        return [float("<think>" in _text(c)) for c in completions]

    assert check_reward_function(constant).ok and "constant reward" in str(check_reward_function(constant))
    r = check_reward_function(fragile)
    assert r.ok and "never sends" in str(r)
    assert len(extra_probes()) == 3


def test_none_values_are_allowed():
    def sometimes(completions, **kwargs):
        return [None if not _text(c) else 1.0 for c in completions]

    assert check_reward_function(sometimes).ok


def test_assert_reward_ok():
    def bad(completions, **kwargs):
        return []

    with pytest.raises(ValueError, match="PROBLEMS"):
        assert_reward_ok(bad)


@pytest.mark.parametrize("bad", [(1,), (1, 2, 3), 5, "ab", (0, math.nan), (10, 0), ("0", "10")])
def test_a_malformed_range_is_reported_not_raised(bad):
    """Issue 18 item 11: reward_range=(1,) made the checker itself raise (tuple unpacking)."""

    def reward(completions, **kwargs):
        return [0.0] * len(completions)

    reward.reward_range = bad
    report = check_reward_function(reward)
    assert not report.ok and "its reward_range" in str(report), str(report)
    del reward.reward_range
    report = check_reward_function(reward, value_range=bad)
    assert not report.ok and "value_range" in str(report), str(report)


@pytest.mark.parametrize(
    "mutation, names",
    [
        (lambda completions, kw: kw["events"].append(["X", "00:00", "00:01"]), "events"),
        (lambda completions, kw: kw["events"][0].pop(), "events"),
        (lambda completions, kw: completions.sort(key=str), "completions"),
        (lambda completions, kw: completions.__setitem__(0, "changed"), "completions"),
        (lambda completions, kw: kw["optimal_score"].clear(), "optimal_score"),
        (lambda completions, kw: kw["priority_events"][0].append("Lunch"), "priority_events"),
    ],
)
def test_a_reward_that_changes_its_inputs_is_caught(mutation, names):
    """Issue 18 item 12: TRL passes the same lists to every reward, so a reward that changes them
    changes what the next reward sees; it passed the checker."""

    def meddles(completions, **kwargs):
        mutation(completions, kwargs)
        return [1.0 if i % 2 else 0.0 for i in range(len(completions))]

    report = check_reward_function(meddles)
    assert not report.ok and f"it changes its inputs ({names})" in str(report), str(report)
    assert str(report).count("changes its inputs") == 1  # said once, not per form


def test_the_chat_form_is_watched_too():
    def edits_messages(completions, **kwargs):
        for c in completions:
            if isinstance(c, list):
                c[0]["content"] = c[0]["content"].strip()
        return [0.0 if i % 2 else 1.0 for i in range(len(completions))]

    report = check_reward_function(edits_messages)
    assert not report.ok and "[chat] it changes its inputs (completions)" in str(report), str(report)


def test_copying_is_fine():
    def copies(completions, events=None, **kwargs):
        events = [list(e) for e in events]
        for e in events:
            e.append("x")
        return [float(len(sorted(map(str, completions))) % 2) + i % 2 for i in range(len(completions))]

    assert check_reward_function(copies).ok


def test_torch_reward_after_torch_ran_in_the_parent():
    """Issue 18.2: torch used here first (as in the training notebook), then a reward using torch.
    A forked child inherited a thread pool without threads and hung; now it runs in milliseconds."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a pool with worker threads, even on a one-core machine
    try:
        x = torch.randn(512, 512)
        (x @ x).sum()  # the parent's pool is now running

        def torch_reward(completions, **kwargs):
            scale = torch.ones(256, 256).matmul(torch.ones(256, 256)).mean().item() / 256
            return [scale * float(bool(_text(c))) for c in completions]

        report = check_reward_function(torch_reward, timeout=60)  # generous: only to avoid a hang
        assert report.ok, str(report)
        assert torch.get_num_threads() == 2  # the parent keeps its threads
    finally:
        torch.set_num_threads(threads)


def test_a_reward_that_ends_the_process_is_not_called_a_hang():
    import os
    import signal

    def exits(completions, **kwargs):
        os._exit(0)

    def crashes(completions, **kwargs):
        if any(not _text(c) for c in completions):
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
        return [0.0] * len(completions)

    report = str(check_reward_function(exits, timeout=30))
    assert "died (exit code 0)" in report and "os._exit" in report and "did not return" not in report
    report = str(check_reward_function(crashes, timeout=30))
    assert "died (SIGKILL) on the 'empty string' probe" in report and "did not return" not in report


def test_reward_set_check_before_training():
    from utils.rewards import format_reward, score_reward
    from utils.rewards.checker import assert_reward_set_ok

    def picky(completions, **kwargs):
        return [float(len(_text(c).split("<event>")[3])) for c in completions]

    assert_reward_set_ok([format_reward, score_reward], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"picky: \[plain\] raised IndexError"):
        assert_reward_set_ok([format_reward, picky])
    for weights, message in (([1.0], "2 rewards but 1 weights"), ([1.0, math.nan], "finite")):
        with pytest.raises(ValueError, match=message):
            assert_reward_set_ok([format_reward, score_reward], weights)
    with pytest.raises(ValueError, match="no rewards"):
        assert_reward_set_ok([])
