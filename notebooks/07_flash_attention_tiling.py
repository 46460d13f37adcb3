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
# # 07 · FlashAttention: tiling and the online softmax
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/07_flash_attention_tiling.ipynb)
#
# **Learning goals.** After this notebook you can
# - explain why softmax subtracts the row max, and write the online softmax recurrence
# - write FlashAttention's tiled forward pass in NumPy and check it against dense attention
# - measure its memory growing as O(n) where dense attention's grows as O(n²)
# - merge partial results with their log-sum-exp (the step ring attention reuses)
# - skip masked tiles: block-sparse FlashAttention

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Softmax needs the row max
#
# Attention's softmax turns a row of scores $s_j$ into weights $e^{s_j} / \sum_k e^{s_k}$. In float32,
# $e^{89}$ already overflows to `inf`, and scores of a few hundred are ordinary once $q$ and $k$ grow. The fix is
# free: softmax does not change when every score moves by the same constant, so subtract the row max $m$ first,
#
# $$\mathrm{softmax}(s)_j = \frac{e^{s_j - m}}{\sum_k e^{s_k - m}}, \qquad m = \max_k s_k ,$$
#
# and every exponent is $\le 0$: no overflow, and the largest term is exactly 1.

# %%
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings; set before NumPy loads

import math
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R

# %%
s = np.array([100.0, 101.0, 102.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(s) / np.exp(s).sum()
stable = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
print("naive :", naive)
print("stable:", stable)

# %% [markdown]
# ## The online softmax
#
# The max is a problem for tiling: FlashAttention reads the keys **one block at a time** and never holds a whole
# row of scores, so it cannot know the row max in advance. The *online softmax* keeps a running max $m$ and a
# running sum $\ell = \sum e^{s_j - m}$ over the blocks seen so far. A new block with scores $s^{(b)}$:
#
# $$m' = \max\big(m, \max_j s^{(b)}_j\big), \qquad
# \ell' = \ell \, e^{m - m'} + \sum_j e^{s^{(b)}_j - m'} .$$
#
# The factor $\alpha = e^{m - m'} \le 1$ re-expresses the old sum relative to the new max. Start from
# $m = -\infty$, $\ell = 0$ (then $\alpha = 0$). After the last block, $m$ and $\ell$ are exactly the row max and the
# stable sum. Watch it on one row of 24 scores in blocks of 6:

# %%
rng = np.random.default_rng(0)
row = rng.standard_normal(24) * 3
m, l = -np.inf, 0.0
print(f"{'block':>5} {'block max':>10} {'m':>8} {'alpha':>8} {'l':>9}")
for b0 in range(0, len(row), 6):
    blk = row[b0:b0 + 6]
    m_new = max(m, blk.max())
    alpha = math.exp(m - m_new)  # 0 on the first block (m = -inf)
    l = l * alpha + np.exp(blk - m_new).sum()
    m = m_new
    print(f"{b0 // 6:>5} {blk.max():>10.3f} {m:>8.3f} {alpha:>8.4f} {l:>9.4f}")
print(f"one pass over the row: max {row.max():.3f}, sum {np.exp(row - row.max()).sum():.4f}")


# %% [markdown]
# ## The tiled forward pass
#
# The output needs more than the normaliser: $o = \sum_j p_j v_j$. Keep an unnormalised accumulator
# $\mathrm{acc} = \sum_j e^{s_j - m} v_j$ and rescale it by the same $\alpha$. One **tile update**, for a block of
# queries against a block of keys, updates $m$, rescales $\mathrm{acc}$ and $\ell$ by $\alpha$ and adds the tile's
# exps; the forward pass loops over query blocks (independent: a GPU runs them in parallel) and, inside, over key
# blocks, then divides by $\ell$ once at the end. You write both in the exercises; here the course's reference
# does it, whatever the tile shape:

# %%
def tiled_attention(q, k, v, block_q=64, block_k=64):
    """The course's tiled reference (R.flash_attention): you write its loop yourself in exercise notebook 07."""
    return R.flash_attention(q, k, v, block_q=block_q, block_k=block_k)


n, d = 300, 32
q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
print("tiles of 64 × 48 == dense attention:", np.allclose(tiled_attention(q, k, v, 64, 48), R.dense_attention(q, k, v)))
print("tiles of 7 × 300 == dense attention:", np.allclose(tiled_attention(q, k, v, 7, 300), R.dense_attention(q, k, v)))


# %% [markdown]
# ## Watch the tiles
#
# Each step folds one tile into the running state of one query block. The left panel colours the tiles already
# visited; the right one follows query 0's weights: the weights implied by the state so far,
# $e^{s_j - m} / \ell$ over the keys seen, against the final softmax. They are exact once the last tile is in.

# %%
def tile_steps(n=96, block=16, seed=1):
    """Every (query block, key block) visit, with query 0's running weights after the visits of its block."""
    r = np.random.default_rng(seed)
    qq, kk = r.standard_normal((n, 8)), r.standard_normal((n, 8))
    s0 = qq[0] @ kk.T / math.sqrt(8)  # (n,) query 0's scores
    steps, m, l = [], -np.inf, 0.0
    for bi in range(n // block):
        for bj in range(n // block):
            if bi == 0:  # query 0 lives in query block 0: track its state
                blk = s0[bj * block:(bj + 1) * block]
                m_new = max(m, blk.max())
                l, m = l * math.exp(m - m_new) + np.exp(blk - m_new).sum(), m_new
            seen = np.arange(n) < (bj + 1) * block if bi == 0 else np.ones(n, bool)
            steps.append((bi, bj, np.where(seen, np.exp(s0 - m) / l, np.nan)))
    return steps, np.exp(s0 - s0.max()) / np.exp(s0 - s0.max()).sum(), n // block


STEPS, FINAL, NB = tile_steps()


def show_step(step=3):
    bi, bj, weights = STEPS[step]
    visited = np.zeros((NB, NB))
    for t in range(step + 1):
        visited[STEPS[t][0], STEPS[t][1]] = 1 if t < step else 2
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=72)
    axes[0].imshow(visited, cmap="Blues", vmin=0, vmax=2)
    axes[0].set(title=f"step {step}: query block {bi}, key block {bj}", xlabel="key block", ylabel="query block")
    axes[1].plot(FINAL, "k-", lw=1, label="final softmax")
    axes[1].plot(weights, "o", ms=3, label="running estimate")
    axes[1].set(title="query 0's weights", xlabel="key")
    axes[1].legend(loc="upper right")
    fig.tight_layout()
    plt.show()


show_step(3)

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets

widgets.interact(show_step, step=widgets.IntSlider(value=0, min=0, max=len(STEPS) - 1));


# %% [markdown]
# While the first query block walks its key blocks, the estimate of query 0's earlier weights moves *down*
# whenever a new block raises the max or adds mass: that is the rescaling by $\alpha$. After the last key block of
# its query block, the state is exact and never changes again.
#
# ## Memory: O(n) instead of O(n²)
#
# Dense attention materialises the `n × n` score matrix; the tiled pass holds one `block_q × block_k` tile at a
# time, plus `q`, `k`, `v` and the output, which grow as `n`. Peak memory, measured with `tracemalloc`:

# %% tags=["nbval-ignore-output"]
def peak_bytes(fn, *args):
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


ns, d = [256, 512, 1024, 2048, 4096], 64
peaks = {"dense": [], "flash (tiles of 64)": []}
for n_ in ns:
    q, k, v = (rng.standard_normal((n_, d)).astype(np.float32) for _ in range(3))
    peaks["dense"].append(peak_bytes(R.dense_attention, q, k, v))
    peaks["flash (tiles of 64)"].append(peak_bytes(tiled_attention, q, k, v, 64, 64))
for name, ps in peaks.items():
    exponent, _ = C.fit_power_law(ns, ps)
    print(f"{name:20} peak at n = {ns[-1]}: {ps[-1] / 1e6:6.2f} MB   fitted: memory ∝ n^{exponent:.2f}")

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=72)
for name, ps in peaks.items():
    ax.loglog(ns, np.array(ps) / 1e6, "o-", label=name)
ax.set(xlabel="n (tokens)", ylabel="peak memory (MB)", title="one head, float32, d = 64")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Dense attention's exponent comes out close to 2 (the score matrix). The tiled pass stays at or below 1: its peak
# is a constant (one tile and the running state of one query block) plus the `n × d` output, the only part that grows
# with `n`; at these sizes the constant is still a good share, so the fit reads less than 1. Time is another matter: our Python loop over tiles pays an overhead per tile, and NumPy has
# no fused kernel, so in NumPy the tiled pass is not faster. On a GPU the same tiling is what makes attention fast:
# the scores never leave on-chip memory, so the n² traffic to main memory disappears.

# %% tags=["nbval-ignore-output"]
n = 2048
q, k, v = (rng.standard_normal((n, 64)).astype(np.float32) for _ in range(3))
t_dense = C.time_fn(R.dense_attention, q, k, v, repeats=3).min
t_flash = C.time_fn(tiled_attention, q, k, v, 64, 64, repeats=3).min
print(f"n = {n}: dense {t_dense * 1e3:.1f} ms, tiled {t_flash * 1e3:.1f} ms (a Python loop over "
      f"{n // 64} key blocks, all query blocks at once)")

# %% [markdown]
# ## Partial results and their log-sum-exp
#
# The running state after some keys is a complete description of attention over those keys. Normalised, it is a
# pair: the partial output $o_A = \mathrm{acc} / \ell$ and its **log-sum-exp** $\mathrm{lse}_A = m + \log \ell$ (the log of
# the softmax denominator). Two partial results over *disjoint* key sets merge exactly:
#
# $$\mathrm{lse} = \log\big(e^{\mathrm{lse}_A} + e^{\mathrm{lse}_B}\big), \qquad
# o = e^{\mathrm{lse}_A - \mathrm{lse}}\, o_A + e^{\mathrm{lse}_B - \mathrm{lse}}\, o_B .$$
#
# `R.flash_attention(..., return_lse=True)` returns the pair and `R.merge_partials` merges. Split the keys in two
# halves, attend to each, merge:

# %%
n, d = 512, 32
q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
half = n // 2
out_a, lse_a = R.flash_attention(q, k[:half], v[:half], return_lse=True)
out_b, lse_b = R.flash_attention(q, k[half:], v[half:], return_lse=True)
out, lse = R.merge_partials(out_a, lse_a, out_b, lse_b)
print("merged halves == attention over all keys:", np.allclose(out, R.dense_attention(q, k, v)))
scores = q @ k.T / math.sqrt(d)
print("merged lse == log-sum-exp of each full row:",
      np.allclose(lse, scores.max(-1) + np.log(np.exp(scores - scores.max(-1, keepdims=True)).sum(-1))))

# %% [markdown]
# > This is how **ring attention** (lesson 13) spreads one sequence over several devices: each device holds a
# > block of keys, computes the partial result of its queries against the block it has, passes the block on, and
# > merges with the log-sum-exp. It is also how lesson 06 combined two passes over permuted keys.
#
# ## Skipping masked tiles: block-sparse FlashAttention
#
# A mask can be applied inside each tile (set masked scores to $-\infty$, as the exp then gives 0), but a tile with
# no allowed pair at all need not be visited: nothing it would add survives. With a **block layout** the loop
# simply skips those tiles (`R.block_sparse_attention` visits only the active ones). For a causal sliding window
# the work then grows as $n \cdot w$ instead of $n^2$:

# %%
n, d, block = 4096, 64, 64
p = P.SlidingWindow(256, causal=True)
layout = p.block_layout(n, block)
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
small = 512  # correctness on a prefix: visiting the active tiles in full is R.block_sparse_attention's result
qs, ks, vs, small_layout = q[:small], k[:small], v[:small], p.block_layout(small, block)
expanded = np.kron(small_layout, np.ones((block, block), dtype=bool))[:small, :small]  # the layout per token
print("skipping tiles == masking them:", np.allclose(
    R.block_sparse_attention(qs, ks, vs, small_layout, block), R.dense_attention(qs, ks, vs, mask=expanded),
    atol=1e-5))
print(f"tiles visited: {int(layout.sum())} of {layout.size} ({layout.mean():.1%})")

# %% tags=["nbval-ignore-output"]
t_all = C.time_fn(R.block_sparse_attention, q, k, v, np.ones_like(layout), block, repeats=3).min
t_skip = C.time_fn(R.block_sparse_attention, q, k, v, layout, block, repeats=3).min
print(f"every tile: {t_all * 1e3:.1f} ms; active tiles only: {t_skip * 1e3:.1f} ms; "
      f"speedup {t_all / t_skip:.1f}× (tile ratio {layout.size / layout.sum():.1f}×)")

# %% [markdown]
# The measured speedup follows the tile ratio: skipping a tile saves its whole cost, overhead included. That is the
# whole idea of block-sparse attention kernels (lesson 08 writes one in Triton): a block layout decides which tiles
# run, a token mask refines the partial ones, and the online softmax makes the tiles independent of each other.
#
# ## Summary
#
# - Softmax subtracts the row max so that no exponent is positive; the result is unchanged.
# - The online softmax keeps a running max $m$ and sum $\ell$, rescaling by $e^{m - m'}$ when the max grows; with an
#   accumulator for $\sum e^{s - m} v$ it gives attention one key tile at a time.
# - FlashAttention's forward: for each query block, fold every key tile into $(\mathrm{acc}, m, \ell)$, then divide.
#   Memory grows at most linearly in n (fitted exponent at most 1: at these sizes a fixed tile buffer is still a good
#   share of the peak), where dense attention's grows close to n².
# - A partial result is (output, log-sum-exp); two of them over disjoint keys merge exactly (ring attention).
# - Skipping tiles the layout turns off is block-sparse FlashAttention: time follows the active tiles.
#
# **Exercise:** [exercises/07_flash.ipynb](../exercises/07_flash.ipynb) — the online softmax, one tile update, the
# tiled forward and block-sparse skipping, each checked against dense attention.
