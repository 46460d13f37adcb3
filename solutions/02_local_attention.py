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
# # Exercises 02: local attention, from the mask to O(n·w) time
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/02_local_attention.ipynb)
#
# You will build lesson 02's sliding and dilated windows, turn them into neighbour lists without ever forming an `n × n` array, compute attention by gathering only the allowed keys, and measure that its time grows linearly in `n`.
#
# **Learning goals**
# - build CSR neighbour lists of a window directly, in O(n·w);
# - write sparse attention by gather (padding, masked softmax, empty rows give 0);
# - time it against dense attention and fit the exponent (graded: below 1.3).
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
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings in exercise 3 (as in lessons 00 and 02)

import math

import numpy as np

from saattn_edu import complexity as C, reference as R
from saattn_edu.grading import check


# %% [markdown]
# ## Exercise 1: neighbour lists without a mask
#
# A mask costs `n²` booleans: 10 GB at `n = 100,000`. A sparse kernel reads CSR neighbour lists instead (lesson
# 01): row `i`'s keys are `indices[indptr[i]:indptr[i + 1]]`, ascending. A window knows its keys without looking
# at any other pair: row `i` holds `j = i + s·dilation` for the allowed steps `s`
# (`-(window - 1) <= s <= 0` causal, `|s| <= window // 2` otherwise), kept where `0 <= j < n`.
# Write `window_neighbors(n, window, dilation, causal)` returning `(indptr, indices)` in O(n·w) time and memory.
#
# <details><summary>Hint</summary>
#
# Build every row's candidate keys at once as an `(n, m)` array (m = the number of allowed steps), mark which
# of them fall inside the sequence, and note that selecting the valid ones of a 2-D array reads it row by row:
# that is already `indices`. `indptr` counts the valid keys of each row, accumulated.
# </details>

# %%
def window_neighbors(n, window, dilation=1, causal=False):
    """CSR (indptr (n+1,), indices (nnz,)) of DilatedWindow(window, dilation, causal), never n × n."""
    ### BEGIN SOLUTION: candidate keys i + s·dilation for the allowed steps, keep those inside [0, n)
    left, right = (window - 1, 0) if causal else (window // 2, window // 2)
    steps = np.arange(-left, right + 1)  # (m,) ascending, so keys come out ascending
    cand = np.arange(n)[:, None] + dilation * steps[None, :]  # (n, m)
    valid = (cand >= 0) & (cand < n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=indptr[1:])
    return indptr, cand[valid]
    ### END SOLUTION


# %%
check("ex02.window_neighbors", window_neighbors)


# %% [markdown]
# ## Exercise 2: sparse attention by gather
#
# Now the attention itself, touching only the allowed pairs. For query `i` with keys `J = indices[indptr[i]:indptr[i+1]]`:
#
# $$o_i = \sum_{j \in J} \frac{e^{s_{ij}}}{\sum_{j' \in J} e^{s_{ij'}}}\, v_j, \qquad s_{ij} = \frac{q_i \cdot k_j}{\sqrt d}.$$
#
# Rows have different lengths, so pad them: `m` = the longest row, an `(n, m)` array of key indices with a
# `valid` flag, gather `k[idx]` and `v[idx]` as `(n, m, d)` arrays, give padded slots a score of `-inf`, subtract
# each row's max before `np.exp`, and return zeros for a row with no keys (never NaN). Write
# `sparse_attention(q, k, v, indptr, indices)` for `q, k, v` of shape `(n, d)`; it must never build an `(n, n)`
# array: exercise 3 times it.
#
# <details><summary>Hint</summary>
#
# `lengths = np.diff(indptr)`; `slot = np.arange(m)[None, :]`; `valid = slot < lengths[:, None]`;
# `pos = np.where(valid, indptr[:-1, None] + slot, 0)`; `idx = indices[pos]` (careful when there are no pairs at all);
# scores `np.einsum("nd,nmd->nm", q, k[idx])`. A row of only `-inf` has max `-inf`: replace it by 0 before
# subtracting, and divide by the row sum only where it is positive.
# </details>

# %%
def sparse_attention(q, k, v, indptr, indices):
    """softmax(q kᵀ / √d) v restricted to the CSR pairs; q, k, v (n, d); rows without keys give 0."""
    ### BEGIN SOLUTION: pad rows to the longest, gather keys and values, masked softmax, weighted sum
    n, d = q.shape
    lengths = np.diff(indptr)  # (n,)
    m = int(lengths.max(initial=0))
    out = np.zeros((n, v.shape[1]), dtype=np.result_type(q, k, v))
    if m == 0:
        return out  # no pairs at all: every row is empty
    slot = np.arange(m)[None, :]  # (1, m)
    valid = slot < lengths[:, None]  # (n, m)
    idx = indices[np.where(valid, indptr[:-1, None] + slot, 0)]  # (n, m) key of each slot (padding: any key)
    scores = np.einsum("nd,nmd->nm", q, k[idx]) / math.sqrt(d)  # (n, m)
    scores = np.where(valid, scores, -np.inf)
    top = scores.max(axis=1, keepdims=True)  # (n, 1); -inf for an empty row
    p = np.exp(scores - np.where(np.isfinite(top), top, 0))  # padding: exp(-inf) = 0
    total = p.sum(axis=1, keepdims=True)  # (n, 1)
    out[:] = np.einsum("nm,nmd->nd", p, v[idx]) / np.where(total > 0, total, 1)
    return out
    ### END SOLUTION


# %%
check("ex02.sparse_attention", sparse_attention)

# %% [markdown]
# ## Exercise 3: O(n·w), measured
#
# Your `sparse_attention` does `n · w` dot products for a window of `w`; dense attention does `n²`. Time both on this
# machine with `C.time_fn` (fastest of a few repeats) and fit `t ≈ c·n^p` with `C.fit_power_law`. The sizes below
# are a suggestion: the dense ones stop early because they grow fast.

# %% tags=["nbval-ignore-output"]
rng = np.random.default_rng(0)
d, w = 16, 9


def inputs(n):
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(3)]


ns_sparse, ns_dense = [512, 1024, 2048, 4096, 8192], [256, 512, 1024, 2048]
### BEGIN SOLUTION: time sparse_attention on a window's neighbour lists and R.dense_attention, then fit
t_sparse = [C.time_fn(sparse_attention, *inputs(n), *window_neighbors(n, w), repeats=3).min for n in ns_sparse]
t_dense = [C.time_fn(R.dense_attention, *inputs(n), repeats=3).min for n in ns_dense]
### END SOLUTION
p_sparse, _ = C.fit_power_law(ns_sparse, t_sparse)
p_dense, _ = C.fit_power_law(ns_dense, t_dense)
print(f"your sparse_attention, window {w}: time ∝ n^{p_sparse:.2f}   ({t_sparse[-1] * 1e3:.1f} ms at n = {ns_sparse[-1]})")
print(f"dense attention:                  time ∝ n^{p_dense:.2f}   ({t_dense[-1] * 1e3:.1f} ms at n = {ns_dense[-1]})")

# %% [markdown]
# The check times **your** `sparse_attention` itself (a window of 9 keys, `d = 16`, `n` from 512 to 8,192, fastest
# of five calls per size) after checking it on one small input. It passes when the fitted exponent is below **1.3**:
# a correct gather fits about 1.0, anything that builds an `n × n` array about 2. On a busy machine a size can be
# slow by accident; the check then measures once more and keeps the faster times before it decides.
#
# > Why these sizes? Up to `n ≈ 8k` the gathered `(n, w, d)` arrays fit in the CPU caches. Beyond, each step
# > waits on main memory, and the measured exponent of the very same O(n·w) code drifts up by a few tenths:
# > counted work is linear, wall-clock time is linear only as long as the memory traffic per pair stays the same
# > (lesson 06 comes back to this).

# %% tags=["nbval-ignore-output"]
check("ex02.linear_time", sparse_attention)

# %% [markdown]
# ## ★ Exercise 4 (challenge): attention sinks' neighbour lists, in O(nnz)
#
# StreamingLLM's pattern `AttentionSinks(num_sinks, window)` lets query `i` see keys `j <= i` with `j < num_sinks`
# or `i - j < window`. Write `sink_neighbors(n, num_sinks, window)` returning its CSR `(indptr, indices)`, rows
# ascending, each key once, without any `n × n` array and without a Python loop over rows (the check runs it on
# 200,000 tokens). Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# Count each row's keys before placing any. A key's value follows from its row and its position inside the row.
# </details>

# %%
def sink_neighbors(n, num_sinks, window):
    """CSR (indptr, indices) of AttentionSinks(num_sinks, window) on n tokens."""
    ### BEGIN SOLUTION: per-row counts (sinks left of the window, then the window), keys from their place in the row
    i = np.arange(n)
    lo = np.maximum(0, i - window + 1)  # (n,) first key of the window
    n_sink = np.minimum(num_sinks, lo)  # (n,) sinks not already inside the window
    count = n_sink + i - lo + 1  # (n,)
    indptr = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    row = np.repeat(i, count)  # (nnz,)
    k = np.arange(indptr[-1]) - indptr[row]  # (nnz,) place inside the row
    return indptr, np.where(k < n_sink[row], k, lo[row] + k - n_sink[row]).astype(np.int64)
    ### END SOLUTION


# %%
check("ex02.star_sink_neighbors", sink_neighbors)


# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/02_local_attention.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
