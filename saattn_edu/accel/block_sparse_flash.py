"""Block-sparse FlashAttention-2 in Triton: each query tile visits only its active key tiles.

The tile lists come from a `BlockPlan` (block_plan.py): full tiles run with no mask at all, partial tiles load a
packed uint8 token mask. Positions can be *strided* (token = position * tok_stride + residue), which lets the same
kernels run the permuted pass of permute.py without copying q, k, v. The @triton.jit kernels are in
block_sparse_kernels.py; this file plans the passes, launches them and wraps them in an `autograd.Function`.
Without a CUDA device the kernels run in Triton's interpreter (set before the decorators run); then dots are done in
fp32 (bf16 dots misbehave there).
"""
from __future__ import annotations

import math
import os

import torch

from ..patterns import as_pattern
from .block_plan import BlockPlan, cached_plan, pattern_rule
# The kernels' module goes first: without a GPU it sets TRITON_INTERPRET=1 before triton loads.
from .block_sparse_kernels import _bwd_kernel, _delta_kernel, _fwd_kernel, triton
from .block_sparse_kernels import _fwd_tiles  # noqa: F401  (lesson 08 prints bsf._fwd_kernel and bsf._fwd_tiles)
from . import block_sparse_hopper as hopper  # noqa: E402  (after the kernels' module: TRITON_INTERPRET first)

LOG2E = 1.4426950408889634  # scores in log2 units: exp(x) = exp2(x * log2 e)


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

    @classmethod
    def plain(cls, pattern, n: int) -> "Pass":
        """The whole pattern in token order: the one pass of a non-permuted call."""
        return cls(("pattern", pattern, n), lambda: pattern_rule(pattern, n), n_pos=n, n_min=n)


#: Tiles (BLOCK_M, BLOCK_N), warps and pipeline stages per kernel; "cpu" is for the interpreter (tiles of 64:
#: ~9 ms each). "fwd_long" replaces "fwd" when query tiles see more than LONG_ROW keys on average (see NOTES.md).
#: Short rows (bands, Longformer, BigBird) ran fastest with narrow 32-key tiles at D=128 (less shared memory per
#: program: more programs per SM).
#: The two passes of the permuted strided path (permute.py) keep 64-key tiles ("fwd_permuted": measured faster).
CONFIGS = {
    "cpu": {"fwd": (64, 64, 4, 1), "fwd_permuted": (64, 64, 4, 1), "fwd_long": (64, 64, 4, 1), "bwd": (64, 64, 4, 1)},
    128: {"fwd": (64, 32, 4, 3), "fwd_permuted": (64, 64, 4, 3), "fwd_long": (128, 64, 4, 3), "bwd": (64, 64, 4, 2)},
    64: {"fwd": (64, 64, 4, 3), "fwd_permuted": (64, 64, 4, 3), "fwd_long": (128, 64, 4, 3), "bwd": (64, 64, 4, 2)},
}
LONG_ROW = 3072  # active keys per query tile (48 tiles of 64)
#: Tiles (BLOCK_M, BLOCK_N), warps, stages of the descriptor (TMA) kernels of block_sparse_hopper.py on sm_90, for
#: single plain-order passes (`benchmarks/hopper_kernels.py` measured them; NOTES.md).
HOPPER_CONFIGS = {"fwd": (64, 32, 4, 3), "fwd_long": (128, 128, 8, 3), "bwd": (64, 64, 4, 2)}


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _config(q, kernel: str):
    if q.device.type != "cuda":
        return CONFIGS["cpu"][kernel]
    return CONFIGS.get(q.shape[-1], CONFIGS[64])[kernel]


def _bwd_config(q):
    """(BLOCK_M1, BLOCK_N1, BLOCK_M2, BLOCK_N2, warps, stages): dK/dV tiles, then dQ tiles.

    A 4-tuple (BLOCK_M, BLOCK_N, warps, stages) in CONFIGS means the same tiles for both halves.
    """
    cfg = _config(q, "bwd")
    return cfg if len(cfg) == 6 else (cfg[0], cfg[1], cfg[0], cfg[1], cfg[2], cfg[3])


def _flags(q) -> dict:
    """Compile-time flags: fp32 tiles and exact dots in the interpreter; tf32 dots for fp32 inputs on the GPU."""
    upcast = interpreted()
    precision = "ieee" if (q.dtype == torch.float32 or upcast) else "tf32"
    return {"UPCAST": upcast, "DOT_PRECISION": precision}


def _nonempty(t):
    """Triton wants a real pointer even where a list is empty (the loop then never reads it)."""
    return t if t.numel() else torch.zeros(1, dtype=t.dtype, device=t.device)


def _csr_args(plan: BlockPlan, by_rows: bool) -> list:
    """full_ptr, full_idx, part_ptr, part_idx, part_mask, order (by query tile or by key tile), then masks."""
    c = plan.rows if by_rows else plan.cols
    return [_nonempty(x) for x in c] + [_nonempty(plan.masks)]


def _strides(*tensors) -> tuple:
    """(batch, head, token) strides of each (B, H, n, D) tensor in turn; the last axis is contiguous."""
    return tuple(s for t in tensors for s in t.stride()[:3])


def _descriptor_pass(q, passes):
    """The single plain-order pass the Hopper descriptor kernels can run, or None (pointer kernels)."""
    return passes[0] if len(passes) == 1 and hopper.use_descriptors(q, passes[0].tok_stride) else None


def _fwd_tiles_and_plan(ps, device, tiles, long_tiles):
    """(config, plan) of a forward pass: `long_tiles` when query tiles see more than LONG_ROW keys on average
    (bigger query tiles reuse each K/V load more), else `tiles`."""
    plan = ps.plan(tiles[0], tiles[1], device)
    if long_tiles != tiles and plan.n_active * tiles[1] > LONG_ROW * plan.rows.order.numel():
        return long_tiles, ps.plan(long_tiles[0], long_tiles[1], device)
    return tiles, plan


def _forward(q, k, v, passes, scale):
    """Run the passes in order (later ones continue the softmax of earlier ones); returns o, lse (log2 units)."""
    B, H, n, D = q.shape
    single = _descriptor_pass(q, passes)
    if single is not None:
        cfg, plan = _fwd_tiles_and_plan(single, q.device, HOPPER_CONFIGS["fwd"], HOPPER_CONFIGS["fwd_long"])
        return hopper.forward_tma(q, k, v, plan, scale, cfg)
    o = torch.empty_like(q)
    lse = torch.empty(B, H, n, dtype=torch.float32, device=q.device)
    for i, ps in enumerate(passes):
        tiles = _config(q, "fwd" if len(passes) == 1 else "fwd_permuted")
        (bm, bn, warps, stages), plan = _fwd_tiles_and_plan(ps, q.device, tiles, _config(q, "fwd_long"))
        grid = (triton.cdiv(ps.n_pos, bm), B * H * ps.tok_stride)  # (query tiles, batch x head x residue)
        _fwd_kernel[grid](
            q, k, v, o, lse,
            *_strides(q, k, v, o),
            *_csr_args(plan, by_rows=True),
            scale * LOG2E, n, H, H // k.shape[1],  # qk_scale, seq_len, num_heads, group (query heads per kv head)
            ps.tok_stride, ps.tok_stride,  # num_residues, tok_stride: equal (see _fwd_kernel)
            BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D,
            HAS_INIT=i > 0, **_flags(q),
            num_warps=warps, num_stages=stages,
        )
    return o, lse


def _delta(o, do):
    """delta = rowsum(o * do) (B, H, n) in fp32: the backward's row term, one Triton pass over o and do."""
    B, H, n, D = o.shape
    delta = torch.empty(B, H, n, dtype=torch.float32, device=o.device)
    _delta_kernel[(triton.cdiv(B * H * n, 64),)](o, do, delta, B * H * n, HEAD_DIM=D, BLOCK_R=64)
    return delta


def _backward(q, k, v, o, lse, do, passes, scale):
    """dq, dk, dv: every pass uses the final lse and delta = rowsum(o * do); later passes add to earlier ones."""
    B, H, n, D = q.shape
    h_kv = k.shape[1]
    delta = _delta(o, do)
    single = _descriptor_pass(q, passes)
    if single is not None:
        cfg = HOPPER_CONFIGS["bwd"]
        return hopper.backward_tma(q, k, v, lse, delta, do, single.plan(cfg[0], cfg[1], q.device), scale, cfg)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    bm1, bn1, bm2, bn2, warps, stages = _bwd_config(q)
    for i, ps in enumerate(passes):
        plan_kv, plan_q = ps.plan(bm1, bn1, q.device), ps.plan(bm2, bn2, q.device)  # one plan when shapes agree
        n_kv_programs = triton.cdiv(ps.n_pos, bn1)
        grid = (n_kv_programs + triton.cdiv(ps.n_pos, bm2), B * H * ps.tok_stride)  # (key + query tiles, rows)
        _bwd_kernel[grid](
            q, k, v, do, lse, delta, dq, dk, dv,
            *_strides(q, k, v, do),
            *_csr_args(plan_q, by_rows=True),
            *_csr_args(plan_kv, by_rows=False),
            scale * LOG2E, scale, n, H, h_kv,  # qk_scale, sm_scale, seq_len, num_heads, num_kv_heads
            ps.tok_stride, ps.tok_stride,  # num_residues, tok_stride: equal (see _fwd_kernel)
            n_kv_programs, B * h_kv * ps.tok_stride,  # dK/dV programs: along grid axis 0, rows of axis 1 with work
            BLOCK_M1=bm1, BLOCK_N1=bn1, BLOCK_M2=bm2, BLOCK_N2=bn2, HEAD_DIM=D,
            GROUP=H // h_kv, ACCUM=i > 0, **_flags(q),
            num_warps=warps, num_stages=stages,
        )
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
        raise TypeError(f"q, k, v must be torch tensors, got {type(q).__name__}, {type(k).__name__}, "
                        f"{type(v).__name__}")
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
    return BlockSparseFlash.apply(q, k, v, (Pass.plain(pattern, n),), scale)
