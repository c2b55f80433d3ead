"""Seeded generator of scheduling problems in the public dataset's schema.

Each row: ``events`` (``[name, "HH:MM", "HH:MM"]`` sorted by start), ``priority_events``
(names), ``optimal_score`` (DP optimum) and ``prompt`` (the problem as text).

Regenerate the committed dataset byte for byte::

    python -m utils.task            # writes data/train.jsonl, test.jsonl, test_other_style.jsonl
    python -m utils.task --check    # exits 1 if the committed files differ

Other output files (``--train FILE``...) are written only when new, or with ``--force``.

``test_other_style.jsonl`` is a held-out test set written in another style
(:data:`OTHER_STYLE`: sentence-case names with digits and punctuation, start times at any
minute of the whole day): does a model trained on our style generalise?
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import numbers
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..paths import EVENT_NAMES_FILE, OTHER_STYLE_NAMES_FILE, TEST_FILE, TEST_OTHER_STYLE_FILE, TRAIN_FILE
from .events import Interval, overlapping_pairs
from .prompts import format_problem
from .scheduling import optimal_schedule
from .times import minutes_to_time, time_to_minutes
from .validate import MIN_OPTIMAL_EVENTS, name_problem

DATASET_SEED = 20251125
TRAIN_SIZE = 500
TEST_SIZE = 100
OTHER_STYLE_SEED = 20261126
CATALOGUES = {"default": EVENT_NAMES_FILE, "other_style": OTHER_STYLE_NAMES_FILE}  # event-name files
RANDOM_NAMES = "random"  # a catalogue made up from the default one's words: see random_catalogue()
RANDOM_WIDE_NAMES = "random-wide"  # the same, with the wider punctuation of random_catalogue(wide=True)
NAME_CATALOGUES = (*CATALOGUES, RANDOM_NAMES, RANDOM_WIDE_NAMES)  # what GeneratorConfig.names may be


@dataclass(frozen=True)
class GeneratorConfig:
    """The knobs. Defaults follow the public dataset's description (README, Sources)."""

    min_events: int = 4
    max_events: int = 8
    durations: tuple[int, ...] = (15, 30, 45, 60, 75, 90, 105, 120)  # minutes
    day_start: str = "07:00"
    day_end: str = "23:00"
    time_step: int = 5  # start times are multiples of this many minutes
    overlap_probability: float = 0.2  # chance an event is placed to overlap an earlier one
    min_overlapping_pairs: int = 1
    max_overlap_ratio: float = 0.4  # at most this * n overlapping pairs
    min_priority_ratio: float = 0.2
    max_priority_ratio: float = 0.4
    theme: str | None = None  # None = a random theme per problem
    names: str = "default"  # which name catalogue: a key of CATALOGUES
    max_tries: int = 1000  # resampling budget per problem before giving up

    def __post_init__(self) -> None:
        """Each knob's type, checked when the config is made (one line naming the knob); the ranges,
        and how the knobs fit together and with the name catalogue, are :meth:`validate`'s."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if why := _knob_type_problem(f.name, value):
                raise TypeError(f"GeneratorConfig.{f.name} {why}, got {value!r:.60} ({type(value).__name__})")
        object.__setattr__(self, "durations", tuple(self.durations))  # a list works too; frozen: stored as a tuple

    def catalogue(self) -> dict[str, list[str]]:
        if self.names in (RANDOM_NAMES, RANDOM_WIDE_NAMES):
            return {k: list(v) for k, v in random_catalogue(wide=self.names == RANDOM_WIDE_NAMES).items()}
        if self.names not in CATALOGUES:
            raise ValueError(f"unknown name catalogue {self.names!r}; choose from {sorted(NAME_CATALOGUES)}")
        return load_themes(CATALOGUES[self.names])

    def validate(self, themes: dict[str, list[str]]) -> None:
        if not MIN_OPTIMAL_EVENTS <= self.min_events <= self.max_events:
            raise ValueError(
                f"need {MIN_OPTIMAL_EVENTS} <= min_events <= max_events, got {self.min_events}, {self.max_events}: "
                f"an answer needs at least {MIN_OPTIMAL_EVENTS} events to score, so a problem needs that many too"
            )
        smallest = min(len(v) for v in themes.values()) if self.theme is None else len(themes.get(self.theme, []))
        if self.theme is not None and self.theme not in themes:
            raise ValueError(f"unknown theme {self.theme!r}; choose from {sorted(themes)}")
        for theme in sorted(themes) if self.theme is None else [self.theme]:  # themes given directly too
            if why := theme_problem(themes[theme]):
                raise ValueError(f"theme {theme!r} {why}")
        if self.max_events > smallest:
            raise ValueError(f"max_events={self.max_events} but a theme has only {smallest} names")
        if not self.durations or min(self.durations) <= 0:
            raise ValueError(f"durations must be positive minutes, got {self.durations}")
        if self.time_step <= 0:
            raise ValueError(f"time_step must be a positive number of minutes, got {self.time_step}")
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {self.max_tries}")
        off_grid = [d for d in self.durations if d % self.time_step]
        off_grid += [t for t in (self.day_start, self.day_end) if time_to_minutes(t) % self.time_step]
        if off_grid:
            raise ValueError(
                f"durations, day_start and day_end must be multiples of time_step={self.time_step}, got {off_grid}"
            )
        window = time_to_minutes(self.day_end) - time_to_minutes(self.day_start)
        if max(self.durations) > window:
            raise ValueError(f"the day window ({window} min) is shorter than the longest duration")
        if not self.max_overlap_ratio >= 0:  # NaN too
            raise ValueError(f"max_overlap_ratio must be a number >= 0, got {self.max_overlap_ratio}")
        if not 0 <= self.overlap_probability <= 1:
            raise ValueError("overlap_probability must be in [0, 1]")
        if not 0 <= self.min_priority_ratio <= self.max_priority_ratio <= 1:
            raise ValueError("need 0 <= min_priority_ratio <= max_priority_ratio <= 1")
        # The smallest problems bind: n = min_events has the fewest pairs and the lowest cap.
        n = self.min_events
        if self.min_overlapping_pairs > min(self.max_overlap_ratio * n, n * (n - 1) // 2):
            raise ValueError(
                f"min_overlapping_pairs={self.min_overlapping_pairs} can never be met by a problem of "
                f"min_events={n} events (max_overlap_ratio * n = {self.max_overlap_ratio * n:g}, "
                f"{n * (n - 1) // 2} pairs in all)"
            )


_WHOLE_KNOBS = ("min_events", "max_events", "time_step", "min_overlapping_pairs", "max_tries")
_REAL_KNOBS = ("overlap_probability", "max_overlap_ratio", "min_priority_ratio", "max_priority_ratio")


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _knob_type_problem(name: str, value: object) -> str | None:
    """Why ``value`` has the wrong type for the :class:`GeneratorConfig` knob ``name``, or None."""
    if name in _WHOLE_KNOBS:
        return None if _is_whole(value) else "must be a whole number (an int)"
    if name in _REAL_KNOBS:
        return None if isinstance(value, numbers.Real) and not isinstance(value, bool) else "must be a number"
    if name == "durations":
        ok = isinstance(value, (list, tuple)) and all(_is_whole(d) for d in value)
        return None if ok else "must be a tuple of whole minutes, e.g. (15, 30, 60)"
    if name in ("day_start", "day_end"):
        return None if isinstance(value, str) else "must be a time written 'HH:MM'"
    if name == "theme":
        return None if value is None or isinstance(value, str) else "must be a theme's name or None"
    if name == "names":
        return None if isinstance(value, str) else f"must be the name of a catalogue, one of {list(NAME_CATALOGUES)}"
    return None


def theme_problem(names: object) -> str | None:
    """Why a theme's list of names cannot be used, or None (see :func:`name_problem`)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        return f"must be a list of names, got {type(names).__name__}"
    bad = [(n, why) for n in names if (why := name_problem(n))]
    if bad:
        return f"has a bad name {bad[0][0]!r}: {bad[0][1]}"
    if len(set(names)) != len(names):
        return "repeats a name"
    return None


@lru_cache(maxsize=4)
def _load_themes(path: str) -> dict[str, tuple[str, ...]]:
    try:
        with open(path, encoding="utf-8") as fh:
            catalogue = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON name catalogue ({exc})") from exc
    if not isinstance(catalogue, dict) or not isinstance(catalogue.get("themes"), dict):
        raise ValueError(f'{path}: expected {{"themes": {{theme: [names]}}}}')
    for theme, names in catalogue["themes"].items():
        if why := theme_problem(names):
            raise ValueError(f"{path}: theme {theme!r} {why}")
    return {k: tuple(v) for k, v in catalogue["themes"].items()}


def load_themes(path: Path | str = EVENT_NAMES_FILE) -> dict[str, list[str]]:
    """A themed event-name catalogue (default ``data/event_names.json``), names checked."""
    return {k: list(v) for k, v in _load_themes(str(path)).items()}


_DECORATIONS = ("#{n}", "v{n}", "({n})", "x{n}", "part {n}", "- {n}", "no. {n}", "@ {n}th", "{n} min")
# wide=True adds what names in the wild also hold: a comma or a colon inside the name, a quoted word, "w/", "&",
# a slash, a dotted version. The held-out other-style names have each kind (21 of 128 a comma, 14 a colon), and a
# model trained without them cuts "Help Ben move, 3rd floor" at the comma; the names themselves stay made up.
_WIDE_DECORATIONS = (
    ", {w}",
    ", part {n}",
    ", {n}{th} floor",
    ": {w}",
    "w/ {W}",
    "& {w}",
    "{w}/{w2}",
    "v{n}.{m}",
    "'{w}'",
    "{w}!",
)


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


@lru_cache(maxsize=4)
def random_catalogue(
    seed: int = 0, themes: int = 8, per_theme: int = 64, wide: bool = False
) -> dict[str, tuple[str, ...]]:
    """Made-up names for training diversity: words of the default catalogue recombined, in random
    case, some with digits or punctuation ("Budget sync #12", "review lunch (3)", "Client's demo");
    ``wide=True`` also commas, colons, quotes, slashes and ampersands inside names ("Budget sync, part 2",
    "Review: 'vendor' lunch", "Demo w/ Dana"). Same seed, same names. Never the held-out other-style names.

    >>> names = [n for ns in random_catalogue(wide=True).values() for n in ns]
    >>> any("," in n for n in names) and any(":" in n for n in names)
    True
    """
    rng = random.Random(seed)
    words = sorted({w.strip("-").lower() for names in load_themes().values() for n in names for w in n.split()} - {""})
    held_out = {n for names in load_themes(OTHER_STYLE_NAMES_FILE).values() for n in names}
    out: dict[str, tuple[str, ...]] = {}
    for t in range(themes):
        names: list[str] = []
        while len(names) < per_theme:
            parts = rng.sample(words, rng.randint(1, 3))
            if rng.random() < 0.2:
                parts[0] += "'s"
            if rng.random() < 0.4:
                parts.append(rng.choice(_DECORATIONS).format(n=rng.randint(1, 99)))
            if wide and rng.random() < 0.5:
                n, w, w2 = rng.randint(1, 99), rng.choice(words), rng.choice(words)
                decoration = rng.choice(_WIDE_DECORATIONS).format(
                    n=n, m=rng.randint(0, 9), th=_ordinal(n), w=w, w2=w2, W=w[:1].upper() + w[1:]
                )
                if decoration.startswith((",", ":")):
                    parts[-1] += decoration  # "sync, part 2", "Review: lunch": no space before the mark
                else:
                    parts.append(decoration)
            name = " ".join(parts)
            case = rng.random()
            if case < 0.3:  # Title Case, without str.title()'s "Client'S"
                name = " ".join(w[:1].upper() + w[1:] for w in name.split())
            elif case < 0.8:
                name = name[:1].upper() + name[1:]
            if name not in names and name not in held_out and name_problem(name) is None:
                names.append(name)
        out[f"made-up {t + 1}"] = tuple(names)
    return out


def _random_start(rng: random.Random, lo: int, hi: int, step: int) -> int:
    """A multiple of ``step`` in [lo, hi] (hi >= lo)."""
    first = -(-lo // step) * step
    last = hi // step * step
    return rng.randrange(first, last + 1, step) if last >= first else lo


def generate_problem(rng: random.Random, config: GeneratorConfig = GeneratorConfig(), themes=None) -> dict:
    """One problem row. Resamples until the overlap constraints hold and the optimal schedule has
    at least two events (an answer of fewer scores 0: see :mod:`utils.task.validate`)."""
    themes = themes or config.catalogue()
    config.validate(themes)
    day_start, day_end = time_to_minutes(config.day_start), time_to_minutes(config.day_end)
    # Size, theme and names first, so rejection below does not bias the event count.
    n = rng.randint(config.min_events, config.max_events)
    theme = config.theme or rng.choice(sorted(themes))
    names = rng.sample(themes[theme], n)
    for _ in range(config.max_tries):
        placed: list[Interval] = []
        for name in names:
            duration = rng.choice(config.durations)
            latest = day_end - duration
            if placed and rng.random() < config.overlap_probability:
                # Start somewhere that shares at least one step with an earlier event.
                other = rng.choice(placed)
                lo = max(day_start, other.start - duration + config.time_step)
                hi = min(latest, other.end - config.time_step)
                start = (
                    _random_start(rng, lo, hi, config.time_step)
                    if hi >= lo
                    else _random_start(rng, day_start, latest, config.time_step)
                )
            else:
                start = _random_start(rng, day_start, latest, config.time_step)
            placed.append(Interval(name, start, start + duration, duration))
        pairs = len(overlapping_pairs([iv.span for iv in placed]))
        if not config.min_overlapping_pairs <= pairs <= config.max_overlap_ratio * n:
            continue
        ratio = rng.uniform(config.min_priority_ratio, config.max_priority_ratio)
        k = min(n, max(1, round(ratio * n)))
        priority = sorted(rng.sample(names, k), key=names.index)
        placed.sort(key=lambda iv: (iv.start, iv.end, iv.name))
        events = [[iv.name, minutes_to_time(iv.start), minutes_to_time(iv.end)] for iv in placed]
        priority = [iv.name for iv in placed if iv.name in priority]  # chronological
        score, best = optimal_schedule(events, priority)
        if len(best) < MIN_OPTIMAL_EVENTS:  # no answer could be valid and optimal: draw again
            continue
        return {
            "events": events,
            "priority_events": priority,
            "optimal_score": score,
            "prompt": format_problem(events, priority),
        }
    raise RuntimeError(
        f"no problem met the overlap constraints (and an optimal schedule of at least {MIN_OPTIMAL_EVENTS} "
        f"events) in {config.max_tries} tries; loosen min_overlapping_pairs / max_overlap_ratio / "
        f"overlap_probability or widen the day ({asdict(config)})"
    )


def generate_dataset(n: int, seed: int, config: GeneratorConfig = GeneratorConfig()) -> list[dict]:
    """``n`` problems from one seed: same seed and config, same rows, on any machine."""
    rng = random.Random(seed)
    themes = config.catalogue()
    return [generate_problem(rng, config, themes) for _ in range(n)]


def problem_key(row: dict) -> str:
    return json.dumps([row["events"], row["priority_events"]])


def generate_splits(
    seed: int = DATASET_SEED,
    train_size: int = TRAIN_SIZE,
    test_size: int = TEST_SIZE,
    config: GeneratorConfig = GeneratorConfig(),
) -> tuple[list[dict], list[dict]]:
    """Train and test from one stream; any test problem also in train is replaced."""
    rng = random.Random(seed)
    themes = config.catalogue()
    train = [generate_problem(rng, config, themes) for _ in range(train_size)]
    seen = {problem_key(r) for r in train}
    test: list[dict] = []
    while len(test) < test_size:
        row = generate_problem(rng, config, themes)
        if problem_key(row) not in seen:
            seen.add(problem_key(row))
            test.append(row)
    return train, test


OTHER_STYLE = GeneratorConfig(
    names="other_style",
    day_start="00:00",
    day_end="24:00",
    time_step=1,
    durations=(15, 20, 25, 30, 40, 45, 50, 60, 75, 90, 105, 120),
)
"""The held-out style: other names (sentence case, digits, punctuation), starts at any minute, the whole day."""


def generate_other_style_test(seed: int = OTHER_STYLE_SEED, size: int = TEST_SIZE) -> list[dict]:
    return generate_dataset(size, seed, OTHER_STYLE)


MIXED_STYLE = GeneratorConfig(
    names=RANDOM_NAMES, day_start="00:00", day_end="24:00", time_step=1, durations=OTHER_STYLE.durations
)
"""Training diversity without the held-out names: made-up names, starts at any minute, the whole day."""
WIDE_STYLE = dataclasses.replace(MIXED_STYLE, names=RANDOM_WIDE_NAMES)
"""As :data:`MIXED_STYLE`, the made-up names with wider punctuation (commas, colons, quotes: random_catalogue)."""
#: Training styles (warm start, GRPO problems): the generator config of every other extra problem (None: all default).
_EXTRA_STYLE = {"default": None, "mixed": MIXED_STYLE, "wide": WIDE_STYLE}
TRAINING_STYLES = tuple(_EXTRA_STYLE)
EXTRA_TRAINING_SEED = 777


def training_problems(
    n: int,
    style: str = "default",
    seed: int = EXTRA_TRAINING_SEED,
    max_events: int | None = None,
    start: Sequence[dict] | None = None,
) -> list[dict]:
    """``n`` training problems: the committed train split first, then freshly generated ones.

    Problems are free: the generator makes thousands a second, so a warm start or a GRPO run can use
    more than the 500 committed ones. ``style="mixed"`` makes every other extra problem in
    :data:`MIXED_STYLE`, ``style="wide"`` in :data:`WIDE_STYLE`. ``max_events`` keeps problems small.
    Extra problems never repeat a test problem (either test set). ``start``: the problems to begin with
    instead of the committed split (the published dataset's, say), then generated ones as usual.

    >>> len(training_problems(600)), training_problems(600)[:500] == training_problems(500)
    (600, True)
    """
    if style not in TRAINING_STYLES:
        raise ValueError(f"style must be one of {TRAINING_STYLES}, got {style!r}")
    from .data import load_split

    rows = list(start if start is not None else load_split("train", max_events=max_events))[:n]
    if len(rows) == n:
        return rows
    held_out = {problem_key(r) for split in ("test", "test_other_style") for r in load_split(split)}
    rng = random.Random(seed)
    configs = [GeneratorConfig()] + ([_EXTRA_STYLE[style]] if _EXTRA_STYLE[style] else [])
    if max_events is not None:
        size = {"min_events": min(GeneratorConfig.min_events, max_events), "max_events": max_events}
        configs = [dataclasses.replace(c, **size) for c in configs]
    catalogues = [c.catalogue() for c in configs]
    while len(rows) < n:
        k = len(rows) % len(configs)
        row = generate_problem(rng, configs[k], catalogues[k])
        if problem_key(row) not in held_out:
            rows.append(row)
    return rows


def dumps_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _differs(path: Path, text: str) -> str | None:
    """Why ``path`` does not hold ``text`` (``--check``), or None when it does."""
    from .data import read_capped

    if not path.exists():
        return "missing"
    if path.is_dir():
        return "a folder"
    try:
        held = read_capped(path, "dataset file").decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "strerror", None) or exc)
    return None if held == text else "other rows"


def _refuse_targets(targets: dict[str, Path], own: dict[str, Path], force: bool) -> str | None:
    """Why the output files cannot be written, or None. Each flag may replace its own course file
    (``--train`` data/train.jsonl); any other existing file only with ``--force``; a folder never."""
    seen: dict[str, str] = {}
    for flag, path in targets.items():
        key = os.path.realpath(path)  # never raises, even on a link loop
        if key in seen:
            return f"{seen[key]} and {flag} name the same file {path}"
        seen[key] = flag
        if path.is_dir():
            return f"{flag} {path} is a folder: name a file"
        exists = path.exists() or path.is_symlink()  # a dangling link would be written through
        if exists and not force and key != os.path.realpath(own[flag]):
            return (
                f"{flag} {path} exists and is not the course's {own[flag].name}: pass --force to overwrite it "
                "(nothing was written)"
            )
    return None


def main(argv: list[str] | None = None) -> int:
    own = {"--train": TRAIN_FILE, "--test": TEST_FILE, "--test-other-style": TEST_OTHER_STYLE_FILE}
    parser = argparse.ArgumentParser(
        prog="python -m utils.task",
        description="Regenerate the course dataset from its seed (or compare with it: --check).",
        epilog="Each output may replace the course's own file (--train replaces data/train.jsonl) or create a new "
        "file; a file that exists already is overwritten only with --force, and a folder never.",
    )
    parser.add_argument("--seed", type=int, default=DATASET_SEED, help=f"train/test seed (default {DATASET_SEED})")
    for flag, path in own.items():
        parser.add_argument(flag, type=Path, default=path, help=f"output file (default data/{path.name})")
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing")
    parser.add_argument(
        "--force", action="store_true", help="overwrite output files that exist and are not the course's own"
    )
    args = parser.parse_args(argv)
    targets = {"--train": args.train, "--test": args.test, "--test-other-style": args.test_other_style}
    if not args.check and (why := _refuse_targets(targets, own, args.force)):
        print(f"error: {why}", file=sys.stderr)
        return 2
    train, test = generate_splits(args.seed)
    outputs = {
        args.train: dumps_jsonl(train),
        args.test: dumps_jsonl(test),
        args.test_other_style: dumps_jsonl(generate_other_style_test()),
    }
    if args.check:
        bad = [f"{p} ({why})" for p, text in outputs.items() if (why := _differs(p, text))]
        print("differs: " + ", ".join(bad) if bad else "dataset matches its seed")
        return 1 if bad else 0
    for path, text in outputs.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {path} ({text.count(chr(10))} rows)")
    return 0
