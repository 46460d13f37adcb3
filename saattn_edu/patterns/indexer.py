"""DeepSeek Sparse Attention's indexer (DeepSeek-V3.2, 2025): a cheap scorer picks the top-k keys per query.

DSA's "lightning indexer" scores every (query, key) pair with a few small heads in low precision, keeps the k
best keys per query, and runs full attention on those k only: O(n²·r) cheap work plus O(n·k·d) attention, with
r much smaller than d. Untrained, the closest cheap scorer is a random projection to r = index_dim dimensions
(Johnson-Lindenstrauss: (qP)·(kP) estimates q·k, with a noise that shrinks like 1/sqrt(r)); a trained indexer
learns its own projections, ReLU-gated heads and weights. index_dim=None scores with the exact q·k: the oracle
top-k, the best any k-key selection can do for the captured attention mass.
"""
from __future__ import annotations

import math

import numpy as np

from ._learned import LearnedPattern, check_qk, check_seed, to_numpy
from .base import CSR, _CHUNK_ELEMENTS, _is_torch, check_int, index_dtype


def index_projection(d: int, index_dim: int, seed: int) -> np.ndarray:
    """(d, index_dim) Gaussian projection scaled so that (qP)·(kP) is an unbiased estimate of q·k."""
    return np.random.default_rng(seed).standard_normal((d, index_dim)) / math.sqrt(index_dim)


def _topk_rows_numpy(s: np.ndarray, kk: int) -> np.ndarray:
    """(r, kk) column ids of each row's kk largest scores, -1 where the score is -inf (forbidden)."""
    idx = np.argpartition(-s, kk - 1, axis=1)[:, :kk]  # (r, kk), unordered
    return np.where(np.take_along_axis(s, idx, axis=1) > -math.inf, idx, -1)


def _topk_rows_torch(s, kk: int):
    import torch

    vals, idx = torch.topk(s, kk, dim=1)  # (r, kk)
    return torch.where(vals > -math.inf, idx, -1)


def _sort_padded(idx, n: int):
    """Rows ascending with the -1 padding moved to the end (CSR rows are sorted)."""
    lib_sort = (lambda x: x.sort(dim=1).values) if _is_torch(idx) else (lambda x: np.sort(x, axis=1))
    s = lib_sort(idx + (idx < 0) * (n + 1))  # -1 -> n: after every real key
    return s - (s >= n) * (n + 1)


class IndexerTopK(LearnedPattern):
    """Query i attends to the k keys with the highest indexer score (among j <= i when causal)."""

    def __init__(self, k: int = 64, index_dim: int | None = 16, seed: int = 0, *, causal: bool = False):
        self.k = check_int("k", k, minimum=1)
        self.index_dim = None if index_dim is None else check_int("index_dim", index_dim, minimum=1)
        self.seed = check_seed(seed)
        self._check_causal(causal)

    def _params(self):
        return {"k": self.k, "index_dim": self.index_dim, "seed": self.seed, "causal": self.causal}

    def index_keys(self, q, k):
        """The low-dimensional vectors the indexer compares: (qP, kP), or (q, k) for the exact oracle."""
        if self.index_dim is None:
            return q, k
        p = index_projection(q.shape[1], self.index_dim, self.seed)
        if _is_torch(q):
            import torch

            p = torch.as_tensor(p, dtype=q.dtype, device=q.device)
        else:
            p = p.astype(q.dtype, copy=False)
        return q @ p, k @ p  # (n, r) each

    def select(self, q, k=None):
        """(n, min(k, n)) selected key ids per query, ascending, padded with -1 at the end (causal rows < k)."""
        q, k = check_qk(q, k)
        qi, ki = self.index_keys(q, k)
        n, kk = q.shape[0], min(self.k, q.shape[0])
        rows_per_chunk = max(1, _CHUNK_ELEMENTS // n)  # bounded memory: never the whole n×n score matrix
        parts = []
        for lo in range(0, n, rows_per_chunk):
            hi = min(n, lo + rows_per_chunk)
            s = qi[lo:hi] @ ki.T  # (r, n)
            if self.causal:
                s = self._mask_future(s, lo)
            parts.append(_topk_rows_torch(s, kk) if _is_torch(s) else _topk_rows_numpy(s, kk))
        if _is_torch(q):
            import torch

            return _sort_padded(torch.cat(parts), n)
        return _sort_padded(np.concatenate(parts), n)

    @staticmethod
    def _mask_future(s, lo: int):
        r, n = s.shape
        if _is_torch(s):
            import torch

            rows = torch.arange(lo, lo + r, device=s.device)[:, None]
            return s.masked_fill(torch.arange(n, device=s.device)[None, :] > rows, -math.inf)
        return np.where(np.arange(n)[None, :] > np.arange(lo, lo + r)[:, None], -np.inf, s)

    def build(self, q, k=None) -> CSR:
        """CSR of the selected keys (rows ascending)."""
        idx = to_numpy(self.select(q, k))  # (n, kk)
        n = idx.shape[0]
        valid = idx >= 0
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=indptr[1:])
        return CSR(indptr, idx[valid].astype(index_dtype(n)))

    def selection_cost(self, n: int, d: int) -> int:
        """Projections (2n·d·r), the n² (n(n+1)/2 causal) cheap scores of r multiply-adds, a linear top-k per row."""
        r = d if self.index_dim is None else self.index_dim
        pairs = n * (n + 1) // 2 if self.causal else n * n
        project = 0 if self.index_dim is None else 2 * n * d * r
        return project + pairs * r + pairs
