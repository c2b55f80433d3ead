"""Times, scores, the DP optimum, brute force and the greedy heuristics."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.task import (
    GREEDY_RULES,
    MINUTES_PER_DAY,
    brute_force_schedule,
    greedy_schedule,
    is_feasible,
    minutes_to_time,
    optimal_schedule,
    schedule_score,
    solve_dp,
    time_to_minutes,
    to_interval,
)

# ---------------------------------------------------------------- strategies


@st.composite
def problems(draw, max_n: int = 9):
    """Small problems on a coarse grid, so overlaps, touching ends and ties are common."""
    n = draw(st.integers(0, max_n))
    events = []
    for i in range(n):
        start = draw(st.integers(8 * 4, 14 * 4)) * 15  # 08:00 .. 14:00
        length = draw(st.integers(1, 12)) * 15  # 15 min .. 3 h
        events.append([f"E{i}", minutes_to_time(start), minutes_to_time(start + length)])
    names = [e[0] for e in events]
    priority = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    return events, priority


def _key(ev) -> tuple[str, str, str]:
    return tuple(ev)


def _starts(events) -> list[int]:
    return [time_to_minutes(e[1]) for e in events]


# ---------------------------------------------------------------- times


@given(st.integers(0, MINUTES_PER_DAY))
def test_minutes_round_trip(m):
    assert time_to_minutes(minutes_to_time(m)) == m


@given(st.integers(0, 23), st.integers(0, 59))
def test_time_round_trip(h, m):
    s = f"{h:02d}:{m:02d}"
    assert minutes_to_time(time_to_minutes(s)) == s
    assert time_to_minutes(s) == 60 * h + m


def test_day_boundaries():
    assert time_to_minutes("00:00") == 0
    assert time_to_minutes("24:00") == MINUTES_PER_DAY
    assert minutes_to_time(MINUTES_PER_DAY) == "24:00"


@pytest.mark.parametrize("bad", ["25:99", "7:5", "", None, "ab:cd", "24:01", "12:60", "12-30", "1:230", "١٢:٣٠", 730])
def test_time_to_minutes_rejects_and_names_the_value(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        time_to_minutes(bad)


@pytest.mark.parametrize("bad", [-1, MINUTES_PER_DAY + 1, 1.5, "60", True, None])
def test_minutes_to_time_rejects(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        minutes_to_time(bad)


# ---------------------------------------------------------------- the optimum


def _assert_valid_schedule(events, priority, score, chosen):
    given_keys = {_key(e) for e in events}
    assert all(_key(c) in given_keys for c in chosen), "chose an event that is not in the problem"
    assert len({_key(c) for c in chosen}) == len(chosen), "chose an event twice"
    starts = _starts(chosen)
    assert starts == sorted(starts), "not chronological"
    ends = [time_to_minutes(c[2]) for c in chosen]
    assert all(e <= s for e, s in zip(ends, starts[1:])), "overlapping events chosen"
    assert is_feasible(chosen)
    assert schedule_score(chosen, priority) == score


@given(problems())
def test_dp_matches_brute_force(problem):
    events, priority = problem
    best, chosen = optimal_schedule(events, priority)
    brute, brute_chosen = brute_force_schedule(events, priority)
    assert best == brute
    _assert_valid_schedule(events, priority, best, chosen)
    _assert_valid_schedule(events, priority, brute, brute_chosen)


@given(problems())
def test_greedy_never_beats_dp(problem):
    events, priority = problem
    best, _ = optimal_schedule(events, priority)
    for rule in GREEDY_RULES:
        score, chosen = greedy_schedule(events, priority, rule)
        assert score <= best, rule
        _assert_valid_schedule(events, priority, score, chosen)


@given(problems())
def test_solve_dp_trace_is_consistent(problem):
    events, priority = problem
    trace = solve_dp(events, priority)
    ivs = trace.intervals
    n = len(events)
    assert len(ivs) == n and len(trace.predecessor) == n and len(trace.take) == n
    assert len(trace.table) == n + 1 and trace.table[0] == 0
    assert [iv.end for iv in ivs] == sorted(iv.end for iv in ivs)
    prio = set(priority)
    for j, iv in enumerate(ivs, start=1):
        assert iv.value == (iv.end - iv.start) * (2 if iv.name in prio else 1)
        p = trace.predecessor[j - 1]
        # p(j): the intervals before j in end order that end no later than j starts
        assert p == sum(other.end <= iv.start for other in ivs)
        assert all(other.end <= iv.start for other in ivs[:p])
        assert trace.table[j] == max(trace.table[j - 1], iv.value + trace.table[p])
        assert trace.take[j - 1] == (iv.value + trace.table[p] > trace.table[j - 1])
    assert trace.table == sorted(trace.table)  # OPT never decreases
    assert sum(iv.value for iv in trace.chosen) == trace.table[-1]
    assert all(a.end <= b.start for a, b in zip(trace.chosen, trace.chosen[1:]))


def test_touching_events_are_both_chosen():
    events = [["A", "09:00", "10:00"], ["B", "10:00", "11:00"]]
    assert optimal_schedule(events, []) == (120, events)
    assert brute_force_schedule(events, []) == (120, events)
    assert is_feasible(events)


def test_one_minute_overlap_forces_a_choice():
    events = [["A", "09:00", "10:01"], ["B", "10:00", "11:00"]]
    assert not is_feasible(events)
    assert optimal_schedule(events, []) == (61, [["A", "09:00", "10:01"]])
    assert optimal_schedule(events, ["B"]) == (120, [["B", "10:00", "11:00"]])


def test_priority_doubles_value():
    events = [["A", "09:00", "09:30"]]
    assert schedule_score(events, []) == 30
    assert schedule_score(events, ["A"]) == 60
    assert schedule_score(events, ["not there"]) == 30


def test_empty_problem():
    assert optimal_schedule([], []) == (0, [])
    assert brute_force_schedule([], []) == (0, [])
    assert solve_dp([], []).table == [0]


def test_input_order_does_not_matter():
    events = [["C", "11:00", "12:30"], ["A", "09:00", "10:30"], ["B", "10:00", "11:15"]]
    best, chosen = optimal_schedule(events, ["B"])
    assert best == optimal_schedule(sorted(events, key=lambda e: e[1]), ["B"])[0]
    assert _starts(chosen) == sorted(_starts(chosen))


@pytest.mark.parametrize(
    "event",
    [
        ["A", "09:00"],
        ["A", "09:00", "10:00", "extra"],
        "A 09:00 10:00",
        ["", "09:00", "10:00"],
        ["   ", "09:00", "10:00"],
        [7, "09:00", "10:00"],
        ["A", "10:00", "09:00"],
        ["A", "10:00", "10:00"],
        ["A", "9:00", "10:00"],
        ["A", "09:00", "24:30"],
        ["A", None, "10:00"],
    ],
)
def test_malformed_events_raise(event):
    with pytest.raises(ValueError):
        to_interval(event)
    for solver in (optimal_schedule, brute_force_schedule, schedule_score):
        with pytest.raises(ValueError):
            solver([["OK", "08:00", "08:30"], event], [])
    with pytest.raises(ValueError):
        greedy_schedule([event], [], "earliest_end")


def test_unknown_greedy_rule():
    with pytest.raises(ValueError, match="unknown greedy rule"):
        greedy_schedule([["A", "09:00", "10:00"]], [], "shortest")


def test_brute_force_refuses_large_problems():
    events = [[f"E{i}", "09:00", "10:00"] for i in range(5)]
    with pytest.raises(ValueError, match="2\\^5"):
        brute_force_schedule(events, [], max_events=4)


@pytest.mark.parametrize(
    "rule, events, priority",
    [
        # a short early-ending event blocks a long one
        ("earliest_end", [["A", "09:00", "09:30"], ["B", "09:00", "11:00"]], []),
        # the first event to start is short and blocks a longer one
        ("earliest_start", [["A", "08:00", "10:00"], ["B", "08:30", "12:00"]], []),
        # one valuable event blocks two that are worth more together
        ("highest_value", [["A", "09:00", "11:00"], ["B", "08:00", "09:30"], ["C", "10:30", "12:00"]], []),
        ("longest", [["A", "09:00", "11:00"], ["B", "08:30", "09:30"], ["C", "10:30", "11:30"]], ["B"]),
        # a tiny priority event blocks a long normal one
        ("priority_first", [["A", "09:00", "09:15"], ["B", "08:00", "12:00"]], ["A"]),
    ],
)
def test_each_greedy_rule_has_a_counter_example(rule, events, priority):
    greedy, _ = greedy_schedule(events, priority, rule)
    best, _ = optimal_schedule(events, priority)
    assert greedy < best


def test_the_dp_compares_each_name_a_constant_number_of_times(monkeypatch):
    """Issue 25: weight_of scanned the priority list for every event, so the DP taught as n log n grew
    like n x priorities (about 4x per doubling in notebook 02's timings). Counted, not timed: every
    name is normalised once (the events' and the priorities'), then looked up in a set."""
    from utils.task import events as events_module
    from utils.task.stats import random_problem

    calls = 0
    real = events_module.name_key

    def counting(name):
        nonlocal calls
        calls += 1
        return real(name)

    monkeypatch.setattr(events_module, "name_key", counting)
    for n in (256, 2048):
        events, priority = random_problem(n, seed=n)
        assert len(priority) > n // 10  # enough priorities for a scan per event to show
        calls = 0
        optimal_schedule(events, priority)
        assert calls <= n + len(priority), f"{calls} name comparisons for {n} events"


def test_priority_keys_is_built_once_and_refuses_a_bare_string():
    from utils.task import priority_keys, weight_of

    keys = priority_keys([" Gym ", "Exam prep"])
    assert priority_keys(keys) is keys and keys == {"Gym", "Exam prep"}
    assert weight_of("Gym", keys) == weight_of(" Exam prep", ["Exam prep"]) == 2 and weight_of("Lunch", keys) == 1
    with pytest.raises(ValueError, match="list of names"):
        priority_keys("Gym")


def test_every_solver_refuses_a_priority_that_names_no_event():
    """A typo in a priority ("breakfast") would drop that event's doubling silently: the solvers say so instead."""
    from utils.task.scheduling import brute_force_schedule, greedy_schedule, optimal_schedule

    events = [["Gym", "07:00", "08:30"], ["Breakfast", "08:00", "08:50"], ["Standup", "09:00", "09:15"]]
    assert optimal_schedule(events, ["Breakfast"])[0] == 115  # 50 x 2 + 15: the priority decides the clash
    for solve in (optimal_schedule, brute_force_schedule, lambda e, p: greedy_schedule(e, p, "highest_value")):
        with pytest.raises(ValueError, match="priority event 'breakfast' is not one of the events"):
            solve(events, ["breakfast"])
