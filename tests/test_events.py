"""The task's geometry (utils.task.events): one set of overlap functions for the whole course,
checked against the obvious O(n^2) definitions."""

from hypothesis import given
from hypothesis import strategies as st

from utils.task import (
    clashing,
    count_overlapping_pairs,
    event_key,
    in_time_order,
    is_chronological,
    overlapping_pairs,
    overlaps,
    to_interval,
)

span = st.tuples(st.integers(0, 100), st.integers(1, 40)).map(lambda t: (t[0], t[0] + t[1]))


def brute_pairs(spans):
    return [
        (i, j)
        for i in range(len(spans))
        for j in range(i + 1, len(spans))
        if spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1]
    ]


@given(st.lists(span, max_size=12))
def test_sweep_matches_brute_force(spans):
    brute = brute_pairs(spans)
    assert overlapping_pairs(spans) == brute
    assert clashing(spans) == {k for pair in brute for k in pair}


def test_touching_is_not_an_overlap():
    assert not overlaps((540, 600), (600, 660))
    assert overlaps((540, 601), (600, 660))
    assert overlapping_pairs([(540, 600), (600, 660)]) == [] and clashing([(540, 600), (600, 660)]) == set()


def test_pairs_can_be_capped():
    assert len(overlapping_pairs([(0, 10)] * 3000, limit=1000)) == 1000
    assert clashing([(0, 10)] * 3000) == set(range(3000))


def test_count_and_order_on_dataset_events():
    events = [["B", "09:30", "10:30"], ["A", "09:00", "10:00"], ["C", "10:00", "11:00"]]
    assert count_overlapping_pairs(events) == 2  # A-B and B-C; A and C touch
    assert [e[0] for e in in_time_order(events)] == ["A", "B", "C"]
    assert to_interval(events[0], ["B"]).value == 120 and to_interval(events[0]).span == (570, 630)


def test_chronological_needs_two_strictly_increasing_starts():
    assert not is_chronological([(540, 600)])
    assert is_chronological([(540, 600), (600, 660)])
    assert not is_chronological([(540, 600), (540, 660)])


def test_event_key_strips_the_name_only():
    assert event_key([" Gym ", "07:00", "08:00"]) == ("Gym", "07:00", "08:00")
