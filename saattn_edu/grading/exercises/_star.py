"""Shared pieces of the ★ challenge tasks: CSR cases at sizes where no n × n mask fits."""
from __future__ import annotations

import numpy as np

from saattn_edu import patterns as P

HUGE_N = 200_000  # an (n, n) bool mask would be 40 GB: only an O(nnz) answer runs


def csr_pair(pattern, n):
    c = pattern.neighbors(n)
    return c.indptr.astype(np.int64), c.indices.astype(np.int64)


def random_csr(rng, n, density, empty_rows=False):
    keep = rng.random((n, n)) < density
    if empty_rows:
        keep[rng.choice(n, size=max(1, n // 4), replace=False)] = False
    c = P.CSR.from_mask(keep)
    return c.indptr.astype(np.int64), c.indices.astype(np.int64)
