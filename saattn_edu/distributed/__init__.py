"""Ring attention over torch.distributed (gloo on CPU, NCCL on GPUs), its NumPy schedule and a local launcher.

    from saattn_edu.distributed import ring_attention, plan_ring, simulate_ring, spawn

The schedule (NumPy) loads eagerly; the torch parts load when first used.
"""
from .schedule import (LAYOUTS, RingPlan, communication, needed_blocks, owner_of, plan_ring, shard_positions,
                       simulate_ring)

__all__ = [
    "LAYOUTS", "RingPlan", "communication", "needed_blocks", "owner_of", "plan_ring", "shard_positions",
    "simulate_ring", "ring_attention", "ring_attention_full", "merge_partials", "shard", "unshard", "spawn", "main",
]


def __getattr__(name):  # lazy: importing the package must not import torch
    if name in ("ring_attention", "ring_attention_full", "merge_partials", "shard", "unshard"):
        from . import ring

        return getattr(ring, name)
    if name in ("spawn", "main"):
        from . import launch

        return getattr(launch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
