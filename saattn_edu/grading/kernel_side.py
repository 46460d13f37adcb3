"""The one cell `saattn grade` runs in a learner's sandboxed kernel, once per call: `serve(globals(), folder)`.

It reads the grader's request and arguments (plain data) from `folder`, calls the learner's function in a guarded
worker thread (time limit, tripwire), and writes the plain result and a status back. It computes no points and
sees no expected value: the grader compares, in its own process. Everything here runs in the learner's process
and could be tampered with by the learner's code; that only changes the learner's own answers, which the grader
checks against its own reference anyway.
"""
from __future__ import annotations

import json
import time
import tracemalloc

from .guard import call_with_timeout, changed_inputs, failure, fresh_copy, learner_traceback
from .plain import PlainError, build_patterns, read, to_plain, write
from .spec import get_question, questions


def serve(namespace: dict, folder: str) -> None:
    """Answer the request in `folder` (request.json, args.json + .npy); write result.* and status.json."""
    status = {}
    try:
        request = json.loads(open(f"{folder}/request.json", encoding="utf-8").read())
        status = _answer(namespace, request, folder)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is reported to the grader, never raised here
        status = {"status": "error", "lines": [f"the grader's call could not run: {type(exc).__name__}: {exc}"]}
    with open(f"{folder}/status.json", "w", encoding="utf-8") as f:
        json.dump(status, f)


def _answer(namespace: dict, request: dict, folder: str) -> dict:
    name, op = request["name"], request["op"]
    if name not in namespace:
        return {"status": "missing"}
    value = namespace[name]
    if op == "get":
        if callable(value):
            return {"status": "callable"}
        return _write_plain(value, folder)
    if not callable(value):
        return {"status": "not callable", "type": type(value).__name__}
    forbid = _forbidden_for(get_question(request["question"]))
    args = build_patterns(read(folder, "args"))
    seconds = float(request["timeout"])
    if op == "call":
        given, before = fresh_copy(args), fresh_copy(args)
        out = call_with_timeout(value, given, seconds, forbid=forbid)
        status = _ladder(out, seconds)
        if status is None:
            status = _write_plain(out.value, folder)
            status["changed"] = changed_inputs(before, given)
        return status
    job = _times if op == "times" else _peak
    out = call_with_timeout(job, {"fn": value, "args": args, "repeats": int(request.get("repeats", 1))}, seconds,
                            forbid=forbid)
    return _ladder(out, seconds) or _write_plain(out.value, folder)


def _forbidden_for(q) -> list:
    """The question's library targets; a value question answered by a function (a timing or memory check)
    inherits those of the function question with the same answer name."""
    if q.forbid:
        return q.forbid()
    same = [o for o in questions(q.exercise).values() if o.forbid and o.lookup_name == q.lookup_name]
    return same[0].forbid() if same else []


def _ladder(out, seconds) -> dict | None:
    why = failure(out, seconds)
    if why is None:
        return None
    lines = learner_traceback(out.error) if why.status == "error" else [why.line]
    return {"status": why.status, "lines": lines, "library_calls": list(out.library_calls),
            "still_running": out.still_running}


def _write_plain(value, folder: str) -> dict:
    try:
        write(to_plain(value), folder, "result")
    except PlainError as exc:
        return {"status": "not plain", "lines": [f"returned {exc}"]}
    return {"status": "ok"}


def _times(fn, args, repeats) -> list:
    """Fastest of `repeats` calls for every argument set (after one warm-up call each)."""
    out = []
    for kwargs in args:
        fn(**kwargs)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(**kwargs)
            best = min(best, time.perf_counter() - t0)
        out.append(best)
    return out


def _peak(fn, args, repeats) -> int:
    tracemalloc.start()
    try:
        fn(**args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
