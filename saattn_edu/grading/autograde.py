"""The grader's last cell: check every question of a notebook against the names the learner defined.

`saattn grade` runs `grade_namespace("ex01", globals())` after the learner's cells, so a deleted or moved check
cell does not lose the points of a function that is there.
"""
from __future__ import annotations

from .report import CheckResult
from .runner import log_result, run_question
from .spec import questions


def grade_namespace(exercise: str, namespace: dict) -> list[CheckResult]:
    """Run every question of `exercise` on namespace[question.lookup_name]; log each result (source 'final')."""
    results = []
    for q in questions(exercise).values():
        if q.lookup_name in namespace:
            result = run_question(q, namespace[q.lookup_name])
        else:
            result = run_question(q, None if q.kind == "value" else _undefined(q.lookup_name))
            result.note = f"`{q.lookup_name}` is not defined in the notebook"
        log_result(result, source="final")
        results.append(result)
    return results


def _undefined(name: str):
    def undefined(**kwargs):
        raise NotImplementedError(f"{name} is not defined")

    return undefined
