"""FlashAttention in NumPy: walk key blocks with an online softmax, never holding the n×n score matrix.

For every query we keep a running max m, a running sum l of exp(logit - m) and an unnormalised output acc.
A new key block with a larger max rescales the old l and acc by exp(m_old - m_new): the softmax is exact at the
end without ever seeing all logits at once. This is `merge_partials` applied one key block at a time, with the
max and the sum kept apart instead of fused into a log-sum-exp, so fp32 keeps its precision even when logits
are ~1e4 (m + log l would round away the log l). On a GPU each query block is a separate program; here all
query blocks of a key block run as one batched matmul (the same arithmetic, vectorised), so memory is
O(n · block_k) instead of O(n²).
"""
from __future__ import annotations

import numpy as np

from ..patterns.base import check_int
from ._inputs import check_qkv, check_scale, mask_tile, resolve_mask
from ._softmax import log_sum_exp, safe_divide, scores, weigh_values


def flash_attention(q, k, v, block_q=64, block_k=64, mask=None, return_lse=False, scale=None):
    """Tiled online-softmax attention, equal to `dense_attention(q, k, v, mask)`.

    q (..., n_q, d), k (..., n_k, d), v (..., n_k, d_v); `mask` as in `dense_attention` (a Pattern is evaluated
    tile by tile). With `return_lse`, returns (out, lse) where lse (..., n_q) is the log-sum-exp of each row's
    scaled logits (-inf on rows with no allowed key, whose output is 0).
    """
    q, k, v, out_dtype = check_qkv(q, k, v)
    scale = check_scale(scale, q.shape[-1])
    block_q, block_k = check_int("block_q", block_q, minimum=1), check_int("block_k", block_k, minimum=1)
    lead, (n_q, d), n_k = q.shape[:-2], q.shape[-2:], k.shape[-2]
    mask = resolve_mask(mask, lead, n_q, n_k)
    num_q = -(-n_q // block_q)
    qb = np.zeros((*lead, num_q * block_q, d), q.dtype)  # padded to whole query blocks
    qb[..., :n_q, :] = q
    qb = qb.reshape(*lead, num_q, block_q, d)  # (..., num_q, block_q, d)
    rows = np.arange(num_q * block_q).reshape(num_q, block_q, 1)  # (num_q, block_q, 1) query index
    acc = np.zeros((*lead, num_q, block_q, v.shape[-1]), q.dtype)  # running unnormalised output
    m = np.full((*lead, num_q, block_q, 1), -np.inf, q.dtype)  # running row max: nothing seen yet
    l = np.zeros_like(m)  # running sum of exp(logit - m)
    for k0 in range(0, n_k, block_k):
        k1 = min(n_k, k0 + block_k)
        allowed = mask_tile(mask, rows, np.arange(k0, k1)[None, None, :], n_q, n_k)  # (num_q, block_q, c)
        if allowed is not None and not allowed.any():
            continue  # a key block no query may see (e.g. above the causal diagonal) costs nothing
        kt, vt = k[..., None, k0:k1, :], v[..., None, k0:k1, :]  # (..., 1, c, d): shared by all query blocks
        acc, m, l = _online_step(acc, m, l, scores(qb, kt, scale), allowed, vt)
    out = safe_divide(acc, l).reshape(*lead, num_q * block_q, v.shape[-1])[..., :n_q, :]
    out = out.astype(out_dtype, copy=False)
    if return_lse:
        lse = log_sum_exp(np.where(np.isneginf(m), 0, m), l)  # (..., num_q, block_q); -inf on empty rows
        return out, lse.reshape(*lead, num_q * block_q)[..., :n_q].astype(out_dtype, copy=False)
    return out


def _online_step(acc, m, l, s, allowed, vt):
    """Fold one key block's logits s (..., num_q, block_q, c) into the running (acc, m, l)."""
    if allowed is not None:
        np.copyto(s, -np.inf, where=~allowed)
    m_new = np.maximum(m, s.max(axis=-1, keepdims=True))  # (..., num_q, block_q, 1)
    m_safe = np.where(np.isneginf(m_new), 0, m_new)  # rows with nothing allowed yet: exps are all 0, not nan
    alpha = np.exp(m - m_safe)  # rescales what was accumulated under the old max (0 when m was -inf)
    p = np.exp(s - m_safe, out=s)  # (..., num_q, block_q, c)
    return alpha * acc + weigh_values(p, vt, allowed), m_new, alpha * l + p.sum(axis=-1, keepdims=True)
