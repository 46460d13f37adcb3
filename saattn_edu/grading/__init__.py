"""Graded exercises: `check("ex01.sliding_window_mask", fn)` in a notebook; `saattn grade` for whole notebooks.

Checks live in `saattn_edu/grading/exercises/exNN.py` (one module per exercise notebook), so they work the same
in JupyterLab, Colab and plain Python, with no notebook metadata.
"""
from .compare import ArrayClose, ArrayEqual, CSREqual, IntEqual, NumberClose, Verdict
from .report import CaseResult, CheckResult
from .runner import DEFAULT_TIMEOUT, check, run_question
from .spec import Case, Question, get_question, questions

__all__ = [
    "check", "run_question", "CheckResult", "CaseResult", "Case", "Question", "get_question", "questions",
    "ArrayEqual", "ArrayClose", "IntEqual", "NumberClose", "CSREqual", "Verdict", "DEFAULT_TIMEOUT",
]
