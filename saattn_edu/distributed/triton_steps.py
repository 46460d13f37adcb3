"""Ring steps on the Triton block-sparse kernel: one (query block, key block) pair per call, as (out, lse).

Same signatures as `blockwise.block_forward` / `block_backward`, so the ring swaps one for the other. The query
and key blocks are a rank's own tokens and a visiting rank's tokens at arbitrary global positions (zigzag and
striped layouts included); the kernel's tile plan is built from the pattern evaluated at those positions and
cached per (pattern, positions) — every (rank, step) pair is planned once, and a block with no active tile costs
nothing. The kernel keeps its lse in log2 units; the ring merges natural-log lse, so this file converts.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from ..accel.block_sparse_flash import Pass, _backward, _forward

LN2 = math.log(2.0)


def _positions_key(pos: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(pos, dtype=np.int64).tobytes()).hexdigest()


def step_rule(pattern, q_pos, k_pos, n_valid: int, device):
    """rule(i, j) over local indices: the pattern at global positions, keys past n_valid (padding) excluded."""
    mask_mod = pattern.mask_mod_for(n_valid)
    qp = torch.as_tensor(np.asarray(q_pos), device=device)
    kp = torch.as_tensor(np.asarray(k_pos), device=device)

    def rule(i, j):
        gi = qp[i.long().clamp(0, len(qp) - 1)]  # tile padding asks past the block: the plan masks it anyway
        gj = kp[j.long().clamp(0, len(kp) - 1)]
        return torch.as_tensor(mask_mod(None, None, gi, gj), device=device) & (gj < n_valid)

    return rule


def step_pass(pattern, q_pos, k_pos, n_valid: int, device) -> Pass:
    """The kernel pass of one ring step (cached plan per pattern and positions)."""
    m = len(q_pos)
    if len(k_pos) != m:
        raise ValueError(f"ring blocks must be equal: {m} queries and {len(k_pos)} keys")
    key = ("ring", pattern, n_valid, _positions_key(q_pos), _positions_key(k_pos))
    return Pass(key, lambda: step_rule(pattern, q_pos, k_pos, n_valid, device), n_pos=m, n_min=m)


def _bhnd(t):
    """(..., m, d) -> a contiguous (1, rows, m, d) for the kernel (every leading axis folded into heads)."""
    rows = int(np.prod(t.shape[:-2], dtype=np.int64)) if t.dim() > 2 else 1
    return t.reshape(1, rows, *t.shape[-2:]).contiguous(), t.shape


def triton_block_forward(q, k, v, q_pos, k_pos, pattern, n, n_valid, scale):
    """(out (..., m, d) in q's dtype, lse (..., m) float32, natural log) of q over the visiting block k, v."""
    if q.is_cuda and q.shape[-1] not in (16, 32, 64, 128):
        raise ValueError(f"the Triton ring steps need head dim 16, 32, 64 or 128 on a GPU, got {q.shape[-1]}")
    (q4, shape), (k4, _), (v4, _) = _bhnd(q), _bhnd(k), _bhnd(v)
    ps = step_pass(pattern, q_pos, k_pos, n_valid, q.device)
    out, lse2 = _forward(q4, k4, v4, (ps,), float(scale))
    return out.reshape(shape), (lse2 * LN2).reshape(shape[:-1])


def triton_block_backward(q, k, v, out, lse, dout, q_pos, k_pos, pattern, n, n_valid, scale):
    """(dq, dk, dv) of this block's share, from the final out and lse (natural log) of the queries."""
    (q4, shape), (k4, kshape), (v4, _) = _bhnd(q), _bhnd(k), _bhnd(v)
    o4, _ = _bhnd(out.to(q.dtype))
    do4, _ = _bhnd(dout.to(q.dtype))
    lse2 = torch.where(torch.isfinite(lse), lse.float() / LN2, torch.full_like(lse.float(), float("inf")))
    lse2 = lse2.reshape(q4.shape[:-1]).contiguous()  # rows that saw no key anywhere: +inf makes every p = 0
    ps = step_pass(pattern, q_pos, k_pos, n_valid, q.device)
    dq, dk, dv = _backward(q4, k4, v4, o4, lse2, do4, (ps,), float(scale))
    return dq.reshape(shape), dk.reshape(kshape), dv.reshape(kshape)
