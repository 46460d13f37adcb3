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
# # Exercises 04: BigBird's blocks and the attention graph
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/04_bigbird.ipynb)
#
# You will assemble BigBird's ITC block layout from its parts, draw its random blocks from a seed, and measure the attention graph: hop distances and diameter, the numbers that explain why random shortcuts and global blocks matter.
#
# **Learning goals**
# - build BigBird's block layout: window, global and random blocks;
# - draw BigBird's random blocks (seeded) under its rules: outside the window and the globals, distinct;
# - compute all-pairs hop distances and the diameter of an attention graph.
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
# BigBird's ITC pattern decides everything per block of `block` tokens. With `nb` blocks, block row `bi` may
# attend to block column `bj` when
#
# 1. **window**: `|bi - bj| <= window_blocks // 2`;
# 2. **global**: `bi < global_blocks` or `bj < global_blocks` (the first blocks are global);
# 3. **random**: `bj` is one of row `bi`'s `random_blocks` random blocks.
#
# The random blocks of a non-global row are drawn, without repeats, among the **candidates**: blocks
# `bj >= global_blocks` outside the window (`|bi - bj| > window_blocks // 2`). A global row needs none (it already
# sees everything): its row of the table is all `-1`. When a row has fewer candidates than `random_blocks`, it takes
# them all and pads with `-1`. `P.BigBird(...).random_blocks_for(n)` returns the library's table:

# %%
bb = P.BigBird(block=1, window_blocks=3, global_blocks=2, random_blocks=3, seed=0)  # block=1: a block per token
table = bb.random_blocks_for(12)  # (nb, random_blocks), ascending per row, -1 = padding
print(table)


# %% [markdown]
# ## Exercise 1: the block layout from its parts
#
# Write `bigbird_block_layout(nb, window_blocks, global_blocks, random_table)`: the `(nb, nb)` boolean block layout,
# given the random table (`-1` entries mean nothing). The check compares with `P.BigBird(...).block_layout` built
# on the very same table.
#
# <details><summary>Hint</summary>
#
# Broadcast `bi = np.arange(nb)[:, None]`, `bj = np.arange(nb)[None, :]` for rules 1 and 2; for rule 3,
# `rows, ks = np.nonzero(random_table >= 0)` and `layout[rows, random_table[rows, ks]] = True`.
# </details>

# %%
def bigbird_block_layout(nb, window_blocks, global_blocks, random_table):
    """(nb, nb) bool block layout of BigBird ITC: window | global | the random blocks of `random_table`."""
    ### BEGIN SOLUTION: window and global rules by broadcasting, then switch on the table's entries
    bi, bj = np.arange(nb)[:, None], np.arange(nb)[None, :]
    layout = (np.abs(bi - bj) <= window_blocks // 2) | (bi < global_blocks) | (bj < global_blocks)
    rows, ks = np.nonzero(random_table >= 0)
    layout[rows, random_table[rows, ks]] = True
    return layout
    ### END SOLUTION


# %%
check("ex04.bigbird_block_layout", bigbird_block_layout)


# %% [markdown]
# ## Exercise 2: drawing the random blocks
#
# Write `random_blocks(nb, window_blocks, global_blocks, random_blocks, seed)` returning the `(nb, random_blocks)`
# integer table: row `bi` holds `min(random_blocks, #candidates)` **distinct** candidates of row `bi`, then `-1`
# padding; global rows are all `-1`. Draw with `rng = np.random.default_rng(seed)`, so a seed always gives the same
# pattern.
#
# **How this is graded, and why not by equality.** The library draws all rows at once with a vectorised form of
# Floyd's algorithm (`saattn_edu/patterns/random_pattern.py: draw_distinct`: for step `t = 0..r-1` every row draws
# `x` in `[0, count - r + t]` and takes `count - r + t` itself if `x` was already taken; the `x`-th candidate is then
# counted left of the window first, then right of it). Any other correct sampler, `rng.choice(..., replace=False)`
# row by row for instance, gives a different but equally valid BigBird. So the check grades the **rules**, not one
# algorithm's bits: right shape and dtype, global rows all `-1`, every drawn block a candidate, no repeats, the right
# count per row, and draws that vary (a table that always takes the smallest candidates fails).
#
# <details><summary>Hint</summary>
#
# For row `bi`: `bj = np.arange(global_blocks, nb)`; `cand = bj[np.abs(bj - bi) > window_blocks // 2]`;
# `rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)`.
# </details>

# %%
def random_blocks(nb, window_blocks, global_blocks, random_blocks, seed):
    """(nb, random_blocks) int table of BigBird's random blocks, -1 padded; reproducible from `seed`."""
    ### BEGIN SOLUTION: per non-global row, choose among the candidates without replacement
    rng = np.random.default_rng(seed)
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)
        table[bi, : len(pick)] = np.sort(pick)
    return table
    ### END SOLUTION


# %%
check("ex04.random_blocks", random_blocks)

# %% [markdown]
# The same seed must give the same table (a model is trained and served with one layout), and another seed
# another table. This check calls your function several times:

# %%
check("ex04.random_blocks_seeded", random_blocks)

# %% [markdown]
# Your two functions together give a complete BigBird layout. BigBird's defaults on 4,096 tokens (64 blocks of 64):

# %%
layout = bigbird_block_layout(64, 3, 2, random_blocks(64, 3, 2, 3, seed=0))
print(f"{layout.sum()} of {layout.size} blocks computed ({layout.mean():.1%}); "
      f"library with its own draw: {P.BigBird().block_layout(4096, 64).sum()} blocks")


# %% [markdown]
# ## Exercise 3: hop distances in the attention graph
#
# Read a layout (or a mask) as a directed graph: an edge `i → k` when `adj[i, k]` (row `i` attends to `k`). The hop
# distance from `i` to `j` is the fewest edges on a path `i → … → j`: the number of layers before `i`'s output can
# depend on `j`. Write `hop_distances(adj)` returning an `(n, n)` integer array, `0` on the diagonal and `-1` for
# pairs never connected.
#
# <details><summary>Hint</summary>
#
# Breadth-first from every row at once: `reach` starts as the identity; each step,
# `new = ((reach.astype(int) @ adj.astype(int)) > 0) & ~reach` are the pairs first reached at this many hops; stop
# when `new` is empty.
# </details>

# %%
def hop_distances(adj):
    """(n, n) int: fewest steps i -> ... -> j along adj; 0 on the diagonal, -1 if never connected."""
    ### BEGIN SOLUTION: breadth-first search from all rows at once with boolean matrix products
    n = len(adj)
    step = adj.astype(np.int64)  # (n, n)
    reach = np.eye(n, dtype=bool)
    dist = np.where(reach, 0, -1)
    hops = 0
    while True:
        new = ((reach.astype(np.int64) @ step) > 0) & ~reach
        if not new.any():
            return dist
        hops += 1
        dist[new] = hops
        reach |= new
    ### END SOLUTION


# %%
check("ex04.hop_distances", hop_distances)


# %% [markdown]
# ## Exercise 4: the diameter
#
# The diameter is the largest hop distance over all pairs: how many layers until every token can influence every
# other. Write `diameter(adj)` returning an `int`, or `-1` when some pair is never connected.

# %%
def diameter(adj):
    """Largest hop distance over all pairs of adj, or -1 when some pair is never connected."""
    ### BEGIN SOLUTION: the maximum of hop_distances, unless a -1 is there
    dist = hop_distances(adj)
    return -1 if (dist < 0).any() else int(dist.max())
    ### END SOLUTION


# %%
check("ex04.diameter", diameter)

# %% [markdown]
# Lesson 04's table, with your functions, on 64 blocks: window only, window + random, window + random + global.

# %%
nb = 64
window_only = bigbird_block_layout(nb, 3, 0, np.full((nb, 0), -1))
with_random = bigbird_block_layout(nb, 3, 0, random_blocks(nb, 3, 0, 3, seed=0))
with_global = bigbird_block_layout(nb, 3, 2, random_blocks(nb, 3, 2, 3, seed=0))
for name, adj in {"window": window_only, "window + random": with_random, "window + random + global": with_global}.items():
    dist = hop_distances(adj)
    print(f"{name:26} diameter {diameter(adj):2d}, mean hop distance {dist[dist > 0].mean():5.2f}")

# %% [markdown]
# ## Exercise 5: what the defaults cost
#
# BigBird's defaults are `block=64, window_blocks=3, global_blocks=2, random_blocks=3`. How many keys does a query in
# a block far from the start (not global, its window and random blocks all distinct from the global ones) attend to?
# Set `q5_answer`.

# %%
### BEGIN SOLUTION: set q5_answer to the number of keys
q5_answer = (3 + 2 + 3) * 64
### END SOLUTION
check("ex04.q5", q5_answer)

# %% [markdown]
# ## ★ Exercise 6 (challenge): the random-block table for 200,000 blocks
#
# Exercise 2's loop looks at every candidate of every row: time `nb²`. Write
# `random_blocks_vectorised(nb, window_blocks, global_blocks, random_blocks, seed)` with the same rules (distinct
# candidates outside the window and the globals, `-1` padding, global rows all `-1`, the same seed giving the same
# table) that needs no loop over rows and no list of candidates: the check asks for `nb = 200,000` blocks within
# 10 seconds, then checks the rules, that the draws spread over the whole sequence, and that seeds behave. Graded
# in the ★ column.
#
# <details><summary>Hint</summary>
#
# A row's candidates are two runs of consecutive blocks, left and right of its window: the k-th candidate is a
# formula in k. So draw candidate numbers, not blocks. To keep them distinct, draw one column at a time from a range
# that grows by one each time, and when a number is already taken in its row, take the range's new top instead
# (Floyd's algorithm): no retries, every subset equally likely.
# </details>

# %%
def random_blocks_vectorised(nb, window_blocks, global_blocks, random_blocks, seed):
    """random_blocks' table, drawn for all rows at once: O(nb · random_blocks) time and memory."""
    ### BEGIN SOLUTION: Floyd's algorithm on candidate numbers in every row at once, then numbers -> blocks
    rng = np.random.default_rng(seed)
    g, r, rows = global_blocks, random_blocks, np.arange(nb)
    lo = np.clip(rows - window_blocks // 2, g, nb)  # (nb,) the window, cut to [g, nb): blocks lo .. hi - 1
    hi = np.clip(rows + window_blocks // 2 + 1, g, nb)
    count = np.where(rows < g, 0, (nb - g) - (hi - lo))  # (nb,) candidates per row
    took = np.full((nb, r), -1, dtype=np.int64)  # candidate numbers in [0, count)
    for t in range(r):
        top = count - r + t  # (nb,) this column draws from [0, top]
        x = np.floor(rng.random(nb) * (top + 1)).astype(np.int64)
        x = np.where((took == x[:, None]).any(axis=1), top, x)  # taken already: take the new top
        took[:, t] = np.where(top >= 0, x, -1)
    left = lo - g  # (nb,) candidates left of the window
    blocks = np.where(took < left[:, None], g + took, hi[:, None] + took - left[:, None])
    blocks = np.sort(np.where(took >= 0, blocks, nb), axis=1)  # padding sorts last
    return np.where(blocks == nb, -1, blocks)
    ### END SOLUTION


# %%
check("ex04.star_random_blocks_vectorised", random_blocks_vectorised)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/04_bigbird.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
