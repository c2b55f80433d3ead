"""utils.task.validate: what makes a row a problem, one rule for the loaders, the evaluator and the rewards."""

from __future__ import annotations

import math

import pytest

from utils.task import optimal_schedule
from utils.task.validate import check_row, name_problem, problem_error, row_error

ROW = {
    "events": [["Gym", "08:00", "09:00"], ["Call", "08:30", "09:30"], ["Lunch", "12:00", "13:00"]],
    "priority_events": ["Call"],
    "optimal_score": 180,  # Call 120 + Lunch 60
}


def test_committed_rows_are_problems(train_rows, test_rows):
    assert all(row_error(r) is None for r in train_rows + test_rows)


def test_the_example_is_a_problem():
    assert optimal_schedule(ROW["events"], ROW["priority_events"])[0] == 180
    assert row_error(ROW) is None
    check_row(ROW)


@pytest.mark.parametrize(
    "change, why",
    [
        # item 8: an optimum a reward or score would divide by
        ({"optimal_score": math.nan}, "finite number"),
        ({"optimal_score": math.inf}, "finite number"),
        ({"optimal_score": -5}, "below the value of 'Call' alone"),
        ({"optimal_score": 0}, "below the value"),
        ({"optimal_score": 1e-300}, "below the value"),
        ({"optimal_score": 1e-320}, "below the value"),
        ({"optimal_score": 181}, "above the best schedule's score"),
        ({"optimal_score": True}, "finite number"),
        ({"optimal_score": "180"}, "finite number"),
        ({"optimal_score": None}, "finite number"),
        # item 13: shapes that ended in a traceback
        ({"events": 5}, "events must be a non-empty list"),
        ({"events": []}, "events must be a non-empty list"),
        ({"events": "Gym"}, "events must be a non-empty list"),
        ({"events": [["A"]]}, "event must be [name"),
        ({"events": [["Gym", "09:00", "08:00"]]}, "end after it starts"),
        ({"events": [["Gym", "25:00", "26:00"]]}, "25:00"),
        ({"events": [["Gym", " 08:00", "09:00"], ["Lunch", "12:00", "13:00"]], "priority_events": []}, "exactly"),
        ({"priority_events": 5}, "priority_events must be a list"),
        ({"priority_events": "Call"}, "priority_events must be a list"),
        ({"priority_events": ["Cal"]}, "'Cal' is not one of the events"),
        # items 9 and 10: names an answer cannot reproduce
        ({"events": [["A<B", "08:00", "09:00"], ["Lunch", "12:00", "13:00"]], "priority_events": []}, "'<'"),
        ({"events": [["A</name>", "08:00", "09:00"], ["L", "12:00", "13:00"]], "priority_events": []}, "'<'"),
        ({"events": [[" Gym ", "08:00", "09:00"], ["L", "12:00", "13:00"]], "priority_events": []}, "spaces"),
        ({"priority_events": [" Call"]}, "spaces"),
        # item 7: an optimum of one event
        ({"events": [["Gym", "08:00", "09:00"], ["Call", "08:30", "09:30"]], "optimal_score": 120}, "single event"),
        ({"events": [["Gym", "08:00", "09:00"]], "priority_events": [], "optimal_score": 60}, "single event"),
    ],
)
def test_rows_that_are_not_problems(change, why):
    row = {**ROW, **change}
    error = row_error(row)
    assert error is not None and why in error, error
    with pytest.raises(ValueError, match=r"^row 7: ") as info:
        check_row(row, "row 7")
    assert why in str(info.value)


def test_missing_keys_and_non_mappings():
    assert "lacks ['optimal_score']" in row_error({"events": ROW["events"], "priority_events": []})
    assert "mapping" in row_error([1, 2, 3])


def test_cache_gives_the_message_for_the_values_as_given():
    """Rows are cached by value; a refused row still shows lists as lists, not the cache's tuples."""
    assert problem_error([["A"]], [], 1) == "event must be [name, 'HH:MM', 'HH:MM'], got ['A']"
    assert problem_error(ROW["events"], ROW["priority_events"], 180) is None
    assert problem_error(tuple(map(tuple, ROW["events"])), tuple(ROW["priority_events"]), 180) is None
    unhashable = [["Gym", "08:00", "09:00"], ["Call", "08:30", "09:30"], ["Lunch", "12:00", {"x": 1}]]
    assert problem_error(unhashable, [], 180) == "time must be a 'HH:MM' string, got {'x': 1}"


@pytest.mark.parametrize("name", ["A<B", "x</name>", " Gym", "Gym ", "", "two\nlines", 7, None])
def test_name_problem(name):
    assert name_problem(name)


def test_good_names():
    assert name_problem("Team sync (room 4.2) & lunch: 30'") is None


def test_the_reference_reward_checks_only_the_optimum():
    """reference_score_reward scores any row with names as written (tests/test_reference.py uses a
    name with a line break); it needs only an optimum it can divide by."""
    from utils.task.validate import optimum_error

    events = [["Q\n", "08:00", "12:00"], ["Gym", "07:00", "08:00"]]
    assert "line breaks" in problem_error(events, [], 300) and optimum_error(events, [], 300) is None
    assert "finite number" in optimum_error(events, [], math.nan)
    assert "below the value" in optimum_error(events, [], 1e-300)
    assert "above the best" in optimum_error(events, [], 301)
    assert "priority_events must be a list" in optimum_error(events, 5, 300)
