"""Structured sparse attention: each piece of a pattern (band, tiles, pair list) with BLAS, merged exactly.

Every piece yields, for the rows it touches, a normalised partial output with its row max m and row sum l (the
softmax over that piece's keys only). Pieces are disjoint, so the exact softmax over all allowed keys is their
log-sum-exp merge (`_State.merge`), as FlashAttention merges key blocks: nothing is counted twice and nothing
depends on a pair the pattern does not allow. Work runs in chunks of about `_CHUNK_ELEMENTS` scores, one
thread per core (chunks of one wave write disjoint rows).
"""
from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..patterns.rows import filter_pairs
from ._softmax import exp_shifted, finish_partials, scores, tile_partials, weigh_values
from .pieces import Band, Classes, KeyRanges, Pairs, Tiles
from .sparse import _CHUNK_ELEMENTS, _for_each_chunk, _padded_rows, band_block_size

_KEYS_PER_ITEM = 4096  # keys one query block scores at once; longer tile rows are split over several waves
_CLASS_QUERIES = 128  # queries of one residue class per matmul, against up to _KEYS_PER_ITEM keys of the class
_GATHER_BLOCK = 2**12  # pairs gathered at once: their k and v rows (1 MB each at d = 64) stay in a core's L2
_GATHER_JOB = 2**16  # pairs per work item (blocks of one group, one after another in one thread)
_EXACT_ROWS = 64  # a neighbour count shared by this many rows gets a group of its own, without padding


class _State:
    """Running (out, m, l) of every row: out normalised, m the row max (-inf: nothing yet), l the row sum."""

    def __init__(self, batch: int, n: int, dv: int, dtype):
        self.out = np.zeros((batch, n, dv), dtype)
        self.m = np.full((batch, n), -np.inf, dtype)
        self.l = np.zeros((batch, n), dtype)

    def merge(self, rows, o, m, l, assign: bool) -> None:
        """Fold a partial (o (B, R, dv), m, l (B, R)) into `rows`; `assign` when these rows hold nothing yet."""
        if assign:
            self.out[:, rows], self.m[:, rows], self.l[:, rows] = o, m, l
            return
        m0, l0 = self.m[:, rows], self.l[:, rows]
        top = np.maximum(m0, m)
        shift = np.where(np.isneginf(top), 0, top)  # rows empty on both sides: weights 0, not nan
        w0, w1 = l0 * np.exp(m0 - shift), l * np.exp(m - shift)  # (B, R)
        total = w0 + w1
        keep = np.where(total > 0, total, 1)
        old = self.out[:, rows]  # a view when rows is a slice: updated in place, two passes over (B, R, dv)
        old *= (w0 / keep)[..., None]
        old += (w1 / keep)[..., None] * o
        if not isinstance(rows, slice):
            self.out[:, rows] = old
        self.m[:, rows], self.l[:, rows] = top, total


def structured_attention(q3, k3, v3, pieces, scale: float):
    """Attention of q3 (B, n, d) over the union of disjoint `pieces` -> (B, n, dv)."""
    state = _State(len(q3), q3.shape[1], v3.shape[-1], q3.dtype)
    for k, piece in enumerate(pieces):
        runner = {Band: _run_band, Tiles: _run_tiles, Classes: _run_classes, KeyRanges: _run_key_ranges,
                  Pairs: _run_pairs}[type(piece)]
        runner(q3, k3, v3, piece, scale, state, assign=(k == 0))
    return state.out


# ----------------------------------------------------------------------------------------------------------------
# Bands: query blocks against the key window they reach, per residue class
# ----------------------------------------------------------------------------------------------------------------
def _run_band(q3, k3, v3, band: Band, scale, state, assign):
    n, step = q3.shape[1], max(1, min(band.step, q3.shape[1]))
    b = band_block_size(band.left + band.right, 0)  # offset bands (Local2D) are as wide as left + right
    width = b + band.left + band.right
    jobs = []
    for r in range(step):  # class r: positions r, r + step, ... (step 1: the whole sequence)
        length = len(range(r, n, step))
        blocks = -(-length // b)
        per_chunk = max(1, _CHUNK_ELEMENTS // (len(q3) * b * width))
        jobs += [(r, g0, min(blocks, g0 + per_chunk)) for g0 in range(0, blocks, per_chunk)]

    def work(job):
        r, g0, g1 = job
        views = q3[:, r::step], k3[:, r::step], v3[:, r::step]

        def rule(a, c):  # the piece's rule reads original positions
            return band.rule(r + step * a, r + step * c)

        o, m, l = _band_chunk(*views, None if band.rule is None else rule, scale, g0, g1, b, band.left, width)
        lo = g0 * b
        state.merge(slice(r + step * lo, r + step * (lo + o.shape[1]), step), o, m, l, assign)

    _for_each_chunk(work, jobs)


def _band_chunk(qs, ks, vs, rule, scale, g0, g1, b, left, width):
    """Partials of query blocks g0..g1-1 of one class (B, rows, ·): one batched matmul per chunk."""
    (batch, n), g = qs.shape[:2], g1 - g0
    q_lo, q_hi = g0 * b, min(n, g1 * b)
    qc = _padded_rows(qs, q_lo, g1 * b).reshape(batch, g, b, -1)  # (B, g, b, d)
    k_lo, k_hi = q_lo - left, (g1 - 1) * b - left + width  # the union of the chunk's key windows
    kc, vc = _padded_rows(ks, k_lo, k_hi), _padded_rows(vs, k_lo, k_hi)
    kt = np.swapaxes(sliding_window_view(kc, width, axis=1)[:, ::b], -1, -2)  # (B, g, width, d) strided views
    vt = np.swapaxes(sliding_window_view(vc, width, axis=1)[:, ::b], -1, -2)
    starts = np.arange(q_lo, g1 * b, b, dtype=np.int64)[:, None, None]  # (g, 1, 1)
    rows = starts + np.arange(b)[:, None]  # (g, b, 1) class positions
    cols = starts - left + np.arange(width)  # (g, 1, width)
    offset = np.arange(width) - np.arange(b)[:, None]  # (b, width): key slot - query slot, the same in every block
    allowed = (offset >= 0) & (offset <= width - b)  # the band itself: keys i - left .. i + right
    if rule is not None:
        allowed = allowed & np.asarray(rule(rows, cols), dtype=bool)
    if k_lo < 0 or k_hi > n or g1 * b > n:  # padding at the class ends never attends
        allowed = allowed & (rows < n) & (cols >= 0) & (cols < n)
    o, m, l = tile_partials(qc, kt, vt, allowed, scale)  # (B, g, b, dv), (B, g, b)
    keep = q_hi - q_lo
    return o.reshape(batch, g * b, -1)[:, :keep], m.reshape(batch, -1)[:, :keep], l.reshape(batch, -1)[:, :keep]


# ----------------------------------------------------------------------------------------------------------------
# Tiles: query blocks grouped by how many key tiles they see, one batched matmul per group chunk
# ----------------------------------------------------------------------------------------------------------------
def _run_tiles(q3, k3, v3, t: Tiles, scale, state, assign):
    counts = np.diff(t.indptr)
    if not len(counts) or counts.max() == 0:
        return
    per_item = max(1, _KEYS_PER_ITEM // t.bk)  # tiles per work item
    for wave in range(-(-int(counts.max()) // per_item)):  # a wave touches each query block at most once
        now = np.clip(counts - wave * per_item, 0, per_item)  # (nqb,) tiles of each block in this wave
        blocks = np.flatnonzero(now)
        blocks = blocks[np.argsort(now[blocks], kind="stable")]
        jobs = []
        for c in np.unique(now[blocks]):
            same = blocks[now[blocks] == c]
            g = max(1, _CHUNK_ELEMENTS // (len(q3) * t.bq * int(c) * t.bk))
            jobs += [(same[s : s + g], int(c)) for s in range(0, len(same), g)]
        first = assign and wave == 0
        _for_each_chunk(lambda job: _tiles_chunk(q3, k3, v3, t, scale, state, *job, wave * per_item, first), jobs)


def _tiles_chunk(q3, k3, v3, t: Tiles, scale, state, qblocks, c, offset, assign):
    """Query blocks `qblocks` (g,) against their tiles offset..offset+c-1: gather, one matmul, merge."""
    g, bq, bk = len(qblocks), t.bq, t.bk
    pos = t.indptr[qblocks][:, None] + offset + np.arange(c)  # (g, c) tile numbers
    qrows = t.q_index[qblocks[:, None] * bq + np.arange(bq)]  # (g, bq) query positions, -1 = pad
    kcols = t.k_index[t.kblocks[pos][..., None] * bk + np.arange(bk)]  # (g, c, bk) key positions
    allowed = _tile_mask(t, pos, qrows, kcols)  # (g, bq, c·bk) or None (every pair allowed)
    keys = np.maximum(kcols, 0).reshape(g, c * bk)
    qt, kt, vt = (np.take(x, idx, axis=1) for x, idx in ((q3, np.maximum(qrows, 0)), (k3, keys), (v3, keys)))
    o, m, l = tile_partials(qt, kt, vt, allowed, scale)  # np.take: faster than fancy indexing
    valid = qrows >= 0  # (g, bq)
    rows = qrows[valid]
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
        rows = slice(int(rows[0]), int(rows[-1]) + 1)  # consecutive query blocks: merge into a view
    state.merge(rows, o[:, valid], m[:, valid], l[:, valid], assign)


def _tile_mask(t: Tiles, pos, qrows, kcols):
    """The rule on the tiles not known to be full (and on every tile holding padding)."""
    g, c, bk = kcols.shape
    partial = np.ones((g, c), dtype=bool) if t.full is None else ~t.full[pos]
    if not partial.any():
        return None
    allowed = np.ones((g, qrows.shape[1], c, bk), dtype=bool)
    gi, ci = np.nonzero(partial)
    rows, cols = qrows[gi][:, :, None], kcols[gi, ci][:, None, :]  # (P, bq, 1), (P, 1, bk)
    allowed[gi, :, ci, :] = np.asarray(t.rule(rows, cols), dtype=bool) & (rows >= 0) & (cols >= 0)
    return allowed.reshape(g, qrows.shape[1], c * bk)


# ----------------------------------------------------------------------------------------------------------------
# Classes: residue classes as strided views, query blocks against the keys far enough along their class
# ----------------------------------------------------------------------------------------------------------------
def _run_classes(q3, k3, v3, piece: Classes, scale, state, assign):
    """Class r is positions r, r + step, ...: q3[:, r::step] is a view BLAS reads in place (leading dimension
    step·d), so each query block is a plain matmul against a key range of its class: no gather, no copy."""
    n, step = q3.shape[1], max(1, min(piece.step, q3.shape[1]))
    bq = _CLASS_QUERIES
    keys = max(bq, _CHUNK_ELEMENTS // (len(q3) * bq))  # keys per matmul: about _CHUNK_ELEMENTS scores
    jobs = [(r, a0) for r in range(step) for a0 in range(0, len(range(r, n, step)), bq)]

    def work(job):
        r, a0 = job
        length = len(range(r, n, step))
        a1 = min(length, a0 + bq)
        rows = slice(r + step * a0, r + step * (a1 - 1) + 1, step)  # the block's positions: a strided view
        hi = min(length, a1 - piece.gap) if piece.causal else length  # causal: keys c <= a - gap of some row a
        for c0 in range(0, hi, keys):  # non-causal: every key, the band around the diagonal masked
            o, m, l = _class_block(q3, k3, v3, piece, scale, r, step, (a0, a1), (c0, min(hi, c0 + keys)))
            state.merge(rows, o, m, l, assign and c0 == 0)

    _for_each_chunk(work, jobs)


def _class_block(q3, k3, v3, piece: Classes, scale, r, step, queries, keys):
    """Partials of class positions a0..a1-1 over class keys c0..c1-1 (B, a1 - a0, ·).

    Only the columns next to the band need a mask (a strip as wide as the block); the rest are full.
    """
    (a0, a1), (c0, c1), gap = queries, keys, piece.gap
    view = slice(r + step * c0, r + step * (c1 - 1) + 1, step)
    qv, kv, vv = q3[:, r + step * a0 : r + step * (a1 - 1) + 1 : step], k3[:, view], v3[:, view]
    a = np.arange(a0, a1)[:, None]  # (bq, 1) class positions

    def allowed_in(lo, hi):  # (bq, hi - lo): class distance >= gap on the allowed side(s)
        if piece.rule is None:  # the strip next to the band: one shape for every block, cached
            return _class_mask(a1 - a0, hi - lo, a0 - lo, gap, piece.causal)
        c = np.arange(lo, hi)
        ok = (a - c >= gap) | ((c - a >= gap) & (not piece.causal))
        return ok & np.asarray(piece.rule(r + step * a, r + step * c), dtype=bool)

    s = scores(qv, kv, scale)  # (B, bq, ck)
    lo, hi = (0, c1 - c0) if piece.rule is not None else (max(c0, a0 - gap + 1) - c0, min(c1, a1 - 1 + gap) - c0)
    if lo < hi:  # causal: keys past a0 - gap; non-causal: the band around the diagonal
        np.copyto(s[..., lo:hi], -np.inf, where=~allowed_in(c0 + lo, c0 + hi))
    m, l = exp_shifted(s, None)
    out = np.matmul(s, vv)  # (B, bq, dv)
    if not np.isfinite(out).all():  # a non-finite value row: keep it from the rows that may not see it
        out = weigh_values(s, vv, allowed_in(c0, c1))
    return finish_partials(out, m[..., 0], l[..., 0])


@functools.lru_cache(maxsize=64)
def _class_mask(rows: int, cols: int, shift: int, gap: int, causal: bool):
    """(rows, cols) class distance a - c = t - u + shift at least gap (or at most -gap when not causal); every
    block of a class shares it, so it is built once."""
    dist = np.arange(rows)[:, None] - np.arange(cols) + shift
    ok = (dist >= gap) | ((dist <= -gap) & (not causal))
    ok.setflags(write=False)
    return ok


# ----------------------------------------------------------------------------------------------------------------
# Key ranges: a key set gathered once, contiguous query blocks against contiguous ranges of it
# ----------------------------------------------------------------------------------------------------------------
def _run_key_ranges(q3, k3, v3, piece: KeyRanges, scale, state, assign):
    """One gather of the key set (Fixed: n·c/stride rows), then plain matmuls on views: a query block reads the
    range its rows reach, masked only where the rows' ranges differ."""
    n, bq = q3.shape[1], _CLASS_QUERIES
    ks, vs = np.take(k3, piece.keys, axis=1), np.take(v3, piece.keys, axis=1)  # (B, m, d), (B, m, dv)
    width = max(bq, _CHUNK_ELEMENTS // (len(q3) * bq))  # keys per matmul

    def work(i0):
        i1 = min(n, i0 + bq)
        lo, hi = piece.lo[i0:i1, None], piece.hi[i0:i1, None]  # (bq, 1)
        for c0 in range(int(lo[0, 0]), int(hi[-1, 0]), width):
            c1 = min(int(hi[-1, 0]), c0 + width)
            allowed = None
            if not (lo[-1, 0] <= c0 and c1 <= hi[0, 0]):  # some row's range starts or ends inside
                c = np.arange(c0, c1)
                allowed = (lo <= c) & (c < hi)
            if piece.rule is not None:
                ruled = np.asarray(piece.rule(np.arange(i0, i1)[:, None], piece.keys[c0:c1]), dtype=bool)
                allowed = ruled if allowed is None else allowed & ruled
            o, m, l = tile_partials(q3[:, i0:i1], ks[:, c0:c1], vs[:, c0:c1], allowed, scale)
            state.merge(slice(i0, i1), o, m, l, assign and c0 == lo[0, 0])

    _for_each_chunk(work, range(0, n, bq))


# ----------------------------------------------------------------------------------------------------------------
# Pairs: the gather path, for irregular neighbour lists (random keys, learned selections)
# ----------------------------------------------------------------------------------------------------------------
def _run_pairs(q3, k3, v3, piece: Pairs, scale, state, assign):
    """Rows grouped by neighbour count; each block of a group is one dense (count, rows, d) gather, two einsums
    and a softmax over the count axis: no loop over rows, no scatter-add, no padding where counts are shared."""
    csr = piece.csr if piece.rule is None else filter_pairs(piece.csr, piece.rule)
    batch, jobs = len(q3), []
    for width, exact, rows in _count_groups(np.diff(csr.indptr)):
        per_job = max(1, _GATHER_JOB // (batch * width))
        jobs += [(rows[s : s + per_job], width, exact) for s in range(0, len(rows), per_job)]

    def work(job):
        rows, width, exact = job
        per_block = max(1, _GATHER_BLOCK // (batch * width))
        for s in range(0, len(rows), per_block):
            block = _as_slice(rows[s : s + per_block])
            o, m, l = _gather_block(q3, k3, v3, csr, block, width, exact, scale)
            state.merge(block, o, m, l, assign)

    _for_each_chunk(work, jobs)


def _count_groups(lengths):
    """(width, exact, rows) groups: a neighbour count shared by `_EXACT_ROWS`+ rows is a group of its own (exact);
    the other rows go to power-of-two widths (padded, at most 2x). Empty rows are in none: they stay 0."""
    shared = np.bincount(lengths) >= _EXACT_ROWS  # (max count + 1,)
    exact = shared[lengths]  # (n,)
    pow2 = np.left_shift(1, np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64))
    key = np.where(exact, lengths, pow2) * 2 + ~exact  # exact and padded rows of one width stay apart
    key[lengths == 0] = -1
    order = np.argsort(key, kind="stable")  # rows ascending within a group (one run for uniform counts)
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for rows in np.split(order, bounds):
        g = int(key[rows[0]]) if len(rows) else -1  # no rows at all (n = 0): no group
        if g >= 0:
            yield g // 2, g % 2 == 0, rows


def _as_slice(rows):
    """Consecutive rows as a slice (views, no fancy indexing), else the index array."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:  # sorted and distinct, so consecutive
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _gather_block(q3, k3, v3, csr, rows, width, exact, scale):
    """Partials (o (B, R, dv), m, l (B, R)) of `rows` over their listed keys, `width` slots per row.

    Slots past a row's count (padded groups only) repeat the row's last key, an index the row may read, and are
    then removed by selection (logit -inf, value 0), never by multiplication: 0 · NaN would be NaN.
    """
    if isinstance(rows, slice) and exact:  # consecutive rows of one count: their keys are one run of indices
        keys = csr.indices[csr.indptr[rows.start] : csr.indptr[rows.stop]].reshape(-1, width).T  # (w, R)
        valid = None
    else:
        idx = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
        first, count = csr.indptr[idx], csr.indptr[idx + 1] - csr.indptr[idx]  # (R,)
        slot = np.arange(width)[:, None]  # (w, 1)
        keys = csr.indices[first + np.minimum(slot, count - 1)]  # (w, R)
        valid = None if exact else slot < count  # (w, R)
    kb, vb = np.take(k3, keys, axis=1), np.take(v3, keys, axis=1)  # (B, w, R, d): take beats fancy indexing
    s = np.einsum("bwrd,brd->bwr", kb, q3[:, rows])  # (B, w, R) one logit per pair
    s *= q3.dtype.type(scale)  # w numbers a row, not d
    if valid is not None:
        np.copyto(s, -np.inf, where=~valid)
        np.copyto(vb, 0, where=~valid[..., None])
    m = s.max(axis=1)  # (B, R): the count axis is outermost, so max, sum are passes over contiguous rows
    m[np.isneginf(m)] = 0  # rows whose logits are all -inf: exps 0, no nan
    s -= m[:, None]
    np.exp(s, out=s)
    l = s.sum(axis=1)  # (B, R)
    return finish_partials(np.einsum("bwr,bwrd->brd", s, vb), m, l)  # o (B, R, dv)
