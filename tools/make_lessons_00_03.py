"""Author lessons 00–03 (notebooks/) with nbformat; then execute them with tools/execute_notebooks.py.

    .venv/bin/python tools/make_lessons_00_03.py && .venv/bin/python tools/execute_notebooks.py notebooks/0[0-3]_*.ipynb

The notebooks are the product; this script is how they are written, so an edit here and a re-run regenerates
them (outputs come from executing, never from this file).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/{name}.ipynb)")
SETUP = '''# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()'''


def build(name: str, title: str, goals: list[str], cells: list) -> nbf.NotebookNode:
    """A notebook: header (title, badge, goals), the Colab setup cell, then the lesson's cells."""
    header = f"# {title}\n\n{BADGE.format(name=name)}\n\n**Learning goals.** After this notebook you can\n"
    header += "\n".join(f"- {g}" for g in goals)
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(header), nbf.v4.new_code_cell(SETUP, metadata={"tags": ["colab-setup"]})]
    for kind, text, tags in cells:
        meta = {"tags": list(tags)} if tags else {}
        if kind == "md":
            nb.cells.append(nbf.v4.new_markdown_cell(text.strip("\n"), metadata=meta))
        else:
            nb.cells.append(nbf.v4.new_code_cell(text.strip("\n"), metadata=meta))
    return nb


IGNORE = ("nbval-ignore-output",)  # measured numbers, widgets: they change run to run


def md(text):
    return ("md", text, ())


def code(text, tags=()):
    return ("code", text, tags)


# ---------------------------------------------------------------------------------------------------------------
# 00 — why attention is quadratic
# ---------------------------------------------------------------------------------------------------------------
L00 = [
    md("""
## Attention in one line

For one head, queries $Q$, keys $K$ and values $V$ are $n \\times d$ matrices (one row per token) and

$$\\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}\\!\\left(\\frac{QK^\\top}{\\sqrt d}\\right) V .$$

The product $QK^\\top$ is an $n \\times n$ matrix: one score for every (query, key) pair. That matrix is the whole
story of this course. Let us write it in NumPy, then measure what it costs.
"""),
    code("""
import math
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings (see the aside below); set before NumPy loads

import tracemalloc

import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz
"""),
    code('''
def attention(q, k, v):
    """softmax(q kᵀ / √d) v for one head; q, k, v are (n, d)."""
    d = q.shape[-1]
    scores = q @ k.T / math.sqrt(d)  # (n, n): one score per (query, key) pair
    scores -= scores.max(axis=-1, keepdims=True)  # subtract the row max so exp never overflows
    probs = np.exp(scores)  # (n, n)
    probs /= probs.sum(axis=-1, keepdims=True)  # each row now sums to 1
    return probs @ v  # (n, d)


rng = np.random.default_rng(0)
n, d = 256, 64
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
out = attention(q, k, v)
print("output shape:", out.shape)
print("matches the course reference R.dense_attention:", np.allclose(out, R.dense_attention(q, k, v), atol=1e-5))
'''),
    md("""
Each row of `probs` says how much one query takes from every key. For a ten-token sentence with random
embeddings (a model would learn them) the matrix is small enough to read:
"""),
    code("""
tokens = "the cat sat on the mat because it was warm".split()
x = np.random.default_rng(1).standard_normal((len(tokens), 16)).astype(np.float32)
_, probs = R.dense_attention(x, x, x, return_probs=True)
viz.plot_attention_map(probs, tokens=tokens, titles=["every query scores every key: 10 × 10"])
"""),
    md("""
## Memory: n² numbers per head

The score matrix has $n^2$ entries. In fp32 that is $4n^2$ bytes, **per head and per layer**, before the
softmax makes a second copy. The table computes it:
"""),
    code('''
# @title Helper: human-readable bytes
def fmt_bytes(b):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if b < 1000:
            return f"{b:.3g} {unit}"
        b /= 1000
    return f"{b:.3g} PB"
'''),
    code("""
print(f"{'n':>10} {'scores (n²)':>18} {'fp32 per head':>14}")
for n_ in [1_024, 4_096, 16_384, 65_536, 100_000, 1_000_000]:
    print(f"{n_:>10,} {n_ * n_:>18,} {fmt_bytes(4 * n_ * n_):>14}")
"""),
    md("""
## Time and memory, measured on this machine

Counting is one thing; let us time `attention` for growing $n$ and record its peak memory with `tracemalloc`
(NumPy reports its allocations to it). If both grow as $n^2$, a straight line on log-log axes has slope 2:
`C.fit_power_law` fits $t \\approx c\\, n^{p}$ and returns the exponent $p$.

> Timing on a shared machine is noisy. The first code cell limits NumPy's BLAS to one thread (a multi-threaded
> matmul waits for its slowest core, which makes small sizes erratic when other programs run), and we keep the
> fastest of three repeats, the run least disturbed by anything else.
"""),
    code("""
ns = [256, 512, 1024, 2048, 4096]
times, peaks = [], []
for n_ in ns:
    q, k, v = (rng.standard_normal((n_, d)).astype(np.float32) for _ in range(3))
    times.append(C.time_fn(attention, q, k, v, repeats=3).min)
    tracemalloc.start()
    attention(q, k, v)
    peaks.append(tracemalloc.get_traced_memory()[1])  # the peak since start()
    tracemalloc.stop()
    print(f"n = {n_:>5}: {times[-1] * 1e3:8.2f} ms   peak memory {fmt_bytes(peaks[-1]):>9}")

t_exp, _ = C.fit_power_law(ns, times)
m_exp, _ = C.fit_power_law(ns, peaks)
print(f"fitted exponents: time ∝ n^{t_exp:.2f}, peak memory ∝ n^{m_exp:.2f}")
""", IGNORE),
    md("""
The memory exponent printed above is ≈ 2, as counted: the peak is the score matrix plus the `probs` copy. The
time exponent is ≈ 2 as well, give or take a few tenths: fixed per-call overheads flatten the curve at small
$n$, and at large $n$ the score matrix no longer fits in the CPU caches, which steepens it.

The figure puts the measurement next to the counts of `saattn_edu.complexity` (FLOPs = 4 · pairs · d, bytes a
straightforward implementation moves), with a sliding window of 256 tokens as a preview of the cure:
"""),
    code("""
viz.plot_complexity({"sliding window 256": P.SlidingWindow(256)}, [2**e for e in range(9, 18)], d=64,
                    measured={"dense NumPy, this machine": (ns, times)})
""", IGNORE),
    md("""
## Where the memory runs out

Our `attention` needs a fixed number of bytes per score (measured above, at the largest n). Divide this
machine's memory by it and you get the longest sequence one head can handle before anything else is stored:
"""),
    code("""
ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
bytes_per_score = peaks[-1] / ns[-1] ** 2
n_max = int(math.sqrt(ram / bytes_per_score))
print(f"this machine: {fmt_bytes(ram)} of RAM; our attention peaks at {bytes_per_score:.1f} bytes per score")
print(f"=> one head of dense attention runs out of memory near n ≈ {n_max:,} tokens")
""", IGNORE),
    md("""
> A GPU does not escape the square. An 80 GB accelerator holding one fp32 score matrix and nothing else tops out
> at $n = \\sqrt{80\\cdot10^9 / 4}$:
"""),
    code("""
print(f"80 GB / 4 bytes per score → n ≈ {math.isqrt(80 * 10**9 // 4):,} tokens for a single head")
"""),
    md("""
## The 100,000-token example

A long document, a code base, a book chapter: 100k tokens is an ordinary request today. Dense attention over it:
"""),
    code("""
n_long, d_head = 100_000, 64
scores = n_long * n_long
dense_flops = C.attention_flops(P.Dense(), n_long, d_head, execution="dense")
print(f"n = {n_long:,} tokens → {scores:.0e} scores per head per layer")
print(f"fp32 score matrix: {4 * scores / 1e9:.0f} GB per head per layer")
print(f"FLOPs for one head (4·n²·d, d = {d_head}): {dense_flops:.2e}")

window = P.SlidingWindow(512)
sparse_flops = C.attention_flops(window, n_long, d_head, execution="gather")
print(f"{window!r}: {window.num_pairs(n_long):,} pairs, density {window.density(n_long):.4f}, "
      f"{sparse_flops:.2e} FLOPs → {dense_flops / sparse_flops:.0f}× fewer")
"""),
    md("""
## Play with it

Pick a sequence length and a number format: the cell counts one head's score matrix, its FLOPs and the bytes a
straightforward implementation moves, for dense attention and for a 256-token sliding window. Double $n$ and
watch dense grow four-fold while the window only doubles.
"""),
    code("""
import ipywidgets as widgets


def costs(n=16_384, dtype="float32"):
    d = 64
    print(f"n = {n:,}, d = {d}, {dtype}: the score matrix alone is {fmt_bytes(n * n * C.dtype_bytes(dtype))}")
    for name, p, execution in [("dense", P.Dense(), "dense"), ("SlidingWindow(256)", P.SlidingWindow(256), "gather")]:
        flops = C.attention_flops(p, n, d, execution=execution)
        moved = C.attention_bytes(p, n, d, dtype=dtype, execution=execution)
        print(f"{name:>20}: {flops:9.2e} FLOPs, {fmt_bytes(moved):>9} moved")


widgets.interact(costs, n=widgets.SelectionSlider(options=[2**e for e in range(10, 21)], value=16_384),
                 dtype=["float32", "bfloat16", "float16", "float64"]);
""", IGNORE),
    md("""
## Summary

- Dense attention builds an $n \\times n$ score matrix: memory and work grow as $n^2$ (we measured the exponent
  on this machine and fitted it above).
- At 100k tokens one head's fp32 scores take 40 GB, far beyond one machine's memory for a whole model.
- A pattern that lets each query see only some keys (here a 512-token window) cuts the work by the printed
  factor. Which keys to keep, and what is lost, is the rest of the course.

**Next:** [01 — the patterns gallery](01_patterns_gallery.ipynb): every pattern of the library, drawn.
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# 01 — patterns gallery
# ---------------------------------------------------------------------------------------------------------------
L01 = [
    md("""
## Reading a mask

A sparse attention pattern is a boolean $n \\times n$ matrix: row $i$ is a query, column $j$ a key, and a
coloured cell means *query $i$ may attend to key $j$*. Everything else scores $-\\infty$ before the softmax, so
it gets probability 0 and costs nothing if the implementation skips it. Hover over the cells:
"""),
    code("""
import math

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import patterns as P, viz

viz.plot_mask(P.SlidingWindow(5, causal=True), 16, engine="plotly")
"""),
    md("""
Row 9 may look at keys 5…9: a causal window of 5. The title counts the allowed pairs and the **density**,
pairs / n²: the fraction of dense attention's work that is left.

## Every pattern of the library

`saattn_edu.patterns` holds each pattern of the course, all with the same views (`mask`, `neighbors`,
`block_layout`, `num_pairs`, `density`). `library(n)` builds one of each for a sequence of `n` tokens (the image
patterns take a √n × √n image):
"""),
    code('''
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
        ax.set_title(f"{name}\\ndensity {p.density(n):.3f}", fontsize=8)
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    for ax in list(axes.flat)[len(patterns):]:
        ax.axis("off")
    fig.tight_layout()
    plt.show()
'''),
    code("""
gallery(library(256), 256)
"""),
    md("""
> Three families show up. **Local** patterns (windows, dilated windows, `Local2D`) keep a band around the diagonal.
> **Hub** patterns (`GlobalTokens`, sinks, Longformer's and BigBird's global blocks) add full rows and columns.
> **Structured long-range** patterns (strided, fixed, random, axial) add sparse off-diagonal structure so that
> far-apart tokens meet in few layers. Lessons 02–05 take them one at a time.

## Densities

How much of dense attention is left, as the sequence grows? Window-like patterns keep a constant number of keys
per query, so their density falls as 1/n; dense and causal stay at 1 and ½.
"""),
    code("""
ns = [256, 1024, 4096]
print(f"{'pattern':30}" + "".join(f"{'n = ' + str(n):>22}" for n in ns))
tables = {n: library(n) for n in ns}
for name in tables[ns[0]]:
    cells = [f"{tables[n][name].num_pairs(n):>12,} ({tables[n][name].density(n):6.1%})" for n in ns]
    print(f"{name:30}" + "".join(f"{c:>22}" for c in cells))
"""),
    md("""
## The block layout a kernel sees

Fast kernels do not skip single pairs: they skip whole `block × block` tiles. A tile with even one allowed
pair must be computed in full, and the masked pairs inside it are **wasted work**. `viz.plot_layout` shows the
tiles: blue ones are full, orange ones partly useful (the printed share is the useful part).
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=72)
viz.plot_layout(P.SlidingWindow(48, causal=True), 512, 64, ax=axes[0])
viz.plot_layout(P.Strided(32), 512, 64, ax=axes[1])
fig.tight_layout()
plt.show()
"""),
    md("""
The strided pattern's columns touch every key block: almost every tile is computed for a few useful pairs.
Lesson 06 measures what that does to wall-clock time.

## Explore

Pick a pattern and move the sliders: the mask, the block layout, the density, the FLOPs, the ideal speedup
over dense (dense FLOPs / sparse FLOPs) and the wasted fraction inside computed blocks update together.
Sliders a pattern ignores are greyed out. **time it** runs dense and sparse NumPy attention at the chosen n and
adds the point to a timing plot (time two sizes to get fitted exponents).
"""),
    code("""
panel = viz.explorer()
panel
""", IGNORE),
    md("""
The panel keeps its numbers in `panel.state`, and its controls in `panel.controls`, so code can drive it too:
"""),
    code("""
panel.controls["pattern"].value = "SlidingWindow"
panel.controls["n"].value = 2048
panel.controls["window"].value = 256
panel.controls["block"].value = 64
""", IGNORE),
    code("""
for key in ("pattern", "n", "pairs", "density", "ideal_speedup", "wasted_fraction"):
    value = panel.state[key]
    print(f"{key:16} {value:.4g}" if isinstance(value, float) else f"{key:16} {value}")
"""),
    md("""
## Summary

- A pattern is a boolean mask; its density (pairs / n²) is the fraction of dense work left.
- Local, hub and structured long-range patterns trade coverage for cost differently; windows keep O(n·w) pairs.
- Kernels work in tiles: a pattern's block layout, not its density alone, sets the real cost.

**Exercise:** [exercises/01_patterns.ipynb](../exercises/01_patterns.ipynb) — write masks yourself and check them.
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# 02 — local and dilated windows
# ---------------------------------------------------------------------------------------------------------------
L02 = [
    md("""
## Sliding windows

Most of what a token needs is nearby. A **sliding window** lets query $i$ see the keys within a fixed distance:
`SlidingWindow(w)` allows $|i - j| \\le \\lfloor w/2 \\rfloor$, and `SlidingWindow(w, causal=True)` allows the
$w$ keys $i-w < j \\le i$ (what Mistral and Gemma's local layers use for generation).
"""),
    code("""
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
    ax.set_title(f"{name}\\n{p.num_pairs(40)} pairs", fontsize=9)
fig.tight_layout()
plt.show()
"""),
    md("""
A **dilated** window keeps the same number of keys but spaces them `dilation` apart: the same cost reaches
`dilation` times further, with gaps in between.

Each row holds at most $w$ keys, so a window costs about $n \\cdot w$ pairs instead of $n^2$:
"""),
    code("""
n, w = 4096, 257
p = P.SlidingWindow(w)
print(f"{p!r} at n = {n}: {p.num_pairs(n):,} pairs; n·w = {n * w:,}; dense n² = {n * n:,}")
print(f"edge rows see fewer keys, so pairs < n·w by {n * w - p.num_pairs(n):,} = 2 · (1 + 2 + … + {w // 2})")
"""),
    md("""
## Receptive field through layers

One window layer only mixes neighbours, yet windowed models read whole documents. The reason is stacking:
after layer 1 token $i$ holds information from $i \\pm w/2$; layer 2 attends to tokens that already hold
their own neighbourhoods, so the reach doubles, and so on. `viz.plot_receptive_field` follows it with repeated
boolean products (the residual stream keeps what was already reached):
"""),
    code("""
viz.plot_receptive_field(P.SlidingWindow(9), 96, layers=4, query=48)
"""),
    code("""
rf = receptive_field(P.SlidingWindow(9), 96, layers=4, query=48)
for layer, reach in enumerate(rf, start=1):
    print(f"{layer} layer(s): {int(reach.sum()):3d} tokens   (1 + 2·L·(w//2) = {1 + 2 * layer * (9 // 2)})")
"""),
    md("""
The field grows **linearly** with depth: $L$ layers of window $w$ see about $L \\cdot w$ tokens. A 4k-token
window over 32 layers reaches about 131k tokens — in principle; in practice information fades along long paths.

### Dilation's gaps

A dilated window reaches further per layer, but only along its grid: stacking dilation-4 windows never reaches a
token whose distance is not a multiple of 4.
"""),
    code("""
viz.plot_receptive_field(P.DilatedWindow(5, 4), 96, layers=3, query=48)
"""),
    code("""
rf = receptive_field(P.DilatedWindow(5, 4), 96, layers=3, query=48)
offsets = np.nonzero(rf[-1])[0] - 48
print("reached offsets after 3 layers:", offsets.tolist())
print("all multiples of 4:", bool(np.all(offsets % 4 == 0)))
"""),
    md("""
Longformer's fix: different dilations in different layers (and heads). Local windows in the lower layers fill
the gaps that dilated windows leave in the upper ones. `receptive_field` accepts one pattern per layer, listed
from the query's layer downwards:
"""),
    code("""
stacks = {
    "3 × SlidingWindow(5)": [P.SlidingWindow(5)] * 3,
    "Dilated(5, 8) → Dilated(5, 4) → Sliding(5)": [P.DilatedWindow(5, 8), P.DilatedWindow(5, 4), P.SlidingWindow(5)],
}
for name, layers in stacks.items():
    reach = receptive_field(layers, 96, layers=3, query=48)[-1]
    span = np.nonzero(reach)[0]
    contiguous = span[-1] - span[0] + 1 == len(span)
    print(f"{name:45} {len(span):3d} tokens, from {span[0]} to {span[-1]}, no gaps: {contiguous}")
"""),
    code("""
viz.plot_receptive_field(stacks["Dilated(5, 8) → Dilated(5, 4) → Sliding(5)"], 96, layers=3, query=48)
"""),
    md("""
Same cost per layer (5 keys per query), but the mixed stack covers a contiguous span several times wider.

## O(n·w), measured

`R.sparse_attention` computes only the allowed pairs (for a window: a band of keys around each query). Its
time should grow **linearly** in $n$ at fixed $w$, while dense attention grows as $n^2$. We time both (one BLAS thread, fastest of three repeats, as in lesson 00) and fit the
exponents:
"""),
    code("""
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
""", IGNORE),
    code("""
viz.plot_complexity({f"SlidingWindow({w})": P.SlidingWindow(w)}, ns_window, d=d,
                    measured={f"window {w}": (ns_window, t_window), "dense": (ns_dense, t_dense)})
""", IGNORE),
    md("""
The fits printed above give an exponent ≈ 1 for the window and ≈ 2 for dense; on a busy
machine a fit can drift by a few tenths (fixed per-call costs pull the small sizes up): run the cell again.
Counted FLOPs (left panel) are exact; wall-clock time also pays for memory traffic and bookkeeping. Lesson 06 comes back to this gap between counted and measured cost.
"""),
    md("""
## Play with it

Move the sliders: the receptive field of token 48 (of 96) through a stack of identical windows. With
`dilation = 1` the window is a plain sliding window; try `dilation = 4` and count the gaps, then add layers.
"""),
    code("""
import ipywidgets as widgets


def explore_rf(window=9, dilation=1, layers=3):
    p = P.SlidingWindow(window) if dilation == 1 else P.DilatedWindow(window, dilation)
    reach = receptive_field(p, 96, layers=layers, query=48)[-1]
    print(f"{p!r}, {layers} layer(s): token 48 hears from {int(reach.sum())} tokens")
    display(viz.plot_receptive_field(p, 96, layers=layers, query=48))


widgets.interact(explore_rf, window=(3, 17, 2), dilation=(1, 6), layers=(1, 5));
""", IGNORE),
    md("""
## Summary

- A window of $w$ keys costs $O(n \\cdot w)$ pairs; its measured time grows linearly in $n$.
- Stacking $L$ window layers widens the receptive field linearly, to about $L \\cdot w$ tokens.
- Dilation reaches further at the same cost but leaves gaps; mixing dilations across layers fills them.

**Exercise:** [exercises/02_local_attention.ipynb](../exercises/02_local_attention.ipynb) — implement sliding-window
attention and check it against the dense reference.
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# 03 — global tokens and Longformer
# ---------------------------------------------------------------------------------------------------------------
L03 = [
    md("""
## Global tokens

A window is blind beyond its width. The cheapest repair is a handful of **global tokens**: `GlobalTokens(G)`
allows $(i, j)$ whenever $i \\in G$ or $j \\in G$ — a global token attends to every token and every token attends
to it. Each global token adds two full lines to the mask, about $2n$ pairs: linear, not quadratic.
"""),
    code("""
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
    ax.set_title(f"{name}\\n{p.num_pairs(n)} pairs", fontsize=9)
fig.tight_layout()
plt.show()
"""),
    md("""
## Hubs: every pair within two hops

Think of the mask as a graph, an edge $i \\to j$ when $i$ may attend to $j$. With a window alone, information
travels $w/2$ tokens per layer. With one global token, *any* token reaches *any* other in two hops — up to the
hub in layer 1, down from it in layer 2. `viz.reachability(pattern, n, hops)` computes the reachable pairs
(boolean matrix powers, residual included):
"""),
    code("""
for name, p in {"SlidingWindow(5)": window, "SlidingWindow(5) | GlobalTokens((0,))": hub}.items():
    fractions = [f"{reachability(p, n, hops).mean():6.1%}" for hops in (1, 2, 3)]
    print(f"{name:40} reachable pairs after 1, 2, 3 layers: {', '.join(fractions)}")
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), dpi=72)
for ax, (name, p) in zip(axes, {"window only": window, "window + 1 global token": hub}.items()):
    viz.plot_mask(reachability(p, n, 2), ax=ax)
    ax.set_title(f"{name}: reachable in 2 layers", fontsize=9)
fig.tight_layout()
plt.show()
"""),
    md("""
> The hub is also a bottleneck: everything that crosses the sequence in two hops squeezes through one
> d-dimensional vector per global token. Models use several (BigBird's ITC uses whole global blocks), and
> keep the windows for local detail.

## Longformer = window + dilation + global

Longformer (Beltagy et al., 2020) combines the three ideas: a (possibly dilated) sliding window in every layer,
plus task-chosen global tokens — the `[CLS]` token for classification, the question tokens for QA. In this
library it is exactly the union:
"""),
    code("""
lf = P.Longformer(8, global_indices=(0, 31), dilation=2)
same = np.array_equal(lf.mask(64), (P.DilatedWindow(8, 2) | P.GlobalTokens((0, 31))).mask(64))
print(f"{lf!r} == DilatedWindow(8, 2) | GlobalTokens((0, 31)): {same}")
"""),
    code("""
lf = P.Longformer(64, global_indices=tuple(range(4)))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=72)
viz.plot_mask(lf, 1024, block=64, ax=axes[0])
viz.plot_layout(lf, 1024, 64, ax=axes[1])
fig.tight_layout()
plt.show()
"""),
    md("""
Four global tokens switch on a whole block row and a whole block column: cheap in pairs, but every one of
those tiles is mostly wasted work for a block kernel — one reason real kernels give global tokens their own
dense path.

Pairs grow as $n\\,(w + 1) + 2\\,g\\,n$ for $g$ global tokens, so the density keeps falling as $1/n$:
"""),
    code("""
lf = P.Longformer(512, global_indices=tuple(range(16)))
print(f"{lf!r}")
for n_ in [4096, 16384, 32768]:
    dense_flops = C.attention_flops(P.Dense(), n_, 64, execution="dense")
    flops = C.attention_flops(lf, n_, 64, execution="gather")
    print(f"n = {n_:>6,}: {lf.num_pairs(n_):>12,} pairs, density {lf.density(n_):6.2%}, "
          f"ideal speedup over dense {dense_flops / flops:5.1f}×")
"""),
    md("""
## A QA-style example: one global token sees the whole document

A toy reading-comprehension setup with random vectors: 96 tokens, the first two are the *question*, and token
80 holds the *answer* — its key points the same way as the question's query, so a question token that can see
it puts most of its attention there. With a window alone the question never sees token 80; make the question
tokens global and it does, in one layer.
"""),
    code("""
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
"""),
    code("""
viz.plot_attention_map(probs, vmax=0.25)  # colours saturate at 0.25 so that small weights stay visible
"""),
    md("""
In the Longformer map, row 0 (the global question token) may look at the whole document and puts its weight
on column 80; columns 0–1 light up because every token also reads the question. Everything else stays a thin
band.
"""),
    md("""
## Play with it

A window plus `g` global tokens (the first `g` positions) at $n = 256$: the mask, its pairs and the fraction of
all pairs connected within two layers. With `g = 0` only the window's neighbourhood is reached; one hub is
enough to reach 100 %.
"""),
    code("""
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
""", IGNORE),
    md("""
## Summary

- Global tokens are hubs: with even one, every pair of tokens is connected within two layers, for about $2n$
  extra pairs per global token.
- Longformer = (dilated) sliding window ∪ global tokens; its cost stays linear in $n$.
- Which tokens are global is a modelling decision (question, `[CLS]`); they see the whole document in one layer.
- Global rows and columns switch on whole block rows and columns: a kernel question for lesson 06.

**Exercise:** [exercises/03_global_tokens.ipynb](../exercises/03_global_tokens.ipynb) — add global tokens to a window
and verify the two-hop property.
"""),
]

LESSONS = {
    "00_why_attention_is_quadratic": (
        "00 · Why attention is quadratic",
        ["write dense attention from scratch in NumPy and check it against the course reference",
         "explain why its memory and time grow as n², and measure the exponent on your machine",
         "estimate where the memory runs out, and what 100,000 tokens would cost"],
        L00),
    "01_patterns_gallery": (
        "01 · The patterns gallery",
        ["read an attention mask (rows are queries, columns keys) and its density",
         "recognise every pattern of the library: windows, dilation, global tokens, strided, fixed, random, "
         "block-sparse, BigBird, Longformer, sinks, 2-D",
         "compare patterns by pairs, density and block layout, and explore them with a widget"],
        L01),
    "02_local_and_dilated": (
        "02 · Local and dilated windows",
        ["define sliding and dilated windows, causal and not, and count their pairs (≈ n·w)",
         "explain how stacking layers widens the receptive field, and why dilation leaves gaps",
         "measure that windowed attention's time grows linearly in n, dense attention's quadratically"],
        L02),
    "03_global_tokens_longformer": (
        "03 · Global tokens and Longformer",
        ["explain global tokens as hubs: every pair connected within two hops",
         "build Longformer as window + dilation + global tokens and count its cost",
         "show, on a QA-style example, a global token reading the whole document in one layer"],
        L03),
}


def write_if_changed(path: Path, nb) -> None:
    """Write `nb` unless its cells (sources and tags) equal the file's: an unchanged notebook keeps its outputs."""
    old = nbf.read(path, as_version=4) if path.exists() else None
    cells = lambda book: [(c.source, c.metadata.get("tags")) for c in book.cells]  # noqa: E731
    if old is not None and cells(old) == cells(nb):
        return
    nbf.write(nb, path)
    print("wrote", path.relative_to(ROOT))


def main() -> int:
    for name, (title, goals, cells) in LESSONS.items():
        write_if_changed(ROOT / "notebooks" / f"{name}.ipynb", build(name, title, goals, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
