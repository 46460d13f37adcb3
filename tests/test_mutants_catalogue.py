"""Every plausible wrong answer of tests/mutants.py loses points on each of 20 seeds; the catalogue is complete."""
from __future__ import annotations

import functools

import pytest

from mutants import MUTANTS, NOTEBOOK
from saattn_edu.grading import get_question, questions, run_question
from solution_functions import solution_functions

SEEDS = range(20)
GRADED = [f"{ex}.{name}" for ex in NOTEBOOK for name in questions(ex)]


@functools.lru_cache(maxsize=None)
def _solutions(ex):
    return solution_functions(f"{NOTEBOOK[ex]}.ipynb")


def test_every_check_has_three_mutants():
    thin = {qid: len(MUTANTS.get(qid, {})) for qid in GRADED if len(MUTANTS.get(qid, {})) < 3}
    assert not thin, f"checks with fewer than three mutants: {thin}"
    assert not set(MUTANTS) - set(GRADED), f"mutants of unknown checks: {set(MUTANTS) - set(GRADED)}"


@pytest.mark.parametrize("qid", sorted(MUTANTS))
def test_every_mutant_loses_points_on_every_seed(qid):
    q = get_question(qid)
    ns = _solutions(qid.split(".")[0])
    survivors = []
    for name, make in MUTANTS[qid].items():
        answer = make(ns)
        for seed in SEEDS if q.kind != "value" else SEEDS[:1]:  # a value check draws nothing from its seed
            r = run_question(q, answer, seed=seed, timeout=60.0)
            if r.points >= r.max_points:
                survivors.append(f"{name!r} (seed {seed})")
                break
    assert not survivors, f"{qid}: full points for {', '.join(survivors)}"
