"""The course's rewards: TRL's calling convention, agreement with the reference on every
answer the reference evaluation counts valid (except the touching-events fix, shown
explicitly), full marks for the DP optimum, the alternatives, explain(), the gallery
and the inspector's pure functions."""

import math
import random
import warnings

import pytest

from utils.evaluate.evaluation import evaluate_completion
from utils.rewards import (
    DEFAULT_REWARDS,
    SEED_REWARDS,
    STRICT_ORDER_REWARDS,
    STRICT_REWARDS,
    check_schedule,
    default_reward_funcs,
    explain,
    format_reward,
    get_reward,
    length_penalty_reward,
    overlap_penalty_score_reward,
    partial_format_reward,
    partial_score_reward,
    score_reward,
    sorted_events_reward,
    strict_score_reward,
    total_reward,
    truncation_penalty_reward,
)
from utils.rewards.gallery import GALLERY_LABELS, back_to_back_completion, make_gallery
from utils.rewards.inspector import CUSTOM, OPTIMAL, Inspector, completion_options, draw_view, inspect_completion
from utils.rewards.reference import reference_format_reward, reference_score_reward, reference_sorted_events_reward
from utils.rewards.schedule_check import MAX_LISTED_PAIRS
from utils.task import GREEDY_RULES, greedy_schedule, optimal_schedule, time_to_minutes
from utils.task.prompts import format_answer

OURS = (format_reward, sorted_events_reward, score_reward)
THEIRS = (reference_format_reward, reference_sorted_events_reward, reference_score_reward)


def strict_order():
    """format + order + strict score (at most 10 + 20 + 70 = 100): the three-reward set these totals are about."""
    return default_reward_funcs(STRICT_ORDER_REWARDS)


def cols(rows):
    return {k: [r[k] for r in rows] for k in ("events", "priority_events", "optimal_score")}


def touching(events):
    """Do two of these events meet end-to-start?"""
    mins = [(time_to_minutes(s), time_to_minutes(e)) for _, s, e in events]
    return any(a[1] == b[0] for a in mins for b in mins)


# ------------------------------------------------------------------ layouts of one answer
def layout(events, style, reasoning="Weighing the clashes."):
    def ev(n, s, e, sep, ind=""):
        parts = (f"<name>{n}</name>", f"<start>{s}</start>", f"<end>{e}</end>", "</event>")
        return f"{ind}<event>" + "".join(f"{sep}{ind}{part}" for part in parts)

    if style == "one line":
        body = "".join(ev(*e, "") for e in events)
        return f"<think>{reasoning}</think><schedule>{body}</schedule>"
    if style == "one event a line":
        return format_answer(reasoning, events)
    if style == "pretty":
        body = "\n".join(ev(*e, "\n", "  ") for e in events)
        return f"<think>\n{reasoning}\n</think>\n\n<schedule>\n{body}\n</schedule>\n"
    if style == "spaces":
        body = " ".join(ev(*e, " ") for e in events)
        return f"<think>{reasoning}</think> <schedule> {body} </schedule> Done."
    if style == "crlf":
        return format_answer(reasoning, events).replace("\n", "\r\n")
    raise ValueError(style)


STYLES = ("one line", "one event a line", "pretty", "spaces", "crlf")


def candidate_schedules(row, rng, n_random=3):
    """DP, every greedy rule, and random non-overlapping subsets, in chronological order."""
    events, prios = row["events"], row["priority_events"]
    out = [optimal_schedule(events, prios)[1]] + [greedy_schedule(events, prios, r)[1] for r in GREEDY_RULES]
    for _ in range(n_random):
        picked = rng.sample(events, rng.randint(2, len(events)))
        kept = [p for p in prios if p in {e[0] for e in picked}]  # a solver refuses a priority that is not an event
        out.append(greedy_schedule(picked, kept, "earliest_start")[1])  # drops the clashes
    return out


@pytest.fixture(scope="module")
def reference_valid_cases(train_rows):
    """(row, completion) pairs the reference evaluation counts valid."""
    rng = random.Random(0)
    cases = []
    for i, row in enumerate(train_rows):
        for k, sched in enumerate(candidate_schedules(row, rng)):
            text = layout(sched, STYLES[(i + k) % len(STYLES)])
            if evaluate_completion(row, text).valid:
                cases.append((row, text, sched))
    return cases


def test_enough_reference_valid_cases(reference_valid_cases):
    assert len(reference_valid_cases) > 2000


def test_rewards_agree_with_the_reference_except_touching(reference_valid_cases):
    rows = [r for r, _, _ in reference_valid_cases]
    texts = [t for _, t, _ in reference_valid_cases]
    c = cols(rows)
    for ours, theirs in zip(OURS, THEIRS):
        a, b = ours(texts, **c), theirs(texts, **c)
        for (_row, text, sched), x, y in zip(reference_valid_cases, a, b):
            if ours is score_reward and touching(sched):
                assert x >= y - 1e-9  # the fix only ever gives back points the reference wrongly took
            else:
                assert x == pytest.approx(y), (ours.__name__, text)


def test_touching_is_the_only_difference(reference_valid_cases):
    diffs = [
        (row, sched)
        for row, text, sched in reference_valid_cases
        if score_reward([text], **cols([row]))[0] != pytest.approx(reference_score_reward([text], **cols([row]))[0])
    ]
    assert diffs, "the generated cases should include touching events"
    assert all(touching(sched) for _, sched in diffs)


@pytest.mark.parametrize("style", STYLES)
def test_dp_optimum_scores_100_everywhere(train_rows, test_rows, style):
    rows = train_rows + test_rows
    texts = [layout(optimal_schedule(r["events"], r["priority_events"])[1], style) for r in rows]
    totals = total_reward(strict_order(), texts, **cols(rows))
    assert totals == [100.0] * len(rows)
    chat = [[{"role": "assistant", "content": t}] for t in texts]
    assert total_reward(strict_order(), chat, **cols(rows)) == [100.0] * len(rows)
    assert total_reward(default_reward_funcs(), texts, **cols(rows)) == [80.0] * len(rows)  # the default: 10 + 70


def test_rows_where_the_reference_penalises_the_optimum(train_rows, test_rows):
    """The touching defect on our data: optimal answers the reference scores below 70."""
    found = []
    for split, rows in (("train", train_rows), ("test", test_rows)):
        for i, row in enumerate(rows):
            best = optimal_schedule(row["events"], row["priority_events"])[1]
            text = format_answer("r", best)
            ref = reference_score_reward([text], **cols([row]))[0]
            if ref < 70:
                assert touching(best)
                assert score_reward([text], **cols([row]))[0] == 70.0
                assert evaluate_completion(row, text).score == 1.0  # the evaluation agrees with us
                found.append((split, i, round(ref, 1)))
    assert found, "expected some optimal schedules with touching events in data/*.jsonl"


def test_touching_events_constructed():
    row = {
        "events": [["Gym", "07:00", "08:00"], ["Standup", "08:00", "08:30"], ["Call", "07:30", "08:15"]],
        "priority_events": ["Standup"],
    }
    row["optimal_score"] = optimal_schedule(row["events"], row["priority_events"])[0]
    text = format_answer("touching is fine", [["Gym", "07:00", "08:00"], ["Standup", "08:00", "08:30"]])
    assert row["optimal_score"] == 120
    assert score_reward([text], **cols([row])) == [70.0]
    assert reference_score_reward([text], **cols([row])) == [0.0]  # both removed as "overlapping"


# --------------------------------------------------------------------- the TRL contract
def test_trl_keyword_call(train_rows):
    row = train_rows[0]
    text = format_answer("r", optimal_schedule(row["events"], row["priority_events"])[1])
    extra = {"prompts": ["p"], "completion_ids": [[1, 2]], "prompt": [row["prompt"]], "trainer_state": None}
    for fn in (
        *OURS,
        partial_format_reward,
        partial_score_reward,
        overlap_penalty_score_reward,
        truncation_penalty_reward,
        length_penalty_reward,
    ):
        out = fn(completions=[text], **cols([row]), **extra)
        assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], float)


def test_missing_columns_are_a_clear_error():
    with pytest.raises(ValueError, match="dataset columns"):
        score_reward(["x"])
    with pytest.raises(ValueError, match="lengths"):
        score_reward(["x", "y"], events=[[]], priority_events=[[]], optimal_score=[1])


def test_get_reward_names():
    assert get_reward("score_reward") is score_reward
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward("nope")


# ------------------------------------------------------------------------ overlaps
def test_a_check_lists_a_bounded_number_of_pairs_but_every_clashing_event():
    """An answer repeating one event 3,000 times has 4.5 million pairs: the check lists the
    first MAX_LISTED_PAIRS and still knows every event clashes."""
    one = "<event><name>Gym</name><start>07:00</start><end>08:00</end></event>"
    chk = check_schedule(
        format_answer("x", []).replace("</schedule>", one * 3000 + "</schedule>"), [["Gym", "07:00", "08:00"]], [], 60
    )
    assert len(chk.overlaps) == MAX_LISTED_PAIRS and chk.clashing == set(range(3000))


# ------------------------------------------------------------------ the gallery
@pytest.fixture(scope="module")
def row(train_rows):
    return train_rows[3]


def test_gallery_rewards(row):
    g = make_gallery(row)
    assert list(g) == list(GALLERY_LABELS)
    seed = default_reward_funcs(SEED_REWARDS)
    table = {label: explain(row, text, seed).rewards for label, text in g.items()}
    assert sum(table["optimal (DP)"].values()) == 100
    assert table["greedy"]["score_reward"] < 70 or optimal_schedule(row["events"], row["priority_events"])[0] == max(
        greedy_schedule(row["events"], row["priority_events"], r)[0] for r in GREEDY_RULES
    )
    assert table["plausible wrong answer"]["score_reward"] == 0
    assert table["unsorted"]["sorted_events_reward"] == 0 and table["unsorted"]["score_reward"] == 70
    assert table["overlapping"]["score_reward"] < 70
    assert table["invented event"]["score_reward"] == 0
    assert table["empty reasoning"]["format_reward"] == 0
    assert table["truncated"]["format_reward"] == 0
    assert sum(table["no tags (plain text)"].values()) == 0
    assert table["hack: every event"]["score_reward"] < 70
    assert table["hack: one event repeated"]["score_reward"] == 0


def test_the_default_set_pays_nothing_for_the_hacks_the_seed_pays_for(row):
    """Issue 21.1: the seed's score_reward pays for the rest of a schedule when events clash (GRPO
    learned to list clashing events); the default maximal_score_reward pays only valid schedules."""
    g = make_gallery(row)
    for label in ("overlapping", "hack: every event"):
        seed = explain(row, g[label], default_reward_funcs(SEED_REWARDS)).rewards
        default = explain(row, g[label]).rewards
        assert seed["score_reward"] > 0 and default["maximal_score_reward"] == 0, label
    for label in ("optimal (DP)", "greedy"):
        assert strict_score_reward([g[label]], **cols([row])) == [explain(row, g[label], [score_reward]).total]


def test_the_default_set_is_format_and_maximal_score_and_does_not_pay_for_order_alone(row):
    """The default set is format + maximal score (at most 10 + 70 = 80): the order reward is left out
    because it paid 20 for events in time order even when one is invented; the maximal score pays such an
    answer nothing, and a valid answer that leaves out an event clashing with nothing less than the strict score
    does. The three-reward set (format + order + strict score, at most 100) keeps the order reward."""
    assert DEFAULT_REWARDS == ("format_reward", "maximal_score_reward")
    assert STRICT_REWARDS == ("format_reward", "strict_score_reward")
    assert STRICT_ORDER_REWARDS == ("format_reward", "sorted_events_reward", "strict_score_reward")
    g = make_gallery(row)
    best = explain(row, g["optimal (DP)"])
    assert best.total == 80 and best.max_total == 80
    assert explain(row, g["optimal (DP)"], default_reward_funcs(STRICT_REWARDS)).total == 80
    assert explain(row, g["optimal (DP)"], strict_order()).total == 100
    invented = explain(row, g["invented event"])
    assert invented.check.invented and invented.rewards == {"format_reward": 10.0, "maximal_score_reward": 0.0}
    assert invented.total == 10
    assert sorted_events_reward([g["invented event"]]) == [20.0]  # what the order reward would have paid it
    assert explain(row, g["invented event"], strict_order()).total == 30
    _, opt = optimal_schedule(row["events"], row["priority_events"])
    short = format_answer("r", opt[:-1])  # valid, but its last event clashes with nothing it lists
    strict = explain(row, short, default_reward_funcs(STRICT_REWARDS)).rewards["strict_score_reward"]
    assert 0 < explain(row, short).rewards["maximal_score_reward"] < strict


@pytest.mark.parametrize("i", range(0, 500, 37))
def test_gallery_builds_for_many_rows(train_rows, i):
    g = make_gallery(train_rows[i])
    assert all(isinstance(v, str) for v in g.values())
    assert explain(train_rows[i], g["optimal (DP)"], strict_order()).total == 100
    assert explain(train_rows[i], g["optimal (DP)"]).total == 80  # the default set: format 10 + maximal score 70


def test_back_to_back_is_cut_before_the_end():
    text = back_to_back_completion(14)
    assert text.count("<event>") == 14 and "</schedule>" not in text and "</event><event>" in text
    assert format_reward([text]) == [0.0] and truncation_penalty_reward([text]) == [-10.0]


# --------------------------------------------------------------------- alternatives
def test_partial_format_is_graded():
    steps = [
        "",
        "<think>",
        "<think>r</think>",
        "<think>r</think><schedule>",
        "<think>r</think><schedule><event><name>A</name><start>01:00</start><end>02:00</end></event>",
        "<think>r</think><schedule><event><name>A</name><start>01:00</start><end>02:00</end></event></schedule>",
    ]
    assert partial_format_reward(steps) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_partial_score_keeps_the_real_events(row):
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    text = format_answer("r", best + [["Fake", "23:00", "23:30"]])
    assert score_reward([text], **cols([row])) == [0.0]
    assert partial_score_reward([text], **cols([row])) == [65.0]


def test_overlap_penalty_counts_pairs(row):
    everything = sorted(row["events"], key=lambda e: e[1])
    text = format_answer("r", everything)
    chk = explain(row, text).check
    expected = max(
        0.0,
        70
        * min(
            1.0,
            sum(
                (2 if e[0] in row["priority_events"] else 1) * (time_to_minutes(e[2]) - time_to_minutes(e[1]))
                for e in everything
            )
            / row["optimal_score"],
        )
        - 15 * len(chk.overlaps),
    )
    assert overlap_penalty_score_reward([text], **cols([row])) == [pytest.approx(expected)]


def test_length_penalty():
    assert length_penalty_reward(["x" * 1500, "x" * 2250, "x" * 10_000]) == [0.0, -5.0, -10.0]
    assert length_penalty_reward(["x" * 200], max_chars=100) == [-10.0]
    assert math.copysign(1.0, length_penalty_reward(["short"])[0]) == 1.0  # 0.0, not -0.0 (shown as "-0.0" in tables)


# ----------------------------------------------------------------------- explain
def test_explain_breakdown(row):
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    clash = [e for e in row["events"] if e not in best][0]
    text = format_answer("r", best[::-1] + [clash, ["Fake", "23:00", "23:30"]])
    e = explain(row, text, strict_order())
    assert [x.name for x in e.check.invented] == ["Fake"]
    assert not e.check.chronological
    assert e.rewards == {"format_reward": 10.0, "sorted_events_reward": 0.0, "strict_score_reward": 0.0}
    assert e.total == 10.0 and e.max_total == 100.0
    out = str(e)
    for needle in ("not in problem", "not in the problem: ['Fake']", "chronological", "optimal", "TOTAL"):
        assert needle in out
    assert {r["status"] for r in e.event_rows()} >= {"ok", "not in problem"}
    assert e.summary()["invented"] == 1


def test_explain_with_weights_and_a_broken_reward(row):
    def broken(completions, **kwargs):
        raise RuntimeError("boom")

    with pytest.warns(RuntimeWarning, match="boom"):
        e = explain(row, "", [format_reward, broken, format_reward], [2.0, 1.0, 0.5])
    assert list(e.rewards) == ["format_reward", "broken", "format_reward'"]
    assert math.isnan(e.rewards["broken"]) and math.isnan(e.total) and e.max_total is None
    with pytest.raises(ValueError, match="weights"):
        explain(row, "", [format_reward], [1.0, 2.0])


def test_explain_weights_apply(row):
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    e = explain(row, format_answer("r", best), strict_order(), [0.5, 1, 2])
    assert e.total == 5 + 20 + 140 and e.max_total == 165


def test_explain_without_total_for_alternative_rewards(row):
    best = optimal_schedule(row["events"], row["priority_events"])[1]
    text = format_answer("r", best)
    alternatives = explain(row, text, [score_reward, reference_score_reward], total=False).to_text()
    assert "TOTAL" not in alternatives and "alternatives" in alternatives
    assert "TOTAL" in explain(row, text).to_text()


# --------------------------------------------------------------------- the inspector
def test_inspector_pure_functions(row):
    opts = completion_options(row)
    assert OPTIMAL in opts and CUSTOM in opts
    view = inspect_completion(row, opts[OPTIMAL], strict_order())
    assert view.total == 100 and "TOTAL" in view.text
    assert view.schedules[OPTIMAL] == view.schedules["this answer"]
    ax = draw_view(view)
    assert "100.0" in ax.get_title()
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
    for junk in (None, "", "<think>", 42):
        assert inspect_completion(row, junk).total == 0


def test_inspector_widget_updates(train_rows):
    ins = Inspector(train_rows[:3], strict_order())
    assert ins.view.total == 100
    ins.choice.value = "unsorted"
    assert ins.view.explanation.rewards["sorted_events_reward"] == 0
    ins.text.value = "<think>mine</think>"
    assert ins.choice.value == CUSTOM and ins.view.total == 0
    ins.problem.value = 2
    assert ins.choice.value == OPTIMAL and ins.view.problem is train_rows[2] and ins.view.total == 100


# ------------------------------------------------- rows that are not problems (issue 18)
SCORE_REWARDS = (score_reward, partial_score_reward, overlap_penalty_score_reward, reference_score_reward)
GOOD_ROW = {
    "events": [["A", "08:00", "09:00"], ["B", "09:30", "10:30"]],
    "priority_events": ["A"],
    "optimal_score": 180,
}
GOOD_ANSWER = format_answer("r", [["A", "08:00", "09:00"], ["B", "09:30", "10:30"]])


@pytest.mark.parametrize("fn", SCORE_REWARDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("opt", [math.nan, -5, 0, 1e-300, 1e-320, math.inf, -math.inf, 100, 181, None, "180"])
def test_score_rewards_give_0_for_a_broken_optimum(fn, opt):
    """Item 8: partial_score_reward gave 70 for NaN, reference_score_reward nan, -2520 and 1.3e304.
    An optimum that cannot be this problem's (not finite, below the best single event, above the
    DP's) scores 0, and every value stays inside the declared range."""
    assert fn([GOOD_ANSWER], **cols([GOOD_ROW])) == [70.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn([GOOD_ANSWER], **cols([{**GOOD_ROW, "optimal_score": opt}]))
    assert out == [0.0]
    lo, hi = fn.reward_range
    assert all(isinstance(v, float) and math.isfinite(v) and lo <= v <= hi for v in out)


def test_a_broken_row_warns_why():
    with pytest.warns(
        RuntimeWarning, match="not a problem of the course: optimal_score must be a finite number, got nan"
    ):
        assert score_reward([GOOD_ANSWER], **cols([{**GOOD_ROW, "optimal_score": math.nan}])) == [0.0]
    with pytest.warns(RuntimeWarning, match="below the value"):
        e = explain({**GOOD_ROW, "optimal_score": -5}, GOOD_ANSWER)
    assert "NOT A PROBLEM OF THE COURSE" in str(e) and "below the value of 'A' alone" in str(e)


def test_reference_score_is_capped_at_70():
    """An optimum between the best single event and the DP's is accepted (the published data may
    have been solved with the touching defect); the reference would then exceed 70."""
    row = {**GOOD_ROW, "optimal_score": 120}  # the value of A alone; the true optimum is 180
    assert reference_score_reward([GOOD_ANSWER], **cols([row])) == [70.0]
    assert score_reward([GOOD_ANSWER], **cols([row])) == [70.0]


def test_single_event_optimum_is_not_a_problem():
    """Item 7: on a hand-made row whose optimum is one event, the DP answer got 10 of 100 with no
    word why. Such a row is not a problem of the course (the generator never makes one, the
    loaders and the evaluator refuse it); the score reward says so."""
    row = {"events": [["Long", "08:00", "12:00"], ["Short", "09:00", "10:00"]], "priority_events": []}
    row["optimal_score"], best = optimal_schedule(row["events"], row["priority_events"])
    assert len(best) == 1
    with pytest.warns(RuntimeWarning, match="single event 'Long'"):
        assert score_reward([format_answer("r", best)], **cols([row])) == [0.0]
    with pytest.raises(ValueError, match="single event"):
        evaluate_completion(row, format_answer("r", best))


def test_names_are_compared_one_way():
    """Item 10: a priority name with surrounding spaces scored 46.67 (the event matched after
    stripping, the priority did not) while the evaluator gave 1.0. weight_of and event_key now
    share name_key; such a row is refused by every reader alike."""
    from utils.task import event_key, weight_of

    assert weight_of("Gym", [" Gym "]) == weight_of(" Gym", ["Gym"]) == 2
    assert event_key([" Gym ", "08:00", "09:00"]) == ("Gym", "08:00", "09:00")
    row = {
        "events": [[" Gym ", "08:00", "09:00"], ["Call", "09:00", "10:00"]],
        "priority_events": [" Gym "],
        "optimal_score": 180,
    }
    answer = format_answer("r", row["events"])
    with pytest.warns(RuntimeWarning, match="spaces"):
        assert score_reward([answer], **cols([row])) == [0.0]
    with pytest.raises(ValueError, match="spaces"):
        evaluate_completion(row, answer)


def test_names_with_angle_brackets_are_refused():
    """Item 9, the parse/score side: the DP answer to a hand-made row with '<' in a name cannot be
    parsed back; the row is refused with the reason, not scored 0 (or 56/100) in silence."""
    row = {"events": [["A<B", "08:00", "09:00"], ["C", "09:30", "10:30"]], "priority_events": []}
    row["optimal_score"], best = optimal_schedule(row["events"], row["priority_events"])
    with pytest.warns(RuntimeWarning, match="'<'"):
        assert score_reward([format_answer("r", best)], **cols([row])) == [0.0]
    with pytest.raises(ValueError, match="'<'"):
        evaluate_completion(row, format_answer("r", best))


# ------------------------------------------------------------------- weights (item 11)
def test_total_reward_needs_one_finite_weight_per_reward():
    funcs = strict_order()
    c = cols([GOOD_ROW])
    assert total_reward(funcs, [GOOD_ANSWER], **c) == [100.0]
    assert total_reward(funcs, [GOOD_ANSWER], weights=[1, 0.5, 2], **c) == [10 + 10 + 140]
    for weights, message in [
        ([1.0], "3 rewards but 1 weights"),
        ([1.0, 1.0, 1.0, 1.0], "3 rewards but 4 weights"),
        ([1.0, math.nan, 1.0], "finite number"),
        ([1.0, -math.inf, 1.0], "finite number"),
        ([1.0, "2", 1.0], "finite number"),
        ("111", "list of 3 numbers"),
    ]:
        with pytest.raises(ValueError, match=message):
            total_reward(funcs, [GOOD_ANSWER], weights=weights, **c)
    with pytest.raises(ValueError, match="finite number"):
        explain(GOOD_ROW, GOOD_ANSWER, funcs, [1.0, math.nan, 1.0])


def test_one_weights_check_and_one_total_everywhere():
    """Issue 22.3 / 23.10: the weights check and the weighted total live in utils.rewards.total;
    every place that sums rewards uses them, so a weight of 1e308 (total: inf) is refused by each."""
    import torch

    from utils.grpo import combine_rewards
    from utils.rewards import weighted_total
    from utils.rewards.checker import assert_reward_set_ok
    from utils.train.group_probe import group_rewards

    funcs, c = strict_order(), cols([GOOD_ROW])
    assert weighted_total([10.0, None, 70.0], [1.0, 5.0, 0.5]) == 45.0  # None: the reward does not apply
    assert math.isnan(weighted_total([None, None], [1.0, 1.0]))  # none applies: NaN, as TRL
    assert math.isnan(weighted_total([1.0, math.nan], [1.0, 1.0]))  # a failed reward shows
    assert combine_rewards(torch.tensor([[10.0, math.nan, 70.0]]), [1.0, 5.0, 0.5]).tolist() == [45.0]
    weights = [1.0, 0.5, 2.0]
    frame = group_rewards([{**GOOD_ROW, "prompt": "p"}], [[GOOD_ANSWER]], funcs, weights)
    assert explain(GOOD_ROW, GOOD_ANSWER, funcs, weights).total == frame["total"][0]
    assert frame["total"][0] == total_reward(funcs, [GOOD_ANSWER], weights, **c)[0] == 10 + 10 + 140
    huge = [1.0, 1e308, 1.0]
    calls = [
        lambda: total_reward(funcs, [GOOD_ANSWER], weights=huge, **c),
        lambda: explain(GOOD_ROW, GOOD_ANSWER, funcs, huge),
        lambda: group_rewards([{**GOOD_ROW, "prompt": "p"}], [[GOOD_ANSWER]], funcs, huge),
        lambda: combine_rewards(torch.ones(1, 3), huge),
        lambda: assert_reward_set_ok(funcs, huge),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="too large"):
            call()


def test_total_reward_refuses_a_short_answer():
    def one_value(completions, **kwargs):
        return [1.0]

    with pytest.raises(ValueError, match="one_value returned 1 values for 2 completions"):
        total_reward([one_value], ["a", "b"])


def test_explain_marks_priorities_the_way_it_values_them():
    """Same class as item 10: explain() doubled a value with weight_of (names stripped) but flagged
    the priority with `in` (not stripped), so one row said 'not a priority, value doubled'."""
    row = {**GOOD_ROW, "priority_events": [" A "]}  # not a problem (the name has spaces): shown anyway
    with pytest.warns(RuntimeWarning, match="reward error treated as 0: .*names must not start or end with spaces"):
        rows = explain(row, GOOD_ANSWER).event_rows()
    assert [(r["name"], r["priority"], r["value"]) for r in rows] == [("A", True, 120), ("B", False, 60)]


def test_strict_score_reward_pays_exactly_what_the_evaluation_pays(test_rows):
    """On every answer our models wrote on the lent GPU (results/ablation, 900 answers) and on the
    gallery: strict_score_reward == 70 x the reference evaluation's score."""
    import glob
    import json

    cases = [(row, text) for row in test_rows[:20] for text in make_gallery(row).values()]
    for path in sorted(glob.glob("results/ablation/*/completions_*_test.jsonl")):
        texts = [json.loads(line)["completion"] for line in open(path, encoding="utf-8")]
        cases += list(zip(test_rows, texts))
    assert len(cases) > 500
    for row, text in cases:
        got = strict_score_reward([text], **cols([row]))[0]
        assert got == pytest.approx(70 * min(1.0, evaluate_completion(row, text).score)), text[:300]


def test_strict_score_reward_refuses_what_score_reward_forgives(test_rows):
    row = test_rows[0]
    best = make_gallery(row)["optimal (DP)"]
    padded = best.replace("<name>", "<name> ", 1)
    for text in (padded, make_gallery(row)["hack: every event"]):
        assert score_reward([text], **cols([row]))[0] > 0
        assert strict_score_reward([text], **cols([row]))[0] == 0
    assert strict_score_reward([best], **cols([row]))[0] == pytest.approx(70.0)


def test_optimal_bonus_reward_pays_only_the_valid_optimum(test_rows):
    """The bonus for the whole schedule: the DP answer earns it, a valid but shorter one and every hack do not."""
    from utils.rewards.alternatives import optimal_bonus_reward

    for row in test_rows[:20]:
        gallery = make_gallery(row)
        c = cols([row])
        assert optimal_bonus_reward([gallery["optimal (DP)"]], **c) == [30.0]
        for name, text in gallery.items():
            verdict = evaluate_completion(row, text)
            pays = optimal_bonus_reward([text], **c)[0]
            assert pays == (30.0 if verdict.valid and verdict.score >= 1.0 - 1e-9 else 0.0), name
        valid_short = [t for t in gallery.values() if 0 < evaluate_completion(row, t).score < 1.0 - 1e-9]
        assert all(optimal_bonus_reward([t], **c) == [0.0] for t in valid_short)
