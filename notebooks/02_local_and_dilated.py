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
# # 02 · Local and dilated windows
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/02_local_and_dilated.ipynb)
#
# **Learning goals.** After this notebook you can
# - define sliding and dilated windows, causal and not, and count their pairs (≈ n·w)
# - explain how stacking layers widens the receptive field, and why dilation leaves gaps
# - measure that windowed attention's time grows linearly in n, dense attention's quadratically

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Sliding windows
#
# Most of what a token needs is nearby. A **sliding window** lets query $i$ see the keys within a fixed distance:
# `SlidingWindow(w)` allows $|i - j| \le \lfloor w/2 \rfloor$, and `SlidingWindow(w, causal=True)` allows the
# $w$ keys $i-w < j \le i$ (what Mistral and Gemma's local layers use for generation).

# %%
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings at the end (as in lesson 00)

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz
from saattn_edu.viz import receptive_field

windows = {
    "SlidingWindow(9)": P.SlidingWindow(9),
    "SlidingWindow(9, causal)": P.SlidingWindow(9, causal=True),
    "DilatedWindow(5, 3)": P.DilatedWindow(5, 3),
    "DilatedWindow(5, 3, causal)": P.DilatedWindow(5, 3, causal=True),
}
fig, axes = plt.subplots(1, 4, figsize=(14, 3.8), dpi=72)
for ax, (name, p) in zip(axes, windows.items()):
    viz.plot_mask(p, 40, ax=ax)
    ax.set_title(f"{name}\n{p.num_pairs(40)} pairs", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# A **dilated** window keeps the same number of keys but spaces them `dilation` apart: the same cost reaches
# `dilation` times further, with gaps in between.
#
# Each row holds at most $w$ keys, so a window costs about $n \cdot w$ pairs instead of $n^2$:

# %%
n, w = 4096, 257
p = P.SlidingWindow(w)
print(f"{p!r} at n = {n}: {p.num_pairs(n):,} pairs; n·w = {n * w:,}; dense n² = {n * n:,}")
print(f"edge rows see fewer keys, so pairs < n·w by {n * w - p.num_pairs(n):,} = 2 · (1 + 2 + … + {w // 2})")

# %% [markdown]
# ## Receptive field through layers
#
# One window layer only mixes neighbours, yet windowed models read whole documents. The reason is stacking:
# after layer 1 token $i$ holds information from $i \pm w/2$; layer 2 attends to tokens that already hold
# their own neighbourhoods, so the reach doubles, and so on. `viz.plot_receptive_field` follows it with repeated
# boolean products (the residual stream keeps what was already reached):

# %%
viz.plot_receptive_field(P.SlidingWindow(9), 96, layers=4, query=48)

# %%
rf = receptive_field(P.SlidingWindow(9), 96, layers=4, query=48)
for layer, reach in enumerate(rf, start=1):
    print(f"{layer} layer(s): {int(reach.sum()):3d} tokens   (1 + 2·L·(w//2) = {1 + 2 * layer * (9 // 2)})")

# %% [markdown]
# The field grows **linearly** with depth: $L$ layers of window $w$ see about $L \cdot w$ tokens. A 4k-token
# window over 32 layers reaches about 131k tokens — in principle; in practice information fades along long paths.
#
# ### Dilation's gaps
#
# A dilated window reaches further per layer, but only along its grid: stacking dilation-4 windows never reaches a
# token whose distance is not a multiple of 4.

# %%
viz.plot_receptive_field(P.DilatedWindow(5, 4), 96, layers=3, query=48)

# %%
rf = receptive_field(P.DilatedWindow(5, 4), 96, layers=3, query=48)
offsets = np.nonzero(rf[-1])[0] - 48
print("reached offsets after 3 layers:", offsets.tolist())
print("all multiples of 4:", bool(np.all(offsets % 4 == 0)))

# %% [markdown]
# Longformer's fix: different dilations in different layers (and heads). Local windows in the lower layers fill
# the gaps that dilated windows leave in the upper ones. `receptive_field` accepts one pattern per layer, listed
# from the query's layer downwards:

# %%
stacks = {
    "3 × SlidingWindow(5)": [P.SlidingWindow(5)] * 3,
    "Dilated(5, 8) → Dilated(5, 4) → Sliding(5)": [P.DilatedWindow(5, 8), P.DilatedWindow(5, 4), P.SlidingWindow(5)],
}
for name, layers in stacks.items():
    reach = receptive_field(layers, 96, layers=3, query=48)[-1]
    span = np.nonzero(reach)[0]
    contiguous = span[-1] - span[0] + 1 == len(span)
    print(f"{name:45} {len(span):3d} tokens, from {span[0]} to {span[-1]}, no gaps: {contiguous}")

# %%
viz.plot_receptive_field(stacks["Dilated(5, 8) → Dilated(5, 4) → Sliding(5)"], 96, layers=3, query=48)

# %% [markdown]
# Same cost per layer (5 keys per query), but the mixed stack covers a contiguous span several times wider.
#
# ## O(n·w), measured
#
# `R.sparse_attention` computes only the allowed pairs (for a window: a band of keys around each query). Its
# time should grow **linearly** in $n$ at fixed $w$, while dense attention grows as $n^2$. We time both (one BLAS thread, fastest of three repeats, as in lesson 00) and fit the
# exponents:

# %% tags=["nbval-ignore-output"]
rng = np.random.default_rng(0)
d, w = 64, 64


def qkv(n):
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(3)]


ns_window = [65536, 131072, 262144, 524288]  # large enough that per-call overheads fade
t_window = [C.time_fn(R.sparse_attention, *qkv(n), P.SlidingWindow(w), repeats=3).min for n in ns_window]
ns_dense = [256, 512, 1024, 2048]
t_dense = [C.time_fn(R.dense_attention, *qkv(n), repeats=3).min for n in ns_dense]

print(f"window {w}, time ∝ n^{C.fit_power_law(ns_window, t_window)[0]:.2f}")
print(f"dense,      time ∝ n^{C.fit_power_law(ns_dense, t_dense)[0]:.2f}")

# %% tags=["nbval-ignore-output"]
viz.plot_complexity({f"SlidingWindow({w})": P.SlidingWindow(w)}, ns_window, d=d,
                    measured={f"window {w}": (ns_window, t_window), "dense": (ns_dense, t_dense)})

# %% [markdown]
# The fits printed above give an exponent ≈ 1 for the window and ≈ 2 for dense; on a busy
# machine a fit can drift by a few tenths (fixed per-call costs pull the small sizes up): run the cell again.
# Counted FLOPs (left panel) are exact; wall-clock time also pays for memory traffic and bookkeeping. Lesson 06 comes back to this gap between counted and measured cost.

# %% [markdown]
# ## Play with it
#
# Move the sliders: the receptive field of token 48 (of 96) through a stack of identical windows. With
# `dilation = 1` the window is a plain sliding window; try `dilation = 4` and count the gaps, then add layers.

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets
from IPython.display import display


def explore_rf(window=9, dilation=1, layers=3):
    p = P.SlidingWindow(window) if dilation == 1 else P.DilatedWindow(window, dilation)
    reach = receptive_field(p, 96, layers=layers, query=48)[-1]
    print(f"{p!r}, {layers} layer(s): token 48 hears from {int(reach.sum())} tokens")
    display(viz.plot_receptive_field(p, 96, layers=layers, query=48))


widgets.interact(explore_rf, window=(3, 17, 2), dilation=(1, 6), layers=(1, 5));

# %% [markdown]
# > **Which implementation this matches.** `SlidingWindow(W, causal=True)` is Mistral's sliding window exactly
# > (Hugging Face's mask and decode cache: `kv > q - W`, W keys including the query itself), shown by
# > `tests/test_conformance_hf_windows.py`. Other libraries count windows differently: attention-gym's
# > `generate_sliding_window(w)` keeps w + 1 keys (`saattn_edu.patterns.conventions.gym_sliding_window(w)`), Hugging Face's
# > bidirectional `sliding_window=w` is w per side (`hf_sliding_window(w, causal=False)` = `SlidingWindow(2w + 1)`);
# > attention-gym's dilated window counts tokens where ours counts steps. Every conversion is in `docs/patterns.md`
# > and tested in `tests/test_conformance_rules.py`.
#
# ## Summary
#
# - A window of $w$ keys costs $O(n \cdot w)$ pairs; its measured time grows linearly in $n$.
# - Stacking $L$ window layers widens the receptive field linearly, to about $L \cdot w$ tokens.
# - Dilation reaches further at the same cost but leaves gaps; mixing dilations across layers fills them.
#
# **Exercise:** [exercises/02_local_attention.ipynb](../exercises/02_local_attention.ipynb) — implement sliding-window
# attention and check it against the dense reference.
