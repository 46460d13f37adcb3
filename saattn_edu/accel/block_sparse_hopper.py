"""The forward and backward kernels again, for Hopper (sm_90): Q/K/V/dO tiles through tensor descriptors (TMA).

Same plan, same online softmax, same recompute-backward and same results as block_sparse_kernels.py, for the plain
token order (tok_stride = 1). What changes is how tiles arrive: a 3-D descriptor over (batch·head, n, HEAD_DIM) lets the
copy engine fetch a whole (BLOCK_N, HEAD_DIM) tile of K or V with one instruction (rows past n come back as zeros,
so no bounds masks), which frees registers and issue slots for the two matmuls; and the scale is folded into one
multiply-add (`qk · qk_scale − m`), as Triton's fused-attention tutorial does. The interpreter and other GPUs keep
the pointer kernels (`use_descriptors` says which one runs).
"""
from __future__ import annotations

import os

import torch

from .block_sparse_kernels import _add, _maximum, _tile_mask, tl, triton

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # Triton < 3.4: no host-side descriptors; the pointer kernel serves everywhere
    TensorDescriptor = None


def use_descriptors(q, tok_stride: int) -> bool:
    """The descriptor kernels run on Hopper, for the plain token order and the head dim their tiles were measured
    at (128); SAATTN_TMA=0 turns them off (A/B runs)."""
    return (TensorDescriptor is not None and q.is_cuda and tok_stride == 1 and q.shape[-1] == 128
            and torch.cuda.get_device_capability(q.device)[0] == 9 and os.environ.get("SAATTN_TMA", "1") != "0")


def descriptor(x, rows: int):
    """A (batch·heads, n, D) descriptor of a contiguous (B, H, n, D) tensor, fetching (1, rows, D) tiles."""
    B, H, n, D = x.shape
    return TensorDescriptor(x, shape=[B * H, n, D], strides=[n * D, D, 1], block_shape=[1, rows, D])


@triton.jit
def _fwd_tiles_tma(acc, l_i, m_i, q, desc_k, desc_v, z_kv,  #
                   tile_ptr, tile_idx, part_mask, masks, pid_m, offs_m0, offs_n0, n_valid, qk_scale,  #
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,  #
                   MASKED: tl.constexpr, WARP_SPECIALIZE: tl.constexpr):
    """Online-softmax update over one list of key tiles (the full ones when not MASKED), tiles fetched by TMA."""
    start = tl.load(tile_ptr + pid_m)
    end = tl.load(tile_ptr + pid_m + 1)
    for t in tl.range(start, end, warp_specialize=WARP_SPECIALIZE):
        first = tl.load(tile_idx + t) * BLOCK_N
        k = desc_k.load([z_kv, first, 0]).reshape(BLOCK_N, HEAD_DIM)
        v = desc_v.load([z_kv, first, 0]).reshape(BLOCK_N, HEAD_DIM)
        qk = tl.dot(q, k.T)  # raw scores; the scale is folded into the exponent below
        if MASKED:
            col_ok = (first + offs_n0) < n_valid
            allowed = _tile_mask(masks, part_mask, t, offs_m0, offs_n0, col_ok, BLOCK_M, BLOCK_N, TRANSPOSED=False)
            qk = tl.where(allowed, qk * qk_scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.reduce(qk, 1, _maximum))
            m_shift = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing allowed yet: no NaN
            p = tl.math.exp2(qk - m_shift[:, None])
        else:
            m_new = tl.maximum(m_i, tl.reduce(qk, 1, _maximum) * qk_scale)
            m_shift = m_new
            p = tl.math.exp2(qk * qk_scale - m_shift[:, None])  # one multiply-add per score
        alpha = tl.math.exp2(m_i - m_shift)
        l_i = l_i * alpha + tl.reduce(p, 1, _add)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None])
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _fwd_kernel_tma(desc_q, desc_k, desc_v, desc_o, LSE,  #
                    full_ptr, full_idx, part_ptr, part_idx, part_mask, order, masks,  #
                    qk_scale, seq_len, num_heads, group,  #
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,  #
                    WARP_SPECIALIZE: tl.constexpr):
    """One program: BLOCK_M queries of one (batch, head); writes O and LSE (log2 units) like `_fwd_kernel`."""
    pid_m = tl.load(order + tl.program_id(0))  # heaviest query tiles start first
    z = tl.program_id(1)  # batch * num_heads + head
    z_kv = (z // num_heads) * (num_heads // group) + (z % num_heads) // group
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    q = desc_q.load([z, pid_m * BLOCK_M, 0]).reshape(BLOCK_M, HEAD_DIM)
    m_i = tl.full([BLOCK_M], 0.0, tl.float32) - float("inf")
    l_i = tl.full([BLOCK_M], 0.0, tl.float32)
    acc = tl.full([BLOCK_M, HEAD_DIM], 0.0, tl.float32)
    acc, l_i, m_i = _fwd_tiles_tma(acc, l_i, m_i, q, desc_k, desc_v, z_kv,  #
                                   full_ptr, full_idx, full_idx, masks, pid_m, offs_m0, offs_n0, seq_len, qk_scale,
                                   BLOCK_M, BLOCK_N, HEAD_DIM, MASKED=False, WARP_SPECIALIZE=WARP_SPECIALIZE)
    acc, l_i, m_i = _fwd_tiles_tma(acc, l_i, m_i, q, desc_k, desc_v, z_kv,  #
                                   part_ptr, part_idx, part_mask, masks, pid_m, offs_m0, offs_n0, seq_len, qk_scale,
                                   BLOCK_M, BLOCK_N, HEAD_DIM, MASKED=True, WARP_SPECIALIZE=WARP_SPECIALIZE)
    # -- epilogue: fully masked rows give output 0 and lse -inf --
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    o = acc / l_safe[:, None]
    desc_o.store([z, pid_m * BLOCK_M, 0], o.to(q.dtype).reshape(1, BLOCK_M, HEAD_DIM))  # rows past n: clipped
    offs_m = pid_m * BLOCK_M + offs_m0
    lse = tl.where(l_i == 0.0, float("-inf"), m_i + tl.math.log2(l_safe))
    tl.store(LSE + z * seq_len + offs_m, lse, mask=offs_m < seq_len)


def forward_tma(q, k, v, plan, scale: float, config: tuple, warp_specialize: bool = False):
    """o, lse (log2 units) of one plain-order pass through the descriptor kernel; config = (BM, BN, warps, stages)."""
    from .block_sparse_flash import LOG2E, _csr_args

    B, H, n, D = q.shape
    bm, bn, warps, stages = config
    o = torch.empty_like(q)
    lse = torch.empty(B, H, n, dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(n, bm), B * H)
    _fwd_kernel_tma[grid](
        descriptor(q, bm), descriptor(k, bn), descriptor(v, bn), descriptor(o, bm), lse,
        *_csr_args(plan, by_rows=True),
        scale * LOG2E, n, H, H // k.shape[1],
        BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, WARP_SPECIALIZE=warp_specialize,
        num_warps=warps, num_stages=stages,
    )
    return o, lse


# ----------------------------------------------------------------------------------------------------------------
# Backward with descriptors: the same two halves as _bwd_kernel (dK/dV per key tile, dQ per query tile)
# ----------------------------------------------------------------------------------------------------------------
@triton.jit
def _bwd_dkdv_tiles_tma(dk, dv, k, v, desc_q, desc_do, lse_base, delta_base, z,  #
                        tile_ptr, tile_idx, part_mask, masks, pid_n, offs_m0, offs_n0, n_valid, qk_scale,  #
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, MASKED: tl.constexpr):
    """dK, dV contributions of one list of query tiles for this key tile (rows are keys)."""
    start = tl.load(tile_ptr + pid_n)
    end = tl.load(tile_ptr + pid_n + 1)
    for t in range(start, end):
        first = tl.load(tile_idx + t) * BLOCK_M
        q = desc_q.load([z, first, 0]).reshape(BLOCK_M, HEAD_DIM)
        do = desc_do.load([z, first, 0]).reshape(BLOCK_M, HEAD_DIM)
        offs_m = first + offs_m0
        if MASKED:  # absent rows: lse = +inf makes p = 0
            row_ok = offs_m < n_valid
            lse = tl.load(lse_base + offs_m, mask=row_ok, other=float("inf"))
            delta = tl.load(delta_base + offs_m, mask=row_ok, other=0.0)
        else:
            lse = tl.load(lse_base + offs_m)
            delta = tl.load(delta_base + offs_m)
        pT = tl.math.exp2(tl.dot(k, q.T) * qk_scale - lse[None, :])  # (BLOCK_N, BLOCK_M)
        if MASKED:
            allowed = _tile_mask(masks, part_mask, t, offs_m0, offs_n0, row_ok, BLOCK_M, BLOCK_N, TRANSPOSED=True)
            pT = tl.where(allowed, pT, 0.0)
        dv = tl.dot(pT.to(do.dtype), do, dv)
        dpT = tl.dot(v, do.T)
        dsT = pT * (dpT - delta[None, :])
        dk = tl.dot(dsT.to(q.dtype), q, dk)
    return dk, dv


@triton.jit
def _bwd_dq_tiles_tma(dq, q, do, lse, delta, desc_k, desc_v, z_kv,  #
                      tile_ptr, tile_idx, part_mask, masks, pid_m, offs_m0, offs_n0, n_valid, qk_scale,  #
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, MASKED: tl.constexpr):
    """dQ contributions of one list of key tiles."""
    start = tl.load(tile_ptr + pid_m)
    end = tl.load(tile_ptr + pid_m + 1)
    for t in range(start, end):
        first = tl.load(tile_idx + t) * BLOCK_N
        k = desc_k.load([z_kv, first, 0]).reshape(BLOCK_N, HEAD_DIM)
        v = desc_v.load([z_kv, first, 0]).reshape(BLOCK_N, HEAD_DIM)
        p = tl.math.exp2(tl.dot(q, k.T) * qk_scale - lse[:, None])  # (BLOCK_M, BLOCK_N)
        if MASKED:
            col_ok = (first + offs_n0) < n_valid
            allowed = _tile_mask(masks, part_mask, t, offs_m0, offs_n0, col_ok, BLOCK_M, BLOCK_N, TRANSPOSED=False)
            p = tl.where(allowed, p, 0.0)
        dp = tl.dot(do, v.T)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq)
    return dq


@triton.jit
def _bwd_kernel_tma(desc_q, desc_k, desc_v, desc_do, desc_dq, desc_dk, desc_dv, LSE, DELTA,  #
                    q_full_ptr, q_full_idx, q_part_ptr, q_part_idx, q_part_mask, q_order, q_masks,  # dQ: .rows
                    kv_full_ptr, kv_full_idx, kv_part_ptr, kv_part_idx, kv_part_mask, kv_order, kv_masks,  # .cols
                    qk_scale, sm_scale, seq_len, num_heads, num_kv_heads, num_kv_programs, num_kv_rows,  #
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, GROUP: tl.constexpr):
    """One launch: the first programs do dK/dV of a key tile (summed over its GROUP query heads), the rest dQ.

    One descriptor per tensor means one tile shape for both halves: BLOCK_M queries, BLOCK_N keys."""
    pid = tl.program_id(0)
    zr = tl.program_id(1)
    if pid < num_kv_programs:
        if zr < num_kv_rows:  # zr = batch * num_kv_heads + kv head
            pid_n = tl.load(kv_order + pid)
            offs_n0 = tl.arange(0, BLOCK_N)
            offs_m0 = tl.arange(0, BLOCK_M)
            k = desc_k.load([zr, pid_n * BLOCK_N, 0]).reshape(BLOCK_N, HEAD_DIM)
            v = desc_v.load([zr, pid_n * BLOCK_N, 0]).reshape(BLOCK_N, HEAD_DIM)
            dk = tl.full([BLOCK_N, HEAD_DIM], 0.0, tl.float32)
            dv = tl.full([BLOCK_N, HEAD_DIM], 0.0, tl.float32)
            for g in range(GROUP):  # GQA: query heads of this kv head, no atomics needed
                z = (zr // num_kv_heads) * num_heads + (zr % num_kv_heads) * GROUP + g
                lse_base = LSE + z * seq_len
                delta_base = DELTA + z * seq_len
                dk, dv = _bwd_dkdv_tiles_tma(dk, dv, k, v, desc_q, desc_do, lse_base, delta_base, z,  #
                                             kv_full_ptr, kv_full_idx, kv_full_idx, kv_masks, pid_n, offs_m0, offs_n0,
                                             seq_len, qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, MASKED=False)
                dk, dv = _bwd_dkdv_tiles_tma(dk, dv, k, v, desc_q, desc_do, lse_base, delta_base, z,  #
                                             kv_part_ptr, kv_part_idx, kv_part_mask, kv_masks, pid_n, offs_m0,
                                             offs_n0, seq_len, qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, MASKED=True)
            desc_dk.store([zr, pid_n * BLOCK_N, 0], (dk * sm_scale).to(k.dtype).reshape(1, BLOCK_N, HEAD_DIM))
            desc_dv.store([zr, pid_n * BLOCK_N, 0], dv.to(k.dtype).reshape(1, BLOCK_N, HEAD_DIM))
    else:
        pid_m = tl.load(q_order + pid - num_kv_programs)
        z = zr  # batch * num_heads + head
        z_kv = (z // num_heads) * num_kv_heads + (z % num_heads) // GROUP
        offs_m0 = tl.arange(0, BLOCK_M)
        offs_n0 = tl.arange(0, BLOCK_N)
        offs_m = pid_m * BLOCK_M + offs_m0
        row_ok = offs_m < seq_len
        q = desc_q.load([z, pid_m * BLOCK_M, 0]).reshape(BLOCK_M, HEAD_DIM)
        do = desc_do.load([z, pid_m * BLOCK_M, 0]).reshape(BLOCK_M, HEAD_DIM)
        lse = tl.load(LSE + z * seq_len + offs_m, mask=row_ok, other=float("inf"))
        delta = tl.load(DELTA + z * seq_len + offs_m, mask=row_ok, other=0.0)
        dq = tl.full([BLOCK_M, HEAD_DIM], 0.0, tl.float32)
        dq = _bwd_dq_tiles_tma(dq, q, do, lse, delta, desc_k, desc_v, z_kv,  #
                               q_full_ptr, q_full_idx, q_full_idx, q_masks, pid_m, offs_m0, offs_n0, seq_len,
                               qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, MASKED=False)
        dq = _bwd_dq_tiles_tma(dq, q, do, lse, delta, desc_k, desc_v, z_kv,  #
                               q_part_ptr, q_part_idx, q_part_mask, q_masks, pid_m, offs_m0, offs_n0, seq_len,
                               qk_scale, BLOCK_M, BLOCK_N, HEAD_DIM, MASKED=True)
        desc_dq.store([z, pid_m * BLOCK_M, 0], (dq * sm_scale).to(q.dtype).reshape(1, BLOCK_M, HEAD_DIM))


def backward_tma(q, k, v, lse, delta, do, plan, scale: float, config: tuple):
    """dq, dk, dv of one plain-order pass (not accumulated), given the final lse and delta = rowsum(o * do);
    config = (BM, BN, warps, stages)."""
    from .block_sparse_flash import LOG2E, _csr_args

    B, H, n, D = q.shape
    h_kv = k.shape[1]
    bm, bn, warps, stages = config
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    n_kv_programs = triton.cdiv(n, bn)
    grid = (n_kv_programs + triton.cdiv(n, bm), B * H)
    _bwd_kernel_tma[grid](
        descriptor(q, bm), descriptor(k, bn), descriptor(v, bn), descriptor(do, bm),
        descriptor(dq, bm), descriptor(dk, bn), descriptor(dv, bn), lse, delta,
        *_csr_args(plan, by_rows=True), *_csr_args(plan, by_rows=False),
        scale * LOG2E, scale, n, H, h_kv, n_kv_programs, B * h_kv,
        BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D, GROUP=H // h_kv,
        num_warps=warps, num_stages=stages,
    )
    return dq, dk, dv
