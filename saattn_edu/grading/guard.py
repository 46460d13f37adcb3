"""What the runner guards a learner's function with: a watchdog, a tripwire on library solutions, input copies.

The learner's function runs in a worker thread; the caller's thread is the watchdog. At the deadline the watchdog
stops the worker (an exception at its next bytecode, then at every line, so a bare `except:` cannot keep it alive)
and returns "timed out" whatever the learner's code did to signals or alarms (a worker thread cannot even set a
signal handler). What Python cannot stop: a call stuck inside C code, or code that switches off the interpreter's
tracing (`sys.settrace(None)`) and then swallows every exception; the check still returns at its deadline and
reports the function as still running in the background (restart the kernel).

The tripwire is the same trace function: every Python function the worker (or a thread it starts) enters is looked
up by its code's file and qualified name, so the library's solutions are caught however they are reached (an alias,
a class held in a default argument, a module reloaded with importlib). Nothing in the library is modified.
"""
from __future__ import annotations

import copy
import ctypes
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_GRADING_DIR = str(Path(__file__).resolve().parent)
_EXERCISES_DIR = str(Path(__file__).resolve().parent / "exercises")
_MAX_FRAMES = 6
_POLL = 0.02  # seconds between the watchdog's looks at the worker


class CheckTimeout(BaseException):
    """Raised inside the learner's function when its time is up (BaseException: `except Exception` can't eat it)."""


class LibraryCall(BaseException):
    """Raised inside the learner's function when it has called the library's own solution."""


@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None
    timed_out: bool = False
    mechanism: str = "watchdog"
    still_running: bool = False  # the worker could not be stopped (stuck in C code, or tracing switched off)
    library_calls: list = field(default_factory=list)  # labels of the library solutions the function called
    tampered: bool = False  # the function switched off the grader's trace function
    changed: list | None = None  # inputs changed in place, when checked where the function ran (summative)
    not_plain: str = ""  # why the returned value is not plain data, when checked where the function ran
    left_threads: int = 0  # threads the function started that still run after it returned


class RemoteFailure(Exception):
    """Raised by a remote function's measurement when the learner's kernel reports a failure (an Outcome)."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.error or "remote call failed")
        self.outcome = outcome


@dataclass
class Failure:
    """One rung of the failure ladder shared by the runner and the comparators that run the learner's code."""

    status: str  # refused | timeout | not attempted | error
    line: str


#: How many learner calls ended in NotImplementedError: a comparison that runs the learner's code and fails
#: right after one is reported "not attempted" by the runner, whatever words the comparison chose.
not_implemented_seen = [0]


def failure(out: Outcome, seconds: float, name: str = "your function") -> Failure | None:
    """The ladder, in order: called the library's own solution / not attempted yet / did not finish in time /
    raised. None when the call returned a value."""
    if out.library_calls or out.tampered or isinstance(out.error, LibraryCall):
        used = out.library_calls[0] if out.library_calls else "the grader's guard was switched off"
        return Failure("refused", f"{name} called the library's own solution ({used}): write it yourself with NumPy")
    if isinstance(out.error, NotImplementedError):
        return Failure("not attempted", f"not attempted yet: {name} still raises NotImplementedError")
    if out.timed_out:
        tail = "; it is stuck and still running in the background (restart the kernel)" if out.still_running else ""
        return Failure("timeout", f"{name} did not finish in time: ran longer than {seconds:g} s and was stopped{tail}")
    if out.error is not None:
        return Failure("error", f"{name} raised {type(out.error).__name__}: {out.error}")
    return None


# ----------------------------------------------------------------------------------------------------------------
# The tripwire: which code is the library's own solution
# ----------------------------------------------------------------------------------------------------------------
def _code_of(raw):
    fn = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
    fn = getattr(fn, "fget", fn)  # a property: its getter
    return getattr(fn, "__code__", None)


def _qualname(code) -> str:
    """The code's qualified name (Python 3.11+); Python 3.10 has only the plain name."""
    return getattr(code, "co_qualname", code.co_name)


def _nested_codes(code) -> set:
    """A code object and every function or lambda defined inside it."""
    out = {code}
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _nested_codes(c)
    return out


class Forbidden:
    """Code the learner's function may not enter: the targets' (file, qualified name), and every function of the
    grader's exercise modules (references, case generators) except the helpers a notebook is meant to call."""

    def __init__(self, targets=(), allow=()):
        self.labels: dict[tuple, str] = {}
        # the grader's own measuring helpers that call the learner's function, and code nested in them: by identity,
        # which needs no qualified name (Python 3.10 has none)
        self._allowed = set().union(*(_nested_codes(fn.__code__) for fn in allow))
        for owner, attr in targets:
            raw = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
            code = _code_of(raw)
            if code is not None:
                self.labels[(code.co_filename, _qualname(code))] = f"{getattr(owner, '__name__', owner)}.{attr}"
        self._seen: dict = {}

    def label(self, code) -> str | None:
        hit = self._seen.get(code, 0)
        if hit == 0:
            hit = self.labels.get((code.co_filename, _qualname(code)))
            if hit is None and code.co_filename.startswith(_EXERCISES_DIR) and not _learner_helper(code) \
                    and code not in self._allowed:
                hit = f"the grader's {Path(code.co_filename).stem}.{_qualname(code)}"
            self._seen[code] = hit
        return hit


def _learner_helper(code) -> bool:
    module = sys.modules.get(f"saattn_edu.grading.exercises.{Path(code.co_filename).stem}")
    helpers = getattr(module, "LEARNER_HELPERS", ())
    return _qualname(code).split(".")[0] in helpers


# ----------------------------------------------------------------------------------------------------------------
# The watchdog
# ----------------------------------------------------------------------------------------------------------------
class _Worker(threading.Thread):
    """Runs fn(**kwargs) under a trace function that is both the tripwire and the stop switch."""

    def __init__(self, fn, kwargs, forbidden: Forbidden):
        super().__init__(name="saattn-check", daemon=True)
        self.fn, self.kwargs, self.forbidden = fn, kwargs, forbidden
        self.out = Outcome()
        self.stop_with: type | None = None  # set by the watchdog: raise this at every line from now on

    def run(self):
        sys.settrace(self._on_call)
        threading.settrace(self._on_call)  # threads the learner's function starts are watched too
        try:
            self.out.value = self.fn(**self.kwargs)
            self.out.tampered = sys.gettrace() != self._on_call
        except (CheckTimeout, LibraryCall):
            pass
        except BaseException as exc:  # noqa: BLE001 - anything the learner raises is reported, not propagated
            self.out.error = exc
        finally:
            sys.settrace(None)

    def _on_call(self, frame, event, arg):
        label = self.forbidden.label(frame.f_code)
        if label is not None:
            self.out.library_calls.append(label)
            self.stop_with = self.stop_with or LibraryCall
        return self._on_line if self.stop_with else None

    def _on_line(self, frame, event, arg):
        if event == "line" and self.stop_with is not None and frame.f_code is not _Worker.run.__code__:
            raise self.stop_with()  # only on lines: an error on an "exception" event would land in the learner's try
        return self._on_line

    def stop(self, exc_type: type) -> None:
        """Raise exc_type in the worker now and at every line of every frame it is in (bare excepts included)."""
        self.stop_with = exc_type
        frame = sys._current_frames().get(self.ident)
        while frame is not None and frame.f_code is not _Worker.run.__code__:
            frame.f_trace, frame.f_trace_lines = self._on_line, True
            frame = frame.f_back
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.ident), ctypes.py_object(exc_type))


def call_with_timeout(fn, kwargs: dict, seconds: float, forbid=(), allow=()) -> Outcome:
    """fn(**kwargs) in a worker thread with a wall-clock limit and a tripwire on `forbid` ([(owner, attribute)]);
    `allow`: the grader's own functions (of an exercise module) that wrap the learner's call. Never raises for
    anything fn does. A remote function (summative grading) is called through its own channel."""
    remote = getattr(fn, "remote_call", None)
    if remote is not None:
        return _counted(remote(kwargs, seconds))
    worker, previous = _Worker(fn, kwargs, Forbidden(forbid, allow)), threading.gettrace()
    threads_before = set(threading.enumerate())
    worker.start()
    try:
        _watch(worker, seconds)
    except BaseException:  # the learner pressed "interrupt kernel" while waiting: stop the worker too
        worker.stop(CheckTimeout)
        raise
    finally:
        threading.settrace(previous)
    out = worker.out
    # a thread the function left running could still change what it returned, while it is compared
    out.left_threads = len([t for t in threading.enumerate() if t not in threads_before and t is not worker])
    if isinstance(out.error, RemoteFailure):  # a remote measurement failed: its own outcome says how
        out = out.error.outcome
    return _counted(out)


def _counted(out: Outcome) -> Outcome:
    if isinstance(out.error, NotImplementedError):
        not_implemented_seen[0] += 1
    return out


def _watch(worker: _Worker, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while worker.is_alive() and not worker.out.library_calls and time.monotonic() < deadline:
        worker.join(min(_POLL, max(0.0, deadline - time.monotonic())))
    if not worker.is_alive():
        return
    worker.out.timed_out = not worker.out.library_calls
    for _ in range(50):  # again every 20 ms for a second, in case the learner's code swallows it
        worker.stop(LibraryCall if worker.out.library_calls else CheckTimeout)
        worker.join(_POLL)
        if not worker.is_alive():
            return
    worker.out.still_running = True


# ----------------------------------------------------------------------------------------------------------------
# Inputs: copies and mutation checks
# ----------------------------------------------------------------------------------------------------------------
def same(a, b) -> bool:
    """Deep equality that treats arrays by value (shape, dtype and entries; NaN equals NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects without a usable ==: assume unchanged
        return True


def changed_inputs(before: dict, after: dict) -> list[str]:
    """Names of the keyword arguments whose value differs from the snapshot taken before the call."""
    return [k for k in before if not same(before[k], after[k])]


def fresh_copy(kwargs: dict) -> dict:
    return copy.deepcopy(kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Tracebacks trimmed to the learner's code
# ----------------------------------------------------------------------------------------------------------------
def learner_traceback(exc: BaseException) -> list[str]:
    """The traceback without the grader's own frames, at most a few frames deep."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_GRADING_DIR)]
    text = traceback.format_list(frames[-_MAX_FRAMES:]) + traceback.format_exception_only(type(exc), exc)
    return [line for chunk in text for line in chunk.rstrip("\n").splitlines()]
