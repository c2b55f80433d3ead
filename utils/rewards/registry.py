"""The library's rewards by name, and the reward sets the course names.

* :data:`DEFAULT_REWARDS` - what training uses when you wrote no ``my_rewards.py`` (notebook 03):
  format + :func:`~utils.rewards.alternatives.maximal_score_reward`, weights 1 (at most 10 + 70 = 80). The score
  pays only for schedules the evaluation counts valid, and charges for events left out that clash with nothing
  (GRPO with the strict score learned to leave events out). It is the set of the gpu profile's recipe
  (``results/ablation/wide4000_grpo_maximal_scan.json``: 57 -> 82 valid test answers, p = 1.1e-5; the scan
  recipe's ``strong_grpo_maximal_scan.json``: 67 -> 83, p = 0.0025), and a laptop run
  of the cpu profile with it went 1 -> 10 of 40 (p = 0.012; ``results/cpu_course_maximal_2026-12-07.json``).
* :data:`STRICT_REWARDS` - format + :func:`~utils.rewards.alternatives.strict_score_reward`, the default until
  2026-12-07: the strict score pays a short valid schedule nearly as well as a whole one. From a weak warm start
  on a GPU it kept more answers valid than the maximal score (91 against 50 of 100, ``weak_grpo_strict`` and
  ``weak_grpo_maximal``), with shorter ones; neither mean score differed beyond noise. The order reward is in
  neither set: it pays 20 for events in time order even when they are invented or clash; while few answers are
  valid that was most of a laptop run's signal, and valid answers rose 1 -> 4 (p = 0.38) with it, 1 -> 10
  (p = 0.012) without it (``results/cpu_recipe_2026-12-06.json``).
* :data:`STRICT_ORDER_REWARDS` - format + order + strict score (at most 100): the GPU rows ``weak_grpo_strict`` and
  ``strong_grpo_strict`` of ``experiments/ablation.json`` trained with it.
* :data:`SEED_REWARDS` - the published recipe's set, with :func:`~utils.rewards.course.score_reward`,
  which drops clashing events and pays for the rest: GRPO learns to list clashing events (notebook 03
  shows why; ``results/ablation/weak_grpo.json`` shows it happen). One switch away:
  ``default_reward_funcs(SEED_REWARDS)``, or ``REWARDS = [format_reward, sorted_events_reward, score_reward]``
  in ``my_rewards.py``.
"""

from __future__ import annotations

from .alternatives import (
    length_penalty_reward,
    maximal_score_reward,
    optimal_bonus_reward,
    overlap_penalty_score_reward,
    partial_format_reward,
    partial_score_reward,
    squared_score_reward,
    strict_score_reward,
    trace_clash_reward,
    truncation_penalty_reward,
)
from .common import RewardFn
from .course import format_reward, score_reward, sorted_events_reward
from .reference import REFERENCE_REWARDS

LIBRARY_REWARDS: dict[str, RewardFn] = {
    f.__name__: f
    for f in (
        format_reward,
        sorted_events_reward,
        score_reward,
        partial_format_reward,
        partial_score_reward,
        strict_score_reward,
        squared_score_reward,
        maximal_score_reward,
        optimal_bonus_reward,
        trace_clash_reward,
        overlap_penalty_score_reward,
        truncation_penalty_reward,
        length_penalty_reward,
        *REFERENCE_REWARDS,
    )
}
"""Every reward the library ships, by name (the ablation's rows name their rewards)."""

DEFAULT_REWARDS: tuple[str, ...] = ("format_reward", "maximal_score_reward")
STRICT_REWARDS: tuple[str, ...] = ("format_reward", "strict_score_reward")
STRICT_ORDER_REWARDS: tuple[str, ...] = ("format_reward", "sorted_events_reward", "strict_score_reward")
SEED_REWARDS: tuple[str, ...] = ("format_reward", "sorted_events_reward", "score_reward")


def get_reward(name: str) -> RewardFn:
    if name not in LIBRARY_REWARDS:
        raise ValueError(f"unknown reward {name!r}; library rewards: {sorted(LIBRARY_REWARDS)}")
    return LIBRARY_REWARDS[name]


def default_reward_funcs(names: tuple[str, ...] = DEFAULT_REWARDS) -> list[RewardFn]:
    """The course's default set (weights 1); ``default_reward_funcs(SEED_REWARDS)`` for the seed's."""
    return [get_reward(n) for n in names]
