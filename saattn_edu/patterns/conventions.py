"""Other libraries count the same windows differently: converters from their parameters to this library's patterns.

The full table (their parameter, keys per query, the pattern here, the test that shows it) is in docs/patterns.md.

    gym_sliding_window(w)             attention-gym `q - kv <= w`: w + 1 keys -> SlidingWindow(w + 1, causal=True)
    gym_dilated_sliding_window(w, d)  attention-gym counts tokens, DilatedWindow counts steps
    hf_sliding_window(W)              HF / Mistral causal `kv > q - W`: W keys; causal=False: `|q - kv| <= w`
    hf_longformer(w, globals)         HF Longformer `attention_window` w: w/2 per side
    streaming_llm(s, r)               StreamingLLM start_size s, recent_size r: r + 1 window keys
    deepspeed_fixed(...), deepspeed_bigbird(...)   DeepSpeed's block configs, one head
"""
from __future__ import annotations

import math

from .base import check_bool, check_int
from .bigbird import BigBird
from .longformer import Longformer
from .sinks import AttentionSinks
from .sparse_transformer import Fixed
from .window import DilatedWindow, SlidingWindow


def gym_sliding_window(window_size: int) -> SlidingWindow:
    """attention-gym's causal sliding window: `q - kv <= window_size` keeps window_size + 1 keys."""
    w = check_int("window_size", window_size, minimum=0)
    return SlidingWindow(w + 1, causal=True)


def gym_dilated_sliding_window(window_size: int, dilation: int) -> DilatedWindow:
    """attention-gym's dilated window counts tokens (`0 <= q-kv < window_size`); DilatedWindow counts steps."""
    w = check_int("window_size", window_size, minimum=1)
    d = check_int("dilation", dilation, minimum=1)
    return DilatedWindow(math.ceil(w / d), d, causal=True)


def hf_sliding_window(sliding_window: int, causal: bool = True) -> SlidingWindow:
    """Hugging Face's `sliding_window`: causal (Mistral, `kv > q - W`) W keys; bidirectional `|q - kv| <= w`."""
    w = check_int("sliding_window", sliding_window, minimum=1 if causal else 0)
    return SlidingWindow(w, causal=True) if check_bool("causal", causal) else SlidingWindow(2 * w + 1)


def hf_longformer(attention_window: int, global_indices=()) -> Longformer:
    """HF Longformer: `attention_window` (even) = w/2 keys per side plus itself; global tokens both ways."""
    w = check_int("attention_window", attention_window, minimum=2)
    if w % 2:
        raise ValueError(f"attention_window must be even (HF Longformer requires it), got {attention_window}")
    return Longformer(w, global_indices)


def streaming_llm(start_size: int, recent_size: int) -> AttentionSinks:
    """StreamingLLM's cache (start + recent tokens, trimmed after each step) plus the new token itself."""
    s = check_int("start_size", start_size, minimum=0)
    r = check_int("recent_size", recent_size, minimum=0)
    return AttentionSinks(s, r + 1)


def deepspeed_fixed(block: int, num_local_blocks: int = 4, num_global_blocks: int = 1, head: int = 0,
                    num_different_global_patterns: int = 1, causal: bool = False) -> Fixed:
    """DeepSpeed `FixedSparsityConfig` (vertical globals), one head, at token level."""
    block = check_int("block", block, minimum=1)
    local = check_int("num_local_blocks", num_local_blocks, minimum=1)
    glob = check_int("num_global_blocks", num_global_blocks, minimum=1)
    return Fixed(local * block, glob * block, causal=causal, head=head,
                 summary_patterns=num_different_global_patterns, short_last="deepspeed")


def deepspeed_bigbird(block: int, num_random_blocks: int = 1, num_sliding_window_blocks: int = 3,
                      num_global_blocks: int = 1, seed: int = 0, causal: bool = False) -> BigBird:
    """DeepSpeed `BigBirdSparsityConfig`: the first g blocks global, random blocks anywhere."""
    return BigBird(block, num_sliding_window_blocks, num_global_blocks, num_random_blocks, seed=seed, causal=causal,
                   variant="deepspeed")


__all__ = ["gym_sliding_window", "gym_dilated_sliding_window", "hf_sliding_window", "hf_longformer",
           "streaming_llm", "deepspeed_fixed", "deepspeed_bigbird"]
