"""Checks for exercises/12_kv_cache.ipynb: the rolling buffer, GQA head sharing, the KV memory formula, and a
rolling-cache decode graded against recomputation with the SlidingWindow mask. NumPy only."""
from __future__ import annotations

import numpy as np

from saattn_edu import inference as I
from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.inference import gqa as _gqa
from saattn_edu.inference import kv_cache as _kv
from saattn_edu.inference import memory as _memory
from saattn_edu.reference import dense as _dense

from ..compare import ArrayClose, ArrayEqual, IntEqual, NumberClose
from ..hints import Diagnosed
from ..freetext import text_question
from ..spec import Case, Question


def forbid_cache_api() -> list:
    """The library's caches, GQA helpers and memory formula: they already answer these questions."""
    targets = [(cls, name) for cls in (_kv.KVCache, _kv.FullCache, _kv.RollingCache, _kv.SinkCache)
               for name in ("slot_of", "held_positions", "read", "write", "update", "mask") if name in cls.__dict__]
    targets += [(_gqa, "grouped_attention"), (_gqa, "repeat_kv"), (_gqa, "kv_head_for"),
                (I, "grouped_attention"), (I, "repeat_kv"), (I, "kv_head_for")]
    targets += [(_memory, "kv_cache_bytes"), (I, "kv_cache_bytes"), (_memory.ModelShape, "kv_bytes")]
    return targets


def forbid_attention() -> list:
    """As above, plus the dense reference and the window's mask: decoding must go through your own buffer."""
    targets = forbid_cache_api() + [(R, "dense_attention"), (_dense, "dense_attention")]
    return targets + [(P.SlidingWindow, "allowed")]  # the rule behind its mask(), neighbors() and mask_mod


# ---- references (NumPy) ---------------------------------------------------------------------------------------
def _rolling_write(buffer, keys, pos):
    out = buffer.copy()
    W, t = buffer.shape[0], keys.shape[0]
    for p in range(max(pos, pos + t - W), pos + t):  # only the last W tokens of a long chunk survive
        out[p % W] = keys[p - pos]
    return out


def _rolling_read_order(next_pos, window):
    held = np.arange(max(0, next_pos - window), next_pos, dtype=np.int64)
    return held % window


def _gqa_reference(q, k, v, mask, bias=None):
    g = q.shape[0] // k.shape[0]
    k, v = np.repeat(k, g, axis=0), np.repeat(v, g, axis=0)
    if bias is None:
        return R.dense_attention(q, k, v, mask=mask)
    s = np.where(mask, q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + bias, -np.inf)  # (H, t, L)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0.0))
    total = e.sum(axis=-1, keepdims=True)
    return (e @ v) / np.where(total > 0, total, 1.0)


def _decode_reference(q, k, v, window, slope):
    """Recomputation: the whole sequence at once under SlidingWindow(window, causal=True), ALiBi bias."""
    n = q.shape[1]
    age = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n) i - j
    return _gqa_reference(q, k, v, P.SlidingWindow(window, causal=True).mask(n), -slope * age)


# ---- input generators: every check draws new ones ------------------------------------------------------------
def _write_case(kind):
    def make(rng):
        W, d = int(rng.integers(2, 9)), int(rng.integers(1, 5))
        pos = {"start": 0, "wrap": int(rng.integers(W, 5 * W)), "long": int(rng.integers(0, 3 * W))}.get(kind, 0)
        t = {"one": 1, "start": int(rng.integers(1, W)), "wrap": int(rng.integers(2, W + 1)),
             "long": int(rng.integers(W + 1, 3 * W + 1))}[kind]
        if kind == "one":
            pos = int(rng.integers(0, 4 * W))
        return {"buffer": rng.standard_normal((W, d)), "keys": rng.standard_normal((t, d)), "pos": pos}

    return make


def _order_case(kind):
    def make(rng):
        W = 1 if kind == "window 1" else int(rng.integers(2, 12))
        next_pos = {"filling": int(rng.integers(0, W)), "full": W, "wrapped": int(rng.integers(W + 1, 20 * W)),
                    "window 1": int(rng.integers(1, 30)), "huge": int(rng.integers(10**12, 10**13))}[kind]
        if kind == "huge":
            W = int(rng.integers(2, 64))
        return {"next_pos": next_pos, "window": W}

    return make


def _qkv(rng, H, Hkv, t, L, d):
    return (rng.standard_normal((H, t, d)), rng.standard_normal((Hkv, L, d)), rng.standard_normal((Hkv, L, d)))


def _gqa_case(H, Hkv, empty_rows=False):
    def make(rng):
        t, L, d = int(rng.integers(1, 7)), int(rng.integers(1, 12)), int(rng.integers(2, 9))
        q, k, v = _qkv(rng, H, Hkv, t, L, d)
        mask = rng.random((t, L)) < 0.6
        if empty_rows:
            mask[rng.integers(0, t)] = False
        return {"q": q, "k": k, "v": v, "mask": mask}

    return make


def _decode_case(H, Hkv, long=True, slope=True):
    def make(rng):
        W = int(rng.integers(3 if slope else 1, 6))
        n = int(rng.integers(W + 2, 4 * W + 8)) if long else int(rng.integers(1, W + 1))
        q, k, v = _qkv(rng, H, Hkv, n, n, int(rng.integers(2, 9)))
        return {"q": q, "k": k, "v": v, "window": W, "slope": float(rng.uniform(0.5, 2.0)) if slope else 0.0}

    return make


def _bytes_case(kind):
    def make(rng):
        if kind == "mistral":
            return {"layers": 32, "kv_heads": 8, "head_dim": 128, "tokens": 4096, "dtype_bytes": 2}
        if kind == "huge":
            return {"layers": 80, "kv_heads": 8, "head_dim": 128, "tokens": int(rng.integers(10**6, 10**8)),
                    "dtype_bytes": 2}
        return {"layers": int(rng.integers(1, 100)), "kv_heads": int(rng.integers(1, 64)),
                "head_dim": int(rng.choice([32, 64, 80, 96, 128, 256])), "tokens": int(rng.integers(0, 10**5)),
                "dtype_bytes": int(rng.choice([1, 2, 4]))}

    return make


# ---- the questions ------------------------------------------------------------------------------------------
# ---- ★ an int8 cache block ----------------------------------------------------------------------------------------
def _ref_int8_roundtrip(x):
    """Symmetric int8 per token (row): scale = max|x| / 127 (1 for an all-zero row), round to nearest, back."""
    absmax = np.abs(x).max(axis=-1, keepdims=True)
    scale = np.where(absmax > 0, absmax / 127, 1).astype(x.dtype)
    return (np.clip(np.round(x / scale), -127, 127) * scale).astype(x.dtype)


def _block_case(kind):
    def make(rng):
        tokens, d = int(rng.integers(3, 40)), int(rng.choice([16, 32, 64]))
        x = (rng.standard_normal((tokens, d)) * rng.uniform(0.1, 5.0, size=(tokens, 1))).astype(np.float32)
        if kind == "outlier":
            x[:, int(rng.integers(d))] *= 40  # one outlier channel: its token's scale follows it
        if kind == "zero row":
            x[int(rng.integers(tokens))] = 0
        if kind == "float64":
            x = x.astype(np.float64)
        return {"x": x}

    return make


QUESTIONS = [
    Question(
        "rolling_write", 1,
        reference=_rolling_write, compare=Diagnosed(ArrayClose(rtol=0, atol=0)), forbid=forbid_cache_api,
        hint="Token p goes to slot p % W. A chunk longer than W keeps only its last W tokens.",
        cases=(
            Case("one token", _write_case("one"), hint="slot = pos % W; every other slot keeps its old value"),
            Case("a chunk into a fresh buffer", _write_case("start")),
            Case("a chunk that wraps around the end", _write_case("wrap"),
                 hint="positions pos..pos+t-1 go to slots (pos..pos+t-1) % W: they wrap to slot 0"),
            Case("a chunk longer than the window", _write_case("long"),
                 hint="write only positions pos+t-W .. pos+t-1 (or write in order, letting later ones overwrite)"),
        ),
    ),
    Question(
        "rolling_read_order", 2,
        reference=_rolling_read_order, compare=Diagnosed(ArrayEqual("i")), forbid=forbid_cache_api,
        hint="The held positions are max(0, next_pos - W) .. next_pos - 1, oldest first; map each to its slot.",
        cases=(
            Case("buffer still filling", _order_case("filling"), hint="before W tokens, slots 0 .. next_pos-1"),
            Case("buffer exactly full", _order_case("full")),
            Case("after many wraps", _order_case("wrapped"), hint="the oldest token sits in slot next_pos % W"),
            Case("window of 1", _order_case("window 1")),
            Case("a trillion tokens in", _order_case("huge"), hint="work with the last W positions only"),
        ),
    ),
    Question(
        "gqa_attention", 3,
        reference=_gqa_reference, compare=Diagnosed(ArrayClose(rtol=1e-6, atol=1e-9)), forbid=forbid_attention,
        hint="Query head h reads KV head h // (H // Hkv). Softmax over the allowed keys; a row with none gives 0.",
        cases=(
            Case("multi-head (Hkv == H)", _gqa_case(4, 4)),
            Case("grouped, 2 query heads per KV head", _gqa_case(4, 2),
                 hint="heads 0, 1 read KV head 0; heads 2, 3 read KV head 1"),
            Case("multi-query (one KV head)", _gqa_case(3, 1)),
            Case("rows with no allowed key", _gqa_case(6, 2, empty_rows=True),
                 hint="mask those scores to -inf, subtract a finite row max, and return 0 where nothing is allowed"),
        ),
    ),
    Question(
        "kv_cache_bytes", 4,
        reference=lambda layers, kv_heads, head_dim, tokens, dtype_bytes: _memory.kv_cache_bytes(
            layers, kv_heads, head_dim, tokens, dtype_bytes),
        compare=IntEqual(), forbid=forbid_cache_api,
        hint="K and V: two tensors per layer, each kv_heads × head_dim numbers per token.",
        cases=(
            Case("Mistral 7B at 4096 tokens, bf16", _bytes_case("mistral"), hint="the answer is 512 MiB"),
            Case("random shapes and dtypes", _bytes_case("random")),
            Case("a hundred million tokens", _bytes_case("huge"), hint="integers only: no float on the way"),
        ),
    ),
    Question(
        "decode_with_rolling_cache", 5,
        reference=_decode_reference, forbid=forbid_attention,
        compare=Diagnosed(ArrayClose(rtol=1e-6, atol=1e-9), where="rolling_read_order, the ages, or gqa_attention"),
        hint="For each p: write k[:, p], v[:, p] to slot p % W, read the held slots, attend q[:, p] to them.",
        cases=(
            Case("shorter than the window", _decode_case(2, 1, long=False),
                 hint="before W tokens every past token is held"),
            Case("no recency bias (slope 0)", _decode_case(2, 2, slope=False),
                 hint="query p sees keys p-W+1 .. p: write before you read, the overwritten key is p - W"),
            Case("multi-head, past the window", _decode_case(2, 2),
                 hint="ages follow the read order: oldest first, so the last key read (token p) has age 0"),
            Case("GQA, past the window", _decode_case(4, 2)),
            Case("multi-query, past the window", _decode_case(3, 1)),
        ),
    ),
    Question(
        "q6", 6, kind="value", answer_name="q6_answer", points=2,
        reference=lambda: 80 * 2 * 8 * 128 * 131072 * 2 / 2**30,
        compare=NumberClose(rtol=1e-3),
        hint="layers × 2 × kv_heads × head_dim × tokens × bytes, then divide by 2**30 for GiB.",
    ),
    text_question("ex12", 7),
    Question(
        "star_int8_roundtrip", 8, answer_name="int8_roundtrip", reference=_ref_int8_roundtrip,
        compare=Diagnosed(ArrayClose(rtol=1e-6, atol=1e-7), where="the scale, the rounding or the clipping"),
        forbid=forbid_cache_api,
        hint="Each token (row) has its own scale; the largest magnitude of a row must land exactly on the largest "
             "code, and values in between on the nearest code.",
        cases=(
            Case("random tokens of different magnitudes", _block_case("plain")),
            Case("one outlier channel", _block_case("outlier")),
            Case("an all-zero token", _block_case("zero row"),
                 hint="an all-zero row has no magnitude to scale by: it must come back as zeros, not NaN"),
            Case("float64 in, float64 out", _block_case("float64"), hint="the output keeps the input's dtype"),
        ),
    ),
]
