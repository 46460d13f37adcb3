"""Exercise notebooks 02–05: solutions grade full points, built exercises grade 0, the build is up to date."""
from __future__ import annotations

import json
import math
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.course.build import MANIFEST, exercise_bytes, sha256
from saattn_edu.grading import get_question, questions, run_question

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"ex02": "02_local_attention", "ex03": "03_global_tokens", "ex04": "04_bigbird",
             "ex05": "05_sparse_transformer"}


def _namespace(folder: str, name: str) -> types.SimpleNamespace:
    """Every function and answer the notebook defines (its `def` cells and `### BEGIN SOLUTION` value cells)."""
    ns = {"np": np, "P": P, "math": math, "check": lambda *a, **k: None}
    for cell in nbformat.read(ROOT / folder / f"{name}.ipynb", as_version=4).cells:
        src = cell.source
        if cell.cell_type == "code" and (src.startswith("def ") or src.startswith("### BEGIN")
                                         or src.startswith("# YOUR") or src.startswith("raise NotImplementedError")):
            try:
                exec(src, ns)
            except NotImplementedError:
                pass  # an exercise's top-level stub: its answer stays undefined
    return types.SimpleNamespace(**ns)


def _answer(ns, q):
    return getattr(ns, q.lookup_name, None)


CASES = [(ex, name) for ex in NOTEBOOKS for name in questions(ex)]


@pytest.mark.parametrize("ex, name", CASES)
def test_solution_gets_full_points(ex, name):
    ns = _namespace("solutions", NOTEBOOKS[ex])
    q = get_question(f"{ex}.{name}")
    for seed in (1, 2):
        r = run_question(q, _answer(ns, q), seed=seed)
        assert r.passed and r.points == r.max_points > 0, r.report()


@pytest.mark.parametrize("ex, name", CASES)
def test_exercise_gets_zero(ex, name):
    ns = _namespace("exercises", NOTEBOOKS[ex])
    q = get_question(f"{ex}.{name}")
    r = run_question(q, _answer(ns, q), seed=1)
    assert r.points == 0, r.report()


@pytest.mark.parametrize("ex", NOTEBOOKS)
def test_at_least_four_checks_and_build_up_to_date(ex):
    name = NOTEBOOKS[ex]
    assert len(questions(ex)) >= 4
    built = exercise_bytes(ROOT / "solutions" / f"{name}.ipynb")
    assert (ROOT / "exercises" / f"{name}.ipynb").read_bytes() == built, "run `saattn build-exercises`"
    manifest = json.loads((ROOT / "exercises" / MANIFEST).read_text())
    assert manifest[f"{name}.ipynb"] == sha256(built)
    sources = "\n".join(c.source for c in nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4).cells)
    for q in questions(ex).values():
        assert f'check("{q.id}"' in sources  # every question has its check cell


# ---- the graded timing check -------------------------------------------------------------------------------------
def _softmax(q, k, v, mask):
    s = np.where(mask, q @ k.T / math.sqrt(q.shape[1]), -np.inf)
    top = s.max(axis=1, keepdims=True)
    p = np.exp(s - np.where(np.isfinite(top), top, 0))
    total = p.sum(axis=1, keepdims=True)
    return (p @ v) / np.where(total > 0, total, 1)


def test_timing_check_fails_quadratic_and_refuses_the_library():
    q = get_question("ex02.linear_time")
    # A loaded CI core can flatten one fit (a slow small-n call); a quadratic answer must still fail on a rerun.
    runs = [run_question(q, _softmax_gather_quadratic) for _ in range(2)]
    assert any(r.points == 0 and "time grows as n^" in r.report() for r in runs), [r.report() for r in runs]
    cheat = lambda q, k, v, indptr, indices: R.sparse_attention(q, k, v, P.CSR(indptr, indices))  # noqa: E731
    assert "library's own solution" in run_question(q, cheat).report()
    zeros = lambda q, k, v, indptr, indices: np.zeros_like(q)  # noqa: E731
    assert "wrong values" in run_question(q, zeros).report()


def _softmax_gather_quadratic(q, k, v, indptr, indices):
    n = len(q)
    mask = np.zeros((n, n), dtype=bool)
    mask[np.repeat(np.arange(n), np.diff(indptr)), indices] = True
    for _ in range(3):  # the same n² work thrice: a larger quadratic term, less at the mercy of timer noise
        out = _softmax(q, k, v, mask)
    return out


# ---- property grading of BigBird's random blocks --------------------------------------------------------------------
def test_random_blocks_rules_catch_mistakes():
    q = get_question("ex04.random_blocks")
    ns = _namespace("solutions", NOTEBOOKS["ex04"])

    def in_window(nb, window_blocks, global_blocks, random_blocks, seed):
        t = ns.random_blocks(nb, window_blocks, global_blocks, random_blocks, seed)
        t[global_blocks:, 0] = np.arange(global_blocks, nb)  # the diagonal is inside the window
        return t

    def smallest(nb, window_blocks, global_blocks, random_blocks, seed):
        t = np.full((nb, random_blocks), -1, dtype=np.int64)
        for bi in range(global_blocks, nb):
            c = [bj for bj in range(global_blocks, nb) if abs(bi - bj) > window_blocks // 2][:random_blocks]
            t[bi, : len(c)] = c
        return t

    assert "not a candidate" in run_question(q, in_window, seed=3).report()
    assert "smallest candidates" in run_question(q, smallest, seed=3).report()
