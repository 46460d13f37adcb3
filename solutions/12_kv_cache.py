# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 12: a KV cache for sliding-window decoding
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/12_kv_cache.ipynb)
#
# You will build, with NumPy alone, the pieces of lesson 12: the rolling buffer that holds a sliding window's keys,
# grouped-query attention, the KV-cache memory formula, and finally a decoder loop whose outputs are checked
# against recomputing the whole sequence with the `SlidingWindow` mask.
#
# **Learning goals**
# - write and read a rolling buffer: token `p` in slot `p % W`, read back oldest first;
# - share key/value heads between query heads (GQA), with a safe masked softmax;
# - size a KV cache for a real model, exactly;
# - decode token by token through your buffer and get the same outputs as recomputation.
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure),
# compares with the library's reference and gives points per case. Calling the library's own caches, GQA helpers
# or memory formula inside your function does not count: the check notices and refuses.

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %%
import numpy as np

from saattn_edu import patterns as P
from saattn_edu.grading import check

# %% [markdown]
# A causal sliding window of `W` lets query `i` see keys `i-W+1 .. i`. This is its mask for `W = 3` on 8 tokens;
# decoding row `i` needs only the last `W` keys, so a buffer of `W` slots is enough:

# %%
P.SlidingWindow(window=3, causal=True).mask(8).astype(int)


# %% [markdown]
# ## Exercise 1: write into the rolling buffer
#
# `buffer` is a `(W, d)` array of `W` slots. Write `rolling_write(buffer, keys, pos)`: `keys` is `(t, d)`, the keys
# of tokens `pos, pos+1, …, pos+t-1`; token `p` goes to slot `p % W`. Return a **new** array (leave `buffer` as it
# is). A chunk longer than `W` keeps only its last `W` tokens: the older ones would be overwritten anyway.
#
# <details><summary>Hint</summary>
#
# `np.arange(first, pos + t)` lists the positions to store, `% W` gives their slots, and `keys[positions - pos]`
# their rows: one fancy-indexed assignment into `buffer.copy()`. Start at `first = max(pos, pos + t - W)` so no
# slot is written twice.
# </details>

# %%
def rolling_write(buffer, keys, pos):
    """A copy of the (W, d) buffer after writing keys (t, d) of tokens pos .. pos+t-1 to slots p % W."""
    ### BEGIN SOLUTION: slots p % W; keep only the last W tokens of a long chunk
    W, t = buffer.shape[0], keys.shape[0]
    out = buffer.copy()  # (W, d)
    positions = np.arange(max(pos, pos + t - W), pos + t)  # (r,) r <= W: distinct slots
    out[positions % W] = keys[positions - pos]
    return out
    ### END SOLUTION


# %%
check("ex12.rolling_write", rolling_write)


# %% [markdown]
# ## Exercise 2: read the buffer in time order
#
# After tokens `0 .. next_pos-1` have been written, which slots hold live tokens, oldest first? Write
# `rolling_read_order(next_pos, window)` returning an integer array of slot indices (length `min(next_pos, W)`).
# The check also asks a trillion tokens into a stream: work only with the positions still held.
#
# <details><summary>Hint</summary>
#
# The held positions are `max(0, next_pos - W) .. next_pos - 1`; each sits in slot `position % W`. Once the buffer
# has wrapped, the oldest token is in slot `next_pos % W`.
# </details>

# %%
def rolling_read_order(next_pos, window):
    """Slots of the held tokens, oldest first."""
    ### BEGIN SOLUTION: the last W positions, mapped to their slots
    held = np.arange(max(0, next_pos - window), next_pos)  # (m,) positions, ascending
    return held % window
    ### END SOLUTION


# %%
check("ex12.rolling_read_order", rolling_read_order)


# %% [markdown]
# ## Exercise 3: grouped-query attention
#
# `q` is `(H, t, d)`, `k` and `v` are `(Hkv, L, d)` with `H` a multiple of `Hkv`; query head `h` reads KV head
# `h // (H // Hkv)`. `mask` is `(t, L)` booleans (True: may attend). Write `gqa_attention(q, k, v, mask, bias=None)`
# returning `(H, t, d)`: softmax over the allowed keys of `q·kᵀ / √d` (plus `bias`, a `(t, L)` array added to the
# scores when given: exercise 5 uses it), times `v`. A row with no allowed key returns 0, never NaN.
#
# <details><summary>Hint</summary>
#
# Give every query head its KV head first (one fancy index builds the `(H, L, d)` keys). Masked scores become
# `-inf`; subtract the row max, but not where the whole row is `-inf`; divide by the row sum only where it is
# positive.
# </details>

# %%
def gqa_attention(q, k, v, mask, bias=None):
    """Softmax attention where query head h reads KV head h // (H // Hkv); (H, t, d)."""
    ### BEGIN SOLUTION: pick each query head's KV head, then a masked softmax that gives 0 on empty rows
    H, Hkv = q.shape[0], k.shape[0]
    kv = np.arange(H) // (H // Hkv)  # (H,) the KV head of every query head
    kh, vh = k[kv], v[kv]  # (H, L, d)
    s = q @ kh.transpose(0, 2, 1) / np.sqrt(q.shape[-1])  # (H, t, L)
    if bias is not None:
        s = s + bias
    s = np.where(mask, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0.0))  # masked scores -> 0
    l = e.sum(axis=-1, keepdims=True)
    return (e @ vh) / np.where(l > 0, l, 1.0)
    ### END SOLUTION


# %%
check("ex12.gqa_attention", gqa_attention)


# %% [markdown]
# ## Exercise 4: the memory formula
#
# Write `kv_cache_bytes(layers, kv_heads, head_dim, tokens, dtype_bytes)`: the bytes of a KV cache holding
# `tokens` tokens of one sequence, as an exact `int`.
#
# <details><summary>Hint</summary>
#
# Every layer stores a key **and** a value (the factor 2) per KV head, each `head_dim` numbers of `dtype_bytes`
# bytes, for every token.
# </details>

# %%
def kv_cache_bytes(layers, kv_heads, head_dim, tokens, dtype_bytes):
    """Bytes of K and V for `tokens` tokens."""
    ### BEGIN SOLUTION: layers × 2 × kv_heads × head_dim × tokens × bytes
    return layers * 2 * kv_heads * head_dim * tokens * dtype_bytes
    ### END SOLUTION


# %%
check("ex12.kv_cache_bytes", kv_cache_bytes)


# %% [markdown]
# ## Exercise 5: decode through your buffer
#
# Put it together. `q` is `(H, n, d)`, `k`, `v` are `(Hkv, n, d)`: the projections of `n` tokens. Decode them one at
# a time with a rolling buffer of `window` slots per KV head: at step `p`, write `k[:, p]` and `v[:, p]` to slot
# `p % W`, read the held slots oldest first, and attend `q[:, p]` to them. Return the `(H, n, d)` outputs.
#
# The model uses a recency bias (ALiBi): a key `δ` tokens older than the query scores `-slope · δ` less. Inside the
# cache, a key's age is its place in the read order: the newest (the token itself) has age 0, the oldest held one
# `m - 1`. So the order you read the slots in now matters.
#
# The check compares with **recomputation**: the whole sequence at once under
# `SlidingWindow(window, causal=True).mask(n)` with the bias `-slope · (i - j)`. They must agree to rounding.
#
# <details><summary>Hint</summary>
#
# Two `(Hkv, W, d)` buffers. Writing before reading is safe here: token `p` overwrites token `p - W`, which query
# `p` no longer sees. Reuse your `rolling_read_order` and `gqa_attention` (its `bias` argument takes one row of
# ages times `-slope`).
# </details>

# %%
def decode_with_rolling_cache(q, k, v, window, slope=0.0):
    """Outputs (H, n, d) of decoding n tokens one by one through a rolling KV buffer of `window` slots."""
    ### BEGIN SOLUTION: write slot p % W, read oldest first, attend the one query to the held keys
    Hkv, n, d = k.shape
    kbuf, vbuf = np.zeros((Hkv, window, d)), np.zeros((Hkv, window, d))  # the cache
    out = np.zeros(q.shape)  # (H, n, d)
    for p in range(n):
        kbuf[:, p % window], vbuf[:, p % window] = k[:, p], v[:, p]
        slots = rolling_read_order(p + 1, window)  # (m,) oldest first
        keys, values = kbuf[:, slots], vbuf[:, slots]  # (Hkv, m, d)
        age = np.arange(len(slots) - 1, -1, -1)  # (m,) the oldest held key first, the newest (age 0) last
        out[:, p:p + 1] = gqa_attention(q[:, p:p + 1], keys, values, np.ones((1, len(slots)), dtype=bool),
                                        -slope * age[None, :])
    return out
    ### END SOLUTION


# %%
check("ex12.decode_with_rolling_cache", decode_with_rolling_cache)

# %% [markdown]
# ## Exercise 6: one number
#
# Llama 3 70B has 80 layers, 8 KV heads and head dimension 128. How many **GiB** ($2^{30}$ bytes) does its KV cache
# take for one sequence of 131,072 tokens in bf16 (2 bytes), with a full cache? Set `q6_answer` and run the cell.
#
# <details><summary>Hint</summary>
#
# Your `kv_cache_bytes` from exercise 4, divided by `2**30`.
# </details>

# %%
### BEGIN SOLUTION: set q6_answer to the GiB
q6_answer = 80 * 2 * 8 * 128 * 131072 * 2 / 2**30  # 40 GiB: more than half an 80 GB GPU, for one sequence
### END SOLUTION
check("ex12.q6", q6_answer)

# %% [markdown]
# ## Exercise 7: in words (self-checked)
#
# A rolling cache of window `W` and a StreamingLLM cache with 4 sinks and the same `W` cost the same memory. Why do
# trained models stream far better with the sinks? And why does StreamingLLM re-number positions inside its cache
# instead of keeping each token's original index?
#
# Write your answer as a string in `q7_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q7_text
q7_text = """
Softmax must put its weight somewhere; trained models learn to park attention they do not need on the first
tokens (they are seen by every query), so those keys act as a sink. A plain window evicts them after `W` tokens,
the attention mass goes elsewhere and the model's activations shift: perplexity explodes. Keeping 4 sinks
restores that outlet for 4 extra slots. Positions: with original indices, the distance from a new query to the
sinks grows without bound, past anything seen in training (RoPE at unseen distances); re-numbering inside the
cache keeps every distance below `S + W`. The price is that no single full-sequence mask reproduces it."""
### END SOLUTION
check("ex12.text_q7", q7_text)

# %% [markdown]
# ## ★ Exercise 8: an int8 cache block
#
# Lesson 12 stores keys and values as 8-bit codes with one scale per token: a window already bounds how many
# tokens the cache holds, and quantization shrinks each one. Write `int8_roundtrip(x)`: `x` is a `(tokens, d)`
# block of keys; quantize every token (row) symmetrically to int8 codes in [-127, 127] with its own scale, then
# dequantize, and return the block the cache would give back (same shape and dtype as `x`). The check compares
# your block with the course's cache format on fresh random blocks, outlier channels and all-zero tokens included.

# %%
def int8_roundtrip(x):
    ### BEGIN SOLUTION
    absmax = np.abs(x).max(axis=-1, keepdims=True)  # (tokens, 1): one scale per token
    scale = np.where(absmax > 0, absmax / 127, 1).astype(x.dtype)  # an all-zero token keeps scale 1
    codes = np.clip(np.round(x / scale), -127, 127)  # what an int8 buffer would hold
    return (codes * scale).astype(x.dtype)
    ### END SOLUTION


# %%
check("ex12.star_int8_roundtrip", int8_roundtrip)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/12_kv_cache.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
