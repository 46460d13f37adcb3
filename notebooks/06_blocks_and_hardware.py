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
# # 06 · Blocks and hardware
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/06_blocks_and_hardware.ipynb)
#
# **Learning goals.** After this notebook you can
# - explain why attention kernels compute whole tiles, and what a tile costs when it is only partly allowed
# - compare token density with block density for every pattern, and see why strided columns touch every key block
# - measure dense, gather and block-sparse NumPy attention on your machine against their FLOP counts
# - choose a block size from measurements (wasted work against per-block overhead)
# - turn strided columns into dense blocks by permuting the keys

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Why kernels work in blocks
#
# A sparse pattern says which *pairs* matter. Hardware does not run pairs: it runs **tiles**. A GPU's tensor cores
# multiply 16 × 16 fragments, and an attention kernel loads a `block × d` tile of queries and one of keys into
# fast on-chip memory, multiplies them, and moves on. A CPU's BLAS does the same with its caches. Inside a tile
# the work is a dense matrix product, the fastest thing the chip does; gathering single keys one by one turns
# it back into scattered memory reads.
#
# So a kernel's question is not "is pair (i, j) allowed?" but "does tile (I, J) hold *any* allowed pair?". It
# computes every tile that does, in full, and masks inside it. Two consequences, both measured below:
#
# - a tile with one allowed pair costs as much as a full one (**wasted work**);
# - small tiles waste less, but each tile carries a fixed cost (a loop step, a kernel launch, a load) that
#   dominates when tiles are tiny (**overhead**).
#
# First, how fast is a tile on this machine? One `block × block` score tile costs `2 · block² · d` FLOPs:

# %%
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings; set before NumPy loads

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz

# %% tags=["nbval-ignore-output"]
rng = np.random.default_rng(0)
d = 64
tile_sizes = [4, 8, 16, 32, 64, 128, 256, 512]
rates = []
for b in tile_sizes:
    qt, kt = rng.standard_normal((2, b, d)).astype(np.float32)
    t = C.time_fn(np.matmul, qt, kt.T, repeats=20, warmup=3).min
    rates.append(2 * b * b * d / t / 1e9)  # GFLOP/s
    print(f"tile {b:>3} × {b:<3}: {t * 1e6:8.1f} µs   {rates[-1]:6.2f} GFLOP/s")

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=72)
ax.semilogx(tile_sizes, rates, "o-", base=2)
ax.set_xlabel("tile side (queries = keys)")
ax.set_ylabel("GFLOP/s (this machine)")
ax.set_title("small tiles cannot keep the multiplier busy")
fig.tight_layout()
plt.show()

# %% [markdown]
# Tiny tiles run at a fraction of the peak rate: the call overhead and the memory traffic are paid per tile, the
# arithmetic grows with its area. That is why kernels use 64 or 128 tokens per side, and why sparsity has to
# come in whole tiles to pay off.
#
# ## Token density vs block density
#
# The **token density** of a pattern is the fraction of pairs it allows; the **block density** is the fraction of
# tiles a kernel must compute. `viz.layout_stats` counts both, plus the wasted share of the computed pairs. The
# same sequence, the same block of 64, every pattern:

# %%
n, block = 2048, 64
gallery = {
    "SlidingWindow(256, causal)": P.SlidingWindow(256, causal=True),
    "DilatedWindow(64, 4)": P.DilatedWindow(64, 4),
    "Longformer(256, global 0..7)": P.Longformer(256, global_indices=range(8)),
    "BigBird(block 64)": P.BigBird(block=64),
    "AttentionSinks(4, 256)": P.AttentionSinks(4, 256),
    "Fixed(64, 8)": P.Fixed(64, 8),
    "Strided(45)": P.Strided(45),
    "RandomPattern(32)": P.RandomPattern(32, seed=0),
}
print(f"{'pattern':30} {'token density':>14} {'block density':>14} {'wasted':>8}")
for name, p in gallery.items():
    st = viz.layout_stats(p, n, block)
    print(f"{name:30} {p.density(n):>14.1%} {st['active_blocks'] / st['blocks']:>14.1%} {st['wasted_fraction']:>8.1%}")

# %% [markdown]
# Local patterns (windows, sinks, BigBird, which was *designed* in blocks) keep block density close to token
# density. Patterns whose allowed pairs are scattered do not: the dilated window, `Fixed`, `Strided` and random
# keys allow under 10% of the pairs yet switch on 15 to 100% of the tiles, and 80 to 98% of the work in those tiles
# is wasted. The pictures show why:

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=72)
for ax, name in zip(axes, ["SlidingWindow(256, causal)", "BigBird(block 64)", "Strided(45)"]):
    viz.plot_layout(gallery[name], n, block, ax=ax)
fig.tight_layout()
plt.show()

# %% [markdown]
# The strided pattern's columns (`(i - j) % 45 == 0`) cross **every key block** below the diagonal: each tile holds
# one or two allowed keys per row and is computed in full. On an H100 this is exactly what the course's anchors
# show: FlexAttention runs sliding windows 8× faster than dense causal attention at 16k tokens (ideal 8.3), but
# the strided pattern only 1.9× (ideal 28.7).
#
# ## Theoretical FLOPs vs measured time
#
# `complexity.attention_flops` counts the matmul work of three ways to execute a pattern: `"dense"` scores every
# pair and masks, `"gather"` scores only the allowed pairs (gathering each query's keys, as
# `R.sparse_attention` does), `"block_sparse"` scores every pair of every active tile (`R.block_sparse_attention`).
# The ideal speedup over dense is the FLOP ratio. Here is what this machine makes of it:

# %% tags=["nbval-ignore-output"]
n, d, block = 2048, 64, 64
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
cases = {"SlidingWindow(128)": P.SlidingWindow(128, causal=True), "Strided(45)": P.Strided(45)}
rows = []
for name, p in cases.items():
    mask, csr, layout = p.mask(n), p.neighbors(n), p.block_layout(n, block)
    t_dense = C.time_fn(R.dense_attention, q, k, v, mask=mask, repeats=3).min
    t_gather = C.time_fn(R.sparse_attention, q, k, v, csr, repeats=3).min
    t_block = C.time_fn(R.block_sparse_attention, q, k, v, layout, block, mask=mask, repeats=3).min
    for ex, t in (("dense", t_dense), ("gather", t_gather), ("block_sparse", t_block)):
        ideal = C.attention_flops(p, n, d, "dense") / C.attention_flops(p, n, d, ex, block=block)
        rows.append((name, ex, ideal, t_dense / t, t))
print(f"{'pattern':20} {'execution':13} {'ideal speedup':>14} {'measured':>9} {'time':>9}")
for name, ex, ideal, real, t in rows:
    print(f"{name:20} {ex:13} {ideal:>13.1f}× {real:>8.1f}× {t * 1e3:>6.1f} ms")

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), dpi=72, sharey=True)
for ax, name in zip(axes, cases):
    mine = [r for r in rows if r[0] == name]
    x = np.arange(len(mine))
    ax.bar(x - 0.2, [r[2] for r in mine], 0.4, label="ideal (FLOP ratio)")
    ax.bar(x + 0.2, [r[3] for r in mine], 0.4, label="measured on this machine")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(x, [r[1] for r in mine])
    ax.set_yscale("log")
    ax.set_title(f"{name}, n = {n}: speedup over dense")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the bars as three lessons:
#
# - **gather** does the fewest FLOPs and is usually the *slowest*: every query reads its own scattered keys,
#   row by row, and the arithmetic is vector-sized, never a matrix product. FLOPs are not time.
# - **block-sparse** on the sliding window gets a good part of its ideal: its tiles are matrix products and few
#   are wasted.
# - **block-sparse** on the strided pattern has an ideal of ≈ 2× only (half the tiles, the causal triangle, are
#   active) and the per-tile overhead comes on top: it lands near dense, often below it. The savings of its token
#   density never reach the hardware.
#
# ## Block size: wasted work against overhead
#
# Smaller tiles follow the pattern more closely (less waste), larger tiles run faster per pair (less overhead).
# For a causal window of 128 at `n = 4096`, count the computed pairs and time `R.block_sparse_attention` for each
# block size:

# %% tags=["nbval-ignore-output"]
n, d = 4096, 64
p = P.SlidingWindow(128, causal=True)
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
blocks = [16, 32, 64, 128, 256, 512]
waste, block_times = [], {}
for b in blocks:
    layout = p.block_layout(n, b)
    waste.append(viz.layout_stats(p, n, b)["wasted_fraction"])
    block_times[b] = C.time_fn(R.block_sparse_attention, q, k, v, layout, b, repeats=3).times
best = min(block_times, key=lambda b: min(block_times[b]))
for b, w in zip(blocks, waste):
    print(f"block {b:>3}: wasted {w:6.1%}   fastest of 3: {min(block_times[b]) * 1e3:7.2f} ms")
print("fastest block size on this machine:", best)

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(6, 3.6), dpi=72)
ax.semilogx(blocks, [min(block_times[b]) * 1e3 for b in blocks], "o-", base=2, label="time (ms)")
ax.set_xlabel("block size")
ax.set_ylabel("time (ms), this machine")
ax2 = ax.twinx()
ax2.semilogx(blocks, np.array(waste) * 100, "s--", color="tab:orange", base=2)
ax2.set_ylabel("wasted share of computed pairs (%)", color="tab:orange")
ax.axvline(best, color="k", lw=0.8, ls=":")
ax.set_title("SlidingWindow(128, causal), n = 4096")
fig.tight_layout()
plt.show()

# %% [markdown]
# Left of the optimum the per-block overhead dominates (many tiny matmuls, a Python loop step per block row);
# right of it the waste dominates (a 512-token tile around a 128-token window is mostly masked). Where exactly
# the optimum lies depends on the machine: a GPU kernel pays much less per tile than a NumPy loop, which is why
# GPU kernels favour 64 to 128. **Exercise 3** asks you to pick the block size from such a table.
#
# ## Explore
#
# Pick a pattern and a block size: the layout, the block density and the wasted share update.

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets

explore_patterns = {**gallery, "Strided(64)": P.Strided(64), "Causal": P.Causal()}


def show_layout(pattern="Strided(45)", block=64):
    p = explore_patterns[pattern]
    st = viz.layout_stats(p, 1024, block)
    fig, ax = plt.subplots(figsize=(4.6, 4.6), dpi=72)
    viz.plot_layout(p, 1024, block, ax=ax)
    plt.show()
    print(f"token density {p.density(1024):.1%}; block density {st['active_blocks'] / st['blocks']:.1%}")


widgets.interact(show_layout, pattern=list(explore_patterns),
                 block=widgets.SelectionSlider(options=[8, 16, 32, 64, 128, 256], value=64));

# %% [markdown]
# ## Permuting keys: strided columns become dense blocks
#
# The strided pattern is two patterns in one: a **local band** (`0 <= i - j < stride`: contiguous, cheap in tiles)
# and a **grid** (`i - j` a positive multiple of the stride: the columns that touch every tile). The grid only
# connects tokens with the same **residue** `t mod stride`. Reorder the tokens residue by residue,
# `[0, l, 2l, …, 1, 1 + l, …]`, and every residue becomes a contiguous run of `n / l` positions in which the grid
# is an ordinary causal triangle. (`saattn_edu.accel.permute` does this inside the Triton kernel, with strided
# pointers instead of copies; here we borrow its order for pictures.)

# %%
from saattn_edu.accel.permute import permutation

n, stride = 256, 16
p = P.Strided(stride)
i, j = np.arange(n)[:, None], np.arange(n)[None, :]
mask = p.mask(n)
grid = mask & ((i - j) % stride == 0) & (i != j)  # the strided columns (offsets stride, 2·stride, ...)
band = mask & ~grid  # the local band, diagonal included
order = permutation(n, stride)  # the kernel's residue-by-residue token order
grid_permuted = grid[np.ix_(order, order)]  # rows and columns in the new order
print("order starts:", order[:20], "...")
print("every allowed pair is in exactly one part:", np.array_equal(band | grid, mask) and not (band & grid).any())

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=72)
viz.plot_layout(mask, block=stride, ax=axes[0])
axes[0].set_title(f"Strided({stride}), token order\n{int(p.block_layout(n, stride).sum())} active blocks")
viz.plot_layout(band, block=stride, ax=axes[1])
axes[1].set_title(f"band, token order\n{int(viz.layout_stats(band, block=stride)['active_blocks'])} active blocks")
viz.plot_layout(grid_permuted, block=stride, ax=axes[2])
axes[2].set_title(f"grid, keys permuted by residue\n"
                  f"{int(viz.layout_stats(grid_permuted, block=stride)['active_blocks'])} active blocks")
fig.tight_layout()
plt.show()

# %% [markdown]
# In token order the pattern switches on the whole lower triangle of tiles. Split and permuted, the band needs two
# tiles per block row and the grid one diagonal tile per residue: a few dozen tiles instead of over a hundred, and
# all of them nearly full. Two passes over different key orders still make one softmax: each pass returns its
# partial output with its log-sum-exp, and lesson 07's merge combines them exactly. Here it is, with the
# references:

# %%
q, k, v = (rng.standard_normal((n, 32)) for _ in range(3))
out_band, lse_band = R.flash_attention(q, k, v, mask=band, return_lse=True)
out_grid_p, lse_grid_p = R.flash_attention(q[order], k[order], v[order], mask=grid_permuted, return_lse=True)
inverse = np.argsort(order)  # back to token order
out, _ = R.merge_partials(out_band, lse_band, out_grid_p[inverse], lse_grid_p[inverse])
print("two permuted passes == Strided attention:", np.allclose(out, R.dense_attention(q, k, v, mask=p)))
counts = {"token order": viz.layout_stats(p, n, stride)["computed_pairs"],
          "band + permuted grid": viz.layout_stats(band, block=stride)["computed_pairs"]
          + viz.layout_stats(grid_permuted, block=stride)["computed_pairs"]}
for name, c in counts.items():
    print(f"computed pairs, {name:22}: {c:>7,}  ({c / n**2:.1%} of dense)")

# %% [markdown]
# ## Summary
#
# - Kernels compute whole tiles: matrix products are fast, scattered reads are not. A tile with one allowed pair
#   costs a full tile.
# - Block density, not token density, sets the work of a block-sparse kernel. Local and block-designed patterns
#   keep the two close; strided columns and random keys touch almost every tile.
# - FLOPs are not time: the gather does the fewest FLOPs and can be the slowest; block-sparse gets close to its
#   (block-level) ideal.
# - Block size trades wasted work (large tiles) against per-tile overhead (small tiles); measure it.
# - Permuting tokens by residue turns strided columns into dense diagonal blocks; two passes merged by their
#   log-sum-exp give the exact result (lesson 07).
#
# **Exercise:** [exercises/06_blocks.ipynb](../exercises/06_blocks.ipynb) — block layouts, wasted work, the best
# block size from your own timings, and the residue order.
