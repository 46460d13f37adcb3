"""FlexAttention with a pattern's `mask_mod`: compiled once, BlockMask cached per (pattern, shape, device)."""
from __future__ import annotations

import sys
import types

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from ..patterns import as_pattern
from .torch_paths import check_qkv

_COMPILED: dict = {}
_BLOCK_MASKS: dict = {}
_CACHE_SIZE = 32


def compiled_flex_attention(device_type: str):
    """torch.compile(flex_attention), one per device type (eager Flex materializes n² scores and warns)."""
    if device_type not in _COMPILED:
        _COMPILED[device_type] = torch.compile(flex_attention)
    return _COMPILED[device_type]


def block_mask_for(pattern, n: int, device):
    """The pattern's BlockMask for length n on device (built once: it costs seconds at long n)."""
    key = (pattern, n, str(device))
    if key not in _BLOCK_MASKS:
        if len(_BLOCK_MASKS) >= _CACHE_SIZE:
            _BLOCK_MASKS.pop(next(iter(_BLOCK_MASKS)))
        _BLOCK_MASKS[key] = create_block_mask(pattern.mask_mod_for(n), None, None, n, n, device=str(device))
    return _BLOCK_MASKS[key]


def flex(q, k, v, pattern, scale=None):
    """FlexAttention of q (B, H, n, d), k / v (B, H_kv, n, d) under the pattern (no backward on CPU)."""
    check_qkv(q, k, v)
    pattern = as_pattern(pattern)
    if q.ndim != 4:
        raise ValueError(f"flex needs q, k, v of shape (B, H, n, d), got {tuple(q.shape)}")
    n = q.shape[-2]
    fn = compiled_flex_attention(q.device.type)
    out = fn(q, k, v, block_mask=block_mask_for(pattern, n, q.device), scale=scale,
             enable_gqa=k.shape[1] != q.shape[1])
    return out  # rows with no allowed key come back as 0 (Flex sums nothing)


class _CallableModule(types.ModuleType):
    """`saattn_edu.accel.flex` names both this module and the function: importing the module rebinds the package
    attribute to it, so the module itself forwards calls to `flex` (either way `accel.flex(q, k, v, p)` works)."""

    def __call__(self, *args, **kwargs):
        return flex(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
