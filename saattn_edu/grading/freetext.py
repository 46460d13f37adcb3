"""Free-text questions, self-checked: the learner writes a few sentences; the check counts the answer as answered and
then shows a model answer kept here, with the grader (the exercise notebook holds none).

Question ids look like `ex07.text_q6` (answer variable `q6_text`). `tiers.columns` lists them as answered / asked.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from .compare import Verdict
from .model_answers import MODEL_ANSWERS
from .spec import Question

FREE_TEXT_PREFIX = "text_"
MIN_WORDS = 12


def model_answer(question_id: str) -> str:
    return MODEL_ANSWERS[question_id]


@dataclass
class SelfChecked:
    """Answered when the learner's string has at least MIN_WORDS words; then the model answer is shown."""

    question_id: str

    def __call__(self, expected, got) -> Verdict:
        if got is None or got is Ellipsis or (isinstance(got, str) and not got.strip()):
            return Verdict(False, [], status="not attempted")
        if not isinstance(got, str):
            return Verdict(False, [f"expected your answer as a string of words, got a {type(got).__name__}"])
        words = len(got.split())
        if words < MIN_WORDS:
            return Verdict(False, [f"{words} words: write at least {MIN_WORDS} (a few sentences), then compare with "
                                   "the model answer this check shows"])
        print("model answer (compare it with yours; nobody scores the words):")
        print(textwrap.fill(model_answer(self.question_id), 110, initial_indent="  ", subsequent_indent="  "))
        return Verdict(True)


def text_question(exercise: str, number: int) -> Question:
    """The free-text question of exercise `number` in notebook `exercise` ('ex07'): id exNN.text_qN."""
    qid = f"{exercise}.{FREE_TEXT_PREFIX}q{number}"
    return Question(f"{FREE_TEXT_PREFIX}q{number}", number, kind="value", answer_name=f"q{number}_text", points=1,
                    reference=lambda: "", compare=SelfChecked(qid),
                    hint="A few sentences in your own words; the check then shows a model answer.")
