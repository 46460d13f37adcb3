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
# # 10 · Learned sparsity: LSH, routing, top-k blocks, indexers
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/10_learned_sparsity.ipynb)
#
# Every pattern so far was fixed before the model saw a single token: a window, a stride, a few global tokens.
# But attention is *data-dependent*: which keys matter to a query depends on what the query and keys say. The
# patterns of this lesson look at `q` and `k` first and then choose, cheaply, which pairs to compute.
#
# **Learning goals**
# - build four data-dependent selections: Reformer's **LSH buckets**, the Routing Transformer's **k-means
#   clusters**, MoBA / NSA's **top-k key blocks**, and DeepSeek's **indexer top-k**;
# - see, for one query, which keys each method keeps over its dense attention row;
# - measure honestly: the attention mass a selection captures, the output error, and the compute it costs,
#   *the selection's own work included*.

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %%
import time

import numpy as np
from plotly.subplots import make_subplots
import ipywidgets as widgets

from saattn_edu import quality as Q
from saattn_edu import reference as R
from saattn_edu.patterns.learned import IndexerTopK, KMeansRouting, LSHBuckets, TopKBlocks

# %% [markdown]
# ## Data worth selecting from
#
# On random `q` and `k`, every query spreads its attention almost evenly: there is nothing to find, and every
# selection looks the same. Real attention heads are peaked on a few keys, often on tokens *about the same thing*
# wherever they sit. `Q.clustered_qkv` imitates that: tokens come in runs of 64 on one of 16 topics, and a query
# and a key of the same topic have a logit about `sharpness² = 4` above the rest. The runs of one topic are
# scattered over the sequence, so a local window cannot find most of them.

# %%
n, d = 1024, 64
q, k, v = Q.clustered_qkv(n, d, n_topics=16, segment=64, sharpness=2.0, seed=0)  # (n, d) each
dense = Q.dense_reference(q, k, v)  # dense probabilities (n, n) and output (n, d), computed once
p_sorted = np.sort(dense.probs, axis=1)[:, ::-1]  # each row, largest first
for m in (16, 64, 256):
    print(f"the top {m:3d} keys of a row hold {p_sorted[:, :m].sum(1).mean():.2f} of its attention mass")

# %% [markdown]
# A handful of keys per query holds most of the mass: that is what a selection has to find, without first
# computing the `n²` scores that would tell it where they are.
#
# ## The four methods
#
# | method | chooses by | unit | selection cost |
# |---|---|---|---|
# | `LSHBuckets(n_buckets, n_hashes, chunk)` (Reformer) | random rotations: bucket = argmax `[xR ; −xR]`, sort by bucket, attend to own + previous chunk (Hugging Face's rules by default, below) | token | `n·d·b/2` per round + a sort |
# | `KMeansRouting(n_clusters, iters)` (Routing Transformer) | spherical k-means over queries and keys: attend within the cluster | token | `iters·2n·C·d` |
# | `TopKBlocks(block, k)` (MoBA, NSA) | mean query of the block · mean key of each block, keep the `k` best (current block always) | block | `(n/B)²·d` |
# | `IndexerTopK(k, index_dim)` (DeepSeek DSA) | a cheap `r`-dimensional score of every pair, keep the top `k` keys | token | `n²·r` |
#
# Each has `build(q, k)`, which returns a fixed object every attention path takes: a `CSR` (token level) or a
# `BlockSparse` pattern (block level), so `R.sparse_attention(q, k, v, method.build(q, k))` just works, and the
# block layout `TopKBlocks.select(q, k)` is what a block-sparse kernel consumes. `IndexerTopK(k, None)` scores with
# the exact `q·k`: the *oracle* top-k, the best any `k` keys per query can do, at the price of dense scores.
#
# Reformer ties queries and keys (shared QK); this data has separate `q` and `k`, so the comparisons below use
# `LSHBuckets.teaching(..., shared_qk=False)`: queries and keys hashed and sorted together, each round chunked on
# its own, equal buckets required in the window — a teaching extension, not a Reformer implementation. The
# Reformer rules themselves are in *Inside LSH*.

# %%
methods = {
    "LSH (16 buckets, 2 rounds)": LSHBuckets.teaching(n_buckets=16, n_hashes=2, chunk=64, shared_qk=False),
    "k-means (16 clusters)": KMeansRouting(n_clusters=16, iters=10),
    "top-4 blocks of 64": TopKBlocks(block=64, k=4),
    "indexer top-64, r=16": IndexerTopK(k=64, index_dim=16),
    "oracle top-64": IndexerTopK(k=64, index_dim=None),
}
built = {name: m.build(q, k) for name, m in methods.items()}
csrs = {name: (sel if hasattr(sel, "indptr") else sel.neighbors(n)) for name, sel in built.items()}
for name, csr in csrs.items():
    print(f"{name:28s} {csr.nnz / n:6.1f} keys per query on average")


# %% [markdown]
# ## See it: one query, five selections
#
# The grey bars are the dense attention row of one query (its probability over all 1024 keys); the coloured
# markers are the keys a method selected. The title gives the share of the row's mass the method captured.

# %%
# @title Helper: dense attention row with each method's selected keys
def row_figure(i, names=None):
    """Dense attention row of query i, one panel per method, selected keys marked."""
    names = list(names or csrs)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"{nm}: {dense.probs[i, csrs[nm].row(i)].sum():.0%} of the mass, "
                                        f"{len(csrs[nm].row(i))} keys" for nm in names])
    keys = np.arange(n)
    for r, nm in enumerate(names, start=1):
        sel = csrs[nm].row(i)
        fig.add_bar(x=keys, y=dense.probs[i].round(6), marker_color="lightgrey", showlegend=False, row=r, col=1)
        fig.add_scatter(x=sel, y=dense.probs[i, sel].round(6), mode="markers", marker=dict(size=4),
                        showlegend=False, row=r, col=1)
    fig.update_layout(height=140 * len(names) + 80, title=f"Query {i}: which keys each method keeps",
                      bargap=0, margin=dict(t=90, b=40))
    fig.update_xaxes(title_text="key j", row=len(names), col=1)
    return fig


# %%
row_figure(300)

# %% [markdown]
# LSH and k-means find far-away runs of the same topic: they compare directions, not positions. Top-k blocks
# keeps whole 64-token blocks, a coarse but kernel-friendly choice; the indexer picks single tokens by a noisy
# 16-dimensional score and misses some of the best ones that the oracle keeps.
#
# ## Play with it
#
# Pick a query and the methods to compare. (Widgets need a live kernel: run the notebook.)

# %% tags=["nbval-ignore-output"]
widgets.interact(
    lambda query, methods: row_figure(query, methods).show(),
    query=widgets.IntSlider(value=300, min=0, max=n - 1, step=1, continuous_update=False),
    methods=widgets.SelectMultiple(options=list(csrs), value=list(csrs)[:3], rows=5),
);

# %% [markdown]
# ## Inside LSH: sort by bucket, then chunk
#
# Buckets have uneven sizes (one topic may hold 200 tokens, another 20), so Reformer does not attend bucket by
# bucket: it sorts the tokens by `(bucket, position)`, cuts the sorted order into equal chunks and lets each
# chunk see itself and the previous chunk. In sorted order the selection is a narrow band, whatever the data:
# the same shape a fixed local window has, applied to a reordered sequence. Left: the selection of one hash round
# in token order; right: the same pairs with rows and columns sorted by bucket (shared QK, 256 tokens, Hugging
# Face's rules): a band two chunks wide, the first chunk wrapping around to the last one (top-right corner), and an
# empty diagonal — a query does not attend to its own key.

# %%
small = LSHBuckets(n_buckets=8, n_hashes=1, chunk=32, seed=0)  # shared QK (Reformer): hash the queries only
qs = q[:256]
mask = small.build(qs).to_mask()  # (256, 256)
buckets = small.select(qs)[0][0]  # (256,) bucket of every token, first round
order = np.lexsort((np.arange(256), buckets))  # by bucket, then position
fig = make_subplots(rows=1, cols=2, subplot_titles=["token order", "sorted by bucket"])
for c, m_ in enumerate([mask, mask[np.ix_(order, order)]], start=1):
    fig.add_heatmap(z=m_.astype(int), colorscale=[[0, "white"], [1, "navy"]], showscale=False, row=1, col=c)
fig.update_yaxes(autorange="reversed")
fig.update_layout(height=380, width=760, title=f"LSH pairs: {mask.sum() / 256**2:.1%} of the 256² grid")
fig

# %% [markdown]
# ### Reformer as Hugging Face computes it
#
# The paper's description leaves details to the implementation; Hugging Face's `LSHSelfAttention` (the Reformer
# most people run) fixes them, and `LSHBuckets` follows it by default — key sets, multiplicities and outputs
# match to fp32 rounding in `tests/test_conformance_reformer.py`:
#
# | rule | Hugging Face (default here) | `LSHBuckets.teaching(...)` |
# |---|---|---|
# | hash rounds | all sorted into **one** sequence (round, bucket, position), chunked together | each round chunked on its own |
# | window | own chunk + previous chunk, **wrapping around** (first chunk sees the last) | own + previous, no wrap |
# | buckets in the window | need **not** match (`same_bucket=False`) | must match (the paper's $P_i$) |
# | own key | masked unless it is the only one (shared QK: $q_i \cdot q_i$ would dominate) | kept |
# | merging rounds | softmax over the **multiset**: a key two rounds chose counts twice | set union |
#
# The merge is the subtle one: HF computes each round's output and log-sum-exp and mixes the rounds by
# $\mathrm{softmax}$ of their log-sum-exps, which is exactly one softmax over every (round, key) listing. A key
# that several rounds (or a wrap-around window) list counts several times — `key_counts` gives the counts,
# `R.lsh_attention` the outputs. The set union is a different attention:

# %%
hf = LSHBuckets(n_buckets=8, n_hashes=4, chunk=32, seed=0)  # Reformer's rules, 4 rounds
qk, vs = q[:256], v[:256]
csr, counts = hf.key_counts(qk)
print(f"keys per query: {csr.nnz / 256:.1f} distinct, {counts.sum() / 256:.1f} listings; "
      f"most-listed key counted {counts.max()} times")
out_hf = R.lsh_attention(qk, vs, hf)  # what Hugging Face computes
for name, other in {"set union": LSHBuckets(8, 4, 32, seed=0, merge="union"),
                    "teaching variant": LSHBuckets.teaching(8, 4, 32, seed=0)}.items():
    diff = np.abs(R.lsh_attention(qk, vs, other) - out_hf).max() / np.abs(out_hf).max()
    print(f"{name:17s}: {other.build(qk).nnz / 256:5.1f} keys per query, "
          f"largest difference from HF's output = {diff:.2f} × HF's largest entry")

# %% [markdown]
# The union drops the duplicates HF counts; the teaching variant also keeps each query's own key, which with
# shared QK scores highest in its row ($q_i \cdot q_i / |q_i| = |q_i|$) and takes most of the weight — the reason
# Reformer masks it.

# %% [markdown]
# ## Measure it: captured mass against compute
#
# A selection is worth what it captures *per unit of work*. The work counts the attention on the selected pairs
# (`2·d` multiply-adds each: `q·k`, then `p·v`) **plus the selection itself**: hashing, clustering, block scores,
# the indexer's `n²·r` scores. Both are divided by dense attention's `2·n²·d`. Each method sweeps its knob:

# %%
sweeps = {
    "LSH rounds (16 buckets)": Q.sweep(lambda h: LSHBuckets.teaching(16, h, 64, shared_qk=False), [1, 2, 4, 8],
                                       q, k, v),
    "LSH buckets (4 rounds)": Q.sweep(lambda b: LSHBuckets.teaching(b, 4, 64, shared_qk=False), [4, 8, 32, 64],
                                      q, k, v),
    "k-means clusters": Q.sweep(lambda c: KMeansRouting(c, 10), [4, 8, 16, 32, 64], q, k, v),
    "top-k blocks of 64": Q.sweep(lambda kb: TopKBlocks(64, kb), [1, 2, 4, 8, 12], q, k, v),
    "indexer top-k, r=16": Q.sweep(lambda kk: IndexerTopK(kk, 16), [16, 64, 128, 256], q, k, v),
    "oracle top-k": Q.sweep(lambda kk: IndexerTopK(kk, None), [16, 64, 128, 256], q, k, v),
}
print(f"{'method':24s} {'knob':>5s} {'keys/query':>10s} {'selection':>9s} {'total cost':>10s} {'mass':>5s} {'error':>6s}")
for name, rows in sweeps.items():
    for r in rows:
        print(f"{name:24s} {r['value']:5d} {r['pairs'] / n:10.1f} {r['selection_cost'] / Q.dense_cost(n, d):9.3f} "
              f"{r['relative_cost']:10.3f} {r['captured_mass']:5.2f} {r['output_error']:6.2f}")

# %%
fig = make_subplots(rows=1, cols=2, subplot_titles=["captured attention mass", "relative output error"])
for name, rows in sweeps.items():
    x = [round(r["relative_cost"], 6) for r in rows]  # rounded: the last bits move with BLAS threads
    for c, key in enumerate(["captured_mass", "output_error"], start=1):
        fig.add_scatter(x=x, y=[round(r[key], 6) for r in rows], mode="lines+markers", name=name, legendgroup=name,
                        showlegend=c == 1, text=[f"knob={r['value']}" for r in rows], row=1, col=c)
fig.update_xaxes(type="log", title_text="compute / dense (attention + selection)")
fig.update_yaxes(range=[0, 1.02], row=1, col=1)
fig.update_yaxes(type="log", row=1, col=2)
fig.update_layout(height=420, title="What each method captures for what it costs (n=1024, d=64)")
fig


# %% [markdown]
# What the curves say:
# - **Top-k blocks** is the cheapest selector by far (`(n/64)²` block scores) and, on data that comes in
#   contiguous runs, captures most of the mass; its weakness is granularity: a block is kept or dropped whole.
# - **The oracle** shows the ceiling: a few dozen keys per query hold most of the mass, but finding them exactly
#   costs the dense `n²·d` scores, so its total cost never drops below the dense score half.
# - **The indexer** makes that search cheaper (`n²·r`, `r = 16 ≪ d`); with *random* projections it misses
#   many of the oracle's keys. DeepSeek trains its indexer to agree with the attention it replaces, which is
#   what closes the gap; the `n²·r` term remains, so it pays off for long `n` and large `d` (and in FP8).
# - **LSH** costs almost nothing to select but needs several rounds, and many pairs, to catch most close
#   neighbours; **k-means** finds the topics well but its Lloyd iterations cost as much as the attention saved
#   at this size (the Routing Transformer learns its centroids once, during training, and only assigns at
#   inference: `2n·C·d`).
#
# > Output error and captured mass are two views of one thing: dropping mass `1 − m` from a row changes its
# > softmax weights by that much. The error is relative to the dense output, which averages many keys and is
# > small, so it magnifies misses.
#
# ## Measure it: wall clock
#
# Counted work is not time. In NumPy on a CPU, the selection and the sparse gather have overheads dense matmuls
# do not: the numbers below are machine-dependent and will vary run to run.

# %% tags=["nbval-ignore-output"]
def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)

t_dense = best_of(lambda: R.dense_attention(q, k, v))
print(f"dense attention                 {t_dense * 1e3:7.1f} ms")
for name, m in methods.items():
    t_sel = best_of(lambda: m.build(q, k))
    sel = built[name]
    t_att = best_of(lambda: R.sparse_attention(q, k, v, sel))
    print(f"{name:30s}  select {t_sel * 1e3:6.1f} ms + attend {t_att * 1e3:6.1f} ms")

# %% [markdown]
# At `n = 1024` dense attention is one fast matrix product: sparse paths only win once `n` is large and
# the kernel skips work in hardware-friendly units, which is why MoBA and NSA select *blocks* (lesson 06, 08).
#
# ## Takeaways
# - A data-dependent pattern is two steps: a cheap **selection** from `q` and `k`, then exact attention on the
#   selected pairs; `build(q, k)` freezes the first step into a CSR or a block layout every path accepts.
# - Judge it by the **mass it captures for the work it costs**, selection included: a selector as expensive as
#   the scores it avoids (exact top-k, k-means fitted per input) saves nothing.
# - Block selection trades precision for kernel efficiency; token selection (LSH, routing, indexer) is precise but
#   needs gathers.
# - "Reformer LSH" is a family: `LSHBuckets` matches Hugging Face's `LSHSelfAttention` (one sorted sequence of all
#   rounds, wrap-around chunks, no self, rounds merged over the multiset of keys); `LSHBuckets.teaching` is the
#   simpler rule the figures started from.
#
# Next: `exercises/10_learned_sparsity.ipynb`: write LSH bucketing, top-k block selection and the captured-mass
# metric yourself.
