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
# # Exercises 07: FlashAttention in NumPy
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/07_flash.ipynb)
#
# You will build FlashAttention's forward pass from its parts (lesson 07): the online softmax, one tile update, the tiled loop, then the block-sparse version that skips tiles. Each check compares your result with `dense_attention` on fresh random inputs.
#
# **Learning goals**
# - compute a softmax in one pass over blocks with a running max and sum
# - fold one tile of scores into a running (output, max, sum) state
# - write the full tiled forward with O(n) memory, and measure it
# - skip the tiles a block layout turns off, without ever reading them
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure),
# compares with the library's reference and gives points per case. Calling the library's own solution inside your
# function does not count: the check notices and refuses.

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %%
import math

import numpy as np

from saattn_edu import patterns as P, reference as R
from saattn_edu.grading import check


# %% [markdown]
# ## Exercise 1: the online softmax
#
# Write `online_softmax(x, block)` for a 2-D array of logits `x` (one row per query). Walk the columns in blocks of
# `block`, keeping per row a running max `m` and a running sum `l = Σ exp(x - m)`:
# `m_new = max(m, block max)`, `l = l · exp(m - m_new) + Σ exp(block - m_new)`. Then return `exp(x - m) / l`.
# Masked entries are `-inf` (weight 0); a row with no finite entry returns zeros, never `nan`.
#
# <details><summary>Hint</summary>
#
# Start from `m = np.full(rows, -np.inf)`, `l = np.zeros(rows)`. Wherever `m_new` is `-inf`, subtract 0 instead:
# `m_safe = np.where(np.isneginf(m_new), 0.0, m_new)`; `exp(-inf - m_safe)` is then 0, not `nan`. Divide only
# where `l > 0`.
# </details>

# %%
def online_softmax(x, block):
    """Row softmax of x (r, c), computed with a running max and sum over column blocks."""
    ### BEGIN SOLUTION: running max and rescaled sum over the blocks, then one normalising pass
    m = np.full(x.shape[0], -np.inf)  # (r,)
    l = np.zeros(x.shape[0])  # (r,)
    for c0 in range(0, x.shape[1], block):
        xb = x[:, c0:c0 + block]  # (r, b)
        m_new = np.maximum(m, xb.max(axis=1))
        m_safe = np.where(np.isneginf(m_new), 0.0, m_new)
        l = l * np.exp(m - m_safe) + np.exp(xb - m_safe[:, None]).sum(axis=1)
        m = m_new
    m_safe = np.where(np.isneginf(m), 0.0, m)
    return np.exp(x - m_safe[:, None]) / np.where(l > 0, l, 1.0)[:, None]  # (r, c)
    ### END SOLUTION


# %%
check("ex07.online_softmax", online_softmax)


# %% [markdown]
# ## Exercise 2: one tile update
#
# The attention state of a block of `r` queries, after some keys, is `acc (r, dv)` (`Σ exp(s - m) v`), `m (r,)` and
# `l (r,)`. Write `tile_update(acc, m, l, s, v)`: fold in one more tile of scaled scores `s (r, c)` (masked ones are
# `-inf`) with its values `v (c, dv)`, and return the new `(acc, m, l)`. Leave the inputs unchanged.
#
# <details><summary>Hint</summary>
#
# `m_new = np.maximum(m, s.max(axis=1))`; `alpha = exp(m - m_safe)` rescales the old `acc` and `l`;
# `p = exp(s - m_safe[:, None])`; `acc' = alpha[:, None] * acc + p @ v`, `l' = alpha * l + p.sum(axis=1)`.
# </details>

# %%
def tile_update(acc, m, l, s, v):
    """(acc, m, l) after one more tile of scores s (r, c) with values v (c, dv)."""
    ### BEGIN SOLUTION: new max, rescale the old state by exp(m - m_new), add the tile
    m_new = np.maximum(m, s.max(axis=1))  # (r,)
    m_safe = np.where(np.isneginf(m_new), 0.0, m_new)  # rows with nothing seen: exps give 0, not nan
    alpha = np.exp(m - m_safe)  # (r,)
    p = np.exp(s - m_safe[:, None])  # (r, c)
    return alpha[:, None] * acc + p @ v, m_new, alpha * l + p.sum(axis=1)
    ### END SOLUTION


# %%
check("ex07.tile_update", tile_update)


# %% [markdown]
# ## Exercise 3: the tiled forward pass
#
# Write `flash_forward(q, k, v, block_q, block_k)`: for each block of `block_q` queries, start from `acc = 0`,
# `m = -inf`, `l = 0`, fold in every block of `block_k` keys with your `tile_update` (scores scaled by `1 / √d`),
# then write `acc / l` to the output. Blocks need not divide `n`; `q` and `k` may hold different numbers of rows.
# Never build the `(n, n_k)` score matrix.
#
# <details><summary>Hint</summary>
#
# `for i0 in range(0, n, block_q)` and `q[i0:i0 + block_q]` (NumPy clips the last slice); the same for keys. The
# scores of one tile are `qi @ k[j0:j0 + block_k].T / math.sqrt(d)`.
# </details>

# %%
def flash_forward(q, k, v, block_q, block_k):
    """Attention of q (n, d) over k (n_k, d), v (n_k, dv), one (block_q, block_k) tile at a time."""
    ### BEGIN SOLUTION: loop over query blocks, fold every key tile into the state, divide by l
    scale = 1.0 / math.sqrt(q.shape[1])
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))  # (n, dv)
    for i0 in range(0, q.shape[0], block_q):
        qi = q[i0:i0 + block_q] * scale  # (r, d)
        acc, m, l = np.zeros((len(qi), v.shape[1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for j0 in range(0, k.shape[0], block_k):
            acc, m, l = tile_update(acc, m, l, qi @ k[j0:j0 + block_k].T, v[j0:j0 + block_k])
        out[i0:i0 + block_q] = acc / np.where(l > 0, l, 1.0)[:, None]
    return out
    ### END SOLUTION


# %%
check("ex07.flash_forward", flash_forward)

# %% [markdown]
# ## Exercise 4: memory, measured
#
# The check below runs your `flash_forward` at `n = 2048`, `d = 16`, tiles of 64, under `tracemalloc`, and passes
# when its peak memory stays below an eighth of one `2048 × 2048` float32 score matrix (2.1 MB of 16.8 MB). A
# tiled pass needs about `n · d` for the output and one tile; anything that builds a full row of `n` scores per
# query block, or the whole matrix, does not fit. Your own measurement first:

# %% tags=["nbval-ignore-output"]
import tracemalloc

rng = np.random.default_rng(0)
for n in (512, 1024, 2048):
    q, k, v = (rng.standard_normal((n, 16)).astype(np.float32) for _ in range(3))
    tracemalloc.start()
    flash_forward(q, k, v, 64, 64)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"n = {n:>4}: peak {peak / 1e6:.3f} MB   (one n × n float32 score matrix: {4 * n * n / 1e6:.1f} MB)")

# %% tags=["nbval-ignore-output"]
check("ex07.flash_memory", flash_forward)


# %% [markdown]
# ## Exercise 5: block-sparse FlashAttention
#
# Write `block_sparse_flash(q, k, v, layout, block)`: your tiled pass with `block_q = block_k = block`, visiting
# key block `j` of query block `i` only when `layout[i, j]` is True (rows that visit nothing return zeros). Skipped
# tiles must not even be read: the check puts `nan` in the values of key blocks that no query block uses, so
# computing a tile and masking it afterwards fails.
#
# <details><summary>Hint</summary>
#
# Enumerate the blocks: `for bi, i0 in enumerate(range(0, n, block))` and the same for `bj, j0`; `continue` when
# `not layout[bi, bj]`.
# </details>

# %%
def block_sparse_flash(q, k, v, layout, block):
    """flash_forward that visits tile (bi, bj) only where layout[bi, bj]."""
    ### BEGIN SOLUTION: the tiled loop with a `continue` on inactive tiles
    scale = 1.0 / math.sqrt(q.shape[1])
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))  # (n, dv)
    for bi, i0 in enumerate(range(0, q.shape[0], block)):
        qi = q[i0:i0 + block] * scale  # (r, d)
        acc, m, l = np.zeros((len(qi), v.shape[1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for bj, j0 in enumerate(range(0, k.shape[0], block)):
            if layout[bi, bj]:
                acc, m, l = tile_update(acc, m, l, qi @ k[j0:j0 + block].T, v[j0:j0 + block])
        out[i0:i0 + block] = acc / np.where(l > 0, l, 1.0)[:, None]  # empty rows stay 0
    return out
    ### END SOLUTION


# %%
check("ex07.block_sparse_flash", block_sparse_flash)

# %% [markdown]
# Your kernel on a causal sliding window: the layout is a superset of the pattern, so on a short sequence compare
# with attention restricted to the active tiles, and count the tiles it skips:

# %%
n, block = 512, 32
p = P.SlidingWindow(64, causal=True)
layout = p.block_layout(n, block)
q, k, v = (np.random.default_rng(1).standard_normal((n, 32)) for _ in range(3))
print("equals R.block_sparse_attention:", np.allclose(block_sparse_flash(q, k, v, layout, block),
                                                      R.block_sparse_attention(q, k, v, layout, block)))
print(f"tiles visited: {int(layout.sum())} of {layout.size}")

# %% [markdown]
# ## Exercise 6: in words (self-checked)
#
# Your `flash_forward` returns `acc / l` and throws `m` and `l` away. Ring attention (lesson 13) needs them: why,
# and what single number per row would you return instead of the pair `(m, l)`?
#
# Write your answer as a string in `q6_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q6_text
q6_text = """
Ring attention computes attention over one block of keys at a time on different devices and must merge the
partial outputs: a partial output alone does not say how much softmax mass its keys carried. The log-sum-exp
`lse = m + log(l)` does; with it, two partial results over disjoint keys merge exactly:
`lse = logaddexp(lse_a, lse_b)`, `out = exp(lse_a - lse) · out_a + exp(lse_b - lse) · out_b`."""
### END SOLUTION
check("ex07.text_q6", q6_text)

# %% [markdown]
# ## ★ Exercise 7 (challenge): causal FlashAttention, masked tile by tile
#
# A causal model never builds an `n × n` mask either. Write `causal_flash(q, k, v, block_q, block_k)` for
# `q, k, v` of `n` rows each: causal attention (query `i` sees keys `j <= i`), tiled like exercise 3, where a tile
# entirely above the diagonal is skipped and each remaining tile computes its own small mask from where it sits.
# `block_q` and `block_k` may differ and need not divide `n`. Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# A tile knows its first query row and its first key column; the positions inside it are those plus the offsets
# within the tile, and the causal rule compares positions in the whole sequence, not within the tile. Only the
# tiles that the diagonal crosses need a mask at all, and the tiles past the diagonal need no work.
# </details>

# %%
def causal_flash(q, k, v, block_q, block_k):
    """Causal attention of q, k, v (n, d), one tile at a time; tiles above the diagonal are never computed."""
    ### BEGIN SOLUTION: skip tiles past the diagonal; mask a tile by comparing global query and key positions
    scale = 1.0 / math.sqrt(q.shape[1])
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))  # (n, dv)
    for i0 in range(0, q.shape[0], block_q):
        qi = q[i0:i0 + block_q] * scale  # (r, d)
        rows = np.arange(i0, i0 + len(qi))  # (r,) global query positions
        acc, m, l = np.zeros((len(qi), v.shape[1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for j0 in range(0, rows[-1] + 1, block_k):  # key tiles starting after the last query are skipped
            s = qi @ k[j0:j0 + block_k].T  # (r, c)
            cols = np.arange(j0, j0 + s.shape[1])  # (c,) global key positions
            s = np.where(cols[None, :] <= rows[:, None], s, -np.inf)
            acc, m, l = tile_update(acc, m, l, s, v[j0:j0 + block_k])
        out[i0:i0 + block_q] = acc / l[:, None]  # every row sees at least itself
    return out
    ### END SOLUTION


# %%
check("ex07.star_causal_flash", causal_flash)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/07_flash.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
