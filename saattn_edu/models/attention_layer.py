"""Multi-head self-attention whose (query, key) pairs come from any course pattern or learned method.

A fixed `Pattern` runs through `saattn_edu.attention` (masked SDPA or gather on CPU, the Triton kernel on a GPU:
`backend="auto"`); a `LearnedPattern` chooses its pairs from this batch's q and k (detached: the choice is not
differentiated, the attention over the chosen pairs is), then runs masked SDPA with one mask per (batch, head).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import api
from ..patterns import Causal, Dense, GlobalTokens, Longformer, Pattern
from ..patterns.learned import LearnedPattern, TopKBlocks

BACKENDS = ("auto",) + api.BACKENDS


def effective_pattern(pattern, causal: bool):
    """The pattern a layer really uses: intersected with Causal() in a decoder (Dense() becomes Causal())."""
    if pattern is None:
        pattern = Dense()
    if not isinstance(pattern, (Pattern, LearnedPattern)):
        raise TypeError(f"pattern must be a Pattern or a LearnedPattern, got {type(pattern).__name__}")
    if not causal or isinstance(pattern, Causal) or getattr(pattern, "causal", False):
        return pattern
    if isinstance(pattern, LearnedPattern):
        raise ValueError(f"a decoder (causal=True) needs a causal learned method, got {pattern!r}")
    return Causal() if isinstance(pattern, Dense) else pattern & Causal()


def topk_blocks_mask(method: TopKBlocks, q, k):
    """(B, H, n, n) boolean mask of MoBA / NSA top-k block selection, for all batches and heads at once."""
    n, blk = q.shape[-2], method.block
    nb = math.ceil(n / blk)
    pad = nb * blk - n
    counts = torch.as_tensor(np.minimum(blk, n - blk * np.arange(nb)), dtype=q.dtype, device=q.device)  # (nb,)

    def pool(x):  # (B, H, n, d) -> (B, H, nb, d) mean of each block's real tokens
        x = F.pad(x, (0, 0, 0, pad))
        return x.reshape(*x.shape[:-2], nb, blk, x.shape[-1]).sum(-2) / counts[:, None]

    s = pool(q) @ pool(k).transpose(-1, -2)  # (B, H, nb, nb)
    idx = torch.arange(nb, device=q.device)
    if method.causal:
        s = s.masked_fill(idx[None, :] > idx[:, None], -math.inf)
    if method.include_local:
        s = s.masked_fill(idx[None, :] == idx[:, None], math.inf)
    order = torch.sort(s, dim=-1, descending=True, stable=True).indices[..., : min(method.k, nb)]
    layout = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, order, s.gather(-1, order) > -math.inf)
    mask = layout.repeat_interleave(blk, -2).repeat_interleave(blk, -1)[..., :n, :n]  # (B, H, n, n)
    if method.causal:
        mask = mask & torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    return mask


def learned_mask(method: LearnedPattern, q, k):
    """(B, H, n, n) boolean mask chosen from q, k (B, H, n, d); vectorised for TopKBlocks, else per head."""
    q, k = q.detach(), k.detach()
    if isinstance(method, TopKBlocks):
        return topk_blocks_mask(method, q, k)
    B, H, n, _ = q.shape
    masks = np.zeros((B, H, n, n), dtype=bool)
    for b in range(B):
        for h in range(H):
            sel = method.build(q[b, h].float().cpu(), k[b, h].float().cpu())  # a CSR or a Pattern
            masks[b, h] = sel.mask(n) if isinstance(sel, Pattern) else sel.to_mask(n)
    return torch.as_tensor(masks, device=q.device)


def masked_attention(q, k, v, mask):
    """SDPA under a boolean mask broadcastable to (B, H, n, n); rows with no allowed key give 0, not NaN."""
    empty = ~mask.any(-1, keepdim=True)  # (..., n, 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty)
    return out.masked_fill(empty, 0.0)


def global_rows_of(pattern) -> np.ndarray:
    """The global token indices of a Longformer / GlobalTokens pattern (or of the one inside a Union)."""
    for p in getattr(pattern, "parts", (pattern,)):
        if isinstance(p, (Longformer, GlobalTokens)):
            return np.asarray(p.global_indices, dtype=np.int64)
    raise ValueError(f"global_projections=True needs a Longformer or GlobalTokens pattern, got {pattern!r}")


class SparseSelfAttention(nn.Module):
    """Multi-head self-attention restricted to `pattern` (a Pattern, a LearnedPattern, or None for dense).

    global_projections=True (Longformer, Beltagy et al. 2020 §3.1; HF `LongformerSelfAttention`): the global
    tokens' rows use their own query/key/value projections (`qkv_global`) and attend to every key (earlier keys when
    causal) through those; every other row attends over the pattern with the usual projections, global keys
    included. With the global projections equal to the local ones this is the plain pattern.
    """

    def __init__(self, d_model: int, n_heads: int, pattern=None, causal: bool = False, backend: str = "auto",
                 global_projections: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model must be a multiple of n_heads ({n_heads}), got {d_model}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.d_model, self.n_heads, self.causal, self.backend = d_model, n_heads, causal, backend
        self.pattern = pattern if pattern is not None else Dense()
        self.effective = effective_pattern(self.pattern, causal)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.global_projections = bool(global_projections)
        if self.global_projections:
            if self.learned:
                raise ValueError("global_projections=True needs a fixed Longformer / GlobalTokens pattern")
            self.register_buffer("global_rows", torch.as_tensor(global_rows_of(self.pattern)), persistent=False)
            self.qkv_global = nn.Linear(d_model, 3 * d_model)
        self.last_pairs = None  # pairs per head of the last learned selection (for FLOP counts)

    @property
    def learned(self) -> bool:
        return isinstance(self.effective, LearnedPattern)

    def heads(self, x, linear=None):
        """x (B, n, d_model) -> q, k, v each (B, H, n, d_head), through `linear` (default: self.qkv)."""
        B, n, _ = x.shape
        q, k, v = (linear or self.qkv)(x).split(self.d_model, dim=2)  # 3 × (B, n, d_model)
        return [t.view(B, n, self.n_heads, -1).transpose(1, 2) for t in (q, k, v)]  # (B, H, n, dh)

    def global_rows_attention(self, x, out):
        """Longformer's global rows: their own q, k, v projections, dense over all keys (earlier keys when causal)."""
        g = self.global_rows[self.global_rows < x.shape[1]]
        q, k, v = self.heads(x, self.qkv_global)  # (B, H, n, dh)
        mask = None
        if self.causal:  # global row i still may not look ahead in a decoder
            mask = torch.arange(x.shape[1], device=x.device)[None, :] <= g[:, None]  # (G, n)
        rows = F.scaled_dot_product_attention(q[:, :, g], k, v, attn_mask=mask)  # (B, H, G, dh)
        return out.index_copy(2, g, rows)

    def mask(self, q, k):
        """(B, H, n, n) or (n, n) boolean tensor of the pairs this layer attends to for these q, k."""
        if self.learned:
            return learned_mask(self.effective, q, k)
        return torch.as_tensor(self.effective.mask(q.shape[-2]), device=q.device)

    def forward(self, x):
        q, k, v = self.heads(x)  # (B, H, n, dh)
        if self.learned:
            mask = self.mask(q, k)  # (B, H, n, n)
            self.last_pairs = float(mask.sum()) / (mask.shape[0] * mask.shape[1])
            out = masked_attention(q, k, v, mask)
        elif self.backend == "auto" and isinstance(self.effective, (Dense, Causal)):  # SDPA's fused kernels, no mask
            out = F.scaled_dot_product_attention(q, k, v, is_causal=isinstance(self.effective, Causal))
        else:
            out = api.attention(q, k, v, self.effective, backend=self.backend)  # (B, H, n, dh)
        if self.global_projections:
            out = self.global_rows_attention(x, out)
        B, H, n, dh = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, n, H * dh))  # (B, n, d_model)

    @torch.no_grad()
    def probs(self, x):
        """(B, H, n, n) attention probabilities of this layer for input x (B, n, d_model); 0 off the pattern."""
        q, k, _ = self.heads(x)
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, n, n)
        mask = self.mask(q, k)
        p = torch.nan_to_num(torch.softmax(s.masked_fill(~mask, -math.inf), dim=-1), nan=0.0)  # empty row: 0
        if self.global_projections:  # global rows: their own projections, every (earlier) key
            g = self.global_rows[self.global_rows < x.shape[1]]
            qg, kg, _ = self.heads(x, self.qkv_global)
            sg = qg[:, :, g] @ kg.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, G, n)
            if self.causal:
                sg = sg.masked_fill(torch.arange(x.shape[1], device=x.device)[None, :] > g[:, None], -math.inf)
            p[:, :, g] = torch.softmax(sg, dim=-1)
        return p

    def extra_repr(self) -> str:
        extra = ", global_projections=True" if self.global_projections else ""
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, pattern={self.effective!r}, "
                f"backend={self.backend!r}{extra}")
