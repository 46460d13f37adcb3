"""Issue 20: neighbour lists in O(nnz) from each family's structure, the structured sparse path (bands, tiles,
residue-permuted tiles, pair lists merged by log-sum-exp) against dense attention, and NaN isolation on every
path: a key or value a query cannot see never reaches it."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.patterns.base import csr_from_block_layout
from saattn_edu.reference import sparse, structured
from test_patterns import FAMILIES, brute

FP32_TOL = 1e-5
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def qkv(n, d=8, batch=(2,), seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((*batch, n, d)).astype(np.float32) for _ in range(3))


def family_case(draw, name):
    n = draw(st.integers(1, 40))
    return FAMILIES[name](draw, n)


# ----------------------------------------------------------------------------------------------------------------
# Neighbour lists: parameters larger than n, compositions, the block-layout helper
# ----------------------------------------------------------------------------------------------------------------
HUGE = 10**8


@pytest.mark.parametrize("pattern", [
    P.Strided(HUGE), P.Strided(HUGE, causal=False), P.AttentionSinks(HUGE, 4), P.AttentionSinks(2, HUGE),
    P.Fixed(HUGE, 3), P.Fixed(HUGE, HUGE, causal=False), P.DilatedWindow(HUGE, HUGE), P.SlidingWindow(HUGE),
    P.DilatedWindow(3, HUGE, causal=True), P.Longformer(HUGE, [], dilation=HUGE),
], ids=repr)
def test_parameters_larger_than_n_cost_nothing(pattern):
    for n in (0, 1, 10, 33):
        np.testing.assert_array_equal(pattern.neighbors(n).to_mask(), pattern.mask(n))


SMALL = st.sampled_from(["sliding", "dilated", "global", "strided", "fixed", "random", "block", "longformer",
                         "sinks", "causal", "dense", "bigbird"])


@FAST
@given(st.data(), SMALL, SMALL, st.booleans())
def test_union_and_intersection_merge_sorted_rows(data, a, b, union):
    n = data.draw(st.integers(1, 40))
    p, _, _ = FAMILIES[a](data.draw, n)
    q, _, _ = FAMILIES[b](data.draw, n)
    both = p | q if union else p & q
    csr = both.neighbors(n)
    want = p.mask(n) | q.mask(n) if union else p.mask(n) & q.mask(n)
    np.testing.assert_array_equal(csr.to_mask(), want)
    assert all(np.all(np.diff(csr.row(i)) > 0) for i in range(n))


@FAST
@given(st.integers(0, 40), st.integers(1, 9), st.booleans(), st.data())
def test_csr_from_block_layout(n, block, causal, data):
    nb = math.ceil(n / block)
    layout = np.array(data.draw(st.lists(st.booleans(), min_size=nb * nb, max_size=nb * nb)), bool).reshape(nb, nb)
    want = brute(lambda i, j: layout[i // block, j // block] and (j <= i or not causal), n)
    csr = csr_from_block_layout(layout, block, n, causal=causal)
    np.testing.assert_array_equal(csr.to_mask(), want)
    with pytest.raises(ValueError, match="layout must have shape"):
        csr_from_block_layout(np.ones((nb + 1, nb + 1), bool), block, n)


# ----------------------------------------------------------------------------------------------------------------
# The structured path against dense attention
# ----------------------------------------------------------------------------------------------------------------
@FAST
@given(st.data(), st.sampled_from(sorted(FAMILIES)))
def test_sparse_attention_equals_dense_every_family(data, name):
    p, _, n = family_case(data.draw, name)
    q, k, v = qkv(n, seed=data.draw(st.integers(0, 99)))
    want = R.dense_attention(q, k, v, mask=p.mask(n))
    np.testing.assert_allclose(R.sparse_attention(q, k, v, p), want, atol=FP32_TOL, rtol=0)


LONG = [  # lengths where the tiles matter: residue classes of 64+, full tiles, several waves per block row
    (P.Strided(3), 600), (P.Strided(5, causal=False), 700), (P.Fixed(64, 8), 700), (P.Fixed(20, 4, causal=False), 500),
    (P.Causal(), 700), (P.Dense(), 300), (P.SlidingWindow(400, causal=True), 900), (P.DilatedWindow(40, 3), 900),
    (P.AttentionSinks(70, 32), 800), (P.AttentionSinks(3, 300), 800), (P.Longformer(64, [0, 5, 333], causal=True), 700),
    (P.SlidingWindow(64, causal=True) | P.GlobalTokens([0]), 700), (P.BigBird(block=16, seed=3), 640),
    (P.BlockSparse(np.random.default_rng(1).random((12, 12)) < 0.3, 64), 760), (P.Axial2D(70, 9), 630),
    (P.Local2D(30, 25, 2), 750), (P.Strided(7) & P.SlidingWindow(300), 800), (P.RandomPattern(5, causal=True), 500),
    (P.SlidingWindow(300) | P.Strided(5), 700), (P.SlidingWindow(200, causal=True) | P.Strided(6, causal=False), 800),
]


@pytest.mark.parametrize("pattern,n", LONG, ids=[repr(p) for p, _ in LONG])
def test_structured_path_long(pattern, n, monkeypatch):
    monkeypatch.setattr(structured, "_KEYS_PER_ITEM", 256)  # long tile rows split over several waves
    q, k, v = qkv(n, d=16, batch=(1,), seed=n)
    want = R.dense_attention(q, k, v, mask=pattern.mask(n))
    np.testing.assert_allclose(R.sparse_attention(q, k, v, pattern), want, atol=FP32_TOL, rtol=0)


VIEWS = [P.Strided(3), P.Strided(4, causal=False), P.Axial2D(90, 5), P.Fixed(8, 3), P.Fixed(6, 2, causal=False),
         P.SlidingWindow(300) | P.Strided(5), P.SlidingWindow(300, causal=True) | P.Fixed(16, 4)]


@pytest.mark.parametrize("pattern", VIEWS, ids=repr)
def test_views_in_small_blocks(pattern, monkeypatch):
    """Residue classes as strided views and Fixed's summary key ranges: many query blocks, several key ranges
    each (the band and the ranges' ends inside them), a union's rule, batch 2, two threads."""
    monkeypatch.setattr(structured, "_CLASS_QUERIES", 16)
    monkeypatch.setattr(structured, "_CHUNK_ELEMENTS", 2**9)  # 16 keys a matmul: the band straddles ranges
    monkeypatch.setattr(sparse, "_THREADS", 2)
    n = 450
    q, k, v = qkv(n, d=8, batch=(2,), seed=7)
    want = R.dense_attention(q, k, v, mask=pattern.mask(n))
    np.testing.assert_allclose(R.sparse_attention(q, k, v, pattern), want, atol=FP32_TOL, rtol=0)
    blind = ~pattern.mask(n)[:, 200]
    for x in (k, v):  # a NaN in key 200 or its value: the rows that may not see it are unchanged
        x[:, 200, 3] = np.nan
        with np.errstate(invalid="ignore"):
            out = R.sparse_attention(q, k, v, pattern)
        np.testing.assert_allclose(out[:, blind], want[:, blind], atol=FP32_TOL, rtol=0)
        x[:, 200, 3] = 0.5


# ----------------------------------------------------------------------------------------------------------------
# NaN and inf in keys or values a query cannot see never reach it, on every path
# ----------------------------------------------------------------------------------------------------------------
def numpy_paths(q, k, v, p, n):
    blk = 4
    yield "sparse", R.sparse_attention(q, k, v, p)
    yield "sparse csr", R.sparse_attention(q, k, v, p.neighbors(n))
    yield "dense", R.dense_attention(q, k, v, mask=p.mask(n))
    yield "flash", R.flash_attention(q, k, v, block_q=4, block_k=4, mask=p)
    yield "block_sparse", R.block_sparse_attention(q, k, v, p.block_layout(n, blk), blk, mask=p.mask(n))


def torch_paths(q, k, v, p):
    import saattn_edu as sa

    torch = pytest.importorskip("torch")
    tq, tk, tv = (torch.as_tensor(x) for x in (q, k, v))
    for backend in ("torch", "gather"):
        yield backend, sa.attention(tq, tk, tv, p, backend=backend).numpy()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # rows that do see the NaN compute with it
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(sorted(FAMILIES)), st.sampled_from(["k", "v"]),
       st.sampled_from([np.nan, np.inf, -np.inf]))
def test_unseen_nan_never_reaches_a_query(data, name, where, bad):
    p, _, n = family_case(data.draw, name)
    q, k, v = qkv(n, batch=(1,), seed=data.draw(st.integers(0, 99)))
    j = data.draw(st.integers(0, n - 1))
    clean = R.dense_attention(q, k, v, mask=p.mask(n))
    poisoned = {"k": k, "v": v}[where].copy()
    poisoned[..., j, data.draw(st.integers(0, q.shape[-1] - 1))] = bad
    args = (q, poisoned, v) if where == "k" else (q, k, poisoned)
    blind = ~p.mask(n)[:, j]  # queries that may not see key j
    empty = ~p.mask(n).any(axis=1)
    for path, out in list(numpy_paths(*args, p, n)) + list(torch_paths(*args, p)):
        np.testing.assert_allclose(out[..., blind, :], clean[..., blind, :], atol=1e-5, rtol=0, err_msg=path)
        assert np.all(out[..., empty, :] == 0), path


@FAST
@given(st.integers(1, 200), st.integers(1, 5), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.booleans())
def test_bigbird_tiles_equal_dense(n, window, globals_, randoms, seed, causal):
    p = P.BigBird(16, window, globals_, randoms, seed=seed, causal=causal)  # block >= 16: the tile path
    q, k, v = qkv(n, seed=seed)
    want = R.dense_attention(q, k, v, mask=p.mask(n))
    np.testing.assert_allclose(R.sparse_attention(q, k, v, p), want, atol=FP32_TOL, rtol=0)


# ----------------------------------------------------------------------------------------------------------------
# The gather path: rows grouped by neighbour count, exact groups and padded power-of-two groups
# ----------------------------------------------------------------------------------------------------------------
def irregular_csr(draw, n_q, n_k):
    """Rows of random lengths (zero included), a few lengths shared by many rows, distinct ascending keys."""
    common = draw(st.lists(st.integers(0, n_k), min_size=1, max_size=3))
    counts = [draw(st.sampled_from(common) | st.integers(0, n_k)) for _ in range(n_q)]
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    rows = [np.sort(rng.choice(n_k, c, replace=False)) for c in counts] + [np.zeros(0, np.int64)]
    return P.CSR(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), np.concatenate(rows).astype(np.int32))


GATHER_KNOBS = st.tuples(st.sampled_from([1, 3, 10**6]), st.sampled_from([1, 7, 64, 2**12]), st.sampled_from([1, 2]))


def set_gather_knobs(monkeypatch, knobs):
    exact_rows, block, threads = knobs  # exact groups only, both kinds, padded only; blocks of 1 row or many
    monkeypatch.setattr(structured, "_EXACT_ROWS", exact_rows)
    monkeypatch.setattr(structured, "_GATHER_BLOCK", block)
    monkeypatch.setattr(structured, "_GATHER_JOB", 4 * block)
    monkeypatch.setattr(sparse, "_THREADS", threads)


@FAST
@given(st.data(), GATHER_KNOBS)
def test_gather_path_equals_dense(data, knobs):
    with pytest.MonkeyPatch.context() as mp:
        set_gather_knobs(mp, knobs)
        n_q, n_k = data.draw(st.integers(1, 60)), data.draw(st.integers(1, 40))
        csr = irregular_csr(data.draw, n_q, n_k)
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        q, k = (rng.standard_normal((2, m, 8)).astype(np.float32) for m in (n_q, n_k))
        v = rng.standard_normal((2, n_k, 5)).astype(np.float32)  # dv != d
        out = R.sparse_attention(q, k, v, csr)
        mask = csr.to_mask(n_k)
        np.testing.assert_allclose(out, R.dense_attention(q, k, v, mask=mask), atol=FP32_TOL, rtol=0)
        assert np.all(out[:, ~mask.any(axis=1)] == 0)  # rows with no neighbour: zeros, never NaN


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # rows that do see the NaN compute with it
@FAST
@given(st.data(), GATHER_KNOBS, st.sampled_from(["k", "v"]), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_gather_path_unseen_nan_never_reaches_a_query(data, knobs, where, bad):
    """Padded slots repeat a row's own key and are removed by selection: a non-finite key or value elsewhere,
    even the one a padded slot would have read, changes nothing for rows that may not see it."""
    with pytest.MonkeyPatch.context() as mp:
        set_gather_knobs(mp, knobs)
        n = data.draw(st.integers(1, 50))
        csr = irregular_csr(data.draw, n, n)
        q, k, v = qkv(n, seed=data.draw(st.integers(0, 99)))
        mask = csr.to_mask(n)
        clean = R.dense_attention(q, k, v, mask=mask)
        j = data.draw(st.integers(0, n - 1))
        poisoned = {"k": k, "v": v}[where].copy()
        poisoned[..., j, data.draw(st.integers(0, q.shape[-1] - 1))] = bad
        args = (q, poisoned, v) if where == "k" else (q, k, poisoned)
        blind = ~mask[:, j]
        for pattern_or_csr in (csr, P.Listed(csr)):  # a bare CSR, and the same list as a Pattern
            out = R.sparse_attention(*args, pattern_or_csr)
            np.testing.assert_allclose(out[..., blind, :], clean[..., blind, :], atol=FP32_TOL, rtol=0)
            assert np.all(out[..., ~mask.any(axis=1), :] == 0)


def test_gather_path_seen_inf_value_as_dense():
    """A padded row that sees an inf value gets inf, as dense attention does (its padding adds 0, not 0 · inf)."""
    csr = P.CSR(np.array([0, 3, 4, 5, 6]), np.array([0, 1, 2, 2, 2, 2]))  # row 0: 3 keys, padded to 4 slots
    q, k, v = qkv(4, batch=(1,), seed=3)
    v[..., 2, 0] = np.inf
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(structured, "_EXACT_ROWS", 10**6)  # every row padded to a power of two
        out = R.sparse_attention(q, k, v, csr)
    np.testing.assert_allclose(out, R.dense_attention(q, k, v, mask=csr.to_mask(4)), atol=FP32_TOL, rtol=0)
    assert np.isposinf(out[0, :3, 0]).all()


def test_gather_path_has_no_per_row_loop(monkeypatch):
    """A million-token-style gather runs in blocks of about `_GATHER_BLOCK` pairs, never one call per row."""
    calls = []
    block = structured._gather_block
    monkeypatch.setattr(structured, "_gather_block", lambda *a: calls.append(1) or block(*a))
    n, p = 20_000, P.RandomPattern(8, seed=1)
    q, k, v = qkv(n, d=8, batch=(1,), seed=5)
    out = R.sparse_attention(q, k, v, p)
    assert len(calls) <= 2 * p.num_pairs(n) // structured._GATHER_BLOCK + 2
    rows = np.random.default_rng(0).choice(n, 50, replace=False)  # spot-check rows against their own keys
    for i in rows:
        keys = p.neighbors(n).row(i)
        want = R.dense_attention(q[:, i : i + 1], k[:, keys], v[:, keys])
        np.testing.assert_allclose(out[:, i : i + 1], want, atol=FP32_TOL, rtol=0)
