"""Sparse Transformer patterns (Child et al. 2019): strided and fixed factorisations of attention, O(n·√n)."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_bool, check_int, check_n
from .rows import run, segments_csr
from .window import _window_pairs


def _grid_pairs(n: int, stride: int) -> int:
    """Pairs at offsets i - j = k·stride, k >= 2 (one side): sum over k of n - k·stride."""
    k_max = (n - 1) // stride if n else 0
    if k_max < 2:
        return 0
    return (k_max - 1) * n - stride * (k_max * (k_max + 1) // 2 - 1)


class Strided(Pattern):
    """Causal: 0 <= i-j <= stride, or (i-j) % stride == 0 and j <= i.  Non-causal: |i-j| <= stride or on grid."""

    def __init__(self, stride: int, causal: bool = True):
        self.stride = check_int("stride", stride, minimum=1)
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"stride": self.stride, "causal": self.causal}

    def allowed(self, i, j, n):
        d = i - j
        on_grid = d % self.stride == 0
        if self.causal:
            return ((d >= 0) & (d <= self.stride)) | (on_grid & (j <= i))
        return (abs(d) <= self.stride) | on_grid

    def num_pairs(self, n) -> int:
        n, s = check_n(n), self.stride
        if self.causal:
            return _window_pairs(n, s, 0) + _grid_pairs(n, s)
        return _window_pairs(n, s, s) + 2 * _grid_pairs(n, s)

    def neighbors(self, n) -> CSR:
        """Grid keys before the band (one run every `stride`), the band, and (non-causal) the grid after it: O(nnz)."""
        n, s = check_n(n), self.stride
        i = np.arange(n, dtype=np.int64)
        before = run(i % s, i // s - 1, s)  # i % s, i % s + s, ..., up to i - 2s
        lo, hi = np.maximum(0, i - s), i if self.causal else np.minimum(n - 1, i + s)
        runs = [before, run(lo, hi - lo + 1)]
        if not self.causal:  # i + 2s, i + 3s, ... below n
            runs.append(run(i + 2 * s, (n - 1 - i) // s - 1, s))
        return segments_csr(n, runs)


class Fixed(Pattern):
    """j // stride == i // stride, or j % stride >= stride - c (the 'summary' keys); and j <= i when causal."""

    def __init__(self, stride: int, c: int, causal: bool = True):
        self.stride = check_int("stride", stride, minimum=1)
        self.c = check_int("c", c, minimum=1)
        if self.c > self.stride:
            raise ValueError(f"c must satisfy 1 <= c <= stride = {self.stride}, got {self.c}")
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"stride": self.stride, "c": self.c, "causal": self.causal}

    def allowed(self, i, j, n):
        out = (j // self.stride == i // self.stride) | (j % self.stride >= self.stride - self.c)
        if self.causal:
            return out & (j <= i)
        return out

    def _summary_keys(self, n: int) -> np.ndarray:
        keys = np.arange(n, dtype=np.int64)
        return keys[keys % self.stride >= self.stride - self.c]  # (≈ n·c/stride,)

    def num_pairs(self, n) -> int:
        n, s = check_n(n), self.stride
        sizes = np.minimum(s, n - s * np.arange(-(-n // s), dtype=np.int64))  # (nb,) rows per block
        blocks = self._summary_keys(n) // s  # block of every summary key
        if self.causal:  # own block: a triangle; a summary key j is also seen by every later block's rows
            own = int((sizes * (sizes + 1) // 2).sum())
            return own + int(np.maximum(0, n - (blocks + 1) * s).sum())
        return int((sizes * sizes).sum()) + int((n - sizes[blocks]).sum())

    def neighbors(self, n) -> CSR:
        """Summary keys before the own block, the own block (causal: up to i), summary keys after it: O(nnz)."""
        n, s = check_n(n), self.stride
        summary = self._summary_keys(n)  # (S,) ascending
        i = np.arange(n, dtype=np.int64)
        start = (i // s) * s  # first key of the own block
        before = np.searchsorted(summary, start)  # summary keys in earlier blocks
        end = i + 1 if self.causal else np.minimum(n, start + s)
        runs = [run(np.zeros(n), before, 1, summary), run(start, end - start)]
        if not self.causal:
            after = np.searchsorted(summary, start + s)
            runs.append(run(after, len(summary) - after, 1, summary))
        return segments_csr(n, runs)
