"""Events left out for free: the task's free_events, the maximal score reward, the completion gap of answers."""

from __future__ import annotations

import pytest

from utils.evaluate import load_completions
from utils.evaluate.answers import completion_gap
from utils.rewards import maximal_score_reward, strict_score_reward
from utils.rewards.gallery import make_gallery
from utils.task.data import load_split
from utils.task.prompts import format_answer
from utils.task.scheduling import free_events, optimal_schedule

A, B, C, D = ["A", "08:00", "09:00"], ["B", "09:00", "10:30"], ["C", "11:00", "12:00"], ["D", "08:30", "09:30"]


def cols(events, priority=(), optimal=210):
    return {"events": [events], "priority_events": [list(priority)], "optimal_score": [optimal]}


def test_free_events_touching_is_free_a_clash_is_not():
    assert free_events([A, B, C, D], [], [A]) == [B, C]  # B touches A; D clashes with A
    assert free_events([A, B, C, D], [], [D]) == [C]  # A and B both clash with D
    assert free_events([A, B, C, D], [], [A, B, C]) == []  # maximal


def test_free_events_take_the_more_valuable_of_two_that_clash_with_each_other():
    early, late = ["X", "13:00", "14:00"], ["Y", "13:30", "15:00"]  # 60 and 90 minutes, clashing
    assert free_events([A, early, late], [], [A]) == [late]
    assert free_events([A, early, late], ["X"], [A]) == [early]  # priority doubles X to 120


def test_free_events_match_names_as_the_parser_does():
    assert free_events([A, B], [], [[" A ", "08:00", "09:00"]]) == [B]


def test_maximal_score_pays_a_maximal_schedule_as_the_strict_score_does():
    for row in load_split("test", 10):
        c = {k: [row[k]] for k in ("events", "priority_events", "optimal_score")}
        gallery = make_gallery(row)
        for label in ("optimal (DP)", "greedy"):  # both maximal: nothing can be added without a clash
            assert maximal_score_reward([gallery[label]], **c) == strict_score_reward([gallery[label]], **c)
        for label in ("overlapping", "invented event", "hack: every event", "truncated"):
            assert maximal_score_reward([gallery[label]], **c) == [0.0]


def test_maximal_score_charges_each_free_event_left_out():
    answers = [format_answer("", [A, B, C]), format_answer("", [A, B]), format_answer("", [A, C])]
    three = {k: v * 3 for k, v in cols([A, B, C, D]).items()}
    # [A, B] leaves C out (60 minutes): (150 - 60) / 210; [A, C] leaves B out (90): (120 - 90) / 210
    assert maximal_score_reward(answers, **three) == pytest.approx([70, 30, 10])
    assert strict_score_reward(answers, **three) == pytest.approx([70, 50, 40])


def test_maximal_score_is_never_negative():
    p, q, r = ["P", "08:00", "09:00"], ["Q", "09:00", "09:10"], ["R", "10:00", "14:00"]
    assert maximal_score_reward([format_answer("", [p, q])], **cols([p, q, r], optimal=310)) == [0.0]  # 70 - 240


def test_dropping_an_event_of_an_optimal_schedule_lowers_the_maximal_score_more():
    for row in load_split("test", 30):
        best = optimal_schedule(row["events"], row["priority_events"])[1]
        if len(best) < 3:
            continue
        c = {k: [row[k]] for k in ("events", "priority_events", "optimal_score")}
        short = format_answer("", best[1:])
        assert 0 <= maximal_score_reward([short], **c)[0] < strict_score_reward([short], **c)[0] < 70


def test_completion_gap_of_the_committed_strict_row():
    """README's figures: weak_grpo_strict's 91 valid test answers all leave events out for free."""
    texts = load_completions("results/ablation/weak_grpo_strict/completions_grpo_test.jsonl")
    gap = completion_gap(load_split("test", len(texts)), texts)
    assert (gap["valid"], gap["not_maximal"], gap["free_events"]) == (91, 91, 197)
    assert gap["mean_score"] == pytest.approx(42.90, abs=0.01)
    assert gap["mean_score_completed"] == pytest.approx(85.45, abs=0.01)
    with pytest.raises(ValueError, match="rows but"):
        completion_gap(load_split("test", 2), texts[:1])


def test_explain_names_the_free_events():
    from utils.rewards import explain

    row = {"events": [A, B, C, D], "priority_events": [], "optimal_score": 210}
    assert "left out though nothing listed clashes with them: C (11:00-12:00) (+60 weighted)" in str(
        explain(row, format_answer("", [A, B]))
    )
    assert "left out though" not in str(explain(row, format_answer("", [A, B, C])))  # maximal
    assert "left out though" not in str(explain(row, format_answer("", [A, D])))  # a clash: not a candidate


def test_sample_gaps_of_the_committed_strict_run():
    """During GRPO with the strict score, valid sampled answers left out more and more free events."""
    from utils.evaluate.answers import sample_gaps
    from utils.task.data import load_jsonl

    samples = load_jsonl("results/ablation/weak_grpo_strict/grpo_samples.jsonl.gz")  # committed compressed
    gaps = sample_gaps(samples, load_split("train"))
    first, last = gaps[10], gaps[150]
    assert (first["valid"], first["not_maximal"], first["free_events"]) == (33, 26, 36)
    assert (last["valid"], last["not_maximal"], last["free_events"]) == (52, 52, 165)


def test_sample_gaps_reads_a_recorded_problem():
    from utils.evaluate.answers import sample_gaps

    problem = {"events": [A, B, C, D], "priority_events": [], "optimal_score": 210}
    samples = [
        {"step": 1, "completion": format_answer("", [A, B]), "problem": problem},  # C left out
        {"step": 1, "completion": format_answer("", [A, B, C]), "problem": problem},
        {"step": 1, "completion": format_answer("", [A, D]), "problem": problem},  # a clash: not valid
    ]
    assert sample_gaps(samples, problems=[]) == {
        1: {"answers": 3, "valid": 2, "not_maximal": 1, "free_events": 1, "free_per_valid": 0.5}
    }
