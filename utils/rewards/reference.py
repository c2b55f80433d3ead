"""The public reference's rewards and evaluation, kept for comparison (see README, Sources).

The reference evaluation built on these lives in :mod:`utils.evaluate.evaluation`.
Behaviour is reproduced exactly, but in linear time: the two format checks are the
reference's regular expressions, evaluated as an ordered search for their tokens
(equivalent for these patterns, proven against the real regexes in the tests). The raw
patterns are kept below only for the backtracking demo in notebook 03 and the
benchmarks: never call them on model output without a timeout.

The one departure: :func:`reference_score_reward` gives 0 on a row whose ``optimal_score`` cannot
be the problem's optimum (NaN, negative, impossibly small: the reference divides by it) and is
capped at its declared 70; wherever the optimum is right its values are the reference's.

Two known defects, shown in notebook 03 and fixed in :mod:`utils.rewards.course`:

* the training format regex backtracks catastrophically on a completion cut off before
  ``</schedule>`` (time grows exponentially with the number of events);
* the reference score reward tests overlap with ``<=``/``>=``, so touching events
  (one ends when the next starts) count as overlapping and an optimal schedule can lose
  points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..task.times import clock_minutes
from ..task.validate import optimum_error
from .common import as_batch, problem_columns
from .parsing import RawEvent, completion_text, find_strict_events

# Patterns as published (use with re.DOTALL and re.match), for the blow-up demo and the
# equivalence tests only.
REFERENCE_TRAIN_FORMAT_PATTERN = (
    r"<think>.+</think>.*<schedule>.*(<event>.*<name>.+</name>.*<start>\d{2}:\d{2}</start>"
    r".*<end>\d{2}:\d{2}</end>.*</event>)+.*</schedule>"
)
# The reference's event extractor (its verbose pattern, written on one line).
REFERENCE_CAPTURE_PATTERN = (
    r"<event>\s*<name>([^<]+)</name>\s*<start>(\d{2}:\d{2})</start>\s*<end>(\d{2}:\d{2})</end>\s*</event>"
)
REFERENCE_EVAL_FORMAT_PATTERN = (
    r".*<schedule>.*<event>.*<name>.*</name>.*<start>\d{2}:\d{2}</start>.*<end>\d{2}:\d{2}</end>"
    r".*</event>.*</schedule>.*"
)


def _find_time_tag(text: str, tag: str, pos: int) -> int:
    """End of the first ``<tag>DD:DD</tag>`` at or after ``pos``, else -1."""
    open_t, close_t = f"<{tag}>", f"</{tag}>"
    i = text.find(open_t, pos)
    while i >= 0:
        j = i + len(open_t)
        t = text[j : j + 5]
        if (
            len(t) == 5
            and t[2] == ":"
            and t[0].isdecimal()
            and t[1].isdecimal()
            and t[3].isdecimal()
            and t[4].isdecimal()
            and text.startswith(close_t, j + 5)
        ):
            return j + 5 + len(close_t)
        i = text.find(open_t, i + 1)
    return -1


def _ordered_tokens(text: str, pos: int, name_needs_char: bool) -> bool:
    """``<schedule> .* <event> .* <name> .(+|*) </name> .* <start>.. .* <end>.. .* </event> .* </schedule>``.

    Each ``.*`` matches anything, so the regex matches exactly when the tokens occur in
    this order; taking the leftmost occurrence of each is then always right.
    """
    for token in ("<schedule>", "<event>", "<name>"):
        pos = text.find(token, pos)
        if pos < 0:
            return False
        pos += len(token)
    pos = text.find("</name>", pos + (1 if name_needs_char else 0))
    if pos < 0:
        return False
    pos += len("</name>")
    for tag in ("start", "end"):
        pos = _find_time_tag(text, tag, pos)
        if pos < 0:
            return False
    for token in ("</event>", "</schedule>"):
        pos = text.find(token, pos)
        if pos < 0:
            return False
        pos += len(token)
    return True


def reference_train_format_ok(text: str) -> bool:
    """Same answer as ``re.match(REFERENCE_TRAIN_FORMAT_PATTERN, text, re.DOTALL)``."""
    if not text.startswith("<think>"):
        return False
    close = text.find("</think>", len("<think>") + 1)  # '.+': at least one character
    if close < 0:
        return False
    return _ordered_tokens(text, close + len("</think>"), name_needs_char=True)


def reference_eval_format_ok(text: str) -> bool:
    """Same answer as ``re.match(REFERENCE_EVAL_FORMAT_PATTERN, text, re.DOTALL)`` (lenient)."""
    return _ordered_tokens(text, 0, name_needs_char=False)


def reference_events(text: str) -> list[RawEvent]:
    """Events as the reference extracts them: strict shape, anywhere in the text, name as written."""
    return find_strict_events(text)


def reference_format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Reference format reward: 10 if the training regex matches, else 0."""
    return [10.0 if reference_train_format_ok(completion_text(c)) else 0.0 for c in as_batch(completions)]


def reference_sorted_events_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Reference sorted reward: 20 if at least two events and start times strictly increase."""
    out = []
    for c in as_batch(completions):
        evs = reference_events(completion_text(c))
        if len(evs) < 2:
            out.append(0.0)
            continue
        starts = [clock_minutes(e.start) for e in evs]
        out.append(20.0 if all(a < b for a, b in zip(starts, starts[1:])) else 0.0)
    return out


def reference_score_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Reference score reward, touching-events defect included.

    0 if an event is not in the problem, or a repeat, or fewer than 2; otherwise both
    events of every pair with ``start1 <= end2 and end1 >= start2`` are dropped and the
    rest scores ``weighted / optimal * 70``.

    Two guards the reference lacks, so that the value stays in its declared range 0..70 on any
    row: an ``optimal_score`` that cannot be the problem's optimum
    (:func:`utils.task.validate.optimum_error`: not finite, below the best single event, above the
    DP's; the reference divides by it and gave ``nan`` for NaN, -2520 for -5 and 1.3e304 for
    1e-300) scores 0, like the reference's own ``not optimal_score`` case; and the value is capped
    at 70 (reached only when ``optimal_score`` is below the true optimum). Wherever the optimum is
    right, both guards leave the reference's values unchanged. Dataset columns of another length than
    ``completions`` are an error, as in the course's rewards: a row must never be scored against
    another row's problem.
    """
    completions = as_batch(completions)
    out = []
    for c, (events, prios, opt) in zip(completions, problem_columns(kwargs, len(completions))):
        try:
            listed = [tuple(e.as_list()) for e in reference_events(completion_text(c))]
            known = {tuple(e) for e in events}
            existing = {e for e in listed if e in known}
            if len(existing) < len(listed) or len(existing) < 2 or not opt or optimum_error(events, prios, opt):
                out.append(0.0)
                continue
            mins = [(e[0], clock_minutes(e[1]), clock_minutes(e[2])) for e in existing]
            clashing = set()
            for j in range(len(mins)):
                for k in range(j + 1, len(mins)):
                    if mins[j][1] <= mins[k][2] and mins[j][2] >= mins[k][1]:
                        clashing.update((mins[j], mins[k]))
            score = sum((2 if e[0] in prios else 1) * (e[2] - e[1]) for e in mins if e not in clashing)
            out.append(min(70.0, score / opt * 70))
        except (TypeError, ValueError):
            out.append(0.0)
    return out


REFERENCE_REWARDS = (reference_format_reward, reference_sorted_events_reward, reference_score_reward)


reference_format_reward.reward_range = (0, 10.0)
reference_sorted_events_reward.reward_range = (0, 20.0)
reference_score_reward.reward_range = (0, 70.0)  # guarded: see reference_score_reward


# ------------------------------------------------------------- the blow-up, safely
_TIMING_CHILD = """
import re, sys, time
pattern, text = sys.stdin.read().split("\\x00", 1)
rx = re.compile(pattern, re.DOTALL)
t0 = time.perf_counter()
rx.match(text)
print(time.perf_counter() - t0)
"""


def time_regex_in_subprocess(text: str, timeout: float, pattern: str = REFERENCE_TRAIN_FORMAT_PATTERN) -> float | None:
    """Seconds ``re.match(pattern, text, re.DOTALL)`` takes, measured in a child process
    killed after ``timeout`` seconds (then ``None``). Safe on inputs that backtrack forever."""
    import subprocess
    import sys

    try:
        out = subprocess.run(
            [sys.executable, "-c", _TIMING_CHILD],
            input=pattern + "\x00" + text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(out.stdout.strip())
