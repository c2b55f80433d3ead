"""Put a reward function through its paces before a training run depends on it.

``check_reward_function(fn)`` calls ``fn`` the way TRL does, on a batch that mixes good
answers with empty, truncated, garbage and non-text completions, in both the plain and
the conversational form, and reports anything that would hurt training: wrong
signature, wrong number of values, non-finite values, exceptions, or a call that does
not return in time (run in a separate process, so a hang cannot freeze the notebook).
"""

from __future__ import annotations

import inspect
import math
import multiprocessing as mp
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .prompts import format_answer
from .scheduling import optimal_schedule

SAMPLE_PROBLEM = {
    "events": [["Morning Run", "07:00", "08:00"], ["Team Standup", "07:30", "08:30"],
               ["Client Call", "08:30", "09:30"], ["Lunch", "12:00", "13:00"]],
    "priority_events": ["Client Call"],
}
SAMPLE_PROBLEM["optimal_score"] = optimal_schedule(SAMPLE_PROBLEM["events"], SAMPLE_PROBLEM["priority_events"])[0]
SAMPLE_PROBLEM["prompt"] = "(sample problem)"


def probe_completions() -> list[tuple[str, Any]]:
    """(label, completion) pairs every reward must survive."""
    best = optimal_schedule(SAMPLE_PROBLEM["events"], SAMPLE_PROBLEM["priority_events"])[1]
    good = format_answer("Morning Run and Team Standup clash; keep the run.", best)
    return [
        ("optimal answer", good),
        ("empty string", ""),
        ("None", None),
        ("truncated", good[: len(good) // 2]),
        ("garbage", "\x00\xff<<>>" * 50),
        ("repeated tags", "<schedule><event>" * 2000),
        ("bad times", good.replace("08:00", "25:99")),
        ("no reasoning", good.split("</think>", 1)[1]),
    ]


@dataclass
class CheckReport:
    name: str
    ok: bool = True
    messages: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, msg: str) -> None:
        self.ok = False
        self.messages.append(msg)

    def __str__(self) -> str:
        head = f"{self.name}: {'OK' if self.ok else 'PROBLEMS'} ({self.seconds * 1000:.1f} ms for the probe batch)"
        body = [f"  - {m}" for m in self.messages]
        vals = [f"    {k:<16} -> {v}" for k, v in self.values.items()]
        return "\n".join([head, *body, "  values:", *vals])


def _call(fn: Callable, completions: list, columns: dict) -> Any:
    return fn(prompts=[SAMPLE_PROBLEM["prompt"]] * len(completions), completions=completions,
              completion_ids=[[0]] * len(completions), **columns)


def _child(fn, completions, columns, queue) -> None:  # runs in a forked process
    try:
        queue.put(("ok", _call(fn, completions, columns)))
    except BaseException as exc:  # noqa: BLE001 - report everything to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))


def _run_with_timeout(fn: Callable, completions: list, columns: dict, timeout: float) -> tuple[str, Any]:
    try:
        ctx = mp.get_context("fork")
    except ValueError:  # no fork (Windows/macOS defaults): run inline, no hang protection
        try:
            return "ok", _call(fn, completions, columns)
        except Exception as exc:  # noqa: BLE001
            return "error", f"{type(exc).__name__}: {exc}"
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, completions, columns, queue), daemon=True)
    proc.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty: it hung
        return "timeout", None
    finally:
        proc.join(0.1)
        if proc.is_alive():
            proc.kill()
            proc.join(1)


def check_reward_function(fn: Callable, timeout: float = 10.0, value_range: tuple[float, float] | None = None) -> CheckReport:
    """Check ``fn`` against TRL's calling convention and nasty completions."""
    report = CheckReport(name=getattr(fn, "__name__", repr(fn)))
    if not callable(fn):
        report.fail(f"{fn!r} is not callable")
        return report
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if params:
        if "completions" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            report.fail("it must accept a `completions` argument")
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            report.fail("add **kwargs: TRL passes prompts, completion_ids and every dataset column by keyword")
        required = [n for n, p in params.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [n for n in required if n not in ("prompts", "completions", "completion_ids", *SAMPLE_PROBLEM)]
        if unknown:
            report.fail(f"required arguments TRL will not pass: {unknown} (give them defaults)")
    if not report.ok:
        return report

    probes = probe_completions()
    plain = [c for _, c in probes]
    chat = [[{"role": "assistant", "content": c}] for c in plain]
    n = len(plain)
    columns = {k: [v] * n for k, v in SAMPLE_PROBLEM.items() if k != "prompt"}
    lo, hi = value_range or getattr(fn, "reward_range", (-math.inf, math.inf))
    for form, batch in (("plain", plain), ("chat", chat)):
        t0 = time.perf_counter()
        status, result = _run_with_timeout(fn, batch, columns, timeout)
        report.seconds = max(report.seconds, time.perf_counter() - t0)
        if status == "timeout":
            report.fail(f"[{form}] did not return within {timeout:g} s: a hang would stall training "
                        "(a backtracking regex? an endless loop?)")
            continue
        if status == "error":
            report.fail(f"[{form}] raised {result}")
            continue
        if not isinstance(result, (list, tuple)):
            report.fail(f"[{form}] must return a list of floats, got {type(result).__name__}")
            continue
        if len(result) != n:
            report.fail(f"[{form}] returned {len(result)} values for {n} completions")
            continue
        for (label, _), v in zip(probes, result):
            if v is None:  # TRL allows None: 'not applicable to this sample'
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                report.fail(f"[{form}] {label!r}: value {v!r} is not a finite number")
            elif not lo <= float(v) <= hi:
                report.fail(f"[{form}] {label!r}: value {v} outside the declared range [{lo}, {hi}]")
            if form == "plain":
                report.values[label] = v
    if report.ok and len({v for v in report.values.values()}) == 1:
        report.messages.append("note: the same value for every probe, including the optimal answer: "
                               "a constant reward gives GRPO no signal")
    return report


def assert_reward_ok(fn: Callable, **kw) -> CheckReport:
    """Like :func:`check_reward_function`, but raise ``ValueError`` with the report on failure."""
    report = check_reward_function(fn, **kw)
    if not report.ok:
        raise ValueError(str(report))
    return report
