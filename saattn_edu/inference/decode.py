"""A tiny random-weight decoder (nanoGPT style, GQA + RoPE), its decode loop and the recomputation path.

No model of the course is trained for long contexts, so decoding is shown on random weights: what matters here is
that a cache gives *the same logits* as recomputing the whole sequence with the cache's pattern as a mask.

Positions: RoPE rotates every query and key by its original token index, and keys are cached already rotated
(Mistral). Scores then depend on i - j only, so a rolling or sinks cache reproduces recomputation with the
SlidingWindow / AttentionSinks mask exactly in meaning (equal up to fp32 rounding of a different summation
length). StreamingLLM's paper instead re-numbers positions inside the cache to stay within a trained range;
that changes the logits and has no full-sequence recomputation to compare with (see lesson 12).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from ..patterns.base import check_int
from .gqa import group_size, grouped_attention
from .kv_cache import make_cache


@dataclass(frozen=True)
class DecoderConfig:
    """Shapes of the tiny decoder; d_model = n_head * head_dim."""

    vocab_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_kv_head: int = 2
    head_dim: int = 16
    mlp_ratio: int = 4
    rope_base: float = 10000.0

    @property
    def d_model(self) -> int:
        return self.n_head * self.head_dim


def apply_rope(x, positions, base: float = 10000.0):
    """Rotate pairs of features of x (B, H, t, d) by angles positions * base^(-2k/d) (RoPE)."""
    d = x.shape[-1]
    freqs = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angles = positions.to(torch.float64)[:, None] * freqs[None, :]  # (t, d/2) in fp64: exact for long streams
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, t, d/2)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, H, t, d/2, 2)
    return out.flatten(-2)


class Attention(nn.Module):
    """Causal self-attention with GQA and RoPE, through a KV cache (decoding) or a pattern's mask (recomputation)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        group_size(cfg.n_head, cfg.n_kv_head)  # clear error for mismatched head counts
        self.cfg = cfg
        self.wq = nn.Linear(cfg.d_model, cfg.n_head * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.d_model, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.d_model, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_head * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x, positions, cache=None, pattern=None):
        c = self.cfg
        B, t, _ = x.shape
        q = self.wq(x).view(B, t, c.n_head, c.head_dim).transpose(1, 2)  # (B, H, t, hd)
        k = self.wk(x).view(B, t, c.n_kv_head, c.head_dim).transpose(1, 2)  # (B, Hkv, t, hd)
        v = self.wv(x).view(B, t, c.n_kv_head, c.head_dim).transpose(1, 2)  # (B, Hkv, t, hd)
        q, k = apply_rope(q, positions, c.rope_base), apply_rope(k, positions, c.rope_base)
        if cache is not None:  # decoding: held keys + this chunk, masked by the cache's pattern
            k, v, key_pos = cache.update(k, v, int(positions[0]))
            mask = cache.mask(positions, key_pos)  # (t, L)
        else:  # recomputation: the whole sequence under the pattern's n×n mask
            mask = torch.from_numpy(pattern.mask(t))  # (t, t)
        y = grouped_attention(q, k, v, mask)  # (B, H, t, hd)
        return self.wo(y.transpose(1, 2).reshape(B, t, c.n_head * c.head_dim))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(cfg.d_model), nn.RMSNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model))

    def forward(self, x, positions, cache=None, pattern=None):
        x = x + self.attn(self.norm1(x), positions, cache, pattern)
        return x + self.mlp(self.norm2(x))


class TinyDecoder(nn.Module):
    """Token embedding -> n_layer blocks (RMSNorm, GQA attention with RoPE, MLP) -> logits."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.RMSNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, tokens, pos: int = 0, caches=None, pattern=None):
        """tokens (B, t) at positions pos..pos+t-1 -> logits (B, t, vocab). Give caches *or* a pattern."""
        if (caches is None) == (pattern is None):
            raise ValueError("give exactly one of caches (decoding) or pattern (recomputation)")
        if caches is not None and len(caches) != len(self.blocks):
            raise ValueError(f"need one cache per layer ({len(self.blocks)}), got {len(caches)}")
        positions = torch.arange(pos, pos + tokens.shape[1])  # (t,) original token indices
        x = self.embed(tokens)  # (B, t, D)
        for layer, block in enumerate(self.blocks):
            x = block(x, positions, None if caches is None else caches[layer], pattern)
        return self.head(self.norm(x))  # (B, t, V)

    def make_caches(self, kind: str, *, batch: int = 1, **kwargs):
        """One cache per layer, in the model's dtype; kwargs as for make_cache (max_tokens, window, num_sinks)."""
        dtype = self.head.weight.dtype
        return [make_cache(kind, num_kv_heads=self.cfg.n_kv_head, head_dim=self.cfg.head_dim,
                           batch=batch, dtype=dtype, **kwargs) for _ in self.blocks]


def tiny_decoder(cfg: DecoderConfig | None = None, seed: int = 0, dtype=None):
    """A TinyDecoder with seeded random weights, in eval mode."""
    torch.manual_seed(check_int("seed", seed))
    model = TinyDecoder(cfg or DecoderConfig()).eval()
    return model if dtype is None else model.to(dtype)


# --------------------------------------------------------------------------------------------------------------
# The two ways to get logits: recompute everything under a mask, or prefill + decode through caches.
# --------------------------------------------------------------------------------------------------------------
def recompute_logits(model, tokens, pattern):
    """Logits (B, n, V) of the whole sequence at once, attention masked by pattern.mask(n)."""
    with torch.inference_mode():
        return model(tokens, pos=0, pattern=pattern)


def prefill(model, tokens, caches, chunk: int = 64):
    """Feed a prompt (B, n) through the caches `chunk` tokens at a time; returns its logits (B, n, V)."""
    chunk = check_int("chunk", chunk, minimum=1)
    out = []
    with torch.inference_mode():
        start = caches[0].next_pos
        for s in range(0, tokens.shape[1], chunk):
            out.append(model(tokens[:, s:s + chunk], pos=start + s, caches=caches))
    return torch.cat(out, dim=1)


def generate(model, prompt, steps: int, caches, chunk: int = 64):
    """Greedy decoding: prefill `prompt` (B, n), then feed `steps` argmax tokens one at a time.

    Returns (tokens (B, n + steps) fed to the model, logits (B, n + steps, V) one row per fed token).
    """
    steps = check_int("steps", steps, minimum=0)
    logits = [prefill(model, prompt, caches, chunk)]
    tokens = [prompt]
    with torch.inference_mode():
        for _ in range(steps):
            nxt = logits[-1][:, -1:].argmax(dim=-1)  # (B, 1)
            tokens.append(nxt)
            logits.append(model(nxt, pos=caches[0].next_pos, caches=caches))
    return torch.cat(tokens, dim=1), torch.cat(logits, dim=1)


def random_tokens(batch: int, n: int, vocab_size: int, seed: int = 0):
    """(batch, n) int64 tokens drawn with a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, n), generator=g)


# --------------------------------------------------------------------------------------------------------------
# Measurement: decode speed and cache memory against context length.
# --------------------------------------------------------------------------------------------------------------
def measure_decode(model, kind: str, context: int, steps: int = 16, window: int = 64, num_sinks: int = 4,
                   batch: int = 1, chunk: int = 256, repeats: int = 3, fill: str = "random") -> dict:
    """Fill the caches with `context` tokens, then time `steps` one-token decode steps (best of `repeats`).

    fill="model" prefills random tokens through the model (O(context²) for the full cache); fill="random" writes
    random keys and values straight into the caches: a decode step costs the same whatever the cache holds.
    """
    context = check_int("context", context, minimum=1)
    kwargs = {"full": dict(max_tokens=context + steps), "rolling": dict(window=window),
              "sinks": dict(window=window, num_sinks=num_sinks)}[kind]
    best = float("inf")
    for r in range(repeats):
        caches = model.make_caches(kind, batch=batch, **kwargs)
        _fill(model, caches, context, fill, chunk, seed=r)
        nxt = random_tokens(batch, steps, model.cfg.vocab_size, seed=100 + r)
        with torch.inference_mode():
            t0 = time.perf_counter()
            for s in range(steps):
                model(nxt[:, s:s + 1], pos=caches[0].next_pos, caches=caches)
            best = min(best, time.perf_counter() - t0)
    return {"kind": kind, "context": context, "tokens_per_s": batch * steps / best,
            "cache_bytes": sum(c.nbytes for c in caches), "held_tokens": len(caches[0])}


def _fill(model, caches, context: int, fill: str, chunk: int, seed: int) -> None:
    """Put `context` tokens into the caches, through the model or as random keys/values."""
    c0 = caches[0]
    if fill == "model":
        prefill(model, random_tokens(c0.batch, context, model.cfg.vocab_size, seed=seed), caches, chunk)
        return
    if fill != "random":
        raise ValueError(f"fill must be 'model' or 'random', got {fill!r}")
    g = torch.Generator().manual_seed(seed)
    for cache in caches:
        for start in range(0, context, max(chunk, c0.capacity)):  # chunks: bounded memory for long contexts
            t = min(context, start + max(chunk, c0.capacity)) - start
            k, v = torch.randn(2, c0.batch, c0.num_kv_heads, t, c0.head_dim, generator=g, dtype=c0.dtype)
            cache.write(k, v, start)


def decode_benchmark(model, contexts, kinds=("full", "rolling", "sinks"), **kwargs) -> list[dict]:
    """measure_decode for every cache kind and context length: rows for a table or a plot."""
    return [measure_decode(model, kind, n, **kwargs) for kind in kinds for n in contexts]
