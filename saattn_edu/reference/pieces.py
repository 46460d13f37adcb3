"""The shapes a pattern's pairs come in, for the structured attention path: bands, tiles and plain pair lists.

A plan (`plan.py`) cuts a pattern into pieces whose candidate pairs are disjoint; each piece keeps the candidates
its `rule(i, j)` accepts (original token positions), so the pieces together hold every allowed pair exactly once.
- `Band`: each query sees keys within (left, right) positions of itself, in residue class coordinates
  (`step` > 1: the classes r, r + step, r + 2·step, ... of a dilated window are separate bands).
- `Tiles`: (bq × bk) tiles of a reordering of the queries (`q_index`) and of the keys (`k_index`); -1 pads a
  block. `full` marks tiles whose pairs all pass the rule (no mask to evaluate there).
- `Classes`: residue classes mod `step` read in place as strided views (positions r, r + step, ...); within a class
  query a sees key c when a - c >= gap (causal) or |a - c| >= gap: Sparse Transformer's strided columns.
- `KeyRanges`: a sorted key set gathered once, each query i seeing `keys[lo[i]:hi[i]]`: contiguous query blocks
  against contiguous ranges of it (Fixed's summary keys).
- `Pairs`: an irregular CSR (random keys, learned selections): the gather path.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..patterns.rows import run, segments_csr

TILE = 64  # token tile of the block paths: a 64×64 fp32 score tile, a BLAS-friendly shape on a laptop core


class Band(NamedTuple):
    left: int
    right: int
    step: int
    rule: Callable | None  # None: every pair of the band (a mask computed once per chunk, not per pair)


class Tiles(NamedTuple):
    q_index: np.ndarray  # (Nq,) query positions, -1 = padding; Nq a multiple of bq
    k_index: np.ndarray  # (Nk,) key positions, -1 = padding; Nk a multiple of bk
    bq: int
    bk: int
    indptr: np.ndarray  # (Nq / bq + 1,) query block a holds tiles indptr[a]:indptr[a + 1]
    kblocks: np.ndarray  # (tiles,) key block of every tile
    full: np.ndarray | None  # (tiles,) True where every pair passes the rule; None: evaluate it everywhere
    rule: Callable


class Classes(NamedTuple):
    step: int
    gap: int  # class distance from which keys count (the band covers the nearer ones)
    causal: bool
    rule: Callable | None  # None: every pair at class distance >= gap (a union's rule adds a mask everywhere)


class KeyRanges(NamedTuple):
    keys: np.ndarray  # (m,) sorted key positions
    lo: np.ndarray  # (n,) query i sees keys[lo[i]:hi[i]]; lo and hi non-decreasing in i
    hi: np.ndarray
    rule: Callable | None


class Pairs(NamedTuple):
    csr: object  # patterns.CSR
    rule: Callable | None  # None: every listed pair counts


def padded(index: np.ndarray, block: int) -> np.ndarray:
    """`index` with -1 appended up to a multiple of `block`."""
    return np.concatenate([index, np.full(-len(index) % block, -1, dtype=np.int64)]).astype(np.int64)


def tiles_from_runs(q_index, k_index, bq, bk, runs, full_of, rule) -> Tiles:
    """Tiles whose key blocks per query block are given as `rows.Run`s; `full_of(qblock, kblock)` -> bool array."""
    nqb = len(q_index) // bq
    csr = segments_csr(nqb, runs)
    kblocks = csr.indices.astype(np.int64)
    qblocks = np.repeat(np.arange(nqb, dtype=np.int64), np.diff(csr.indptr))
    full = None if full_of is None else np.asarray(full_of(qblocks, kblocks), dtype=bool)
    return Tiles(q_index, k_index, bq, bk, csr.indptr, kblocks, full, rule)


def with_rule(piece, rule: Callable):
    """The same candidates, with `rule` and-ed into the piece's rule (every tile then needs its mask)."""
    if isinstance(piece, Pairs):
        old = piece.rule
        return Pairs(piece.csr, rule if old is None else (lambda i, j: old(i, j) & rule(i, j)))
    old = piece.rule
    both = rule if old is None else (lambda i, j: old(i, j) & rule(i, j))
    return piece._replace(rule=both, full=None) if isinstance(piece, Tiles) else piece._replace(rule=both)


# ----------------------------------------------------------------------------------------------------------------
# Tile layouts of the common shapes
# ----------------------------------------------------------------------------------------------------------------
def range_tiles(n: int, lo: np.ndarray, hi: np.ndarray, rule=None, b: int = TILE) -> Tiles:
    """Row i sees keys lo[i] <= j < hi[i] (lo, hi non-decreasing in i): the tiles covering those ranges.

    `rule` defaults to the range itself; a tile is full when every row of its block covers the whole key block.
    """
    lo, hi = np.asarray(lo, np.int64), np.maximum(np.asarray(hi, np.int64), np.asarray(lo, np.int64))
    nb = -(-n // b)
    first_row = np.arange(nb, dtype=np.int64) * b
    last_row = np.minimum(n, first_row + b) - 1
    k_first, k_last = lo[first_row] // b, (hi[last_row] - 1) // b  # key blocks the block's rows reach
    has_keys = hi[last_row] > lo[first_row]
    if rule is None:
        rule = range_rule(lo, hi)

    def full_of(qb, kb):  # the block's latest start <= the tile's first key, its earliest end >= the last key
        tile_end = kb * b + b
        return (lo[last_row[qb]] <= kb * b) & (hi[first_row[qb]] >= tile_end) & (tile_end <= n)

    runs = [run(k_first, np.where(has_keys, k_last - k_first + 1, 0))]
    index = padded(np.arange(n, dtype=np.int64), b)
    return tiles_from_runs(index, index, b, b, runs, full_of, rule)


def range_rule(lo: np.ndarray, hi: np.ndarray):
    def rule(i, j):
        ic = np.clip(i, 0, len(lo) - 1)
        return (lo[ic] <= j) & (j < hi[ic])

    return rule


def rect_tiles(q_index, k_index, full: bool, rule, bq: int = TILE, bk: int = TILE) -> Tiles:
    """Every query block against every key block (global rows, global columns)."""
    q_index, k_index = padded(q_index, bq), padded(k_index, bk)
    nqb, nkb = len(q_index) // bq, len(k_index) // bk
    runs = [run(np.zeros(nqb), np.full(nqb, nkb))]
    clean_k = (k_index.reshape(nkb, bk) >= 0).all(axis=1)
    full_of = (lambda qb, kb: clean_k[kb]) if full else None
    return tiles_from_runs(q_index, k_index, bq, bk, runs, full_of, rule)


def layout_tiles(n: int, layout: np.ndarray, block: int, full: bool, rule) -> Tiles:
    """The True tiles of a block layout at the pattern's own block size (BlockSparse, BigBird)."""
    nb = layout.shape[0]
    index = padded(np.arange(n, dtype=np.int64), block)
    qb, kb = np.nonzero(layout)
    indptr = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(np.bincount(qb, minlength=nb), out=indptr[1:])
    full_flags = (kb * block + block <= n) if full else None
    return Tiles(index, index, block, block, indptr, kb.astype(np.int64), full_flags, rule)
