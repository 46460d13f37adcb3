"""Dense and causal attention: the O(n²) baselines every sparse pattern is measured against."""
from __future__ import annotations

import math

import numpy as np

from .base import CSR, Pattern, check_block, check_n
from .rows import run, segments_csr


class Dense(Pattern):
    """Every query attends to every key."""

    causal = False

    def allowed(self, i, j, n):
        return (i >= 0) | (j >= 0)  # all True, shaped like the broadcast of i and j

    def num_pairs(self, n) -> int:
        n = check_n(n)
        return n * n

    def neighbors(self, n) -> CSR:
        n = check_n(n)
        return segments_csr(n, [run(np.zeros(n), np.full(n, n))])

    def block_layout(self, n, block) -> np.ndarray:
        nb = math.ceil(check_n(n) / check_block(block))
        return np.ones((nb, nb), dtype=bool)


class Causal(Pattern):
    """Query i attends to keys j <= i (autoregressive decoding)."""

    causal = True

    def allowed(self, i, j, n):
        return j <= i

    def band(self, n):
        return (max(n - 1, 0), 0)

    def num_pairs(self, n) -> int:
        n = check_n(n)
        return n * (n + 1) // 2

    def neighbors(self, n) -> CSR:
        n = check_n(n)
        return segments_csr(n, [run(np.zeros(n), np.arange(1, n + 1))])

    def block_layout(self, n, block) -> np.ndarray:
        nb = math.ceil(check_n(n) / check_block(block))
        return np.tril(np.ones((nb, nb), dtype=bool))
