"""The seeded problem generator: reproducible, and every row obeys its config."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from utils.paths import TEST_FILE, TEST_OTHER_STYLE_FILE, TRAIN_FILE
from utils.task import count_overlapping_pairs, optimal_schedule, time_to_minutes, to_interval
from utils.task.data import REQUIRED_COLUMNS
from utils.task.datagen import (
    DATASET_SEED,
    OTHER_STYLE,
    TEST_SIZE,
    TRAIN_SIZE,
    GeneratorConfig,
    dumps_jsonl,
    generate_dataset,
    generate_other_style_test,
    generate_problem,
    generate_splits,
    load_themes,
    main,
    name_problem,
    problem_key,
)
from utils.task.prompts import format_problem

THEMES = load_themes()


def naive_pairs(ivs) -> int:
    """The obvious O(n^2) count: the oracle for the task's sweep."""
    return sum(a.start < b.end and b.start < a.end for i, a in enumerate(ivs) for b in ivs[i + 1 :])


def assert_respects(row: dict, config: GeneratorConfig) -> None:
    """Every constraint a config promises, checked on one generated row."""
    assert set(row) == set(REQUIRED_COLUMNS)
    events, prios = row["events"], row["priority_events"]
    n = len(events)
    assert config.min_events <= n <= config.max_events
    ivs = [to_interval(ev) for ev in events]
    lo, hi = time_to_minutes(config.day_start), time_to_minutes(config.day_end)
    for iv in ivs:
        assert iv.end - iv.start in config.durations, iv
        assert lo <= iv.start and iv.end <= hi, iv
        assert iv.start % config.time_step == 0, iv
    starts = [iv.start for iv in ivs]
    assert starts == sorted(starts), "events not sorted by start"
    pairs = naive_pairs(ivs)
    assert count_overlapping_pairs(events) == pairs
    assert config.min_overlapping_pairs <= pairs <= config.max_overlap_ratio * n
    # priorities: at least one, within the ratio bounds up to rounding, chronological
    k = len(prios)
    assert 1 <= k <= n
    assert k >= min(n, math.floor(config.min_priority_ratio * n))
    assert k <= max(1, math.ceil(config.max_priority_ratio * n))
    names = [ev[0] for ev in events]
    assert len(set(prios)) == k and set(prios) <= set(names)
    assert prios == [nm for nm in names if nm in set(prios)], "priorities not in event order"
    # names: unique and all from one theme
    assert len(set(names)) == n
    catalogue = config.catalogue()
    themes = [config.theme] if config.theme else list(catalogue)
    assert any(set(names) <= set(catalogue[t]) for t in themes), names
    score, best = optimal_schedule(events, prios)
    assert row["optimal_score"] == score and len(best) >= 2
    assert row["prompt"] == format_problem(events, prios)


# ---------------------------------------------------------------- committed data


def test_committed_data_reproduces_byte_for_byte():
    train, test = generate_splits()
    assert dumps_jsonl(train) == TRAIN_FILE.read_text(encoding="utf-8")
    assert dumps_jsonl(test) == TEST_FILE.read_text(encoding="utf-8")
    assert len(train) == TRAIN_SIZE and len(test) == TEST_SIZE


def test_cli_check(tmp_path, capsys):
    assert main(["--check"]) == 0
    assert "matches" in capsys.readouterr().out
    # a changed copy is caught, and writing regenerates it
    train, test, other = tmp_path / "train.jsonl", tmp_path / "test.jsonl", tmp_path / "other.jsonl"
    train.write_text(TRAIN_FILE.read_text(encoding="utf-8").replace("07:", "06:", 1), encoding="utf-8")
    test.write_text(TEST_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    other.write_text(TEST_OTHER_STYLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    files = ["--test", str(test), "--test-other-style", str(other)]
    assert main(["--check", "--train", str(train), *files]) == 1
    assert str(train) in capsys.readouterr().out
    assert main(["--train", str(train), *files]) == 2  # files that exist and are not the course's: refused
    assert main(["--train", str(train), *files, "--force"]) == 0
    assert train.read_bytes() == TRAIN_FILE.read_bytes()
    assert main(["--check", "--train", str(tmp_path / "missing.jsonl"), *files]) == 1


def test_other_style_test_set_is_held_out_and_different():
    """The other-style set follows OTHER_STYLE: its own names, starts at any minute, the whole day."""
    rows = generate_other_style_test()
    assert dumps_jsonl(rows) == TEST_OTHER_STYLE_FILE.read_text(encoding="utf-8") and len(rows) == TEST_SIZE
    for row in rows:
        assert_respects(row, OTHER_STYLE)
    ours = {n for names in THEMES.values() for n in names}
    names = {e[0] for r in rows for e in r["events"]}
    assert not names & ours, "no name may come from the training catalogue"
    starts = {time_to_minutes(e[1]) % 5 for r in rows for e in r["events"]}
    assert len(starts) == 5, "start times should fall on any minute, not a 5-minute grid"


@pytest.mark.parametrize("name", ["A <b> c", "x</name>", " Gym", "Gym ", "", "two\nlines", 7])
def test_names_that_would_break_an_answer_are_rejected(name, tmp_path):
    assert name_problem(name)
    bad = tmp_path / "names.json"
    bad.write_text(json.dumps({"themes": {"t": ["Fine", name]}}), encoding="utf-8")
    with pytest.raises(ValueError, match="bad name"):
        load_themes(bad)


def test_names_given_directly_are_checked_too():
    """Issue 18 item 9: themes passed to generate_problem skip load_themes, so validate checks them:
    the DP-optimal answer to a problem whose names contain '<' cannot be produced by the generator."""
    for bad in (["A<B"], ["x</name>"], [" Gym"], ["Gym", "Gym"]):
        themes = {"t": bad + [f"Event {i}" for i in range(8)]}
        with pytest.raises(ValueError, match="theme 't'"):
            generate_problem(random.Random(0), GeneratorConfig(theme="t"), themes=themes)
        with pytest.raises(ValueError, match="theme 't'"):
            GeneratorConfig().validate(themes)


@pytest.mark.parametrize("seed", range(40))
def test_the_optimum_always_has_two_events(seed):
    """Issue 18 item 7: knobs that allow a single-event optimum (two events, overlaps allowed everywhere)
    never produce one: such a problem could not be answered validly (fewer than 2 events score 0)."""
    from utils.rewards import STRICT_ORDER_REWARDS, default_reward_funcs, total_reward
    from utils.task.prompts import format_answer

    config = GeneratorConfig(
        min_events=2, max_events=3, min_overlapping_pairs=0, overlap_probability=0.8, max_overlap_ratio=1.0
    )
    row = generate_problem(random.Random(seed), config)
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    cols = {k: [row[k]] for k in ("events", "priority_events", "optimal_score")}
    assert total_reward(default_reward_funcs(STRICT_ORDER_REWARDS), [format_answer("r", best)], **cols) == [100.0], best
    assert_respects(row, config)


def test_committed_rows_respect_default_config(train_rows, test_rows):
    for row in train_rows + test_rows:
        assert_respects(row, GeneratorConfig())


def test_no_test_problem_is_in_train(train_rows, test_rows):
    train_keys = {problem_key(r) for r in train_rows}
    test_keys = [problem_key(r) for r in test_rows]
    assert not train_keys & set(test_keys)
    assert len(set(test_keys)) == len(test_keys)


def test_splits_replace_duplicates():
    # Two one-hour events in a two-hour day from one theme: few distinct problems, many repeats.
    # (They must not overlap: the optimum of two overlapping events is one event, never generated.)
    config = GeneratorConfig(
        min_events=2,
        max_events=2,
        durations=(60,),
        day_start="07:00",
        day_end="09:00",
        time_step=60,
        min_overlapping_pairs=0,
        max_overlap_ratio=0.5,
        theme="office",
    )
    train, test = generate_splits(seed=3, train_size=150, test_size=40, config=config)
    assert len({problem_key(r) for r in train}) < len(train), "expected repeats inside train"
    test_keys = [problem_key(r) for r in test]
    assert len(test) == 40 and len(set(test_keys)) == 40
    assert not set(test_keys) & {problem_key(r) for r in train}


# ---------------------------------------------------------------- seeds


def test_same_seed_same_rows():
    assert generate_dataset(25, seed=7) == generate_dataset(25, seed=7)
    assert dumps_jsonl(generate_dataset(5, seed=7)) == dumps_jsonl(generate_dataset(5, seed=7))


def test_different_seed_different_rows():
    a, b = generate_dataset(25, seed=7), generate_dataset(25, seed=8)
    assert a != b
    assert {problem_key(r) for r in a} != {problem_key(r) for r in b}


def test_splits_depend_on_seed():
    assert generate_splits(seed=1, train_size=5, test_size=2) != generate_splits(seed=2, train_size=5, test_size=2)
    assert generate_splits(seed=DATASET_SEED, train_size=3, test_size=0)[0] == generate_splits()[0][:3]


# ---------------------------------------------------------------- configs


@st.composite
def configs(draw):
    """Valid configs by construction, spread over every knob."""
    step = draw(st.sampled_from([5, 10, 15, 30, 60]))
    durations = draw(st.lists(st.integers(1, 120 // step), min_size=1, max_size=5, unique=True))
    start_h = draw(st.integers(0, 12))
    end_h = draw(st.integers(start_h + 10, 24))
    min_events = draw(st.integers(3, 8))
    max_events = draw(st.integers(min_events, 10))
    min_pairs = draw(st.integers(0, 1))
    min_prio, max_prio = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
    return GeneratorConfig(
        min_events=min_events,
        max_events=max_events,
        durations=tuple(sorted(d * step for d in durations)),
        day_start=f"{start_h:02d}:00",
        day_end=f"{end_h:02d}:00",
        time_step=step,
        overlap_probability=draw(st.floats(0.1, 1)),
        min_overlapping_pairs=min_pairs,
        max_overlap_ratio=draw(st.floats(0.5, 2)),
        min_priority_ratio=min_prio,
        max_priority_ratio=max_prio,
        theme=draw(st.none() | st.sampled_from(sorted(THEMES))),
        max_tries=3000,
    )


@given(configs(), st.integers(0, 2**32 - 1))
def test_generated_rows_respect_config(config, seed):
    config.validate(THEMES)
    try:
        rows = generate_dataset(3, seed, config)
    except RuntimeError:  # the knobs drawn can make the overlap cap unreachable in practice
        reject()
    for row in rows:
        assert_respects(row, config)


@given(st.integers(0, 2**32 - 1))
def test_default_config_rows(seed):
    assert_respects(generate_problem(random.Random(seed)), GeneratorConfig())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(min_events=0), "min_events"),
        (dict(min_events=6, max_events=5), "min_events <= max_events"),
        (dict(theme="underwater"), "unknown theme"),
        (dict(max_events=17), "names"),
        (dict(durations=()), "durations"),
        (dict(durations=(0, 30)), "durations must be positive"),
        (dict(durations=(-15,)), "durations must be positive"),
        (dict(time_step=0), "time_step"),
        (dict(durations=(17, 30)), "multiples of time_step"),
        (dict(day_start="07:03"), "multiples of time_step"),
        (dict(day_start="23:00", day_end="07:00"), "day window"),
        (dict(day_start="07:00", day_end="08:00"), "day window"),
        (dict(day_start="25:00"), "25:00"),
        (dict(overlap_probability=1.5), "overlap_probability"),
        (dict(overlap_probability=-0.1), "overlap_probability"),
        (dict(min_priority_ratio=0.5, max_priority_ratio=0.3), "priority_ratio"),
        (dict(max_priority_ratio=1.5), "priority_ratio"),
        (dict(min_overlapping_pairs=2), "min_overlapping_pairs"),
        (dict(min_events=1, min_overlapping_pairs=0), "at least 2 events"),  # issue 18 item 7
        (dict(min_events=2, max_overlap_ratio=0.4), "min_overlapping_pairs"),
    ],
)
def test_invalid_configs_raise(kwargs, message):
    config = GeneratorConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        config.validate(THEMES)
    with pytest.raises(ValueError, match=message):
        generate_problem(random.Random(0), config)


def test_impossible_overlap_cap_gives_up_with_advice():
    # eight one-hour events in a one-hour day always overlap: 28 pairs, cap 0.4 * 8
    config = GeneratorConfig(
        min_events=8, max_events=8, durations=(60,), day_start="07:00", day_end="08:00", max_tries=20
    )
    with pytest.raises(RuntimeError, match="max_overlap_ratio"):
        generate_problem(random.Random(0), config)


def test_fixed_theme():
    rows = generate_dataset(10, seed=1, config=GeneratorConfig(theme="fitness"))
    for row in rows:
        assert {ev[0] for ev in row["events"]} <= set(THEMES["fitness"])


# ---------------------------------------------------------------- dataset statistics (utils.task.stats)


def test_problem_table_matches_rows(train_rows):
    from utils.task import GREEDY_RULES
    from utils.task.stats import greedy_summary, problem_table

    rows = train_rows[:60]
    table = problem_table(rows)
    assert len(table) == len(rows)
    for i, row in enumerate(rows):
        ivs = [to_interval(ev) for ev in row["events"]]
        assert table.n_events[i] == len(row["events"])
        assert table.n_priority[i] == len(row["priority_events"])
        assert table.overlapping_pairs[i] == naive_pairs(ivs)
        assert table.total_minutes[i] == sum(iv.end - iv.start for iv in ivs)
        assert table.optimal_score[i] == row["optimal_score"]
        assert 1 <= table.n_optimal[i] < table.n_events[i]  # every problem has an overlap
    ratios = table[[f"greedy_{r}" for r in GREEDY_RULES]]
    assert ((ratios > 0) & (ratios <= 1)).all().all()
    summary = greedy_summary(table)
    assert set(summary.index) == set(GREEDY_RULES)
    assert (summary.worst_ratio <= summary.mean_ratio).all()


def test_event_table_and_plots(train_rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.task.stats import event_table, plot_greedy_ratios, plot_overview, plot_timings, problem_table

    rows = train_rows[:30]
    events = event_table(rows)
    assert len(events) == sum(len(r["events"]) for r in rows)
    assert set(events.duration) <= set(GeneratorConfig().durations)
    assert events.priority.sum() == sum(len(r["priority_events"]) for r in rows)
    for fig in (
        plot_overview(rows),
        plot_overview({"a": rows, "b": train_rows[30:40]}),
        plot_greedy_ratios(problem_table(rows)),
        plot_timings(
            __import__("pandas").DataFrame({"method": ["x", "x"], "n_events": [1, 2], "seconds": [1e-5, 2e-5]})
        ),
    ):
        assert fig.axes
        plt.close(fig)


def test_random_problem_and_timing():
    from utils.task import optimal_schedule as opt
    from utils.task.stats import random_problem, time_solvers

    events, prios = random_problem(40, seed=3)
    assert (events, prios) == random_problem(40, seed=3)
    assert len(events) == 40 and len({e[0] for e in events}) == 40
    assert set(prios) <= {e[0] for e in events}
    timings = time_solvers({"dp": (opt, [4, 8])}, min_seconds=0.0)
    assert list(timings.columns) == ["method", "n_events", "seconds"]
    assert list(timings.n_events) == [4, 8] and (timings.seconds > 0).all()


def test_made_up_training_names_never_use_the_held_out_ones():
    """The mixed and wide styles train on made-up names; the wide ones hold the other-style set's kinds of marks
    (commas, colons, quotes) but never one of its names, and the default catalogue is not touched by either."""
    from utils.paths import OTHER_STYLE_NAMES_FILE
    from utils.task.datagen import GeneratorConfig, load_themes, random_catalogue, training_problems

    held_out = {n for names in load_themes(OTHER_STYLE_NAMES_FILE).values() for n in names}
    default = {n for names in GeneratorConfig().catalogue().values() for n in names}
    for wide in (False, True):
        themes = random_catalogue(wide=wide)
        assert all(len(set(names)) == len(names) for names in themes.values())  # a problem never repeats a name
        made_up = [n for names in themes.values() for n in names]
        assert not held_out & set(made_up)
        marks = {m: sum(m in n for n in made_up) for m in (",", ":", "'", "/", "&")}
        assert all(marks.values()) if wide else marks[","] == marks[":"] == 0
    rows = training_problems(540, "wide")
    assert rows[:500] == training_problems(500)  # the committed problems first, unchanged
    styles = [all(e[0] in default for e in r["events"]) for r in rows[500:]]
    assert styles == [True, False] * 20  # then every other one made up
