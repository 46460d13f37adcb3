"""Grouped-query attention (GQA): several query heads share one key/value head, so the KV cache shrinks.

With `num_heads` query heads and `num_kv_heads` KV heads, query head h reads KV head h // group, where
group = num_heads // num_kv_heads (Llama 2/3, Mistral). num_kv_heads == num_heads is multi-head attention,
num_kv_heads == 1 is multi-query attention (MQA).
"""
from __future__ import annotations

import math

import torch

from ..patterns.base import check_int


def group_size(num_heads: int, num_kv_heads: int) -> int:
    """Query heads per KV head; raises ValueError unless num_heads is a multiple of num_kv_heads."""
    num_heads = check_int("num_heads", num_heads, minimum=1)
    num_kv_heads = check_int("num_kv_heads", num_kv_heads, minimum=1)
    if num_heads % num_kv_heads:
        raise ValueError(
            f"num_heads={num_heads} must be a multiple of num_kv_heads={num_kv_heads} (each KV head serves "
            f"the same number of query heads)"
        )
    return num_heads // num_kv_heads


def kv_head_for(q_head: int, num_heads: int, num_kv_heads: int) -> int:
    """Index of the KV head that query head `q_head` reads."""
    g = group_size(num_heads, num_kv_heads)
    q_head = check_int("q_head", q_head, minimum=0)
    if q_head >= num_heads:
        raise ValueError(f"q_head must be < num_heads={num_heads}, got {q_head}")
    return q_head // g


def repeat_kv(x, group: int):
    """(B, Hkv, L, d) -> (B, Hkv*group, L, d): each KV head repeated for its `group` query heads (a copy)."""
    group = check_int("group", group, minimum=1)
    B, Hkv, L, d = x.shape
    if group == 1:
        return x
    return x[:, :, None].expand(B, Hkv, group, L, d).reshape(B, Hkv * group, L, d)


def grouped_attention(q, k, v, mask=None, scale=None):
    """Softmax attention with GQA, without copying K/V: q (B, H, t, d), k and v (B, Hkv, L, d), mask (t, L) bool.

    Rows whose mask is all False return 0 (never NaN). Returns (B, H, t, d).
    """
    B, H, t, d = q.shape
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    if k.shape[0] != B or k.shape[-1] != d:
        raise ValueError(f"k {tuple(k.shape)} does not match q {tuple(q.shape)} in batch or head_dim")
    Hkv, L = k.shape[1], k.shape[2]
    g = group_size(H, Hkv)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    # Query heads h = kv*g + r share KV head kv: fold the g heads into the rows, so K and V are never copied.
    qg = q.reshape(B, Hkv, g * t, d) * scale  # (B, Hkv, g·t, d)
    scores = torch.matmul(qg, k.transpose(-1, -2))  # (B, Hkv, g·t, L)
    if mask is not None:
        if tuple(mask.shape) != (t, L):
            raise ValueError(f"mask must have shape (t, L)=({t}, {L}), got {tuple(mask.shape)}")
        scores.view(B, Hkv, g, t, L).masked_fill_(~mask, float("-inf"))  # in place: scores are the big tensor
    probs = torch.softmax(scores, dim=-1)  # fused; a row with no allowed key gives NaN here ...
    out = torch.matmul(probs, v).view(B, Hkv, g, t, d)  # (B, Hkv, g, t, d)
    if mask is not None:  # ... and 0 here: the fix touches the small output, not the scores
        out = torch.where(mask.any(dim=-1)[:, None], out, torch.zeros((), dtype=out.dtype))
    return out.reshape(B, H, t, d)
