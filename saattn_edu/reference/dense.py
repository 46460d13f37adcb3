"""Dense attention: the O(n²) ground truth every sparse path is checked against."""
from __future__ import annotations

from ..patterns.base import Pattern
from ._inputs import check_qkv, check_scale, resolve_mask
from ._softmax import exp_shifted, safe_divide, scores, weigh_values


def dense_attention(q, k, v, mask=None, scale=None, return_probs=False):
    """softmax(q kᵀ·scale, masked) v for q (..., n_q, d), k (..., n_k, d), v (..., n_k, d_v).

    `mask` is None, a boolean array broadcastable to (..., n_q, n_k) (True = may attend) or a Pattern (then
    `pattern.mask(n)`). Rows with no allowed key give 0. With `return_probs`, returns (out, probs).
    Materialises the full (..., n_q, n_k) score matrix: memory grows as n².
    """
    q, k, v, out_dtype = check_qkv(q, k, v)
    scale = check_scale(scale, q.shape[-1])
    allowed = resolve_mask(mask, q.shape[:-2], q.shape[-2], k.shape[-2])
    if isinstance(allowed, Pattern):
        allowed = allowed.mask(q.shape[-2])  # (n, n)
    s = scores(q, k, scale)  # (..., n_q, n_k)
    m, l = exp_shifted(s, allowed)  # s now holds exp(s - rowmax)
    if return_probs:
        probs = safe_divide(s, l)  # (..., n_q, n_k), empty rows all 0
        return weigh_values(probs, v, allowed).astype(out_dtype, copy=False), probs.astype(out_dtype, copy=False)
    out = safe_divide(weigh_values(s, v, allowed), l)  # (..., n_q, d_v); masked NaN values never leak
    return out.astype(out_dtype, copy=False)
