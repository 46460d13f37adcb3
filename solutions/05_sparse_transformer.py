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
# # Exercises 05: the Sparse Transformer's strided and fixed patterns
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/05_sparse_transformer.ipynb)
#
# You will write the two factorised patterns of Child et al. (2019) exactly as in the paper, check numerically that their two heads connect every pair in two steps, and find the stride that minimises the work: l ≈ √n.
#
# **Learning goals**
# - build the strided and fixed masks, and the strided pattern's two heads;
# - compose two heads with a boolean product and verify the two-step connectivity claim;
# - count strided pairs in closed form and sweep the stride to find the O(n·√n) optimum.
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

from saattn_edu.grading import check


# %% [markdown]
# Child et al. (2019), *Generating Long Sequences with Sparse Transformers*, factorise causal attention into two
# heads with stride `l`. With `d = i - j`:
#
# | pattern | head A⁽¹⁾ | head A⁽²⁾ |
# |---|---|---|
# | **strided** | `0 <= d <= l` (the previous `l` keys and itself) | `d >= 0` and `d % l == 0` |
# | **fixed** | `j // l == i // l` (same block) | `j % l >= l - c` (the last `c` keys of every block: "summaries") |
#
# Both causal (`j <= i`). The library's `P.Strided(l)` and `P.Fixed(l, c)` are the unions A⁽¹⁾ ∪ A⁽²⁾;
# non-causal versions drop `j <= i` (strided: `|d| <= l` or `d % l == 0`).
#
# ## Exercise 1: the strided mask
#
# Write `strided_mask(n, stride, causal)`.

# %%
def strided_mask(n, stride, causal=True):
    """(n, n) bool mask of Strided(stride, causal)."""
    ### BEGIN SOLUTION: the local band OR the stride grid, on the offsets d = i - j
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    if causal:
        return ((d >= 0) & (d <= stride)) | ((d >= 0) & (d % stride == 0))
    return (np.abs(d) <= stride) | (d % stride == 0)
    ### END SOLUTION


# %%
check("ex05.strided_mask", strided_mask)


# %% [markdown]
# ## Exercise 2: the fixed mask
#
# Write `fixed_mask(n, stride, c, causal)`: same block, or a summary key (`j % stride >= stride - c`); and
# `j <= i` when causal.

# %%
def fixed_mask(n, stride, c, causal=True):
    """(n, n) bool mask of Fixed(stride, c, causal)."""
    ### BEGIN SOLUTION: same block OR summary column, then j <= i when causal
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    out = (i // stride == j // stride) | (j % stride >= stride - c)
    return out & (j <= i) if causal else out
    ### END SOLUTION


# %%
check("ex05.fixed_mask", fixed_mask)


# %% [markdown]
# ## Exercise 3: the strided pattern's two heads
#
# The paper gives each factor its own head (or its own layer). Write `strided_heads(n, stride)` returning the pair
# `(a1, a2)` of causal masks of the table above.

# %%
def strided_heads(n, stride):
    """(A1, A2): the strided pattern's local head and its stride head, both causal (n, n) bool."""
    ### BEGIN SOLUTION: split the causal strided rule into its two terms
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    return (d >= 0) & (d <= stride), (d >= 0) & (d % stride == 0)
    ### END SOLUTION


# %%
check("ex05.strided_heads", strided_heads)


# %% [markdown]
# ## Exercise 4: two heads in sequence
#
# When a layer using head `outer` reads the output of a layer using head `inner`, query `i` depends on key `j` when
# `outer[i, k]` and `inner[k, j]` for some `k`. Write `compose(outer, inner)`: that boolean matrix product.

# %%
def compose(outer, inner):
    """(n, n) bool: some k with outer[i, k] and inner[k, j]."""
    ### BEGIN SOLUTION: an integer matrix product, > 0
    return (outer.astype(np.int64) @ inner.astype(np.int64)) > 0
    ### END SOLUTION


# %%
check("ex05.compose", compose)

# %% [markdown]
# **The two-step claim, checked numerically.** The paper's argument for the strided pattern: for `j <= i`, take
# `k = i - ((i - j) % l)`. Then `0 <= i - k < l` (head A⁽¹⁾ links `i` to `k`) and `k - j` is a multiple of `l`
# (head A⁽²⁾ links `k` to `j`). So `compose(A1, A2)` should contain **every** causal pair. For the fixed pattern the
# order flips: a query reaches a summary key of an earlier block with A⁽²⁾, and that summary key (the last position
# of its block when `c >= 1`) reaches its whole block with A⁽¹⁾; the query's own block is A⁽¹⁾ directly, which the
# residual stream (`| I`) keeps. Your functions, over many sizes and strides:

# %%
failures = 0
for n in range(1, 70, 7):
    causal = np.tril(np.ones((n, n), dtype=bool))
    eye = np.eye(n, dtype=bool)
    block = np.arange(n) // np.arange(1, 12)[:, None]  # (strides, n) block of every token
    for stride in range(1, 12):
        a1, a2 = strided_heads(n, stride)
        failures += not np.array_equal(compose(a1, a2), causal)
        block_head = (block[stride - 1][:, None] == block[stride - 1][None, :]) & causal  # fixed A(1)
        for c in range(1, stride + 1):
            summary_head = (np.arange(n)[None, :] % stride >= stride - c) & causal  # fixed A(2)
            failures += not np.array_equal(compose(summary_head | eye, block_head | eye), causal)
print("pairs (n, stride[, c]) where two steps miss a causal pair:", failures)


# %% [markdown]
# ## Exercise 5: counting strided pairs
#
# How much work is `Strided(l)`? Count its causal pairs exactly, for sequences up to a trillion tokens: offset `d`
# occurs in `n - d` rows; the band keeps offsets `0 .. min(l, n - 1)`, the grid adds `k·l` for `k >= 2` while
# `k·l <= n - 1`. Write `strided_num_pairs(n, stride)` returning an `int`.
#
# <details><summary>Hint</summary>
#
# `sum_{d=0..r} (n - d) = (r + 1)·n - r(r + 1)/2`; with `K = (n - 1) // l`, `sum_{k=2..K} (n - k·l) = (K - 1)·n - l·(K(K + 1)/2 - 1)`
# when `K >= 2`. Integer `//` throughout.
# </details>

# %%
def strided_num_pairs(n, stride):
    """Exact number of pairs of the causal Strided(stride) on n tokens."""
    ### BEGIN SOLUTION: band offsets 0..r, then grid offsets k·stride for k = 2..K, each in n - d rows
    r = min(stride, n - 1)
    band = (r + 1) * n - r * (r + 1) // 2
    k_max = (n - 1) // stride
    grid = (k_max - 1) * n - stride * (k_max * (k_max + 1) // 2 - 1) if k_max >= 2 else 0
    return band + grid
    ### END SOLUTION


# %%
check("ex05.strided_num_pairs", strided_num_pairs)


# %% [markdown]
# ## Exercise 6: the √n sweep
#
# Per query, the band holds about `l` keys and the grid about `i / l`, `n / (2l)` on average (causal): the total
# `n·(l + n/(2l))` is smallest at `l = √(n/2)`, where it is `√2 · n·√n`. The paper picks `l ≈ √n`: the same
# O(n·√n) order, within 6% of the minimum. Write `best_stride(n)`: the stride in `1..n` with the fewest pairs (the
# smallest one on a tie), using your `strided_num_pairs`. Then compare it with `√n`.

# %%
def best_stride(n):
    """The stride in 1..n minimising strided_num_pairs(n, stride) (the smallest on ties)."""
    ### BEGIN SOLUTION: evaluate every stride, take the first minimum
    pairs = [strided_num_pairs(n, s) for s in range(1, n + 1)]
    return int(np.argmin(pairs)) + 1
    ### END SOLUTION


# %%
check("ex05.best_stride", best_stride)

# %%
for n in [256, 1024, 4096, 16384, 65536]:
    best = best_stride(n)
    pairs = strided_num_pairs(n, best)
    at_sqrt = strided_num_pairs(n, round(n ** 0.5))
    print(f"n = {n:6,}: best stride {best:4d} = {best / n ** 0.5:.2f}·√n, {pairs / (n * n ** 0.5):.2f}·n√n pairs; "
          f"stride √n: {at_sqrt / (n * n ** 0.5):.2f}·n√n pairs")

# %% [markdown]
# ## ★ Exercise 7 (challenge): the Fixed pattern's CSR in closed form
#
# Write `fixed_csr(n, stride, c)`: the CSR `(indptr, indices)` of the causal `Fixed(stride, c)` (exercise 2's mask),
# rows ascending, with no `n × n` array and no Python loop over rows: every count and every key is a closed-form
# function of its row. The check runs it on thousands of tokens. Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# Which keys of an earlier block can a row see, and which of its own block? Count both, then read each key off
# its place in the row.
# </details>

# %%
def fixed_csr(n, stride, c):
    """CSR (indptr, indices) of the causal Fixed(stride, c) on n tokens."""
    ### BEGIN SOLUTION: summary keys of the earlier blocks, then the own block up to i
    i = np.arange(n)
    start = i // stride * stride  # (n,) first token of row i's block
    n_sum = i // stride * c  # (n,) summary keys of the earlier blocks
    count = n_sum + i - start + 1
    indptr = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    row = np.repeat(i, count)  # (nnz,)
    k = np.arange(indptr[-1]) - indptr[row]  # (nnz,) place inside the row
    summary = k // c * stride + stride - c + k % c  # the (k % c)-th summary key of block k // c
    return indptr, np.where(k < n_sum[row], summary, start[row] + k - n_sum[row]).astype(np.int64)
    ### END SOLUTION


# %%
check("ex05.star_fixed_csr", fixed_csr)


# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/05_sparse_transformer.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
