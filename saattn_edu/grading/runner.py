"""`check`: run one question's cases against the reference on fresh random inputs, guarded, and report."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from .guard import (LibraryCall, call_with_timeout, changed_inputs, fresh_copy, learner_traceback,
                    not_implemented_seen, tripwire)
from .report import CaseResult, CheckResult
from .spec import Case, Question, get_question

DEFAULT_TIMEOUT = 10.0  # seconds per check (all its cases together)
LOG_ENV = "SAATTN_GRADE_LOG"  # `saattn grade` sets it: every check appends its result to this JSON-lines file
_MISSING = object()


def check(question_id: str, answer=_MISSING, *, seed: int | None = None, timeout: float | None = None,
          quiet: bool = False) -> CheckResult:
    """Check a learner's function (or value) for question 'exNN.name'; prints a report, returns the result."""
    result = run_question(get_question(question_id), answer, seed=seed, timeout=timeout)
    if not quiet:
        print(result.report())
        result._fresh = True  # a notebook displaying the returned result shows nothing more
    log_result(result, source="check")
    return result


def draw_seed() -> int:
    """A fresh seed per check (six digits: easy to copy back into check(..., seed=...))."""
    fixed = os.environ.get("SAATTN_SEED")
    return int(fixed) if fixed else int(np.random.SeedSequence().entropy % 1_000_000)


def default_timeout() -> float:
    return float(os.environ.get("SAATTN_CHECK_TIMEOUT", DEFAULT_TIMEOUT))


def log_result(result: CheckResult, source: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one line per check, flushed now: survives a later crash
            f.write(json.dumps({**result.to_dict(), "source": source}) + "\n")


def run_question(q: Question, answer=_MISSING, *, seed: int | None = None,
                 timeout: float | None = None) -> CheckResult:
    """Grade `answer` on every case of `q`; never raises for anything the answer does."""
    seed = draw_seed() if seed is None else int(seed)
    timeout = default_timeout() if timeout is None else float(timeout)
    title = f"Exercise {q.number}"
    if q.kind == "value":
        return CheckResult(q.id, seed, [_run_value(q, answer)], title=title, hint=q.hint)
    if answer is _MISSING or not callable(answer):
        got = "nothing" if answer is _MISSING else f"a {type(answer).__name__}"
        cases = [_case(k, c, "failed", [f"expected a function, got {got}"]) for k, c in enumerate(q.cases, 1)]
        return CheckResult(q.id, seed, cases, title=title, hint=q.hint)
    deadline = time.monotonic() + timeout
    cases = []
    for k, case in enumerate(q.cases, 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            cases.append(_case(k, case, "skipped", [f"not run: this check's {timeout:g} s were spent"]))
        else:
            cases.append(_run_case(q, case, k, answer, seed, remaining, timeout))
    return CheckResult(q.id, seed, cases, title=title, hint=q.hint)


def _case(k: int, case: Case, status: str, lines=(), inputs: str = "", points: float = 0.0) -> CaseResult:
    hint = case.hint if status not in ("passed", "not attempted", "skipped") else ""
    return CaseResult(k, case.label, status, points, case.points, inputs, list(lines), hint)


def _run_case(q: Question, case: Case, k: int, answer, seed: int, remaining: float, timeout: float) -> CaseResult:
    kwargs = case.make(np.random.default_rng([seed, k]))  # case k of this seed: reproducible alone
    expected = q.reference(**fresh_copy(kwargs))  # the reference gets its own copy; computed before any tripwire
    given, before = fresh_copy(kwargs), fresh_copy(kwargs)
    with tripwire(q.forbid() if q.forbid else [], namespaces=[getattr(answer, "__globals__", None)]) as calls:
        out = call_with_timeout(answer, given, remaining)
    inputs = describe_inputs(kwargs)
    if calls or isinstance(out.error, LibraryCall):
        used = calls[0] if calls else str(out.error)
        return _case(k, case, "refused", [f"your function called the library's own solution ({used}): "
                                          "write it yourself with NumPy"], inputs)
    if out.timed_out:
        tail = "; it is stuck in C code and still running in the background" if out.still_running else ""
        return _case(k, case, "timeout", [f"ran longer than this check's {timeout:g} s and was stopped{tail}"],
                     inputs)
    if isinstance(out.error, NotImplementedError):
        return _case(k, case, "not attempted")
    if out.error is not None:
        return _case(k, case, "error", learner_traceback(out.error), inputs)
    changed = changed_inputs(before, given)
    if changed:
        names = ", ".join(f"`{c}`" for c in changed)
        return _case(k, case, "failed", [f"your function changed its input {names} in place: work on a copy"],
                     inputs)
    return _verdict(k, case, q.compare, expected, out.value, inputs)


def _run_value(q: Question, answer) -> CaseResult:
    case = Case("your answer", lambda rng: {}, q.points)
    if answer is _MISSING or answer is Ellipsis or answer is None:
        return _case(1, case, "not attempted")
    return _verdict(1, case, q.compare, q.reference(), answer, "")


def _verdict(k: int, case: Case, compare, expected, got, inputs: str) -> CaseResult:
    """Apply the comparison; one that runs the learner's code may raise NotImplementedError or anything else."""
    stubs_before = not_implemented_seen[0]
    try:
        verdict = compare(expected, got)
    except NotImplementedError:
        return _case(k, case, "not attempted")
    except Exception as exc:  # noqa: BLE001 - the answer broke the comparison (a function where a value belongs)
        return _case(k, case, "error", learner_traceback(exc), inputs)
    if verdict.ok:
        return _case(k, case, "passed", points=case.points)
    if verdict.status == "not attempted" or not_implemented_seen[0] > stubs_before:
        return _case(k, case, "not attempted")
    return _case(k, case, verdict.status or "failed", verdict.lines, inputs)


def describe_inputs(kwargs: dict) -> str:
    """`n=37, window=5, mask=<bool array (12, 12)>`: what the case fed the function."""
    parts = []
    for name, v in kwargs.items():
        if isinstance(v, np.ndarray):
            parts.append(f"{name}=<{v.dtype} array {v.shape}>" if v.size > 12 else f"{name}={v.tolist()!r}")
        else:
            parts.append(f"{name}={v!r}")
    return ", ".join(parts)
