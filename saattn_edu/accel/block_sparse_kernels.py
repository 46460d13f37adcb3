"""The @triton.jit kernels of the block-sparse FlashAttention-2 (block_sparse_flash.py launches them).

Layout of q, o, dq: (B, H, n, HEAD_DIM); of k, v, dk, dv: (B, H_KV, n, HEAD_DIM); last axis contiguous. Positions
may be *strided*: token = position * tok_stride + residue, and each of the tok_stride residues is a program of its
own along grid axis 1 (the permuted pass of permute.py; tok_stride = 1 is the plain token order).
Scores are kept in log2 units (q·k · scale · log2 e, then exp2), and so is the saved lse.

Each query tile (forward, dQ) or key tile (dK/dV) walks two lists of a `BlockPlan` CSR: its *full* tiles, which run
with no mask at all, then its *partial* tiles, which load a packed uint8 token mask each (`MASKED=True`).
"""
from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():  # must precede @triton.jit: the interpreter runs the kernels on CPU tensors
    os.environ.setdefault("TRITON_INTERPRET", "1")

try:
    import triton  # noqa: E402
    import triton.language as tl  # noqa: E402
except ImportError as e:  # Linux x86-64 only: elsewhere the rest of accel/ works, this kernel does not
    raise ImportError("the block-sparse kernel needs Triton (pip install triton; Linux x86-64 only): "
                      f"{e}") from e


# Our own reductions: triton's tl.max / tl.sum are library @jit functions, which the interpreter cannot run when
# triton was imported before TRITON_INTERPRET was set (pytest.importorskip does that); tl.reduce always works.
@triton.jit
def _maximum(a, b):
    return tl.maximum(a, b)


@triton.jit
def _add(a, b):
    return a + b


# ----------------------------------------------------------------------------------------------------------------
# Helpers shared by the three tile loops (forward, dK/dV, dQ)
# ----------------------------------------------------------------------------------------------------------------
@triton.jit
def _tile_tokens(tile_idx, t, offs0, tok_stride, residue, n_valid, BLOCK: tl.constexpr):
    """Tokens of the t-th listed tile, and which of them lie inside the sequence."""
    offs = tl.load(tile_idx + t) * BLOCK + offs0  # positions of this tile
    return offs * tok_stride + residue, offs < n_valid


@triton.jit
def _tile_ptrs(base, tok, offs_d, stride_tok, TRANSPOSED: tl.constexpr):
    """Pointers to rows `tok` of one head: a (len(tok), HEAD_DIM) tile, or (HEAD_DIM, len(tok)) when TRANSPOSED."""
    if TRANSPOSED:
        ptrs = base + tok[None, :] * stride_tok + offs_d[:, None]
    else:
        ptrs = base + tok[:, None] * stride_tok + offs_d[None, :]
    return ptrs


@triton.jit
def _load_tile(ptrs, ok, TRANSPOSED: tl.constexpr, MASKED: tl.constexpr):
    """A tile of _tile_ptrs; MASKED: zeros where `ok` is False (a partial tile may cross the sequence end)."""
    if MASKED:
        if TRANSPOSED:
            x = tl.load(ptrs, mask=ok[None, :], other=0.0)
        else:
            x = tl.load(ptrs, mask=ok[:, None], other=0.0)
    else:  # full tiles lie inside the sequence: plain loads, no bounds test
        x = tl.load(ptrs)
    return x


@triton.jit
def _load_kv_tile(k_base, v_base, tok_n, col_ok, offs_d, stride_kn, stride_vn,
                  V_TRANSPOSED: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr):
    """K as (HEAD_DIM, BLOCK_N), V as (BLOCK_N, HEAD_DIM) or, when V_TRANSPOSED, (HEAD_DIM, BLOCK_N)."""
    k_ptrs = _tile_ptrs(k_base, tok_n, offs_d, stride_kn, TRANSPOSED=True)
    v_ptrs = _tile_ptrs(v_base, tok_n, offs_d, stride_vn, TRANSPOSED=V_TRANSPOSED)
    k = _load_tile(k_ptrs, col_ok, TRANSPOSED=True, MASKED=MASKED)
    v = _load_tile(v_ptrs, col_ok, TRANSPOSED=V_TRANSPOSED, MASKED=MASKED)
    if UPCAST:  # the interpreter's low-precision dots are wrong: fp32 there
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    return k, v


@triton.jit
def _tile_mask(masks, part_mask, t, offs_m0, offs_n0, inner_ok,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, TRANSPOSED: tl.constexpr):
    """Allowed pairs of the t-th partial tile: its token mask and `inner_ok` (the streamed side inside n).

    (BLOCK_M, BLOCK_N) with queries as rows, or (BLOCK_N, BLOCK_M) when TRANSPOSED (the dK/dV loop).
    """
    mask_id = tl.load(part_mask + t)  # row of `masks`
    tile = masks + mask_id * BLOCK_M * BLOCK_N
    if TRANSPOSED:
        bits = tl.load(tile + offs_m0[None, :] * BLOCK_N + offs_n0[:, None])
    else:
        bits = tl.load(tile + offs_m0[:, None] * BLOCK_N + offs_n0[None, :])
    return (bits != 0) & inner_ok[None, :]


@triton.jit
def _program_coords(pid_z, num_heads, num_residues, tok_stride, seq_len):
    """(batch, head, residue, positions of this residue inside the sequence) of grid row pid_z."""
    residue = pid_z % num_residues
    bh = pid_z // num_residues
    n_valid = (seq_len - residue + tok_stride - 1) // tok_stride
    return bh // num_heads, bh % num_heads, residue, n_valid


# ----------------------------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------------------------
@triton.jit
def _fwd_tiles(acc, l_i, m_i, q,  #
               k_base, v_base, stride_kn, stride_vn,  #
               tile_ptr, tile_idx, part_mask, masks, pid_m,  #
               offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,  #
               MASKED: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Online-softmax update over one list of key tiles (the full ones when not MASKED)."""
    start = tl.load(tile_ptr + pid_m)
    end = tl.load(tile_ptr + pid_m + 1)
    for t in range(start, end):
        tok_n, col_ok = _tile_tokens(tile_idx, t, offs_n0, tok_stride, residue, n_valid, BLOCK_N)
        k, v = _load_kv_tile(k_base, v_base, tok_n, col_ok, offs_d, stride_kn, stride_vn,
                             V_TRANSPOSED=False, MASKED=MASKED, UPCAST=UPCAST)  # (HEAD_DIM, BLOCK_N), (BLOCK_N, D)
        # -- compute qk (log2 units) --
        qk = tl.dot(q, k, input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        if MASKED:  # token mask of this partial tile, and the sequence end
            allowed = _tile_mask(masks, part_mask, t, offs_m0, offs_n0, col_ok, BLOCK_M, BLOCK_N, TRANSPOSED=False)
            qk = tl.where(allowed, qk, float("-inf"))
        # -- update m_i, l_i, acc --
        m_new = tl.maximum(m_i, tl.reduce(qk, 1, _maximum))
        if MASKED:  # rows with nothing allowed yet keep m = -inf: shift them by 0 (no NaN)
            m_shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:  # a full tile gives every row a finite maximum
            m_shift = m_new
        p = tl.math.exp2(qk - m_shift[:, None])
        alpha = tl.math.exp2(m_i - m_shift)
        l_i = l_i * alpha + tl.reduce(p, 1, _add)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE,  #
                stride_qb, stride_qh, stride_qn,  #
                stride_kb, stride_kh, stride_kn,  #
                stride_vb, stride_vh, stride_vn,  #
                stride_ob, stride_oh, stride_on,  #
                full_ptr, full_idx, part_ptr, part_idx, part_mask, order, masks,  # plan.rows CSRs, plan.masks
                qk_scale, seq_len, num_heads, group, num_residues, tok_stride,  #
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,  #
                HAS_INIT: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """One program: BLOCK_M query positions of one (batch, head, residue); writes O and LSE (log2 units).

    group: query heads per kv head (GQA); HAS_INIT: continue the softmax of an earlier pass (o, lse as written).
    num_residues equals tok_stride (one grid row per residue); it stays an argument of its own because sharing one
    value made ptxas spill more registers in the strided backward (sm_90, compared in the SASS).
    """
    pid_m = tl.load(order + tl.program_id(0))  # heaviest query tiles start first
    b, h, residue, n_valid = _program_coords(tl.program_id(1), num_heads, num_residues, tok_stride, seq_len)
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_m = pid_m * BLOCK_M + offs_m0
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < n_valid
    tok_m = offs_m * tok_stride + residue
    q = tl.load(Q + b * stride_qb + h * stride_qh + tok_m[:, None] * stride_qn + offs_d[None, :],
                mask=row_ok[:, None], other=0.0)  # (BLOCK_M, HEAD_DIM)
    if UPCAST:
        q = q.to(tl.float32)
    o_ptrs = O + b * stride_ob + h * stride_oh + tok_m[:, None] * stride_on + offs_d[None, :]
    lse_ptrs = LSE + (b * num_heads + h) * seq_len + tok_m
    if HAS_INIT:  # continue the softmax of an earlier pass (permute.py): m = its lse, l = 1, acc = its output
        m_i = tl.load(lse_ptrs, mask=row_ok, other=float("-inf"))
        l_i = tl.full([BLOCK_M], 0.0, tl.float32) + 1.0
        acc = tl.load(o_ptrs, mask=row_ok[:, None], other=0.0).to(tl.float32)
    else:
        m_i = tl.full([BLOCK_M], 0.0, tl.float32) - float("inf")
        l_i = tl.full([BLOCK_M], 0.0, tl.float32)
        acc = tl.full([BLOCK_M, HEAD_DIM], 0.0, tl.float32)
    h_kv = h // group
    k_base = K + b * stride_kb + h_kv * stride_kh
    v_base = V + b * stride_vb + h_kv * stride_vh
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q,  #
                               k_base, v_base, stride_kn, stride_vn,  #
                               full_ptr, full_idx, full_idx, masks, pid_m,  # mask ids: unread when not MASKED
                               offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                               BLOCK_M, BLOCK_N, MASKED=False, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q,  #
                               k_base, v_base, stride_kn, stride_vn,  #
                               part_ptr, part_idx, part_mask, masks, pid_m,  #
                               offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                               BLOCK_M, BLOCK_N, MASKED=True, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
    # -- epilogue --
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # fully masked rows: output 0, lse -inf
    tl.store(o_ptrs, (acc / l_safe[:, None]).to(O.dtype.element_ty), mask=row_ok[:, None])
    tl.store(lse_ptrs, m_i + tl.math.log2(l_safe), mask=row_ok)


# ----------------------------------------------------------------------------------------------------------------
# Backward: delta = rowsum(o * do), then one launch for dK/dV (per key tile) and dQ (per query tile)
# ----------------------------------------------------------------------------------------------------------------
@triton.jit
def _delta_kernel(O, DO, DELTA, n_rows, HEAD_DIM: tl.constexpr, BLOCK_R: tl.constexpr):
    """delta = rowsum(o * do) in fp32, without fp32 copies of o and do (both contiguous)."""
    offs = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    ok = offs < n_rows
    ptrs = offs[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    o = tl.load(O + ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    do = tl.load(DO + ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    tl.store(DELTA + offs, tl.reduce(o * do, 1, _add), mask=ok)


@triton.jit
def _bwd_dkdv_tiles(dk, dv, k, v,  #
                    q_base, do_base, lse_base, delta_base, stride_qn, stride_don,  #
                    tile_ptr, tile_idx, part_mask, masks, pid_n,  #
                    offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,  #
                    MASKED: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """dK, dV contributions of one list of query tiles for this key tile (transposed: rows are keys)."""
    start = tl.load(tile_ptr + pid_n)
    end = tl.load(tile_ptr + pid_n + 1)
    for t in range(start, end):
        tok_m, row_ok = _tile_tokens(tile_idx, t, offs_m0, tok_stride, residue, n_valid, BLOCK_M)
        q_ptrs = _tile_ptrs(q_base, tok_m, offs_d, stride_qn, TRANSPOSED=True)  # (HEAD_DIM, BLOCK_M)
        do_ptrs = _tile_ptrs(do_base, tok_m, offs_d, stride_don, TRANSPOSED=False)  # (BLOCK_M, HEAD_DIM)
        qT = _load_tile(q_ptrs, row_ok, TRANSPOSED=True, MASKED=MASKED)
        do = _load_tile(do_ptrs, row_ok, TRANSPOSED=False, MASKED=MASKED)
        if MASKED:  # absent rows: lse = +inf makes p = 0
            lse = tl.load(lse_base + tok_m, mask=row_ok, other=float("inf"))
            delta = tl.load(delta_base + tok_m, mask=row_ok, other=0.0)
        else:
            lse = tl.load(lse_base + tok_m)
            delta = tl.load(delta_base + tok_m)
        if UPCAST:
            qT = qT.to(tl.float32)
            do = do.to(tl.float32)
        # -- recompute pT, then dV += pT dO, dK += dsT Q --
        pT = tl.math.exp2(tl.dot(k, qT, input_precision=DOT_PRECISION) * qk_scale - lse[None, :])  # (BLOCK_N, BLOCK_M)
        if MASKED:
            allowed = _tile_mask(masks, part_mask, t, offs_m0, offs_n0, row_ok, BLOCK_M, BLOCK_N, TRANSPOSED=True)
            pT = tl.where(allowed, pT, 0.0)
        dv += tl.dot(pT.to(do.dtype), do, input_precision=DOT_PRECISION)
        dpT = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)  # (BLOCK_N, BLOCK_M)
        dsT = pT * (dpT - delta[None, :])
        dk += tl.dot(dsT.to(qT.dtype), tl.trans(qT), input_precision=DOT_PRECISION)
    return dk, dv


@triton.jit
def _bwd_dkdv(pid_n, pid_z,  #
              Q, K, V, DO, LSE, DELTA, DK, DV,  #
              stride_qb, stride_qh, stride_qn,  #
              stride_kb, stride_kh, stride_kn,  #
              stride_vb, stride_vh, stride_vn,  #
              stride_dob, stride_doh, stride_don,  #
              full_ptr, full_idx, part_ptr, part_idx, part_mask, masks,  # plan.cols CSRs, plan.masks
              qk_scale, sm_scale, seq_len, num_heads, num_kv_heads, num_residues, tok_stride,  #
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, GROUP: tl.constexpr,  #
              ACCUM: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """BLOCK_N keys of one (batch, kv head, residue), summed over the GROUP query heads that share them."""
    b, h_kv, residue, n_valid = _program_coords(pid_z, num_kv_heads, num_residues, tok_stride, seq_len)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_n = pid_n * BLOCK_N + offs_n0
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    col_ok = offs_n < n_valid
    tok_n = offs_n * tok_stride + residue
    kv_off = tok_n[:, None] * stride_kn + offs_d[None, :]
    k = tl.load(K + b * stride_kb + h_kv * stride_kh + kv_off, mask=col_ok[:, None], other=0.0)  # (BLOCK_N, D)
    v = tl.load(V + b * stride_vb + h_kv * stride_vh + tok_n[:, None] * stride_vn + offs_d[None, :],
                mask=col_ok[:, None], other=0.0)  # (BLOCK_N, HEAD_DIM)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.full([BLOCK_N, HEAD_DIM], 0.0, tl.float32)
    dv = tl.full([BLOCK_N, HEAD_DIM], 0.0, tl.float32)
    for g in range(GROUP):  # GQA: query heads of this kv head, no atomics needed
        h = h_kv * GROUP + g
        q_base = Q + b * stride_qb + h * stride_qh
        do_base = DO + b * stride_dob + h * stride_doh
        lse_base = LSE + (b * num_heads + h) * seq_len
        delta_base = DELTA + (b * num_heads + h) * seq_len
        dk, dv = _bwd_dkdv_tiles(dk, dv, k, v,  #
                                 q_base, do_base, lse_base, delta_base, stride_qn, stride_don,  #
                                 full_ptr, full_idx, full_idx, masks, pid_n,  # mask ids: unread when not MASKED
                                 offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                                 BLOCK_M, BLOCK_N, MASKED=False, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
        dk, dv = _bwd_dkdv_tiles(dk, dv, k, v,  #
                                 q_base, do_base, lse_base, delta_base, stride_qn, stride_don,  #
                                 part_ptr, part_idx, part_mask, masks, pid_n,  #
                                 offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                                 BLOCK_M, BLOCK_N, MASKED=True, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
    dk = dk * sm_scale
    dk_ptrs = DK + b * stride_kb + h_kv * stride_kh + kv_off  # dk, dv share k's (contiguous) layout
    dv_ptrs = DV + b * stride_kb + h_kv * stride_kh + kv_off
    if ACCUM:  # a later pass of permute.py adds to the first pass's gradients
        dk += tl.load(dk_ptrs, mask=col_ok[:, None], other=0.0).to(tl.float32)
        dv += tl.load(dv_ptrs, mask=col_ok[:, None], other=0.0).to(tl.float32)
    tl.store(dk_ptrs, dk.to(DK.dtype.element_ty), mask=col_ok[:, None])
    tl.store(dv_ptrs, dv.to(DV.dtype.element_ty), mask=col_ok[:, None])


@triton.jit
def _bwd_dq_tiles(dq, q, do, lse, delta,  #
                  k_base, v_base, stride_kn, stride_vn,  #
                  tile_ptr, tile_idx, part_mask, masks, pid_m,  #
                  offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,  #
                  MASKED: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """dQ contributions of one list of key tiles."""
    start = tl.load(tile_ptr + pid_m)
    end = tl.load(tile_ptr + pid_m + 1)
    for t in range(start, end):
        tok_n, col_ok = _tile_tokens(tile_idx, t, offs_n0, tok_stride, residue, n_valid, BLOCK_N)
        kT, vT = _load_kv_tile(k_base, v_base, tok_n, col_ok, offs_d, stride_kn, stride_vn,
                               V_TRANSPOSED=True, MASKED=MASKED, UPCAST=UPCAST)  # (HEAD_DIM, BLOCK_N) both
        # -- recompute p, then dQ += ds K --
        p = tl.math.exp2(tl.dot(q, kT, input_precision=DOT_PRECISION) * qk_scale - lse[:, None])  # (BLOCK_M, BLOCK_N)
        if MASKED:
            allowed = _tile_mask(masks, part_mask, t, offs_m0, offs_n0, col_ok, BLOCK_M, BLOCK_N, TRANSPOSED=False)
            p = tl.where(allowed, p, 0.0)
        dp = tl.dot(do, vT, input_precision=DOT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=DOT_PRECISION)
    return dq


@triton.jit
def _bwd_dq(pid_m, pid_z,  #
            Q, K, V, DO, LSE, DELTA, DQ,  #
            stride_qb, stride_qh, stride_qn,  #
            stride_kb, stride_kh, stride_kn,  #
            stride_vb, stride_vh, stride_vn,  #
            stride_dob, stride_doh, stride_don,  #
            full_ptr, full_idx, part_ptr, part_idx, part_mask, masks,  # plan.rows CSRs, plan.masks
            qk_scale, sm_scale, seq_len, num_heads, group, num_residues, tok_stride,  #
            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,  #
            ACCUM: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """dQ of BLOCK_M query positions of one (batch, head, residue)."""
    b, h, residue, n_valid = _program_coords(pid_z, num_heads, num_residues, tok_stride, seq_len)
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_m = pid_m * BLOCK_M + offs_m0
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < n_valid
    tok_m = offs_m * tok_stride + residue
    q_off = tok_m[:, None] * stride_qn + offs_d[None, :]
    q = tl.load(Q + b * stride_qb + h * stride_qh + q_off, mask=row_ok[:, None], other=0.0)  # (BLOCK_M, HEAD_DIM)
    do = tl.load(DO + b * stride_dob + h * stride_doh + tok_m[:, None] * stride_don + offs_d[None, :],
                 mask=row_ok[:, None], other=0.0)  # (BLOCK_M, HEAD_DIM)
    row_base = (b * num_heads + h) * seq_len
    lse = tl.load(LSE + row_base + tok_m, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + row_base + tok_m, mask=row_ok, other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    h_kv = h // group
    k_base = K + b * stride_kb + h_kv * stride_kh
    v_base = V + b * stride_vb + h_kv * stride_vh
    dq = tl.full([BLOCK_M, HEAD_DIM], 0.0, tl.float32)
    dq = _bwd_dq_tiles(dq, q, do, lse, delta,  #
                       k_base, v_base, stride_kn, stride_vn,  #
                       full_ptr, full_idx, full_idx, masks, pid_m,  # mask ids: unread when not MASKED
                       offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                       BLOCK_M, BLOCK_N, MASKED=False, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
    dq = _bwd_dq_tiles(dq, q, do, lse, delta,  #
                       k_base, v_base, stride_kn, stride_vn,  #
                       part_ptr, part_idx, part_mask, masks, pid_m,  #
                       offs_m0, offs_n0, offs_d, tok_stride, residue, n_valid, qk_scale,  #
                       BLOCK_M, BLOCK_N, MASKED=True, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
    dq = dq * sm_scale
    dq_ptrs = DQ + b * stride_qb + h * stride_qh + q_off  # dq shares q's (contiguous) layout
    if ACCUM:  # a later pass of permute.py adds to the first pass's gradients
        dq += tl.load(dq_ptrs, mask=row_ok[:, None], other=0.0).to(tl.float32)
    tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=row_ok[:, None])


@triton.jit
def _bwd_kernel(Q, K, V, DO, LSE, DELTA, DQ, DK, DV,  #
                stride_qb, stride_qh, stride_qn,  #
                stride_kb, stride_kh, stride_kn,  #
                stride_vb, stride_vh, stride_vn,  #
                stride_dob, stride_doh, stride_don,  #
                q_full_ptr, q_full_idx, q_part_ptr, q_part_idx, q_part_mask, q_order, q_masks,  # dQ plan: .rows
                kv_full_ptr, kv_full_idx, kv_part_ptr, kv_part_idx, kv_part_mask, kv_order, kv_masks,  # dK/dV: .cols
                qk_scale, sm_scale, seq_len, num_heads, num_kv_heads, num_residues, tok_stride,  #
                num_kv_programs, num_kv_rows,  # grid axis 0: the first num_kv_programs are dK/dV; axis 1 rows of them
                BLOCK_M1: tl.constexpr, BLOCK_N1: tl.constexpr,  # dK/dV: BLOCK_N1 keys held, BLOCK_M1 queries streamed
                BLOCK_M2: tl.constexpr, BLOCK_N2: tl.constexpr,  # dQ: BLOCK_M2 queries held, BLOCK_N2 keys streamed
                HEAD_DIM: tl.constexpr, GROUP: tl.constexpr,  #
                ACCUM: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """One launch for the whole backward: the first programs do dK/dV of a key tile, the rest dQ of a query tile.

    Each half has its own tile shape (and plan), so each can hold the larger side (as FlashAttention-2's backward
    does). GROUP: query heads per kv head; ACCUM: add to the gradients of an earlier pass (permute.py);
    num_residues = tok_stride (see _fwd_kernel).
    """
    pid = tl.program_id(0)
    pid_z = tl.program_id(1)
    if pid < num_kv_programs:
        if pid_z < num_kv_rows:  # GQA: only B * H_KV * tok_stride rows of key programs have work
            _bwd_dkdv(tl.load(kv_order + pid), pid_z,  #
                      Q, K, V, DO, LSE, DELTA, DK, DV,  #
                      stride_qb, stride_qh, stride_qn,  #
                      stride_kb, stride_kh, stride_kn,  #
                      stride_vb, stride_vh, stride_vn,  #
                      stride_dob, stride_doh, stride_don,  #
                      kv_full_ptr, kv_full_idx, kv_part_ptr, kv_part_idx, kv_part_mask, kv_masks,  #
                      qk_scale, sm_scale, seq_len, num_heads, num_kv_heads, num_residues, tok_stride,  #
                      BLOCK_M=BLOCK_M1, BLOCK_N=BLOCK_N1, HEAD_DIM=HEAD_DIM, GROUP=GROUP,  #
                      ACCUM=ACCUM, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
    else:
        _bwd_dq(tl.load(q_order + pid - num_kv_programs), pid_z,  #
                Q, K, V, DO, LSE, DELTA, DQ,  #
                stride_qb, stride_qh, stride_qn,  #
                stride_kb, stride_kh, stride_kn,  #
                stride_vb, stride_vh, stride_vn,  #
                stride_dob, stride_doh, stride_don,  #
                q_full_ptr, q_full_idx, q_part_ptr, q_part_idx, q_part_mask, q_masks,  #
                qk_scale, sm_scale, seq_len, num_heads, GROUP, num_residues, tok_stride,  #
                BLOCK_M=BLOCK_M2, BLOCK_N=BLOCK_N2, HEAD_DIM=HEAD_DIM,  #
                ACCUM=ACCUM, UPCAST=UPCAST, DOT_PRECISION=DOT_PRECISION)
