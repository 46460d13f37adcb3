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
# # Exercises 13: merging partial attention, and the ring schedule
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/13_ring_merge.ipynb)
#
# You will rebuild, with NumPy alone, the two ideas ring attention stands on (lesson 13).
#
# **Learning goals**
# - merge two partial attention results over disjoint key sets exactly, with their log-sum-exps, stably;
# - say which K/V block each rank holds at each step of the ring;
# - simulate ring attention on one machine and get dense attention back, causal included.
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it: it tries your function on fresh random inputs and prints a score per case, with hints on failures.

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
# A *partial result* of attention over some keys is a pair: `out` (the softmax-weighted average of those keys'
# values) and `lse`, the log-sum-exp of the query's scores over those keys, `lse = log Σ_j exp(s_j)`. A row that saw
# no key has `out = 0` and `lse = -inf`. Here is one, computed for 2 queries over 3 keys:

# %%
s = np.array([[0.5, 1.0, -1.0], [2.0, 0.0, 0.0]])  # scores of 2 queries over 3 keys
v = np.array([[1.0], [2.0], [3.0]])  # (3, 1) values
lse = np.log(np.exp(s).sum(axis=1))  # (2,)
out = (np.exp(s - lse[:, None]) @ v)  # (2, 1) softmax(s) @ v
print("lse", lse.round(4), " out", out.ravel().round(4))


# %% [markdown]
# ## Exercise 1: the log-sum-exp merge
#
# Write `merge_partials(out_a, lse_a, out_b, lse_b)`: `out` arrays of shape `(..., n, d)`, `lse` of shape `(..., n)`,
# over two disjoint key sets; return `(out, lse)` of attention over both sets together. It must stay finite when the
# log-sum-exps are around ±10⁴, and a row that saw no key on either side must come out as `out = 0`, `lse = -inf`
# (never NaN).
#
# <details><summary>Hint</summary>
#
# The softmax over both sets weighs set a by `exp(lse_a) / (exp(lse_a) + exp(lse_b))`. Subtract `m = max(lse_a,
# lse_b)` before `exp` (replace `m = -inf` by 0 on empty rows); then `out = (w_a·out_a + w_b·out_b) / (w_a + w_b)`
# and `lse = m + log(w_a + w_b)`. Divide only where `w_a + w_b > 0`.
# </details>

# %%
def merge_partials(out_a, lse_a, out_b, lse_b):
    """(out, lse) of attention over the union of two disjoint key sets, from their partial results."""
    ### BEGIN SOLUTION: weights exp(lse - max), weighted average of the outs, lse = max + log(sum of weights)
    m = np.maximum(lse_a, lse_b)  # (..., n)
    m = np.where(np.isneginf(m), 0.0, m)  # rows empty on both sides: exp(-inf - 0) = 0, not NaN
    w_a, w_b = np.exp(lse_a - m), np.exp(lse_b - m)  # (..., n)
    total = w_a + w_b
    safe = np.where(total > 0, total, 1.0)[..., None]  # (..., n, 1)
    out = (w_a[..., None] * out_a + w_b[..., None] * out_b) / safe
    with np.errstate(divide="ignore"):
        lse = m + np.log(total)  # -inf where total == 0
    return out, lse
    ### END SOLUTION


# %%
check("ex13.merge_partials", merge_partials)


# %% [markdown]
# ## Exercise 2: who holds what
#
# In ring attention, rank `r` starts with the K/V block of its own tokens. At every step, every rank sends the
# block it holds to rank `r + 1` and receives one from rank `r - 1` (modulo `world_size`). Write
# `ring_holds(world_size, step)`: an integer array of length `world_size` whose entry `r` is the rank whose block
# rank `r` holds after `step` steps.
#
# <details><summary>Hint</summary>
#
# After one step rank `r` holds rank `r - 1`'s block; after `s` steps, rank `r - s`'s. `np.arange` and `%` do all
# ranks at once.
# </details>

# %%
def ring_holds(world_size, step):
    """(world_size,) int: source rank of the K/V block each rank holds after `step` ring steps."""
    ### BEGIN SOLUTION: rank r holds rank (r - step) mod world_size's block
    return (np.arange(world_size) - step) % world_size
    ### END SOLUTION


# %%
check("ex13.ring_holds", ring_holds)


# %% [markdown]
# ## Exercise 3: ring attention, simulated
#
# Now put both together. `partial_attention` below (given) attends some queries to some keys and returns their
# partial `(out, lse)`; it needs the *global* positions of the queries and keys for the causal mask. Write
# `ring_attention_sim(q, k, v, world_size, causal)`: split `q, k, v` (shape `(..., n, d)`, `n` a multiple of
# `world_size`) into `world_size` contiguous blocks (rank `r` owns tokens `r·n/W … (r+1)·n/W - 1`); for each rank
# and each of the `world_size` steps, attend its queries to the block it holds (exercise 2) and merge the partial
# into its running result (exercise 1); return the full output `(..., n, d)`. It must equal dense attention.
# With `steps` given, stop after that many ring steps: each rank's output then covers only the blocks that have
# reached it so far (the check compares those snapshots too, so the ring must turn the way `ring_holds` says).
#
# <details><summary>Hint</summary>
#
# Start every rank with `out = 0`, `lse = -inf` (an empty partial: merging it changes nothing). With causal
# attention some blocks are entirely in the future of a rank's queries: `partial_attention` then returns `lse =
# -inf` rows, and your merge from exercise 1 must handle them. Concatenate the ranks' outputs at the end.
# </details>

# %%
def partial_attention(q, k, v, q_pos, k_pos, causal):
    """(out (..., m, d), lse (..., m)) of queries q over keys k, v; positions are global token indices."""
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])  # (..., m, mk)
    if causal:
        s = np.where(k_pos[None, :] <= q_pos[:, None], s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)  # rows with no allowed key
    p = np.exp(s - m)
    total = p.sum(axis=-1, keepdims=True)
    out = (p @ v) / np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore"):
        return out, (m + np.log(total))[..., 0]


# %%
def ring_attention_sim(q, k, v, world_size, causal=False, steps=None):
    """Attention of q, k, v (..., n, d) computed the way world_size ranks of a ring would, over `steps` steps."""
    ### BEGIN SOLUTION: per rank, walk the ring: attend to the held block, merge into the running (out, lse)
    n = q.shape[-2]
    c = n // world_size  # tokens per rank
    pos = [np.arange(r * c, (r + 1) * c) for r in range(world_size)]
    outs = []
    for r in range(world_size):
        out = np.zeros(q.shape[:-2] + (c, v.shape[-1]))  # (..., c, d)
        lse = np.full(q.shape[:-2] + (c,), -np.inf)  # (..., c)
        for step in range(world_size if steps is None else steps):
            src = ring_holds(world_size, step)[r]
            part = partial_attention(q[..., pos[r], :], k[..., pos[src], :], v[..., pos[src], :],
                                     pos[r], pos[src], causal)
            out, lse = merge_partials(out, lse, *part)
        outs.append(out)
    return np.concatenate(outs, axis=-2)
    ### END SOLUTION


# %%
check("ex13.ring_attention_sim", ring_attention_sim)

# %% [markdown]
# ## Exercise 4: one number, by hand
#
# A sparse-aware ring skips the hops nobody needs: K/V blocks may travel both ways round the ring, and a block
# travels only as far as some rank still needs it. With `n = 256` tokens split contiguously over `8` ranks and a
# non-causal `SlidingWindow(window=16)` (each query sees the keys at most `16 // 2 = 8` positions away), how many
# hops does each rank's K/V block make in total (a dense ring needs 7)? Set `q4_answer` and run the cell.
#
# <details><summary>Hint</summary>
#
# Each rank owns 32 tokens; a query reaches 8 tokens left and right, so only the two neighbouring ranks' keys are
# ever in reach: one hop each way.
# </details>

# %%
### BEGIN SOLUTION: set q4_answer to the number of hops
q4_answer = 2  # one hop clockwise (rank r - 1's keys), one counter-clockwise (rank r + 1's)
### END SOLUTION
check("ex13.q4", q4_answer)

# %% [markdown]
# ## Exercise 5: in words (self-checked)
#
# With causal attention and a contiguous split, rank 0 needs only its own block while the last rank needs all of
# them. Why does that make the whole ring as slow as its busiest rank, and how does the zigzag split (rank `r` owns
# chunks `r` and `2W - 1 - r` of `2W`) fix it?
#
# Write your answer as a string in `q5_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q5_text
q5_text = """
Every step of the ring is a synchronisation point: a rank cannot receive the next block before its neighbour has
sent it, so the step takes as long as the slowest rank's compute. Contiguous causal work grows with the rank
(rank `r` attends to `r + 1` blocks, half of the diagonal one), so the last rank does about `2W - 1` times the work
of the first while the others wait. Zigzag gives every rank one early chunk (little causal work) and the mirrored
late chunk (much work): each rank's total is the same, so no rank waits."""
### END SOLUTION
check("ex13.text_q5", q5_text)

# %% [markdown]
# ## ★ Exercise 6 (challenge): the zigzag split
#
# Exercise 5's balanced split: cut the `n` tokens into `2W` equal chunks; rank `r` owns chunks `r` and
# `2W - 1 - r`. Write `zigzag_positions(n, world_size)` returning a `(W, n / W)` int array: row `r` holds the token
# positions rank `r` owns, ascending (`n` is a multiple of `2W`). Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# A reshape gives the chunks; pair each one from the front with its mirror from the back.
# </details>

# %%
def zigzag_positions(n, world_size):
    """(world_size, n // world_size) positions of each rank under the zigzag split."""
    ### BEGIN SOLUTION: 2W chunks, rank r takes chunk r and its mirror 2W - 1 - r
    chunks = np.arange(n).reshape(2 * world_size, -1)  # (2W, n / 2W)
    return np.concatenate([chunks[:world_size], chunks[::-1][:world_size]], axis=1)
    ### END SOLUTION


# %%
check("ex13.star_zigzag_positions", zigzag_positions)


# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/13_ring_merge.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
