"""A batch of submissions: output paths checked first, one JSON entry and one CSV row written as soon as each
submission is graded (both files replaced atomically), already graded submissions skipped on a rerun."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..grading.report import fmt_points, shown_points
from .grade import NotebookGrade, grade_notebook


def check_output_path(path, what: str) -> Path:
    """The path, once its folder exists and can be written; ValueError naming the parameter otherwise."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} must be a file path, got the folder {str(path)!r}")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise ValueError(f"{what}: the folder {str(parent)!r} of {str(path)!r} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{what}: {str(path)!r} cannot be written")
    return p


class Results:
    """The JSON report and the CSV table of one batch, rewritten after every graded submission."""

    def __init__(self, report, csv_path=None, root=None, force: bool = False):
        self.report = check_output_path(report, "--report")
        self.csv = check_output_path(csv_path, "--csv") if csv_path else None
        self.root, self.lock = root, threading.Lock()
        self.grades: dict[str, NotebookGrade] = {}
        if not force and self.report.is_file():
            try:
                for d in json.loads(self.report.read_text(encoding="utf-8")).get("notebooks", []):
                    self.grades[d["path"]] = NotebookGrade.from_dict(d)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"--report {str(report)!r} holds no saattn grade report ({exc}); "
                                 "use --force to replace it") from None

    def already_graded(self, path) -> NotebookGrade | None:
        g = self.grades.get(str(path))
        if g is None or g.status == "not graded":
            return None
        try:
            same = hashlib.sha256(Path(path).read_bytes()).hexdigest() == g.sha256
        except OSError:
            return None
        return g if same else None

    def add(self, grade: NotebookGrade) -> None:
        with self.lock:
            self.grades[grade.path] = grade
            _replace(self.report, json.dumps({"notebooks": [g.to_dict() for g in self.grades.values()]},
                                             indent=1) + "\n")
            if self.csv:
                _replace(self.csv, csv_text(list(self.grades.values()), self.root))


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


TIER_COLUMNS = ("core", "core max", "star", "star max", "free text answered", "free text asked")


def csv_text(grades, root=None) -> str:
    """One row per submission: points per question (a free-text question: answered / not answered), total, max,
    the core, ★ and free-text columns, status (graded / timed out / not graded), error."""
    import io

    columns = list(dict.fromkeys(r["question"] for g in grades for r in g.results))
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["submission", *columns, "total", "max", *TIER_COLUMNS, "status", "error"])
    for g in grades:
        pts = {r["question"]: shown_points(r) for r in g.results}
        name = os.path.relpath(g.path, root) if root else g.path
        tiers = g.columns
        w.writerow([name, *(pts.get(c, "") for c in columns), fmt_points(g.points), fmt_points(g.max_points),
                    *(fmt_points(x) for x in (*tiers["core"], *tiers["star"])), *tiers["free_text"],
                    g.status, g.error])
    return out.getvalue()


def grade_batch(paths, results: Results, jobs: int = 1, on_graded=None, **kwargs) -> list[NotebookGrade]:
    """Grade every path not already in `results` (`jobs` at once, one sandbox each); each result is written
    the moment it is ready and passed to on_graded(grade, skipped)."""
    paths = list(dict.fromkeys(str(p) for p in paths))
    todo = []
    for p in paths:
        done = results.already_graded(p)
        if done is not None:
            on_graded and on_graded(done, True)
        else:
            todo.append(p)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo) or 1))) as pool:
        futures = [pool.submit(grade_notebook, p, **kwargs) for p in todo]
        for f in as_completed(futures):
            g = f.result()
            results.add(g)
            on_graded and on_graded(g, False)
    return [results.grades[p] for p in paths]


def grade_paths(paths, jobs: int = 1, **kwargs) -> list[NotebookGrade]:
    """Grade notebooks without writing files (`jobs` at once); results in the order given."""
    paths = [str(p) for p in paths]
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(paths) or 1))) as pool:
        return list(pool.map(lambda p: grade_notebook(p, **kwargs), paths))
