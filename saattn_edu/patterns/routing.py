"""Routing Transformer (Roy et al. 2021): spherical k-means over queries and keys, attend within the cluster.

Queries and keys are scaled to unit length and clustered together; a query attends to the keys of its own
cluster. Points in one cluster have small angles to a shared centroid, hence (mostly) large dot products with
each other. The paper learns centroids by a moving average during training and balances clusters by taking the
top-w points of each; here the centroids are fitted on the given q and k (Lloyd iterations), which is what one
would do to probe a trained model's attention.
"""
from __future__ import annotations

import numpy as np

from ._learned import LearnedPattern, causal_filter, check_qk, check_seed, csr_from_unsorted_pairs, to_numpy, unit_rows
from .base import CSR, _is_torch, check_int


def _kmeans_numpy(x: np.ndarray, init: np.ndarray, iters: int) -> np.ndarray:
    """Spherical Lloyd iterations from the rows `init` of x (m, d); returns unit centroids (C, d)."""
    centroids = x[init]  # (C, d)
    for _ in range(iters):
        assign = np.argmax(x @ centroids.T, axis=1)  # (m,)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)  # (C, d)
        empty = ~np.bincount(assign, minlength=len(centroids)).astype(bool)
        sums[empty] = centroids[empty]  # an empty cluster keeps its centroid
        centroids = unit_rows(sums)
    return centroids


def _kmeans_torch(x, init: np.ndarray, iters: int):
    """Torch twin of `_kmeans_numpy` (same init rows, same update order)."""
    import torch

    centroids = x[torch.as_tensor(init, device=x.device)]  # (C, d)
    for _ in range(iters):
        assign = torch.argmax(x @ centroids.T, dim=1)  # (m,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)  # (C, d)
        empty = torch.bincount(assign, minlength=len(centroids)) == 0
        sums[empty] = centroids[empty]
        centroids = unit_rows(sums)
    return centroids


class KMeansRouting(LearnedPattern):
    """Query i attends to key j when both fall in the same spherical k-means cluster (and j <= i if causal)."""

    def __init__(self, n_clusters: int = 8, iters: int = 10, seed: int = 0, *, causal: bool = False):
        self.n_clusters = check_int("n_clusters", n_clusters, minimum=1)
        self.iters = check_int("iters", iters, minimum=0)
        self.seed = check_seed(seed)
        self._check_causal(causal)

    def _params(self):
        return {"n_clusters": self.n_clusters, "iters": self.iters, "seed": self.seed, "causal": self.causal}

    def _init_rows(self, m: int) -> np.ndarray:
        if self.n_clusters > m:
            raise ValueError(f"n_clusters must be <= the number of queries and keys ({m}), got {self.n_clusters}")
        return np.random.default_rng(self.seed).choice(m, size=self.n_clusters, replace=False)

    def centroids(self, q, k):
        """(n_clusters, d) unit centroids fitted on the unit rows of q and k together."""
        q, k = check_qk(q, k)
        if _is_torch(q):
            import torch

            x = unit_rows(torch.cat([q, k]))  # (2n, d)
            return _kmeans_torch(x, self._init_rows(len(x)), self.iters)
        x = unit_rows(np.concatenate([q, k]))  # (2n, d)
        return _kmeans_numpy(x, self._init_rows(len(x)), self.iters)

    def select(self, q, k=None):
        """(q_clusters, k_clusters): the cluster id of every query and key, each (n,)."""
        c = self.centroids(q, k)
        if _is_torch(q):
            import torch

            return torch.argmax(unit_rows(q) @ c.T, dim=1), torch.argmax(unit_rows(k) @ c.T, dim=1)
        return np.argmax(unit_rows(q) @ c.T, axis=1), np.argmax(unit_rows(k) @ c.T, axis=1)

    def build(self, q, k=None) -> CSR:
        """CSR of the same-cluster pairs."""
        qc, kc = (to_numpy(c) for c in self.select(q, k))
        rows, cols = [], []
        for c in range(self.n_clusters):
            qi, kj = np.flatnonzero(qc == c), np.flatnonzero(kc == c)
            rows.append(np.repeat(qi, len(kj)))
            cols.append(np.tile(kj, len(qi)))
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        if self.causal:
            rows, cols = causal_filter(rows, cols)
        return csr_from_unsorted_pairs(rows, cols, len(qc))

    def selection_cost(self, n: int, d: int) -> int:
        """Lloyd iterations over 2n points (2n·C·d each, plus the update) and the final assignment."""
        m, c = 2 * n, self.n_clusters
        return self.iters * (m * c * d + m * d) + m * c * d
