"""Every NumPy reference path equals dense_attention with the pattern's mask, on fresh random inputs."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.patterns.base import CSR
from saattn_edu.reference import sparse as S
from saattn_edu.reference import structured

FP32_TOL = 1e-5
FP64_TOL = 1e-12


def rel_err(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(np.asarray(b, np.float64)), 1e-30))


def qkv(shape, dtype=np.float32, seed=0, dv=None):
    rng = np.random.default_rng(seed)
    q, k = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    v = rng.standard_normal((*shape[:-1], dv or shape[-1])).astype(dtype)
    return q, k, v


def _optional(name, *args, **kwargs):
    """A pattern written by another module, when it exists (the gallery grows in parallel)."""
    cls = getattr(P, name, None)
    return [pytest.param(cls(*args, **kwargs), id=f"{name}")] if cls is not None else []


class BandWithHoles(P.Pattern):
    """A banded rule whose rows i % 5 == 0 are empty: the band path must give 0 there, not NaN."""

    def allowed(self, i, j, n):
        return (abs(i - j) <= 3) & (i % 5 != 0) & ((i + j) % 3 != 1)

    def band(self, n):
        return (3, 3)


PATTERNS = [
    pytest.param(P.Dense(), id="dense"),
    pytest.param(P.Causal(), id="causal"),
    pytest.param(P.SlidingWindow(7), id="window7"),
    pytest.param(P.SlidingWindow(8, causal=True), id="window8-causal"),
    pytest.param(P.SlidingWindow(40), id="window40-wide"),  # band too wide for the band path: gather
    pytest.param(P.DilatedWindow(3, 2), id="dilated"),
    pytest.param(P.DilatedWindow(4, 3, causal=True), id="dilated-causal"),
    pytest.param(P.SlidingWindow(4) | P.Causal(), id="union"),
    pytest.param(P.Causal() & P.SlidingWindow(9), id="intersection"),
    pytest.param(BandWithHoles(), id="band-with-empty-rows"),
    *_optional("GlobalTokens", [0, 5]),
    *_optional("Strided", 8),
    *_optional("Fixed", 8, 2),
    *_optional("RandomPattern", 3, seed=1),
    *_optional("BlockSparse", np.random.default_rng(3).random((8, 8)) < 0.4, 8),
    *_optional("BigBird", block=8, window_blocks=3, global_blocks=1, random_blocks=1, seed=0),
    *_optional("Longformer", 6, global_indices=(0, 17)),
    *_optional("AttentionSinks", 2, 8),
    *_optional("Local2D", 6, 10, 1),
    *_optional("Axial2D", 6, 10),
]
SHAPES = [pytest.param((60, 16), id="n60"), pytest.param((2, 3, 60, 8), id="B2H3n60")]


def all_paths(q, k, v, pattern):
    """Each reference path applied to `pattern` (n = 60)."""
    n = q.shape[-2]
    yield "sparse(pattern)", R.sparse_attention(q, k, v, pattern)
    yield "sparse(csr)", R.sparse_attention(q, k, v, pattern.neighbors(n))
    if pattern.band(n) is not None:  # force the band path even where sparse_attention would gather
        yield "band", S._band_attention(q, k, v, pattern, 1 / math.sqrt(q.shape[-1]), pattern.band(n), block=16)
    yield "block_sparse", R.block_sparse_attention(q, k, v, pattern.block_layout(n, 16), 16, mask=pattern)
    yield "block_sparse(bool)", R.block_sparse_attention(q, k, v, pattern.block_layout(n, 8), 8, mask=pattern.mask(n))
    yield "flash", R.flash_attention(q, k, v, block_q=16, block_k=8, mask=pattern)
    yield "flash(bool)", R.flash_attention(q, k, v, block_q=7, block_k=32, mask=pattern.mask(n))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_path_equals_dense_fp32(pattern, shape):
    seed = np.random.SeedSequence().entropy % 2**32  # fresh inputs every run; the message names the seed
    q, k, v = qkv(shape, seed=seed)
    ref = R.dense_attention(q, k, v, mask=pattern.mask(shape[-2]))
    assert np.array_equal(ref, R.dense_attention(q, k, v, mask=pattern)), f"seed={seed}"
    for name, out in all_paths(q, k, v, pattern):
        assert out.dtype == np.float32 and out.shape == ref.shape, (name, f"seed={seed}")
        assert rel_err(out, ref) <= FP32_TOL, (name, f"seed={seed}", rel_err(out, ref))


@pytest.mark.parametrize("pattern", PATTERNS[:10])
def test_every_path_equals_dense_fp64(pattern):
    q, k, v = qkv((2, 60, 8), dtype=np.float64, seed=3)
    ref = R.dense_attention(q, k, v, mask=pattern)
    for name, out in all_paths(q, k, v, pattern):
        assert out.dtype == np.float64 and rel_err(out, ref) <= FP64_TOL, name


def test_float16_is_computed_in_fp32_and_cast_back():
    q, k, v = qkv((40, 8), dtype=np.float16)
    ref = R.dense_attention(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32))
    for out in (R.dense_attention(q, k, v), R.flash_attention(q, k, v, 16, 16),
                R.sparse_attention(q, k, v, P.Dense())):
        assert out.dtype == np.float16 and rel_err(out, ref) < 1e-3


def random_mask(rng, n_q, n_k, density, empty_rows):
    mask = rng.random((n_q, n_k)) < density
    mask[rng.choice(n_q, size=empty_rows, replace=False)] = False
    return mask


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
def test_empty_rows_give_zero_and_lse_minus_inf(causal):
    rng = np.random.default_rng(7)
    q, k, v = qkv((2, 2, 48, 8), seed=8)
    mask = random_mask(rng, 48, 48, 0.3, empty_rows=6)
    mask &= np.tril(np.ones((48, 48), bool)) if causal else True
    empty = ~mask.any(axis=1)
    ref = R.dense_attention(q, k, v, mask=mask)
    assert np.isfinite(ref).all() and np.all(ref[..., empty, :] == 0)
    layout = P.layout_from_csr(CSR.from_mask(mask), 16)
    paths = {
        "csr": R.sparse_attention(q, k, v, CSR.from_mask(mask)),
        "block_sparse": R.block_sparse_attention(q, k, v, layout, 16, mask=mask),
        "flash": R.flash_attention(q, k, v, 16, 16, mask=mask),
    }
    for name, out in paths.items():
        assert np.isfinite(out).all() and np.all(out[..., empty, :] == 0), name
        assert rel_err(out, ref) <= FP32_TOL, name
    _, lse = R.flash_attention(q, k, v, 16, 16, mask=mask, return_lse=True)
    assert np.all(np.isneginf(lse[..., empty])) and np.isfinite(lse[..., ~empty]).all()


def test_fully_masked_everything():
    q, k, v = qkv((3, 10, 4))
    mask = np.zeros((10, 10), bool)
    out, probs = R.dense_attention(q, k, v, mask=mask, return_probs=True)
    assert np.all(out == 0) and np.all(probs == 0)
    assert np.all(R.sparse_attention(q, k, v, CSR.from_mask(mask)) == 0)
    assert np.all(R.flash_attention(q, k, v, mask=mask) == 0)
    assert np.all(R.block_sparse_attention(q, k, v, np.zeros((1, 1), bool), 16) == 0)


@given(
    n_q=st.integers(1, 40), n_k=st.integers(1, 40), d=st.integers(1, 9), dv=st.integers(1, 9),
    density=st.floats(0.0, 1.0), seed=st.integers(0, 2**31), block=st.integers(1, 17),
)
def test_random_masks_cross_attention(n_q, n_k, d, dv, density, seed, block):
    """Arbitrary boolean masks (empty rows included), n_q != n_k, d_v != d: every path agrees with dense."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, n_q, d)).astype(np.float32)
    k, v = rng.standard_normal((2, n_k, d)).astype(np.float32), rng.standard_normal((2, n_k, dv)).astype(np.float32)
    mask = rng.random((n_q, n_k)) < density
    ref = R.dense_attention(q, k, v, mask=mask)
    csr = CSR.from_mask(mask)
    layout = np.zeros((-(-n_q // block), -(-n_k // block)), bool)
    layout[csr.row_ids() // block, csr.indices // block] = True
    for out in (R.sparse_attention(q, k, v, csr), R.flash_attention(q, k, v, block, block + 1, mask=mask),
                R.block_sparse_attention(q, k, v, layout, block, mask=mask)):
        assert out.shape == (2, n_q, dv) and np.isfinite(out).all()
        assert rel_err(out, ref) <= FP32_TOL


def test_block_sparse_without_mask_is_the_layout_expanded():
    q, k, v = qkv((2, 50, 8), seed=4)
    layout = np.random.default_rng(5).random((4, 4)) < 0.5
    token_mask = np.kron(layout, np.ones((16, 16), bool))[:50, :50]
    ref = R.dense_attention(q, k, v, mask=token_mask)
    assert rel_err(R.block_sparse_attention(q, k, v, layout, 16), ref) <= FP32_TOL


def test_bool_mask_broadcasts_over_batch_and_heads():
    q, k, v = qkv((2, 3, 30, 8), seed=9)
    mask = np.random.default_rng(1).random((3, 30, 30)) < 0.4  # one mask per head
    ref = R.dense_attention(q, k, v, mask=np.broadcast_to(mask, (2, 3, 30, 30)))
    assert rel_err(R.dense_attention(q, k, v, mask=mask), ref) <= FP32_TOL
    assert rel_err(R.flash_attention(q, k, v, 8, 8, mask=mask), ref) <= FP32_TOL
    assert rel_err(R.block_sparse_attention(q, k, v, np.ones((4, 4), bool), 8, mask=mask), ref) <= FP32_TOL


def test_huge_logits_stay_finite():
    """Logits of ±1e4: the row max is subtracted before exp, so nothing overflows."""
    rng = np.random.default_rng(2)
    q = rng.choice([-1.0, 1.0], size=(2, 32, 4)).astype(np.float32) * 100
    k = rng.choice([-1.0, 1.0], size=(2, 32, 4)).astype(np.float32) * 50  # logits up to ±1e4 with scale 1/2
    v = rng.standard_normal((2, 32, 4)).astype(np.float32)
    ref = R.dense_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), mask=P.Causal())
    pattern = P.SlidingWindow(5, causal=True)
    outs = [R.dense_attention(q, k, v, mask=P.Causal()), R.flash_attention(q, k, v, 8, 8, mask=P.Causal()),
            R.sparse_attention(q, k, v, P.Causal()), R.block_sparse_attention(q, k, v, np.ones((2, 2), bool), 16,
                                                                             mask=P.Causal())]
    for out in outs:
        assert np.isfinite(out).all() and rel_err(out, ref) <= FP32_TOL
    band = R.sparse_attention(q, k, v, pattern)
    assert np.isfinite(band).all() and rel_err(band, R.dense_attention(q, k, v, mask=pattern)) <= FP32_TOL


def test_probs_rows_sum_to_one_and_respect_the_mask():
    q, k, v = qkv((2, 40, 8))
    pattern = P.SlidingWindow(6, causal=True)
    out, probs = R.dense_attention(q, k, v, mask=pattern, return_probs=True)
    assert probs.shape == (2, 40, 40) and probs.dtype == np.float32
    assert np.allclose(probs.sum(-1), 1, atol=1e-6) and np.all(probs[:, ~pattern.mask(40)] == 0)
    assert rel_err(out, probs @ v) <= FP32_TOL


def test_lse_is_the_log_sum_exp_of_scaled_logits():
    q, k, v = qkv((2, 33, 8), dtype=np.float64, seed=11)
    mask = P.Causal().mask(33)
    s = np.where(mask, q @ np.swapaxes(k, -1, -2) * 0.3, -np.inf)
    expected = np.log(np.exp(s).sum(-1))
    out, lse = R.flash_attention(q, k, v, 8, 5, mask=mask, return_lse=True, scale=0.3)
    assert lse.shape == (2, 33) and np.allclose(lse, expected, rtol=1e-12)
    assert rel_err(out, R.dense_attention(q, k, v, mask=mask, scale=0.3)) <= FP64_TOL


def test_merge_partials_equals_attention_over_the_union():
    q, k, v = qkv((2, 20, 8), dtype=np.float64, seed=12)
    rng = np.random.default_rng(0)
    a = rng.random((20, 20)) < 0.3
    b = ~a & (rng.random((20, 20)) < 0.5)
    a[3], b[3] = False, False  # a row empty on both sides stays empty
    parts = [R.flash_attention(q, k, v, mask=m, return_lse=True) for m in (a, b)]
    out, lse = R.merge_partials(*parts[0], *parts[1])
    ref, ref_lse = R.flash_attention(q, k, v, mask=a | b, return_lse=True)
    assert rel_err(out, ref) <= FP64_TOL and np.allclose(lse, ref_lse)
    assert np.all(out[:, 3] == 0) and np.all(np.isneginf(lse[:, 3]))
    with pytest.raises(ValueError, match="merge_partials"):
        R.merge_partials(out, lse, out[:, :5], lse)


def test_band_path_has_no_per_row_loop():
    """The window fast path evaluates the rule once per chunk of query blocks, never once per row."""

    class Counting(P.SlidingWindow):
        calls = 0

        def allowed(self, i, j, n):
            Counting.calls += 1
            return super().allowed(i, j, n)

    n, pattern = 20_000, Counting(33)
    q, k, v = qkv((n, 8), seed=13)
    out = R.sparse_attention(q, k, v, pattern)
    assert 0 < Counting.calls <= 8
    ref = S._gather_attention(q, k, v, P.SlidingWindow(33).neighbors(n), 1 / math.sqrt(8))  # the other path
    assert rel_err(out, ref) <= FP32_TOL


@pytest.mark.parametrize("threads", [1, 2])
def test_chunks_in_threads_give_the_same_result(monkeypatch, threads):
    """Chunks write disjoint rows, so running them in threads changes nothing (small chunks: many of them)."""
    monkeypatch.setattr(S, "_THREADS", threads)
    monkeypatch.setattr(S, "_CHUNK_ELEMENTS", 2**12)
    monkeypatch.setattr(structured, "_GATHER_BLOCK", 2**6)
    monkeypatch.setattr(structured, "_GATHER_JOB", 2**8)
    q, k, v = qkv((2, 700, 8), seed=14)
    for pattern in (P.SlidingWindow(16, causal=True), P.Causal(), P.RandomPattern(5, causal=True)):
        ref = R.dense_attention(q, k, v, mask=pattern)
        assert rel_err(R.sparse_attention(q, k, v, pattern), ref) <= FP32_TOL


def test_noncontiguous_inputs():
    q, k, v = qkv((40, 2, 8))  # (n, H, d) -> view as (H, n, d)
    q, k, v = (np.swapaxes(x, 0, 1) for x in (q, k, v))
    pattern = P.SlidingWindow(5)
    ref = R.dense_attention(np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v), mask=pattern)
    assert rel_err(R.sparse_attention(q, k, v, pattern), ref) <= FP32_TOL
    assert rel_err(R.flash_attention(q, k, v, mask=pattern), ref) <= FP32_TOL


def test_default_scale_is_one_over_sqrt_d():
    q, k, v = qkv((20, 9))
    assert rel_err(R.dense_attention(q, k, v), R.dense_attention(q, k, v, scale=1 / 3)) <= 1e-7
    assert rel_err(R.sparse_attention(q, k, v, P.Dense(), scale=0.7), R.dense_attention(q, k, v, scale=0.7)) <= 1e-5


# ----------------------------------------------------------------------------------------------------------------
# Errors name the argument and the shape
# ----------------------------------------------------------------------------------------------------------------
ALL_FUNCS = [
    pytest.param(lambda q, k, v: R.dense_attention(q, k, v), id="dense"),
    pytest.param(lambda q, k, v: R.sparse_attention(q, k, v, P.Dense()), id="sparse"),
    pytest.param(lambda q, k, v: R.block_sparse_attention(q, k, v, np.ones((1, 1), bool), 16), id="block_sparse"),
    pytest.param(lambda q, k, v: R.flash_attention(q, k, v), id="flash"),
]


@pytest.mark.parametrize("fn", ALL_FUNCS)
def test_bad_inputs_raise_clear_errors(fn):
    q, k, v = qkv((2, 10, 4))
    with pytest.raises(TypeError, match=r"q must be a floating array.*int64"):
        fn(q.astype(np.int64), k, v)
    with pytest.raises(TypeError, match=r"v must be a floating"):
        fn(q, k, v > 0)
    with pytest.raises(TypeError, match="share a dtype"):
        fn(q, k.astype(np.float64), v)
    with pytest.raises(ValueError, match=r"leading.*\(3, 10, 4\)"):
        fn(q, np.concatenate([k, k[:1]]), v)
    with pytest.raises(ValueError, match=r"head dim d.*\(2, 10, 5\)"):
        fn(q, np.zeros((2, 10, 5), np.float32) + 1, v)
    with pytest.raises(ValueError, match=r"n_k.*\(2, 9, 4\)"):
        fn(q, k, v[:, :9])
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., n, d\)"):
        fn(q[0, 0], k, v)


def test_bad_masks_layouts_and_arguments():
    q, k, v = qkv((2, 10, 4))
    with pytest.raises(ValueError, match=r"mask of shape \(10, 9\)"):
        R.dense_attention(q, k, v, mask=np.ones((10, 9), bool))
    with pytest.raises(TypeError, match="mask must be a boolean"):
        R.flash_attention(q, k, v, mask=np.ones((10, 10)))
    with pytest.raises(ValueError, match=r"n_q == n_k.*n_q=10, n_k=8"):
        R.dense_attention(q, k[:, :8], v[:, :8], mask=P.Causal())
    with pytest.raises(ValueError, match="pattern_or_csr"):
        R.sparse_attention(q, k[:, :8], v[:, :8], P.Causal())
    with pytest.raises(ValueError, match=r"9 rows.*n_q=10"):
        R.sparse_attention(q, k, v, P.Causal().neighbors(9))
    bad = CSR(np.array([0, 1] + [1] * 9), np.array([10], np.int32))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, n_k=10\)"):
        R.sparse_attention(q, k, v, bad)
    with pytest.raises(TypeError, match="pattern_or_csr must be a Pattern or a CSR"):
        R.sparse_attention(q, k, v, np.ones((10, 10), bool))
    with pytest.raises(ValueError, match=r"layout must have shape.*\(3, 3\).*\(2, 2\)"):
        R.block_sparse_attention(q, k, v, np.ones((2, 2), bool), 4)
    with pytest.raises(ValueError, match="block must be >= 1"):
        R.block_sparse_attention(q, k, v, np.ones((1, 1), bool), 0)
    with pytest.raises(ValueError, match="block_k must be >= 1, got 0"):
        R.flash_attention(q, k, v, block_k=0)
    with pytest.raises(TypeError, match="scale must be a real number"):
        R.dense_attention(q, k, v, scale="0.5")
    with pytest.raises(ValueError, match="scale must be finite"):
        R.flash_attention(q, k, v, scale=float("nan"))


def test_empty_sequences_and_batches():
    for shape in ((2, 0, 4), (0, 5, 4)):
        q = np.ones(shape, np.float32)
        for out in (R.dense_attention(q, q, q), R.sparse_attention(q, q, q, P.SlidingWindow(1)),
                    R.flash_attention(q, q, q), R.sparse_attention(q, q, q, P.Causal())):
            assert out.shape == shape and out.dtype == np.float32
