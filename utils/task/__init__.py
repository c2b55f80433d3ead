"""Notebooks 01-02: the scheduling task itself.

Times and events (:mod:`.times`, :mod:`.events`), the optimal schedule and the greedy
baselines (:mod:`.scheduling`), what makes a row a problem (:mod:`.validate`), the seeded
problem generator (:mod:`.datagen`), loading the committed problems (:mod:`.data`), the words
the model sees (:mod:`.prompts`), dataset statistics (:mod:`.stats`) and Gantt charts
(:mod:`.plotting`).
"""

from .columns import PROBLEM_COLUMNS
from .data import PUBLISHED_DATASET, load_jsonl, load_problems, load_published, load_split, to_hf_dataset
from .datagen import (
    DATASET_SEED,
    OTHER_STYLE,
    GeneratorConfig,
    generate_dataset,
    generate_problem,
    problem_key,
    training_problems,
)
from .events import (
    NORMAL_WEIGHT,
    PRIORITY_WEIGHT,
    Interval,
    clashing,
    count_overlapping_pairs,
    event_key,
    event_spans,
    in_time_order,
    is_chronological,
    name_key,
    overlapping_pairs,
    overlaps,
    priority_keys,
    to_interval,
    to_intervals,
    weight_of,
)
from .prompts import SYSTEM_PROMPT, build_messages, format_answer, format_problem, format_schedule
from .scheduling import (
    GREEDY_RULES,
    brute_force_schedule,
    free_events,
    greedy_schedule,
    is_feasible,
    optimal_schedule,
    schedule_score,
    solve_dp,
)
from .times import MINUTES_PER_DAY, clock_minutes, minutes_to_time, time_to_minutes
from .validate import check_row, name_problem, problem_error, row_error
