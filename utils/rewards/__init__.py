"""Notebook 03: reading answers and rewarding them.

* :mod:`.parsing` - one linear-time parser for every reward and check;
* :mod:`.course` - the course's three rewards (format 10 + order 20 + score 70);
  :mod:`.schedule_check` - what the score reward measures;
* :mod:`.alternatives` - partial credit and penalties to compare with;
* :mod:`.reference` - the public reference's rewards, defects included, in linear time;
* :mod:`.trace` - what a ``<think>`` trace says (its clauses, the clashes it names), in linear time;
* :mod:`.explain` - the breakdown of one answer; :mod:`.registry` - rewards by name, the default
  and the seed's reward sets; :mod:`.total` - the weighted total and its weights;
* :mod:`.checker` - put a reward through its paces before training with it;
* :mod:`.rewards_file` - ``outputs/my_rewards.py``, the reward set notebook 03 writes and training loads;
* :mod:`.gallery` and :mod:`.inspector` - answers of known quality, and the widget.

Every reward has TRL's signature ``fn(completions, **kwargs) -> list[float]``.
"""

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
from .checker import CheckReport, assert_reward_ok, check_reward_function
from .common import RewardFn, problem_columns, reward_name, safe
from .course import FORMAT_POINTS, SCORE_POINTS, SORTED_POINTS, format_reward, score_reward, sorted_events_reward
from .explain import Explanation, explain
from .gallery import GALLERY_LABELS, back_to_back_completion, make_gallery
from .inspector import build_inspector
from .parsing import ParsedCompletion, RawEvent, ScheduledEvent, completion_text, parse_completion
from .reference import (
    REFERENCE_REWARDS,
    reference_format_reward,
    reference_score_reward,
    reference_sorted_events_reward,
    time_regex_in_subprocess,
)
from .registry import (
    DEFAULT_REWARDS,
    LIBRARY_REWARDS,
    SEED_REWARDS,
    STRICT_ORDER_REWARDS,
    STRICT_REWARDS,
    default_reward_funcs,
    get_reward,
)
from .rewards_file import RewardSetError, load_reward_set, my_rewards_path
from .schedule_check import ScheduleCheck, check_schedule, event_value
from .total import MAX_WEIGHT, check_reward_set, check_weights, total_reward, weighted_total
