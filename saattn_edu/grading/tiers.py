"""Point columns of a grade: core exercises, ★ challenge tasks, and self-checked free-text questions.

A ★ question is an ordinary Question whose name starts with `star_` (`ex05.star_fixed_csr`): it is graded like any
other, and a report shows its points in their own column. Free-text questions live in `freetext.py`.

`column_of` says where one question's points are shown; `columns(results)` sums a notebook's CheckResults (or their
dicts) per column, for the grade table, the JSON report and the CSV (report.py, course/grade.py, course/results.py).
"""
from __future__ import annotations

STAR_PREFIX = "star_"


def is_star(question_id: str) -> bool:
    """'ex05.star_fixed_csr' -> True: a ★ challenge task, graded in its own column."""
    return str(question_id).split(".")[-1].startswith(STAR_PREFIX)


def column_of(question_id: str) -> str:
    """'core', '★' or 'free text': the column a question's points are shown in."""
    from .freetext import FREE_TEXT_PREFIX

    if str(question_id).split(".")[-1].startswith(FREE_TEXT_PREFIX):
        return "free text"
    return "★" if is_star(question_id) else "core"


def columns(results) -> dict:
    """{'core': (points, max), 'star': (points, max), 'free_text': (answered, asked)} over CheckResults or dicts."""
    sums = {"core": [0.0, 0.0], "★": [0.0, 0.0], "free text": [0, 0]}
    for r in results:
        d = r if isinstance(r, dict) else r.to_dict()
        col = column_of(d["question"])
        if col == "free text":  # answered or not: a self-checked answer has no points to add
            sums[col][0] += d.get("status") == "passed"
            sums[col][1] += 1
        else:
            sums[col][0] += float(d["points"])
            sums[col][1] += float(d["max_points"])
    return {"core": tuple(sums["core"]), "star": tuple(sums["★"]), "free_text": tuple(sums["free text"])}
