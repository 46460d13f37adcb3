"""A tiny pre-LayerNorm transformer (nanoGPT-sized) whose every layer has its own attention pattern.

    from saattn_edu import patterns as P
    from saattn_edu.models import TinyTransformer
    model = TinyTransformer(vocab_size=32, seq_len=128, layers=[P.SlidingWindow(17)] * 2 + [P.Dense()])
    logits = model(tokens)                      # tokens (B, n) int64 -> logits (B, n, vocab_size)

`causal=True` makes it a decoder (every layer's pattern is intersected with Causal()); `causal=False` an encoder.
"""
from __future__ import annotations

import torch
from torch import nn

from ..complexity import attention_flops
from ..patterns.base import Pattern, check_int
from ..patterns.learned import LearnedPattern
from .attention_layer import SparseSelfAttention


class Block(nn.Module):
    """x + attn(ln(x)), then x + mlp(ln(x)): the GPT-2 block."""

    def __init__(self, d_model: int, n_heads: int, pattern, causal: bool, backend: str):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SparseSelfAttention(d_model, n_heads, pattern, causal, backend)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))  # (B, n, d)
        return x + self.mlp(self.ln2(x))  # (B, n, d)


class TinyTransformer(nn.Module):
    """Token + learned position embeddings, one Block per entry of `layers`, final LayerNorm, linear head."""

    def __init__(self, vocab_size: int, seq_len: int, layers=None, d_model: int = 64, n_heads: int = 4,
                 causal: bool = False, backend: str = "auto", n_layers: int = 2):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        self.seq_len = check_int("seq_len", seq_len, minimum=1)
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.n_heads = check_int("n_heads", n_heads, minimum=1)
        self.causal = bool(causal)
        layers = [None] * check_int("n_layers", n_layers, minimum=1) if layers is None else list(layers)
        if not layers:
            raise ValueError("layers must name at least one pattern, got []")
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, p, self.causal, backend) for p in layers)
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.apply(_init_weights)

    @property
    def patterns(self) -> list:
        """The pattern each layer really uses (Causal() intersected in for a decoder)."""
        return [b.attn.effective for b in self.blocks]

    def embed(self, tokens):
        if tokens.ndim != 2 or tokens.shape[1] > self.seq_len:
            raise ValueError(f"tokens must be (B, n) with n <= seq_len={self.seq_len}, got {tuple(tokens.shape)}")
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        return self.tok(tokens) + self.pos(pos)  # (B, n, d)

    def forward(self, tokens):
        x = self.embed(tokens)  # (B, n, d)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, n, vocab)

    @torch.no_grad()
    def attention_maps(self, tokens) -> list:
        """Attention probabilities of every layer for `tokens` (B, n): a list of (B, H, n, n) tensors."""
        x, maps = self.embed(tokens), []
        for block in self.blocks:
            maps.append(block.attn.probs(block.ln1(x)))
            x = block(x)
        return maps

    def attention_flops(self, n: int | None = None) -> int:
        """Attention FLOPs (QKᵀ and PV, 4·pairs·d_model per layer) of one forward pass over one sequence."""
        n = self.seq_len if n is None else n
        return sum(layer_attention_flops(b.attn, n) for b in self.blocks)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def layer_attention_flops(attn: SparseSelfAttention, n: int) -> int:
    """4 · pairs · d_model for one layer; a learned method counts the pairs of its last selection plus its cost."""
    pattern = attn.effective
    if isinstance(pattern, Pattern):
        return attention_flops(pattern, n, attn.d_model, execution="gather")
    if not isinstance(pattern, LearnedPattern):
        raise TypeError(f"unknown pattern type {type(pattern).__name__}")
    pairs = attn.last_pairs if attn.last_pairs is not None else n * n  # before any forward: the dense bound
    select = pattern.selection_cost(n, attn.d_model // attn.n_heads) * attn.n_heads
    return int(round(4 * pairs * attn.d_model)) + int(select)


def _init_weights(module):
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)  # GPT-2's init
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def layer_names(layers) -> str:
    """A short human label of a layer list: 'SlidingWindow(window=17) ×2 + Dense()'."""
    parts, prev, count = [], None, 0
    for p in list(layers) + [object()]:
        r = repr(p) if p is not None else "Dense()"
        if r == prev:
            count += 1
            continue
        if prev is not None:
            parts.append(prev + (f" ×{count}" if count > 1 else ""))
        prev, count = r, 1
    return " + ".join(parts)
