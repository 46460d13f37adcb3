"""`check`: run one question's cases against the reference on fresh random inputs, guarded, and report.

The same loop grades both modes: formative `check(id, fn)` calls the learner's function in this kernel;
summative `saattn grade` passes a remote function (course/channel.py) whose calls run in the learner's sandboxed
kernel and come back as plain data. Either way the inputs are drawn here, the expected value is computed here
only after the learner's call has returned, and the learner's value is plain data before it is compared.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .guard import call_with_timeout, changed_inputs, failure, fresh_copy, learner_traceback, not_implemented_seen
from .plain import PlainError, build_patterns, to_plain
from .report import CaseResult, CheckResult
from .spec import Case, Question, get_question

DEFAULT_TIMEOUT = 10.0  # seconds per check (all its cases together)
_MISSING = object()


def check(question_id: str, answer=_MISSING, *, seed: int | None = None, timeout: float | None = None,
          quiet: bool = False) -> CheckResult:
    """Check a learner's function (or value) for question 'exNN.name'; prints a report, returns the result.
    Formative feedback only: the grade of record is `saattn grade`, which computes every point itself."""
    result = run_question(get_question(question_id), answer, seed=seed, timeout=timeout)
    if not quiet:
        print(result.report())
        result._fresh = True  # a notebook displaying the returned result shows nothing more
    return result


def draw_seed() -> int:
    """A fresh seed per check (six digits: easy to copy back into check(..., seed=...))."""
    fixed = os.environ.get("SAATTN_SEED")
    return int(fixed) if fixed else int(np.random.SeedSequence().entropy % 1_000_000)


def default_timeout() -> float:
    return float(os.environ.get("SAATTN_CHECK_TIMEOUT", DEFAULT_TIMEOUT))


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
    given, before = fresh_copy(kwargs), fresh_copy(kwargs)
    out = call_with_timeout(answer, given, remaining, forbid=q.forbid() if q.forbid else ())
    inputs = describe_inputs(kwargs)
    why = failure(out, timeout)
    if why is not None and why.status == "error":
        return _case(k, case, "error", getattr(out.error, "lines", None) or learner_traceback(out.error), inputs)
    if why is not None:
        lines = [] if why.status == "not attempted" else [why.line]
        return _case(k, case, why.status, lines, inputs)
    changed = out.changed if getattr(out, "changed", None) is not None else changed_inputs(before, given)
    if changed:
        names = ", ".join(f"`{c}`" for c in changed)
        return _case(k, case, "failed", [f"your function changed its input {names} in place: work on a copy"],
                     inputs)
    if out.not_plain:
        return _case(k, case, "failed", [out.not_plain], inputs)
    if out.left_threads:
        return _case(k, case, "failed", [f"your function left {out.left_threads} thread(s) running after it returned: "
                                         "join every thread you start"], inputs)
    try:
        got = to_plain(out.value)
    except PlainError as exc:
        return _case(k, case, "failed", [f"returned {exc}"], inputs)
    expected = q.reference(**kwargs)  # only now: no frame the learner's code could read ever held it
    return _verdict(k, case, q.compare, expected, build_patterns(got), inputs)


def _run_value(q: Question, answer) -> CaseResult:
    case = Case("your answer", lambda rng: {}, q.points)
    if answer is _MISSING or answer is Ellipsis or answer is None:
        return _case(1, case, "not attempted")
    if not callable(answer):  # a function answer (timed, measured) is run by the comparison itself, guarded
        try:
            answer = build_patterns(to_plain(answer))
        except PlainError as exc:
            return _case(1, case, "failed", [f"your answer is {exc}"])
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
