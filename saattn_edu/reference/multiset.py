"""Attention over a multiset of keys: a key listed c times counts c times in the softmax.

Real kernels sometimes list a key more than once: Hugging Face's Reformer concatenates the keys of every hash
round (a key two rounds both chose appears twice), and Hugging Face's BigBird in `eval()` fills its random slots
with the first block, already global. The softmax over such a list weights key j by its count c_ij:

    out_i = Σ_j c_ij·exp(s_ij)·v_j / Σ_j c_ij·exp(s_ij),    i.e. the set softmax with logits s_ij + log c_ij.

So a set-based pattern plus a count per pair reproduces those outputs exactly (the counts are what a set union
throws away).
"""
from __future__ import annotations

import numpy as np

from ..patterns.base import CSR
from ._inputs import check_csr, check_qkv, check_scale


def multiset_attention(q, k, v, csr: CSR, counts, scale=None):
    """Softmax attention of q (..., n, d) over the keys of `csr`, key j of row i counted `counts[p]` times.

    counts: (nnz,) positive ints (or weights) aligned with csr.indices. O(nnz·d) time and memory. Rows with no
    key give 0, never NaN.
    """
    q, k, v, out_dtype = check_qkv(q, k, v)
    scale = check_scale(scale, q.shape[-1])
    csr = check_csr(csr, q.shape[-2], k.shape[-2])
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (csr.nnz,) or (counts <= 0).any():
        raise ValueError(f"counts must be {csr.nnz} positive numbers (one per pair), got shape {counts.shape}")
    rows, cols = csr.row_ids().astype(np.int64), csr.indices.astype(np.int64)
    lead = q.shape[:-2]
    q3, k3, v3 = (x.reshape(-1, *x.shape[-2:]) for x in (q, k, v))  # (B, n, d): loop over batch·heads only
    out = np.stack([_one(q3[b], k3[b], v3[b], rows, cols, np.log(counts), scale, csr.n) for b in range(len(q3))])
    return out.reshape(*lead, csr.n, v.shape[-1]).astype(out_dtype, copy=False)


def _one(q, k, v, rows, cols, log_counts, scale, n):
    s = np.einsum("pd,pd->p", q[rows], k[cols]) * scale + log_counts  # (nnz,) logits, + log c
    row_max = np.full(n, -np.inf)
    np.maximum.at(row_max, rows, s)
    e = np.exp(s - row_max[rows])  # (nnz,) shifted by the row max: never overflows
    den = np.bincount(rows, weights=e, minlength=n)  # (n,)
    num = np.zeros((n, v.shape[-1]))
    np.add.at(num, rows, e[:, None] * v[cols])  # (n, d)
    return num / np.where(den > 0, den, 1.0)[:, None]  # an empty row: 0 / 1 = 0
