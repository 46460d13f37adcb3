"""Longformer (Beltagy et al. 2020): a (dilated) sliding window plus a few task-chosen global tokens."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_n
from .global_tokens import GlobalTokens, check_in_range, check_indices, global_csr, readable_indices
from .rows import merge_rows
from .window import DilatedWindow


def _pairs_within(g: np.ndarray, left: int, right: int, dilation: int) -> int:
    """#(a, b) in g×g with a - b = s·dilation, -right <= s <= left (g sorted, distinct)."""
    if len(g) == 0:
        return 0
    span = int(g[-1]) + 1
    lo, hi = min(left * dilation, span), min(right * dilation, span)  # no two positions differ by more
    keys = np.sort((g % dilation) * (2 * span + lo + hi + 1) + g)  # residue classes kept far apart
    return int((np.searchsorted(keys, keys + hi, "right") - np.searchsorted(keys, keys - lo, "left")).sum())


class Longformer(Pattern):
    """DilatedWindow(window, dilation, causal) | GlobalTokens(global_indices); all of it & (j <= i) when causal."""

    def __init__(self, window: int, global_indices=(), dilation: int = 1, causal: bool = False):
        self.local = DilatedWindow(window, dilation, causal)  # validates window, dilation, causal
        self.global_indices = check_indices("global_indices", global_indices)
        self.globals = GlobalTokens(self.global_indices)
        self.window, self.dilation, self.causal = self.local.window, self.local.dilation, self.local.causal

    def _params(self):
        return {"window": self.window, "global_indices": readable_indices(self.global_indices),
                "dilation": self.dilation, "causal": self.causal}

    def _prepare(self, n):
        check_in_range("global_indices", self.global_indices, n)

    def allowed(self, i, j, n):
        out = self.local.allowed(i, j, n) | self.globals.allowed(i, j, n)
        return out & (j <= i) if self.causal else out

    def num_pairs(self, n) -> int:
        """|window| + |global| - |both| (inclusion–exclusion), in O(g log g)."""
        n = check_n(n)
        self._prepare(n)
        g, d = np.asarray(self.global_indices, dtype=np.int64), self.dilation
        left, right = self.local._steps()
        if self.causal:  # global row x sees 0..x, global column x is seen by x..n-1
            glob = len(g) * (n + 1) - len(g) * (len(g) + 1) // 2
        else:
            glob = len(g) * (2 * n - len(g))
        ahead, behind = (n - 1 - g) // d, g // d  # dilated steps to the last / first position
        in_rows = np.minimum(left, behind) + np.minimum(right, ahead) + 1  # window keys of global row x
        in_cols = np.minimum(left, ahead) + np.minimum(right, behind) + 1  # window rows of global column x
        both = int(in_rows.sum() + in_cols.sum()) - _pairs_within(g, left, right, d)
        return self.local.num_pairs(n) + glob - both

    def neighbors(self, n) -> CSR:
        """The window's rows merged with the global rows and columns (causal: keys <= i): O(nnz)."""
        n = check_n(n)
        self._prepare(n)
        return merge_rows([self.local.neighbors(n), global_csr(n, self.global_indices, self.causal)], False)
