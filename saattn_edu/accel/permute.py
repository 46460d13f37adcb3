"""Strided patterns made dense: the permuted path of the block-sparse kernel.

Sparse Transformer's strided pattern lets query i see the keys i - l, i - 2l, ...: one key per key tile, so every
tile of the causal triangle is active and block-sparse kernels (and Flex) pay nearly the dense price. Reordering
tokens by residue (t mod l, then t // l) puts those keys next to each other: for residue r the strided pairs
become a small causal triangle over positions a = t // l. The kernel reads that order through strided pointers
(token = a * l + r), so nothing is copied. Two passes, one softmax:

1. strided pass, positions of each residue: pairs with i ≡ j (mod l), i != j  -> writes o, lse
2. local pass, token order: every other allowed pair (the band i - l < j <= i)  -> continues from o, lse

The backward runs the same two passes with the final lse and adds their gradients; results equal the
unpermuted math (each allowed pair is visited exactly once).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .block_plan import pattern_rule

_CHECKED: dict = {}


def strided_rules(pattern, n: int, stride: int):
    """(local rule over tokens, strided rule over positions) splitting the pattern's pairs by i ≡ j (mod stride)."""
    rule = pattern_rule(pattern, n)

    def local(i, j):  # everything off the residue grid, plus the diagonal
        d = i - j
        return rule(i, j) & ((d % stride != 0) | (d == 0))

    def strided(a, b):  # positions a, b of one residue (residue 0 stands for all: checked below)
        return rule(a * stride, b * stride) & (a != b)

    return local, strided


def check_residue_free(pattern, n: int, stride: int, device) -> None:
    """The strided pass shares one plan across residues: check the pattern agrees for the first and last residue."""
    key = (pattern, n, stride)
    if key in _CHECKED:
        return
    rule = pattern_rule(pattern, n)
    pos = torch.arange(n // stride, device=device)
    a, b = pos[:, None], pos[None, :]
    for r in (1, stride - 1):
        same = torch.equal(torch.as_tensor(rule(a * stride + r, b * stride + r)).expand(len(pos), len(pos)),
                           torch.as_tensor(rule(a * stride, b * stride)).expand(len(pos), len(pos)))
        if not same:
            raise ValueError(f"pattern {pattern!r} differs between residues mod stride={stride}: "
                             "the permuted path needs a residue-independent strided part")
    _CHECKED[key] = True


def strided_passes(pattern, n: int, stride: int, device) -> tuple:
    """The two kernel passes (strided positions first, then the local band in token order)."""
    from .block_sparse_flash import Pass  # here, not at the top: Triton is optional (permutation() needs none)

    check_residue_free(pattern, n, stride, device)
    local, strided = strided_rules(pattern, n, stride)
    n_pos = -(-n // stride)
    first = Pass(("strided", pattern, n, stride), lambda: strided, n_pos=n_pos, n_min=n // stride,
                 tok_stride=stride)
    second = Pass(("local", pattern, n, stride), lambda: local, n_pos=n, n_min=n)
    return first, second


def strided_flash(q, k, v, pattern, stride: int | None = None, scale=None):
    """Block-sparse attention under a strided pattern through the residue permutation (see module docstring)."""
    from .block_sparse_flash import BlockSparseFlash, check_qkv  # Triton is optional: loaded when first used

    stride = getattr(pattern, "stride", None) if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer (or the pattern must have one), got {stride!r}")
    q, k, v = check_qkv(q, k, v)
    n = q.shape[2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return BlockSparseFlash.apply(q, k, v, strided_passes(pattern, n, stride, q.device), scale)


def permutation(n: int, stride: int):
    """Token order of the permuted view, residue by residue: [0, l, 2l, ..., 1, 1+l, ...] (for pictures)."""
    return np.concatenate([np.arange(r, n, stride) for r in range(stride)])
