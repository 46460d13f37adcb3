"""`saattn_edu.attention`: one entry point over the NumPy, Torch, Flex and Triton paths."""
from __future__ import annotations

import logging

import numpy as np
import torch

from .patterns import as_pattern

log = logging.getLogger(__name__)
BACKENDS = ("numpy", "torch", "gather", "flex", "triton")
SMALL_N = 1024  # on CPU, dense masked SDPA beats the sparse paths up to about here (and needs no compile)


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(q, pattern) -> str:
    """The fastest backend that exists for the inputs' device (see the module docstring)."""
    if isinstance(q, np.ndarray):
        return "numpy"
    if q.device.type == "cuda":
        return "triton" if _has_triton() else "flex"
    n = q.shape[-2]
    if n <= SMALL_N:
        return "torch"
    return "gather" if q.requires_grad else "flex"  # Flex has no CPU backward


def _numpy(q, k, v, pattern, scale):
    from .reference import sparse_attention

    if isinstance(q, np.ndarray):
        return sparse_attention(q, k, v, pattern, scale=scale)
    arrays = [t.detach().cpu().numpy() for t in (q, k, v)]
    return torch.as_tensor(sparse_attention(*arrays, pattern, scale=scale), device=q.device)


def _triton(q, k, v, pattern, scale):
    from .accel.block_sparse_flash import block_sparse_flash
    from .accel.permute import strided_flash
    from .patterns import Strided

    squeeze = q.ndim == 3  # (H, n, d): add the batch axis the kernel wants
    if squeeze:
        q, k, v = q[None], k[None], v[None]
    run = strided_flash if isinstance(pattern, Strided) else block_sparse_flash
    out = run(q, k, v, pattern, scale=scale)
    return out[0] if squeeze else out


def _torch_path(name):
    def run(q, k, v, pattern, scale):
        from . import accel

        if isinstance(q, np.ndarray):
            raise TypeError(f"backend={name!r} needs torch tensors, got numpy arrays (use backend='numpy')")
        return getattr(accel, {"torch": "masked_sdpa", "gather": "gather_attention", "flex": "flex"}[name])(
            q, k, v, pattern, scale=scale)

    return run


_RUN = {"numpy": _numpy, "torch": _torch_path("torch"), "gather": _torch_path("gather"),
        "flex": _torch_path("flex"), "triton": _triton}


def attention(q, k, v, pattern, backend="auto", scale=None, return_backend=False):
    """Sparse attention of q, k, v (..., n, d) under `pattern`.

    backend: "auto" (fastest available: triton on CUDA, else flex; on CPU masked SDPA for n <= 1024, gather when
    gradients are needed, else flex; numpy arrays use "numpy") or one of BACKENDS. The choice is logged at INFO
    level, and returned as (out, backend) when `return_backend=True`.
    """
    pattern = as_pattern(pattern)  # a learned selection's CSR runs on every path as a Listed pattern
    if backend == "auto":
        backend = choose_backend(q, pattern)
        log.info("saattn_edu.attention: backend=%r chosen for %s input", backend, type(q).__name__)
    elif backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
    if backend == "triton" and not _has_triton():
        raise ValueError("backend='triton' needs the triton package (Linux x86-64: pip install triton)")
    out = _RUN[backend](q, k, v, pattern, scale)
    return (out, backend) if return_backend else out
