"""Cut a pattern into disjoint pieces (bands, tiles, residue classes, pair lists) the structured path runs.

Each family is cut along its own structure: a window is a band, Sparse Transformer's strided columns are dense
blocks once the keys are grouped by residue (as the GPU kernel does; here strided views of one residue, no copy),
Fixed's summary keys are gathered once and read in ranges, global tokens are a row and a column of tiles. A union
takes its parts' pieces, each later part keeping only pairs no earlier part allows (so no pair is counted twice);
an intersection filters the sparsest part's pieces.
"""
from __future__ import annotations

import numpy as np

from ..patterns import (AttentionSinks, Axial2D, BigBird, BlockSparse, Causal, Dense, DilatedWindow, Fixed,
                        GlobalTokens, Intersection, Local2D, Longformer, SlidingWindow, Strided, Union)
from ..patterns.base import lookup
from ..patterns.rows import run, segments_csr
from .pieces import TILE, Band, Classes, KeyRanges, Pairs, Tiles, layout_tiles, padded, range_tiles
from .pieces import rect_tiles, with_rule

_NARROW = 4  # a band narrower than n / _NARROW runs as a band; wider ones as tiles of a range
_TALL = 512  # query tile against a few key columns: tall tiles, few matmul calls


def plan(pattern, n: int) -> list:
    """Disjoint pieces holding exactly the allowed pairs of `pattern` at length n."""
    for kind, planner in _PLANNERS:
        if type(pattern) is kind:
            return planner(pattern, n)
    return _generic(pattern, n)


def _generic(p, n):
    """Block-decided patterns (BigBird) as tiles of their own layout; a narrow band as a band; else a pair list."""
    block = getattr(p, "block", None)
    if isinstance(block, int) and block >= 16:
        return [layout_tiles(n, p.block_layout(n, block), block, False, _rule_of(p, n))]
    band = p.band(n)
    if band is not None and _NARROW * (band[0] + band[1] + 1) < n:
        return [Band(int(band[0]), int(band[1]), 1, _rule_of(p, n))]
    return [Pairs(p.neighbors(n), None)]


def _rule_of(p, n):
    return lambda i, j: np.asarray(p.allowed(i, j, n), dtype=bool)


def _everything(i, j):
    return np.ones(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=bool)


def band_piece(n: int, left: int, right: int):
    """Keys i - left .. i + right (clipped): a band when narrow, tiles of the range when wide."""
    left, right = min(left, max(n - 1, 0)), min(right, max(n - 1, 0))
    if _NARROW * (left + right + 1) < n:
        return Band(left, right, 1, None)
    i = np.arange(n, dtype=np.int64)
    return range_tiles(n, np.maximum(0, i - left), np.minimum(n, i + right + 1))


# ----------------------------------------------------------------------------------------------------------------
# Compositions
# ----------------------------------------------------------------------------------------------------------------
def _union(p, n):
    parts = sorted(p.parts, key=lambda q: -q.num_pairs(n))  # the largest part keeps its full tiles
    pieces = []
    for k, part in enumerate(parts):
        earlier = parts[:k]
        own = plan(part, n)
        if earlier:
            unseen = lambda i, j, e=earlier: _none_allow(e, i, j, n)  # noqa: E731
            own = [with_rule(x, unseen) for x in own]
        pieces += own
    return pieces


def _none_allow(parts, i, j, n):
    out = np.zeros(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=bool)
    for q in parts:
        out |= np.asarray(q.allowed(i, j, n), dtype=bool)
    return ~out


def _intersection(p, n):
    sparsest = min(p.parts, key=lambda q: q.num_pairs(n))
    others = [q for q in p.parts if q is not sparsest]
    return [with_rule(x, lambda i, j: Intersection._all_allow(others, i, j, n)) for x in plan(sparsest, n)]


# ----------------------------------------------------------------------------------------------------------------
# Families
# ----------------------------------------------------------------------------------------------------------------
def _dense(p, n):
    return [range_tiles(n, np.zeros(n), np.full(n, n))]


def _causal(p, n):
    return [range_tiles(n, np.zeros(n), np.arange(1, n + 1))]


def _sliding(p, n):
    return [band_piece(n, *p._reach())]


def _dilated(p, n):
    d = p.dilation
    if d == 1:
        return [band_piece(n, *p._steps())]
    left, right = p._steps()
    if n // d >= 16 and _NARROW * (left + right + 1) < n // d:  # residue classes of d: each a plain band
        return [Band(left, right, d, None)]  # within a class, the window is exactly a band
    return [Pairs(p.neighbors(n), None)]


def _global(p, n):
    p._prepare(n)
    g = np.asarray(p.indices, dtype=np.int64)
    if not len(g):
        return []
    everyone = np.arange(n, dtype=np.int64)
    width = min(TILE, -(-len(g) // 8) * 8)
    rows = rect_tiles(g, everyone, True, _everything, bq=width)  # global rows see every key
    not_global = lambda i, j: ~lookup(p._is_global, i)  # noqa: E731  (global rows are done above)
    return [rows, rect_tiles(everyone, g, False, not_global, bq=_TALL, bk=width)]


def _longformer(p, n):
    p._prepare(n)
    pieces = plan(Union(p.local, p.globals), n)
    return [with_rule(x, lambda i, j: j <= i) for x in pieces] if p.causal else pieces


def _strided(p, n):
    s = p.stride
    band = band_piece(n, s, 0 if p.causal else s)
    if n // s >= TILE:  # long residue classes: strided views of one residue, beyond the band (class distance >= 2)
        return [band, Classes(s, 2, p.causal, None)]
    i = np.arange(n, dtype=np.int64)
    runs = [run(i % s, i // s - 1, s)] + ([] if p.causal else [run(i + 2 * s, (n - 1 - i) // s - 1, s)])
    return [band, Pairs(segments_csr(n, runs), None)]


def _fixed(p, n):
    s, i = p.stride, np.arange(n, dtype=np.int64)
    start = i // s * s
    own = range_tiles(n, start, i + 1 if p.causal else np.minimum(n, start + s))
    summary = p._summary_keys(n)  # every query sees the summary keys outside its own block: a range of them
    if not len(summary):
        return [own]
    before = KeyRanges(summary, np.zeros(n, np.int64), np.searchsorted(summary, start), None)
    if p.causal:
        return [own, before]
    after = np.searchsorted(summary, np.minimum(n, start + s))
    return [own, before, KeyRanges(summary, after, np.full(n, len(summary), np.int64), None)]


def _sinks(p, n):
    i = np.arange(n, dtype=np.int64)
    band = band_piece(n, p.window - 1, 0)
    lo = np.maximum(0, i - p.window + 1)
    hi = np.minimum(p.num_sinks, lo)  # sinks left of the window
    if not p.num_sinks or not hi.any():
        return [band]
    if p.num_sinks < TILE:  # a thin column of tiles, as wide as the sinks
        sinks = np.arange(min(p.num_sinks, n), dtype=np.int64)
        width = -(-len(sinks) // 8) * 8
        seen = lambda a, j: j < np.minimum(p.num_sinks, a - p.window + 1)  # noqa: E731  (left of the window)
        return [band, rect_tiles(i, sinks, False, seen, bq=_TALL, bk=width)]
    return [band, range_tiles(n, np.zeros(n), hi)]


def _local2d(p, n):
    p._prepare(n)
    w, r = p.width, p.radius
    pieces = []
    for dy in range(-min(r, p.height - 1), min(r, p.height - 1) + 1):  # one band per image row offset
        rule = lambda i, j, dy=dy: (j // w - i // w == dy) & (abs(j % w - i % w) <= r)  # noqa: E731
        pieces.append(Band(min(r, w - 1) - dy * w, min(r, w - 1) + dy * w, 1, rule))
    return pieces


def _axial2d(p, n):
    p._prepare(n)
    w, h, i = p.width, p.height, np.arange(n, dtype=np.int64)
    row = range_tiles(n, i // w * w, i // w * w + w)
    if h >= TILE:
        return [row, Classes(w, 1, False, None)]  # one column: the other rows (class distance >= 1)
    y, x = i // w, i % w
    return [row, Pairs(segments_csr(n, [run(x, y, w), run((y + 1) * w + x, h - 1 - y, w)]), None)]


def _bigbird(p, n):
    """BigBird is decided per block: every tile of its layout is full, except, when causal, the diagonal tiles
    (j <= i inside them) and the short last block. The tests against the mask guard the layout's exactness."""
    if p.block < 16:
        return [Pairs(p.neighbors(n), None)]
    b, nb = p.block, -(-n // p.block)
    indptr, kblocks = _bigbird_tile_rows(p, n, nb)
    index = padded(np.arange(n, dtype=np.int64), b)
    qb = np.repeat(np.arange(nb), np.diff(indptr))
    full = (kblocks * b + b <= n) & ((kblocks != qb) if p.causal else True)
    rule = (lambda i, j: j <= i) if p.causal else _everything
    return [Tiles(index, index, b, b, indptr, kblocks, full, rule)]


def _bigbird_tile_rows(p, n, nb):
    """Column blocks of every row block from the pattern's own per-row rule (window, global and random blocks of
    whichever variant): O(tiles), never the nb×nb table; causal keeps the blocks up to the row's own."""
    p._prepare(n)
    rows = [p._col_blocks(rb, nb) for rb in range(nb)]
    if p.causal:
        rows = [cols[cols <= rb] for rb, cols in enumerate(rows)]
    indptr = np.zeros(nb + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(cols) for cols in rows])
    return indptr, np.concatenate(rows).astype(np.int64)


def _block_sparse(p, n):
    p._prepare(n)
    if p.block < 16:
        return [Pairs(p.neighbors(n), None)]
    return [layout_tiles(n, p.layout, p.block, True, _rule_of(p, n))]


_PLANNERS = [
    (Union, _union), (Intersection, _intersection), (Dense, _dense), (Causal, _causal),
    (SlidingWindow, _sliding), (DilatedWindow, _dilated), (GlobalTokens, _global), (Longformer, _longformer),
    (Strided, _strided), (Fixed, _fixed), (AttentionSinks, _sinks), (Local2D, _local2d), (Axial2D, _axial2d),
    (BlockSparse, _block_sparse), (BigBird, _bigbird),
]
__all__ = ["plan", "band_piece", "Tiles"]
