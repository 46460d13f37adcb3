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
# # 03 · Global tokens and Longformer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/03_global_tokens_longformer.ipynb)
#
# **Learning goals.** After this notebook you can
# - explain global tokens as hubs: every pair connected within two hops
# - build Longformer as window + dilation + global tokens and count its cost
# - show, on a QA-style example, a global token reading the whole document in one layer
# - say how real Longformer differs from the pattern alone (separate global projections) and convert other
#   libraries' window sizes

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Global tokens
#
# A window is blind beyond its width. The cheapest repair is a handful of **global tokens**: `GlobalTokens(G)`
# allows $(i, j)$ whenever $i \in G$ or $j \in G$ — a global token attends to every token and every token attends
# to it. Each global token adds two full lines to the mask, about $2n$ pairs: linear, not quadratic.

# %%
import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz
from saattn_edu.viz import reachability

n = 64
window = P.SlidingWindow(5)
hub = window | P.GlobalTokens((0,))
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), dpi=72)
for ax, (name, p) in zip(axes, {"GlobalTokens((0, 40))": P.GlobalTokens((0, 40)), "SlidingWindow(5)": window,
                                "SlidingWindow(5) | GlobalTokens((0,))": hub}.items()):
    viz.plot_mask(p, n, ax=ax)
    ax.set_title(f"{name}\n{p.num_pairs(n)} pairs", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Hubs: every pair within two hops
#
# Think of the mask as a graph, an edge $i \to j$ when $i$ may attend to $j$. With a window alone, information
# travels $w/2$ tokens per layer. With one global token, *any* token reaches *any* other in two hops — up to the
# hub in layer 1, down from it in layer 2. `viz.reachability(pattern, n, hops)` computes the reachable pairs
# (boolean matrix powers, residual included):

# %%
for name, p in {"SlidingWindow(5)": window, "SlidingWindow(5) | GlobalTokens((0,))": hub}.items():
    fractions = [f"{reachability(p, n, hops).mean():6.1%}" for hops in (1, 2, 3)]
    print(f"{name:40} reachable pairs after 1, 2, 3 layers: {', '.join(fractions)}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), dpi=72)
for ax, (name, p) in zip(axes, {"window only": window, "window + 1 global token": hub}.items()):
    viz.plot_mask(reachability(p, n, 2), ax=ax)
    ax.set_title(f"{name}: reachable in 2 layers", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# > The hub is also a bottleneck: everything that crosses the sequence in two hops squeezes through one
# > d-dimensional vector per global token. Models use several (BigBird's ITC uses whole global blocks), and
# > keep the windows for local detail.
#
# ## Longformer = window + dilation + global
#
# Longformer (Beltagy et al., 2020) combines the three ideas: a (possibly dilated) sliding window in every layer,
# plus task-chosen global tokens — the `[CLS]` token for classification, the question tokens for QA. In this
# library it is exactly the union:

# %%
lf = P.Longformer(8, global_indices=(0, 31), dilation=2)
same = np.array_equal(lf.mask(64), (P.DilatedWindow(8, 2) | P.GlobalTokens((0, 31))).mask(64))
print(f"{lf!r} == DilatedWindow(8, 2) | GlobalTokens((0, 31)): {same}")

# %%
lf = P.Longformer(64, global_indices=tuple(range(4)))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=72)
viz.plot_mask(lf, 1024, block=64, ax=axes[0])
viz.plot_layout(lf, 1024, 64, ax=axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# Four global tokens switch on a whole block row and a whole block column: cheap in pairs, but every one of
# those tiles is mostly wasted work for a block kernel — one reason real kernels give global tokens their own
# dense path.
#
# Pairs grow as $n\,(w + 1) + 2\,g\,n$ for $g$ global tokens, so the density keeps falling as $1/n$:

# %%
lf = P.Longformer(512, global_indices=tuple(range(16)))
print(f"{lf!r}")
for n_ in [4096, 16384, 32768]:
    dense_flops = C.attention_flops(P.Dense(), n_, 64, execution="dense")
    flops = C.attention_flops(lf, n_, 64, execution="gather")
    print(f"n = {n_:>6,}: {lf.num_pairs(n_):>12,} pairs, density {lf.density(n_):6.2%}, "
          f"ideal speedup over dense {dense_flops / flops:5.1f}×")

# %% [markdown]
# ## A QA-style example: one global token sees the whole document
#
# A toy reading-comprehension setup with random vectors: 96 tokens, the first two are the *question*, and token
# 80 holds the *answer* — its key points the same way as the question's query, so a question token that can see
# it puts most of its attention there. With a window alone the question never sees token 80; make the question
# tokens global and it does, in one layer.

# %%
rng = np.random.default_rng(0)
n, d, question, answer = 96, 32, (0, 1), 80
q = 0.5 * rng.standard_normal((n, d)).astype(np.float32)
k = rng.standard_normal((n, d)).astype(np.float32)
v = rng.standard_normal((n, d)).astype(np.float32)
q[0] = 2.0 * k[answer]  # the question "asks for" the answer token

qa_patterns = {"window 16 only": P.SlidingWindow(16), "Longformer: window 16 + global question":
               P.Longformer(16, global_indices=question)}
probs = {}
for name, p in qa_patterns.items():
    out, probs[name] = R.dense_attention(q, k, v, mask=p.mask(n), return_probs=True)
    row = probs[name][0]
    cos = out[0] @ v[answer] / np.linalg.norm(out[0]) / np.linalg.norm(v[answer])
    print(f"{name:40} question attends most to token {int(row.argmax()):2d} "
          f"(p = {row.max():.2f}); cos(output, answer's value) = {cos:+.2f}")
print("every document token may attend to the question:", bool(qa_patterns[name].mask(n)[:, 0].all()))

# %%
viz.plot_attention_map(probs, vmax=0.25)  # colours saturate at 0.25 so that small weights stay visible

# %% [markdown]
# In the Longformer map, row 0 (the global question token) may look at the whole document and puts its weight
# on column 80; columns 0–1 light up because every token also reads the question. Everything else stays a thin
# band.
#
# ## Real Longformer: the global rows have their own projections
#
# The *pattern* `P.Longformer(w, global_indices)` is exactly Hugging Face's `LongformerSelfAttention` mask
# (`tests/test_conformance_hf_windows.py` probes it key by key). But real Longformer (Beltagy et al. 2020, §3.1)
# also gives global attention its **own linear projections**: the global tokens' rows attend to every key with
# $Q_g, K_g, V_g$, while every other row attends over its window and the global columns with the usual $Q, K, V$.
# Two sets of weights let a model learn a different kind of attention for its hubs (read the whole document) than
# for local reading. The course layer has it as an option:
#
#     SparseSelfAttention(d_model, n_heads, P.Longformer(w, globals), global_projections=True)  # adds qkv_global
#
# With the global projections equal to the local ones it is the plain pattern; with separate weights only the
# global rows change. The same test copies HF's weights into the layer and matches its outputs to 2e-5.

# %%
import torch

from saattn_edu.models import SparseSelfAttention

torch.manual_seed(0)
layer = SparseSelfAttention(32, 2, P.Longformer(16, global_indices=question), backend="torch",
                            global_projections=True)
x = torch.randn(1, n, 32)
with torch.no_grad():
    separate = layer(x)
    layer.qkv_global.load_state_dict(layer.qkv.state_dict())  # global projections := local ones
    shared = layer(x)
    changed = (separate - shared).abs().amax(-1)[0]
print("rows whose output depends on the global projections:", torch.nonzero(changed > 1e-6).flatten().tolist())

# %% [markdown]
# > Only the question rows (0 and 1) change: the other rows still *read* the global tokens' keys and values, but
# > through the local projections, as in Longformer.
#
# ## Window sizes: every library counts differently
#
# The same word "window" means different numbers of keys. The converters in `saattn_edu.patterns.conventions`
# (all tested in `tests/test_conformance_rules.py` and `tests/test_conformance_hf_windows.py`):
#
# | their parameter | keys per query | here |
# |---|---|---|
# | HF Longformer `attention_window=w` (even) | $w + 1$: $w/2$ per side | `P.Longformer(w, ...)` (`conventions.hf_longformer`) |
# | HF bidirectional `sliding_window=w` (`abs(q - kv) <= w`) | $2w + 1$: $w$ per side | `P.SlidingWindow(2 * w + 1)` |
# | HF / Mistral causal `sliding_window=W` (`kv > q - W`) | $W$, itself included | `P.SlidingWindow(W, causal=True)` |
# | attention-gym `generate_sliding_window(w)` (`q - kv <= w`) | $w + 1$ | `P.SlidingWindow(w + 1, causal=True)` |
# | attention-gym `generate_dilated_sliding_window(w, d)` | $\lceil w/d \rceil$ (counts tokens) | `P.DilatedWindow(ceil(w / d), d, causal=True)` (counts steps) |

# %%
from saattn_edu.patterns import conventions as conv

for p in [conv.hf_longformer(16), conv.hf_sliding_window(8, causal=False), conv.hf_sliding_window(8),
          conv.gym_sliding_window(8)]:
    print(f"{p!r:45} keys of a middle query: {len(p.neighbors(64).row(32))}")

# %% [markdown]
# ## Play with it
#
# A window plus `g` global tokens (the first `g` positions) at $n = 256$: the mask, its pairs and the fraction of
# all pairs connected within two layers. With `g = 0` only the window's neighbourhood is reached; one hub is
# enough to reach 100 %.

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets


def explore_hubs(g=1, window=5):
    n = 256
    p = P.SlidingWindow(window) | P.GlobalTokens(range(g))
    two_hops = reachability(p, n, 2).mean()
    print(f"{g} global token(s), window {window}: {p.num_pairs(n):,} pairs (density {p.density(n):.1%}); "
          f"reachable in 2 layers: {two_hops:.1%} of all pairs")
    fig, ax = plt.subplots(figsize=(4.4, 4.4), dpi=72)
    viz.plot_mask(p, n, ax=ax)
    plt.show()


widgets.interact(explore_hubs, g=(0, 8), window=(3, 33, 2));

# %% [markdown]
# ## Summary
#
# - Global tokens are hubs: with even one, every pair of tokens is connected within two layers, for about $2n$
#   extra pairs per global token.
# - Longformer = (dilated) sliding window ∪ global tokens; its cost stays linear in $n$. The pattern matches HF's
#   exactly; real Longformer adds separate global Q/K/V projections (`global_projections=True`).
# - Window parameters differ by one or by a factor of two between libraries: convert, don't guess.
# - Which tokens are global is a modelling decision (question, `[CLS]`); they see the whole document in one layer.
# - Global rows and columns switch on whole block rows and columns: a kernel question for lesson 06.
#
# **Exercise:** [exercises/03_global_tokens.ipynb](../exercises/03_global_tokens.ipynb) — add global tokens to a window
# and verify the two-hop property.
