"""Reformer's LSH attention pattern: hash vectors with random rotations, sort by bucket, attend within chunks.

Angular LSH (Andoni et al. 2015, used by Kitaev et al. 2020): draw a random matrix R (d, b/2) and give x the
bucket argmax([xR ; -xR]). Vectors at a small angle tend to share a bucket, so a query meets the keys most likely
to have a large dot product with it. Buckets have uneven sizes, so Reformer sorts tokens by (bucket, position),
cuts the sorted sequence into equal chunks and lets each chunk attend to itself and to the previous chunk: a
fixed cost of about 2·chunk keys per query, whatever the bucket sizes. Several hash rounds lower the chance
that two close vectors are always split; their pair sets are merged (a union: the softmax over the union is what
Reformer computes with its log-sum-exp correction of duplicates).
"""
from __future__ import annotations

import math

import numpy as np

from ._learned import (
    LearnedPattern, causal_filter, check_qk, check_seed, csr_from_unsorted_pairs, to_numpy,
)
from .base import CSR, _is_torch, check_bool, check_int


def random_rotations(d: int, n_buckets: int, n_hashes: int, seed: int) -> np.ndarray:
    """(n_hashes, d, n_buckets // 2) Gaussian matrices; the same seed gives the same hashes in NumPy and torch."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_hashes, d, n_buckets // 2))


def lsh_hash(x, rotations: np.ndarray, n_buckets: int):
    """(n_hashes, n) bucket ids of the rows of x (n, d): argmax over [xR ; -xR] per round."""
    if n_buckets == 1:  # one bucket: no hashing, every token together
        shape = (rotations.shape[0], x.shape[0])
        return _zeros_like_lib(x, shape)
    if _is_torch(x):
        import torch

        rot = torch.as_tensor(rotations, dtype=x.dtype, device=x.device)
        proj = torch.einsum("nd,hdb->hnb", x, rot)  # (h, n, b/2)
        return torch.argmax(torch.cat([proj, -proj], dim=-1), dim=-1)  # (h, n)
    proj = np.einsum("nd,hdb->hnb", x, rotations.astype(x.dtype, copy=False))  # (h, n, b/2)
    return np.argmax(np.concatenate([proj, -proj], axis=-1), axis=-1)  # (h, n)


def _zeros_like_lib(x, shape):
    if _is_torch(x):
        import torch

        return torch.zeros(shape, dtype=torch.int64, device=x.device)
    return np.zeros(shape, dtype=np.int64)


def chunked_pairs(q_buckets: np.ndarray, k_buckets: np.ndarray | None, chunk: int, same_bucket: bool):
    """(rows, cols) of one hash round: sort items by (bucket, position), chunk, attend to own + previous chunk.

    With k_buckets None (shared QK) token i is one item, query and key at once. Otherwise queries and keys are
    sorted together (2n items, keys after queries of the same bucket and position) so that a bucket's queries
    and keys land in the same or neighbouring chunks.
    """
    n = len(q_buckets)
    pos = np.arange(n)
    if k_buckets is None:
        bucket, item_pos, is_q, is_k = q_buckets, pos, np.ones(n, bool), np.ones(n, bool)
    else:
        bucket = np.concatenate([q_buckets, k_buckets])
        item_pos = np.concatenate([pos, pos])
        is_q = np.arange(2 * n) < n
        is_k = ~is_q
    order = np.lexsort((~is_q, item_pos, bucket))  # primary key: bucket, then position, queries first
    bucket, item_pos, is_q, is_k = bucket[order], item_pos[order], is_q[order], is_k[order]
    rows, cols = [], []
    for start in range(0, len(order), chunk):
        lo, hi = max(0, start - chunk), min(len(order), start + chunk)  # previous chunk + own chunk
        qsel = np.flatnonzero(is_q[start:hi]) + start
        ksel = np.flatnonzero(is_k[lo:hi]) + lo
        ok = np.ones((len(qsel), len(ksel)), bool)
        if same_bucket:
            ok = bucket[qsel][:, None] == bucket[ksel][None, :]
        r, c = np.nonzero(ok)
        rows.append(item_pos[qsel][r])
        cols.append(item_pos[ksel][c])
    return np.concatenate(rows), np.concatenate(cols)


class LSHBuckets(LearnedPattern):
    """Reformer LSH: queries attend to keys of their sorted chunk and the previous one (same bucket by default).

    n_buckets: 1 (no hashing) or an even number; n_hashes: rounds merged by union; chunk: items per chunk;
    shared_qk: Reformer's tied queries and keys (hash q only; k may be omitted); same_bucket: also require equal
    buckets inside the chunk window (the paper's P_i; False keeps whole chunks as Reformer's kernels do);
    causal: keep only j <= i.
    """

    def __init__(self, n_buckets: int = 8, n_hashes: int = 1, chunk: int = 64, seed: int = 0, *,
                 causal: bool = False, shared_qk: bool = True, same_bucket: bool = True):
        self.n_buckets = check_int("n_buckets", n_buckets, minimum=1)
        if self.n_buckets > 1 and self.n_buckets % 2:
            raise ValueError(f"n_buckets must be 1 or even (buckets come in ±xR pairs), got {n_buckets}")
        self.n_hashes = check_int("n_hashes", n_hashes, minimum=1)
        self.chunk = check_int("chunk", chunk, minimum=1)
        self.seed = check_seed(seed)
        self._check_causal(causal)
        self.shared_qk = check_bool("shared_qk", shared_qk)
        self.same_bucket = check_bool("same_bucket", same_bucket)

    def _params(self):
        return {"n_buckets": self.n_buckets, "n_hashes": self.n_hashes, "chunk": self.chunk, "seed": self.seed,
                "causal": self.causal, "shared_qk": self.shared_qk, "same_bucket": self.same_bucket}

    def select(self, q, k=None):
        """(q_buckets, k_buckets), each (n_hashes, n); with shared_qk both are q's buckets."""
        q, k = check_qk(q, k, shared_ok=self.shared_qk)
        rot = random_rotations(q.shape[1], self.n_buckets, self.n_hashes, self.seed)
        qb = lsh_hash(q, rot, self.n_buckets)  # (h, n)
        kb = qb if self.shared_qk else lsh_hash(k, rot, self.n_buckets)  # (h, n)
        return qb, kb

    def build(self, q, k=None) -> CSR:
        """CSR of the pairs selected by any hash round."""
        qb, kb = (to_numpy(b) for b in self.select(q, k))
        n = qb.shape[1]
        rows, cols = [], []
        for h in range(self.n_hashes):
            r, c = chunked_pairs(qb[h], None if self.shared_qk else kb[h], self.chunk, self.same_bucket)
            rows.append(r)
            cols.append(c)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        if self.causal:
            rows, cols = causal_filter(rows, cols)
        return csr_from_unsorted_pairs(rows, cols, n)

    def selection_cost(self, n: int, d: int) -> int:
        """Hashing (n·d·b/2 multiply-adds per vector set and round) plus the sort (n·log2 n per round)."""
        items = n if self.shared_qk else 2 * n
        hashing = items * d * (self.n_buckets // 2)
        sorting = items * max(1, math.ceil(math.log2(max(items, 2))))
        return self.n_hashes * (hashing + sorting)
