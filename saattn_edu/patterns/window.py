"""Sliding and dilated windows (Longformer, Mistral): each query sees a fixed-width neighbourhood, O(n·w)."""
from __future__ import annotations

import numpy as np

from .base import _CHUNK_ELEMENTS, CSR, Pattern, check_bool, check_int, check_n, index_dtype
from .rows import run, segments_csr


def _window_pairs(n: int, reach_left: int, reach_right: int) -> int:
    """Number of (i, j) with 0 <= i, j < n and -reach_left <= j - i <= reach_right (closed form)."""
    total = 0
    for reach in (reach_left, reach_right):  # offsets 1..reach on each side, each offset d gives n - d pairs
        r = min(reach, max(n - 1, 0))
        total += r * n - r * (r + 1) // 2
    return total + n  # the diagonal


def _band_csr(n: int, left: int, right: int) -> CSR:
    """Row i holds keys max(0, i-left) .. min(n-1, i+right), written chunk by chunk into one preallocated array.

    Rows are contiguous ranges, so no rule evaluation is needed: a million rows of 256 keys take ~1 s and the
    peak memory is the CSR itself plus one chunk.
    """
    i = np.arange(n, dtype=np.int64)
    lo = np.maximum(i - left, 0)  # (n,) first key of every row
    lengths = np.minimum(i + right, n - 1) - lo + 1  # (n,)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=index_dtype(n))
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // (left + right + 1))
    for a in range(0, n, rows_per_chunk):
        b = min(n, a + rows_per_chunk)  # key at flat position t of row r is t + (lo[r] - indptr[r])
        shift = np.repeat(lo[a:b] - indptr[a:b], lengths[a:b])
        indices[indptr[a] : indptr[b]] = shift + np.arange(indptr[a], indptr[b])
    return CSR(indptr, indices)


class SlidingWindow(Pattern):
    """Causal: 0 <= i - j < window.  Non-causal: |i - j| <= window // 2.

    Causal `window=W` is Mistral's / HF's `sliding_window=W` (W keys, itself included; tests/
    test_conformance_hf_windows.py). attention-gym's `sliding_window(w)` keeps w+1 keys and HF's bidirectional
    `sliding_window=w` means w per side: see `patterns.conventions` and docs/patterns.md.
    """

    def __init__(self, window: int, causal: bool = False):
        self.window = check_int("window", window, minimum=1)
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"window": self.window, "causal": self.causal}

    def _reach(self):
        return (self.window - 1, 0) if self.causal else (self.window // 2, self.window // 2)

    def allowed(self, i, j, n):
        d = i - j
        if self.causal:
            return (d >= 0) & (d < self.window)
        return abs(d) <= self.window // 2

    def band(self, n):
        return self._reach()

    def num_pairs(self, n) -> int:
        return _window_pairs(check_n(n), *self._reach())

    def neighbors(self, n) -> CSR:
        return _band_csr(check_n(n), *self._reach())


class DilatedWindow(Pattern):
    """SlidingWindow over (i - j) / dilation, keeping only keys with (i - j) % dilation == 0."""

    def __init__(self, window: int, dilation: int, causal: bool = False):
        self.window = check_int("window", window, minimum=1)
        self.dilation = check_int("dilation", dilation, minimum=1)
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"window": self.window, "dilation": self.dilation, "causal": self.causal}

    def _steps(self):
        """(left, right) reach measured in dilated steps."""
        return (self.window - 1, 0) if self.causal else (self.window // 2, self.window // 2)

    def allowed(self, i, j, n):
        d = i - j
        on_grid = d % self.dilation == 0
        steps = d // self.dilation
        if self.causal:
            return on_grid & (steps >= 0) & (steps < self.window)
        return on_grid & (abs(steps) <= self.window // 2)

    def band(self, n):
        left, right = self._steps()
        return left * self.dilation, right * self.dilation

    def num_pairs(self, n) -> int:
        n = check_n(n)
        left, right = self._steps()
        total = n  # the diagonal
        for reach in (left, right):  # step s (1..reach) is offset s*dilation: n - s*dilation pairs when positive
            s_max = min(reach, (n - 1) // self.dilation) if n else 0
            total += s_max * n - self.dilation * s_max * (s_max + 1) // 2
        return total

    def neighbors(self, n) -> CSR:
        """Row i: keys i - s·dilation for the steps s the window allows, one arithmetic run (O(nnz))."""
        n = check_n(n)
        left, right = self._steps()
        i = np.arange(n, dtype=np.int64)
        back = np.minimum(left, i // self.dilation)  # steps to the left that stay inside the sequence
        ahead = np.minimum(right, (n - 1 - i) // self.dilation)
        return segments_csr(n, [run(i - back * self.dilation, back + ahead + 1, self.dilation)])
