"""Neighbour lists built from each pattern's structure in O(nnz): rows as runs of arithmetic progressions.

Every family's row is a short, fixed list of sorted runs: a window is one run of consecutive keys, a strided row
is a run every `stride` keys then a run of consecutive ones, a Fixed row is a prefix of the summary keys then its
own block. `segments_csr` writes such rows for all n rows at once, vectorised in chunks of rows, so the work and
the memory are the number of pairs, never n², and a parameter larger than n only shortens the runs.
Unions and intersections merge the sorted rows of their parts (`merge_rows`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

_PAIRS_PER_CHUNK = 2**22  # rows are written in chunks holding about this many keys: bounded temporaries


class Run(NamedTuple):
    """Row i holds `first[i] + step·t` for t < count[i]; with `table`, the keys are `table[first[i] + step·t]`."""

    first: np.ndarray  # (n,) int64
    count: np.ndarray  # (n,) int64, >= 0
    step: int = 1
    table: np.ndarray | None = None  # sorted keys the run reads from (e.g. Fixed's summary keys)


def run(first, count, step: int = 1, table=None) -> Run:
    """A Run with int64 arrays; negative counts (empty runs written as formulas) become 0."""
    first = np.asarray(first, dtype=np.int64)
    count = np.maximum(np.asarray(count, dtype=np.int64), 0)
    return Run(first, count, int(step), table)


def row_chunks(indptr: np.ndarray, pairs_per_chunk: int = _PAIRS_PER_CHUNK):
    """Consecutive (r0, r1) row ranges holding about `pairs_per_chunk` pairs each (at least one row)."""
    n, r0 = len(indptr) - 1, 0
    while r0 < n:
        r1 = int(np.searchsorted(indptr, indptr[r0] + pairs_per_chunk, side="right")) - 1
        r1 = min(n, max(r1, r0 + 1))
        yield r0, r1
        r0 = r1


def segments_csr(n: int, runs: list):
    """CSR whose row i is the concatenation of the runs' keys for row i, in the order the runs are given.

    The caller orders the runs so that each row comes out ascending (runs of one row never overlap).
    """
    from .base import CSR, index_dtype

    lengths = np.zeros(n, dtype=np.int64)
    for r in runs:
        lengths += r.count
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=index_dtype(n))
    for r0, r1 in row_chunks(indptr):
        _write_rows(indices, indptr, runs, r0, r1)
    return CSR(indptr, indices)


def _write_rows(indices, indptr, runs, r0: int, r1: int) -> None:
    """Write rows r0..r1-1: each run's keys go after the keys of the runs before it in the same row."""
    at = indptr[r0:r1].copy()  # (r,) where the next run of each row starts
    for r in runs:
        count = r.count[r0:r1]
        total = int(count.sum())
        if total:
            starts = np.cumsum(count) - count  # (r,) offset of each row's run in the flat run array
            t = np.arange(total, dtype=np.int64) - np.repeat(starts, count)  # position within the run
            keys = np.repeat(r.first[r0:r1], count) + r.step * t
            indices[np.repeat(at, count) + t] = keys if r.table is None else r.table[keys]
        at += count


# ----------------------------------------------------------------------------------------------------------------
# Unions and intersections: merge sorted rows, chunk by chunk
# ----------------------------------------------------------------------------------------------------------------
def merge_rows(csrs: list, keep_all: bool):
    """Union (`keep_all=False`: a key in any part) or intersection (`keep_all=True`: in every part) of CSRs.

    Per chunk of rows the parts' keys are tagged with their row (row · n + key), sorted (the parts' rows are
    already sorted runs, which a stable sort merges cheaply) and deduplicated or counted: O(nnz log parts).
    """
    from .base import CSR, csr_from_rows

    n, parts = csrs[0].n, len(csrs)
    if parts == 1:
        return csrs[0]
    rows_per_chunk = max(1, _PAIRS_PER_CHUNK // max(1, max(c.nnz for c in csrs) // max(n, 1) * parts))

    def chunks():
        for r0 in range(0, n, rows_per_chunk):
            r1 = min(n, r0 + rows_per_chunk)
            keys = np.sort(np.concatenate([_tagged(c, r0, r1, n) for c in csrs]), kind="stable")
            if keep_all:  # every part holds each key once per row: a key in all parts repeats `parts` times
                m = max(len(keys) - parts + 1, 0)
                keys = keys[:m][keys[parts - 1 :] == keys[:m]]
            else:
                keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
            rows = keys // max(n, 1)
            yield np.bincount(rows, minlength=r1 - r0), keys - rows * max(n, 1)

    return CSR(*csr_from_rows(n, chunks()))


def _tagged(csr, r0: int, r1: int, n: int) -> np.ndarray:
    """Keys of rows r0..r1-1 as (row - r0) · n + key, int64, in row-major order."""
    lo, hi = int(csr.indptr[r0]), int(csr.indptr[r1])
    rows = np.repeat(np.arange(r1 - r0, dtype=np.int64), np.diff(csr.indptr[r0 : r1 + 1]))
    return rows * max(n, 1) + csr.indices[lo:hi]


def filter_pairs(csr, keep):
    """The pairs of `csr` for which `keep(rows, keys)` (vectorised) is True, chunk by chunk: O(nnz)."""
    from .base import CSR, csr_from_rows

    def chunks():
        for r0, r1 in row_chunks(csr.indptr):
            lo, hi = int(csr.indptr[r0]), int(csr.indptr[r1])
            rows = np.repeat(np.arange(r0, r1, dtype=np.int64), np.diff(csr.indptr[r0 : r1 + 1]))
            keys = csr.indices[lo:hi]
            ok = np.asarray(keep(rows, keys.astype(np.int64)), dtype=bool)
            yield np.bincount(rows[ok] - r0, minlength=r1 - r0), keys[ok]

    return CSR(*csr_from_rows(csr.n, chunks()))


def count_pairs(csr, keep) -> int:
    """How many pairs of `csr` pass `keep(rows, keys)`, chunk by chunk (no CSR is built)."""
    total = 0
    for r0, r1 in row_chunks(csr.indptr):
        lo, hi = int(csr.indptr[r0]), int(csr.indptr[r1])
        rows = np.repeat(np.arange(r0, r1, dtype=np.int64), np.diff(csr.indptr[r0 : r1 + 1]))
        total += int(np.count_nonzero(keep(rows, csr.indices[lo:hi].astype(np.int64))))
    return total
