"""Top-k block selection (MoBA, Lu et al. 2025; NSA's selection branch, Yuan et al. 2025).

Keys are cut into blocks and each block is summarised by its mean key. A query block scores every key block by
the dot product of its mean query with the block's mean key and keeps the k best blocks; the current block is
always kept (its own tokens are the most likely to matter), and a causal selection only looks at blocks at or
before the query block. Mean-pooling the queries loses nothing in the score: q̄_I·k̄_J is 1/|I| times the sum of
the per-token gate scores q_i·k̄_J that MoBA computes, so the block picks the keys its tokens want on average.
The result is a block layout: exactly what a block-sparse kernel (FlashAttention-style tiles) consumes.
"""
from __future__ import annotations

import math

import numpy as np

from ._learned import LearnedPattern, check_qk, to_numpy
from .base import _is_torch, check_bool, check_int


def mean_pool_blocks(x, block: int):
    """(ceil(n / block), d) mean of each block of rows of x (n, d); the last block may be shorter."""
    n, d = x.shape
    nb = math.ceil(n / block)
    counts = np.minimum(block, n - block * np.arange(nb))[:, None]  # (nb, 1)
    if _is_torch(x):
        import torch

        padded = torch.cat([x, x.new_zeros((nb * block - n, d))])  # (nb·block, d)
        return padded.reshape(nb, block, d).sum(1) / torch.as_tensor(counts, dtype=x.dtype, device=x.device)
    padded = np.concatenate([x, np.zeros((nb * block - n, d), x.dtype)])  # (nb·block, d)
    return padded.reshape(nb, block, d).sum(1) / counts.astype(x.dtype)


def block_scores(q, k, block: int, causal: bool, include_local: bool):
    """(nb, nb) scores q̄_I·k̄_J; -inf where causality forbids, +inf on the diagonal when it is always kept."""
    s = mean_pool_blocks(q, block) @ mean_pool_blocks(k, block).T  # (nb, nb)
    nb = s.shape[0]
    lib = _lib(s)
    idx = lib.arange(nb)
    if causal:
        s = lib.where(idx[None, :] > idx[:, None], -math.inf, s)
    if include_local:
        s = lib.where(idx[None, :] == idx[:, None], math.inf, s)
    return s


def _lib(x):
    if _is_torch(x):
        import torch

        return torch
    return np


def topk_layout(scores, k: int):
    """(nb, nb) booleans: each row's k highest finite-or-+inf scores; ties go to the lower block index."""
    nb = scores.shape[0]
    kk = min(k, nb)
    if _is_torch(scores):
        import torch

        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :kk]  # (nb, kk)
        chosen = torch.gather(scores, 1, order) > -math.inf
        layout = torch.zeros((nb, nb), dtype=torch.bool, device=scores.device)
        return layout.scatter_(1, order, chosen)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :kk]  # (nb, kk)
    chosen = np.take_along_axis(scores, order, axis=1) > -math.inf
    layout = np.zeros((nb, nb), dtype=bool)
    np.put_along_axis(layout, order, chosen, axis=1)
    return layout


class TopKBlocks(LearnedPattern):
    """Each query block keeps its k best key blocks by mean-pooled score (the current one always included)."""

    def __init__(self, block: int = 64, k: int = 4, include_local: bool = True, *, causal: bool = False):
        self.block = check_int("block", block, minimum=1)
        self.k = check_int("k", k, minimum=1)
        self.include_local = check_bool("include_local", include_local)
        self._check_causal(causal)

    def _params(self):
        return {"block": self.block, "k": self.k, "include_local": self.include_local, "causal": self.causal}

    def select(self, q, k=None):
        """(nb, nb) block layout, nb = ceil(n / block), in the library of q (k counts the current block)."""
        q, k = check_qk(q, k)
        return topk_layout(block_scores(q, k, self.block, self.causal, self.include_local), self.k)

    def build(self, q, k=None):
        """`BlockSparse(layout, block)`, intersected with `Causal()` when causal."""
        from .block import BlockSparse
        from .dense import Causal

        pattern = BlockSparse(to_numpy(self.select(q, k)), self.block)
        return pattern & Causal() if self.causal else pattern

    def selection_cost(self, n: int, d: int) -> int:
        """Pooling q and k (2n·d adds), nb²·d for the block scores, nb²·log2 nb for the sort."""
        nb = math.ceil(n / self.block)
        return 2 * n * d + nb * nb * d + nb * nb * max(1, math.ceil(math.log2(max(nb, 2))))
