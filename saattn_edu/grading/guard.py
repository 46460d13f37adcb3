"""What the runner guards a learner's function with: a time limit, a tripwire on library solutions, input copies.

The time limit uses SIGALRM where it can (Unix, main thread: the case in Jupyter, Colab and plain Python) and a
watchdog thread elsewhere. The tripwire swaps the library functions that already compute the answer (and every other
name bound to them, in the library and in the learner's globals) for ones that record the call and raise, only while
the learner's function runs.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_GRADING_DIR = str(Path(__file__).resolve().parent)
_MAX_FRAMES = 6


class CheckTimeout(BaseException):
    """Raised inside the learner's function when its time is up (BaseException: `except Exception` can't eat it)."""


class LibraryCall(BaseException):
    """Raised when the learner's function calls the library's own solution."""


@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None
    timed_out: bool = False
    mechanism: str = ""  # "alarm" | "watchdog"
    still_running: bool = False  # watchdog could not stop the thread (it is stuck in C code)


# ----------------------------------------------------------------------------------------------------------------
# Time limit
# ----------------------------------------------------------------------------------------------------------------
#: How many learner calls ended in NotImplementedError: a comparison that runs the learner's code and fails
#: right after one is reported "not attempted" by the runner, whatever words the comparison chose.
not_implemented_seen = [0]


def call_with_timeout(fn, kwargs: dict, seconds: float) -> Outcome:
    """fn(**kwargs) with a time limit; never raises."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        out = _call_with_alarm(fn, kwargs, seconds)
    else:
        out = _call_with_watchdog(fn, kwargs, seconds)
    if isinstance(out.error, NotImplementedError):
        not_implemented_seen[0] += 1
    return out


def _call_with_alarm(fn, kwargs, seconds) -> Outcome:
    fired = []

    def on_alarm(signum, frame):
        if frame is not None and frame.f_code is _call_with_alarm.__code__:
            return  # the learner's function has just returned: nothing to stop
        fired.append(True)
        if len(fired) > 1:  # the first stop was swallowed (a bare `except:` in a loop): stop at every line
            _stop_at_every_line(frame)
        raise CheckTimeout()

    previous, previous_trace = signal.signal(signal.SIGALRM, on_alarm), sys.gettrace()
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3), 0.05)  # then again every 50 ms until it stops
    out = Outcome(mechanism="alarm")
    try:
        out.value = fn(**kwargs)
    except CheckTimeout:
        pass
    except BaseException as exc:  # noqa: BLE001 - anything the learner raises is reported, not propagated
        out.error = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.settrace(previous_trace)
        signal.signal(signal.SIGALRM, previous)
    out.timed_out = bool(fired)
    return out


def _stop_at_every_line(frame) -> None:
    """Trace the learner's frames (and any new one) with a function that raises on every line: an exception
    raised inside an `except` block leaves that block, so even `while True: try: ... except: pass` ends."""
    def stop(f, event, arg):
        if f.f_code is _call_with_alarm.__code__:
            return None
        if event == "line":  # only here: an error on an "exception" event would land in the learner's try
            raise CheckTimeout()
        return stop

    while frame is not None and frame.f_code is not _call_with_alarm.__code__:
        frame.f_trace, frame.f_trace_lines = stop, True
        frame = frame.f_back
    sys.settrace(stop)


def _call_with_watchdog(fn, kwargs, seconds) -> Outcome:
    out = Outcome(mechanism="watchdog")

    def target():
        try:
            out.value = fn(**kwargs)
        except CheckTimeout:
            pass
        except BaseException as exc:  # noqa: BLE001
            out.error = exc

    worker = threading.Thread(target=target, name="saattn-check", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        out.timed_out = True
        # Ask the interpreter to raise in the worker at its next bytecode (a call stuck in C finishes first);
        # again every 50 ms for a second, in case the learner's code swallows it.
        for _ in range(20):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(CheckTimeout))
            worker.join(0.05)
            if not worker.is_alive():
                break
        out.still_running = worker.is_alive()
    return out


# ----------------------------------------------------------------------------------------------------------------
# Tripwire on the library's own solution
# ----------------------------------------------------------------------------------------------------------------
def _tripped(label: str, calls: list):
    def tripwire(*args, **kwargs):
        calls.append(label)
        raise LibraryCall(label)

    return tripwire


def _tripped_like(raw, label: str, calls: list):
    """A tripwire of the same kind (plain, classmethod, staticmethod) as the attribute it replaces."""
    wire = _tripped(label, calls)
    if isinstance(raw, classmethod):
        return classmethod(wire)
    if isinstance(raw, staticmethod):
        return staticmethod(wire)
    return wire


def _aliases(labels: dict, namespaces, own: set) -> list:
    """(namespace, name, label) of every other binding of a target function (`labels`: id -> label): the learner's
    globals (`from saattn_edu.x import f`) and the library's modules that import the same helper. `own`: the
    (namespace id, name) slots the targets themselves occupy, already swapped."""
    library = [vars(m) for name, m in list(sys.modules.items()) if name.split(".")[0] == "saattn_edu" and m]
    return [(ns, name, labels[id(value)]) for ns in library + [ns for ns in namespaces if ns is not None]
            for name, value in list(ns.items()) if id(value) in labels and (id(ns), name) not in own]


@contextlib.contextmanager
def tripwire(targets, namespaces=()):
    """While active, calling any `owner.attribute` in targets, or the same function under another name in the
    library's modules or in `namespaces` (the learner's globals), records its name in the yielded list and raises."""
    calls: list[str] = []
    saved, labels = [], {}
    for owner, attr in targets:
        raw = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        label = f"{getattr(owner, '__name__', owner)}.{attr}"
        labels[id(raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw)] = label
        saved.append((owner, attr, raw, label))
    own = {(id(vars(owner)), attr) for owner, attr, _, _ in saved}
    aliases = [(ns, name, ns[name], label) for ns, name, label in _aliases(labels, namespaces, own)]
    for owner, attr, raw, label in saved:
        setattr(owner, attr, _tripped_like(raw, label, calls))
    for ns, name, _, label in aliases:
        ns[name] = _tripped(label, calls)
    try:
        yield calls
    finally:
        for ns, name, raw, _ in reversed(aliases):
            ns[name] = raw
        for owner, attr, raw, _ in reversed(saved):
            setattr(owner, attr, raw)


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
