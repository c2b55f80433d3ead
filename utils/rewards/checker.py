"""Put a reward function through its paces before a training run depends on it.

``check_reward_function(fn)`` calls ``fn`` the way TRL does, on a batch that mixes good
answers with empty, truncated, garbage and non-text completions, in both the plain and
the conversational form, and reports anything that would hurt training: wrong
signature, wrong number of values, non-finite values, exceptions, changes to its inputs (TRL
passes the same lists to every reward), a call that does not return in time (run in a separate
process, so a hang cannot freeze the notebook), or a call that ends the process (``os._exit``, a
crash in a C extension).

The separate process is a *fork* of this one: it sees every function defined in a notebook
cell (a spawned process would have to import them, and a notebook's functions cannot be
imported). A fork copies the memory but not the threads, so the child first sets torch to one
thread: torch's thread pool, used in the parent before, would make the child wait forever. The
child leads a process group of its own, and the whole group is killed when the call ends: a reward
that starts processes of its own leaves none running, and an interrupt sent to the notebook's group
does not reach it.

:func:`assert_reward_set_ok` is the check everything that trains runs before its first step.
"""

from __future__ import annotations

import copy
import inspect
import math
import multiprocessing as mp
import numbers
import os
import pickle
import signal
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..task.prompts import format_answer
from ..task.scheduling import optimal_schedule
from .gallery import back_to_back_completion
from .total import check_reward_set

#: Seconds a reward may take on the whole probe batch. Our rewards need milliseconds; the
#: reference's format regex needs minutes on the long truncated probe.
DEFAULT_TIMEOUT_S = 3.0
#: Events in the long truncated probe: the reference regex needs about 4x longer per event
#: (about 0.4 s at 10, minutes at 14), so a backtracking reward cannot pass the timeout.
LONG_PROBE_EVENTS = 14

SAMPLE_PROBLEM = {
    "events": [
        ["Morning Run", "07:00", "08:00"],
        ["Team Standup", "07:30", "08:30"],
        ["Client Call", "08:30", "09:30"],
        ["Lunch", "12:00", "13:00"],
    ],
    "priority_events": ["Client Call"],
}
SAMPLE_PROBLEM["optimal_score"] = optimal_schedule(SAMPLE_PROBLEM["events"], SAMPLE_PROBLEM["priority_events"])[0]
SAMPLE_PROBLEM["prompt"] = "(sample problem)"


def probe_completions() -> list[tuple[str, Any]]:
    """(label, completion) pairs every reward must survive: things a training run can produce."""
    best = optimal_schedule(SAMPLE_PROBLEM["events"], SAMPLE_PROBLEM["priority_events"])[1]
    good = format_answer("Morning Run and Team Standup clash; keep the run.", best)
    return [
        ("optimal answer", good),
        ("empty string", ""),
        ("truncated", good[: len(good) // 2]),
        ("long truncated", back_to_back_completion(LONG_PROBE_EVENTS)),
        ("garbage", "\x00\xff<<>>" * 50),
        ("repeated tags", "<schedule><event>" * 2000),
        ("bad times", good.replace("08:00", "25:99").replace("09:30", "7:5")),
        ("duplicated events", format_answer("twice", best + best)),
        ("no reasoning", good.split("</think>", 1)[1]),
    ]


def extra_probes() -> list[tuple[str, Any]]:
    """Inputs TRL never sends; surviving them is good practice, failing them only earns a note."""
    return [("None", None), ("bytes", bytes(range(256)) * 4), ("a number", 42)]


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
    return fn(
        prompts=[SAMPLE_PROBLEM["prompt"]] * len(completions),
        completions=completions,
        completion_ids=[[0]] * len(completions),
        **columns,
    )


def _in_child() -> None:
    """First thing in a forked child. A process group of its own, so that the parent can end it
    with everything it starts (:func:`_end_group`). torch's CPU thread pool does not survive a fork:
    the child inherits a pool whose threads are gone, and its first parallel torch operation
    waits for them forever. One thread in the child avoids that; the parent is untouched."""
    try:
        os.setpgid(0, 0)
    except OSError:  # the parent's setpgid got there first, or the platform has none
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(1)
        except Exception:  # noqa: BLE001 - a torch without threads: nothing to fix
            pass


def _own_group(pid: int) -> None:
    """Make the forked child ``pid`` lead its own process group (it does so too: whichever runs first)."""
    try:
        os.setpgid(pid, pid)
    except OSError:  # it did it already, exec'd or ended: its own setpgid stands
        pass


def _end_group(pid: int) -> None:
    """SIGKILL the process group the child ``pid`` leads: the child and every process it started.
    Called before the child is reaped, so its pid (the group's id) cannot belong to anyone else."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # the group is gone already
        pass


def _exception_line(exc: BaseException, hint: bool = True) -> str:
    """One line for an exception a reward raised (with ``hint``, KeyboardInterrupt and SystemExit say what they do)."""
    line = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if hint and not isinstance(exc, Exception):
        line += " (not an Exception: nothing in training catches it, so it would stop the run)"
    return line


def _child(fn, completions, columns, conn) -> None:  # runs in a forked process
    _in_child()
    try:
        result = _call(fn, completions, columns)
    except BaseException as exc:  # noqa: BLE001 - report everything to the parent
        conn.send(("error", f"{_exception_line(exc)}\n{traceback.format_exc(limit=3)}"))
        return
    try:
        pickle.dumps(result)
    except Exception as exc:  # noqa: BLE001 - otherwise the parent would only see a timeout
        conn.send(("error", f"it returned a {type(result).__name__} that cannot be sent back ({exc})"))
        return
    conn.send(("ok", result))


def _child_per_probe(fn, probes, columns, conn) -> None:  # forked: which probe breaks it?
    _in_child()
    found = []
    for label, c in probes:
        try:
            _call(fn, [c], {k: v[:1] for k, v in columns.items()})
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt too: the parent reports it, in one line
            found.append(f"{label!r}: {_exception_line(exc, hint=False)}")
    conn.send(("ok", found))


def _forked(target, args: tuple, timeout: float) -> tuple[str, Any]:
    """Run ``target(*args, conn)`` in a forked child: ``(status, result)`` with status "ok" or
    "error" (what the child sent), "timeout" (still running after ``timeout`` s: killed) or
    "died" (it ended without sending anything; the result is its exit code)."""
    ctx = mp.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, writer), daemon=True)
    proc.start()
    _own_group(proc.pid)
    writer.close()  # the child holds the only writer now: its end is our EOF
    ended = False
    try:
        if not reader.poll(timeout):
            return "timeout", None
        try:
            return reader.recv()
        except EOFError:  # the child ended without a word: os._exit, a crash, a kill
            _end_group(proc.pid)  # what it started goes too; a child already ending keeps its exit code
            proc.join(5)
            ended = True
            return "died", proc.exitcode
    finally:
        reader.close()
        if not ended:
            _end_group(proc.pid)  # the check is over: the child and anything it started (a hang too)
            proc.join(1)
            if proc.is_alive():  # no group of its own after all (setpgid refused): the child at least
                proc.kill()
                proc.join(1)


def died_message(exitcode: int | None, probe: str | None = None) -> str:
    """Why a checked reward's process ended without returning, in words."""
    where = f" on the {probe!r} probe" if probe else ""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return (
            f"the process died ({name}){where} instead of returning: a crash in a C extension, "
            "or killed (out of memory?). In training that ends the run"
        )
    return (
        f"the process died (exit code {exitcode}){where} instead of returning: does the reward call "
        "os._exit()? In training that ends the run"
    )


def _run_with_timeout(fn: Callable, completions: list, columns: dict, timeout: float) -> tuple[str, Any]:
    if "fork" not in mp.get_all_start_methods():  # Windows: run inline, no hang protection
        try:
            return "ok", _call(fn, completions, columns)
        except Exception as exc:  # noqa: BLE001
            return "error", f"{type(exc).__name__}: {exc}"
    return _forked(_child, (fn, completions, columns), timeout)


def _culprits(fn: Callable, probes: list, columns: dict, timeout: float) -> list[str]:
    """Run each probe alone to name the ones that make ``fn`` raise."""
    if "fork" not in mp.get_all_start_methods():
        return []
    status, found = _forked(_child_per_probe, (fn, probes, columns), timeout)
    return found if status == "ok" else []


def _deadly_probe(fn: Callable, probes: list, timeout: float) -> str | None:
    """The first probe that ends the process on its own (a fork per probe: only after a death)."""
    for label, c in probes:
        if _forked(_child, (fn, [c], _columns(1)), timeout)[0] == "died":
            return label
    return None


def _columns(n: int) -> dict:  # a fresh copy each call: a reward that changes its inputs changes only these
    return {k: [v] * n for k, v in copy.deepcopy(SAMPLE_PROBLEM).items() if k != "prompt"}


def _is_number(v: Any) -> bool:
    """A finite real number (not a bool); ``10**400`` is not: it has no float."""
    try:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
    except (OverflowError, TypeError, ValueError):
        return False


def _short(v: Any, limit: int = 60) -> str:
    """``repr(v)``, cut to one short line (a value may be 10**400)."""
    try:
        text = repr(v)
    except Exception:  # noqa: BLE001 - a value whose repr fails: its type is enough
        text = f"<{type(v).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _range_problem(value_range: Any) -> str | None:
    """Why ``value_range`` is not ``(low, high)`` with numbers ``low <= high``, or None."""
    try:
        lo, hi = value_range
    except (TypeError, ValueError):
        return f"must be a pair (low, high), got {value_range!r}"
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v) for v in (lo, hi)):
        return f"must hold two numbers, got {value_range!r}"
    if lo > hi:
        return f"has low > high: {value_range!r}"
    return None


@dataclass(frozen=True)
class _Unsendable:
    """What a watched call returns in place of values that cannot be pickled back to the parent."""

    type_name: str
    error: str


def _watching(fn: Callable) -> Callable:
    """``fn`` called TRL's way, answering ``(values, names of the arguments it changed)``.

    TRL hands the *same* lists (completions, every dataset column) to each reward in turn, so a
    reward that sorts, appends to or edits them changes what the rewards after it see."""

    def call(**kwargs):
        before = copy.deepcopy(kwargs)
        values = fn(**kwargs)
        changed = [k for k in kwargs if not _same(kwargs[k], before[k])]
        try:
            pickle.dumps(values)
        except Exception as exc:  # noqa: BLE001 - reported as the values' own problem, not the pair's
            values = _Unsendable(type(values).__name__, str(exc))
        return values, changed

    return call


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object that cannot compare: assume unchanged
        return True


def _signature_problems(fn: Callable) -> list[str]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    out = []
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if "completions" not in params and not var_kw:
        out.append("it must accept a `completions` argument")
    if not var_kw:
        out.append("add **kwargs: TRL passes prompts, completion_ids and every dataset column by keyword")
    required = [
        n for n, p in params.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    unknown = [n for n in required if n not in ("prompts", "completions", "completion_ids", *SAMPLE_PROBLEM)]
    if unknown:
        out.append(f"required arguments TRL will not pass: {unknown} (give them defaults)")
    if any(p.kind == p.POSITIONAL_ONLY for p in params.values()):
        out.append("TRL passes everything by keyword: no positional-only parameters")
    return out


def check_reward_function(
    fn: Callable, timeout: float = DEFAULT_TIMEOUT_S, value_range: tuple[float, float] | None = None
) -> CheckReport:
    """Check ``fn`` against TRL's calling convention and nasty completions.

    The probe batch (see :func:`probe_completions`) goes through ``fn`` twice, as plain
    strings and as chat messages, each time in a forked process stopped after ``timeout``
    seconds. Values must be finite numbers (``None`` is allowed: TRL reads it as "not
    applicable"), one per completion, inside ``value_range`` (default: ``fn.reward_range``
    when it has one). :func:`extra_probes` (``None``, bytes, a number) only add notes.
    """
    report = CheckReport(name=getattr(fn, "__name__", repr(fn)))
    if not callable(fn):
        report.fail(f"{fn!r} is not callable")
        return report
    for problem in _signature_problems(fn):
        report.fail(problem)
    declared = value_range if value_range is not None else getattr(fn, "reward_range", None)
    if declared is not None and (why := _range_problem(declared)):
        source = "value_range" if value_range is not None else "its reward_range"
        report.fail(f"{source} {why}: declare the lowest and highest value it can return, e.g. (0, 10)")
    if not report.ok:
        return report

    probes = probe_completions()
    plain = [c for _, c in probes]
    chat = [[{"role": "assistant", "content": c}] for c in plain]
    n = len(plain)
    lo, hi = declared if declared is not None else (-math.inf, math.inf)
    all_none = False  # None for every plain probe: TRL reads None as "not applicable", so no signal at all
    for form, batch in (("plain", plain), ("chat", chat)):
        t0 = time.perf_counter()
        status, result = _run_with_timeout(_watching(fn), batch, _columns(n), timeout)
        report.seconds = max(report.seconds, time.perf_counter() - t0)
        if status == "ok":
            result, changed = result
            if changed and not any("changes its inputs" in m for m in report.messages):  # say it once
                report.fail(
                    f"[{form}] it changes its inputs ({', '.join(changed)}): TRL passes the same lists to every "
                    "reward, so the rewards after this one would see the changed values; work on a copy "
                    "(e.g. `events = [list(e) for e in events]`, `sorted(...)` instead of `.sort()`)"
                )
            if isinstance(result, _Unsendable):
                report.fail(f"[{form}] it returned a {result.type_name} that cannot be sent back ({result.error})")
                continue
        if status == "timeout":
            report.fail(
                f"[{form}] did not return within {timeout:g} s: a hang would stall training "
                "(a backtracking regex on the 'long truncated' probe? an endless loop?)"
            )
            break  # the other form would hang the same way: don't wait twice
        if status == "died":
            label = _deadly_probe(fn, list(zip([label for label, _ in probes], batch)), timeout)
            report.fail(f"[{form}] {died_message(result, label)}")
            break
        if status == "error":
            culprits = _culprits(fn, list(zip([label for label, _ in probes], batch)), _columns(n), timeout)
            more = f" (and {len(culprits) - 3} more probes)" if len(culprits) > 3 else ""
            where = ("; it fails on: " + "; ".join(culprits[:3]) + more) if culprits else ""
            report.fail(f"[{form}] raised {result.splitlines()[0]}{where}")
            continue
        if not isinstance(result, (list, tuple)):
            report.fail(f"[{form}] must return a list of floats, got {type(result).__name__}")
            continue
        if len(result) != n:
            report.fail(f"[{form}] returned {len(result)} values for {n} completions")
            continue
        if form == "plain":
            all_none = all(v is None for v in result)
        for (label, _), v in zip(probes, result):
            if v is None:  # TRL allows None: 'not applicable to this sample'
                continue
            if not _is_number(v):
                report.fail(f"[{form}] {label!r}: value {_short(v)} is not a finite number a float can hold")
            elif not lo <= float(v) <= hi:
                report.fail(f"[{form}] {label!r}: value {v} outside the declared range [{lo}, {hi}]")
            if form == "plain":
                report.values[label] = v if _is_number(v) else _short(v)
    if report.ok:
        extras = extra_probes()
        status, result = _run_with_timeout(fn, [c for _, c in extras], _columns(len(extras)), timeout)
        if (
            status != "ok"
            or not isinstance(result, (list, tuple))
            or not all(v is None or _is_number(v) for v in result)
        ):
            report.messages.append(
                "note: it breaks on input TRL never sends (None, bytes, a number); "
                "fine for training, but a robust reward returns 0 for them"
            )
    if report.ok and all_none:
        report.messages.append(
            "note: None for every probe, including the optimal answer: TRL reads None as 'not applicable', "
            "so this reward gives GRPO no signal"
        )
    elif report.ok and len(set(report.values.values())) == 1:
        report.messages.append(
            "note: the same value for every probe, including the optimal answer: a constant reward gives GRPO no signal"
        )
    return report


def assert_reward_ok(fn: Callable, **kw) -> CheckReport:
    """Like :func:`check_reward_function`, but raise ``ValueError`` with the report on failure."""
    report = check_reward_function(fn, **kw)
    if not report.ok:
        raise ValueError(str(report))
    return report


#: The check before training is given more time than the interactive one: a loaded machine must
#: not turn a healthy reward into a refused run. A backtracking regex still needs minutes.
TRAINING_CHECK_TIMEOUT_S = 15.0
_PASSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function -> code it passed with


def assert_reward_set_ok(
    funcs: Sequence[Callable], weights: Sequence[float] | None = None, timeout: float = TRAINING_CHECK_TIMEOUT_S
) -> None:
    """What training checks before its first step: one finite weight per reward, and every reward
    passes :func:`check_reward_function`. Raises ``ValueError`` naming each failing reward and why.

    A function that passed before (same code) is not checked again: the resume after a
    disconnect does not pay for it twice."""
    funcs = list(funcs)
    check_reward_set(funcs, weights)
    problems = []
    for fn in funcs:
        code = getattr(fn, "__code__", None)
        try:
            if code is not None and _PASSED.get(fn) is code:
                continue
        except TypeError:  # not weak-referenceable: check it every time
            pass
        report = check_reward_function(fn, timeout=timeout)
        if not report.ok:
            problems.append(f"{report.name}: " + "; ".join(m for m in report.messages if not m.startswith("note:")))
            continue
        try:
            if code is not None:
                _PASSED[fn] = code
        except TypeError:
            pass
    if problems:
        raise ValueError(
            "not training: a reward would crash or stall the run. Fix it (notebook 03), or leave it out:\n  "
            + "\n  ".join(problems)
        )
