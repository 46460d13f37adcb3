"""The anchor patterns of the GPU benchmarks (RECIPES.md): all causal, token-level, as `benchmarks/gpu_attention.py`.

    causal                 j <= i
    sliding_w1024          0 <= i - j < 1024
    longformer_w512_g64    j <= i and (i - j < 512 or j < 64 or i < 64)
    bigbird_blk128         j <= i and (qb - kb <= 1 or kb < 1 or R[qb, kb]), 3 random earlier 128-blocks per row
    strided_l256           Sparse Transformer strided, l = 256 (causal)
"""
from __future__ import annotations

import numpy as np

from ..patterns import Causal, Pattern, SlidingWindow
from ..patterns.sparse_transformer import Strided


class AnchorLongformer(Pattern):
    """j <= i and (i - j < window or j < g or i < g)."""

    causal = True

    def __init__(self, window=512, num_global=64):
        self.window, self.num_global = window, num_global

    def _params(self):
        return {"window": self.window, "num_global": self.num_global}

    def allowed(self, i, j, n):
        return (j <= i) & ((i - j < self.window) | (j < self.num_global) | (i < self.num_global))


class AnchorBigBird(Pattern):
    """Causal 128-blocks: j <= i and (qb - kb <= 1 or kb < 1 or R[qb, kb]), R = 3 random earlier blocks (seeded)."""

    causal = True
    needs_n = True

    def __init__(self, block=128, random_blocks=3, seed=0):
        self.block, self.random_blocks, self.seed = block, random_blocks, seed
        self._tables = {}

    def _params(self):
        return {"block": self.block, "random_blocks": self.random_blocks, "seed": self.seed}

    def _prepare(self, n):
        nb = -(-n // self.block)
        if nb not in self._tables:
            rng, table = np.random.default_rng(self.seed), np.zeros((nb, nb), dtype=bool)
            for qb in range(3, nb):  # candidates: blocks 1 .. qb-2 (outside window and global)
                table[qb, rng.choice(np.arange(1, qb - 1), size=min(self.random_blocks, qb - 2), replace=False)] = True
            self._tables[nb] = table
        self._table = self._tables[nb]

    def device_table(self, device):
        """The random-block table as a tensor on `device`, made outside compiled code (Flex cannot copy inside)."""
        key = (id(self._table), str(device))
        if getattr(self, "_dev_key", None) != key:
            import torch

            self._dev_key, self._dev_table = key, torch.as_tensor(self._table, device=device)
        return self._dev_table

    def allowed(self, i, j, n):
        qb, kb = i // self.block, j // self.block
        if type(i).__module__.startswith("torch"):
            t = self.device_table(i.device)
            rand = t[qb.clamp(0, t.shape[0] - 1), kb.clamp(0, t.shape[1] - 1)]
        else:
            rand = self._table[np.clip(qb, 0, self._table.shape[0] - 1), np.clip(kb, 0, self._table.shape[1] - 1)]
        return (j <= i) & ((qb - kb <= 1) | (kb < 1) | rand)


def anchor_patterns() -> dict:
    """name -> pattern, in the order of the benchmark tables."""
    return {"causal": Causal(), "sliding_w1024": SlidingWindow(1024, causal=True),
            "longformer_w512_g64": AnchorLongformer(), "bigbird_blk128": AnchorBigBird(),
            "strided_l256": Strided(256, causal=True)}
