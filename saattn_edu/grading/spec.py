"""How an exercise module declares its questions: cases (random inputs), a reference, a comparison, hints."""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

_ID = re.compile(r"^(ex\d{2})\.(\w+)$")


@dataclass(frozen=True)
class Case:
    """One graded case: `make(rng)` draws the inputs (a dict of keyword arguments) afresh on every check."""

    label: str  # stable text, printed for passing cases (so a correct answer prints the same report every run)
    make: Callable[[np.random.Generator], dict]
    points: float = 1.0
    hint: str = ""


@dataclass(frozen=True)
class Question:
    """A graded question: the learner's function (or value) against `reference` on every case."""

    name: str  # "sliding_window_mask" -> check("ex01.sliding_window_mask", fn)
    number: int  # "Exercise N" in the notebook
    reference: Callable[..., Any]  # same signature as the learner's function (for a value question: no args)
    compare: Any  # a comparison from grading.compare: compare(expected, got) -> Verdict
    cases: tuple[Case, ...] = ()
    hint: str = ""
    kind: str = "function"  # "function": check(id, fn) | "value": check(id, value)
    answer_name: str = ""  # name the learner's answer has in the notebook (the grader looks it up); default name
    forbid: Callable[[], list] | None = None  # -> [(owner, attribute)]: library code that already solves it
    points: float = 1.0  # value questions: points for the single answer
    min_timeout: float = 0.0  # seconds a grading run gives it at least (kernels in Triton's interpreter are slow)
    exercise: str = field(default="", compare=False)  # "ex01", filled in by `questions()`

    @property
    def id(self) -> str:
        return f"{self.exercise}.{self.name}"

    @property
    def max_points(self) -> float:
        return float(sum(c.points for c in self.cases)) if self.kind == "function" else float(self.points)

    @property
    def lookup_name(self) -> str:
        return self.answer_name or self.name


def questions(exercise: str) -> dict[str, Question]:
    """All questions of one exercise notebook ("ex01"), by name, in notebook order."""
    if not re.fullmatch(r"ex\d{2}", str(exercise)):
        raise ValueError(f"exercise must look like 'ex01', got {exercise!r}")
    try:
        module = importlib.import_module(f"saattn_edu.grading.exercises.{exercise}")
    except ModuleNotFoundError:
        raise ValueError(f"exercise {exercise!r} has no checks (no saattn_edu/grading/exercises/{exercise}.py)")
    out = {}
    for q in module.QUESTIONS:
        object.__setattr__(q, "exercise", exercise)  # frozen dataclass: set once, here
        out[q.name] = q
    return out


def get_question(question_id: str) -> Question:
    """'ex01.sliding_window_mask' -> its Question; ValueError naming the id and the known ones otherwise."""
    m = _ID.match(str(question_id))
    if not m:
        raise ValueError(f"question_id must look like 'ex01.name', got {question_id!r}")
    known = questions(m.group(1))
    if m.group(2) not in known:
        names = ", ".join(f"{m.group(1)}.{k}" for k in known)
        raise ValueError(f"unknown question_id {question_id!r}; this notebook has: {names}")
    return known[m.group(2)]
