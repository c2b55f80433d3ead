"""Is a difference real? Paired tests for two models on the same problems, and intervals for curves.

Two models answer the same 100 problems, so the comparison is *paired*: what matters is how
many problems changed verdict, not the two totals. The course uses

* :func:`mcnemar_exact` - the exact McNemar test on the problems whose verdict (valid or not)
  changed: under "no difference" a change is equally likely in either direction, so the count
  of improvements is Binomial(changes, 1/2);
* :func:`paired_bootstrap` - a percentile bootstrap interval of the mean per-problem score
  difference (problems resampled with replacement, the pairing kept);
* :func:`mean_difference_interval` - an unpaired bootstrap interval (fine with dozens of values
  a side; too narrow with a handful);
* :func:`permutation_test` - two small unpaired groups, e.g. the step rewards of the first and the
  last quarter of a training run: exact over every split of the values when there are few, with an
  interval of the shift that holds at 4 values a side.

Every function is pure and seeded: the same inputs give the same interval on any machine.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


def mcnemar_exact(improved: int, worsened: int) -> float:
    """Two-sided exact McNemar p-value from the two off-diagonal counts.

    ``improved``: problems invalid before and valid after; ``worsened``: the reverse.

    >>> round(mcnemar_exact(9, 1), 4)  # 10 changes, 9 of them improvements
    0.0215
    >>> mcnemar_exact(3, 3)
    1.0
    """
    if improved < 0 or worsened < 0:
        raise ValueError(f"counts must be >= 0, got {improved}, {worsened}")
    n = improved + worsened
    if n == 0:
        return 1.0
    k = min(improved, worsened)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def transitions(
    before: Sequence[bool], after: Sequence[bool], yes: str = "valid", no: str = "invalid"
) -> dict[str, int]:
    """How each problem's verdict moved: ``valid->valid``, ``invalid->valid``, ``valid->invalid``,
    ``invalid->invalid`` (same problems, same order; ``yes``/``no`` name the two verdicts)."""
    if len(before) != len(after):
        raise ValueError(f"{len(before)} verdicts before but {len(after)} after: compare the same problems")
    out = {f"{x}->{y}": 0 for x in (yes, no) for y in (yes, no)}
    for b, a in zip(before, after):
        out[f"{yes if b else no}->{yes if a else no}"] += 1
    return out


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of an already sorted list (``q`` in [0, 1])."""
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def paired_bootstrap(
    before: Sequence[float], after: Sequence[float], n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean of ``after - before``, low, high): a percentile bootstrap interval, problems resampled
    with replacement, each keeping its pair."""
    if len(before) != len(after) or not before:
        raise ValueError("need two non-empty score lists of the same length (the same problems)")
    diffs = [a - b for b, a in zip(before, after)]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    alpha = (1 - confidence) / 2
    return sum(diffs) / n, _percentile(means, alpha), _percentile(means, 1 - alpha)


def mean_difference_interval(
    first: Sequence[float], second: Sequence[float], n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(second) - mean(first), low, high) with an unpaired percentile bootstrap: each group
    resampled on its own. For two sets of values that are not matched one to one."""
    if not first or not second:
        raise ValueError("both groups need at least one value")
    rng = random.Random(seed)

    def mean_of_resample(values: Sequence[float]) -> float:
        return sum(values[rng.randrange(len(values))] for _ in values) / len(values)

    diffs = sorted(mean_of_resample(second) - mean_of_resample(first) for _ in range(n_boot))
    alpha = (1 - confidence) / 2
    point = sum(second) / len(second) - sum(first) / len(first)
    return point, _percentile(diffs, alpha), _percentile(diffs, 1 - alpha)


@dataclass(frozen=True)
class PermutationTest:
    """``second`` against ``first`` (unpaired): the difference of the means and how rare it is."""

    diff: float  # mean(second) - mean(first)
    p_value: float  # two-sided: the share of splits whose |difference| is at least the observed one
    low: float  # 95% interval of the shift: the shifts the test does not reject (+-inf when none can be)
    high: float
    splits: int  # how many splits of the pooled values were counted
    exact: bool  # every split (True) or a seeded random sample of them

    @property
    def smallest_p(self) -> float:
        """The smallest p-value these group sizes allow (2 of C(n1 + n2, n2) splits when exact and n1 == n2)."""
        return (2 if self.exact else 1) / self.splits


def permutation_test(
    first: Sequence[float],
    second: Sequence[float],
    confidence: float = 0.95,
    max_exact: int = 20_000,
    n_random: int = 20_000,
    seed: int = 0,
) -> PermutationTest:
    """Exact two-sided permutation test of mean(second) - mean(first), and the shifts it does not reject.

    Under "no difference" every split of the pooled values into groups of the same sizes is equally
    likely, so p is the share of splits whose difference is at least as far from 0 as the observed one.
    With up to ``max_exact`` splits every split is counted (4 vs 4: 70 splits, so p is a multiple of
    1/70 and cannot go below 2/70); beyond that ``n_random`` seeded random splits. Unlike a bootstrap, it
    holds at 4 values a side. The interval is every shift ``d`` for which ``second - d`` vs ``first``
    is not rejected at ``1 - confidence``.

    >>> t = permutation_test([0, 0, 0, 3.75], [7.5, 10, 11.25, 1.25])
    >>> round(t.diff, 4), round(t.p_value, 3), t.splits
    (6.5625, 0.057, 70)
    """
    first, second = [float(v) for v in first], [float(v) for v in second]
    if not first or not second:
        raise ValueError("both groups need at least one value")
    if not all(math.isfinite(v) for v in first + second):
        raise ValueError("permutation_test needs finite values (a NaN or inf reward was logged)")
    n1, n2 = len(first), len(second)
    values = first + second
    total = math.comb(n1 + n2, n2)
    exact = total <= max_exact
    if exact:
        chosen = itertools.combinations(range(n1 + n2), n2)  # indices that play "second"
    else:
        rng = random.Random(seed)
        chosen = (rng.sample(range(n1 + n2), n2) for _ in range(n_random))
    # A split's difference under a shift d of the second group is linear in d: s - d * m, where m is the
    # share of true second-group values on its second side minus the share on its first side.
    whole, splits = sum(values), []
    for idx in chosen:
        in_second = sum(values[i] for i in idx)
        n_true = sum(1 for i in idx if i >= n1)
        splits.append((in_second / n2 - (whole - in_second) / n1, n_true / n2 - (n2 - n_true) / n1))
    diff = sum(second) / n2 - sum(first) / n1
    scale = max(values) - min(values) or 1.0
    tol = 1e-9 * scale

    def p_at(d: float) -> float:
        observed = abs(diff - d) - tol
        count = sum(1 for s, m in splits if abs(s - d * m) >= observed)
        return count / len(splits) if exact else (count + 1) / (len(splits) + 1)

    alpha = 1 - confidence

    def bound(direction: float) -> float:
        far = diff + direction * 1e3 * scale  # beyond every split's reach: only |m| = 1 splits count there
        if p_at(far) >= alpha:
            return direction * math.inf  # too few values for any shift to be rejected
        inside, outside = diff, far  # p(diff) = 1: the observed split ties with itself
        for _ in range(60):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if p_at(mid) >= alpha else (inside, mid)
        return inside

    return PermutationTest(diff, p_at(0.0), bound(-1.0), bound(+1.0), len(splits), exact)


@dataclass(frozen=True)
class PairedComparison:
    """Model B against model A on the same problems."""

    a: str
    b: str
    n: int
    valid_a: int
    valid_b: int
    transitions: dict[str, int]
    p_value: float  # exact McNemar on valid / not valid
    score_diff: float  # mean per-problem score difference B - A, x100
    score_low: float
    score_high: float
    # Well-formed answers (the reference's lenient format check passes): a change a weak model shows first.
    well_formed_a: int = 0
    well_formed_b: int = 0
    well_formed_transitions: dict[str, int] | None = None
    well_formed_p: float = 1.0
    identical: int | None = None  # answers B wrote exactly as A did (when the texts were given)

    def to_text(self) -> str:
        t, w = self.transitions, self.well_formed_transitions or {}
        text = (
            f"{self.b} vs {self.a} on {self.n} problems: valid {self.valid_a} -> {self.valid_b} "
            f"(+{t['invalid->valid']} / -{t['valid->invalid']}, exact McNemar p = {self.p_value:.3g}); "
            f"mean score {self.score_diff:+.2f} points, 95% paired bootstrap interval "
            f"[{self.score_low:+.2f}, {self.score_high:+.2f}]"
        )
        if w:
            text += (
                f"; well-formed {self.well_formed_a} -> {self.well_formed_b} (+{w['malformed->well-formed']} / "
                f"-{w['well-formed->malformed']}, p = {self.well_formed_p:.3g})"
            )
        if self.identical is not None:
            text += f"; {self.identical} of {self.n} answers unchanged"
        return text

    def __str__(self) -> str:
        return self.to_text()


def compare(a, b, name_a: str = "A", name_b: str = "B", seed: int = 0, texts_a=None, texts_b=None) -> PairedComparison:
    """Paired comparison of two :class:`~utils.evaluate.EvalSummary` of the same problems: valid
    answers, well-formed answers, the score; with both models' texts, also how many did not change."""
    if a.n != b.n:
        raise ValueError(f"{name_a} has {a.n} results but {name_b} has {b.n}: compare the same problems")
    moves = transitions([r.valid for r in a.results], [r.valid for r in b.results])
    formed_a = [r.category != "format_error" for r in a.results]
    formed_b = [r.category != "format_error" for r in b.results]
    formed = transitions(formed_a, formed_b, yes="well-formed", no="malformed")
    diff, low, high = paired_bootstrap([r.score for r in a.results], [r.score for r in b.results], seed=seed)
    identical = None if texts_a is None or texts_b is None else sum(x == y for x, y in zip(texts_a, texts_b))
    return PairedComparison(
        name_a,
        name_b,
        a.n,
        a.valid,
        b.valid,
        moves,
        mcnemar_exact(moves["invalid->valid"], moves["valid->invalid"]),
        100 * diff,
        100 * low,
        100 * high,
        sum(formed_a),
        sum(formed_b),
        formed,
        mcnemar_exact(formed["malformed->well-formed"], formed["well-formed->malformed"]),
        identical,
    )


# ------------------------------------------------------------------ what changed, in words
FAILURE_WORDS = {  # the evaluator's first failing check, as a learner reads it
    "format_error": "a format error (no closed schedule the checker can read)",
    "fewer_than_2_events": "fewer than 2 events",
    "nonexistent": "an event that is not in the problem",
    "unsorted": "events out of time order",
    "overlap": "overlapping events",
}


@dataclass(frozen=True)
class Change:
    """One category of a paired comparison: did it move beyond chance, and which way?"""

    what: str  # "well-formed answers" | "valid answers" | "mean score"
    before: float
    after: float
    direction: int  # +1 rose beyond chance, -1 fell beyond chance, 0 within chance
    evidence: str  # the test behind ``direction``, in words

    def to_text(self) -> str:
        if self.what == "mean score":
            return f"mean score {self.before:.1f} -> {self.after:.1f} ({self.evidence})"
        return f"{self.what} {self.before:g} -> {self.after:g} ({self.evidence})"


def what_changed(c: PairedComparison, alpha: float = 0.05) -> list[Change]:
    """Well-formed answers, valid answers and the mean score of ``c.b`` against ``c.a``, each with its
    test: exact McNemar for the two counts (p < ``alpha``), the 95% paired bootstrap interval for the
    score (it must exclude 0)."""
    out = []
    w = c.well_formed_transitions
    if w is not None:
        up, down = w["malformed->well-formed"], w["well-formed->malformed"]
        out.append(
            Change(
                "well-formed answers",
                c.well_formed_a,
                c.well_formed_b,
                (1 if up > down else -1) if c.well_formed_p < alpha else 0,
                f"+{up} / -{down}, exact McNemar p = {c.well_formed_p:.2g}",
            )
        )
    up, down = c.transitions["invalid->valid"], c.transitions["valid->invalid"]
    out.append(
        Change(
            "valid answers",
            c.valid_a,
            c.valid_b,
            (1 if up > down else -1) if c.p_value < alpha else 0,
            f"+{up} / -{down}, exact McNemar p = {c.p_value:.2g}",
        )
    )
    score_dir = 1 if c.score_low > 0 else -1 if c.score_high < 0 else 0
    out.append(
        Change(
            "mean score",
            0.0,
            c.score_diff,
            score_dir,
            f"{c.score_diff:+.1f} points, 95% paired bootstrap interval [{c.score_low:+.1f}, {c.score_high:+.1f}]",
        )
    )
    return out


def _main_failure(after) -> str | None:
    """``"17 of 24 answers still fail with an event that is not in the problem"`` from an EvalSummary."""
    if after is None or not after.results:
        return None
    counts: dict[str, int] = {}
    for r in after.results:
        if r.category != "valid":
            counts[r.category] = counts.get(r.category, 0) + 1
    if not counts:
        return None
    category, k = max(counts.items(), key=lambda kv: kv[1])
    return f"{k} of {after.n} answers fail first with {FAILURE_WORDS.get(category, category)}"


def change_verdict(c: PairedComparison, after=None, reasons: Sequence[str] = (), alpha: float = 0.05) -> str:
    """What changed from ``c.a`` to ``c.b``, naming the category: well-formed answers (the format),
    valid answers (the schedule) or the mean score; what stayed within chance; and, with ``after``
    (``c.b``'s EvalSummary), the failure most of its answers still show. ``reasons`` (e.g. from the
    training log) are added when nothing changed beyond chance."""
    changes = what_changed(c, alpha)
    moved = [ch for ch in changes if ch.direction != 0]
    still = [ch for ch in changes if ch.direction == 0]
    items = [
        f"the mean score {'rose' if ch.direction > 0 else 'fell'} ({ch.evidence})"
        if ch.what == "mean score"
        else f"{'more' if ch.direction > 0 else 'fewer'} {ch.to_text()}"
        for ch in moved
    ]
    parts = [("Beyond chance: " + "; ".join(items)) if items else "No change beyond chance."]
    if items:
        parts[0] += "."
    if still:
        within = [f"the mean score ({ch.evidence})" if ch.what == "mean score" else ch.to_text() for ch in still]
        parts.append("Within chance: " + "; ".join(within) + ".")
    failure = _main_failure(after)
    if failure:
        parts.append(f"Most common failure of {c.b}: {failure}.")
    if not moved and reasons:
        parts.append("The training log shows: " + "; ".join(reasons) + ".")
    return f"{c.b} vs {c.a} on {c.n} test problems. " + " ".join(parts)


def takeaway(c: PairedComparison, after=None, alpha: float = 0.05) -> str:
    """One sentence on what training taught ``c.b`` compared with ``c.a``, naming the category that
    moved; it says "valid" only when valid answers rose beyond chance."""
    ch = {x.what: x for x in what_changed(c, alpha)}
    valid, formed, score = ch["valid answers"], ch.get("well-formed answers"), ch["mean score"]
    failure = _main_failure(after)
    still = f" Most common failure: {failure}." if failure else ""
    if valid.direction > 0:
        return f"{c.b} wrote more valid schedules than {c.a}: {valid.to_text()}."
    if valid.direction < 0:
        return (
            f"{c.b} wrote fewer valid schedules than {c.a} ({valid.to_text()}): the reward paid for something the "
            "evaluation does not (notebook 03's reward hacks)."
        )
    if formed is not None and formed.direction > 0:
        return (
            f"{c.b} learned the answer format, not yet valid schedules: {formed.to_text()}, but "
            f"{valid.to_text()}.{still}"
        )
    if formed is not None and formed.direction < 0:
        return f"{c.b} lost the answer format: {formed.to_text()}; {valid.to_text()}.{still}"
    if score.direction != 0:
        verb = "higher" if score.direction > 0 else "lower"
        return (
            f"{c.b}'s schedules score {verb} than {c.a}'s ({score.evidence}), with no change in valid answers "
            f"beyond chance: {valid.to_text()}.{still}"
        )
    return f"No change beyond chance from {c.a} to {c.b} on {c.n} test problems: {valid.to_text()}.{still}"
