"""KV-cache memory: bytes = layers × 2 (K and V) × kv_heads × head_dim × tokens × bytes per element (× batch).

A quantized cache (`quant="int8"`, `"int8-gN"`, `"fp8"`; see inference/quantized.py) stores 1 byte per element plus
one float32 scale per (token, head) or per group of N channels: head_dim + 4 · head_dim / N bytes per (token, head).

The shapes below are given as plain numbers (from the models' published configs) so nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..patterns.base import check_int
from .quantized import bytes_per_vector

DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "int8": 1, "fp8": 1}


def dtype_bytes(dtype) -> int:
    """Bytes per element of a dtype given as a name ("bf16"), an int (2) or a torch dtype."""
    if isinstance(dtype, str):
        if dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_BYTES)}, got {dtype!r}")
        return DTYPE_BYTES[dtype]
    if hasattr(dtype, "itemsize"):  # torch.dtype (and numpy dtypes)
        return int(dtype.itemsize)
    return check_int("dtype", dtype, minimum=1)


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, dtype="bf16", batch: int = 1,
                   quant: str | None = None) -> int:
    """Bytes of a KV cache holding `tokens` tokens per sequence (`quant`: codes + scales instead of `dtype`)."""
    layers = check_int("layers", layers, minimum=1)
    kv_heads = check_int("kv_heads", kv_heads, minimum=1)
    head_dim = check_int("head_dim", head_dim, minimum=1)
    tokens = check_int("tokens", tokens, minimum=0)
    batch = check_int("batch", batch, minimum=1)
    vectors = layers * 2 * kv_heads * tokens * batch  # one (token, head) vector of K or V each
    if quant is None:
        return vectors * head_dim * dtype_bytes(dtype)
    return vectors * bytes_per_vector(quant, head_dim)


def cached_tokens(kind: str, context: int, window: int | None = None, num_sinks: int = 0) -> int:
    """Tokens a cache holds after `context` tokens: full = context, rolling = min(context, W), sinks = S + W."""
    context = check_int("context", context, minimum=0)
    if kind == "full":
        return context
    window = check_int("window", window, minimum=1)
    if kind == "rolling":
        return min(context, window)
    if kind == "sinks":
        return min(context, check_int("num_sinks", num_sinks, minimum=0) + window)
    raise ValueError(f"kind must be 'full', 'rolling' or 'sinks', got {kind!r}")


@dataclass(frozen=True)
class ModelShape:
    """The numbers that size a KV cache (window=None: the model attends to its whole context)."""

    name: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    window: int | None = None

    def kv_bytes(self, tokens: int, dtype="bf16", batch: int = 1, quant: str | None = None) -> int:
        """Bytes of K and V for `tokens` tokens per sequence."""
        return kv_cache_bytes(self.layers, self.kv_heads, self.head_dim, tokens, dtype, batch, quant)

    def bytes_per_token(self, dtype="bf16", quant: str | None = None) -> int:
        return self.kv_bytes(1, dtype, quant=quant)


# Published configs (config.json / papers). Mistral 7B v0.1: sliding window 4096 with a rolling buffer cache.
MODEL_SHAPES = {
    "mistral-7b": ModelShape("Mistral 7B v0.1", layers=32, heads=32, kv_heads=8, head_dim=128, window=4096),
    "llama-2-7b": ModelShape("Llama 2 7B (MHA)", layers=32, heads=32, kv_heads=32, head_dim=128),
    "llama-3-8b": ModelShape("Llama 3 8B (GQA)", layers=32, heads=32, kv_heads=8, head_dim=128),
    "llama-3-70b": ModelShape("Llama 3 70B (GQA)", layers=80, heads=64, kv_heads=8, head_dim=128),
}


def memory_table(context: int, num_sinks: int = 4, window: int = 4096, dtype="bf16", batch: int = 1,
                 quant: str | None = None) -> list[dict]:
    """GiB of KV cache per model and cache kind at one context length (rolling/sinks use `window`)."""
    rows = []
    for shape in MODEL_SHAPES.values():
        row = {"model": shape.name}
        for kind in ("full", "rolling", "sinks"):
            tokens = cached_tokens(kind, context, window, num_sinks)
            row[kind + "_GiB"] = shape.kv_bytes(tokens, dtype, batch, quant) / 2**30
        rows.append(row)
    return rows
