"""Block-sparse attention: a boolean layout over (block × block) tiles, the unit GPU kernels skip or compute."""
from __future__ import annotations

import math

import numpy as np

from .base import CSR, Pattern, check_block, check_n, csr_from_block_layout, csr_from_rows, lookup


def block_rows_csr(n: int, block: int, col_blocks_of, causal: bool = False, nnz: int | None = None) -> CSR:
    """CSR where the rows of row block rb see every token of the column blocks `col_blocks_of(rb)` (ascending).

    With `causal`, row i keeps only keys j <= i. One row block at a time: no n×n array.
    """
    offsets = np.arange(block, dtype=np.int64)  # (block,)

    def chunks():
        for rb in range(math.ceil(n / block)):
            lo, hi = rb * block, min(n, (rb + 1) * block)
            cols = (np.asarray(col_blocks_of(rb), dtype=np.int64)[:, None] * block + offsets).ravel()
            cols = cols[cols < (hi if causal else n)]  # (c,) keys of the row block, ascending
            if causal:
                ok = cols[None, :] <= np.arange(lo, hi)[:, None]  # (rows, c): each row keeps a prefix
                yield ok.sum(axis=1), np.broadcast_to(cols, ok.shape)[ok]
            else:
                yield np.full(hi - lo, len(cols)), np.tile(cols, hi - lo)

    return csr_from_rows(n, chunks(), nnz)


def block_sizes(n: int, block: int) -> np.ndarray:
    """(ceil(n/block),) tokens per block; the last one is short when block does not divide n."""
    return np.minimum(block, n - block * np.arange(math.ceil(n / block), dtype=np.int64))


def check_layout(layout) -> np.ndarray:
    """A square 2-D boolean array (read-only copy), or raise naming `layout`."""
    if layout is None or isinstance(layout, (str, bytes, dict)) or not hasattr(layout, "__len__"):
        raise TypeError(f"layout must be a square 2-D boolean array, got {type(layout).__name__}: {layout!r}")
    try:
        arr = np.array(layout)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"layout must be a square 2-D boolean array, got a ragged {layout!r}") from err
    if arr.dtype != np.bool_:
        raise ValueError(f"layout must be a boolean array, got dtype {arr.dtype} (use layout.astype(bool))")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"layout must be a square 2-D boolean array, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


class BlockSparse(Pattern):
    """layout[i // block, j // block]: attend tile by tile."""

    causal = False

    def __init__(self, layout, block: int):
        self.layout = check_layout(layout)
        self.block = check_block(block)

    def __repr__(self):
        nb = self.layout.shape[0]
        if nb <= 8:  # small layouts print in full (eval-able with numpy imported as np)
            shown = f"np.array({self.layout.tolist()!r})"
        else:
            shown = f"<{nb}x{nb} bool, {int(self.layout.sum())} True>"
        return f"BlockSparse(layout={shown}, block={self.block})"

    def __eq__(self, other):
        return (type(other) is BlockSparse and self.block == other.block
                and np.array_equal(self.layout, other.layout))

    def __hash__(self):
        return hash((self.block, self.layout.shape, self.layout.tobytes()))

    def _prepare(self, n):
        nb = math.ceil(n / self.block)
        if nb != self.layout.shape[0]:
            raise ValueError(
                f"n={n} gives ceil(n / block) = {nb} blocks of {self.block}, but layout is "
                f"{self.layout.shape[0]}x{self.layout.shape[1]}: n must be in "
                f"({(self.layout.shape[0] - 1) * self.block}, {self.layout.shape[0] * self.block}]"
            )

    def allowed(self, i, j, n):
        return lookup(self.layout, i // self.block, j // self.block)

    def num_pairs(self, n) -> int:
        n = check_n(n)
        self._prepare(n)
        sizes = block_sizes(n, self.block)  # (nb,)
        return int(sizes @ self.layout.astype(np.int64) @ sizes)

    def block_layout(self, n, block) -> np.ndarray:
        n, block = check_n(n), check_block(block)
        if block != self.block:
            return super().block_layout(n, block)
        self._prepare(n)
        return self.layout.copy()

    def neighbors(self, n) -> CSR:
        n = check_n(n)
        self._prepare(n)
        return csr_from_block_layout(self.layout, self.block, n)
