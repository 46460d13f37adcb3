"""How each BigBird implementation draws its random blocks (one function per implementation, re-derived here).

All return an (nb, r) int table: row block bi's random column blocks, -1 where a row has none (global rows, or
fewer candidates than r). Entries may repeat a window or global block where the original does: the official
kernel then lists those keys twice, and `BigBird.key_counts` counts them.

- `official_itc_table` — google-research/bigbird `bigbird_block_rand_mask(_with_head)`, the code Hugging Face's
  `BigBirdBlockSparseAttention` runs in training mode: NumPy's legacy global RNG (`np.random.seed(seed)`, the
  layer index in HF), one `permutation` per (row, head), random blocks only from a *plan*: for most lengths every
  row draws from the first 2r+5 blocks; for n_pad in {1024, 3072, 4096} an older fixed plan (blocks 1..1024/block-1
  of a `max_len` sequence) is used.
- `uniform_table` — the paper's description: r distinct blocks per row, uniform over the blocks outside the
  window and the first g (global) blocks (earlier blocks only when causal).
- `deepspeed_table` — DeepSpeed `BigBirdSparsityConfig.set_random_layout`: Python's `random.sample` of r blocks
  anywhere in the row (0..bi when unidirectional), window and globals included.
"""
from __future__ import annotations

import random

import numpy as np

from .random_pattern import draw_distinct

OLD_PLAN_LENGTHS = (1024, 3072, 4096)  # lengths (tokens) for which HF and the paper's code use the older plan


def rand_plan(nb: int, r: int) -> tuple[list[int], list[int]]:
    """(segment ends in blocks, random blocks drawn inside each segment): HF `_get_rand_attn_plan`, in blocks."""
    if 2 * r + 5 < nb:  # every row draws its r blocks from the first 2r+5 blocks
        return [2 * r + 5, nb], [r, 0]
    if r + 5 < nb:  # split: r//2 from the first r+5 blocks, the rest from the remainder
        return [r + 5, nb], [r // 2, r - r // 2]
    return [nb], [r]


def _single_row(rs, row, lo, hi, r, left, right, g_left, g_right):
    """Up to r blocks of [lo, hi) in a random order, skipping the window, the segment's ends and two special cases."""
    perm = rs.permutation(np.arange(lo, hi, dtype=np.int32))  # one RNG call per (row, head), as the original
    illegal = set(range(row - left, row + right + 1)) | set(range(g_left)) | set(range(hi - g_right, hi))
    if row == 1:  # the second block may not pick the segment's second-to-last block
        illegal.add(hi - 2)
    if row == hi - 2:  # and the second-to-last block may not pick the second block
        illegal.add(1)
    picked = [int(b) for b in perm if b not in illegal]
    return picked[:r]


def _with_head(rs, nb, r, heads, half, g_top, g_bottom):
    """google-research `bigbird_block_rand_mask_with_head`: per plan segment, rows draw from allowed segments."""
    ends, counts = rand_plan(nb, r)
    tables = np.full((heads, nb, r), -1, dtype=np.int64)  # (heads, nb, r)
    offs = np.concatenate([[0], np.cumsum(counts)])  # random-slot range of every segment

    def fill(rows, seg_lo, seg_hi, seg):
        for row in rows:
            for h in range(heads):  # rows outer, heads inner: the original's RNG order
                pick = _single_row(rs, row, seg_lo, seg_hi, counts[seg], half, half, g_top, g_bottom)
                tables[h, row, offs[seg] : offs[seg] + len(pick)] = pick

    for p in range(len(ends)):
        if p > 0:
            if counts[p] > 0:  # earlier rows also draw from this segment
                fill(range(g_top, ends[p - 1]), ends[p - 1], ends[p], p)
            for q in range(p):  # this segment's rows draw from every earlier segment
                if counts[q] > 0:
                    fill(range(ends[p - 1], ends[p]), ends[q - 1] if q > 0 else 0, ends[q], q)
        if counts[p] > 0:
            fill(range(g_top if p == 0 else ends[p - 1], ends[p]), 0 if p == 0 else ends[p - 1], ends[p], p)
    return tables


def _old_plan(rs, nb, r, heads, block, max_len):
    """google-research `bigbird_block_rand_mask(..., last_idx=1024)` on a max_len sequence, cut to nb rows."""
    mb = max_len // block  # the original plans the whole max_len sequence, then keeps the first rows
    middle = np.arange(1, mb - 1, dtype=np.int32)
    last = 1024 // block - 1 if 1024 > 2 * block else mb - 1
    tables = np.full((heads, nb, r), -1, dtype=np.int64)
    for h in range(heads):  # heads outer here: one whole plan per head
        for i in range(1, mb - 1):
            start, end = i - 2, i
            if i == 1:
                cand = middle[2:last]
            elif i == 2:
                cand = middle[3:last]
            elif i in (mb - 3, mb - 2):  # the original leaves the window in here (its comments say so)
                cand = middle[:last]
            elif start > last:
                cand = middle[:last]
            elif end + 1 == last:
                cand = middle[:start]
            else:
                cand = np.concatenate((middle[:start], middle[end + 1 : last]))
            pick = rs.permutation(cand)[:r]
            if i < nb - 1:
                tables[h, i, : len(pick)] = pick
    return tables


def official_itc_table(nb, r, seed, *, block, window_blocks=3, global_blocks=2, heads=1, head=0, max_len=4096,
                       training=True):
    """(nb, r) random blocks of the official ITC planner for one head; eval mode (HF) gives block 0 everywhere."""
    half, g_top, g_bottom = window_blocks // 2, (global_blocks + 1) // 2, global_blocks // 2
    table = np.full((nb, r), -1, dtype=np.int64)
    middle = slice(g_top, nb - g_bottom)
    if not training:  # HF eval(): the random slots hold block 0 (the first, global block) instead of a draw
        table[middle] = 0
        return table
    rs = np.random.RandomState(seed)  # the legacy global RNG the original seeds with np.random.seed
    old = nb * block in OLD_PLAN_LENGTHS and nb * block <= max_len and (window_blocks, global_blocks) == (3, 2)
    tables = _old_plan(rs, nb, r, heads, block, max_len) if old else _with_head(rs, nb, r, heads, half, g_top,
                                                                                g_bottom)
    table[middle] = tables[head][middle]
    return table


def uniform_table(nb, r, seed, *, window_blocks, global_blocks, causal):
    """The paper's rule: r distinct blocks, uniform outside the window and the first g blocks (earlier if causal)."""
    g, half = global_blocks, window_blocks // 2
    bi = np.arange(nb, dtype=np.int64)
    left = np.maximum(0, bi - half - g)  # candidates g .. bi-half-1 (left of the window)
    right_start = np.maximum(bi + half + 1, g)  # candidates right_start .. nb-1 (right of the window)
    right = np.zeros(nb, np.int64) if causal else np.maximum(0, nb - right_start)
    counts = np.where(bi < g, 0, left + right)  # global row blocks already see everything
    x = draw_distinct(np.random.default_rng(seed), counts, r)  # (nb, r) in [0, counts)
    blocks = np.where(x < left[:, None], g + x, right_start[:, None] + x - left[:, None])  # monotone in x
    return np.where(x < 0, -1, blocks)


def deepspeed_table(nb, r, seed, *, causal):
    """DeepSpeed: per row, random.sample(range(nb) or range(bi + 1), r); a row with too few blocks takes them all."""
    rng = random.Random(seed)  # DeepSpeed draws with Python's `random`; seeding it with `seed` reproduces one head
    table = np.full((nb, r), -1, dtype=np.int64)
    for bi in range(nb):
        pool = range(bi + 1) if causal else range(nb)
        pick = rng.sample(pool, min(r, len(pool)))  # DeepSpeed raises when nb < r; we take what exists
        table[bi, : len(pick)] = pick
    return table
