"""Reformer LSH attention outputs in NumPy: the keys `LSHBuckets` selects, weighted by how often they are listed.

    out = R.lsh_attention(qk, v, P.LSHBuckets(n_buckets=4, n_hashes=2, chunk=8))   # equals HF LSHSelfAttention

With shared QK (Reformer), keys are the queries scaled to unit length: Hugging Face divides each by its root mean
square and by sqrt(d), i.e. k_j = q_j / |q_j| (up to its 1e-6 epsilon, kept here), and applies no further 1/sqrt(d)
scale to q·k. Rows merge their hash rounds as a softmax over the multiset of listed keys (`merge="multiset"`) or
over the set (`merge="union"`).
"""
from __future__ import annotations

import numpy as np

from ..patterns.lsh import LSHBuckets
from ._inputs import as_float_array
from .multiset import multiset_attention

_HF_EPS = 1e-6  # HF `_len_norm` epsilon


def shared_qk_keys(qk) -> np.ndarray:
    """Reformer's keys from shared query/key vectors (n, d): each scaled to unit length (HF's rms form)."""
    qk = as_float_array("qk", qk)
    d = qk.shape[-1]
    return (qk / np.sqrt(np.mean(qk * qk, axis=-1, keepdims=True) + _HF_EPS) / np.sqrt(d)).astype(qk.dtype)


def lsh_attention(qk, v, method: LSHBuckets, k=None, rotations=None):
    """Outputs (n, d_v) of LSH attention for one head: qk (n, d) queries (and keys, with shared QK), v (n, d_v).

    Shared QK: k is omitted, keys = `shared_qk_keys(qk)`, scale 1 (as Reformer). Otherwise k (n, d) and the usual
    1/sqrt(d) scale. `rotations` (n_hashes, d, n_buckets // 2) replaces the seeded ones (e.g. a HF layer's draw).
    """
    if not isinstance(method, LSHBuckets):
        raise TypeError(f"method must be an LSHBuckets, got {type(method).__name__}")
    qk, v = as_float_array("qk", qk), as_float_array("v", v)
    csr, counts = method.key_counts(qk, None if method.shared_qk else k, rotations)
    if method.shared_qk:
        return multiset_attention(qk, shared_qk_keys(qk), v, csr, counts, scale=1.0)
    return multiset_attention(qk, as_float_array("k", k), v, csr, counts)
