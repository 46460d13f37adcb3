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
# # 11 · Accuracy vs efficiency: tiny models trained with each pattern
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/11_accuracy_vs_efficiency.ipynb)
#
# **Learning goals.** After this notebook you can
# - train a tiny transformer with a different attention pattern in every layer, on a task with a known answer
# - predict from the receptive field when a sparse model must fail, and see it fail
# - read attention maps of a trained model, per layer and head
# - place models on an accuracy-vs-FLOPs chart and find the Pareto front; judge hybrids with one dense layer

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## The question
#
# Lessons 02–10 counted what sparse patterns *save*. This one asks what they *cost*: train the same tiny transformer
# with different attention patterns on a task whose answer we know, and put accuracy next to attention FLOPs.
#
# The task is **needle retrieval** (`saattn_edu.models.NeedleRetrieval`): a sequence of random filler tokens holds
# one *value* token (the needle, one of 8) somewhere `distance` tokens before the end; the last token asks which
# value it was. Chance is 1/8. The model is an encoder (every layer sees both directions) of a few layers, each
# with its own pattern: `TinyTransformer(..., layers=[P.SlidingWindow(9), P.Dense()])`.

# %%
import json
from pathlib import Path

from IPython.display import display

import matplotlib.pyplot as plt
import numpy as np
import torch

from saattn_edu import patterns as P, viz
from saattn_edu.models import NeedleRetrieval, TinyTransformer, set_threads, train

set_threads()  # every core this machine has
task = NeedleRetrieval(seq_len=64, distance=(32, 60))
x, y = task.batch(1, seed=0)
needle = int(np.flatnonzero((x[0] >= 2) & (x[0] < 10))[0])
print("tokens:", x[0].tolist())
print(f"needle: token {x[0, needle].item()} at position {needle}, {63 - needle} tokens before the query; "
      f"answer at the last position: {y[0, -1].item()}")


# %% [markdown]
# ## Reach: how far can the last token see?
#
# A non-causal `SlidingWindow(w)` lets token `i` see `|i − j| ≤ w // 2`. Stacking layers adds the reaches: after
# `L` layers the last token has heard from tokens up to `L · (w // 2)` away, and from nothing farther. Here the
# needle is 32–60 tokens away, so two windows of 9 (reach 8) **cannot** see it, whatever they learn. One dense layer
# reaches everything, at `n²` pairs.

# %%
def reach(layers, n):
    """Tokens the last position can hear from after the stack (through allowed pairs, layer by layer)."""
    seen = np.zeros(n, dtype=bool)
    seen[-1] = True
    for p in reversed(layers):  # walk back from the top layer: who can reach someone already seen?
        seen = (p.mask(n) & seen[:, None]).any(0) | seen
    return int(n - 1 - np.flatnonzero(seen)[0])

n = task.seq_len
for name, layers in {"2 × window 9": [P.SlidingWindow(9)] * 2, "dense + window 9": [P.Dense(), P.SlidingWindow(9)],
                     "2 × Longformer(9, global 0)": [P.Longformer(9, global_indices=(0,))] * 2}.items():
    flops = TinyTransformer(task.vocab_size, n, layers, d_model=32, n_heads=2).attention_flops()
    print(f"{name:28s} reach {reach(layers, n):2d} tokens   attention FLOPs {flops:>9,} "
          f"({flops / (2 * 4 * n * n * 32):.0%} of dense)")

# %% [markdown]
# ## Train two models, live
#
# Both have 2 layers, `d_model = 32`, 2 heads, and train for 150 steps with the same seed (about 5–15 s each on
# 2 cores). `train` returns the accuracy curve on 256 held-out examples, the wall time and the FLOPs per step.

# %% tags=["nbval-ignore-output"]
live = {"2 × window 9": [P.SlidingWindow(9)] * 2, "dense + window 9": [P.Dense(), P.SlidingWindow(9)]}
models, results = {}, {}
for name, layers in live.items():
    torch.manual_seed(0)
    models[name] = TinyTransformer(task.vocab_size, task.seq_len, layers, d_model=32, n_heads=2)
    results[name] = train(models[name], task, steps=150, batch_size=32, seed=0, eval_every=25, progress=False)
    r = results[name]
    print(f"{name:18s} accuracy {r.final_accuracy:.2f}   {r.wall_time:.1f} s   "
          f"attention FLOPs/step {r.attention_flops_per_step:,}   all FLOPs/step {r.flops_per_step:,}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, r in results.items():
    ax.plot(r.steps, r.accuracy, "o-", label=name)
ax.axhline(1 / 8, color="grey", ls=":", label="chance")
ax.set(xlabel="training step", ylabel="held-out accuracy", ylim=(0, 1.05), title="needle 32–60 tokens away")
ax.legend()
plt.show()

# %% [markdown]
# The sliding-window model stays near chance: the answer is outside its reach, so no amount of training helps.
# The hybrid's single dense layer lets the needle's information land at the query once, and that is enough.
#
# ## Attention maps of a real model
#
# These are the trained models' attention probabilities, per layer and head, on one example (rows are queries,
# columns keys). The sliding layers are bands. In the hybrid, look at the **last row** of the dense layer: the query
# token has learned to look at the needle's column.

# %%
ex_x, _ = task.batch(1, seed=1)
needle = int(np.flatnonzero((ex_x[0] >= 2) & (ex_x[0] < 10))[0])
for name, model in models.items():
    maps = model.attention_maps(ex_x)  # one (1, heads, n, n) tensor per layer
    probs = {f"{name}: layer {l}, head {h}": m[0, h].numpy() for l, m in enumerate(maps) for h in range(m.shape[1])}
    fig = viz.plot_attention_map(probs)  # viz returns its figure (detached from pyplot): display shows it
    fig.suptitle(f"{name} (needle at column {needle})", y=1.02)
    display(fig)

# %% tags=["nbval-ignore-output"]
dense_layer = models["dense + window 9"].attention_maps(ex_x)[0][0]  # (heads, n, n)
for h in range(dense_layer.shape[0]):
    row = dense_layer[h, -1]
    print(f"hybrid, dense layer, head {h}: the query puts {row[needle]:.0%} of its attention on the needle "
          f"(its top key is position {int(row.argmax())})")

# %% [markdown]
# ## The full picture: the committed sweep
#
# `benchmarks/accuracy_vs_efficiency.py` trains 3-layer models (`d_model 32`, 2 heads, windows of 9, blocks and
# strides of 8) with every pattern of the course — dense, sliding,
# dilated, Longformer, BigBird, strided, attention sinks, a learned method (top-k blocks) and hybrids with one dense
# layer at the bottom, middle or top — at two sequence lengths and two needle distances, with two seeds where the
# answer is not obvious. It takes about 15–25 minutes on 2 cores, so the lesson loads its committed results.

# %%
path = Path("../benchmarks/results/accuracy_vs_efficiency.json")
sweep = json.loads(path.read_text()) if path.exists() else None
if sweep is None:
    print("the sweep's results ship with the repository (benchmarks/results/); clone it to see them here")
else:
    print(sweep["meta"]["task"], "·", sweep["meta"]["model"], "·", sweep["meta"]["steps"], "steps")
    dense = {r["n"]: r["dense_attention_flops"] for r in sweep["rows"]}  # the all-dense model's cost per n
    rows = sorted(sweep["summary"], key=lambda s: (s["n"], s["distance_label"] != "near", s["attention_flops"]))
    print(f"{'n':>4} {'needle':6} {'pattern':14} {'accuracy':>8} {'seeds':>5} {'attn FLOPs':>11} {'of dense':>8}")
    for s in rows:
        print(f"{s['n']:>4} {s['distance_label']:6} {s['config']:14} {s['accuracy_mean']:8.2f} {s['seeds']:>5} "
              f"{s['attention_flops']:>11,.0f} {s['attention_flops'] / dense[s['n']]:8.0%}")


# %%
def pareto(points):
    """Indices of the points that no other point beats on both cost and accuracy, by increasing cost."""
    front, best = [], -1.0
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[i][1] > best:
            front, best = front + [i], points[i][1]
    return front

if sweep is not None:
    settings = sorted({(s["n"], s["distance_label"]) for s in sweep["summary"]}, key=lambda t: (t[0], t[1] != "near"))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.8), sharey=True)
    for ax, (n_, label) in zip(axes, settings):
        rows = [s for s in sweep["summary"] if s["n"] == n_ and s["distance_label"] == label]
        pts = [(s["attention_flops"], s["accuracy_mean"]) for s in rows]
        for s, (fx, acc) in zip(rows, pts):
            ax.scatter(fx, acc, s=25)
            ax.annotate(s["config"], (fx, acc), fontsize=7, xytext=(3, 2), textcoords="offset points")
        front = pareto(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1)
        ax.axhline(1 / 8, color="grey", ls=":")
        ax.set(xscale="log", xlabel="attention FLOPs / sequence", title=f"n={n_}, {label} needle", ylim=(0, 1.08))
    axes[0].set_ylabel("accuracy (mean over seeds)")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# How to read it (the numbers are in `benchmarks/NOTES.md`; 250 training steps per model):
# - **Near needle** (4–12 tokens, inside the windows' reach of 3 · 4 = 12): every pattern solves it but pure
#   dilation (its offsets are multiples of 4, so most needle positions are unreachable), so the cheapest ones sit
#   on the Pareto front (the dashed line: no other model is both cheaper and more accurate).
# - **Far needle** (32–60 tokens at n = 64; 64–120 at n = 128): sliding windows, dilated windows and attention
#   sinks stay at chance — the answer is outside their receptive field, so training cannot help. Patterns with a
#   short path to anywhere *can* succeed, if training finds the route: BigBird did at n = 64 (where its blocks
#   cover 64 % of the pairs), strided and the learned top-k blocks did for one seed of two; Longformer's single
#   global token, a two-hop relay, was not learned in 250 steps, nor was BigBird's at n = 128.
# - **Hybrids**: one dense layer out of three buys the far needle back at 42 % (n = 64) and 38 % (n = 128) of the
#   dense cost. At the **bottom** it solved every run; in the middle or on top it trained less reliably
#   (0.64–1.0): the dense layer is easiest to use when it sees the raw tokens.
#
# > FLOPs are not time. On this CPU every path runs as masked SDPA at these tiny sizes, so the wall-clock axis
# > barely moves (see the PNG next to the JSON); on a GPU at long n the block-sparse kernel turns the saved pairs
# > into saved time (lessons 06 and 08).

# %% [markdown]
# ## Play with it
#
# Back to the two models trained above: pick one, a layer and a head, and read that head's attention on the
# example (the needle's column is in the title). Compare the last row of the hybrid's dense layer with the same
# row of the window model.

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets


def explore_heads(model="dense + window 9", layer=0, head=0):
    maps = models[model].attention_maps(ex_x)  # one (1, heads, n, n) tensor per layer
    row = maps[layer][0, head, -1]
    title = f"{model}: layer {layer}, head {head} (needle at column {needle})"
    print(f"the query puts {row[needle]:.0%} of its attention on the needle; its top key is {int(row.argmax())}")
    display(viz.plot_attention_map({title: maps[layer][0, head].numpy()}))


first = next(iter(models.values()))
widgets.interact(explore_heads, model=list(models), layer=(0, len(first.blocks) - 1), head=(0, first.n_heads - 1));

# %% [markdown]
# ## Summary
#
# - Accuracy is decided by **reach**: a stack of windows sees `layers × window / 2` tokens each way; a dependency
#   farther than that stays at chance however long you train, while dense attention, global tokens or random
#   shortcuts give a short path to anywhere (if training finds it).
# - **Hybrids** buy that reach cheaply: one dense layer at the bottom with cheap windows above it solved the far
#   needle at a fraction of the all-dense attention FLOPs.
# - FLOPs become time only with a block-sparse kernel at long n (lessons 06 and 08).
#
# ## Try it
#
# `exercises/11_hybrid_design.ipynb`: given an attention-FLOP budget, choose a pattern per layer that passes an
# accuracy bar; the grader trains your design with a fixed seed.
