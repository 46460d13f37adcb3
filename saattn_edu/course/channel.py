"""The grader's side of one sandboxed submission: start its supervisor, run its cells, call its functions.

The learner's notebook runs in a kernel under `course/sandbox.py`, in a private copy of its folder. A call writes
the arguments (plain data, drawn by the grader) into a fresh directory with a random name, asks the supervisor to
run the one serving cell, and reads back plain data only (`grading.plain.read`: no pickles, no object arrays, no
subclasses). A `RemoteFunction` looks like the learner's function to the grading loop; the points are computed
here, by the same `run_question` that `check()` uses.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..grading.guard import Outcome, RemoteFailure
from ..grading.plain import PlainError, read, write
from .processes import is_subreaper, kill_descendants

MARGIN = 10.0  # seconds the supervisor and the pipes may add to a call's own time limit
_LIVE: set[int] = set()  # pids of running supervisors (the sweep of a subreaper grader spares them)
_LIVE_LOCK = threading.Lock()


@dataclass
class Limits:
    """Per-submission limits (the README's "Grading a class" lists them)."""

    cell_timeout: int = 120  # seconds per notebook cell
    check_timeout: float = 10.0  # seconds per question (all its cases together)
    wall: float = 900.0  # seconds for the whole submission: then everything it started is killed
    memory_bytes: int = 8 << 30  # address space of each process
    extra_tasks: int = 256  # processes and threads beyond what this user already runs
    file_bytes: int = 256 << 20  # largest file a process may write


class SandboxGone(Exception):
    """The submission's supervisor stopped answering (killed, stuck, or past the wall limit)."""


class Sandbox:
    def __init__(self, notebook: Path, workdir: Path, calls: Path, limits: Limits):
        """`gone`, once set, is the submission's status: "timed out", "kernel died" or "supervisor ended"."""
        self.notebook, self.workdir, self.calls, self.limits = notebook, workdir, calls, limits
        self.deadline = time.monotonic() + limits.wall
        self.nonce = secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None
        self.replies: queue.Queue = queue.Queue()
        self.gone = ""  # why the sandbox can no longer answer

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        with _LIVE_LOCK:
            self.proc = subprocess.Popen([sys.executable, "-m", "saattn_edu.course.sandbox"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=self.workdir,
                                         start_new_session=True, env=self._env())
            _LIVE.add(self.proc.pid)
        threading.Thread(target=self._read_replies, daemon=True).start()
        self._send({"nonce": self.nonce, "notebook": str(self.notebook), "workdir": str(self.workdir),
                    "cell_timeout": self.limits.cell_timeout, "env": self._env(),
                    "limits": {"memory_bytes": self.limits.memory_bytes, "extra_tasks": self.limits.extra_tasks,
                               "file_bytes": self.limits.file_bytes, "cpu_seconds": int(self.limits.wall) + 60}})

    def _env(self) -> dict:
        home = self.workdir.parent / "home"
        home.mkdir(exist_ok=True)
        keep = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV") if k in os.environ}
        return {**keep, "HOME": str(home), "TMPDIR": str(home), "MPLBACKEND": "Agg",
                "SAATTN_CHECK_TIMEOUT": str(self.limits.check_timeout), "PYTHONDONTWRITEBYTECODE": "1"}

    def close(self) -> None:
        """End the supervisor and everything the submission started (SIGTERM, then SIGKILL, then the sweep)."""
        if self.proc is None:
            return
        try:
            self._send({"op": "quit"})
        except OSError:
            pass
        for sig, wait in ((None, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if sig is not None:
                _signal_group(self.proc.pid, sig)
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        _signal_group(self.proc.pid, signal.SIGKILL)  # the session's group: children that stayed in it
        with _LIVE_LOCK:
            _LIVE.discard(self.proc.pid)
            if is_subreaper():  # orphans of a supervisor that was killed were handed to this process (the CLI)
                kill_descendants(keep=set(_LIVE) | set(_live_descendants()))

    # ---- the pipe ---------------------------------------------------------------------------------------------
    def _send(self, msg: dict) -> None:
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def _read_replies(self) -> None:
        for line in iter(lambda: self.proc.stdout.readline(1 << 20), b""):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("nonce") == self.nonce:  # anything else was not the supervisor
                self.replies.put(msg)
        self.replies.put({"event": "eof"})

    def reply(self, seconds: float) -> dict:
        """The supervisor's next message within `seconds` (and the wall limit); SandboxGone otherwise."""
        left = min(seconds, self.deadline - time.monotonic())
        try:
            msg = self.replies.get(timeout=max(0.0, left))
        except queue.Empty:
            self.gone = "timed out"
            raise SandboxGone(self.gone)
        if msg["event"] in ("eof", "dead", "failed", "stuck"):
            self.gone = {"stuck": "timed out", "dead": "kernel died"}.get(msg["event"], "supervisor ended")
            raise SandboxGone(self.gone)
        return msg

    # ---- the grading steps ------------------------------------------------------------------------------------
    def run_cells(self) -> list[dict]:
        msg = self.reply(self.deadline - time.monotonic())
        if msg.get("stopped"):
            self.gone = "kernel died" if msg["stopped"] == "dead" else "timed out"
            raise SandboxGone(self.gone)
        return [e for e in msg.get("errors", []) if isinstance(e, dict)][:200]

    def request(self, op: str, name: str, question: str = "", args=None, timeout: float = 10.0,
                repeats: int = 1) -> tuple[dict, object]:
        """(status, plain value) of one call into the kernel; SandboxGone when it did not answer in time."""
        if self.gone:
            raise SandboxGone(self.gone)
        folder = self.calls / secrets.token_hex(8)
        folder.mkdir(mode=0o700)
        try:
            if args is not None:
                write(args, folder, "args")
            (folder / "request.json").write_text(json.dumps({"op": op, "name": name, "question": question,
                                                             "timeout": timeout, "repeats": repeats}))
            self._send({"op": "call", "dir": str(folder), "timeout": timeout + MARGIN / 2})
            event = self.reply(timeout + MARGIN)["event"]
            if event != "done":
                return {"status": "timeout", "still_running": False}, None
            return _read_status(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _read_status(folder: Path) -> tuple[dict, object]:
    try:
        with open(folder / "status.json", "rb") as f:  # written by the learner's process: read a bounded prefix
            status = json.loads(f.read(1 << 20).decode("utf-8"))
        if not isinstance(status, dict):
            raise ValueError("not an object")
        value = read(folder, "result") if status.get("status") == "ok" else None
    except (OSError, ValueError, PlainError) as exc:
        return {"status": "error", "lines": [f"the answer could not be read back as plain data: {exc}"]}, None
    return status, value


def _signal_group(pid: int, sig) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _live_descendants() -> list[int]:
    from .processes import descendants

    return [d for p in _LIVE for d in descendants(p)]


class RemoteFunction:
    """The learner's function `name`, called in its sandbox; what `run_question` and the comparators call."""

    def __init__(self, sandbox: Sandbox, name: str, question: str):
        self.sandbox, self.name, self.question = sandbox, name, question
        self.__name__ = name

    def __call__(self, **kwargs):
        out = self.remote_call(kwargs, 30.0)
        if out.error is not None or out.timed_out or out.library_calls:
            raise RemoteFailure(out)
        return out.value

    def remote_call(self, kwargs: dict, seconds: float) -> Outcome:
        return self._outcome("call", kwargs, seconds)

    def remote_times(self, inputs: list, repeats: int, seconds: float = 60.0) -> list:
        out = self._outcome("times", inputs, seconds, repeats)
        if out.error is not None or out.timed_out or out.library_calls or not isinstance(out.value, list):
            raise RemoteFailure(out)
        return [float(t) for t in out.value]

    def remote_peak_bytes(self, kwargs: dict, seconds: float = 30.0) -> int:
        out = self._outcome("peak", kwargs, seconds)
        if out.error is not None or out.timed_out or out.library_calls or type(out.value) is not int:
            raise RemoteFailure(out)
        return out.value

    def _outcome(self, op, args, seconds, repeats=1) -> Outcome:
        try:
            status, value = self.sandbox.request(op, self.name, self.question, args, seconds, repeats)
        except SandboxGone:
            return Outcome(timed_out=True, still_running=True)
        return outcome_of(status, value)


def outcome_of(status: dict, value) -> Outcome:
    """The kernel's status as the Outcome the grading loop reads (its words are the learner's own, kept short)."""
    kind = status.get("status")
    lines = [str(x)[:300] for x in status.get("lines", [])][:20] if isinstance(status.get("lines"), list) else []
    if kind == "ok":
        changed = status.get("changed")
        return Outcome(value=value, changed=[str(c) for c in changed] if isinstance(changed, list) else None)
    if kind == "refused":
        calls = status.get("library_calls")
        return Outcome(library_calls=[str(c) for c in calls][:5] if isinstance(calls, list) and calls
                       else ["the grader's guard was switched off"])
    if kind == "not attempted":
        return Outcome(error=NotImplementedError())
    if kind == "timeout":
        return Outcome(timed_out=True, still_running=bool(status.get("still_running")))
    if kind == "not plain":
        return Outcome(not_plain=lines[0] if lines else "returned a value that is not plain data")
    return Outcome(error=RemoteError(lines or [f"the call failed ({str(kind)[:40]})"]))


class RemoteError(Exception):
    """The learner's function raised in its kernel; `lines` is its traceback, trimmed to the learner's code."""

    def __init__(self, lines: list[str]):
        super().__init__(lines[-1] if lines else "error")
        self.lines = lines
