"""Prefix LM (T5's prefix LM, UniLM, PaLI; attention-gym's `prefix_lm`): a bidirectional prefix, a causal rest."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_block, check_int, check_n, index_dtype


class PrefixLM(Pattern):
    """j < prefix or j <= i: every query sees the whole prefix (the prompt), then keys up to itself.

    Not `Causal() | GlobalTokens(range(prefix))`: that also makes the prefix *rows* see every later key, so the
    prompt would read the answer. Here a prefix row i < prefix sees exactly the prefix.
    """

    causal = False  # prefix rows see later prefix keys; not a causal pattern (effective_pattern leaves it as is)

    def __init__(self, prefix: int):
        self.prefix = check_int("prefix", prefix, minimum=0)

    def _params(self):
        return {"prefix": self.prefix}

    def allowed(self, i, j, n):
        return (j < self.prefix) | (j <= i)

    def _row_lengths(self, n: int) -> np.ndarray:
        """(n,) keys of row i: max(prefix, i + 1), never more than n; every row is the range 0..length-1."""
        return np.minimum(n, np.maximum(min(self.prefix, n), np.arange(1, n + 1, dtype=np.int64)))

    def num_pairs(self, n) -> int:
        n = check_n(n)
        p = min(self.prefix, n)  # p rows of p keys, then rows i >= p with i + 1 keys
        return p * p + n * (n + 1) // 2 - p * (p + 1) // 2

    def neighbors(self, n) -> CSR:
        """Row i is 0..max(prefix, i+1)-1: written straight from the lengths, O(nnz)."""
        n = check_n(n)
        lengths = self._row_lengths(n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # position t of row r holds t - indptr[r]: one arange minus each row's start, repeated over its keys
        indices = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        return CSR(indptr, indices.astype(index_dtype(n)))

    def block_layout(self, n, block) -> np.ndarray:
        """Block (bi, bj) has a pair when bj starts inside the prefix or bj <= bi: closed form."""
        n, block = check_n(n), check_block(block)
        nb = -(-n // block)
        bi, bj = np.arange(nb)[:, None], np.arange(nb)[None, :]
        return (bj * block < min(self.prefix, n)) | (bj <= bi)
