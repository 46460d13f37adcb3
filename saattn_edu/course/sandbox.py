"""The supervisor of one submission: `python -m saattn_edu.course.sandbox`, started by `saattn grade`.

It is the child subreaper of everything the submission starts, runs under rlimits that its kernel inherits, runs
the notebook's cells in a kernel whose working directory is a private temporary copy, then serves the grader's
calls, one kernel cell each. It keeps no printed output (only error names), computes no points, and kills every
descendant when it ends: on "quit", on SIGTERM, on EOF from the grader, or on any error.

Protocol (JSON lines on the pipes the grader gave it; the kernel's stdin/stdout/stderr are /dev/null): the first
line is the job; every reply carries the job's nonce, which no process of the submission ever sees.
"""
from __future__ import annotations

import json
import os
import signal
import sys

from .processes import apply_limits, become_subreaper, kill_descendants

PROBE_TIMEOUT = 10  # seconds for a trivial cell after an interrupted one: more means the kernel ignores SIGINT
SERVE = "__import__('saattn_edu.grading.kernel_side', fromlist=['serve']).serve(globals(), {folder!r})"


def _quiet_client_class():
    from nbclient import NotebookClient

    class QuietClient(NotebookClient):
        """Keeps a cell's error outputs only: printed text, figures and values are dropped as they arrive."""

        def output(self, outs, msg, display_id, cell_index):
            if msg["header"]["msg_type"] != "error":
                return None
            c = msg["content"]
            out = {"output_type": "error", "ename": str(c.get("ename", ""))[:200],
                   "evalue": str(c.get("evalue", ""))[:500], "traceback": []}
            outs.append(out)
            return out

    return QuietClient


class Supervisor:
    def __init__(self, job: dict, reply):
        self.job, self._reply = job, reply
        self.client = None

    def send(self, **msg) -> None:
        self._reply.write(json.dumps({**msg, "nonce": self.job["nonce"]}) + "\n")
        self._reply.flush()

    def run(self, requests) -> None:
        import nbformat
        from nbclient.exceptions import DeadKernelError

        job = self.job
        nb = nbformat.read(job["notebook"], as_version=4)
        self.client = _quiet_client_class()(
            nb, timeout=job["cell_timeout"], kernel_name="python3", allow_errors=True, interrupt_on_timeout=False,
            shutdown_kernel="immediate", resources={"metadata": {"path": job["workdir"]}})
        devnull = open(os.devnull, "r+b")
        with self.client.setup_kernel(env=job["env"], stdin=devnull, stdout=devnull, stderr=devnull):
            errors, stopped = self.run_cells(nb)
            self.send(event="cells", errors=errors, stopped=stopped)
            if stopped:
                return
            for line in requests:
                req = json.loads(line)
                if req.get("op") != "call":
                    return
                try:
                    event = self.execute(SERVE.format(folder=req["dir"]), req["timeout"])
                except DeadKernelError:
                    self.send(event="dead")
                    return
                self.send(event=event)
                if event == "stuck":
                    return

    def run_cells(self, nb) -> tuple[list, str]:
        """Every code cell in order: (error outputs, "" or why the kernel cannot go on: "stuck" / "dead")."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        errors = []
        for k, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                self.client.execute_cell(cell, k)
            except CellTimeoutError:
                errors.append({"cell": k, "ename": "Timeout", "evalue": f"cell ran over {self.job['cell_timeout']} s"})
                if not self.interrupt_and_probe():
                    return errors, "stuck"
            except DeadKernelError:
                errors.append({"cell": k, "ename": "DeadKernel", "evalue": "the kernel died; later cells not run"})
                return errors, "dead"
            errors += [{"cell": k, "ename": o["ename"], "evalue": o["evalue"]}
                       for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        return errors, ""

    def execute(self, code: str, timeout: float) -> str:
        """Run one cell of ours: "done", "timeout" (interrupted, the kernel answers again) or "stuck"."""
        import nbformat
        from nbclient.exceptions import CellTimeoutError

        cell = nbformat.v4.new_code_cell(code)
        self.client.timeout = max(1, int(timeout + 0.999))
        try:
            self.client.execute_cell(cell, 0)
            return "done"
        except CellTimeoutError:
            return "timeout" if self.interrupt_and_probe() else "stuck"
        finally:
            self.client.timeout = self.job["cell_timeout"]

    def interrupt_and_probe(self) -> bool:
        """Interrupt the kernel (SIGINT) and check that it answers again: False when it ignores the interrupt."""
        import nbformat
        from jupyter_core.utils import run_sync
        from nbclient.exceptions import CellTimeoutError

        run_sync(self.client.km.interrupt_kernel)()
        self.client.timeout = PROBE_TIMEOUT
        try:
            self.client.execute_cell(nbformat.v4.new_code_cell("pass"), 0)
            return True
        except CellTimeoutError:
            return False
        finally:
            self.client.timeout = self.job["cell_timeout"]


def _private_pipes():
    """The grader's pipes on private descriptors; 0, 1 and 2 (inherited by the kernel) point at /dev/null."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    return requests, replies


def main() -> int:
    requests, replies = _private_pipes()
    job = json.loads(requests.readline())
    become_subreaper()
    signal.signal(signal.SIGTERM, lambda *a: (kill_descendants(), os._exit(3)))
    limits = job["limits"]
    apply_limits(limits["memory_bytes"], limits["cpu_seconds"], limits["extra_tasks"], limits["file_bytes"])
    supervisor = Supervisor(job, replies)
    try:
        supervisor.run(requests)
    except Exception as exc:  # noqa: BLE001 - reported to the grader; the submission is graded as far as it got
        try:
            supervisor.send(event="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        except OSError:
            pass
    finally:
        kill_descendants()
    return 0


if __name__ == "__main__":
    sys.exit(main())
