"""Shared helpers of the figures: inputs as CSR, per-cell pair counts, figures that leave no global state."""
from __future__ import annotations

import math

import numpy as np

from ..patterns.base import CSR, Pattern, check_int, check_n

ENGINES = ("matplotlib", "plotly")


def check_engine(engine) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


def as_csr(pattern, n=None) -> tuple[CSR, str]:
    """(CSR, label) from a Pattern (with n), a CSR, or an (n, n) boolean mask."""
    if isinstance(pattern, Pattern):
        if n is None:
            raise ValueError(f"n is required with a Pattern, got n=None for {pattern!r}")
        return pattern.neighbors(check_n(n)), repr(pattern)
    if isinstance(pattern, CSR):
        _check_same_n(n, pattern.n)
        return pattern, "CSR"
    arr = np.asarray(pattern)
    if arr.ndim == 2 and arr.dtype == np.bool_ and arr.shape[0] == arr.shape[1]:
        _check_same_n(n, arr.shape[0])
        return CSR.from_mask(arr), "mask"
    raise TypeError(f"pattern must be a Pattern, a CSR or a square boolean mask, got {type(pattern).__name__}")


def _check_same_n(n, actual: int) -> None:
    if n is not None and check_n(n) != actual:
        raise ValueError(f"n={n} does not match the given neighbour lists of length {actual}")


def cell_counts(csr: CSR, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts, areas), both (nc, nc): allowed pairs and total pairs in each cell×cell tile.

    Walks the CSR one row tile at a time, so memory stays O(nc² + cell·width) whatever n is.
    """
    cell = check_int("cell", cell, minimum=1)
    n = csr.n
    nc = math.ceil(n / cell) if n else 0
    counts = np.zeros((nc, nc), dtype=np.int64)
    for rb in range(nc):
        lo, hi = csr.indptr[rb * cell], csr.indptr[min(n, (rb + 1) * cell)]
        counts[rb] = np.bincount(csr.indices[lo:hi] // cell, minlength=nc)
    sizes = np.minimum(cell, n - np.arange(nc) * cell)  # the last tile may be partial
    return counts, np.outer(sizes, sizes)


def new_figure(nrows=1, ncols=1, **kwargs):
    """A matplotlib figure and axes, detached from pyplot so that nothing is kept or auto-shown twice.

    Notebooks display the returned figure through IPython's formatter (pyplot registers it on import).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, **kwargs)
    plt.close(fig)
    return fig, axes


def short_label(label: str, limit: int = 70) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
