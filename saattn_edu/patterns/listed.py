"""A pattern given by its neighbour lists: the output of a learned selection, usable by every path.

Learned methods (LSH, routing, indexer top-k) return a CSR for one input. Wrapping it as a Pattern gives it the
views the kernels read (mask, block layout, `allowed` on torch tensors for block plans), so
`sa.attention(q, k, v, Listed(csr), backend="triton")` runs the block-sparse kernel on a data-dependent pattern.
"""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, _is_torch, check_block, check_n, layout_from_csr


class Listed(Pattern):
    """Pairs (i, j) listed in a CSR of n rows; defined for that n only."""

    def __init__(self, csr: CSR):
        if not isinstance(csr, CSR):
            raise TypeError(f"csr must be a saattn_edu.patterns.CSR, got {type(csr).__name__}")
        self.csr = csr
        n = csr.n
        self._keys = csr.row_ids().astype(np.int64) * max(n, 1) + csr.indices  # sorted: rows, then ascending keys
        self.causal = bool(np.all(csr.indices <= csr.row_ids())) if csr.nnz else True

    def _params(self):
        return {"n": self.csr.n, "nnz": self.csr.nnz}

    def __eq__(self, other):
        return type(other) is Listed and other.csr.n == self.csr.n and np.array_equal(other._keys, self._keys)

    def __hash__(self):
        return hash((self.csr.n, self.csr.nnz, self._keys[:64].tobytes(), self._keys[-64:].tobytes()))

    def _check(self, n):
        n = check_n(n)
        if n != self.csr.n:
            raise ValueError(f"n must be {self.csr.n} (the length this CSR was built for), got {n}")
        return n

    def _prepare(self, n):  # every view (mask, mask_mod_for, ...) goes through here first
        self._check(n)

    def allowed(self, i, j, n):
        """Binary search of i·n + j among the listed pairs (NumPy or torch index arrays)."""
        n = self.csr.n
        inside = (i >= 0) & (j >= 0) & (i < n) & (j < n)  # out-of-range pairs would alias listed ones
        if not len(self._keys):
            return inside & (i < 0)  # all False, shaped and typed like the inputs
        if _is_torch(i):
            import torch

            keys = torch.as_tensor(self._keys, device=i.device)
            q = (i * n + j).to(torch.int64)
            pos = torch.searchsorted(keys, q.reshape(-1)).clamp(max=len(keys) - 1).reshape(q.shape)
        else:
            keys = self._keys
            q = np.asarray(i, dtype=np.int64) * n + np.asarray(j, dtype=np.int64)
            pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        return inside & (keys[pos] == q)

    def neighbors(self, n) -> CSR:
        self._check(n)
        return self.csr

    def num_pairs(self, n) -> int:
        self._check(n)
        return self.csr.nnz

    def block_layout(self, n, block):
        self._check(n)
        return layout_from_csr(self.csr, check_block(block))
