"""Masked, numerically stable softmax attention on one tile, and the log-sum-exp merge of partial results.

Every reference path (dense, banded, block-sparse, flash) computes attention of some queries against some keys
with `attend_tile`, so the stability rules live once:
- subtract the row max before `exp` (logits of ±1e4 stay finite);
- a row with no allowed key has max -inf: we subtract 0 instead, its exps are all 0, its output is 0 (no NaN)
  and its log-sum-exp is -inf.
"""
from __future__ import annotations

import numpy as np


def scores(q, k, scale: float):
    """Scaled logits q kᵀ·scale; the scale multiplies q (n·d work) rather than the scores (n² work)."""
    return np.matmul(q * q.dtype.type(scale), np.swapaxes(k, -1, -2))  # (..., r, c)


def exp_shifted(s, allowed):
    """In place: mask `s` (..., r, c), subtract the row max, exponentiate. Returns (row max m, row sum l).

    m is 0 on rows with no allowed key (their exps are 0), so `m + log(l)` is -inf there.
    """
    if allowed is not None:
        np.copyto(s, -np.inf, where=~np.asarray(allowed, dtype=bool))  # masked logits -> exp() = 0
    if s.shape[-1] == 0:
        shape = s.shape[:-1] + (1,)
        return np.zeros(shape, s.dtype), np.zeros(shape, s.dtype)
    m = s.max(axis=-1, keepdims=True)  # (..., r, 1)
    m[np.isneginf(m)] = 0  # empty rows: all logits -inf, shift by 0 so exp gives 0, not nan
    s -= m
    np.exp(s, out=s)
    return m, s.sum(axis=-1, keepdims=True)  # (..., r, 1) each


def log_sum_exp(m, l):
    """lse = m + log(l), -inf where l == 0 (no allowed key); m, l (..., r, 1) -> (..., r)."""
    with np.errstate(divide="ignore"):
        return (m + np.log(l))[..., 0]


def safe_divide(x, l):
    """x / l with empty rows (l == 0, x == 0) giving 0."""
    return x / np.where(l > 0, l, 1)


def weigh_values(p, v, allowed):
    """p (..., r, c) @ v (..., c, dv), where a value row a query may not see never reaches it.

    A masked weight is 0, but 0 · NaN is NaN: a NaN or inf in a value row that is masked for a query would leak
    into it through the matmul. Non-finite value rows are zeroed for the matmul and added back, pair by pair,
    only where `allowed` (rare: the check is one pass over v, the fix-up one loop over the bad keys).
    """
    out = np.matmul(p, v)
    if allowed is None or np.isfinite(out).all():
        return out
    bad = ~np.isfinite(v).all(axis=-1)  # (..., c) value rows holding a NaN or inf
    if not bad.any():
        return out
    out = np.matmul(p, np.where(bad[..., None], 0, v))
    allowed = np.asarray(allowed, dtype=bool)
    v_bad = np.where(bad[..., None], v, 0)  # only the bad rows: good ones are already in `out`
    for j in np.flatnonzero(bad.reshape(-1, bad.shape[-1]).any(axis=0)):
        w = np.where(allowed[..., :, j], p[..., :, j], 0)[..., None]  # (..., r, 1)
        out = out + np.where(allowed[..., :, j, None], w * v_bad[..., j, None, :], 0)
    return out


def tile_partials(q, k, v, allowed, scale: float):
    """Attention of q (..., r, d) over k, v (..., c, d): (out (..., r, dv), row max m (..., r), row sum l (..., r)).

    out is normalised; m is -inf and l is 0 on rows with no allowed key. `merge_into` combines such partials.
    """
    s = scores(q, k, scale)  # (..., r, c)
    m, l = exp_shifted(s, allowed)
    return finish_partials(weigh_values(s, v, allowed), m[..., 0], l[..., 0])


def finish_partials(out, m, l):
    """Partials from unnormalised out (..., r, dv) and row max m, row sum l (..., r): out / l in place (empty rows,
    l == 0 and out == 0, stay 0), m -inf where nothing was allowed."""
    out /= np.where(l > 0, l, 1)[..., None]
    return out, np.where(l > 0, m, -np.inf), l


def attend_tile(q, k, v, allowed, scale: float):
    """Softmax attention of q (..., r, d) over k (..., c, d), v (..., c, dv) -> (out (..., r, dv), lse (..., r))."""
    s = scores(q, k, scale)  # (..., r, c)
    m, l = exp_shifted(s, allowed)
    out = safe_divide(weigh_values(s, v, allowed), l)  # (..., r, dv)
    return out, log_sum_exp(m, l)


def merge_partials(out_a, lse_a, out_b, lse_b):
    """Combine attention over two disjoint key sets, each given as (out (..., n, dv), lse (..., n)).

    With weights w = exp(lse - max(lse_a, lse_b)): out = (w_a out_a + w_b out_b) / (w_a + w_b) and
    lse = max + log(w_a + w_b). Rows empty on both sides stay out = 0, lse = -inf. This is the rule that lets
    FlashAttention walk key blocks one at a time and ring attention pass key blocks between devices.
    Precision: an fp32 lse near 1e4 is only known to ~1e-3, so `flash_attention` keeps the max and the sum
    apart while it walks; merge in fp64 (or keep logits moderate) where that matters.
    """
    out_a, out_b = np.asarray(out_a), np.asarray(out_b)
    lse_a, lse_b = np.asarray(lse_a), np.asarray(lse_b)
    if out_a.shape != out_b.shape or lse_a.shape != lse_b.shape or out_a.shape[:-1] != lse_a.shape:
        raise ValueError(
            f"merge_partials needs out (..., n, dv) and lse (..., n) of matching shapes, got out_a {out_a.shape}, "
            f"lse_a {lse_a.shape}, out_b {out_b.shape}, lse_b {lse_b.shape}"
        )
    m = np.maximum(lse_a, lse_b)
    m_safe = np.where(np.isneginf(m), 0, m)  # both empty: weights exp(-inf) = 0, not nan
    w_a, w_b = np.exp(lse_a - m_safe), np.exp(lse_b - m_safe)  # (..., n)
    total = w_a + w_b
    out = safe_divide(w_a[..., None] * out_a + w_b[..., None] * out_b, total[..., None])
    with np.errstate(divide="ignore"):
        lse = m_safe + np.log(total)
    return out.astype(out_a.dtype, copy=False), lse.astype(lse_a.dtype, copy=False)
