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
# # Exercises 10: learned sparsity
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/10_learned_sparsity.ipynb)
#
# You will rebuild, with NumPy alone, the core of two data-dependent selections from lesson 10 and the metric
# that judges them.
#
# **Learning goals**
# - hash vectors into buckets with random rotations (Reformer's angular LSH);
# - turn buckets into a selection by sorting and chunking, so every query has a bounded number of keys;
# - select the top-k key blocks per query block from mean-pooled scores (MoBA / NSA), causally;
# - measure a selection by the share of the dense attention mass it captures, in a numerically stable way.
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure),
# compares with the library's reference and gives points per case. Calling the library's own selections
# (`LSHBuckets`, `TopKBlocks`, `quality.captured_mass`, ...) inside your function does not count: the check
# notices and refuses.

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
# ## Exercise 1: LSH buckets
#
# Angular LSH draws a random matrix `R` of shape `(d, b/2)` and gives vector `x` the bucket
# `argmax([x R ; −x R])`: the index, among the `b` directions `±r_c`, of the one closest in angle to `x`.
# Write `lsh_buckets(x, rotations)` for `x` of shape `(n, d)`: an integer array `(n,)` of buckets in `[0, b)`,
# where index `c < b/2` means `+r_c` and `b/2 + c` means `−r_c`.
#
# <details><summary>Hint</summary>
#
# `x @ rotations` is `(n, b/2)`; put it beside its negation with `np.concatenate(..., axis=1)` and take
# `argmax(axis=1)`.
# </details>

# %%
def lsh_buckets(x, rotations):
    """(n,) int bucket of each row of x (n, d) under rotations (d, b/2): argmax over [xR ; -xR]."""
    ### BEGIN SOLUTION: project, put the projections beside their negations, take the argmax
    proj = x @ rotations  # (n, b/2)
    return np.argmax(np.concatenate([proj, -proj], axis=1), axis=1)  # (n,)
    ### END SOLUTION


# %%
check("ex10.lsh_buckets", lsh_buckets)

# %% [markdown]
# Close vectors usually share a bucket; how often depends on their angle, not their length:

# %%
rng = np.random.default_rng(0)
rot = rng.standard_normal((16, 4))  # d=16, 8 buckets
x = rng.standard_normal((1, 16))
try:
    for noise in (0.1, 0.5, 1.0, 2.0):
        y = x + noise * rng.standard_normal((2000, 16))  # 2000 neighbours of x at growing angles
        same = (lsh_buckets(y, rot) == lsh_buckets(x, rot)[0]).mean()
        print(f"noise {noise:3.1f}: {same:.0%} of the neighbours share x's bucket")
except NotImplementedError:
    print("(write lsh_buckets in exercise 1 to see this)")


# %% [markdown]
# ## Exercise 2: sort, chunk, attend
#
# Buckets have uneven sizes, so Reformer sorts the tokens by `(bucket, position)`, cuts the sorted order into
# chunks of `chunk` tokens, and lets each query see the keys of its own chunk and of the previous chunk, *when they
# share its bucket*. Write `lsh_chunk_mask(buckets, chunk)` for shared queries and keys (token `i` is query `i` and
# key `i`): the `(n, n)` boolean mask in **token order**, `True` where query `i` may attend to key `j`.
#
# <details><summary>Hint</summary>
#
# `order = np.lexsort((np.arange(n), buckets))` sorts by bucket, then position; `rank[order] = np.arange(n)`
# gives each token's sorted place and `rank // chunk` its chunk `c`. Then `(i, j)` is allowed when
# `c[i] - 1 <= c[j] <= c[i]` and `buckets[i] == buckets[j]`: broadcasting again.
# </details>

# %%
def lsh_chunk_mask(buckets, chunk):
    """(n, n) bool: query i sees key j when j's sorted chunk is i's or the one before, and their buckets match."""
    ### BEGIN SOLUTION: rank tokens by (bucket, position), chunk the ranks, compare chunks and buckets
    n = len(buckets)
    order = np.lexsort((np.arange(n), buckets))  # (n,) tokens sorted by bucket, then position
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    c = rank // chunk  # (n,) chunk of every token
    near = (c[None, :] <= c[:, None]) & (c[None, :] >= c[:, None] - 1)  # (n, n) own or previous chunk
    return near & (buckets[:, None] == buckets[None, :])
    ### END SOLUTION


# %%
check("ex10.lsh_chunk_mask", lsh_chunk_mask)


# %% [markdown]
# ## Exercise 3: top-k key blocks
#
# MoBA and NSA cut keys into blocks of `block` tokens and summarise each by its mean key. Query block `I` scores
# key block `J` by `mean(q in I) · mean(k in J)` and keeps the `top` best blocks, its own block always among them;
# with `causal`, only blocks `J <= I` may be chosen. Write `topk_block_layout(q, k, block, top, causal)`: the
# `(nb, nb)` boolean layout, `nb = ceil(n / block)` (the last block may be shorter: average its real tokens only).
#
# <details><summary>Hint</summary>
#
# Mean-pool with a loop over blocks (`q[b*block:(b+1)*block].mean(0)`) or by padding and reshaping. Make the
# scores `-inf` where a block is forbidden and `+inf` on the diagonal (always kept); `np.argsort(-scores, axis=1)`
# then ranks the blocks, and a row keeps its first `top` entries *whose score is not `-inf`*.
# </details>

# %%
def topk_block_layout(q, k, block, top, causal=False):
    """(nb, nb) bool: each query block keeps its `top` best key blocks by mean-pooled score, itself included."""
    ### BEGIN SOLUTION: mean-pool, score, force the diagonal, forbid the future, keep each row's best
    n = len(q)
    nb = -(-n // block)
    qm = np.stack([q[b * block:(b + 1) * block].mean(0) for b in range(nb)])  # (nb, d)
    km = np.stack([k[b * block:(b + 1) * block].mean(0) for b in range(nb)])  # (nb, d)
    s = qm @ km.T  # (nb, nb)
    idx = np.arange(nb)
    if causal:
        s[idx[None, :] > idx[:, None]] = -np.inf
    s[idx, idx] = np.inf
    order = np.argsort(-s, axis=1)[:, :top]  # (nb, min(top, nb)) best blocks first
    layout = np.zeros((nb, nb), dtype=bool)
    np.put_along_axis(layout, order, np.take_along_axis(s, order, axis=1) > -np.inf, axis=1)
    return layout
    ### END SOLUTION


# %%
check("ex10.topk_block_layout", topk_block_layout)


# %% [markdown]
# ## Exercise 4: captured attention mass
#
# A selection is judged by how much of the dense softmax it keeps. With `p = softmax(q kᵀ / sqrt(d))` (each row
# sums to 1), query `i` captures `sum of p[i, j] over its selected keys j`. Write `captured_mass(q, k, indptr,
# indices)`: the `(n,)` float array of every row's captured mass, the selection given as CSR (`indptr`, `indices`
# as in exercise sheet 01). Rows can have logits of several thousand: stay finite.
#
# <details><summary>Hint</summary>
#
# `s = q @ k.T / np.sqrt(d)`; subtract `s.max(axis=1, keepdims=True)` before `np.exp`, then divide by the row sums.
# `np.repeat(np.arange(n), np.diff(indptr))` gives the row of every stored key, so `p[rows, indices]` are the
# selected probabilities; `np.bincount(rows, weights=..., minlength=n)` sums them per row.
# </details>

# %%
def captured_mass(q, k, indptr, indices):
    """(n,) share of each query's dense softmax mass that falls on its selected keys."""
    ### BEGIN SOLUTION: stable softmax, then sum the selected probabilities row by row
    n, d = q.shape
    s = q @ k.T / np.sqrt(d)  # (n, n)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (n, n), rows sum to 1
    rows = np.repeat(np.arange(n), np.diff(indptr))  # (nnz,) row of every stored key
    return np.bincount(rows, weights=p[rows, indices], minlength=n)
    ### END SOLUTION


# %%
check("ex10.captured_mass", captured_mass)

# %% [markdown]
# Your three functions make a whole LSH selection and its score. Random keys capture, on average, about
# their share of the pairs; LSH does better on tokens that cluster by topic, from one hash round:

# %%
from saattn_edu import quality as Q
from saattn_edu.patterns import CSR

q, k, v = Q.clustered_qkv(256, 32, n_topics=8, seed=0)
rot = np.random.default_rng(1).standard_normal((32, 4))  # 8 buckets
try:
    mask = lsh_chunk_mask(lsh_buckets(q, rot), chunk=32)  # shared QK: hash the queries
    sel = CSR.from_mask(mask)
    mass = captured_mass(q, k, sel.indptr, sel.indices)
    print(f"LSH keeps {mask.mean():.1%} of the pairs and captures {mass.mean():.0%} of the attention mass")
    rand = CSR.from_mask(np.random.default_rng(2).random(mask.shape) < mask.mean())
    print(f"random pairs at the same density capture {captured_mass(q, k, rand.indptr, rand.indices).mean():.0%}")
except NotImplementedError:
    print("(write exercises 1, 2 and 4 to see this)")

# %% [markdown]
# ## Exercise 5: one number, by hand
#
# Reformer with shared QK, `n = 256` tokens, `chunk = 32`, one hash round, and the same-bucket condition dropped
# (whole chunks, as Reformer's kernels compute them): how many `(query, key)` pairs are computed? Set `q5_answer`.
#
# <details><summary>Hint</summary>
#
# 8 chunks of 32 sorted tokens: the first sees only itself, every other chunk sees itself and its predecessor.
# </details>

# %%
### BEGIN SOLUTION: set q5_answer to the number of pairs
q5_answer = 32 * 32 + 7 * 32 * 64  # chunk 0 sees itself; chunks 1..7 see two chunks
### END SOLUTION
check("ex10.q5", q5_answer)

# %% [markdown]
# ## Exercise 6: in words (self-checked)
#
# LSH and the indexer choose keys token by token; MoBA and NSA choose whole blocks of 64 or more. Why do
# production systems on GPUs prefer blocks, and what does a block selection give up?
#
# Write your answer as a string in `q6_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q6_text
q6_text = """
A GPU computes attention in tiles (e.g. 64 queries × 64 keys per matrix multiply on tensor cores). A block
selection maps one-to-one onto those tiles: a kernel skips whole tiles and runs dense, contiguous loads and
matmuls on the kept ones, so the counted savings become wall-clock savings, and the selection itself is cheap
(`(n/B)²` block scores instead of `n²`). Token-level choices need gathers of scattered keys, which waste
memory bandwidth and tensor-core efficiency. What blocks give up is precision: a block is kept or dropped as a
whole, so a query pays for the 63 unimportant keys next to an important one, and loses an important key whose
block's *mean* scores poorly (averaging hides a single strong key among weak ones)."""
### END SOLUTION
check("ex10.text_q6", q6_text)

# %% [markdown]
# ## ★ Exercise 7 (challenge): same-bucket neighbour lists, in O(nnz)
#
# Once every token has a bucket (exercise 1), the plainest LSH pattern lets query `i` attend to key `j` exactly
# when `buckets[i] == buckets[j]`. Write `bucket_neighbors(buckets)`: its CSR `(indptr, indices)` in token order,
# keys ascending in every row. Bucket ids are non-negative integers, not necessarily consecutive. The check runs it
# on 200,000 tokens too, where an `n × n` comparison does not fit. Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# A stable sort by bucket lists every bucket's members next to each other, in token order. A row's keys are then
# one contiguous run of that sorted list, and its length is the size of the row's bucket; the rest is arithmetic on
# run starts and lengths, with no loop over tokens.
# </details>

# %%
def bucket_neighbors(buckets):
    """CSR (indptr, indices): query i sees the keys j with buckets[j] == buckets[i], j ascending."""
    ### BEGIN SOLUTION: sort by bucket (stable), runs of equal buckets, each row copies its run
    buckets = np.asarray(buckets)
    n = len(buckets)
    order = np.argsort(buckets, kind="stable")  # (n,) members of each bucket together, in token order
    starts = np.flatnonzero(np.r_[True, buckets[order][1:] != buckets[order][:-1]]) if n else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, n])  # (runs,)
    run = np.empty(n, dtype=np.int64)
    run[order] = np.repeat(np.arange(len(starts)), sizes)  # (n,) the run of every token
    count = sizes[run]  # (n,) row lengths
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=indptr[1:])
    row = np.repeat(np.arange(n), count)  # (nnz,)
    return indptr, order[starts[run[row]] + np.arange(indptr[-1]) - indptr[row]].astype(np.int64)
    ### END SOLUTION


# %%
check("ex10.star_bucket_neighbors", bucket_neighbors)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/10_learned_sparsity.ipynb` (a fresh kernel runs every cell; your notebook is not
# modified).
