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
# # 01 · The patterns gallery
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/01_patterns_gallery.ipynb)
#
# **Learning goals.** After this notebook you can
# - read an attention mask (rows are queries, columns keys) and its density
# - recognise every pattern of the library: windows, dilation, global tokens, strided, fixed, random, block-sparse, BigBird, Longformer, sinks, 2-D
# - compare patterns by pairs, density and block layout, and explore them with a widget

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Reading a mask
#
# A sparse attention pattern is a boolean $n \times n$ matrix: row $i$ is a query, column $j$ a key, and a
# coloured cell means *query $i$ may attend to key $j$*. Everything else scores $-\infty$ before the softmax, so
# it gets probability 0 and costs nothing if the implementation skips it. Hover over the cells:

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import patterns as P, viz

viz.plot_mask(P.SlidingWindow(5, causal=True), 16, engine="plotly")


# %% [markdown]
# Row 9 may look at keys 5…9: a causal window of 5. The title counts the allowed pairs and the **density**,
# pairs / n²: the fraction of dense attention's work that is left.
#
# ## Every pattern of the library
#
# `saattn_edu.patterns` holds each pattern of the course, all with the same views (`mask`, `neighbors`,
# `block_layout`, `num_pairs`, `density`). `library(n)` builds one of each for a sequence of `n` tokens (the image
# patterns take a √n × √n image):

# %%
# @title Helpers: one of each pattern, and a side-by-side drawing
def band_layout(nb):
    """A block layout for BlockSparse: the diagonal, the block below it, and block column 0."""
    layout = np.eye(nb, dtype=bool) | np.eye(nb, k=-1, dtype=bool)
    layout[:, 0] = True
    return layout


def library(n):
    side = math.isqrt(n)
    return {
        "Dense": P.Dense(),
        "Causal": P.Causal(),
        "SlidingWindow(32)": P.SlidingWindow(32),
        "SlidingWindow(32, causal)": P.SlidingWindow(32, causal=True),
        "DilatedWindow(16, 4)": P.DilatedWindow(16, 4),
        "GlobalTokens((0, 128))": P.GlobalTokens((0, 128)),
        "Strided(16)": P.Strided(16),
        "Fixed(32, c=4)": P.Fixed(32, 4),
        "RandomPattern(8)": P.RandomPattern(8, seed=0),
        "BlockSparse(block 32)": P.BlockSparse(band_layout(n // 32), 32),
        "BigBird(block 16)": P.BigBird(block=16, window_blocks=3, global_blocks=1, random_blocks=2, seed=0),
        "Longformer(32, (0,), dil. 2)": P.Longformer(32, (0,), dilation=2),
        "AttentionSinks(4, 32)": P.AttentionSinks(4, 32),
        "Local2D(radius 2)": P.Local2D(side, side, 2),
        "Axial2D": P.Axial2D(side, side),
    }


def gallery(patterns, n, cols=5):
    rows = math.ceil(len(patterns) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), dpi=72)
    for ax, (name, p) in zip(axes.flat, patterns.items()):
        viz.plot_mask(p, n, ax=ax)
        ax.set_title(f"{name}\ndensity {p.density(n):.3f}", fontsize=8)
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    for ax in list(axes.flat)[len(patterns):]:
        ax.axis("off")
    fig.tight_layout()
    plt.show()


# %%
gallery(library(256), 256)

# %% [markdown]
# > Three families show up. **Local** patterns (windows, dilated windows, `Local2D`) keep a band around the diagonal.
# > **Hub** patterns (`GlobalTokens`, sinks, Longformer's and BigBird's global blocks) add full rows and columns.
# > **Structured long-range** patterns (strided, fixed, random, axial) add sparse off-diagonal structure so that
# > far-apart tokens meet in few layers. Lessons 02–05 take them one at a time.
#
# ## Densities
#
# How much of dense attention is left, as the sequence grows? Window-like patterns keep a constant number of keys
# per query, so their density falls as 1/n; dense and causal stay at 1 and ½.

# %%
ns = [256, 1024, 4096]
print(f"{'pattern':30}" + "".join(f"{'n = ' + str(n):>22}" for n in ns))
tables = {n: library(n) for n in ns}
for name in tables[ns[0]]:
    cells = [f"{tables[n][name].num_pairs(n):>12,} ({tables[n][name].density(n):6.1%})" for n in ns]
    print(f"{name:30}" + "".join(f"{c:>22}" for c in cells))

# %% [markdown]
# ## The block layout a kernel sees
#
# Fast kernels do not skip single pairs: they skip whole `block × block` tiles. A tile with even one allowed
# pair must be computed in full, and the masked pairs inside it are **wasted work**. `viz.plot_layout` shows the
# tiles: blue ones are full, orange ones partly useful (the printed share is the useful part).

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=72)
viz.plot_layout(P.SlidingWindow(48, causal=True), 512, 64, ax=axes[0])
viz.plot_layout(P.Strided(32), 512, 64, ax=axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# The strided pattern's columns touch every key block: almost every tile is computed for a few useful pairs.
# Lesson 06 measures what that does to wall-clock time.
#
# ## Explore
#
# Pick a pattern and move the sliders: the mask, the block layout, the density, the FLOPs, the ideal speedup
# over dense (dense FLOPs / sparse FLOPs) and the wasted fraction inside computed blocks update together.
# Sliders a pattern ignores are greyed out. **time it** runs dense and sparse NumPy attention at the chosen n and
# adds the point to a timing plot (time two sizes to get fitted exponents).

# %% tags=["nbval-ignore-output"]
panel = viz.explorer()
panel

# %% [markdown]
# The panel keeps its numbers in `panel.state`, and its controls in `panel.controls`, so code can drive it too:

# %% tags=["nbval-ignore-output"]
panel.controls["pattern"].value = "SlidingWindow"
panel.controls["n"].value = 2048
panel.controls["window"].value = 256
panel.controls["block"].value = 64

# %%
for key in ("pattern", "n", "pairs", "density", "ideal_speedup", "wasted_fraction"):
    value = panel.state[key]
    print(f"{key:16} {value:.4g}" if isinstance(value, float) else f"{key:16} {value}")

# %% [markdown]
# ## Summary
#
# - A pattern is a boolean mask; its density (pairs / n²) is the fraction of dense work left.
# - Local, hub and structured long-range patterns trade coverage for cost differently; windows keep O(n·w) pairs.
# - Kernels work in tiles: a pattern's block layout, not its density alone, sets the real cost.
#
# **Exercise:** [exercises/01_patterns.ipynb](../exercises/01_patterns.ipynb) — write masks yourself and check them.
