"""Block-sparse attention: whole (block × block) tiles are either computed or skipped, as GPU kernels do."""
from __future__ import annotations

import numpy as np

from ..patterns.base import check_block
from ._inputs import check_qkv, check_scale, mask_tile, resolve_mask
from ._softmax import attend_tile


def block_sparse_attention(q, k, v, layout, block, mask=None, scale=None):
    """Attention where query block bi sees key block bj only if `layout[bi, bj]`; `mask` refines inside tiles.

    q (..., n_q, d), k (..., n_k, d), v (..., n_k, d_v); layout bool (ceil(n_q/block), ceil(n_k/block)).
    `mask` (a boolean array broadcastable to (..., n_q, n_k), or a Pattern) is applied within active tiles, so
    the result equals `dense_attention` with mask & (layout expanded to tokens). Rows with no key give 0.
    """
    q, k, v, out_dtype = check_qkv(q, k, v)
    scale = check_scale(scale, q.shape[-1])
    n_q, n_k = q.shape[-2], k.shape[-2]
    block = check_block(block)
    layout = check_layout(layout, n_q, n_k, block)
    mask = resolve_mask(mask, q.shape[:-2], n_q, n_k)
    out = np.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)  # (..., n_q, d_v); skipped rows stay 0
    for bi in range(layout.shape[0]):  # one query block at a time; a GPU runs these in parallel
        rows = np.arange(bi * block, min(n_q, (bi + 1) * block))  # (r,)
        keys = _active_keys(layout[bi], block, n_k)  # (c,) tokens of the active key blocks
        if len(keys):
            allowed = mask_tile(mask, rows[:, None], keys[None, :], n_q, n_k)  # (..., r, c) or None
            tile, _ = attend_tile(q[..., rows, :], k[..., keys, :], v[..., keys, :], allowed, scale)
            out[..., rows, :] = tile
    return out.astype(out_dtype, copy=False)


def _active_keys(layout_row, block: int, n_k: int):
    """Key token indices of the active blocks in one layout row, without the padding past n_k."""
    cols = (np.flatnonzero(layout_row)[:, None] * block + np.arange(block)).ravel()  # (blocks * block,)
    return cols[cols < n_k]


def check_layout(layout, n_q: int, n_k: int, block: int) -> np.ndarray:
    """A boolean (ceil(n_q/block), ceil(n_k/block)) block layout."""
    arr = np.asarray(layout)
    if arr.dtype != np.bool_:
        raise TypeError(f"layout must be a boolean array, got dtype {arr.dtype}")
    expected = (-(-n_q // block), -(-n_k // block))
    if arr.shape != expected:
        raise ValueError(
            f"layout must have shape (ceil(n_q/block), ceil(n_k/block)) = {expected} for n_q={n_q}, n_k={n_k}, "
            f"block={block}, got shape {arr.shape}"
        )
    return arr
