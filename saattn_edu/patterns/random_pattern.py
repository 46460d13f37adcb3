"""Random attention (BigBird's R): every query attends to a few keys drawn at random, reproducibly from a seed."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_bool, check_int, check_n, index_dtype, lookup


def draw_distinct(rng: np.random.Generator, counts: np.ndarray, k: int) -> np.ndarray:
    """(rows, k) distinct ints in [0, counts[r]) per row, ascending, padded with -1 where counts[r] < k.

    Floyd's algorithm, vectorised over rows: k draws per row whatever counts is, so the cost is O(rows · k²)
    and never O(rows · counts). Rows with counts <= k take every value. The draws are kept slot by slot
    (k contiguous arrays of rows), so each step compares whole arrays, not short rows.
    """
    counts = np.asarray(counts, dtype=np.int64)
    chosen = np.empty((k, len(counts)), dtype=np.int64)  # (k, rows)
    for step in range(k):
        top = counts - k + step  # Floyd: draw x in [0, top]; if already taken, take top itself
        x = rng.integers(0, np.maximum(top, 0) + 1)  # (rows,)
        taken = np.zeros(len(counts), dtype=bool)
        for earlier in chosen[:step]:
            taken |= earlier == x
        chosen[step] = np.where(taken, top, x)
    table = np.sort(chosen.T, axis=1)  # (rows, k) ascending
    few = counts <= k  # fewer values than draws: all of them, already ascending, then the -1 padding
    slots = np.arange(k)[None, :]
    table[few] = np.where(slots < counts[few, None], slots, -1)
    return table


def any_match(table: np.ndarray, row, key):
    """table[row, k] == key for some k (vectorised for NumPy and torch; -1 padding never matches a key)."""
    out = (row < 0) & (key < 0)  # all False, broadcast shape
    for k in range(table.shape[1]):  # a loop over the few columns, not over values
        out = out | (lookup(table[:, k], row) == key)
    return out


class RandomPattern(Pattern):
    """Each query i attends to `num_random` distinct keys drawn at random (among j <= i when causal)."""

    needs_n = True

    def __init__(self, num_random: int, seed: int = 0, causal: bool = False):
        self.num_random = check_int("num_random", num_random, minimum=0)
        self.seed = check_int("seed", seed, minimum=0)
        self.causal = check_bool("causal", causal)
        self._tables: dict[int, np.ndarray] = {}

    def _params(self):
        return {"num_random": self.num_random, "seed": self.seed, "causal": self.causal}

    def keys_for(self, n) -> np.ndarray:
        """(n, num_random) drawn keys of every row, ascending, padded with -1 (only where fewer keys exist)."""
        n = check_n(n)
        if n not in self._tables:
            if len(self._tables) >= 8:  # a few lengths are plenty; keep memory bounded
                self._tables.pop(next(iter(self._tables)))
            counts = np.arange(1, n + 1) if self.causal else np.full(n, n)  # keys available to each row
            table = draw_distinct(np.random.default_rng(self.seed), counts, self.num_random)
            table.setflags(write=False)
            self._tables[n] = table
        return self._tables[n]

    def _prepare(self, n):
        self.keys_for(n)

    def allowed(self, i, j, n):
        return any_match(self._tables[n], i, j)

    def num_pairs(self, n) -> int:
        n, r = check_n(n), self.num_random
        if not self.causal:
            return n * min(r, n)
        m = min(r, n)  # rows 0..m-1 have only i+1 keys: 1 + 2 + ... + m, the rest get r each
        return m * (m + 1) // 2 + (n - m) * r

    def neighbors(self, n) -> CSR:
        """Straight from the drawn table: O(n · num_random)."""
        table = self.keys_for(n)
        valid = table >= 0
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=indptr[1:])
        return CSR(indptr, table[valid].astype(index_dtype(n)))
