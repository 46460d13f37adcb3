"""A pattern given by its neighbour lists: the output of a learned selection, usable by every path.

Learned methods (LSH, routing, indexer top-k) return a CSR for one input. Wrapping it as a Pattern gives it the
views the kernels read (mask, block layout, `allowed` on torch tensors for block plans), so
`sa.attention(q, k, v, Listed(csr), backend="triton")` runs the block-sparse kernel on a data-dependent pattern.
"""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, _is_torch, check_block, check_n, layout_from_csr, lookup

MAX_BIT_TABLE_BYTES = 2**31  # the torch view's packed (n, n/8) table: n up to ~131k


def as_pattern(pattern, name: str = "pattern"):
    """A Pattern as is, a CSR (a learned selection's output) wrapped as Listed; anything else is a TypeError."""
    if isinstance(pattern, Pattern):
        return pattern
    if isinstance(pattern, CSR):
        return Listed(pattern)
    raise TypeError(f"{name} must be a saattn_edu Pattern or a CSR, got {type(pattern).__name__}")


class Listed(Pattern):
    """Pairs (i, j) listed in a CSR of n rows; defined for that n only."""

    def __init__(self, csr: CSR):
        if not isinstance(csr, CSR):
            raise TypeError(f"csr must be a saattn_edu.patterns.CSR, got {type(csr).__name__}")
        self.csr = csr
        self._bits = None  # the torch views' bit table, built on first use
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
        """NumPy: binary search of i·n + j among the listed pairs. Torch: a lookup in a packed bit table, because
        compiled FlexAttention cannot lower searchsorted inside a mask_mod (a gather from a table it can)."""
        n = self.csr.n
        inside = (i >= 0) & (j >= 0) & (i < n) & (j < n)  # out-of-range pairs would alias listed ones
        if not len(self._keys):
            return inside & (i < 0)  # all False, shaped and typed like the inputs
        if _is_torch(i):
            byte = lookup(self._bit_table(), i, j >> 3)  # lookup clamps: `inside` masks what was clamped
            return inside & (((byte >> (j & 7)) & 1) == 1)
        keys = self._keys
        q = np.asarray(i, dtype=np.int64) * n + np.asarray(j, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        return inside & (keys[pos] == q)

    def _bit_table(self) -> np.ndarray:
        """(n, ceil(n/8)) uint8: bit j % 8 of byte [i, j // 8] is set where (i, j) is listed; built once."""
        if self._bits is None:
            n, width = self.csr.n, (self.csr.n + 7) // 8
            if n * width > MAX_BIT_TABLE_BYTES:
                raise ValueError(f"n={n} needs a {n * width / 2**30:.1f} GiB bit table for torch views of a Listed "
                                 f"pattern (limit {MAX_BIT_TABLE_BYTES / 2**30:.0f} GiB); use the numpy or gather path")
            bits = np.zeros(n * width, dtype=np.uint8)
            rows, cols = self.csr.row_ids().astype(np.int64), self.csr.indices.astype(np.int64)
            np.bitwise_or.at(bits, rows * width + (cols >> 3), (1 << (cols & 7)).astype(np.uint8))
            self._bits = bits.reshape(n, width)
        return self._bits

    def neighbors(self, n) -> CSR:
        self._check(n)
        return self.csr

    def num_pairs(self, n) -> int:
        self._check(n)
        return self.csr.nnz

    def block_layout(self, n, block):
        self._check(n)
        return layout_from_csr(self.csr, check_block(block))
