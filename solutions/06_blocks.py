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
# # Exercises 06: blocks, wasted work and block size
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/06_blocks.ipynb)
#
# You will compute, with NumPy alone, what a block-sparse kernel sees of a pattern (lesson 06): its block layout, the work it wastes, the block size your machine prefers, and the key order that makes strided columns dense.
#
# **Learning goals**
# - turn a token mask into a block layout, for any n and block
# - measure the fraction of computed pairs a pattern wastes
# - pick a block size from your own timings, robustly to a disturbed run
# - permute tokens by residue so that strided keys become contiguous
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
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings in exercise 3 (as in lesson 06)

import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R
from saattn_edu.grading import check


# %% [markdown]
# ## Exercise 1: the block layout of a token mask
#
# A block-sparse kernel cuts the `(n, n)` mask into `block × block` tiles and computes a tile when it holds **any**
# allowed pair. Write `block_layout(mask, block)` returning the `(nb, nb)` boolean layout, `nb = ceil(n / block)`:
# the last block row and column are short when `block` does not divide `n`.
#
# <details><summary>Hint</summary>
#
# Pad the mask with `False` to `nb · block` on each side, reshape it to `(nb, block, nb, block)` and ask
# `.any(axis=(1, 3))`.
# </details>

# %%
def block_layout(mask, block):
    """(nb, nb) bool: does tile (I, J) of the (n, n) mask hold any allowed pair?"""
    ### BEGIN SOLUTION: pad to whole blocks, reshape to (nb, block, nb, block), any over the in-tile axes
    n = mask.shape[0]
    nb = -(-n // block)  # ceil(n / block)
    padded = np.zeros((nb * block, nb * block), dtype=bool)  # (nb·block, nb·block)
    padded[:n, :n] = mask
    return padded.reshape(nb, block, nb, block).any(axis=(1, 3))  # (nb, nb)
    ### END SOLUTION


# %%
check("ex06.block_layout", block_layout)


# %% [markdown]
# ## Exercise 2: the wasted fraction
#
# A kernel computes every pair of every active tile; the masked ones among them are wasted work. Write
# `wasted_fraction(mask, block)`: `1 - allowed pairs / computed pairs`, where the computed pairs are the **real**
# pairs of the active tiles (a short edge tile of `r` rows and `c` columns computes `r · c`, not `block²`).
# Return `0.0` when nothing is computed.
#
# <details><summary>Hint</summary>
#
# Count the allowed pairs per tile the same way as in exercise 1, with `.sum(axis=(1, 3))` on an integer copy.
# The real sizes of the tiles along one side are `np.minimum(block, n - np.arange(nb) * block)`; `np.outer` of
# them gives each tile's area.
# </details>

# %%
def wasted_fraction(mask, block):
    """Share of the pairs in active tiles that the mask does not allow."""
    ### BEGIN SOLUTION: allowed pairs per tile and tile areas; waste = 1 - allowed / computed
    n = mask.shape[0]
    nb = -(-n // block)
    padded = np.zeros((nb * block, nb * block), dtype=np.int64)
    padded[:n, :n] = mask
    counts = padded.reshape(nb, block, nb, block).sum(axis=(1, 3))  # (nb, nb) allowed pairs per tile
    sizes = np.minimum(block, n - np.arange(nb) * block)  # (nb,) real rows (= columns) per block
    computed = int(np.outer(sizes, sizes)[counts > 0].sum())
    return 1.0 - int(counts.sum()) / computed if computed else 0.0
    ### END SOLUTION


# %%
check("ex06.wasted_fraction", wasted_fraction)

# %% [markdown]
# Your two functions on the lesson's patterns (`n = 1024`, blocks of 64):

# %%
for p in [P.SlidingWindow(128, causal=True), P.BigBird(block=64), P.Strided(32), P.DilatedWindow(32, 8)]:
    m = p.mask(1024)
    print(f"{p!r:55} token density {m.mean():6.1%}   block density {block_layout(m, 64).mean():6.1%}   "
          f"wasted {wasted_fraction(m, 64):6.1%}")

# %% [markdown]
# ## Exercise 3: the best block size, from measurements
#
# First measure: the cell below times `R.block_sparse_attention` for a causal window of 128 at `n = 2048`, three
# repeats per block size, and keeps every repeat in a table `{block: [seconds, seconds, seconds]}`.

# %% tags=["nbval-ignore-output"]
rng = np.random.default_rng(0)
n, d = 2048, 64
p = P.SlidingWindow(128, causal=True)
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
my_timings = {b: list(C.time_fn(R.block_sparse_attention, q, k, v, p.block_layout(n, b), b, repeats=3).times)
              for b in (16, 32, 64, 128, 256, 512)}
for b, ts in my_timings.items():
    print(f"block {b:>3}: " + "  ".join(f"{t * 1e3:6.2f} ms" for t in ts))


# %% [markdown]
# Now write `best_block_size(timings)`: the block size whose **fastest** repeat is the smallest. The fastest repeat
# is the run least disturbed by other programs (noise only ever adds time); a mean would let one slow run decide.
# On a tie, prefer the smaller block (less wasted work). The check feeds it tables of its own, with outliers and
# ties; then you apply it to your table.
#
# <details><summary>Hint</summary>
#
# `min(timings, key=...)` walks the keys; a key function returning a tuple `(fastest time, block)` breaks ties by
# the block.
# </details>

# %%
def best_block_size(timings):
    """The block whose fastest repeat is fastest; ties to the smaller block. timings: {block: [seconds, ...]}."""
    ### BEGIN SOLUTION: compare the fastest repeat of each block; break ties by the block size
    return min(timings, key=lambda b: (min(timings[b]), b))
    ### END SOLUTION


# %%
check("ex06.best_block_size", best_block_size)

# %% tags=["nbval-ignore-output"]
print("on this machine, blocks of", best_block_size(my_timings), "are fastest for SlidingWindow(128) at n = 2048")


# %% [markdown]
# ## Exercise 4: the residue order
#
# Strided columns (`(i - j) % stride == 0`) touch every key block. Listing the tokens residue by residue,
# `[0, stride, 2·stride, …, 1, 1 + stride, …, stride - 1, …]`, makes each residue a contiguous run, where the
# columns become dense blocks. Write `residue_order(n, stride)` returning this permutation of `0 … n-1` as an
# integer array.
#
# <details><summary>Hint</summary>
#
# `np.arange(r, n, stride)` lists residue `r`; `np.concatenate` the residues `0 … stride - 1`.
# </details>

# %%
def residue_order(n, stride):
    """Token indices sorted by (t % stride, t // stride)."""
    ### BEGIN SOLUTION: one arange per residue, concatenated
    return np.concatenate([np.arange(r, n, stride) for r in range(stride)]).astype(np.int64)  # (n,)
    ### END SOLUTION


# %%
check("ex06.residue_order", residue_order)

# %% [markdown]
# The grid part of `Strided(16)`, keys and queries permuted with your order: its tiles go from the whole lower
# triangle to the diagonal.

# %%
n, stride = 256, 16
i, j = np.arange(n)[:, None], np.arange(n)[None, :]
grid = P.Strided(stride).mask(n) & ((i - j) % stride == 0) & (i != j)
order = residue_order(n, stride)
print("active tiles, token order:   ", int(block_layout(grid, stride).sum()))
print("active tiles, residue order: ", int(block_layout(grid[np.ix_(order, order)], stride).sum()))

# %% [markdown]
# ## Exercise 5: one number, by reasoning
#
# `Strided(16)` on `n = 256` tokens, blocks of 16: how many of the `16 × 16 = 256` tiles does a block-sparse kernel
# compute in token order? Set `q5_answer` and run the cell.
#
# <details><summary>Hint</summary>
#
# Query `i` sees the 16 keys before it and every 16th key down to 0. Which key blocks does query block `b` reach?
# </details>

# %%
### BEGIN SOLUTION: set q5_answer to the number of active tiles
q5_answer = 16 * 17 // 2  # query block b reaches key blocks 0 .. b: the whole causal triangle of tiles
### END SOLUTION
check("ex06.q5", q5_answer)

# %% [markdown]
# ## Exercise 6: in words (self-checked)
#
# Your measured best block size is probably not the one a GPU kernel uses (64 or 128). Which of the two costs,
# per-tile overhead or wasted work, is larger in NumPy than on a GPU, and how does that move the optimum?
#
# Write your answer as a string in `q6_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q6_text
q6_text = """
In NumPy each tile costs a Python loop step and a separate small matmul call (microseconds), while a GPU kernel
pays almost nothing per tile: its tiles run in parallel inside one launch. Overhead is therefore much larger in
NumPy, which pushes the optimum towards larger blocks, where fewer tiles amortise it even at the price of more
masked pairs. On a GPU the overhead is small and the tile size is bounded by on-chip memory and by waste, so
64–128 wins."""
### END SOLUTION
check("ex06.text_q6", q6_text)

# %% [markdown]
# ## ★ Exercise 7 (challenge): the block layout of a neighbour list, in O(nnz)
#
# A kernel's planner gets a pattern as CSR neighbour lists (lesson 01), not as a mask: at 200,000 tokens the mask
# would take 40 GB. Write `csr_block_layout(indptr, indices, block)`: the same `(nb, nb)` layout as exercise 1's
# `block_layout(mask, block)`, from the lists alone, `n = len(indptr) - 1`, `nb = ceil(n / block)`. The check runs
# it on 200,000 tokens too. Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# Every allowed pair lands in exactly one tile, named by the block of its query and the block of its key. The
# query of each listed key is not stored: it follows from the row starts. Mark the tiles; never visit the
# pairs that are not allowed.
# </details>

# %%
def csr_block_layout(indptr, indices, block):
    """(nb, nb) bool: does tile (I, J) hold any pair of the CSR neighbour lists? O(nnz + nb²)."""
    ### BEGIN SOLUTION: the query of every entry from indptr, then one scatter into the (nb, nb) layout
    n = len(indptr) - 1
    nb = -(-n // block)  # ceil(n / block)
    rows = np.repeat(np.arange(n), np.diff(indptr))  # (nnz,) the query of every key
    layout = np.zeros((nb, nb), dtype=bool)
    layout[rows // block, np.asarray(indices) // block] = True
    return layout
    ### END SOLUTION


# %%
check("ex06.star_csr_block_layout", csr_block_layout)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/06_blocks.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
