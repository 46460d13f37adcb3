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
# # Exercises 01: masks, windows and neighbour lists
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/01_patterns.ipynb)
#
# You will rebuild, with NumPy alone, the patterns of lesson 01: which keys each query may attend to.
#
# **Learning goals**
# - build sliding-window, dilated and global-token masks with broadcasting, no Python loops;
# - turn a mask into CSR neighbour lists, the form sparse kernels read;
# - count allowed pairs in closed form, for sequences far too long for a mask.
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure),
# compares with the library's reference and gives points per case. Calling the library's own pattern classes
# inside your function does not count: the check notices and refuses.

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
# Query `i` is a row, key `j` a column. This is what the library draws for a causal window of 3 on 8 tokens;
# your functions return the same kind of array (`dtype=bool`, shape `(n, n)`):

# %%
P.SlidingWindow(window=3, causal=True).mask(8).astype(int)


# %% [markdown]
# ## Exercise 1: a sliding-window mask
#
# Write `sliding_window_mask(n, window, causal)`. Causal: key `j` is allowed when `0 <= i - j < window` (the last
# `window` tokens, itself included). Non-causal: when `|i - j| <= window // 2`.
#
# <details><summary>Hint</summary>
#
# `np.arange(n)[:, None] - np.arange(n)[None, :]` is the `(n, n)` array of offsets `i - j`; comparisons on it give
# booleans, and `&` combines them.
# </details>

# %%
def sliding_window_mask(n, window, causal=False):
    """(n, n) bool: may query i attend to key j under SlidingWindow(window, causal)?"""
    ### BEGIN SOLUTION: build the offsets i - j with broadcasting, then compare them with the window
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n) offsets i - j
    if causal:
        return (d >= 0) & (d < window)
    return np.abs(d) <= window // 2
    ### END SOLUTION


# %%
check("ex01.sliding_window_mask", sliding_window_mask)


# %% [markdown]
# ## Exercise 2: a dilated window
#
# A dilated window keeps only every `dilation`-th key: `(i - j) % dilation == 0`, and counts the window in those
# steps, `(i - j) // dilation`. Same number of keys per query as a sliding window, reaching `dilation` times as far.
# Write `dilated_window_mask(n, window, dilation, causal)`.
#
# <details><summary>Hint</summary>
#
# Floor division and modulo work element-wise on the offsets array: `d % dilation == 0` is the grid,
# `d // dilation` the step; then reuse exercise 1's comparisons on the steps.
# </details>

# %%
def dilated_window_mask(n, window, dilation, causal=False):
    """(n, n) bool mask of DilatedWindow(window, dilation, causal)."""
    ### BEGIN SOLUTION: keep (i - j) % dilation == 0, then apply the window rule to (i - j) // dilation
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    on_grid = d % dilation == 0
    steps = d // dilation
    if causal:
        return on_grid & (steps >= 0) & (steps < window)
    return on_grid & (np.abs(steps) <= window // 2)
    ### END SOLUTION


# %%
check("ex01.dilated_window_mask", dilated_window_mask)


# %% [markdown]
# ## Exercise 3: global tokens
#
# Global tokens (Longformer's task tokens, BigBird's ITC) see every key and are seen by every query: `(i, j)` is
# allowed when `i` or `j` is in `indices`. The list may be unsorted, hold repeats, or be empty.
# Write `global_tokens_mask(n, indices)`.
#
# <details><summary>Hint</summary>
#
# A length-`n` boolean vector `g` marks the global positions (`g[indices] = True`); `g[:, None] | g[None, :]`
# broadcasts it to `(n, n)`.
# </details>

# %%
def global_tokens_mask(n, indices):
    """(n, n) bool mask of GlobalTokens(indices): row or column in `indices`."""
    ### BEGIN SOLUTION: mark the global positions in a vector, then broadcast rows | columns
    g = np.zeros(n, dtype=bool)  # (n,)
    g[np.asarray(indices, dtype=np.int64)] = True
    return g[:, None] | g[None, :]  # (n, n)
    ### END SOLUTION


# %%
check("ex01.global_tokens_mask", global_tokens_mask)


# %% [markdown]
# ## Exercise 4: from a mask to CSR neighbour lists
#
# Sparse kernels never read an `n × n` mask: they read, per query, the list of its keys. CSR stores all lists
# back to back in `indices`, and `indptr` (length `n + 1`) says where each row starts: row `i` is
# `indices[indptr[i]:indptr[i + 1]]`, keys ascending. Write `mask_to_csr(mask)` returning `(indptr, indices)`, and
# leave `mask` as it is.
#
# <details><summary>Hint</summary>
#
# `np.nonzero(mask)` lists the `(row, col)` pairs row by row, columns ascending: its columns are `indices`.
# `indptr` is 0 followed by the cumulative sum of the row counts, `mask.sum(axis=1)`.
# </details>

# %%
def mask_to_csr(mask):
    """(indptr (n+1,), indices (nnz,)) of a boolean (n, n) mask."""
    ### BEGIN SOLUTION: row counts -> cumulative sum for indptr; np.nonzero's columns for indices
    _, cols = np.nonzero(mask)  # (nnz,) keys, row by row, ascending
    indptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)  # (n + 1,)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    return indptr, cols
    ### END SOLUTION


# %%
check("ex01.mask_to_csr", mask_to_csr)


# %% [markdown]
# ## Exercise 5: counting pairs in closed form
#
# How much work does a sliding window save? Count the allowed pairs, without building anything: the check asks
# for sequences of a billion tokens and more, where a mask or a loop over `n` cannot finish. Write
# `sliding_window_num_pairs(n, window, causal)` returning an exact `int`.
#
# <details><summary>Hint</summary>
#
# Count by offset: offset `d = i - j` with `0 < d < n` occurs in `n - d` rows (so does `-d`), and `d = 0` in `n`.
# A window keeps offsets up to a reach `r` (`window - 1` causal, `window // 2` on each side otherwise), clipped to
# `n - 1`; and `sum_{d=1..r} (n - d) = r·n - r·(r + 1) / 2`. Use integer `//`, not `/`.
# </details>

# %%
def sliding_window_num_pairs(n, window, causal=False):
    """Exact number of allowed (i, j) pairs of SlidingWindow(window, causal) on n tokens."""
    ### BEGIN SOLUTION: sum n - d over the offsets d the window keeps, in closed form
    def one_side(reach):  # offsets d = 1..r, each in n - d rows
        r = min(reach, max(n - 1, 0))
        return r * n - r * (r + 1) // 2

    if causal:
        return n + one_side(window - 1)
    return n + 2 * one_side(window // 2)
    ### END SOLUTION


# %%
check("ex01.sliding_window_num_pairs", sliding_window_num_pairs)

# %% [markdown]
# ## Exercise 6: one number, by hand
#
# How many `(query, key)` pairs does `DilatedWindow(window=3, dilation=2, causal=True)` allow on `n = 10` tokens?
# Work it out on paper (or from exercise 2's picture), set `q6_answer`, and run the cell.
#
# <details><summary>Hint</summary>
#
# Each query sees offsets 0, 2 and 4, when the key exists: offset `d` is there for `n - d` queries.
# </details>

# %%
### BEGIN SOLUTION: set q6_answer to the number of pairs
q6_answer = 10 + 8 + 6  # offsets 0, 2, 4: n - d queries each
### END SOLUTION
check("ex01.q6", q6_answer)

# %% [markdown]
# ## Exercise 7: in words (self-checked)
#
# A dilated window of width `w` and dilation `k` costs the same as a sliding window of width `w`. What does it
# gain, and what does it give up? Why do models that dilate (Longformer) dilate only some heads?
#
# Write your answer as a string in `q7_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q7_text
q7_text = """
It reaches `k` times as far for the same number of keys per query, so stacked layers grow the receptive field
`k` times faster. It gives up the tokens in between: the immediate neighbours `1 .. k-1` away are invisible to
that head. Keeping some heads undilated (or dilating only higher layers) keeps local detail while the dilated
heads carry long-range information."""
### END SOLUTION
check("ex01.text_q7", q7_text)

# %% [markdown]
# ## ★ Exercise 8 (challenge): the union of two neighbour lists, in O(nnz)
#
# A model that mixes patterns needs the CSR of their union, and at a million tokens nobody builds the mask. Write
# `union_neighbors(indptr_a, indices_a, indptr_b, indices_b)`: the CSR `(indptr, indices)` of every pair that is in
# either list, rows ascending, no repeats. Both inputs have sorted rows. The check runs it on 200,000 tokens too,
# where an `n × n` array does not fit. Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# Give every pair one integer that sorts row-major; sorting the two lists together puts each row's keys in order
# and repeats side by side. The row boundaries can then be found by searching, not by looping.
# </details>

# %%
def union_neighbors(indptr_a, indices_a, indptr_b, indices_b):
    """CSR (indptr, indices) of the union of two CSR neighbour lists on the same n tokens."""
    ### BEGIN SOLUTION: one sorted key per pair, repeats dropped, row starts by binary search
    n = len(indptr_a) - 1
    rows = np.concatenate([np.repeat(np.arange(n), np.diff(indptr_a)), np.repeat(np.arange(n), np.diff(indptr_b))])
    key = np.sort(rows * n + np.concatenate([indices_a, indices_b]))  # (nnz_a + nnz_b,) row-major
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key  # repeats are neighbours once sorted
    indptr = np.searchsorted(key, np.arange(n + 1) * n)  # (n + 1,) first key of each row
    return indptr.astype(np.int64), (key % n).astype(np.int64)
    ### END SOLUTION


# %%
check("ex01.star_union_neighbors", union_neighbors)


# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/01_patterns.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
