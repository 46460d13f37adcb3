"""Shared machinery of the data-dependent patterns: input checks, NumPy/torch dispatch, pairs -> CSR.

A learned pattern cannot be a rule of (i, j, n) alone: which keys a query sees depends on the vectors q and k.
Each method is therefore a small object whose `select(q, k)` computes the raw choice (buckets, clusters, block
layout, top-k indices) in the library of its inputs (NumPy or torch), and whose `build(q, k)` turns that choice
into a fixed object every attention path accepts: a `CSR` (token level) or a block `Pattern` (block level).
"""
from __future__ import annotations

import abc

import numpy as np

from .base import CSR, ParamsRepr, _is_torch, check_bool, check_int


def check_seed(seed) -> int:
    return check_int("seed", seed, minimum=0)


def check_qk(q, k, shared_ok: bool = False):
    """Validate q, k of shape (n, d); k=None means k = q (allowed for shared-QK methods only)."""
    if k is None:
        if not shared_ok:
            raise ValueError("k must be given (only shared-QK methods accept k=None)")
        k = q
    for name, x in (("q", q), ("k", k)):
        if not (_is_torch(x) or isinstance(x, np.ndarray)):
            raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
        if x.ndim != 2:
            raise ValueError(
                f"{name} must have shape (n, d), got {tuple(x.shape)}: select per head by looping over "
                "leading (batch, head) dims"
            )
    if _is_torch(q) != _is_torch(k):
        raise TypeError("q and k must both be NumPy arrays or both torch tensors")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.shape[0] == 0:
        raise ValueError("q must hold at least one token, got n=0")
    return q, k


def to_numpy(x) -> np.ndarray:
    """A torch tensor (any device) or array-like -> NumPy array."""
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def unit_rows(x):
    """Rows scaled to unit length (zero rows stay zero); works on NumPy and torch."""
    if _is_torch(x):
        return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def csr_from_unsorted_pairs(rows: np.ndarray, cols: np.ndarray, n: int) -> CSR:
    """CSR from (row, col) pairs in any order, duplicates merged (several hash rounds select a pair twice)."""
    key = np.sort(rows.astype(np.int64) * n + cols.astype(np.int64))  # row-major order
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key  # drop duplicates (np.unique is slower)
    return CSR.from_pairs(key // n, key % n, n)


def causal_filter(rows: np.ndarray, cols: np.ndarray):
    keep = cols <= rows
    return rows[keep], cols[keep]


class LearnedPattern(ParamsRepr, abc.ABC):
    """A data-dependent sparsity pattern: `build(q, k)` returns a fixed CSR or Pattern for that input."""

    causal: bool = False

    def _check_causal(self, causal):
        self.causal = check_bool("causal", causal)

    @abc.abstractmethod
    def select(self, q, k=None):
        """The raw selection (buckets, clusters, layout or indices), in the library of q and k."""

    @abc.abstractmethod
    def build(self, q, k=None):
        """A fixed `CSR` or `Pattern` telling which keys each query of this (q, k) attends to."""

    @abc.abstractmethod
    def selection_cost(self, n: int, d: int) -> int:
        """Multiply-adds (and comparisons) spent choosing the pairs, before any attention is computed."""

