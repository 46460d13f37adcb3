"""`saattn grade`: run notebooks in a fresh kernel, collect every check, and write a table, JSON and CSV.

The learner's file is only read: the notebook runs from an in-memory copy, in its own folder. Each check in the
kernel appends its result to a JSON-lines file (grading.runner.LOG_ENV), so results survive cells that raise, and
a last cell added by the grader checks every question against the names the learner defined.
"""
from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..grading.report import CaseResult, CheckResult, fmt_points
from ..grading.runner import LOG_ENV
from ..grading.spec import questions

DEFAULT_CELL_TIMEOUT = 120  # seconds per cell (a learner's top-level infinite loop is interrupted)


@dataclass
class NotebookGrade:
    path: str
    graded: bool
    error: str = ""  # why it could not be graded
    exercise: str = ""  # "ex01"
    results: list[dict] = field(default_factory=list)  # CheckResult.to_dict() + "source", one per question
    cell_errors: list[dict] = field(default_factory=list)  # {"cell": k, "ename": ..., "evalue": ...}

    @property
    def points(self) -> float:
        return float(sum(r["points"] for r in self.results))

    @property
    def max_points(self) -> float:
        return float(sum(r["max_points"] for r in self.results))

    def to_dict(self) -> dict:
        return {**asdict(self), "points": self.points, "max_points": self.max_points}


# ----------------------------------------------------------------------------------------------------------------
# Which exercise module a notebook belongs to
# ----------------------------------------------------------------------------------------------------------------
def exercise_of(path: Path, nb) -> str:
    """'ex01' from the file name '01_patterns.ipynb', else from the first check("exNN. ...") in its cells."""
    candidates = []
    m = re.match(r"(\d{2})_", path.name)
    if m:
        candidates.append(f"ex{m.group(1)}")
    for cell in nb.cells:
        candidates += re.findall(r"""check\(\s*["'](ex\d{2})\.""", cell.source)
    for ex in candidates:
        try:
            questions(ex)
            return ex
        except ValueError:
            continue
    return ""


# ----------------------------------------------------------------------------------------------------------------
# Running one notebook
# ----------------------------------------------------------------------------------------------------------------
def _final_cell(exercise: str):
    code = (f"__import__('saattn_edu.grading.autograde', fromlist=['grade_namespace'])"
            f".grade_namespace({exercise!r}, globals());")
    return nbformat.v4.new_code_cell(code)


def _execute(nb, folder: Path, log: Path, exercise: str, cell_timeout: int, check_timeout) -> list[dict]:
    """Run every cell (errors and timeouts recorded, not fatal), then the grader's cell; returns cell errors."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    env = {**os.environ, LOG_ENV: str(log)}
    if check_timeout is not None:
        env["SAATTN_CHECK_TIMEOUT"] = str(check_timeout)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(folder)}})
    errors = []
    if exercise:
        nb.cells.append(_final_cell(exercise))  # an in-memory copy: the learner's file is never written
    cells = list(enumerate(nb.cells))
    with client.setup_kernel(env=env):
        for k, cell in cells:
            try:
                client.execute_cell(cell, k)
            except CellTimeoutError:
                errors.append({"cell": k, "ename": "Timeout", "evalue": f"cell ran over {cell_timeout} s"})
            except DeadKernelError:
                errors.append({"cell": k, "ename": "DeadKernel", "evalue": "the kernel died; later cells not run"})
                break
            errors += [{"cell": k, "ename": o.get("ename", ""), "evalue": o.get("evalue", "")}
                       for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    return errors


def _read_log(log: Path) -> list[dict]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a dying kernel
            continue
    return out


def _missing(exercise: str, name: str, why: str) -> dict:
    q = questions(exercise)[name]
    cases = [CaseResult(k, c.label, "missing", 0.0, c.points) for k, c in enumerate(q.cases, 1)] or \
        [CaseResult(1, "your answer", "missing", 0.0, q.max_points)]
    return {**CheckResult(q.id, 0, cases, note=why).to_dict(), "source": "none"}


def choose_results(exercise: str, logged: list[dict]) -> list[dict]:
    """One result per question: the grader's own check, unless the learner's answer had another name there; then
    the learner's last in-notebook check of that question."""
    names = list(questions(exercise)) if exercise else []
    final = {r["question"]: r for r in logged if r.get("source") == "final"}
    last_check = {r["question"]: r for r in logged if r.get("source") == "check"}  # later lines win
    chosen = []
    for name in names:
        qid = f"{exercise}.{name}"
        f, c = final.get(qid), last_check.get(qid)
        if f is not None and not (f.get("note") and c is not None):
            chosen.append(f)
        elif c is not None:
            chosen.append(c)
        else:
            chosen.append(_missing(exercise, name, "no check ran (the kernel stopped before the grader's cell)"))
    extra = [r for q, r in last_check.items() if not exercise or not q.startswith(exercise + ".")]
    return chosen + extra


def grade_notebook(path, cell_timeout: int = DEFAULT_CELL_TIMEOUT, check_timeout=None) -> NotebookGrade:
    """Grade one notebook; never modifies it. graded=False (with `error`) only when it could not be run."""
    path = Path(path)
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - unreadable file / not a notebook: say so, grade the others
        return NotebookGrade(str(path), False, error=f"cannot read the notebook: {type(exc).__name__}: {exc}")
    exercise = exercise_of(path, nb)
    with tempfile.TemporaryDirectory(prefix="saattn-grade-") as tmp:
        log = Path(tmp) / "checks.jsonl"
        try:
            errors = _execute(nb, path.resolve().parent, log, exercise, cell_timeout, check_timeout)
        except Exception as exc:  # noqa: BLE001 - the kernel could not start
            return NotebookGrade(str(path), False, error=f"cannot run the notebook: {type(exc).__name__}: {exc}")
        results = choose_results(exercise, _read_log(log))
    if not results:
        return NotebookGrade(str(path), False, exercise=exercise, cell_errors=errors,
                             error="no graded exercises found (no exNN_ file name and no check() calls)")
    return NotebookGrade(str(path), True, exercise=exercise, results=results, cell_errors=errors)


def grade_paths(paths, jobs: int = 1, **kwargs) -> list[NotebookGrade]:
    """Grade notebooks in order; `jobs` > 1 runs that many at once (one process and one kernel each)."""
    paths = list(paths)
    if jobs <= 1 or len(paths) < 2:
        return [grade_notebook(p, **kwargs) for p in paths]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        futures = [pool.submit(grade_notebook, p, **kwargs) for p in paths]
        return [f.result() for f in futures]


# ----------------------------------------------------------------------------------------------------------------
# Output: table, JSON, CSV
# ----------------------------------------------------------------------------------------------------------------
def table(g: NotebookGrade) -> str:
    if not g.graded:
        return f"{g.path}: NOT GRADED - {g.error}"
    width = max([len("exercise")] + [len(r["question"]) for r in g.results])
    lines = [f"{g.path}: {fmt_points(g.points)}/{fmt_points(g.max_points)} points",
             f"  {'exercise':<{width}}  {'points':>6}  {'max':>5}  status"]
    for r in g.results:
        lines.append(f"  {r['question']:<{width}}  {fmt_points(r['points']):>6}  {fmt_points(r['max_points']):>5}"
                     f"  {r['status']}")
    if g.cell_errors:
        first = g.cell_errors[0]
        lines.append(f"  {len(g.cell_errors)} cell(s) raised; first: cell {first['cell']} {first['ename']}")
    return "\n".join(lines)


def write_json(grades, path) -> None:
    Path(path).write_text(json.dumps({"notebooks": [g.to_dict() for g in grades]}, indent=1) + "\n",
                          encoding="utf-8")


def write_csv(grades, path, root=None) -> None:
    """One row per submission: its points per exercise, total, max and whether it was graded."""
    columns = list(dict.fromkeys(r["question"] for g in grades for r in g.results))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["submission", *columns, "total", "max", "graded", "error"])
        for g in grades:
            pts = {r["question"]: fmt_points(r["points"]) for r in g.results}
            name = os.path.relpath(g.path, root) if root else g.path
            w.writerow([name, *(pts.get(c, "") for c in columns), fmt_points(g.points), fmt_points(g.max_points),
                        "yes" if g.graded else "no", g.error])
