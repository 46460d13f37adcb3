"""Ring attention over torch.distributed: the sequence is split across ranks and K/V blocks travel the ring.

Each rank holds the queries, keys and values of its own tokens (positions from `schedule.shard_positions`). At
every step it computes attention of its queries against the K/V block it holds, merges that partial result into
its running (out, lse) with the log-sum-exp merge, and passes the block on with point-to-point send/recv — the
transfer of the next block overlaps the compute of the current one. After the ring, every rank has the exact
attention output of its queries over the whole sequence, while holding only O(n / W) keys at a time.

The backward (explicit, as in ring-flash-attention) runs the ring again: K/V travel with their gradient
accumulators dK/dV, each rank adds its share, and the accumulators return to their owners at the end.

Sparse-aware: `schedule.plan_ring` drops the hops no rank needs (a sliding window needs only neighbour ranks) and
each rank skips the compute of blocks it does not attend to. Causal attention balances work across ranks with the
"zigzag" or "striped" layouts. Backend: gloo on CPU, NCCL on GPUs (the same code).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from ..patterns.base import Intersection, Pattern
from ..patterns.dense import Causal, Dense
from .blockwise import block_backward, block_forward, merge_partials
from .schedule import RingPlan, check_layout, check_split, plan_ring, shard_positions, split_multiple

__all__ = ["ring_attention", "ring_attention_full", "merge_partials", "shard", "unshard", "resolve_pattern"]

_KV, _DKV = 0, 1  # message tags: K/V blocks and their gradient accumulators may be in flight together


# ----------------------------------------------------------------------------------------------------------------
# Point-to-point: every rank sends to one peer and receives from another, all at once (no deadlock with NCCL).
# ----------------------------------------------------------------------------------------------------------------
class _Exchange:
    """Asynchronous send of `tensor` to rank `to` and receive of a like tensor from rank `frm`."""

    def __init__(self, tensor, to, frm, group, tag, stats):
        # gloo moves CPU tensors only: CUDA blocks travel through host memory (several ranks sharing one GPU)
        self.device = tensor.device if tensor.is_cuda and dist.get_backend(group) == "gloo" else None
        if self.device is not None:
            tensor = tensor.cpu()
        self.buffer = torch_empty_like(tensor)
        ops = [dist.P2POp(dist.isend, tensor, _global(group, to), group, tag),
               dist.P2POp(dist.irecv, self.buffer, _global(group, frm), group, tag)]
        self.requests = dist.batch_isend_irecv(ops)
        stats["messages"] = stats.get("messages", 0) + 1
        stats["bytes_sent"] = stats.get("bytes_sent", 0) + tensor.numel() * tensor.element_size()

    def wait(self):
        for req in self.requests:
            req.wait()
        return self.buffer if self.device is None else self.buffer.to(self.device)


def torch_empty_like(t):
    return torch.empty_like(t)


def _global(group, rank):
    return rank if group is None else dist.get_global_rank(group, rank)


# ----------------------------------------------------------------------------------------------------------------
# The ring, forward and backward
# ----------------------------------------------------------------------------------------------------------------
class _Ring:
    """What one rank knows about the ring: plan, positions of every rank's tokens, pattern, group."""

    def __init__(self, plan: RingPlan, pattern, n, n_valid, layout, rank, group, scale, stats, kernel="torch"):
        self.plan, self.pattern, self.n, self.n_valid = plan, pattern, n, n_valid
        self.block_forward, self.block_backward = _step_functions(kernel)
        self.rank, self.group, self.scale, self.stats = rank, group, scale, stats
        self.W = plan.world_size
        self.pos = [shard_positions(n, self.W, r, layout) for r in range(self.W)]

    def needed(self, src):
        return bool(self.plan.needed[self.rank, src])

    def count(self, key, k=1):
        self.stats[key] = self.stats.get(key, 0) + k

    def forward_block(self, q, kv, src):
        self.count("blocks_computed")
        return self.block_forward(q, kv[0], kv[1], self.pos[self.rank], self.pos[src], self.pattern, self.n,
                                  self.n_valid, self.scale)

    def backward_block(self, q, kv, out, lse, dout, src):
        return self.block_backward(q, kv[0], kv[1], out, lse, dout, self.pos[self.rank], self.pos[src],
                                   self.pattern, self.n, self.n_valid, self.scale)


KERNELS = ("auto", "torch", "triton")


def _step_functions(kernel: str):
    """(block_forward, block_backward): the readable torch blockwise steps, or the Triton block-sparse kernel."""
    if kernel == "torch":
        return block_forward, block_backward
    if kernel == "triton":
        from .triton_steps import triton_block_backward, triton_block_forward  # needs Triton (Linux x86-64)

        return triton_block_forward, triton_block_backward
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def _resolve_kernel(kernel: str, q) -> str:
    """'auto': the Triton kernel on CUDA tensors when Triton is installed, else the torch steps."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel != "auto":
        return kernel
    if q.is_cuda:
        try:
            import triton  # noqa: F401
        except ImportError:
            return "torch"
        return "triton"
    return "torch"


def _directions(ring: _Ring):
    """(direction, hops, to, frm) of each chain of the plan: +1 clockwise, -1 counter-clockwise."""
    for direction, hops in ((+1, ring.plan.forward_hops), (-1, ring.plan.backward_hops)):
        if hops:
            yield direction, hops, (ring.rank + direction) % ring.W, (ring.rank - direction) % ring.W


def _ring_forward(ring: _Ring, q, kv):
    """(out, lse) of the local queries over every block the plan brings by."""
    acc = torch.promote_types(q.dtype, torch.float32)  # bf16 / fp16 inputs merge in fp32
    out = torch.zeros(q.shape, dtype=acc, device=q.device)  # (B, H, m, d)
    lse = torch.full(q.shape[:-1], float("-inf"), dtype=acc, device=q.device)  # (B, H, m)
    # Both chains' first transfers start now, so they travel while the local block is computed.
    chains = [(d, h, to, frm, _Exchange(kv, to, frm, ring.group, _KV, ring.stats)) for d, h, to, frm in
              _directions(ring)]
    if ring.needed(ring.rank):
        out, lse = merge_partials(out, lse, *(t.to(acc) for t in ring.forward_block(q, kv, ring.rank)))
    for direction, hops, to, frm, pending in chains:
        for s in range(1, hops + 1):
            held = pending.wait()  # block of rank r - direction·s
            pending = _Exchange(held, to, frm, ring.group, _KV, ring.stats) if s < hops else None  # overlaps below
            src = (ring.rank - direction * s) % ring.W
            if ring.needed(src):
                out, lse = merge_partials(out, lse, *(t.to(acc) for t in ring.forward_block(q, held, src)))
            else:
                ring.count("blocks_skipped")
    if not ring.needed(ring.rank):
        ring.count("blocks_skipped")
    return out, lse


def _ring_backward(ring: _Ring, q, kv, out, lse, dout):
    """(dq, dkv): dK/dV accumulators travel with their blocks and come home at the end.

    At each step the block's gradients are computed first; only then does the rank wait for the accumulator that
    travelled with the block, add to it and send it on, so accumulator transfers overlap the next compute.
    """
    dq, dkv_home = torch.zeros_like(q), torch.zeros_like(kv)  # (B, H, m, d), (2, B, H, m, d)
    chains = [(d, h, to, frm, _Exchange(kv, to, frm, ring.group, _KV, ring.stats)) for d, h, to, frm in
              _directions(ring)]
    if ring.needed(ring.rank):
        dq_, dk_, dv_ = ring.backward_block(q, kv, out, lse, dout, ring.rank)
        dq += dq_
        dkv_home += torch.stack([dk_, dv_])
    for direction, hops, to, frm, pending in chains:
        arriving = None  # the accumulator travelling with the block of the next step
        for s in range(1, hops + 1):
            held = pending.wait()
            pending = _Exchange(held, to, frm, ring.group, _KV, ring.stats) if s < hops else None
            src = (ring.rank - direction * s) % ring.W
            mine = None
            if ring.needed(src):
                dq_, dk_, dv_ = ring.backward_block(q, held, out, lse, dout, src)
                dq += dq_
                mine = torch.stack([dk_, dv_])
            dkv = torch.zeros_like(kv) if arriving is None else arriving.wait()  # step 1: nobody added yet
            if mine is not None:
                dkv = dkv + mine
            if s < hops:  # pass the accumulator on with the block (waited for after the next compute) ...
                arriving = _Exchange(dkv, to, frm, ring.group, _DKV, ring.stats)
            else:  # ... or send it straight home to its owner, and receive my own block's from the farthest rank
                back = _Exchange(dkv, src, (ring.rank + direction * s) % ring.W, ring.group, _DKV, ring.stats)
                dkv_home += back.wait()
    return dq, dkv_home


def _autograd_ring():
    class RingAttention(torch.autograd.Function):
        """Forward: the ring with LSE merges. Backward: the ring again with travelling dK/dV."""

        @staticmethod
        def forward(ctx, q, k, v, ring):
            kv = torch.stack([k, v])  # (2, B, H, m, d): one message per hop
            out, lse = _ring_forward(ring, q, kv)
            out = out.to(q.dtype)
            ctx.save_for_backward(q, kv, out, lse)
            ctx.ring = ring
            return out, lse

        @staticmethod
        def backward(ctx, dout, dlse):
            q, kv, out, lse = ctx.saved_tensors
            dq, dkv = _ring_backward(ctx.ring, q, kv, out, lse, dout.contiguous())
            return dq, dkv[0], dkv[1], None

    return RingAttention


# ----------------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------------
def resolve_pattern(pattern: Pattern | None, causal: bool) -> Pattern:
    """The pattern ring attention evaluates: Dense by default, Causal when causal=True, or pattern & Causal."""
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be True or False, got {causal!r}")
    if pattern is not None and not isinstance(pattern, Pattern):
        raise TypeError(f"pattern must be a saattn_edu.patterns.Pattern or None, got {pattern!r}")
    if pattern is None or type(pattern) is Dense:
        return Causal() if causal else Dense()
    return Intersection(pattern, Causal()) if causal and not getattr(pattern, "causal", False) else pattern


def _check_local(q, k, v, n, W, layout):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., n_local, d), got {tuple(t.shape)}")
    if k.shape != v.shape or q.shape[:-2] != k.shape[:-2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q, k, v shapes do not match: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    check_split(n, W, layout)
    if q.shape[-2] != n // W or k.shape[-2] != n // W:
        raise ValueError(f"local blocks must hold n / world_size = {n // W} tokens, got q {q.shape[-2]}, "
                         f"k {k.shape[-2]}")


def ring_attention(q, k, v, pattern=None, *, n=None, causal=False, layout="contiguous", scale=None,
                   sparse_aware=True, group=None, stats=None, n_valid=None, return_lse=False, kernel="auto"):
    """Attention of this rank's queries q (..., n/W, d) over the whole sequence, keys sharded the same way.

    Call on every rank of `group` (torch.distributed must be initialised). `n` is the global length (default
    W × local length); `layout` says which positions each rank owns (`schedule.shard_positions`); keys at
    positions >= n_valid are masked (padding). `stats`, a dict, receives message/byte/block counts. Differentiable.
    `kernel`: "torch" (readable fp32-friendly blockwise steps), "triton" (the block-sparse flash kernel in every
    step; on CPU through Triton's interpreter) or "auto" (Triton on CUDA tensors when installed).
    """
    check_layout(layout)
    if not dist.is_initialized():
        raise RuntimeError("ring_attention runs on every rank of a process group: start the ranks with "
                           "saattn_edu.distributed.spawn or torchrun (torch.distributed is not initialised)")
    W, rank = dist.get_world_size(group), dist.get_rank(group)
    n = q.shape[-2] * W if n is None else n
    _check_local(q, k, v, n, W, layout)
    pattern = resolve_pattern(pattern, causal)
    plan = plan_ring(pattern, n, W, layout, sparse_aware=sparse_aware)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    ring = _Ring(plan, pattern, n, n if n_valid is None else n_valid, layout, rank, group, scale,
                 {} if stats is None else stats, _resolve_kernel(kernel, q))
    ring.stats.update(hops=plan.hops, dense_hops=W - 1)
    out, lse = _autograd_ring().apply(q.contiguous(), k.contiguous(), v.contiguous(), ring)
    return (out, lse) if return_lse else out


def shard(x, world_size, rank, layout="contiguous", dim=-2):
    """This rank's piece of a full tensor x (..., n, d): the rows at `shard_positions`."""
    idx = torch.as_tensor(shard_positions(x.shape[dim], world_size, rank, layout), device=x.device)
    return x.index_select(dim, idx)


def unshard(pieces, layout="contiguous", dim=-2):
    """Inverse of `shard`: put every rank's piece back at its positions."""
    W = len(pieces)
    n = sum(p.shape[dim] for p in pieces)
    order = np.concatenate([shard_positions(n, W, r, layout) for r in range(W)])
    cat = torch.cat(list(pieces), dim=dim)
    return cat.index_select(dim, torch.as_tensor(np.argsort(order), device=cat.device))


def ring_attention_full(q, k, v, pattern=None, *, causal=False, layout="contiguous", pad=False, group=None,
                        stats=None, **kwargs):
    """Convenience for demos: every rank passes the full (..., n, d) inputs, gets the full output (all-gather).

    With pad=True a length that does not split evenly is padded (the padded keys are masked, the padded rows cut).
    """
    W, rank = dist.get_world_size(group), dist.get_rank(group)
    n = q.shape[-2]
    m = split_multiple(W, layout)
    n_pad = -(-n // m) * m if pad else n
    if n_pad != n:
        q, k, v = (torch.nn.functional.pad(t, (0, 0, 0, n_pad - n)) for t in (q, k, v))
    local = [shard(t, W, rank, layout) for t in (q, k, v)]
    out = ring_attention(*local, pattern, n=n_pad, causal=causal, layout=layout, group=group, stats=stats,
                         n_valid=n, **kwargs)
    pieces = [torch.empty_like(out) for _ in range(W)]
    dist.all_gather(pieces, out.contiguous(), group=group)
    return unshard(pieces, layout)[..., :n, :]
