"""Global tokens (Longformer, BigBird's ITC, [CLS]): a few positions see everything and are seen by everything."""
from __future__ import annotations

import numbers

import numpy as np

from .base import _CHUNK_ELEMENTS, CSR, Pattern, csr_from_rows, check_n, lookup
from .rows import run, segments_csr


# ----------------------------------------------------------------------------------------------------------------
# Neighbour lists from a few candidate keys per row (shared by the patterns with unbounded but sparse reach).
# ----------------------------------------------------------------------------------------------------------------
def candidate_csr(pattern: Pattern, n: int, candidates, width: int, nnz: int | None = None) -> CSR:
    """CSR whose row i holds the candidate keys j that `pattern.allowed(i, j, n)` accepts.

    `candidates(i)` gets a chunk of rows i (r, 1) and returns (rows, keys) pairs of broadcastable int arrays;
    duplicates and out-of-range keys are allowed (dropped here). `width` ≈ candidates per row sizes the chunks,
    so the time is O(n · width) instead of the O(n²) of evaluating the rule on every key.
    """
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(width, 1))

    def chunks():
        for start in range(0, n, rows_per_chunk):
            i = np.arange(start, min(n, start + rows_per_chunk), dtype=np.int64)[:, None]  # (r, 1)
            keys = [np.zeros(0, dtype=np.int64)]
            for rows, cols in candidates(i):
                rows, cols = np.broadcast_arrays(rows, cols)
                ok = (cols >= 0) & (cols < n)
                ok &= np.asarray(pattern.allowed(rows, cols, n), dtype=bool)
                keys.append(rows[ok] * n + cols[ok])  # row-major key: sorting it sorts rows, then keys
            keys = np.sort(np.concatenate(keys))  # (np.unique's hash path is ~30x slower on these)
            keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # duplicates removed
            rows = keys // n
            yield np.bincount(rows - start, minlength=len(i)), keys - rows * n

    return csr_from_rows(n, chunks(), nnz)


# ----------------------------------------------------------------------------------------------------------------
# GlobalTokens
# ----------------------------------------------------------------------------------------------------------------
def check_indices(name: str, indices) -> tuple:
    """Non-negative integer positions, duplicates removed, sorted; raise naming `name` otherwise."""
    if isinstance(indices, (numbers.Integral, str, bytes)) or not hasattr(indices, "__iter__"):
        raise TypeError(f"{name} must be an iterable of integer positions, got {indices!r}")
    out = set()
    for k in indices:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
            raise TypeError(f"{name} must hold integers, got {k!r} ({type(k).__name__}) in {name}")
        if k < 0:
            raise ValueError(f"{name} must be non-negative positions, got {int(k)}")
        out.add(int(k))
    return tuple(sorted(out))


def check_in_range(name: str, indices: tuple, n: int) -> None:
    """At view time every position must exist in a sequence of length n."""
    if indices and indices[-1] >= n:
        raise ValueError(f"{name} must lie in [0, n) = [0, {n}), got {indices[-1]} (n={n})")


def readable_indices(indices: tuple):
    """A contiguous run shows as range(a, b) in reprs (eval-able, short); anything else as a tuple."""
    if len(indices) >= 4 and indices[-1] - indices[0] == len(indices) - 1:
        return range(indices[0], indices[-1] + 1)
    return indices


class GlobalTokens(Pattern):
    """Query or key in G: global positions attend to everything and everything attends to them."""

    causal = False

    def __init__(self, indices):
        self.indices = check_indices("indices", indices)
        self._is_global = np.zeros(self.indices[-1] + 2 if self.indices else 1, dtype=bool)  # last entry False:
        self._is_global[list(self.indices)] = True  # lookup clamps larger positions onto it

    def _params(self):
        return {"indices": readable_indices(self.indices)}

    def _prepare(self, n):
        check_in_range("indices", self.indices, n)

    def allowed(self, i, j, n):
        return lookup(self._is_global, i) | lookup(self._is_global, j)

    def num_pairs(self, n) -> int:
        n = check_n(n)
        self._prepare(n)
        g = len(self.indices)
        return g * n + (n - g) * g  # global rows see n keys, the others see the g global keys

    def neighbors(self, n) -> CSR:
        n = check_n(n)
        self._prepare(n)
        return global_csr(n, self.indices)


def global_csr(n: int, indices, causal: bool = False) -> CSR:
    """Rows of G see every key (causal: keys <= i); other rows see the global keys (causal: those <= i). O(nnz)."""
    g = np.asarray(indices, dtype=np.int64)
    i = np.arange(n, dtype=np.int64)
    is_global = np.zeros(n, dtype=bool)
    is_global[g] = True
    seen = np.searchsorted(g, i, side="right") if causal else np.full(n, len(g))  # global keys <= i, or all
    everything = i + 1 if causal else np.full(n, n)
    return segments_csr(n, [run(np.zeros(n), np.where(is_global, 0, seen), 1, g),
                            run(np.zeros(n), np.where(is_global, everything, 0))])
