"""Torch paths and the Triton kernel; torch and triton load only when a name below is first used.

    masked_sdpa(q, k, v, pattern)        SDPA with the boolean mask: the dense price
    gather_attention(q, k, v, pattern)   O(nnz·d) from the CSR, differentiable (the CPU training path)
    flex(q, k, v, pattern)               compiled FlexAttention, BlockMask cached
    block_sparse_flash(q, k, v, pattern) Triton block-sparse FlashAttention-2, forward + backward
    strided_flash(q, k, v, pattern)      the same kernel through the residue permutation (strided patterns)
"""
import importlib

_WHERE = {
    "masked_sdpa": "torch_paths", "gather_attention": "torch_paths", "flex": "flex",
    "block_sparse_flash": "block_sparse_flash", "strided_flash": "permute",
}
__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
