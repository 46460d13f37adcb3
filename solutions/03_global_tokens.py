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
# # Exercises 03: global tokens and Longformer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/03_global_tokens.ipynb)
#
# You will add lesson 03's hubs to a window: global-token masks, Longformer's composition and its exact cost, and the two-hop property checked with a boolean matrix product.
#
# **Learning goals**
# - build a global-token mask and Longformer's window ∪ global mask;
# - compute which pairs are connected within two layers (residual stream included);
# - count Longformer's pairs in closed form for a million tokens and more.
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
import numpy as np

from saattn_edu import patterns as P
from saattn_edu.grading import check


# %% [markdown]
# ## Exercise 1: Longformer's mask
#
# `Longformer(window, global_indices, dilation)` is exactly `DilatedWindow(window, dilation) | GlobalTokens(global_indices)`
# (non-causal here): the dilated window keeps `(i - j) % dilation == 0` and `|(i - j) // dilation| <= window // 2`;
# the global part is notebook 01's `GlobalTokens` (rows and columns of the global positions; the list may be
# unsorted, hold repeats, or be empty). Write `longformer_mask(n, window, global_indices, dilation)`.

# %%
def longformer_mask(n, window, global_indices, dilation=1):
    """(n, n) bool mask of Longformer(window, global_indices, dilation), non-causal."""
    ### BEGIN SOLUTION: the dilated window rule, OR the global rows and columns
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    local = (d % dilation == 0) & (np.abs(d // dilation) <= window // 2)
    g = np.isin(np.arange(n), np.asarray(global_indices, dtype=np.int64))  # (n,) global positions
    return local | g[:, None] | g[None, :]
    ### END SOLUTION


# %%
check("ex03.longformer_mask", longformer_mask)


# %% [markdown]
# ## Exercise 2: who reaches whom in two layers
#
# Read a mask as a graph: an edge `i → j` when query `i` may attend to key `j`. After one layer, token `i` holds
# information from its keys; the residual stream also keeps its own. After two layers it holds what its keys held
# after one. So with `S = mask | I` (the identity for the residual), pair `(i, j)` is connected within two layers
# when `S[i, k] and S[k, j]` for some `k`: a boolean matrix product. Write `two_hop_reachable(mask)`.
#
# <details><summary>Hint</summary>
#
# `S = mask.astype(int) | np.eye(n, dtype=int)`; `(S @ S) > 0`. The product counts paths; `> 0` turns counts into booleans.
# </details>

# %%
def two_hop_reachable(mask):
    """(n, n) bool: can information flow from key j to query i within two layers (residual included)?"""
    ### BEGIN SOLUTION: add the identity, one integer matrix product, > 0
    s = mask.astype(np.int64) | np.eye(len(mask), dtype=np.int64)  # (n, n) one layer + residual
    return (s @ s) > 0
    ### END SOLUTION


# %%
check("ex03.two_hop_reachable", two_hop_reachable)

# %% [markdown]
# Lesson 03's claim, checked with your function: a window alone connects only nearby pairs in two layers; one
# global token anywhere connects every pair.

# %%
n = 64
window = P.SlidingWindow(5).mask(n)
for name, mask in {"window 5": window, "window 5 + global token 40": window | P.GlobalTokens([40]).mask(n)}.items():
    print(f"{name:28} pairs connected in two layers: {two_hop_reachable(mask).mean():6.1%}")


# %% [markdown]
# ## Exercise 3: Longformer's cost, counted
#
# How many pairs does `Longformer(window, global_indices)` allow? The check asks for sequences of a million to a
# billion tokens, so count without a mask (a mask would need terabytes). Inclusion–exclusion, with `h = window // 2`:
#
# - the window alone allows `n + 2·(h·n − h(h+1)/2)` pairs (`h` clipped to `n − 1`);
# - global row `x` adds the keys its window misses: `n − r(x)`, where `r(x) = min(h, x) + min(h, n − 1 − x) + 1`;
#   global column `x` adds the same number of queries (the window is symmetric);
# - a pair `(x, y)` of two global tokens outside each other's window is added by row `x` **and** by column `y`:
#   subtract it once.
#
# Repeated indices count once (`np.unique`). Write `longformer_num_pairs(n, window, global_indices)` returning an `int`.

# %%
def longformer_num_pairs(n, window, global_indices):
    """Exact number of pairs of Longformer(window, global_indices) on n tokens (non-causal, no dilation)."""
    ### BEGIN SOLUTION: window pairs + what global rows and columns add - global pairs counted twice
    g = np.unique(np.asarray(global_indices, dtype=np.int64))  # (G,)
    h = min(window // 2, n - 1)
    pairs = n + 2 * (h * n - h * (h + 1) // 2)
    row = np.minimum(h, g) + np.minimum(h, n - 1 - g) + 1  # (G,) window keys of global row x
    pairs += 2 * int((n - row).sum())
    pairs -= int((np.abs(g[:, None] - g[None, :]) > h).sum())
    return int(pairs)
    ### END SOLUTION


# %%
check("ex03.longformer_num_pairs", longformer_num_pairs)

# %% [markdown]
# ## Exercise 4: one number, by reasoning
#
# With `SlidingWindow(9)` only, on `n = 100` tokens, how many layers are needed before token 99's output can
# depend on token 0? Set `q4_answer` (an integer) and run the cell.
#
# <details><summary>Hint</summary>
#
# Each layer moves information at most `9 // 2` tokens; you need to cover a distance of 99.
# </details>

# %%
### BEGIN SOLUTION: set q4_answer to the number of layers
q4_answer = 25  # ceil(99 / 4)
### END SOLUTION
check("ex03.q4", q4_answer)

# %% [markdown]
# ## ★ Exercise 5 (challenge): Longformer's neighbour lists, in O(nnz)
#
# A sparse kernel reads Longformer as CSR neighbour lists, and at 200,000 tokens nobody builds the mask. Write
# `longformer_neighbors(n, window, global_indices)`: the CSR `(indptr, indices)` of
# `Longformer(window, global_indices)` (non-causal, no dilation), keys ascending in every row, no repeats. The
# global list may be unsorted or hold repeats. The check runs it on 200,000 tokens too. Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# Three kinds of pairs: the band around the diagonal, the global columns, the global rows. They overlap; give
# every pair one number that sorts row-major, and one sort puts each row in order with its repeats side by side.
# </details>

# %%
def longformer_neighbors(n, window, global_indices):
    """CSR (indptr, indices) of Longformer(window, global_indices) on n tokens, without an n × n array."""
    ### BEGIN SOLUTION: band, global columns and global rows as row-major keys; one sort, repeats dropped
    g = np.unique(np.asarray(global_indices, dtype=np.int64))  # (G,)
    h = min(window // 2, max(n - 1, 0))
    i = np.arange(n, dtype=np.int64)  # (n,)
    j = i[:, None] + np.arange(-h, h + 1)[None, :]  # (n, 2h + 1) the band
    band = (i[:, None] * n + j)[(j >= 0) & (j < n)]
    parts = [band, (i[:, None] * n + g[None, :]).ravel(), (g[:, None] * n + i[None, :]).ravel()]  # each sorted
    key = np.sort(np.concatenate(parts), kind="stable")  # a merge of sorted runs: fast
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key  # repeats are neighbours once sorted
    indptr = np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * n)  # (n + 1,) first key of every row
    return indptr.astype(np.int64), key % n
    ### END SOLUTION


# %%
check("ex03.star_longformer_neighbors", longformer_neighbors)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/03_global_tokens.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
