"""Attention of a local query block against one K/V block, returning (out, lse), and its backward.

These are the flash-attention building blocks ring attention needs: a partial result is (out, lse) — the block's
softmax-normalised output and the log-sum-exp of its scores — and two partial results over disjoint key sets
merge exactly with `merge_partials` (the same math as `saattn_edu.reference.merge_partials`). The backward takes
the *final* out and lse (after every merge), as in FlashAttention-2. Queries are processed in row tiles, and keys
are sliced to the pattern's band, so memory stays bounded for long blocks. Rows with no allowed key give out = 0
and lse = -inf (never NaN).
"""
from __future__ import annotations

import numpy as np
import torch

_TILE_ELEMENTS = 2**21  # query rows per tile × keys: bounds the (B, H, rows, keys) score tile


def merge_partials(out_a, lse_a, out_b, lse_b):
    """Log-sum-exp merge of two partial results over disjoint keys, torch form of reference.merge_partials.

    out (..., n, dv), lse (..., n). With w = exp(lse - max(lse_a, lse_b)): out = (w_a·out_a + w_b·out_b) /
    (w_a + w_b), lse = max + log(w_a + w_b). Rows empty on both sides stay out = 0, lse = -inf. Differentiable
    (autograd) wherever a row saw at least one key.
    """
    if out_a.shape != out_b.shape or lse_a.shape != lse_b.shape or out_a.shape[:-1] != lse_a.shape:
        raise ValueError(f"merge_partials needs out (..., n, dv) and lse (..., n) of matching shapes, got out_a "
                         f"{tuple(out_a.shape)}, lse_a {tuple(lse_a.shape)}, out_b {tuple(out_b.shape)}, "
                         f"lse_b {tuple(lse_b.shape)}")
    m = torch.maximum(lse_a, lse_b)  # (..., n)
    m = torch.where(torch.isneginf(m), torch.zeros_like(m), m)  # both empty: exp(-inf - 0) = 0, not nan
    w_a, w_b = torch.exp(lse_a - m), torch.exp(lse_b - m)  # (..., n)
    total = w_a + w_b
    denom = total.clamp_min(torch.finfo(total.dtype).tiny).unsqueeze(-1)  # (..., n, 1); empty rows: 0 / tiny = 0
    out = (w_a.unsqueeze(-1) * out_a + w_b.unsqueeze(-1) * out_b) / denom
    return out, m + torch.log(total)


def _key_range(q_pos: np.ndarray, k_pos: np.ndarray, band) -> tuple[int, int]:
    """Slice of the (ascending) key positions that can meet queries q_pos under a band (left, right)."""
    if band is None:
        return 0, len(k_pos)
    left, right = band
    lo = np.searchsorted(k_pos, q_pos.min() - left, side="left")
    hi = np.searchsorted(k_pos, q_pos.max() + right, side="right")
    return int(lo), int(hi)


def _tile_mask(pattern, q_pos, k_pos, n, n_valid, device):
    """(rows, keys) bool tensor of allowed pairs, or None when every pair is allowed."""
    from ..patterns.dense import Dense

    if type(pattern) is Dense and n_valid >= n:
        return None
    i = torch.as_tensor(q_pos, device=device)[:, None]
    j = torch.as_tensor(k_pos, device=device)[None, :]
    ok = torch.broadcast_to(torch.as_tensor(pattern.allowed(i, j, n_valid)), (len(q_pos), len(k_pos)))
    return ok & (j < n_valid) if n_valid < n else ok


def _tiles(q_pos, k_pos, band, batch=1):
    """Yield (row slice, key slice) tiles: query rows in chunks, keys cut to the band of each chunk."""
    rows = max(1, _TILE_ELEMENTS // max(len(k_pos) * batch, 1))  # batch = B·H score rows per query row
    for start in range(0, len(q_pos), rows):
        r = slice(start, min(len(q_pos), start + rows))
        lo, hi = _key_range(q_pos[r], k_pos, band)
        yield r, slice(lo, hi)


def _scores(q, k, mask, scale):
    s = torch_matmul_t(q, k) * scale  # (B, H, rows, keys)
    return s if mask is None else s.masked_fill(~mask, float("-inf"))


def torch_matmul_t(a, b):
    """a @ bᵀ over the last two axes."""
    return a @ b.transpose(-1, -2)


def block_forward(q, k, v, q_pos, k_pos, pattern, n, n_valid, scale):
    """Partial attention of q (B, H, m, d) over the keys k, v (B, H, mk, d): (out (B, H, m, d), lse (B, H, m))."""
    out = torch.zeros_like(q)
    lse = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
    band = pattern.band(n_valid)
    for r, ks in _tiles(q_pos, k_pos, band, q[..., 0, 0].numel()):
        if ks.stop <= ks.start:
            continue  # no key of this block is in reach: out stays 0, lse stays -inf
        mask = _tile_mask(pattern, q_pos[r], k_pos[ks], n, n_valid, q.device)
        s = _scores(q[..., r, :], k[..., ks, :], mask, scale)  # (B, H, rows, keys)
        m = s.amax(-1, keepdim=True)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # fully masked rows: avoid -inf - -inf
        p = torch.exp(s - m)
        total = p.sum(-1, keepdim=True)  # (B, H, rows, 1)
        out[..., r, :] = (p @ v[..., ks, :]) / total.clamp_min(torch.finfo(q.dtype).tiny)
        lse[..., r] = (m + torch.log(total)).squeeze(-1)
    return out, lse


def block_backward(q, k, v, out, lse, dout, q_pos, k_pos, pattern, n, n_valid, scale):
    """Gradients (dq, dk, dv) of this block's share, given the final out and lse of the queries."""
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    delta = (dout * out).sum(-1, keepdim=True)  # (B, H, m, 1): rowsum(dO ∘ O)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse)).unsqueeze(-1)
    for r, ks in _tiles(q_pos, k_pos, pattern.band(n_valid), q[..., 0, 0].numel()):
        if ks.stop <= ks.start:
            continue
        mask = _tile_mask(pattern, q_pos[r], k_pos[ks], n, n_valid, q.device)
        p = torch.exp(_scores(q[..., r, :], k[..., ks, :], mask, scale) - safe[..., r, :])  # (B, H, rows, keys)
        do = dout[..., r, :]
        dv[..., ks, :] += p.transpose(-1, -2) @ do
        ds = p * (torch_matmul_t(do, v[..., ks, :]) - delta[..., r, :])  # softmax backward
        dq[..., r, :] += (ds @ k[..., ks, :]) * scale
        dk[..., ks, :] += (ds.transpose(-1, -2) @ q[..., r, :]) * scale
    return dq, dk, dv
