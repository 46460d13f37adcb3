"""KV caches for autoregressive decoding: full, rolling (sliding window) and StreamingLLM (sinks + window).

One cache object per layer holds the keys and values of past tokens, (B, num_kv_heads, slots, head_dim), in a
buffer allocated once. Each cache says which slot a token position goes to (`slot_of`) and which positions it
still holds (`held_positions`); the attention rule it serves is a course pattern (`cache.pattern`), so the
decoding mask is `pattern.allowed(query_pos, key_pos)` — the same rule the recomputation path uses on the
whole sequence.

`update(k, v, pos)` is chunked prefill and decoding in one: it returns the keys the new tokens may need (the
held ones *before* this write, then the new chunk) and only then writes the chunk, so a chunk longer than the
window never overwrites keys its own first queries still need (Mistral's chunked prefill does the same).

    cache = RollingCache(window=4096, num_kv_heads=8, head_dim=128)
    keys, values, key_pos = cache.update(k, v, pos)          # k, v: (B, Hkv, t, d)
    mask = cache.mask(torch.arange(pos, pos + t), key_pos)   # (t, len(key_pos)) bool
"""
from __future__ import annotations

import abc

import torch

from ..patterns.base import check_int
from .quantized import buffer_nbytes, make_buffer

CACHE_KINDS = ("full", "rolling", "sinks")


class KVCache(abc.ABC):
    """Keys and values of past tokens for one layer; subclasses decide which positions stay and where."""

    def __init__(self, num_kv_heads: int, head_dim: int, capacity: int, batch: int = 1, dtype=None,
                 quant: str | None = None):
        self.num_kv_heads = check_int("num_kv_heads", num_kv_heads, minimum=1)
        self.head_dim = check_int("head_dim", head_dim, minimum=1)
        self.batch = check_int("batch", batch, minimum=1)
        self.capacity = check_int("capacity", capacity, minimum=1)
        self.dtype = torch.float32 if dtype is None else dtype
        shape = (self.batch, self.num_kv_heads, self.capacity, self.head_dim)
        self.quant = quant  # None, or a format of inference/quantized.py ("int8", "int8-g32", "fp8")
        self.k = make_buffer(shape, self.dtype, quant)  # (B, Hkv, slots, d): allocated once, like a real server
        self.v = make_buffer(shape, self.dtype, quant)
        self.next_pos = 0  # position of the next token to be written = number of tokens seen so far

    # ---- what a subclass defines ------------------------------------------------------------------------------
    @abc.abstractmethod
    def slot_of(self, positions):
        """Buffer slot of each (retained) token position; int64 tensor shaped like `positions`."""

    @abc.abstractmethod
    def held_positions(self, next_pos: int):
        """Positions held, ascending (int64 tensor), once tokens 0 .. next_pos-1 have been written."""

    @property
    @abc.abstractmethod
    def pattern(self):
        """The course pattern this cache serves exactly (Causal, SlidingWindow, AttentionSinks)."""

    # ---- read, write, update ----------------------------------------------------------------------------------
    def read(self):
        """Held keys and values in position order: k, v (B, Hkv, m, d) and their positions (m,)."""
        pos = self.held_positions(self.next_pos)  # (m,)
        slots = self.slot_of(pos)  # (m,) the read order: oldest token first
        return self.k[:, :, slots], self.v[:, :, slots], pos

    def write(self, k, v, pos: int) -> None:
        """Store a chunk k, v (B, Hkv, t, d) starting at `pos`, keeping only positions the cache holds after it."""
        t = k.shape[2]
        keep = self.held_positions(pos + t)
        keep = keep[keep >= pos]  # new positions that survive this chunk (a long chunk drops its own oldest)
        slots = self.slot_of(keep)  # (r,) distinct slots, so the indexed copy is well defined
        src = keep - pos
        self.k[:, :, slots] = k[:, :, src].to(self.dtype)
        self.v[:, :, slots] = v[:, :, src].to(self.dtype)
        self.next_pos = pos + t

    def update(self, k, v, pos: int | None = None):
        """Attend-then-store: returns (keys, values, key_pos) = held tokens + the new chunk; then writes it."""
        pos = self.next_pos if pos is None else pos
        self._check(k, v, pos)
        old_k, old_v, old_pos = self.read()
        t = k.shape[2]
        keys = torch.cat([old_k, k.to(self.dtype)], dim=2)  # (B, Hkv, m + t, d)
        values = torch.cat([old_v, v.to(self.dtype)], dim=2)
        key_pos = torch.cat([old_pos, torch.arange(pos, pos + t)])  # (m + t,)
        self.write(k, v, pos)
        return keys, values, key_pos

    def mask(self, query_pos, key_pos):
        """(t, L) bool: may the query at each position attend to the key at each position (the pattern's rule)."""
        n = int(max(query_pos.max(), key_pos.max())) + 1
        return self.pattern.allowed(query_pos[:, None], key_pos[None, :], n)

    def reset(self) -> None:
        """Forget every token (the buffer stays allocated)."""
        self.next_pos = 0

    # ---- bookkeeping --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.held_positions(self.next_pos))

    @property
    def nbytes(self) -> int:
        """Bytes of the K and V buffers actually allocated (measured from the storage; codes + scales if quantized)."""
        return buffer_nbytes(self.k) + buffer_nbytes(self.v)

    def _check(self, k, v, pos) -> None:
        """Clear errors for mismatched shapes and positions that go backwards or skip."""
        pos = check_int("pos", pos, minimum=0)
        if k.ndim != 4 or tuple(k.shape) != tuple(v.shape):
            raise ValueError(f"k and v must both be (B, Hkv, t, d), got {tuple(k.shape)} and {tuple(v.shape)}")
        B, H, t, d = k.shape
        if H != self.num_kv_heads:
            raise ValueError(f"k has {H} heads but the cache was built with num_kv_heads={self.num_kv_heads}")
        if B != self.batch or d != self.head_dim:
            raise ValueError(
                f"k has batch={B}, head_dim={d}; the cache was built with batch={self.batch}, "
                f"head_dim={self.head_dim}"
            )
        if t < 1:
            raise ValueError(f"k must hold at least one token, got t={t}")
        if pos < self.next_pos:
            raise ValueError(
                f"pos={pos} goes backwards: the cache already holds positions up to {self.next_pos - 1} "
                f"(call reset() to start a new sequence)"
            )
        if pos > self.next_pos:
            raise ValueError(f"pos={pos} skips positions {self.next_pos}..{pos - 1}: "
                             f"the next position is {self.next_pos}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self._describe()}, num_kv_heads={self.num_kv_heads}, "
                f"head_dim={self.head_dim}{self._quant_repr()}, held={len(self)}, next_pos={self.next_pos})")

    def _quant_repr(self) -> str:
        return "" if self.quant is None else f", quant={self.quant!r}"

    def _describe(self) -> str:
        return f"capacity={self.capacity}"


class FullCache(KVCache):
    """Every past token, slot = position; decoding sees the causal pattern. Raises once `max_tokens` is full."""

    def __init__(self, max_tokens: int, num_kv_heads: int, head_dim: int, batch: int = 1, dtype=None,
                 quant: str | None = None):
        self.max_tokens = check_int("max_tokens", max_tokens, minimum=1)
        super().__init__(num_kv_heads, head_dim, self.max_tokens, batch, dtype, quant)

    def slot_of(self, positions):
        return positions

    def held_positions(self, next_pos):
        return torch.arange(next_pos)

    def read(self):
        """Slots are positions: the held tokens are a slice, read without a gather."""
        m = self.next_pos
        return self.k[:, :, :m], self.v[:, :, :m], torch.arange(m)

    def update(self, k, v, pos: int | None = None):
        """Nothing is evicted, so store first and return views of the buffer: no O(context) copy per step."""
        pos = self.next_pos if pos is None else pos
        self._check(k, v, pos)
        self.write(k, v, pos)
        return self.read()  # views into the buffer: valid until the next update

    @property
    def pattern(self):
        from ..patterns import Causal

        return Causal()

    def _check(self, k, v, pos):
        super()._check(k, v, pos)
        end = pos + k.shape[2]
        if end > self.max_tokens:
            raise ValueError(
                f"FullCache holds at most max_tokens={self.max_tokens} tokens; writing positions {pos}..{end - 1} "
                f"would need {end}. Allocate a larger cache, or use RollingCache / SinkCache for long streams"
            )

    def _describe(self):
        return f"max_tokens={self.max_tokens}"


class RollingCache(KVCache):
    """Sliding-window cache (Mistral): W slots, position p lives in slot p mod W; decoding sees SlidingWindow(W)."""

    def __init__(self, window: int, num_kv_heads: int, head_dim: int, batch: int = 1, dtype=None,
                 quant: str | None = None):
        self.window = check_int("window", window, minimum=1)
        super().__init__(num_kv_heads, head_dim, self.window, batch, dtype, quant)

    def slot_of(self, positions):
        return positions % self.window

    def held_positions(self, next_pos):
        return torch.arange(max(0, next_pos - self.window), next_pos)  # the last W tokens

    @property
    def pattern(self):
        from ..patterns import SlidingWindow

        return SlidingWindow(self.window, causal=True)

    def _describe(self):
        return f"window={self.window}"


class SinkCache(KVCache):
    """StreamingLLM: the first `num_sinks` tokens forever + a rolling window of the last `window` tokens."""

    def __init__(self, num_sinks: int, window: int, num_kv_heads: int, head_dim: int, batch: int = 1, dtype=None,
                 quant: str | None = None):
        self.num_sinks = check_int("num_sinks", num_sinks, minimum=0)
        self.window = check_int("window", window, minimum=1)
        super().__init__(num_kv_heads, head_dim, self.num_sinks + self.window, batch, dtype, quant)

    def slot_of(self, positions):
        S = self.num_sinks
        rolling = S + (positions - S) % self.window  # slots S .. S+W-1 roll like RollingCache
        return torch.where(positions < S, positions, rolling)

    def held_positions(self, next_pos):
        S = self.num_sinks
        sinks = torch.arange(min(S, next_pos))
        lo = max(S, next_pos - self.window)
        recent = torch.arange(lo, max(lo, next_pos))  # empty while the sinks are still filling
        return torch.cat([sinks, recent])

    @property
    def pattern(self):
        from ..patterns import AttentionSinks

        return AttentionSinks(self.num_sinks, self.window)

    def _describe(self):
        return f"num_sinks={self.num_sinks}, window={self.window}"


def make_cache(kind: str, *, num_kv_heads: int, head_dim: int, max_tokens: int | None = None,
               window: int | None = None, num_sinks: int = 0, batch: int = 1, dtype=None,
               quant: str | None = None) -> KVCache:
    """Build a cache by name: "full" (needs max_tokens), "rolling" (window), "sinks" (num_sinks, window).

    `quant` stores keys and values as "int8" (a scale per token and head), "int8-gN" (per N channels) or "fp8".
    """
    common = dict(num_kv_heads=num_kv_heads, head_dim=head_dim, batch=batch, dtype=dtype, quant=quant)
    if kind == "full":
        if max_tokens is None:
            raise ValueError("kind='full' needs max_tokens (the cache is allocated once)")
        return FullCache(max_tokens, **common)
    if kind in ("rolling", "sinks") and window is None:
        raise ValueError(f"kind={kind!r} needs window")
    if kind == "rolling":
        return RollingCache(window, **common)
    if kind == "sinks":
        return SinkCache(num_sinks, window, **common)
    raise ValueError(f"kind must be one of {CACHE_KINDS}, got {kind!r}")
