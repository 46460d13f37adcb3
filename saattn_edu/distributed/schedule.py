"""The ring schedule in NumPy: who owns which tokens, which K/V blocks each rank needs, who holds what when.

Ring attention splits a length-n sequence over `world_size` ranks. Each rank keeps its query block and passes its
K/V block around the ring; at step s rank r holds the K/V block that rank (r - s) mod W started with. This module
plans that schedule without torch (the torch code in ring.py follows the same plan, and the lesson pictures it):

* `shard_positions` — the global token positions a rank owns under a layout ("contiguous", "zigzag", "striped").
* `needed_blocks` — (W, W) booleans: does any query of rank r attend to any key owned by rank src?
* `plan_ring` — the sparse-aware plan: how many hops clockwise (a) and counter-clockwise (b) cover every needed
  block, so a sliding window needs only its neighbours instead of W - 1 hops.
* `simulate_ring` — per step, which block each rank holds and whether it computes with it (the lesson's picture).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..patterns.base import Pattern, check_int, check_n
from ..patterns.dense import Causal, Dense
from ..patterns.window import SlidingWindow

LAYOUTS = ("contiguous", "zigzag", "striped")


def check_layout(layout) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def split_multiple(world_size: int, layout: str) -> int:
    """n must be a multiple of this: zigzag cuts the sequence into 2·W chunks, the others into W."""
    return 2 * world_size if layout == "zigzag" else world_size


def check_split(n: int, world_size: int, layout: str) -> None:
    """Reject an uneven split with a message that says how to fix it."""
    m = split_multiple(world_size, layout)
    if n % m:
        padded = -(-n // m) * m
        raise ValueError(
            f"n={n} cannot be split evenly over world_size={world_size} with layout={layout!r}: n must be a "
            f"multiple of {m}; pad the sequence to n={padded} (ring_attention_full(..., pad=True) does it and "
            f"masks the padded keys)"
        )


def shard_positions(n, world_size, rank, layout="contiguous") -> np.ndarray:
    """Global token positions (ascending, int64) owned by `rank`."""
    n, world_size = check_n(n), check_int("world_size", world_size, minimum=1)
    rank = check_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise ValueError(f"rank must be < world_size={world_size}, got {rank}")
    check_layout(layout)
    check_split(n, world_size, layout)
    if layout == "striped":  # rank r owns r, r+W, r+2W, ...: every rank sees early and late tokens
        return np.arange(rank, n, world_size, dtype=np.int64)
    if layout == "zigzag":  # chunks r and 2W-1-r: one cheap and one expensive causal chunk per rank
        c = n // (2 * world_size)
        first = np.arange(rank * c, (rank + 1) * c)
        second = np.arange((2 * world_size - 1 - rank) * c, (2 * world_size - rank) * c)
        return np.concatenate([first, second]).astype(np.int64)
    c = n // world_size
    return np.arange(rank * c, (rank + 1) * c, dtype=np.int64)


def owner_of(n, world_size, layout="contiguous") -> np.ndarray:
    """(n,) rank owning each position."""
    owner = np.empty(n, dtype=np.int64)
    for r in range(world_size):
        owner[shard_positions(n, world_size, r, layout)] = r
    return owner


def needed_blocks(pattern: Pattern | None, n, world_size, layout="contiguous") -> np.ndarray:
    """(W, W) booleans: True where a query of rank r may attend to a key owned by rank src."""
    pattern = Dense() if pattern is None else pattern
    W = check_int("world_size", world_size, minimum=1)
    pos = [shard_positions(n, W, r, layout) for r in range(W)]
    if type(pattern) is Dense:
        return np.ones((W, W), dtype=bool)
    if type(pattern) in (Causal, SlidingWindow):  # every pair inside the band is allowed: O(n log n), no CSR
        left, right = pattern.band(n)
        return np.array([[_any_in_reach(pos[r], pos[src], left, right) for src in range(W)] for r in range(W)])
    csr, owner = pattern.neighbors(n), owner_of(n, W, layout)  # exact for any pattern, O(nnz)
    need = np.zeros((W, W), dtype=bool)
    need[owner[csr.row_ids()], owner[csr.indices]] = True
    return need


def _any_in_reach(q_pos, k_pos, left, right) -> bool:
    """Does some key (ascending k_pos) lie within [i - left, i + right] of some query i?"""
    lo = np.searchsorted(k_pos, q_pos - left, side="left")
    hi = np.searchsorted(k_pos, q_pos + right, side="right")
    return bool(np.any(hi > lo))


class RingPlan(NamedTuple):
    """Sparse-aware ring plan: `forward_hops` clockwise steps then `backward_hops` counter-clockwise steps."""

    world_size: int
    needed: np.ndarray  # (W, W) bool
    forward_hops: int  # a: K/V blocks travel r -> r+1, a times
    backward_hops: int  # b: K/V blocks travel r -> r-1, b times

    @property
    def hops(self) -> int:
        """Messages each rank sends per K/V tensor (dense ring: W - 1)."""
        return self.forward_hops + self.backward_hops

    def steps(self):
        """[(direction, distance)]: direction +1 means the block came from rank r - distance, -1 from r + distance."""
        return [(+1, s) for s in range(1, self.forward_hops + 1)] + [(-1, s) for s in range(1, self.backward_hops + 1)]

    def source(self, rank: int, direction: int, distance: int) -> int:
        """Rank whose K/V block `rank` holds at that step."""
        return (rank - direction * distance) % self.world_size


def plan_ring(pattern: Pattern | None, n, world_size, layout="contiguous", sparse_aware=True) -> RingPlan:
    """Fewest hops a + b such that every needed offset s = (r - src) mod W has s <= a or s >= W - b."""
    W = check_int("world_size", world_size, minimum=1)
    need = needed_blocks(pattern, n, W, layout)
    if not sparse_aware:
        return RingPlan(W, np.ones_like(need), W - 1, 0)
    return plan_from_needed(need)


def plan_from_needed(need: np.ndarray) -> RingPlan:
    """The fewest-hops plan for a (W, W) matrix of needed blocks (rank r needs the keys of rank src)."""
    W = need.shape[0]
    offsets = {(r - src) % W for r in range(W) for src in range(W) if need[r, src] and r != src}
    best = (W - 1, 0)
    for a in range(W):  # try every cut: forward covers 1..a, backward covers the rest
        rest = [s for s in offsets if s > a]
        b = W - min(rest) if rest else 0
        if a + b < sum(best) or (a + b == sum(best) and b < best[1]):
            best = (a, b)
    return RingPlan(W, need, *best)


def simulate_ring(plan: RingPlan) -> list[dict]:
    """One dict per step: `holds[r]` = source rank of the K/V block rank r holds, `compute[r]` = is it needed."""
    W = plan.world_size
    steps = [(0, 0)] + plan.steps()
    out = []
    for k, (direction, distance) in enumerate(steps):
        holds = np.array([plan.source(r, direction, distance) for r in range(W)])
        out.append({
            "step": k, "direction": direction, "distance": distance, "holds": holds,
            "compute": plan.needed[np.arange(W), holds],
        })
    return out


def communication(plan: RingPlan, block_bytes: int) -> dict:
    """Bytes one rank sends in the forward pass (K and V blocks), for this plan and the dense ring."""
    return {
        "hops": plan.hops, "dense_hops": plan.world_size - 1,
        "bytes_per_rank": 2 * block_bytes * plan.hops, "dense_bytes_per_rank": 2 * block_bytes * (plan.world_size - 1),
        "blocks_computed": int(plan.needed.sum()), "blocks_total": plan.world_size**2,
    }
