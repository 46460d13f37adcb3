"""Processes a submission starts end with its grading: a child subreaper, rlimits, and a sweep of descendants.

Linux only where it matters: `prctl(PR_SET_CHILD_SUBREAPER)` makes a process the parent of every orphaned
descendant (a daemon that double-forks or calls setsid included), so it can find and kill them all; elsewhere
the process group is killed and orphans may survive (the README says so).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; False where the OS cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    return libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value == 1


def children(pid: int | None = None) -> list[int]:
    """The live children of `pid` (default: this process), from /proc."""
    pid = os.getpid() if pid is None else pid
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int | None = None) -> list[int]:
    todo, seen = children(pid), []
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += children(p)
    return seen


def reap() -> None:
    """Collect every exited child (so zombies do not count as alive)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants(keep=(), rounds: int = 50) -> int:
    """SIGKILL every descendant of this process except the pids in `keep`; as a subreaper, orphans that show up
    as children meanwhile are killed in the next round. Returns how many were killed."""
    killed = 0
    for _ in range(rounds):
        targets = [p for p in descendants() if p not in keep]
        if not targets:
            return killed
        for p in targets:
            try:
                os.kill(p, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.02)
        reap()
    return killed


def user_tasks() -> int:
    """Threads of all processes of this user (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1"))
    return count


def apply_limits(memory_bytes: int, cpu_seconds: int, extra_tasks: int, file_bytes: int) -> None:
    """rlimits for this process and everything it starts: address space, CPU time, tasks, file size, no core."""
    import resource

    def lower(kind, value):
        soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))

    lower(resource.RLIMIT_AS, memory_bytes)
    lower(resource.RLIMIT_CPU, cpu_seconds)
    lower(resource.RLIMIT_FSIZE, file_bytes)
    lower(resource.RLIMIT_CORE, 0)
    if sys.platform.startswith("linux"):
        lower(resource.RLIMIT_NPROC, user_tasks() + extra_tasks)
