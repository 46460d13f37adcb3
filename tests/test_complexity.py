"""FLOP / byte counters, power-law fits and the timer."""
import dataclasses
import math

import numpy as np
import pytest

from saattn_edu import complexity as C
from saattn_edu import patterns as P


def test_flops_dense_gather_block_sparse():
    n, d = 1000, 64
    window = P.SlidingWindow(64, causal=True)
    assert C.attention_flops(P.Dense(), n, d, execution="dense") == 4 * n * n * d
    assert C.attention_flops(window, n, d, execution="dense") == 4 * n * n * d  # dense execution ignores sparsity
    assert C.attention_flops(window, n, d) == 4 * window.num_pairs(n) * d  # default: gather
    assert C.attention_flops(P.Causal(), n, d, execution="gather") == 4 * (n * (n + 1) // 2) * d
    active = int(window.block_layout(n, 32).sum())
    assert C.attention_flops(window, n, d, execution="block_sparse", block=32) == 4 * active * 32 * 32 * d
    assert C.attention_flops(window, n, d, execution="block_sparse") == (
        4 * int(window.block_layout(n, 64).sum()) * 64 * 64 * d  # block defaults to 64
    )


def test_counts_accept_a_csr():
    mask = np.random.default_rng(0).random((50, 50)) < 0.2
    csr = P.CSR.from_mask(mask)
    assert C.attention_pairs(csr, 50) == mask.sum()
    assert C.attention_flops(csr, 50, 8) == 4 * int(mask.sum()) * 8
    layout = P.layout_from_csr(csr, 16)
    assert C.attention_pairs(csr, 50, execution="block_sparse", block=16) == layout.sum() * 256
    with pytest.raises(ValueError, match="CSR with 50 rows, but n=49"):
        C.attention_flops(csr, 49, 8)


def test_block_sparse_pairs_bound_the_gather_pairs():
    """Whole tiles include pairs the pattern does not allow: block-sparse >= gather, and = for aligned blocks."""
    n = 512
    for pattern in (P.SlidingWindow(50, causal=True), P.DilatedWindow(8, 4), P.Causal()):
        assert C.attention_pairs(pattern, n, "block_sparse", 32) >= C.attention_pairs(pattern, n, "gather")
    aligned = P.BlockSparse(np.eye(8, dtype=bool), 64) if hasattr(P, "BlockSparse") else None
    if aligned is not None:
        assert C.attention_pairs(aligned, n, "block_sparse", 64) == C.attention_pairs(aligned, n, "gather")


def test_bytes_follow_the_documented_formulas():
    n, d = 1024, 64
    w = P.SlidingWindow(128, causal=True)
    pairs = w.num_pairs(n)
    assert C.attention_bytes(w, n, d, np.float32, execution="dense") == (4 * n * d + 2 * n * n) * 4
    assert C.attention_bytes(w, n, d, "float16", execution="gather") == 2 * n * d * 2 + pairs * (2 * d * 2 + 4) + (
        n + 1
    ) * 8
    active = int(w.block_layout(n, 64).sum())
    assert C.attention_bytes(w, n, d, "bf16", execution="block_sparse") == 2 * n * d * 2 + active * 2 * 64 * d * 2 + 256
    # gather re-reads a K and a V row per pair (2·w·d per query) where dense writes and reads n scores per query
    gather, dense = C.attention_bytes(w, 2**16, d), C.attention_bytes(w, 2**16, d, execution="dense")
    assert 5 < dense / gather < 10


def test_dtype_bytes():
    assert C.dtype_bytes(np.float64) == 8 and C.dtype_bytes("float32") == 4 and C.dtype_bytes(np.dtype("f2")) == 2
    assert C.dtype_bytes("bf16") == 2 and C.dtype_bytes("BFloat16") == 2
    with pytest.raises(TypeError, match="dtype must be"):
        C.dtype_bytes(object())


def test_bad_counter_arguments():
    with pytest.raises(ValueError, match="execution must be one of"):
        C.attention_flops(P.Dense(), 10, 4, execution="sparse")
    with pytest.raises(TypeError, match="pattern must be a Pattern or a CSR"):
        C.attention_flops("dense", 10, 4)
    with pytest.raises(ValueError, match="d must be >= 1, got 0"):
        C.attention_flops(P.Dense(), 10, 0)
    with pytest.raises(ValueError, match="n must be >= 0"):
        C.attention_bytes(P.Dense(), -1, 4)
    with pytest.raises(ValueError, match="block must be >= 1"):
        C.attention_flops(P.Dense(), 10, 4, execution="block_sparse", block=0)


def test_fit_power_law_recovers_exponent_and_constant():
    ns = np.array([1e3, 2e3, 4e3, 8e3, 16e3])
    exponent, constant = C.fit_power_law(ns, 3e-9 * ns**1.5)
    assert math.isclose(exponent, 1.5, rel_tol=1e-9) and math.isclose(constant, 3e-9, rel_tol=1e-6)
    noisy = 2e-6 * ns**2 * np.random.default_rng(0).uniform(0.9, 1.1, len(ns))
    assert abs(C.fit_power_law(list(ns), list(noisy))[0] - 2) < 0.1


def test_fit_power_law_rejects_bad_data():
    with pytest.raises(ValueError, match="same length"):
        C.fit_power_law([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        C.fit_power_law([4, 4], [1, 2])
    with pytest.raises(ValueError, match="positive"):
        C.fit_power_law([1, 2], [0.0, 1.0])


def test_time_fn_warms_up_repeats_and_summarises():
    calls = []

    def work(x, scale=1):
        calls.append(x * scale)
        return sum(range(1000))

    t = C.time_fn(work, 2, warmup=2, repeats=3, scale=5)
    assert calls == [10] * 5 and len(t.times) == 3
    assert t.min <= t.median <= t.max and t.spread == t.max - t.min and t.min > 0
    assert repr(t).startswith("Timing(median=") and "repeats=3" in repr(t)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.median = 0.0


def test_time_fn_rejects_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        C.time_fn(3)
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        C.time_fn(print, repeats=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        C.time_fn(print, warmup=-1)
