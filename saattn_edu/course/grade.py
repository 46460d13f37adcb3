"""`saattn grade`: the grade of record. Each notebook runs in its own sandboxed kernel (course/sandbox.py) in a
private copy of its folder; the grader draws every input, calls the learner's functions through plain data
(course/channel.py) and computes every point in this process. The learner's files are only read.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..grading.report import CaseResult, CheckResult, columns_line, fmt_points, shown_points
from ..grading.runner import draw_seed, run_question
from ..grading.spec import Question, questions
from ..grading.tiers import column_of, columns
from .channel import Limits, RemoteFunction, Sandbox, SandboxGone, outcome_of

MAX_NOTEBOOK_BYTES = 50 << 20
MAX_COPY_BYTES, MAX_COPY_FILES = 100 << 20, 500  # the private copy of a submission's folder


@dataclass
class NotebookGrade:
    path: str
    graded: bool
    error: str = ""  # why it could not be graded, or why it stopped ("timed out")
    exercise: str = ""  # "ex01"
    results: list[dict] = field(default_factory=list)  # CheckResult.to_dict(), one per question
    cell_errors: list[dict] = field(default_factory=list)  # {"cell": k, "ename": ..., "evalue": ...}
    sha256: str = ""  # of the notebook's bytes when it was graded (a rerun skips it while they are the same)
    status: str = ""  # graded | timed out | kernel died | supervisor ended | not graded
    seconds: float = 0.0  # wall time of its grading

    def __post_init__(self):
        self.status = self.status or ("graded" if self.graded else "not graded")

    @property
    def points(self) -> float:
        return float(sum(r["points"] for r in self.results))

    @property
    def max_points(self) -> float:
        return float(sum(r["max_points"] for r in self.results))

    @property
    def columns(self) -> dict:
        """{'core': (points, max), 'star': (points, max), 'free_text': (answered, asked)}."""
        return columns(self.results)

    def to_dict(self) -> dict:
        cols = {k: list(v) for k, v in self.columns.items()}
        return {**asdict(self), "points": self.points, "max_points": self.max_points, "columns": cols}

    @classmethod
    def from_dict(cls, d: dict) -> "NotebookGrade":
        keep = {k: d[k] for k in ("path", "graded", "error", "exercise", "results", "cell_errors", "sha256",
                                  "status", "seconds") if k in d}
        return cls(**keep)


def exercise_of(path: Path, nb) -> str:
    """'ex01' from the file name '01_patterns.ipynb', else from the first check("exNN. ...") in its cells."""
    candidates = []
    m = re.match(r"(\d{2})_", path.name)
    if m:
        candidates.append(f"ex{m.group(1)}")
    for cell in nb.cells:
        candidates += re.findall(r"""check\(\s*["'](ex\d{2})\.""", str(cell.get("source", "")))
    for ex in candidates:
        try:
            questions(ex)
            return ex
        except ValueError:
            continue
    return ""


# ----------------------------------------------------------------------------------------------------------------
# One notebook
# ----------------------------------------------------------------------------------------------------------------
def read_notebook(path: Path) -> tuple[bytes, object]:
    """The notebook's bytes and its parsed form; ValueError saying why it cannot be read."""
    try:
        if not path.is_file() or path.is_symlink():
            raise ValueError("no such notebook file")
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
        data = path.read_bytes()
        return data, nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: say so, grade the others
        raise ValueError(f"cannot read the notebook: {type(exc).__name__}: {str(exc)[:300]}") from None


def private_copy(path: Path, data: bytes, work: Path) -> Path:
    """work/ gets the notebook's folder (regular files, no other notebooks, no links) and the notebook itself."""
    work.mkdir()
    budget, count = MAX_COPY_BYTES, 0
    for src in sorted(path.parent.rglob("*")):
        rel = src.relative_to(path.parent)
        if src.is_symlink() or not src.is_file() or src.suffix == ".ipynb" or len(rel.parts) > 3 \
                or any(p.startswith(".") for p in rel.parts):
            continue
        size = src.stat().st_size
        if size > budget or count >= MAX_COPY_FILES:
            continue
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, work / rel)
        budget, count = budget - size, count + 1
    target = work / path.name
    target.write_bytes(data)
    return target


def grade_notebook(path, limits: Limits | None = None, seed: int | None = None) -> NotebookGrade:
    """Grade one notebook in its sandbox; never modifies it. graded=False (with `error`) only when it could not
    be run; status "timed out" when the sandbox hit a limit (points of the questions graded before it stay)."""
    path, limits = Path(path), limits or Limits()
    try:
        data, nb = read_notebook(path)
    except ValueError as exc:
        return NotebookGrade(str(path), False, error=str(exc))
    digest = hashlib.sha256(data).hexdigest()
    exercise = exercise_of(path, nb)
    if not exercise:
        return NotebookGrade(str(path), False, error="no graded exercises found (no exNN_ file name and no check() "
                                                     "calls)", sha256=digest)
    grade, start = NotebookGrade(str(path), True, exercise=exercise, sha256=digest), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="saattn-grade-") as tmp:
        calls = Path(tmp) / "calls"
        calls.mkdir(mode=0o700)
        sandbox = Sandbox(private_copy(path, data, Path(tmp) / "work"), Path(tmp) / "work", calls, limits)
        try:
            sandbox.start()
            grade.cell_errors = sandbox.run_cells()
            for q in questions(exercise).values():
                grade.results.append(grade_question(sandbox, q, limits, seed))
        except SandboxGone:
            pass
        except Exception as exc:  # noqa: BLE001 - the kernel could not start
            grade.graded, grade.status, grade.error = False, "not graded", f"cannot run: {type(exc).__name__}: {exc}"
        finally:
            sandbox.close()
            shutil.rmtree(tmp, onerror=_make_writable)
    grade.seconds = round(time.monotonic() - start, 2)
    if sandbox.gone:
        grade.status, grade.error = sandbox.gone, f"{sandbox.gone}: everything it started was stopped"
        done = {r["question"] for r in grade.results}
        grade.results += [_unrun(q, sandbox.gone) for q in questions(exercise).values() if q.id not in done]
    return grade


def _make_writable(func, p, exc_info):
    """rmtree's error handler: a learner's chmod 000 folder is made deletable, then deleted."""
    import os

    try:
        os.chmod(Path(p).parent, 0o700)
        os.chmod(p, 0o700)
        func(p)
    except OSError:
        pass


def grade_question(sandbox: Sandbox, q: Question, limits: Limits, seed: int | None) -> dict:
    """One question: look the learner's answer up in the kernel, then grade it here."""
    status, value = sandbox.request("get", q.lookup_name, q.id, timeout=limits.check_timeout)
    kind = status.get("status")
    if kind == "missing":
        return _unrun(q, f"`{q.lookup_name}` is not defined in the notebook", "not attempted")
    if kind == "callable":
        answer = RemoteFunction(sandbox, q.lookup_name, q.id)
    elif kind == "ok":
        answer = value
    else:
        out = outcome_of(status, None)
        return _unrun(q, out.not_plain or "; ".join(getattr(out.error, "lines", [])) or str(kind), "failed")
    result = run_question(q, answer, seed=draw_seed() if seed is None else seed,
                          timeout=max(limits.check_timeout, q.min_timeout))
    if sandbox.gone:
        raise SandboxGone(sandbox.gone)
    return result.to_dict()


def _unrun(q: Question, why: str, status: str = "timeout") -> dict:
    cases = [CaseResult(k, c.label, status, 0.0, c.points) for k, c in enumerate(q.cases, 1)] or \
        [CaseResult(1, "your answer", status, 0.0, q.max_points)]
    return CheckResult(q.id, 0, cases, note=why[:300]).to_dict()


# ----------------------------------------------------------------------------------------------------------------
# Output: the table printed per notebook
# ----------------------------------------------------------------------------------------------------------------
def table(g: NotebookGrade) -> str:
    if not g.graded:
        return f"{g.path}: NOT GRADED - {g.error}"
    width = max([len("exercise")] + [len(r["question"]) for r in g.results])
    head = f"{g.path}: {fmt_points(g.points)}/{fmt_points(g.max_points)} points"
    lines = [head + (f"  ({g.status.upper()}: {g.error})" if g.status != "graded" else ""),
             f"  {columns_line(g.results)}",
             f"  {'exercise':<{width}}  {'column':<9}  {'points':>12}  {'max':>5}  status"]
    for r in g.results:
        lines.append(f"  {r['question']:<{width}}  {column_of(r['question']):<9}  {shown_points(r):>12}  "
                     f"{fmt_points(r['max_points']):>5}  {r['status']}")
    if g.cell_errors:
        first = g.cell_errors[0]
        lines.append(f"  {len(g.cell_errors)} cell(s) raised; first: cell {first['cell']} {first['ename']}")
    return "\n".join(lines)
