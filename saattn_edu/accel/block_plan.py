"""Block plans for the Triton kernel: which key tiles each query tile visits, which of them are full.

A plan is built once per (rule, length, tile shape, device) from the pattern's own rule, evaluated with torch on
the device in row chunks (never an n×n array at once), and cached. The kernel reads it as two CSRs of tile
indices per query tile (full tiles: no mask at all; partial tiles: a packed uint8 token mask each) and the
transposed pair per key tile (for the dK/dV backward kernel).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

_CHUNK = 2**26  # (i, j) pairs evaluated at once: bounded memory on small GPUs and on CPU
_CACHE: dict = {}
_CACHE_SIZE = 96


class TileCSR(NamedTuple):
    """Per outer tile: full inner tiles `full_idx[full_ptr[t]:full_ptr[t+1]]`, partial ones with mask ids."""

    full_ptr: torch.Tensor  # (n_outer + 1,) int32
    full_idx: torch.Tensor  # (n_full,) int32
    part_ptr: torch.Tensor  # (n_outer + 1,) int32
    part_idx: torch.Tensor  # (n_part,) int32
    part_mask: torch.Tensor  # (n_part,) int32: row of `BlockPlan.masks`
    order: torch.Tensor  # (n_outer,) int32: outer tiles by decreasing work (long rows first: no straggler tail)


class BlockPlan(NamedTuple):
    """Tiles of size (bm, bn) over an n_pos × n_pos grid: by query tile (`rows`) and by key tile (`cols`)."""

    bm: int
    bn: int
    rows: TileCSR
    cols: TileCSR
    masks: torch.Tensor  # (n_part, bm, bn) uint8: 1 where the pair is allowed
    n_active: int  # active tiles (full + partial)
    n_tiles: int  # all tiles of the grid


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def pattern_rule(pattern, n: int) -> Callable:
    """rule(i, j) -> bool tensor from the pattern's FlexAttention predicate (prepares per-n tables)."""
    mask_mod = pattern.mask_mod_for(n)
    return lambda i, j: mask_mod(None, None, i, j)


def _eval(rule, i, j):
    out = torch.as_tensor(rule(i, j), device=i.device)
    return out.expand(torch.broadcast_shapes(i.shape, j.shape))


def tile_flags(rule, n_pos: int, n_min: int, bm: int, bn: int, device):
    """(active, full) booleans (n_mb, n_nb): any pair allowed / every pair allowed and inside n_min."""
    nmb, nnb = _cdiv(n_pos, bm), _cdiv(n_pos, bn)
    cols = torch.arange(nnb * bn, device=device, dtype=torch.int32)[None, :]  # (1, nnb*bn)
    active = torch.zeros(nmb, nnb, dtype=torch.bool, device=device)
    full = torch.zeros_like(active)
    step = max(1, _CHUNK // (nnb * bn) // bm) * bm
    for start in range(0, nmb * bm, step):
        rows = torch.arange(start, min(start + step, nmb * bm), device=device, dtype=torch.int32)[:, None]
        ok = _eval(rule, rows, cols) & (rows < n_pos) & (cols < n_pos)  # (r, nnb*bn)
        tiles = slice(start // bm, start // bm + rows.shape[0] // bm)
        active[tiles] = ok.view(-1, bm, nnb, bn).any(3).any(1)
        inside = ok & (rows < n_min) & (cols < n_min)  # tiles crossing n_min need the bounds mask
        full[tiles] = inside.view(-1, bm, nnb, bn).all(3).all(1)
    return active, full


def tile_masks(rule, tiles, n_pos: int, bm: int, bn: int):
    """(P, bm, bn) uint8 token masks of the tiles (P, 2) = (query tile, key tile)."""
    dev = tiles.device
    out = torch.empty(tiles.shape[0], bm, bn, dtype=torch.uint8, device=dev)
    ar_m = torch.arange(bm, device=dev, dtype=torch.int32)[None, :, None]
    ar_n = torch.arange(bn, device=dev, dtype=torch.int32)[None, None, :]
    step = max(1, _CHUNK // (bm * bn))
    for s in range(0, tiles.shape[0], step):
        t = tiles[s : s + step].to(torch.int32)
        rows = t[:, 0, None, None] * bm + ar_m  # (p, bm, 1)
        cols = t[:, 1, None, None] * bn + ar_n  # (p, 1, bn)
        out[s : s + step] = (_eval(rule, rows, cols) & (rows < n_pos) & (cols < n_pos)).to(torch.uint8)
    return out


def _csr(sel, ids=None) -> tuple:
    """(ptr, idx[, ids]) of a boolean (outer, inner) selection in row-major order."""
    outer, inner = sel.nonzero(as_tuple=True)
    ptr = torch.zeros(sel.shape[0] + 1, dtype=torch.int32, device=sel.device)
    ptr[1:] = torch.cumsum(torch.bincount(outer, minlength=sel.shape[0]), 0)
    extra = () if ids is None else (ids[outer, inner].to(torch.int32).contiguous(),)
    return (ptr, inner.to(torch.int32).contiguous()) + extra


def _order(active):
    """Outer tiles sorted by active inner tiles, most first (longest-processing-time-first scheduling)."""
    return torch.argsort(active.sum(1), descending=True, stable=True).to(torch.int32).contiguous()


def build_plan(rule, n_pos: int, bm: int, bn: int, device, n_min: int | None = None) -> BlockPlan:
    """Plan of (bm, bn) tiles: row and column CSRs of full and partial tiles, and the partial tiles' masks."""
    n_min = n_pos if n_min is None else n_min
    active, full = tile_flags(rule, n_pos, n_min, bm, bn, device)
    part = active & ~full
    ids = torch.full(part.shape, -1, dtype=torch.int64, device=part.device)
    ids[part] = torch.arange(int(part.sum()), device=part.device)  # row-major numbering of partial tiles
    masks = tile_masks(rule, part.nonzero(), n_pos, bm, bn)
    rows = TileCSR(*_csr(full), *_csr(part, ids), _order(active))
    cols = TileCSR(*_csr(full.T), *_csr(part.T, ids.T), _order(active.T))
    return BlockPlan(bm, bn, rows, cols, masks, int(active.sum()), active.numel())


def cached_plan(key, rule_factory, n_pos: int, bm: int, bn: int, device, n_min: int | None = None):
    """build_plan, cached per (key, n_pos, n_min, tile shape, device); rule_factory() makes the rule on a miss."""
    ck = (key, n_pos, n_min, bm, bn, str(device))
    if ck not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[ck] = build_plan(rule_factory(), n_pos, bm, bn, device, n_min)
    return _CACHE[ck]
