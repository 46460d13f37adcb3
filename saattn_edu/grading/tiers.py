"""Point columns of a grade: core exercises, ★ challenge tasks, and self-checked free-text questions.

A ★ question is an ordinary Question whose name starts with `star_` (`ex05.star_fixed_csr`): it is graded like any
other, and a report shows its points in their own column. Free-text questions live in `freetext.py`.

Hook for the grading core (report.py / course/grade.py, owned elsewhere): call `columns(results)` on a notebook's
CheckResults (or their dicts) and show its three entries as separate columns.
"""
from __future__ import annotations

STAR_PREFIX = "star_"


def is_star(question_id: str) -> bool:
    """'ex05.star_fixed_csr' -> True: a ★ challenge task, graded in its own column."""
    return str(question_id).split(".")[-1].startswith(STAR_PREFIX)


def columns(results) -> dict:
    """{'core': (points, max), 'star': (points, max), 'free_text': (answered, asked)} over CheckResults or dicts."""
    from .freetext import FREE_TEXT_PREFIX

    core, star, free = [0.0, 0.0], [0.0, 0.0], [0, 0]
    for r in results:
        d = r if isinstance(r, dict) else r.to_dict()
        qid = d["question"]
        if qid.split(".")[-1].startswith(FREE_TEXT_PREFIX):
            free[0] += d.get("status") == "passed"
            free[1] += 1
            continue
        col = star if is_star(qid) else core
        col[0] += float(d["points"])
        col[1] += float(d["max_points"])
    return {"core": tuple(core), "star": tuple(star), "free_text": tuple(free)}
