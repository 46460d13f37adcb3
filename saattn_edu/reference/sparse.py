"""Sparse attention in O(nnz·d): a Pattern goes through the structured path, a bare CSR through the gather path.

`sparse_attention` cuts a Pattern into disjoint pieces (`plan.py`: bands for windows, tiles for blocks, global
rows and columns and residue-permuted strided columns, pair lists for irregular patterns) and computes each with
BLAS, merged by log-sum-exp (`structured.py`). A CSR, whose structure is unknown, is gathered: its rows grouped by
neighbour count, each group one dense (count, rows, d) gather.
`_band_attention` (one band, the whole pattern's rule per tile) stays as the simplest blocked path to read.
Everything holds only a chunk of the work in memory at a time (about `_CHUNK_ELEMENTS` numbers), so a million
tokens fit in a few hundred MB beyond q, k, v and the output; nothing loops over rows in Python.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..patterns.base import CSR, Pattern
from ._inputs import check_csr, check_qkv, check_scale, check_square, flat3
from ._softmax import attend_tile

_CHUNK_ELEMENTS = 2**19  # band path: scores per chunk (2 MB in fp32: the passes over it stay in cache)
_THREADS = None  # None: one per available core when BLAS threads can be limited (threadpoolctl), else 1


def sparse_attention(q, k, v, pattern_or_csr, scale=None):
    """Attention of q (..., n_q, d) restricted to the pairs of a Pattern or a CSR, in O(nnz·d) time.

    A Pattern is cut into bands, tiles and pair lists that hold each allowed pair once (see `plan.py`), each
    computed with BLAS and merged exactly; a CSR (one row per query, indices into k's n_k) goes through the
    chunked gather. Only allowed pairs reach the output: a NaN or inf in a key or value a query cannot see never
    reaches it. Rows with no allowed key give 0.
    """
    q, k, v, out_dtype = check_qkv(q, k, v)
    scale = check_scale(scale, q.shape[-1])
    n_q, n_k = q.shape[-2], k.shape[-2]
    if q.size == 0 or v.size == 0:  # nothing to attend from, or nothing to attend to: rows stay 0
        if not isinstance(pattern_or_csr, (Pattern, CSR)):
            raise TypeError(f"pattern_or_csr must be a Pattern or a CSR, got {type(pattern_or_csr).__name__}")
        return np.zeros((*q.shape[:-1], v.shape[-1]), dtype=out_dtype)
    if isinstance(pattern_or_csr, Pattern):
        from .plan import plan
        from .structured import structured_attention

        n = check_square(n_q, n_k, "pattern_or_csr")
        pattern_or_csr._prepare(n)
        out = structured_attention(*flat3(q, k, v), plan(pattern_or_csr, n), scale)  # (B, n, dv)
        return out.reshape(*q.shape[:-1], v.shape[-1]).astype(out_dtype, copy=False)
    if isinstance(pattern_or_csr, CSR):
        csr = check_csr(pattern_or_csr, n_q, n_k)
    else:
        raise TypeError(f"pattern_or_csr must be a Pattern or a CSR, got {type(pattern_or_csr).__name__}")
    return _gather_attention(q, k, v, csr, scale).astype(out_dtype, copy=False)


def _for_each_chunk(fn, chunks):
    """Run fn on every chunk; with several cores, one thread per core (chunks write disjoint output rows).

    NumPy's element-wise loops (mask, max, exp, sum) use one core and release the GIL, so two threads on two
    cores halve them. Each thread's BLAS must then run single-threaded, or 2 threads × 2 BLAS threads fight
    over 2 cores: we only go parallel where threadpoolctl can set that limit (else BLAS alone uses the cores).
    """
    limit = _blas_limiter()
    workers = _THREADS or (_available_cores() if limit is not None else 1)
    if workers <= 1:
        for chunk in chunks:
            fn(chunk)
        return
    with limit() if limit else contextlib.nullcontext(), ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, chunks):  # re-raises the first exception of any chunk
            pass


def _blas_limiter():
    """A factory of context managers keeping BLAS on one thread per caller, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return lambda: threadpool_limits(limits=1, user_api="blas")


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may run on (taskset, containers)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ----------------------------------------------------------------------------------------------------------------
# Band path: query blocks against the key range their band allows (sliding windows of blocks, no per-row loop)
# ----------------------------------------------------------------------------------------------------------------
def band_block_size(left: int, right: int) -> int:
    """Query block size: wide enough for efficient matmuls, narrow enough that few keys outside the band are scored.

    A block of b queries scores b + left + right keys, so the waste is b / (band width): b is a power of two
    near a quarter of the band (64 for a 256-wide window), measured fastest on 2 cores.
    """
    quarter = max(1, (left + right + 1) // 4)
    return int(min(128, max(16, 1 << (quarter.bit_length() - 1))))


def _band_attention(q, k, v, pattern, scale: float, band, block: int | None = None):
    """Band path of `sparse_attention`; `band` = (left, right) reach of `pattern` for this n."""
    lead, n, dv = q.shape[:-2], q.shape[-2], v.shape[-1]
    left, right = int(band[0]), int(band[1])
    b = block or band_block_size(left, right)
    width = b + left + right  # keys seen by one query block
    q3, k3, v3 = flat3(q, k, v)  # (B, n, d): views for contiguous inputs
    num_blocks = -(-n // b)
    per_chunk = max(1, _CHUNK_ELEMENTS // (max(len(q3), 1) * b * width))  # query blocks per chunk
    out = np.empty((len(q3), n, dv), dtype=q.dtype)  # (B, n, dv)

    def run(g0):
        g1 = min(num_blocks, g0 + per_chunk)
        out[:, g0 * b : min(n, g1 * b)] = _band_chunk(q3, k3, v3, pattern, scale, g0, g1, b, left, width)

    _for_each_chunk(run, range(0, num_blocks, per_chunk))
    return out.reshape(*lead, n, dv)


def _band_chunk(q3, k3, v3, pattern, scale, g0, g1, b, left, width):
    """Output rows of query blocks g0..g1-1 (B, rows, dv): one batched matmul per chunk."""
    n, g = q3.shape[1], g1 - g0
    q_lo, q_hi = g0 * b, min(n, g1 * b)
    qc = _padded_rows(q3, q_lo, g1 * b).reshape(len(q3), g, b, -1)  # (B, g, b, d)
    k_lo, k_hi = q_lo - left, (g1 - 1) * b - left + width  # the union of the chunk's key ranges
    kc, vc = _padded_rows(k3, k_lo, k_hi), _padded_rows(v3, k_lo, k_hi)  # (B, L, d), (B, L, dv)
    # overlapping (width, d) windows, one per query block, as strided views: BLAS reads them in place, no copies
    kt = np.swapaxes(sliding_window_view(kc, width, axis=1)[:, ::b], -1, -2)  # (B, g, width, d)
    vt = np.swapaxes(sliding_window_view(vc, width, axis=1)[:, ::b], -1, -2)  # (B, g, width, dv)
    idx = np.int32 if n < 2**31 - width else np.int64
    starts = np.arange(q_lo, g1 * b, b, dtype=idx)[:, None, None]  # (g, 1, 1) first query of each block
    rows = starts + np.arange(b, dtype=idx)[:, None]  # (g, b, 1)
    cols = starts - left + np.arange(width, dtype=idx)  # (g, 1, width)
    allowed = np.asarray(pattern.allowed(rows, cols, n), dtype=bool)  # (g, b, width)
    if k_lo < 0 or k_hi > n:  # only chunks at the sequence ends see padding, which must never attend
        allowed = allowed & (rows < n) & (cols >= 0) & (cols < n)
    out, _ = attend_tile(qc, kt, vt, allowed, scale)  # (B, g, b, dv)
    return out.reshape(len(q3), g * b, -1)[:, : q_hi - q_lo]


def _padded_rows(x3, lo: int, hi: int):
    """x3[:, lo:hi] with zero rows where lo < 0 or hi > n: a view except at the sequence ends."""
    n = x3.shape[1]
    inner = x3[:, max(lo, 0) : min(hi, n)]
    if lo >= 0 and hi <= n:
        return inner
    pad = ((0, 0), (max(0, -lo), max(0, hi - n)), (0, 0))
    return np.pad(inner, pad)


# ----------------------------------------------------------------------------------------------------------------
# Gather path: a CSR's rows grouped by neighbour count, each group a dense gather (`structured._run_pairs`)
# ----------------------------------------------------------------------------------------------------------------
def _gather_attention(q, k, v, csr: CSR, scale: float):
    """Gather path of `sparse_attention`: O(nnz·d) time, blocks of about `structured._GATHER_BLOCK` pairs."""
    from .pieces import Pairs
    from .structured import structured_attention

    lead, n_q, dv = q.shape[:-2], q.shape[-2], v.shape[-1]
    out = structured_attention(*flat3(q, k, v), [Pairs(csr, None)], scale)  # (B, n_q, dv), empty rows 0
    return out.reshape(*lead, n_q, dv)
