"""Reformer's LSH attention pattern: hash vectors with random rotations, sort by bucket, attend within chunks.

Angular LSH (Andoni et al. 2015, used by Kitaev et al. 2020): draw a random matrix R (d, b/2) and give x the
bucket argmax([xR ; -xR]). Vectors at a small angle tend to share a bucket, so a query meets the keys most likely
to have a large dot product with it. Buckets have uneven sizes, so Reformer sorts tokens by bucket, cuts the
sorted sequence into equal chunks and lets each chunk attend to itself and to the previous chunk: a fixed cost of
about 2·chunk keys per query, whatever the bucket sizes.

By default `LSHBuckets` reproduces Hugging Face's `LSHSelfAttention` (tests/test_conformance_reformer.py):
- all hash rounds are sorted into ONE sequence (round, then bucket, then position) and chunked together; each
  chunk sees itself and the previous chunk, cyclically (the first chunk sees the last one);
- buckets need not be equal inside the chunk window (`same_bucket=False`);
- a query never attends to its own key unless no other key is left (`self_mask=True`; shared QK makes q·q the
  largest score, so it would otherwise dominate);
- rounds are merged as a softmax over the MULTISET of keys (`merge="multiset"`): HF weights each round's output by
  its log-sum-exp, which is exactly a softmax over every (round, key) listing, so a key two rounds chose counts
  twice. `key_counts` gives the counts and `R.lsh_attention` / `R.multiset_attention` the outputs. A set union
  (`merge="union"`) is a different, if close, attention.
- sequences no longer than one chunk are attended in full (HF skips hashing there).

`LSHBuckets.teaching(...)` is the simpler variant the lesson starts from: each round chunked on its own, no
wrap-around, equal buckets required inside the window, self kept, rounds merged as a set union.
"""
from __future__ import annotations

import math

import numpy as np

from ._learned import LearnedPattern, causal_filter, check_qk, check_seed, to_numpy
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


MERGES = ("multiset", "union")


def check_rotations(rotations, n_hashes: int, d: int, n_buckets: int) -> np.ndarray:
    """Explicit rotations (n_hashes, d, n_buckets // 2), e.g. the ones a Hugging Face layer drew."""
    rot = to_numpy(rotations)
    want = (n_hashes, d, n_buckets // 2)
    if rot.shape != want:
        raise ValueError(f"rotations must have shape {want} (n_hashes, d, n_buckets // 2), got {rot.shape}")
    return rot


def hf_round_pairs(buckets: np.ndarray, chunk: int, same_bucket: bool):
    """(rows, cols) listings of HF's layout: rounds sorted into one sequence, chunk + previous chunk, cyclic.

    buckets (n_hashes, n) of a shared-QK layer. A key is listed once per time it sits in a query's window, so
    (rows, cols) may repeat a pair: those repeats are the multiset's counts.
    """
    h, n = buckets.shape
    rnd = np.repeat(np.arange(h), n)
    pos = np.tile(np.arange(n), h)
    bucket = buckets.reshape(-1)
    order = np.lexsort((pos, bucket, rnd))  # round, then bucket, then position (HF's stable sort of offset buckets)
    pos, key = pos[order], (rnd * (bucket.max() + 1) + bucket)[order]
    starts = np.arange(0, h * n, chunk)
    rows, cols = [], []
    for c, start in enumerate(starts):
        own = np.arange(start, min(start + chunk, h * n))
        prev = starts[c - 1]  # c = 0 wraps to the last chunk (itself when there is only one: HF lists it twice)
        window = np.concatenate([np.arange(prev, min(prev + chunk, h * n)), own])
        ok = np.ones((len(own), len(window)), bool)
        if same_bucket:
            ok = key[own][:, None] == key[window][None, :]
        r, cc = np.nonzero(ok)
        rows.append(pos[own][r])
        cols.append(pos[window][cc])
    return np.concatenate(rows), np.concatenate(cols)


def drop_self_unless_alone(rows: np.ndarray, cols: np.ndarray, n: int):
    """Remove (i, i) listings from every row that has another key (HF masks self with -1e5, others with -1e9)."""
    others = np.bincount(rows[rows != cols], minlength=n)  # (n,) non-self listings per row
    keep = (rows != cols) | (others[rows] == 0)
    return rows[keep], cols[keep]


def counts_from_pairs(rows: np.ndarray, cols: np.ndarray, n: int) -> tuple[CSR, np.ndarray]:
    """(CSR of the distinct pairs, (nnz,) how many times each was listed)."""
    key, counts = np.unique(rows.astype(np.int64) * n + cols.astype(np.int64), return_counts=True)
    return CSR.from_pairs(key // n, key % n, n), counts


class LSHBuckets(LearnedPattern):
    """Reformer LSH (Hugging Face's `LSHSelfAttention` by default; see the module docstring for the rules).

    n_buckets: 1 (no hashing) or an even number; n_hashes: hash rounds; chunk: items per chunk; seed: of the
    rotations (or pass `rotations=` to select / build / key_counts); causal: keep only j <= i (HF's decoder).
    shared_qk: Reformer's tied queries and keys (hash q only; k may be omitted); False sorts queries and keys
    together, each round on its own (no Reformer implementation does this: a teaching extension).
    same_bucket (False): also require equal buckets inside the window (the paper's P_i); wrap (True): HF's layout
    (rounds in one sorted sequence, cyclic previous chunk) rather than each round chunked alone without wrap;
    self_mask (True): drop a query's own key unless it is the only one; merge ("multiset"): how rounds combine.
    """

    def __init__(self, n_buckets: int = 8, n_hashes: int = 1, chunk: int = 64, seed: int = 0, *,
                 causal: bool = False, shared_qk: bool = True, same_bucket: bool = False, wrap: bool = True,
                 self_mask: bool = True, merge: str = "multiset"):
        self.n_buckets = check_int("n_buckets", n_buckets, minimum=1)
        if self.n_buckets > 1 and self.n_buckets % 2:
            raise ValueError(f"n_buckets must be 1 or even (buckets come in ±xR pairs), got {n_buckets}")
        self.n_hashes = check_int("n_hashes", n_hashes, minimum=1)
        self.chunk = check_int("chunk", chunk, minimum=1)
        self.seed = check_seed(seed)
        self._check_causal(causal)
        self.shared_qk = check_bool("shared_qk", shared_qk)
        self.same_bucket = check_bool("same_bucket", same_bucket)
        self.wrap = check_bool("wrap", wrap)
        self.self_mask = check_bool("self_mask", self_mask)
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        self.merge = merge

    @classmethod
    def teaching(cls, n_buckets: int = 8, n_hashes: int = 1, chunk: int = 64, seed: int = 0, **kw):
        """The simpler variant: rounds chunked alone, no wrap, equal buckets, self kept, rounds merged by union."""
        opts = dict(same_bucket=True, wrap=False, self_mask=False, merge="union")
        return cls(n_buckets, n_hashes, chunk, seed, **{**opts, **kw})

    def _params(self):
        return {"n_buckets": self.n_buckets, "n_hashes": self.n_hashes, "chunk": self.chunk, "seed": self.seed,
                "causal": self.causal, "shared_qk": self.shared_qk, "same_bucket": self.same_bucket,
                "wrap": self.wrap, "self_mask": self.self_mask, "merge": self.merge}

    def select(self, q, k=None, rotations=None):
        """(q_buckets, k_buckets), each (n_hashes, n); with shared_qk both are q's buckets."""
        q, k = check_qk(q, k, shared_ok=self.shared_qk)
        if rotations is None:
            rot = random_rotations(q.shape[1], self.n_buckets, self.n_hashes, self.seed)
        else:
            rot = check_rotations(rotations, self.n_hashes, q.shape[1], self.n_buckets)
        qb = lsh_hash(q, rot, self.n_buckets)  # (h, n)
        kb = qb if self.shared_qk else lsh_hash(k, rot, self.n_buckets)  # (h, n)
        return qb, kb

    def _listings(self, qb: np.ndarray, kb: np.ndarray):
        """(rows, cols): every time a key sits in a query's window, over all rounds (repeats included)."""
        n = qb.shape[1]
        if self.wrap and self.shared_qk:
            if n <= self.chunk:  # HF: a sequence of one chunk is attended in full, without hashing
                return np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
            return hf_round_pairs(qb, self.chunk, self.same_bucket)
        parts = [chunked_pairs(qb[h], None if self.shared_qk else kb[h], self.chunk, self.same_bucket)
                 for h in range(self.n_hashes)]
        return np.concatenate([r for r, _ in parts]), np.concatenate([c for _, c in parts])

    def key_counts(self, q, k=None, rotations=None) -> tuple[CSR, np.ndarray]:
        """(CSR, counts): the keys each query attends to and how many times each counts in its softmax.

        merge="multiset": a key listed by several rounds (or twice in one window) counts that many times;
        merge="union": every key once.
        """
        qb, kb = (to_numpy(b) for b in self.select(q, k, rotations))
        n = qb.shape[1]
        rows, cols = self._listings(qb, kb)
        if self.causal:
            rows, cols = causal_filter(rows, cols)
        if self.self_mask:
            rows, cols = drop_self_unless_alone(rows, cols, n)
        csr, counts = counts_from_pairs(rows, cols, n)
        return csr, (counts if self.merge == "multiset" else np.ones_like(counts))

    def build(self, q, k=None, rotations=None) -> CSR:
        """CSR of the keys each query attends to (the multiplicities are in `key_counts`)."""
        return self.key_counts(q, k, rotations)[0]

    def selection_cost(self, n: int, d: int) -> int:
        """Hashing (n·d·b/2 multiply-adds per vector set and round) plus the sort (n·log2 n per round)."""
        items = n if self.shared_qk else 2 * n
        hashing = items * d * (self.n_buckets // 2)
        sorting = items * max(1, math.ceil(math.log2(max(items, 2))))
        return self.n_hashes * (hashing + sorting)
