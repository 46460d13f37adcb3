# Frozen copy of saattn_edu/accel/block_sparse_flash.py before the readability refactor of issue 15 (commit 821f953),
# kept only for benchmarks/kernel_refactor_check.py, which loads it as `saattn_edu.accel._old_block_sparse_flash`
# (its relative imports resolve inside the package). Do not edit: it is the "before" of the old-vs-new timing.
"""Block-sparse FlashAttention-2 in Triton: each query tile visits only its active key tiles.

The tile lists come from a `BlockPlan` (block_plan.py): full tiles run with no mask at all, partial tiles load a
packed uint8 token mask. Positions can be *strided* (token = position * PERM_L + residue), which lets the same
kernels run the permuted pass of permute.py without copying q, k, v. Without a CUDA device the kernels run in
Triton's interpreter (set before the decorators below run); then dots are done in fp32 (bf16 dots misbehave there).
"""
from __future__ import annotations

import math
import os

import torch

if not torch.cuda.is_available():  # must precede @triton.jit: the interpreter runs the kernels on CPU tensors
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from ..patterns import as_pattern  # noqa: E402
from .block_plan import BlockPlan, cached_plan, pattern_rule  # noqa: E402

LOG2E = 1.4426950408889634


# Our own reductions: triton's tl.max / tl.sum are library @jit functions, which the interpreter cannot run when
# triton was imported before TRITON_INTERPRET was set (pytest.importorskip does that); tl.reduce always works.
@triton.jit
def _maximum(a, b):
    return tl.maximum(a, b)


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_n0, offs_d, tok_stride, r, n_valid, skn, svn,
               Ptr, Idx, MaskId, Masks, pid_m, qk_scale,
               BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
               PREC: tl.constexpr):
    """Online-softmax update over one list of key tiles (full ones when not MASKED)."""
    start = tl.load(Ptr + pid_m)
    end = tl.load(Ptr + pid_m + 1)
    for t in range(start, end):
        kb = tl.load(Idx + t)
        offs_n = kb * BN + offs_n0
        col_ok = offs_n < n_valid
        tok_n = offs_n * tok_stride + r
        k_ptrs = k_base + tok_n[None, :] * skn + offs_d[:, None]  # (D, BN)
        v_ptrs = v_base + tok_n[:, None] * svn + offs_d[None, :]  # (BN, D)
        if MASKED:  # partial tiles may cross the sequence end
            k = tl.load(k_ptrs, mask=col_ok[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=col_ok[:, None], other=0.0)
        else:  # full tiles lie inside the sequence: plain loads, no bounds test
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        qk = tl.dot(q, k, input_precision=PREC) * qk_scale  # (BM, BN), log2 units
        if MASKED:  # token mask of this partial tile, and the sequence end
            mid = tl.load(MaskId + t)
            bits = tl.load(Masks + mid * BM * BN + (offs_m[:, None] % BM) * BN + offs_n0[None, :])
            qk = tl.where((bits != 0) & col_ok[None, :], qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.reduce(qk, 1, _maximum))
        if MASKED:  # rows with nothing allowed yet keep m = -inf: shift them by 0 (no NaN)
            m_shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:  # a full tile gives every row a finite maximum
            m_shift = m_new
        p = tl.math.exp2(qk - m_shift[:, None])
        alpha = tl.math.exp2(m_i - m_shift)
        l_i = l_i * alpha + tl.reduce(p, 1, _add)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE,
                FPtr, FIdx, PPtr, PIdx, PMask, Order, Masks,
                qk_scale, n, H, GROUP, R, tok_stride,
                sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son,
                BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr,
                HAS_INIT: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr):
    """One program: BM query positions of one (batch, head, residue); writes O and LSE (log2 units)."""
    pid_m = tl.load(Order + tl.program_id(0))  # heaviest query tiles start first
    pid_z = tl.program_id(1)
    r = pid_z % R
    bh = pid_z // R
    b = bh // H
    h = bh % H
    n_valid = (n - r + tok_stride - 1) // tok_stride  # positions of residue r inside the sequence
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_n0 = tl.arange(0, BN)
    offs_d = tl.arange(0, D)
    row_ok = offs_m < n_valid
    tok_m = offs_m * tok_stride + r
    q = tl.load(Q + b * sqb + h * sqh + tok_m[:, None] * sqn + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    o_ptrs = O + b * sob + h * soh + tok_m[:, None] * son + offs_d[None, :]
    lse_ptrs = LSE + bh * n + tok_m
    if HAS_INIT:  # continue the softmax of an earlier pass (permute.py): m = its lse, l = 1, acc = its output
        m_i = tl.load(lse_ptrs, mask=row_ok, other=float("-inf"))
        l_i = tl.full([BM], 0.0, tl.float32) + 1.0
        acc = tl.load(o_ptrs, mask=row_ok[:, None], other=0.0).to(tl.float32)
    else:
        m_i = tl.full([BM], 0.0, tl.float32) - float("inf")
        l_i = tl.full([BM], 0.0, tl.float32)
        acc = tl.full([BM, D], 0.0, tl.float32)
    hk = h // GROUP
    k_base = K + b * skb + hk * skh
    v_base = V + b * svb + hk * svh
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_n0, offs_d, tok_stride, r, n_valid,
                               skn, svn, FPtr, FIdx, FIdx, Masks, pid_m, qk_scale, BM, BN, False, UPCAST, PREC)
    acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_n0, offs_d, tok_stride, r, n_valid,
                               skn, svn, PPtr, PIdx, PMask, Masks, pid_m, qk_scale, BM, BN, True, UPCAST, PREC)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # fully masked rows: output 0, lse -inf
    tl.store(o_ptrs, (acc / l_safe[:, None]).to(O.dtype.element_ty), mask=row_ok[:, None])
    tl.store(lse_ptrs, m_i + tl.math.log2(l_safe), mask=row_ok)


@triton.jit
def _bwd_dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, dl_base, offs_n, offs_n0, offs_m0, offs_d,
                    tok_stride, r, n_valid, sqn, sdon, Ptr, Idx, MaskId, Masks, pid_n, qk_scale,
                    BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
                    PREC: tl.constexpr):
    """dK, dV contributions of one list of query tiles for this key tile (transposed: rows are keys)."""
    start = tl.load(Ptr + pid_n)
    end = tl.load(Ptr + pid_n + 1)
    for t in range(start, end):
        mb = tl.load(Idx + t)
        offs_m = mb * BM + offs_m0
        row_ok = offs_m < n_valid
        tok_m = offs_m * tok_stride + r
        q_ptrs = q_base + tok_m[None, :] * sqn + offs_d[:, None]  # (D, BM)
        do_ptrs = do_base + tok_m[:, None] * sdon + offs_d[None, :]  # (BM, D)
        if MASKED:  # partial tiles may cross the sequence end
            qT = tl.load(q_ptrs, mask=row_ok[None, :], other=0.0)
            do = tl.load(do_ptrs, mask=row_ok[:, None], other=0.0)
            lse = tl.load(lse_base + tok_m, mask=row_ok, other=float("inf"))  # +inf: p = 0 for absent rows
            delta = tl.load(dl_base + tok_m, mask=row_ok, other=0.0)
        else:  # full tiles lie inside the sequence
            qT = tl.load(q_ptrs)
            do = tl.load(do_ptrs)
            lse = tl.load(lse_base + tok_m)
            delta = tl.load(dl_base + tok_m)
        if UPCAST:
            qT = qT.to(tl.float32)
            do = do.to(tl.float32)
        pT = tl.math.exp2(tl.dot(k, qT, input_precision=PREC) * qk_scale - lse[None, :])  # (BN, BM)
        if MASKED:
            mid = tl.load(MaskId + t)
            bits = tl.load(Masks + mid * BM * BN + offs_m0[None, :] * BN + offs_n0[:, None])
            pT = tl.where((bits != 0) & row_ok[None, :], pT, 0.0)
        dv += tl.dot(pT.to(do.dtype), do, input_precision=PREC)
        dpT = tl.dot(v, tl.trans(do), input_precision=PREC)  # (BN, BM)
        dsT = pT * (dpT - delta[None, :])
        dk += tl.dot(dsT.to(qT.dtype), tl.trans(qT), input_precision=PREC)
    return dk, dv


@triton.jit
def _bwd_dkdv_body(pid_n, pid_z, Q, K, V, DO, LSE, DELTA, DK, DV,
                   FPtr, FIdx, PPtr, PIdx, PMask, Masks,
                   qk_scale, sm_scale, n, H, H_KV, R, tok_stride,
                   sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdob, sdoh, sdon,
                   BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, GROUP: tl.constexpr,
                   ACCUM: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr):
    """BN keys of one (batch, kv head, residue), summed over the GROUP query heads that share them."""
    r = pid_z % R
    bhk = pid_z // R
    b = bhk // H_KV
    hk = bhk % H_KV
    n_valid = (n - r + tok_stride - 1) // tok_stride
    offs_n0 = tl.arange(0, BN)
    offs_n = pid_n * BN + offs_n0
    offs_m0 = tl.arange(0, BM)
    offs_d = tl.arange(0, D)
    col_ok = offs_n < n_valid
    tok_n = offs_n * tok_stride + r
    kv_off = tok_n[:, None] * skn + offs_d[None, :]
    k = tl.load(K + b * skb + hk * skh + kv_off, mask=col_ok[:, None], other=0.0)  # (BN, D)
    v = tl.load(V + b * svb + hk * svh + tok_n[:, None] * svn + offs_d[None, :], mask=col_ok[:, None], other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.full([BN, D], 0.0, tl.float32)
    dv = tl.full([BN, D], 0.0, tl.float32)
    for g in range(GROUP):  # GQA: query heads of this kv head, no atomics needed
        h = hk * GROUP + g
        q_base = Q + b * sqb + h * sqh
        do_base = DO + b * sdob + h * sdoh
        lse_base = LSE + (b * H + h) * n
        dl_base = DELTA + (b * H + h) * n
        dk, dv = _bwd_dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, dl_base, offs_n, offs_n0, offs_m0, offs_d,
                                 tok_stride, r, n_valid, sqn, sdon, FPtr, FIdx, FIdx, Masks, pid_n, qk_scale,
                                 BM, BN, False, UPCAST, PREC)
        dk, dv = _bwd_dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, dl_base, offs_n, offs_n0, offs_m0, offs_d,
                                 tok_stride, r, n_valid, sqn, sdon, PPtr, PIdx, PMask, Masks, pid_n, qk_scale,
                                 BM, BN, True, UPCAST, PREC)
    dk = dk * sm_scale
    dk_ptrs = DK + b * skb + hk * skh + kv_off  # dk, dv share k's (contiguous) layout
    dv_ptrs = DV + b * skb + hk * skh + kv_off
    if ACCUM:  # a later pass of permute.py adds to the first pass's gradients
        dk += tl.load(dk_ptrs, mask=col_ok[:, None], other=0.0).to(tl.float32)
        dv += tl.load(dv_ptrs, mask=col_ok[:, None], other=0.0).to(tl.float32)
    tl.store(dk_ptrs, dk.to(DK.dtype.element_ty), mask=col_ok[:, None])
    tl.store(dv_ptrs, dv.to(DV.dtype.element_ty), mask=col_ok[:, None])


@triton.jit
def _bwd_dq_tiles(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_n0, offs_d, tok_stride, r, n_valid, skn, svn,
                  Ptr, Idx, MaskId, Masks, pid_m, qk_scale,
                  BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
                  PREC: tl.constexpr):
    """dQ contributions of one list of key tiles."""
    start = tl.load(Ptr + pid_m)
    end = tl.load(Ptr + pid_m + 1)
    for t in range(start, end):
        kb = tl.load(Idx + t)
        offs_n = kb * BN + offs_n0
        col_ok = offs_n < n_valid
        tok_n = offs_n * tok_stride + r
        k_ptrs = k_base + tok_n[None, :] * skn + offs_d[:, None]  # (D, BN)
        v_ptrs = v_base + tok_n[None, :] * svn + offs_d[:, None]  # (D, BN)
        if MASKED:  # partial tiles may cross the sequence end
            kT = tl.load(k_ptrs, mask=col_ok[None, :], other=0.0)
            vT = tl.load(v_ptrs, mask=col_ok[None, :], other=0.0)
        else:  # full tiles lie inside the sequence
            kT = tl.load(k_ptrs)
            vT = tl.load(v_ptrs)
        if UPCAST:
            kT = kT.to(tl.float32)
            vT = vT.to(tl.float32)
        p = tl.math.exp2(tl.dot(q, kT, input_precision=PREC) * qk_scale - lse[:, None])  # (BM, BN)
        if MASKED:
            mid = tl.load(MaskId + t)
            bits = tl.load(Masks + mid * BM * BN + (offs_m[:, None] % BM) * BN + offs_n0[None, :])
            p = tl.where((bits != 0) & col_ok[None, :], p, 0.0)
        dp = tl.dot(do, vT, input_precision=PREC)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=PREC)
    return dq


@triton.jit
def _bwd_dq_body(pid_m, pid_z, Q, K, V, DO, LSE, DELTA, DQ,
                 FPtr, FIdx, PPtr, PIdx, PMask, Masks,
                 qk_scale, sm_scale, n, H, GROUP, R, tok_stride,
                 sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdob, sdoh, sdon,
                 BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr,
                 ACCUM: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr):
    """dQ of BM query positions of one (batch, head, residue)."""
    r = pid_z % R
    bh = pid_z // R
    b = bh // H
    h = bh % H
    n_valid = (n - r + tok_stride - 1) // tok_stride
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_n0 = tl.arange(0, BN)
    offs_d = tl.arange(0, D)
    row_ok = offs_m < n_valid
    tok_m = offs_m * tok_stride + r
    q_off = tok_m[:, None] * sqn + offs_d[None, :]
    q = tl.load(Q + b * sqb + h * sqh + q_off, mask=row_ok[:, None], other=0.0)
    do = tl.load(DO + b * sdob + h * sdoh + tok_m[:, None] * sdon + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    lse = tl.load(LSE + bh * n + tok_m, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + bh * n + tok_m, mask=row_ok, other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    hk = h // GROUP
    k_base = K + b * skb + hk * skh
    v_base = V + b * svb + hk * svh
    dq = tl.full([BM, D], 0.0, tl.float32)
    dq = _bwd_dq_tiles(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_n0, offs_d, tok_stride, r, n_valid, skn,
                       svn, FPtr, FIdx, FIdx, Masks, pid_m, qk_scale, BM, BN, False, UPCAST, PREC)
    dq = _bwd_dq_tiles(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_n0, offs_d, tok_stride, r, n_valid, skn,
                       svn, PPtr, PIdx, PMask, Masks, pid_m, qk_scale, BM, BN, True, UPCAST, PREC)
    dq = dq * sm_scale
    dq_ptrs = DQ + b * sqb + h * sqh + q_off  # dq shares q's (contiguous) layout
    if ACCUM:
        dq += tl.load(dq_ptrs, mask=row_ok[:, None], other=0.0).to(tl.float32)
    tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=row_ok[:, None])


@triton.jit
def _bwd_kernel(Q, K, V, DO, LSE, DELTA, DQ, DK, DV,
                RF, RFI, RP, RPI, RPM, RO, MasksQ, CF, CFI, CP, CPI, CPM, CO, MasksKV,
                qk_scale, sm_scale, n, H, H_KV, R, tok_stride, NK, ZK,
                sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdob, sdoh, sdon,
                BM1: tl.constexpr, BN1: tl.constexpr, BM2: tl.constexpr, BN2: tl.constexpr, D: tl.constexpr,
                GROUP: tl.constexpr, ACCUM: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr):
    """One launch for the whole backward: the first NK programs do dK/dV of a key tile, the rest dQ of a query tile.

    Each half has its own tile shape (and plan): dK/dV programs hold BN1 keys and stream BM1 queries, dQ programs
    hold BM2 queries and stream BN2 keys, so each can hold the larger side (as FlashAttention-2's backward does).
    """
    pid = tl.program_id(0)
    pid_z = tl.program_id(1)
    if pid < NK:
        if pid_z < ZK:  # GQA: only B * H_KV * R key programs have work
            _bwd_dkdv_body(tl.load(CO + pid), pid_z, Q, K, V, DO, LSE, DELTA, DK, DV, CF, CFI, CP, CPI, CPM, MasksKV,
                           qk_scale, sm_scale, n, H, H_KV, R, tok_stride, sqb, sqh, sqn, skb, skh, skn, svb, svh,
                           svn, sdob, sdoh, sdon, BM1, BN1, D, GROUP, ACCUM, UPCAST, PREC)
    else:
        _bwd_dq_body(tl.load(RO + pid - NK), pid_z, Q, K, V, DO, LSE, DELTA, DQ, RF, RFI, RP, RPI, RPM, MasksQ,
                     qk_scale, sm_scale, n, H, GROUP, R, tok_stride, sqb, sqh, sqn, skb, skh, skn, svb, svh, svn,
                     sdob, sdoh, sdon, BM2, BN2, D, ACCUM, UPCAST, PREC)


@triton.jit
def _delta_kernel(O, DO, DELTA, rows, D: tl.constexpr, BR: tl.constexpr):
    """delta = rowsum(o * do) in fp32, without fp32 copies of o and do."""
    offs = tl.program_id(0) * BR + tl.arange(0, BR)
    ok = offs < rows
    ptrs = offs[:, None] * D + tl.arange(0, D)[None, :]
    o = tl.load(O + ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    do = tl.load(DO + ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    tl.store(DELTA + offs, tl.reduce(o * do, 1, _add), mask=ok)


# ----------------------------------------------------------------------------------------------------------------
# Python side: passes, launch configs, the autograd.Function and the public wrapper
# ----------------------------------------------------------------------------------------------------------------
class Pass:
    """One sweep of the kernels: a rule over positions, token = position * tok_stride + residue."""

    def __init__(self, key, rule_factory, n_pos: int, n_min: int, tok_stride: int = 1):
        self.key, self.rule_factory = key, rule_factory
        self.n_pos, self.n_min, self.tok_stride = n_pos, n_min, tok_stride

    def plan(self, bm: int, bn: int, device) -> BlockPlan:
        return cached_plan(self.key, self.rule_factory, self.n_pos, bm, bn, device, self.n_min)


#: Tiles (BM, BN), warps and pipeline stages per kernel; "cpu" is for the interpreter (tiles of 64: ~9 ms each).
#: "fwd_long" replaces "fwd" when query tiles see more than LONG_ROW keys on average (see NOTES.md). Short rows
#: (bands, Longformer, BigBird) ran fastest with narrow 32-key tiles at D=128 (less shared memory per program:
#: more programs per SM).
#: The two passes of the permuted strided path (permute.py) keep 64-key tiles ("fwd_permuted": measured faster).
CONFIGS = {
    "cpu": {"fwd": (64, 64, 4, 1), "fwd_permuted": (64, 64, 4, 1), "fwd_long": (64, 64, 4, 1), "bwd": (64, 64, 4, 1)},
    128: {"fwd": (64, 32, 4, 3), "fwd_permuted": (64, 64, 4, 3), "fwd_long": (128, 64, 4, 3), "bwd": (64, 64, 4, 2)},
    64: {"fwd": (64, 64, 4, 3), "fwd_permuted": (64, 64, 4, 3), "fwd_long": (128, 64, 4, 3), "bwd": (64, 64, 4, 2)},
}
LONG_ROW = 3072  # active keys per query tile (48 tiles of 64)


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _config(q, kernel: str):
    if q.device.type != "cuda":
        return CONFIGS["cpu"][kernel]
    return CONFIGS.get(q.shape[-1], CONFIGS[64])[kernel]


def _bwd_config(q):
    """(BM1, BN1, BM2, BN2, warps, stages): dK/dV tiles, dQ tiles; a 4-tuple (BM, BN, warps, stages) means both."""
    cfg = _config(q, "bwd")
    return cfg if len(cfg) == 6 else (cfg[0], cfg[1], cfg[0], cfg[1], cfg[2], cfg[3])


def _flags(q) -> dict:
    upcast = interpreted()
    prec = "ieee" if (q.dtype == torch.float32 or upcast) else "tf32"
    return {"UPCAST": upcast, "PREC": prec}


def _nonempty(t):
    """Triton wants a real pointer even where a list is empty (the loop then never reads it)."""
    return t if t.numel() else torch.zeros(1, dtype=t.dtype, device=t.device)


def _csr_args(plan: BlockPlan, by_rows: bool) -> list:
    c = plan.rows if by_rows else plan.cols
    return [_nonempty(x) for x in c] + [_nonempty(plan.masks)]


def _forward(q, k, v, passes, scale):
    """Run the passes in order (later ones continue the softmax of earlier ones); returns o, lse (log2 units)."""
    B, H, n, D = q.shape
    o = torch.empty_like(q)
    lse = torch.empty(B, H, n, dtype=torch.float32, device=q.device)
    for i, ps in enumerate(passes):
        bm, bn, warps, stages = _config(q, "fwd" if len(passes) == 1 else "fwd_permuted")
        plan = ps.plan(bm, bn, q.device)
        long_rows = plan.n_active * bn > LONG_ROW * plan.rows.order.numel()
        if long_rows and _config(q, "fwd_long") != (bm, bn, warps, stages):
            bm, bn, warps, stages = _config(q, "fwd_long")  # long rows: bigger query tiles reuse each K/V load more
            plan = ps.plan(bm, bn, q.device)
        grid = (triton.cdiv(ps.n_pos, bm), B * H * ps.tok_stride)
        _fwd_kernel[grid](q, k, v, o, lse, *_csr_args(plan, True), scale * LOG2E, n, H, H // k.shape[1],
                          ps.tok_stride, ps.tok_stride, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3],
                          *o.stride()[:3], BM=bm, BN=bn, D=D, HAS_INIT=i > 0, num_warps=warps, num_stages=stages,
                          **_flags(q))
    return o, lse


def _backward(q, k, v, o, lse, do, passes, scale):
    """dq, dk, dv: every pass uses the final lse and delta = rowsum(o * do); later passes add to earlier ones."""
    B, H, n, D = q.shape
    h_kv = k.shape[1]
    delta = torch.empty(B, H, n, dtype=torch.float32, device=q.device)
    _delta_kernel[(triton.cdiv(B * H * n, 64),)](o, do, delta, B * H * n, D=D, BR=64)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    strides = (*q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *do.stride()[:3])
    bm1, bn1, bm2, bn2, warps, stages = _bwd_config(q)
    for i, ps in enumerate(passes):
        plan_kv, plan_q = ps.plan(bm1, bn1, q.device), ps.plan(bm2, bn2, q.device)  # one plan when shapes agree
        nk, r = triton.cdiv(ps.n_pos, bn1), ps.tok_stride
        grid = (nk + triton.cdiv(ps.n_pos, bm2), B * H * r)
        _bwd_kernel[grid](q, k, v, do, lse, delta, dq, dk, dv, *_csr_args(plan_q, True), *_csr_args(plan_kv, False),
                          scale * LOG2E, scale, n, H, h_kv, r, r, nk, B * h_kv * r, *strides, BM1=bm1, BN1=bn1,
                          BM2=bm2, BN2=bn2, D=D, GROUP=H // h_kv, ACCUM=i > 0, num_warps=warps, num_stages=stages,
                          **_flags(q))
    return dq, dk, dv


class BlockSparseFlash(torch.autograd.Function):
    """Block-sparse FlashAttention-2 with a Triton forward and backward."""

    @staticmethod
    def forward(ctx, q, k, v, passes, scale):
        o, lse = _forward(q, k, v, passes, scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.passes, ctx.scale = passes, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = _backward(q, k, v, o, lse, do.contiguous(), ctx.passes, ctx.scale)
        return dq, dk, dv, None, None


def check_qkv(q, k, v):
    """Validate (B, H, n, D) / (B, H_kv, n, D) inputs; returns them contiguous."""
    if not all(isinstance(t, torch.Tensor) for t in (q, k, v)):
        raise TypeError(f"q, k, v must be torch tensors, got {type(q).__name__}, {type(k).__name__}, {type(v).__name__}")  # noqa: E501
    if q.ndim != 4 or k.ndim != 4 or k.shape != v.shape:
        raise ValueError(f"q must be (B, H, n, D) and k, v (B, H_kv, n, D); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    B, H, n, D = q.shape
    if k.shape[0] != B or k.shape[2] != n or k.shape[3] != D or H % k.shape[1]:
        raise ValueError(f"k, v shape {tuple(k.shape)} does not fit q {tuple(q.shape)} (H must be a multiple of H_kv)")
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32) or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k, v must share one of float16 / bfloat16 / float32, got {q.dtype}, {k.dtype}, {v.dtype}")
    if D not in (16, 32, 64, 128):
        raise ValueError(f"head dim D must be 16, 32, 64 or 128, got {D}")
    if q.device.type != "cuda" and not interpreted():
        raise ValueError(f"q, k, v are on {q.device}: the Triton kernel runs on CUDA tensors (on a machine without a "
                         "GPU it runs on CPU tensors in Triton's interpreter); move them with .cuda()")
    return q.contiguous(), k.contiguous(), v.contiguous()


def block_sparse_flash(q, k, v, pattern, scale=None):
    """Attention of q (B, H, n, D), k, v (B, H_kv, n, D) under `pattern`, visiting only its active tiles."""
    q, k, v = check_qkv(q, k, v)
    pattern = as_pattern(pattern)
    n = q.shape[2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    ps = Pass(("pattern", pattern, n), lambda: pattern_rule(pattern, n), n_pos=n, n_min=n)
    return BlockSparseFlash.apply(q, k, v, (ps,), scale)
