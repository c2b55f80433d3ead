"""Notebook 06: evaluation, the reference's way.

:mod:`.evaluation` - categories and scores like the public reference (also a command:
``python -m utils.evaluate --data ... --completions ...``); :mod:`.baselines` - answers written
by rules; :mod:`.report` - tables, charts and galleries comparing models; :mod:`.statistics` -
paired tests and intervals: is a difference real?
"""

from .baselines import BASELINES, baseline_completions, baseline_table, evaluate_baselines
from .evaluation import (
    CATEGORIES,
    COUNT_KEYS,
    PUBLISHED_RESULTS,
    SUMMARY_KEYS,
    EvalResult,
    EvalSummary,
    evaluate,
    evaluate_completion,
    load_completions,
    save_completions,
)
from .report import (
    draw_example,
    failure_gallery,
    pick_examples,
    plot_categories,
    plot_score_histograms,
    results_table,
    rows_with_grpo_answers,
)
from .statistics import (
    Change,
    PairedComparison,
    PermutationTest,
    change_verdict,
    compare,
    mcnemar_exact,
    mean_difference_interval,
    paired_bootstrap,
    permutation_test,
    takeaway,
    transitions,
    what_changed,
)
