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
# # 04 · Random attention and BigBird
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/04_random_and_bigbird.ipynb)
#
# **Learning goals.** After this notebook you can
# - read an attention pattern as a graph and measure its hop distances and diameter
# - explain, with measurements, why random edges are shortcuts (diameter ~ log n) and global blocks hubs (2)
# - build BigBird ITC from window, global and random blocks, and state what its defaults cost
# - tell apart the three BigBirds in circulation (the official code, the paper's description, DeepSpeed) and
#   Hugging Face's eval-mode behaviour

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## The attention graph
#
# Lesson 03 read a mask as a graph: an edge $i \to j$ when query $i$ may attend to key $j$. The **hop distance**
# from $i$ to $j$ is the fewest edges on a path: the number of layers before $i$'s output can depend on $j$. The
# **diameter** is the largest hop distance: how deep a model must be before every token can influence every other.
#
# BigBird (Zaheer et al., 2020) decides everything per *block*, so we draw its graph with one node per block (one
# node per token with `block=1`): a window, a few random blocks per row, and a few global blocks.
#
# > **Which BigBird?** Three versions circulate, and they differ in exactly the parts this lesson is about. This
# > course's `P.BigBird` follows the official one by default and names the others:
# >
# > | `variant=` | global blocks | random blocks | matches |
# > |---|---|---|---|
# > | `"itc"` (default) | the **first and the last** block | drawn by the official *planner*: for most lengths only among the first $2r+5$ blocks, never in the window | google-research/bigbird and Hugging Face `BigBirdBlockSparseAttention` in `train()`, exactly, per head (`tests/test_conformance_bigbird.py`) |
# > | `"hf_eval"` | first and last | **none**: HF's `eval()` points every random slot at block 0 (already global), so block 0's keys count $1+r$ times | HF in `eval()` (same test) |
# > | `"paper"` | the first `global_blocks` | $r$ distinct blocks, uniform over everything outside the window and the globals | the paper's description (what the exercise builds) |
# > | `"deepspeed"` | the first `global_blocks` | Python's `random.sample` anywhere in the row, window and globals included | DeepSpeed `BigBirdSparsityConfig` (re-derived, `tests/test_conformance_rules.py`) |

# %%
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings (as in lesson 00)

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz


# %%
# @title Helpers: hop counts from the library's receptive field (one query at a time), and this lesson's graphs
def layers_to_reach(adj, query):
    """(n,) layers until each token can influence `query` (0 for itself, -1 never): viz.receptive_field, grown
    until nothing new arrives."""
    n, layers = len(adj), 8
    while True:
        rf = viz.receptive_field(adj, layers=min(layers, n), query=query)  # (layers, n) booleans
        if rf[-1].all() or layers >= n or np.array_equal(rf[-1], rf[-2] if len(rf) > 1 else rf[-1]):
            first = np.where(rf.any(axis=0), rf.argmax(axis=0) + 1, -1)
            first[query] = 0
            return first
        layers *= 4


def graph_stats(adj):
    """(diameter, mean hop count over pairs i != j); diameter -1 when some pair is never connected."""
    hops = np.stack([layers_to_reach(adj, q) for q in range(len(adj))])  # (n, n)
    off = hops[~np.eye(len(adj), dtype=bool)]
    return (-1 if (off < 0).any() else int(off.max())), float(off[off > 0].mean())


def graphs(nb, seed=0):
    """Block graphs on nb blocks: window 3; + 3 uniform random blocks per row (the paper); + 3 random blocks as the
    official planner draws them; the official ITC (+ first and last block global)."""
    kw = dict(block=1, window_blocks=3, seed=seed)
    return {"window": P.BigBird(global_blocks=0, random_blocks=0, **kw).mask(nb),
            "window + uniform random": P.BigBird(global_blocks=0, random_blocks=3, variant="paper", **kw).mask(nb),
            "window + official random": P.BigBird(global_blocks=0, random_blocks=3, **kw).mask(nb),
            "official ITC": P.BigBird(global_blocks=2, random_blocks=3, **kw).mask(nb)}


# %%
fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), dpi=72)
for ax, (name, adj) in zip(axes, graphs(32).items()):
    viz.plot_mask(adj, ax=ax)
    diam, mean = graph_stats(adj)
    ax.set_title(f"{name}\ndiameter {diam}, mean hops {mean:.2f}", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Random edges are shortcuts
#
# With a window alone, information crawls one block per layer: the diameter is $n_b - 1$. A few *uniform* random
# edges per row change that completely — the graph becomes a *small world* (Watts & Strogatz, 1998): most pairs are
# a few hops apart, and the diameter grows like $\log n_b$ instead of $n_b$. BigBird's paper uses exactly this
# argument (random graphs are expanders).
#
# **The official code does not draw that graph.** Its planner takes every row's random blocks from the first
# $2r + 5 = 11$ blocks (for most lengths): all random edges point into the start of the sequence, so they do not make
# a small world — a late block still crawls along the window to reach another late block. What makes the real ITC's
# diameter small is its **global** first and last blocks: 2 hops, up to a hub and down from it. Measured on graphs
# of growing size:

# %%
sizes = [16, 32, 64, 128, 256]
table = {name: [] for name in graphs(16)}
print(f"{'blocks':>7}" + "".join(f"{name:>27}" for name in table))
for nb in sizes:
    row = []
    for name, adj in graphs(nb).items():
        diam, mean = graph_stats(adj)
        table[name].append((diam, mean))
        row.append(f"diam {diam:3d}, mean {mean:6.2f}")
    print(f"{nb:>7}" + "".join(f"{r:>27}" for r in row))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=72)
for name, stats in table.items():
    axes[0].plot(sizes, [s[0] for s in stats], "o-", label=name)
    axes[1].plot(sizes, [s[1] for s in stats], "o-", label=name)
for ax, what in zip(axes, ("diameter (layers to connect every pair)", "mean hop distance")):
    ax.set(xscale="log", yscale="log", xlabel="blocks n_b", title=what)
    ax.set_xticks(sizes, [str(s) for s in sizes])
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()


# %% [markdown]
# > The window-only line grows linearly, the uniform-random one logarithmically; the official planner's random
# > blocks barely help (its diameter still grows about linearly); the official ITC is flat at 2, thanks to its
# > global blocks. Depth is what a model pays for a large diameter: a 12-layer model with windows alone never
# > connects tokens more than 12 windows apart. The paper's expander argument is about uniform random blocks
# > (`variant="paper"`); the released code relies on the global blocks.
#
# ## BigBird ITC, built from blocks
#
# BigBird's *internal transformer construction* (ITC) combines the three parts at block level: block row $b_i$ may
# see block column $b_j$ when $|b_i - b_j| \le$ `window_blocks // 2`, when either is a global block (officially the
# **first and the last**; `global_blocks=2` splits as one at each end), or when $b_j$ is one of $b_i$'s
# `random_blocks` random blocks (the official planner, seeded: Hugging Face seeds it with the layer index). Coloured
# by which rule switches each block on — note that every green (random) block sits in the first 11 columns:

# %%
def parts(bb, nb):
    """(nb, nb) ints: 1 window, 2 global, 3 random, 0 off: the library's layouts with parts switched off."""
    kw = dict(block=bb.block, window_blocks=bb.window_blocks, seed=bb.seed, variant=bb.variant)
    window = P.BigBird(global_blocks=0, random_blocks=0, **kw).block_layout(nb * bb.block, bb.block)
    with_global = P.BigBird(global_blocks=bb.global_blocks, random_blocks=0, **kw).block_layout(nb * bb.block, bb.block)
    full = bb.block_layout(nb * bb.block, bb.block)
    return np.select([window, with_global, full], [1, 2, 3], default=0)


bb = P.BigBird(block=64, window_blocks=3, global_blocks=2, random_blocks=3, seed=0)
n = 2048
fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6), dpi=72)
cmap = plt.matplotlib.colors.ListedColormap(["white", "tab:blue", "tab:orange", "tab:green"])
axes[0].imshow(parts(bb, n // 64), cmap=cmap, vmin=0, vmax=3)
axes[0].set(title="block layout: window (blue), global (orange), random (green)", xlabel="key block",
            ylabel="query block")
viz.plot_mask(bb, n, block=64, ax=axes[1])
fig.tight_layout()
plt.show()
print("the token mask is the block layout blown up:",
      np.array_equal(bb.mask(n), np.kron(bb.block_layout(n, 64), np.ones((64, 64), dtype=bool))))

# %% [markdown]
# ## The default hyperparameters, and what they cost
#
# BigBird's defaults: `block=64`, 3 window blocks, 2 global blocks (first and last), 3 random blocks. A query in a
# middle block sees $(3 + 2 + 3) \cdot 64 = 512$ keys, whatever $n$; the 128 global queries see all $n$. So the pairs grow as
# $\approx 512\,n + 2 \cdot 128\,n$, linearly, and every computed block is full (the pattern is block-aligned:
# no wasted work inside a tile, unlike lesson 03's global tokens):

# %%
bb = P.BigBird()  # block=64, window_blocks=3, global_blocks=2, random_blocks=3, seed=0
print(repr(bb))
print(f"{'n':>7} {'pairs':>13} {'density':>8} {'pairs / n':>11} {'blocks':>13} {'ideal speedup':>14}")
for n_ in [1024, 4096, 16384, 65536]:
    layout = bb.block_layout(n_, 64)
    speedup = C.attention_flops(P.Dense(), n_, 64, execution="dense") / C.attention_flops(bb, n_, 64,
                                                                                        execution="block_sparse")
    print(f"{n_:>7,} {bb.num_pairs(n_):>13,} {bb.density(n_):>8.2%} {bb.num_pairs(n_) / n_:>11.0f} "
          f"{int(layout.sum()):>6}/{layout.size:<6} {speedup:>13.1f}×")

# %%
viz.plot_layout(bb, 4096, 64)

# %% [markdown]
# Below about 1,024 tokens BigBird *is* nearly dense (8 blocks cover everything), which is why the paper uses it for
# long inputs only; Hugging Face's model switches to full attention by itself up to $(2r + 5) \cdot 64 = 704$ tokens. At 4,096 tokens a block-sparse kernel computes about one block in seven (the layout's title gives the share).
#
# ## Hugging Face in `eval()` mode: no random blocks, and one block counted four times
#
# Hugging Face's `BigBirdBlockSparseAttention` draws random blocks only in training. In `eval()` it keeps the random
# *slots* of its kernel but fills them with block 0, the first (already global) block. Its softmax concatenates
# window, global and random keys, so a middle query lists block 0's keys $1 + r$ times: attention over a multiset.
# `variant="hf_eval"` has that key set, `key_counts(n)` the counts, and `R.multiset_attention` the output — equal to
# HF's to fp32 rounding in `tests/test_conformance_bigbird.py`:

# %%
n_small = 640
ev = P.BigBird(block=32, variant="hf_eval")
csr, counts = ev.key_counts(n_small)
row = 320  # a middle query
keys, c = csr.row(row), counts[csr.indptr[row] : csr.indptr[row + 1]]
print(f"query {row}: {len(keys)} distinct keys in blocks {sorted(set((keys // 32).tolist()))}")
print(f"block 0's keys counted {c[keys < 32][0]} times, the others once")
rng = np.random.default_rng(1)
q, k, v = (rng.standard_normal((n_small, 16)) for _ in range(3))
hf_like = R.multiset_attention(q, k, v, csr, counts)
as_set = R.sparse_attention(q, k, v, ev)
print(f"set softmax vs HF's multiset softmax: max difference {np.abs(hf_like - as_set).max():.3f}")

# %% [markdown]
# So an HF BigBird evaluated with `model.eval()` attends differently from the same model in training (no random
# blocks, and extra weight on the first block). Both are what the released code does; neither is the paper's
# uniform random graph.
#
# ## Measured on this machine
#
# `R.block_sparse_attention` skips the blocks the layout switches off; dense attention computes every pair. Both
# are NumPy, one BLAS thread, fastest of two runs:

# %% tags=["nbval-ignore-output"]
rng = np.random.default_rng(0)
d = 64


def qkv(n):
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(3)]


ns_bb, ns_dense = [1024, 2048, 4096, 8192], [1024, 2048, 4096]
t_bb = [C.time_fn(R.block_sparse_attention, *qkv(n), bb.block_layout(n, 64), 64, repeats=2).min for n in ns_bb]
t_dense = [C.time_fn(R.dense_attention, *qkv(n), repeats=2).min for n in ns_dense]
for n, t in zip(ns_bb, t_bb):
    dense = dict(zip(ns_dense, t_dense)).get(n)
    print(f"n = {n:5,}: BigBird {t * 1e3:7.1f} ms" + (f", dense {dense * 1e3:7.1f} ms" if dense else ""))
print(f"fitted: BigBird ∝ n^{C.fit_power_law(ns_bb, t_bb)[0]:.2f}, dense ∝ n^{C.fit_power_law(ns_dense, t_dense)[0]:.2f}")

# %% tags=["nbval-ignore-output"]
viz.plot_timings({"BigBird (block-sparse)": (ns_bb, t_bb), "dense": (ns_dense, t_dense)})


# %% [markdown]
# BigBird's fitted exponent comes out well below dense attention's ≈ 2, though above 1: at 1,024 tokens BigBird is
# still more than half dense (little to skip yet), so the smallest sizes are not in the linear regime, and the
# 128 global rows are dense at every size. Run the cell again on a quiet machine: the gap stays.
#
# ## Explore
#
# Move the sliders: the block layout on `nb` blocks, its density and the attention graph's diameter and mean hop
# distance. Try `random_blocks = 0` with `global_blocks = 0` (a plain window), then add one random block; then switch
# `variant` to `"itc"` (the official planner) and watch where the random blocks go.

# %% tags=["nbval-ignore-output"]
def explore(nb=48, window_blocks=3, global_blocks=0, random_blocks=1, seed=0, variant="paper"):
    p = P.BigBird(block=1, window_blocks=window_blocks, global_blocks=global_blocks, random_blocks=random_blocks,
                  seed=seed, variant=variant)
    adj = p.mask(nb)
    diam, mean = graph_stats(adj)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=72)
    ax.imshow(adj, cmap="Blues", interpolation="nearest")
    ax.set_title(f"density {adj.mean():.1%}, diameter {diam}, mean hops {mean:.2f}", fontsize=9)
    plt.show()


widgets.interact(explore, nb=(8, 96, 8), window_blocks=(1, 9, 2), global_blocks=(0, 4), random_blocks=(0, 6),
                 seed=(0, 20), variant=["paper", "itc", "deepspeed", "hf_eval"]);

# %% [markdown]
# ## Summary
#
# - Read as a graph, a window alone has a diameter that grows linearly with the length; a few **random** edges per
#   row make it logarithmic (a small world), and **global** blocks make it 2. We measured all three.
# - BigBird ITC = window ∪ global ∪ random, decided per block: exact, block-aligned, no waste inside tiles.
# - The official code (and HF in training) makes the first and last blocks global and draws random blocks only near
#   the start; the paper's uniform random blocks are `variant="paper"`, DeepSpeed's layout `variant="deepspeed"`;
#   HF in `eval()` has no random blocks and counts block 0 $1 + r$ times. Conformance: `tests/test_conformance_bigbird.py`.
# - Its defaults (block 64, 3 window, 2 global, 3 random blocks) give 512 keys per query and linear cost; they only
#   pay off beyond about 1,024 tokens.
#
# **Exercise:** [exercises/04_bigbird.ipynb](../exercises/04_bigbird.ipynb) — build BigBird's layout and random
# blocks yourself (the paper's description: the first blocks global, uniform random blocks), and compute hop
# distances and diameters.
