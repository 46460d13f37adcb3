"""Shared argument checks for the NumPy references: arrays, dtypes, shapes, scale and masks.

Every public reference function starts here, so a wrong shape or dtype gives the same clear message everywhere.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..patterns.base import CSR, Pattern

_COMPUTE = {np.dtype(np.float16): np.dtype(np.float32)}  # fp16 has too little range for exp/sum: compute in fp32


def as_float_array(name: str, x) -> np.ndarray:
    """`x` as a floating NumPy array of at least 2 dims, or TypeError / ValueError naming `name`."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be a floating array (float16/32/64), got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., n, d), got shape {arr.shape}")
    return arr


def check_qkv(q, k, v):
    """Validate q (..., n_q, d), k (..., n_k, d), v (..., n_k, d_v); return them in the compute dtype + out dtype."""
    q, k, v = as_float_array("q", q), as_float_array("k", k), as_float_array("v", v)
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k, v must share a dtype, got q {q.dtype}, k {k.dtype}, v {v.dtype}")
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(
            f"q, k, v must share leading (batch, head) dims, got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the head dim d, got q {q.shape} and k {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys n_k, got k {k.shape} and v {v.shape}")
    if q.shape[-1] == 0:
        raise ValueError(f"q must have a head dim d >= 1, got shape {q.shape}")
    out_dtype = q.dtype
    work = _COMPUTE.get(out_dtype, out_dtype)
    if work != out_dtype:
        q, k, v = q.astype(work), k.astype(work), v.astype(work)
    return q, k, v, out_dtype


def flat3(*arrays):
    """Merge the leading (batch, head) dims: (..., n, d) -> (B, n, d), a view for contiguous arrays."""
    batch = math.prod(arrays[0].shape[:-2])
    return tuple(x.reshape(batch, *x.shape[-2:]) for x in arrays)


def check_scale(scale, d: int) -> float:
    """Softmax temperature: 1/sqrt(d) by default, else a finite real number."""
    if scale is None:
        return 1.0 / math.sqrt(d)
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a real number or None, got {scale!r}")
    if not math.isfinite(float(scale)):
        raise ValueError(f"scale must be finite, got {scale!r}")
    return float(scale)


def check_square(n_q: int, n_k: int, what: str) -> int:
    """Patterns describe n×n attention: self-attention only."""
    if n_q != n_k:
        raise ValueError(f"{what} is a Pattern, which needs n_q == n_k (self-attention), got n_q={n_q}, n_k={n_k}")
    return n_q


def check_bool_mask(mask, lead: tuple, n_q: int, n_k: int) -> np.ndarray:
    """A boolean mask broadcastable to (*lead, n_q, n_k), returned with that many dims but not broadcast."""
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array or a Pattern, got dtype {arr.dtype}")
    target = (*lead, n_q, n_k)
    try:
        np.broadcast_shapes(arr.shape, target)
        if arr.ndim > len(target):
            raise ValueError
    except ValueError:
        raise ValueError(f"mask of shape {arr.shape} does not broadcast to (..., n_q, n_k) = {target}") from None
    return arr.reshape((1,) * (len(target) - arr.ndim) + arr.shape)  # size-1 dims stay 1: no n×n copies


def resolve_mask(mask, lead: tuple, n_q: int, n_k: int):
    """None, a Pattern (returned as is, evaluated per tile) or a boolean array with (*lead, n_q, n_k)'s ndim."""
    if mask is None:
        return None
    if isinstance(mask, Pattern):
        check_square(n_q, n_k, "mask")
        mask._prepare(n_q)  # patterns with per-n tables (random) build them before `allowed` is evaluated
        return mask
    if isinstance(mask, CSR):
        raise TypeError("mask must be a boolean array or a Pattern, got a CSR (use sparse_attention for a CSR)")
    return check_bool_mask(mask, lead, n_q, n_k)


def mask_tile(mask, rows, cols, n_q: int, n_k: int):
    """Allowed pairs for query rows `rows` (r, 1) and key cols `cols` (1, c), or None when all are allowed.

    `mask` comes from `resolve_mask`: a Pattern is evaluated on the tile only, a boolean array is indexed.
    Rows / cols out of range are never allowed (tiles are padded at the sequence ends).
    """
    if mask is None:
        return None
    inside = (rows >= 0) & (rows < n_q) & (cols >= 0) & (cols < n_k)  # (r, c)
    if isinstance(mask, Pattern):
        return np.asarray(mask.allowed(rows, cols, n_q), dtype=bool) & inside
    r = np.minimum(np.clip(rows, 0, n_q - 1), mask.shape[-2] - 1)  # a size-1 (broadcast) dim indexes 0
    c = np.minimum(np.clip(cols, 0, n_k - 1), mask.shape[-1] - 1)
    return mask[..., r, c] & inside  # (*mask lead, r, c)


def check_csr(csr, n_q: int, n_k: int) -> CSR:
    """A CSR with one row per query and column indices inside [0, n_k)."""
    indptr, indices = np.asarray(csr.indptr), np.asarray(csr.indices)
    if indptr.ndim != 1 or len(indptr) != n_q + 1:
        raise ValueError(f"pattern_or_csr has {len(indptr) - 1} rows (indptr shape {indptr.shape}), q has n_q={n_q}")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != len(indices):
        raise ValueError("pattern_or_csr.indptr must start at 0, never decrease and end at len(indices)")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_k):
        raise ValueError(
            f"pattern_or_csr.indices must lie in [0, n_k={n_k}), got range [{indices.min()}, {indices.max()}]"
        )
    return CSR(indptr.astype(np.int64, copy=False), indices)
