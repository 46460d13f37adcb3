"""Two Torch paths: masked SDPA (the honest dense price) and gather attention (O(nnz·d), differentiable on CPU)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..patterns import as_pattern

_MASKS: dict = {}
_CSRS: dict = {}
_CACHE_SIZE = 32


def _cached(cache: dict, key, make):
    if key not in cache:
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


def check_qkv(q, k, v):
    """q (..., H, n, d), k / v (..., H_kv, n, d) torch tensors with H a multiple of H_kv; returns k, v repeated."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{name} must be (..., n, d), got shape {tuple(t.shape)}")
    if k.shape != v.shape or k.shape[-1] != q.shape[-1] or k.shape[-2] != q.shape[-2]:
        raise ValueError(f"k, v must be (..., n, d) like q {tuple(q.shape)}; got {tuple(k.shape)}, {tuple(v.shape)}")
    if q.ndim >= 3 and k.ndim == q.ndim and q.shape[-3] != k.shape[-3]:
        if q.shape[-3] % k.shape[-3]:
            raise ValueError(f"query heads {q.shape[-3]} must be a multiple of kv heads {k.shape[-3]}")
        g = q.shape[-3] // k.shape[-3]  # GQA: each kv head serves g query heads
        k, v = k.repeat_interleave(g, -3), v.repeat_interleave(g, -3)
    return k, v


def pattern_mask(pattern, n: int, device):
    """(n, n) boolean tensor of the pattern, cached per (pattern, n, device)."""
    return _cached(_MASKS, (pattern, n, str(device)), lambda: torch.as_tensor(pattern.mask(n), device=device))


def masked_sdpa(q, k, v, pattern, scale=None):
    """scaled_dot_product_attention with the pattern's boolean mask: the dense price, whatever the pattern."""
    k, v = check_qkv(q, k, v)
    n = q.shape[-2]
    mask = pattern_mask(as_pattern(pattern), n, q.device)  # (n, n)
    empty = ~mask.any(-1)  # rows with no allowed key: SDPA would give NaN, the course's contract says 0
    if bool(empty.any()):
        mask = mask | empty[:, None]
    if not (bool(torch.isfinite(k).all()) and bool(torch.isfinite(v).all())):
        out = _masked_explicit(q, k, v, mask, scale)  # SDPA would leak masked NaN/inf keys and values
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.masked_fill(empty[:, None], 0.0) if bool(empty.any()) else out


def _masked_explicit(q, k, v, mask, scale=None):
    """Masked softmax attention where a masked key or value cannot reach a query, even as NaN or inf.

    SDPA adds -inf to masked logits (NaN + -inf = NaN) and multiplies masked values by 0 (0 · NaN = NaN).
    Here masked logits are replaced, not added to, and non-finite value rows only enter where allowed.
    """
    import torch

    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))  # (..., n, n)
    p = torch.softmax(s, dim=-1)
    bad = ~torch.isfinite(v).all(-1)  # (..., n) value rows holding a NaN or inf
    out = p @ torch.where(bad[..., None], torch.zeros_like(v), v)
    for j in torch.nonzero(bad.reshape(-1, bad.shape[-1]).any(0)).flatten().tolist():
        v_j = torch.where(bad[..., j, None], v[..., j, :], torch.zeros_like(v[..., j, :]))  # (..., d)
        out = out + torch.where(mask[:, j, None], p[..., :, j, None] * v_j[..., None, :], torch.zeros_like(out))
    return out


def _csr_tensors(pattern, n: int, device):
    """(rows, cols) int64 tensors of every allowed pair, cached per (pattern, n, device)."""
    def make():
        csr = pattern.neighbors(n)
        rows = torch.as_tensor(csr.row_ids().astype("int64"), device=device)
        return rows, torch.as_tensor(csr.indices.astype("int64"), device=device)

    return _cached(_CSRS, (pattern, n, str(device)), make)


def gather_attention(q, k, v, pattern, scale=None):
    """O(nnz·d) attention from the pattern's CSR: gather keys per pair, segment softmax, scatter-add values."""
    k, v = check_qkv(q, k, v)
    n, d = q.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    rows, cols = _csr_tensors(as_pattern(pattern), n, q.device)  # (nnz,), (nnz,)
    s = (q[..., rows, :] * k[..., cols, :]).sum(-1) * scale  # (..., nnz)
    idx = rows.expand_as(s)
    row_max = torch.full(q.shape[:-1], float("-inf"), dtype=s.dtype, device=s.device)
    row_max = row_max.scatter_reduce(-1, idx, s.detach(), "amax")  # (..., n); softmax is shift-invariant
    p = torch.exp(s - row_max.gather(-1, idx))  # (..., nnz)
    denom = torch.zeros(q.shape[:-1], dtype=s.dtype, device=s.device).index_add(-1, rows, p)  # (..., n)
    out = torch.zeros_like(q).index_add(-2, rows, p[..., None] * v[..., cols, :])  # (..., n, d)
    return out / denom.clamp_min(torch.finfo(s.dtype).tiny)[..., None]  # empty rows: 0 / tiny = 0
