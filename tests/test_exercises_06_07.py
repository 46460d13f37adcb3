"""Exercises 06 (blocks) and 07 (flash): the solutions get full points, typical mistakes lose them, references agree
with the library."""
from __future__ import annotations

import math

import numpy as np
import pytest

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.grading import get_question, questions, run_question
from saattn_edu.grading.exercises import ex06, ex07
from solution_functions import solution_functions



@pytest.fixture(scope="module")
def sol06():
    return solution_functions("06_blocks.ipynb")


@pytest.fixture(scope="module")
def sol07():
    return solution_functions("07_flash.ipynb")


# ---- full points ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["block_layout", "wasted_fraction", "best_block_size", "residue_order"])
@pytest.mark.parametrize("seed", [1, 2])
def test_06_solutions_get_full_points(sol06, name, seed):
    r = run_question(get_question(f"ex06.{name}"), getattr(sol06, name), seed=seed)
    assert r.status == "passed" and r.points == r.max_points >= 4, r.report()


@pytest.mark.parametrize("name", ["online_softmax", "tile_update", "flash_forward", "block_sparse_flash"])
@pytest.mark.parametrize("seed", [1, 2])
def test_07_solutions_get_full_points(sol07, name, seed):
    r = run_question(get_question(f"ex07.{name}"), getattr(sol07, name), seed=seed)
    assert r.status == "passed" and r.points == r.max_points >= 4, r.report()


def test_value_questions(sol07):
    assert run_question(get_question("ex06.q5"), 136).passed
    assert run_question(get_question("ex06.q5"), 256).points == 0
    assert run_question(get_question("ex07.flash_memory"), sol07.flash_forward).passed


def test_at_least_four_checks_each():
    assert len(questions("ex06")) >= 4 and len(questions("ex07")) >= 4


# ---- the references agree with the library ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_06_references_match_the_library(seed):
    from saattn_edu import viz

    rng = np.random.default_rng(seed)
    for kind in ("random", "window", "strided", "ragged", "block 1", "wide block", "empty"):
        kw = ex06._mask_case(kind)(rng)
        mask, block = kw["mask"], kw["block"]
        expected = P.layout_from_csr(P.CSR.from_mask(mask), block)
        assert np.array_equal(ex06.ref_block_layout(mask, block), expected)
        assert ex06.ref_wasted_fraction(mask, block) == pytest.approx(
            viz.layout_stats(mask, block=block)["wasted_fraction"], abs=1e-12)
    from saattn_edu.accel.permute import permutation  # its NumPy part: the order the Triton path uses

    assert np.array_equal(ex06.ref_residue_order(50, 7), permutation(50, 7))


def test_07_tile_reference_matches_a_fresh_state():
    """Folding a tile into the state of earlier keys equals the state of all keys computed at once."""
    rng = np.random.default_rng(3)
    for kind in ("plain", "first", "larger max", "masked", "still empty", "large"):
        kw = ex07._tile_case(kind)(rng)
        acc, m, l = ex07.ref_tile_update(**kw)
        assert not np.isnan(acc).any() and not np.isnan(l).any() and not np.isnan(m).any()
        assert np.all(l >= 0) and np.array_equal(np.isneginf(m), l == 0)


# ---- mistakes lose points ---------------------------------------------------------------------------------------
def test_06_mistakes(sol06):
    mean_pick = lambda timings: min(timings, key=lambda b: np.mean(timings[b]))  # noqa: E731
    r = run_question(get_question("ex06.best_block_size"), mean_pick, seed=5)
    assert 0 < r.points < r.max_points and any(c.label == "one slow outlier" and c.status == "failed"
                                               for c in r.cases)
    full_tiles = lambda mask, block: 1.0 - mask.sum() / (sol06.block_layout(mask, block).sum() * block**2 or 1)  # noqa
    r = run_question(get_question("ex06.wasted_fraction"), full_tiles, seed=5)
    assert r.points < r.max_points
    cheat = lambda mask, block: P.layout_from_csr(P.CSR.from_mask(mask), block)  # noqa: E731
    assert run_question(get_question("ex06.block_layout"), cheat).status == "refused"


def test_07_mistakes(sol07):
    def no_max(x, block):
        e = np.exp(x)
        return e / e.sum(axis=1, keepdims=True)

    with np.errstate(all="ignore"):
        r = run_question(get_question("ex07.online_softmax"), no_max, seed=4)
    assert r.points < r.max_points and any("NaN" in line for c in r.cases for line in c.lines)

    def no_rescale(acc, m, l, s, v):
        m_new = np.maximum(m, s.max(axis=1))
        m_safe = np.where(np.isneginf(m_new), 0.0, m_new)
        p = np.exp(s - m_safe[:, None])
        return acc + p @ v, m_new, l + p.sum(axis=1)  # forgets alpha

    r = run_question(get_question("ex07.tile_update"), no_rescale, seed=4)
    assert r.points < r.max_points

    def mask_after(q, k, v, layout, block):  # computes every tile, masks afterwards: reads the NaN values
        allowed = ex07.expand_layout(layout, block, len(q), len(k))
        s = np.where(allowed, q @ k.T / math.sqrt(q.shape[1]), -np.inf)
        m = np.where(np.isneginf(s.max(1)), 0.0, s.max(1))
        p = np.exp(s - m[:, None])
        return p @ v / np.where(p.sum(1) > 0, p.sum(1), 1.0)[:, None]

    with np.errstate(all="ignore"):
        r = run_question(get_question("ex07.block_sparse_flash"), mask_after, seed=4)
    skipped = [c for c in r.cases if c.label == "skipped tiles are never read"]
    assert skipped[0].status == "failed" and r.points == r.max_points - 1

    cheat = lambda q, k, v, block_q, block_k: R.flash_attention(q, k, v, block_q, block_k)  # noqa: E731
    assert run_question(get_question("ex07.flash_forward"), cheat).status == "refused"

    def dense(q, k, v, block_q, block_k):  # right values, n² memory
        s = q @ k.T / math.sqrt(q.shape[1])
        p = np.exp(s - s.max(1, keepdims=True))
        return p @ v / p.sum(1, keepdims=True)

    r = run_question(get_question("ex07.flash_memory"), dense)
    assert r.points == 0 and "peak memory" in r.report()
