"""Long-context inference: KV caches (full, rolling window, StreamingLLM sinks) with GQA, decoding, memory math.

    from saattn_edu import inference as I
    model = I.tiny_decoder(I.DecoderConfig(n_head=4, n_kv_head=2))
    caches = model.make_caches("rolling", window=64)
    tokens, logits = I.generate(model, prompt, steps=32, caches=caches)
    same = I.recompute_logits(model, tokens, caches[0].pattern)     # equal up to fp32 rounding
    I.kv_cache_bytes(layers=32, kv_heads=8, head_dim=128, tokens=4096, dtype="bf16")   # 512 MiB

Torch is imported at the top of the modules that use it (gqa, kv_cache, decode): importing this package imports
torch; `import saattn_edu` alone does not.
"""
from .decode import (
    DecoderConfig, apply_rope, decode_benchmark, generate, measure_decode, prefill, random_tokens,
    recompute_logits, tiny_decoder,
)
from .gqa import group_size, grouped_attention, kv_head_for, repeat_kv
from .kv_cache import CACHE_KINDS, FullCache, KVCache, RollingCache, SinkCache, make_cache
from .memory import MODEL_SHAPES, ModelShape, cached_tokens, dtype_bytes, kv_cache_bytes, memory_table
from .quantized import QuantizedBuffer, dequantize, quantize, quantize_roundtrip

__all__ = [
    "KVCache", "FullCache", "RollingCache", "SinkCache", "make_cache", "CACHE_KINDS",
    "group_size", "kv_head_for", "repeat_kv", "grouped_attention",
    "DecoderConfig", "tiny_decoder", "apply_rope", "recompute_logits", "prefill", "generate", "random_tokens",
    "measure_decode", "decode_benchmark",
    "kv_cache_bytes", "cached_tokens", "dtype_bytes", "ModelShape", "MODEL_SHAPES", "memory_table",
    "QuantizedBuffer", "quantize", "dequantize", "quantize_roundtrip",
]
