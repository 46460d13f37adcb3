"""BigBird (Zaheer et al. 2020), ITC variant: window + global + random attention, all decided per block."""
from __future__ import annotations

import math

import numpy as np

from .base import CSR, Pattern, check_block, check_bool, check_int, check_n
from .block import block_rows_csr, block_sizes
from .random_pattern import any_match, draw_distinct


class BigBird(Pattern):
    """Block bi may see block bj if |bi-bj| <= window_blocks//2, bi < g or bj < g, or bj is one of bi's randoms.

    Each non-global row block draws `random_blocks` distinct column blocks (seeded) outside its window and the
    global blocks (causal: among earlier blocks only); with `causal`, token-level j <= i applies on top.
    """

    needs_n = True

    def __init__(self, block: int = 64, window_blocks: int = 3, global_blocks: int = 2, random_blocks: int = 3,
                 seed: int = 0, causal: bool = False):
        self.block = check_block(block)
        self.window_blocks = check_int("window_blocks", window_blocks, minimum=1)
        self.global_blocks = check_int("global_blocks", global_blocks, minimum=0)
        self.random_blocks = check_int("random_blocks", random_blocks, minimum=0)
        self.seed = check_int("seed", seed, minimum=0)
        self.causal = check_bool("causal", causal)
        self._tables: dict[int, np.ndarray] = {}

    def _params(self):
        return {"block": self.block, "window_blocks": self.window_blocks, "global_blocks": self.global_blocks,
                "random_blocks": self.random_blocks, "seed": self.seed, "causal": self.causal}

    # ---- the random blocks ----------------------------------------------------------------------------------------
    def random_blocks_for(self, n) -> np.ndarray:
        """(nb, random_blocks) random column blocks of every row block, ascending, padded with -1."""
        n = check_n(n)
        nb = math.ceil(n / self.block)
        if nb not in self._tables:
            if len(self._tables) >= 8:  # a few lengths are plenty; keep memory bounded
                self._tables.pop(next(iter(self._tables)))
            self._tables[nb] = self._draw(nb)
        return self._tables[nb]

    def _draw(self, nb: int) -> np.ndarray:
        g, half = self.global_blocks, self.window_blocks // 2
        bi = np.arange(nb, dtype=np.int64)
        left = np.maximum(0, bi - half - g)  # candidates g .. bi-half-1 (left of the window)
        right_start = np.maximum(bi + half + 1, g)  # candidates right_start .. nb-1 (right of the window)
        right = np.zeros(nb, np.int64) if self.causal else np.maximum(0, nb - right_start)
        counts = np.where(bi < g, 0, left + right)  # global row blocks already see everything
        x = draw_distinct(np.random.default_rng(self.seed), counts, self.random_blocks)  # (nb, r) in [0, counts)
        blocks = np.where(x < left[:, None], g + x, right_start[:, None] + x - left[:, None])  # monotone in x
        table = np.where(x < 0, -1, blocks)
        table.setflags(write=False)
        return table

    def _prepare(self, n):
        self.random_blocks_for(n)

    # ---- the rule and its views -------------------------------------------------------------------------------------
    def allowed(self, i, j, n):
        bi, bj = i // self.block, j // self.block
        g = self.global_blocks
        out = (abs(bi - bj) <= self.window_blocks // 2) | (bi < g) | (bj < g)
        out = out | any_match(self._tables[math.ceil(n / self.block)], bi, bj)
        return out & (j <= i) if self.causal else out

    def block_table(self, n) -> np.ndarray:
        """(nb, nb) exact block layout at this pattern's own block size."""
        table = self.random_blocks_for(n)  # validates n
        nb = table.shape[0]
        bi, bj = np.arange(nb)[:, None], np.arange(nb)[None, :]
        out = (abs(bi - bj) <= self.window_blocks // 2) | (bi < self.global_blocks) | (bj < self.global_blocks)
        rows, ks = np.nonzero(table >= 0)
        out[rows, table[rows, ks]] = True
        return out & (bj <= bi) if self.causal else out

    def block_layout(self, n, block) -> np.ndarray:
        n, block = check_n(n), check_block(block)
        return self.block_table(n) if block == self.block else super().block_layout(n, block)

    def _col_blocks(self, rb: int, nb: int) -> np.ndarray:
        """Ascending column blocks of row block rb."""
        g, half = self.global_blocks, self.window_blocks // 2
        if rb < g:
            return np.arange(nb)
        rand = self._tables[nb][rb]
        window = np.arange(max(0, rb - half), min(nb, rb + half + 1))
        return np.unique(np.concatenate([np.arange(min(g, nb)), window, rand[rand >= 0]]))

    def num_pairs(self, n) -> int:
        n = check_n(n)
        self._prepare(n)
        sizes = block_sizes(n, self.block)  # (nb,)
        nb, total = len(sizes), 0
        for rb in range(nb):
            cols = self._col_blocks(rb, nb)
            if self.causal:  # earlier blocks in full, the diagonal block as a triangle, later blocks not at all
                total += int(sizes[rb] * sizes[cols[cols < rb]].sum()) + int(sizes[rb] * (sizes[rb] + 1) // 2)
            else:
                total += int(sizes[rb] * sizes[cols].sum())
        return total

    def neighbors(self, n) -> CSR:
        n = check_n(n)
        self._prepare(n)
        nb = math.ceil(n / self.block)
        return block_rows_csr(n, self.block, lambda rb: self._col_blocks(rb, nb), self.causal, self.num_pairs(n))
