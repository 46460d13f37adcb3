"""Exercise 10 (learned sparsity): the solutions get full points, typical mistakes lose them, the library's own
selections are refused, and the checks' references agree with brute force."""
from __future__ import annotations

import numpy as np
import pytest

from saattn_edu import patterns as P
from saattn_edu.grading import get_question, questions, run_question
from saattn_edu.grading.exercises import ex10
from solution_functions import solution_functions

FUNCTIONS = ["lsh_buckets", "lsh_chunk_mask", "topk_block_layout", "captured_mass"]


@pytest.fixture(scope="module")
def sol10():
    return solution_functions("10_learned_sparsity.ipynb")


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("seed", [None, None])  # None: a fresh seed each run (printed in the report)
def test_solutions_get_full_points(sol10, name, seed):
    r = run_question(get_question(f"ex10.{name}"), getattr(sol10, name), seed=seed)
    assert r.status == "passed" and r.points == r.max_points > 0, r.report()


def test_at_least_four_checks_and_the_value_question():
    assert len(questions("ex10")) >= 4
    assert run_question(get_question("ex10.q5"), 32 * 32 + 7 * 32 * 64).passed
    assert run_question(get_question("ex10.q5"), 8 * 32 * 64).points == 0  # forgets that chunk 0 has no previous


def test_stubs_are_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 1: ...")

    for name in FUNCTIONS:
        r = run_question(get_question(f"ex10.{name}"), stub)
        assert r.status == "not attempted" and r.points == 0, r.report()


def test_mistakes_lose_points(sol10):
    def positive_only(x, rotations):  # argmax over xR alone: half the buckets never appear
        return np.argmax(x @ rotations, axis=1)

    assert run_question(get_question("ex10.lsh_buckets"), positive_only, seed=3).points == 0

    def no_bucket_test(buckets, chunk):  # the chunks are right but pairs of different buckets are kept
        n = len(buckets)
        order = np.lexsort((np.arange(n), buckets))
        rank = np.empty(n, dtype=int)
        rank[order] = np.arange(n)
        c = rank // chunk
        return (c[:, None] == c[None, :]) | (c[:, None] == c[None, :] + 1)

    r = run_question(get_question("ex10.lsh_chunk_mask"), no_bucket_test, seed=3)
    assert r.points < r.max_points

    def no_max(q, k, indptr, indices):  # overflows on large logits
        e = np.exp(q @ k.T / np.sqrt(q.shape[1]))
        p = e / e.sum(1, keepdims=True)
        return np.array([p[i, indices[indptr[i]:indptr[i + 1]]].sum() for i in range(len(q))])

    with np.errstate(all="ignore"):
        r = run_question(get_question("ex10.captured_mass"), no_max, seed=3)
    assert 0 < r.points < r.max_points
    assert [c.status for c in r.cases if c.label == "large logits"] == ["failed"]


def test_the_library_is_refused():
    cheat = lambda q, k, block, top, causal=False: P.TopKBlocks(block, top, causal=causal).select(q, k)  # noqa
    assert run_question(get_question("ex10.topk_block_layout"), cheat).status == "refused"


@pytest.mark.parametrize("seed", range(4))
def test_references_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    x, rot = rng.standard_normal((30, 6)), rng.standard_normal((6, 3))
    proj = x @ rot
    brute = np.array([int(np.argmax(np.r_[row, -row])) for row in proj])
    assert np.array_equal(ex10._ref_buckets(x, rot), brute)
    buckets = rng.integers(0, 4, 40)
    order = sorted(range(40), key=lambda t: (buckets[t], t))
    chunk_of = {t: r // 8 for r, t in enumerate(order)}
    mask = ex10._ref_chunk_mask(buckets, 8)
    for i in range(40):
        for j in range(40):
            near = chunk_of[j] in (chunk_of[i], chunk_of[i] - 1)
            assert mask[i, j] == (near and buckets[i] == buckets[j]), (i, j)
