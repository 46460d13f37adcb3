"""Author lessons 06–07 (notebooks/) and their exercise solutions (solutions/) with nbformat.

    .venv/bin/python tools/make_lessons_06_07.py
    .venv/bin/python tools/execute_notebooks.py notebooks/0[67]_*.ipynb solutions/0[67]_*.ipynb
    .venv/bin/saattn build-exercises 06_blocks 07_flash

The notebooks are the product; this script is how they are written (outputs come from executing, never from
this file).
"""
from __future__ import annotations

import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_exercises_02_05 import build as build_solution  # noqa: E402  same header, HOW text and grade cell
from make_lessons_00_03 import build as build_lesson  # noqa: E402  same header and Colab cell
from make_lessons_00_03 import write_if_changed as _write  # noqa: E402  keeps outputs when nothing changed

ROOT = Path(__file__).resolve().parent.parent
IGNORE = ("nbval-ignore-output",)  # measured numbers, widgets: they change run to run


def md(text):
    return ("md", text, ())


def code(text, tags=()):
    return ("code", text, tags)


# ---------------------------------------------------------------------------------------------------------------
# 06 — blocks and hardware
# ---------------------------------------------------------------------------------------------------------------
L06 = [
    md("""
## Why kernels work in blocks

A sparse pattern says which *pairs* matter. Hardware does not run pairs: it runs **tiles**. A GPU's tensor cores
multiply 16 × 16 fragments, and an attention kernel loads a `block × d` tile of queries and one of keys into
fast on-chip memory, multiplies them, and moves on. A CPU's BLAS does the same with its caches. Inside a tile
the work is a dense matrix product, the fastest thing the chip does; gathering single keys one by one turns
it back into scattered memory reads.

So a kernel's question is not "is pair (i, j) allowed?" but "does tile (I, J) hold *any* allowed pair?". It
computes every tile that does, in full, and masks inside it. Two consequences, both measured below:

- a tile with one allowed pair costs as much as a full one (**wasted work**);
- small tiles waste less, but each tile carries a fixed cost (a loop step, a kernel launch, a load) that
  dominates when tiles are tiny (**overhead**).

First, how fast is a tile on this machine? One `block × block` score tile costs `2 · block² · d` FLOPs:
"""),
    code("""
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings; set before NumPy loads

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz
"""),
    code("""
rng = np.random.default_rng(0)
d = 64
tile_sizes = [4, 8, 16, 32, 64, 128, 256, 512]
rates = []
for b in tile_sizes:
    qt, kt = rng.standard_normal((2, b, d)).astype(np.float32)
    t = C.time_fn(np.matmul, qt, kt.T, repeats=20, warmup=3).min
    rates.append(2 * b * b * d / t / 1e9)  # GFLOP/s
    print(f"tile {b:>3} × {b:<3}: {t * 1e6:8.1f} µs   {rates[-1]:6.2f} GFLOP/s")
""", IGNORE),
    code("""
fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=72)
ax.semilogx(tile_sizes, rates, "o-", base=2)
ax.set_xlabel("tile side (queries = keys)")
ax.set_ylabel("GFLOP/s (this machine)")
ax.set_title("small tiles cannot keep the multiplier busy")
fig.tight_layout()
plt.show()
""", IGNORE),
    md("""
Tiny tiles run at a fraction of the peak rate: the call overhead and the memory traffic are paid per tile, the
arithmetic grows with its area. That is why kernels use 64 or 128 tokens per side, and why sparsity has to
come in whole tiles to pay off.

## Token density vs block density

The **token density** of a pattern is the fraction of pairs it allows; the **block density** is the fraction of
tiles a kernel must compute. `viz.layout_stats` counts both, plus the wasted share of the computed pairs. The
same sequence, the same block of 64, every pattern:
"""),
    code("""
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
"""),
    md("""
Local patterns (windows, sinks, BigBird, which was *designed* in blocks) keep block density close to token
density. Patterns whose allowed pairs are scattered do not: the dilated window, `Fixed`, `Strided` and random
keys allow under 10% of the pairs yet switch on 15 to 100% of the tiles, and 80 to 98% of the work in those tiles
is wasted. The pictures show why:
"""),
    code("""
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=72)
for ax, name in zip(axes, ["SlidingWindow(256, causal)", "BigBird(block 64)", "Strided(45)"]):
    viz.plot_layout(gallery[name], n, block, ax=ax)
fig.tight_layout()
plt.show()
"""),
    md("""
The strided pattern's columns (`(i - j) % 45 == 0`) cross **every key block** below the diagonal: each tile holds
one or two allowed keys per row and is computed in full. On an H100 this is exactly what the course's anchors
show: FlexAttention runs sliding windows 8× faster than dense causal attention at 16k tokens (ideal 8.3), but
the strided pattern only 1.9× (ideal 28.7).

## Theoretical FLOPs vs measured time

`complexity.attention_flops` counts the matmul work of three ways to execute a pattern: `"dense"` scores every
pair and masks, `"gather"` scores only the allowed pairs (gathering each query's keys, as
`R.sparse_attention` does), `"block_sparse"` scores every pair of every active tile (`R.block_sparse_attention`).
The ideal speedup over dense is the FLOP ratio. Here is what this machine makes of it:
"""),
    code("""
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
""", IGNORE),
    code("""
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
""", IGNORE),
    md("""
Read the bars as three lessons:

- **gather** does the fewest FLOPs and is usually the *slowest*: every query reads its own scattered keys,
  row by row, and the arithmetic is vector-sized, never a matrix product. FLOPs are not time.
- **block-sparse** on the sliding window gets a good part of its ideal: its tiles are matrix products and few
  are wasted.
- **block-sparse** on the strided pattern has an ideal of ≈ 2× only (half the tiles, the causal triangle, are
  active) and the per-tile overhead comes on top: it lands near dense, often below it. The savings of its token
  density never reach the hardware.

## Block size: wasted work against overhead

Smaller tiles follow the pattern more closely (less waste), larger tiles run faster per pair (less overhead).
For a causal window of 128 at `n = 4096`, count the computed pairs and time `R.block_sparse_attention` for each
block size:
"""),
    code("""
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
""", IGNORE),
    code("""
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
""", IGNORE),
    md("""
Left of the optimum the per-block overhead dominates (many tiny matmuls, a Python loop step per block row);
right of it the waste dominates (a 512-token tile around a 128-token window is mostly masked). Where exactly
the optimum lies depends on the machine: a GPU kernel pays much less per tile than a NumPy loop, which is why
GPU kernels favour 64 to 128. **Exercise 3** asks you to pick the block size from such a table.

## Explore

Pick a pattern and a block size: the layout, the block density and the wasted share update.
"""),
    code("""
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
""", IGNORE),
    md("""
## Permuting keys: strided columns become dense blocks

The strided pattern is two patterns in one: a **local band** (`0 <= i - j < stride`: contiguous, cheap in tiles)
and a **grid** (`i - j` a positive multiple of the stride: the columns that touch every tile). The grid only
connects tokens with the same **residue** `t mod stride`. Reorder the tokens residue by residue,
`[0, l, 2l, …, 1, 1 + l, …]`, and every residue becomes a contiguous run of `n / l` positions in which the grid
is an ordinary causal triangle. (`saattn_edu.accel.permute` does this inside the Triton kernel, with strided
pointers instead of copies; here it is in NumPy.)
"""),
    code("""
n, stride = 256, 16
p = P.Strided(stride)
i, j = np.arange(n)[:, None], np.arange(n)[None, :]
mask = p.mask(n)
grid = mask & ((i - j) % stride == 0) & (i != j)  # the strided columns (offsets stride, 2·stride, ...)
band = mask & ~grid  # the local band, diagonal included
order = np.concatenate([np.arange(r, n, stride) for r in range(stride)])  # residue by residue
grid_permuted = grid[np.ix_(order, order)]  # rows and columns in the new order
print("order starts:", order[:20], "...")
print("every allowed pair is in exactly one part:", np.array_equal(band | grid, mask) and not (band & grid).any())
"""),
    code("""
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=72)
viz.plot_layout(mask, block=stride, ax=axes[0])
axes[0].set_title(f"Strided({stride}), token order\\n{int(p.block_layout(n, stride).sum())} active blocks")
viz.plot_layout(band, block=stride, ax=axes[1])
axes[1].set_title(f"band, token order\\n{int(viz.layout_stats(band, block=stride)['active_blocks'])} active blocks")
viz.plot_layout(grid_permuted, block=stride, ax=axes[2])
axes[2].set_title(f"grid, keys permuted by residue\\n"
                  f"{int(viz.layout_stats(grid_permuted, block=stride)['active_blocks'])} active blocks")
fig.tight_layout()
plt.show()
"""),
    md("""
In token order the pattern switches on the whole lower triangle of tiles. Split and permuted, the band needs two
tiles per block row and the grid one diagonal tile per residue: a few dozen tiles instead of over a hundred, and
all of them nearly full. Two passes over different key orders still make one softmax: each pass returns its
partial output with its log-sum-exp, and lesson 07's merge combines them exactly. Here it is, with the
references:
"""),
    code("""
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
"""),
    md("""
## Summary

- Kernels compute whole tiles: matrix products are fast, scattered reads are not. A tile with one allowed pair
  costs a full tile.
- Block density, not token density, sets the work of a block-sparse kernel. Local and block-designed patterns
  keep the two close; strided columns and random keys touch almost every tile.
- FLOPs are not time: the gather does the fewest FLOPs and can be the slowest; block-sparse gets close to its
  (block-level) ideal.
- Block size trades wasted work (large tiles) against per-tile overhead (small tiles); measure it.
- Permuting tokens by residue turns strided columns into dense diagonal blocks; two passes merged by their
  log-sum-exp give the exact result (lesson 07).

**Exercise:** [exercises/06_blocks.ipynb](../exercises/06_blocks.ipynb) — block layouts, wasted work, the best
block size from your own timings, and the residue order.
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# 07 — FlashAttention tiling
# ---------------------------------------------------------------------------------------------------------------
L07 = [
    md("""
## Softmax needs the row max

Attention's softmax turns a row of scores $s_j$ into weights $e^{s_j} / \\sum_k e^{s_k}$. In float32,
$e^{89}$ already overflows to `inf`, and scores of a few hundred are ordinary once $q$ and $k$ grow. The fix is
free: softmax does not change when every score moves by the same constant, so subtract the row max $m$ first,

$$\\mathrm{softmax}(s)_j = \\frac{e^{s_j - m}}{\\sum_k e^{s_k - m}}, \\qquad m = \\max_k s_k ,$$

and every exponent is $\\le 0$: no overflow, and the largest term is exactly 1.
"""),
    code("""
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings; set before NumPy loads

import math
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz
"""),
    code("""
s = np.array([100.0, 101.0, 102.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(s) / np.exp(s).sum()
stable = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
print("naive :", naive)
print("stable:", stable)
"""),
    md("""
## The online softmax

The max is a problem for tiling: FlashAttention reads the keys **one block at a time** and never holds a whole
row of scores, so it cannot know the row max in advance. The *online softmax* keeps a running max $m$ and a
running sum $\\ell = \\sum e^{s_j - m}$ over the blocks seen so far. A new block with scores $s^{(b)}$:

$$m' = \\max\\big(m, \\max_j s^{(b)}_j\\big), \\qquad
\\ell' = \\ell \\, e^{m - m'} + \\sum_j e^{s^{(b)}_j - m'} .$$

The factor $\\alpha = e^{m - m'} \\le 1$ re-expresses the old sum relative to the new max. Start from
$m = -\\infty$, $\\ell = 0$ (then $\\alpha = 0$). After the last block, $m$ and $\\ell$ are exactly the row max and the
stable sum. Watch it on one row of 24 scores in blocks of 6:
"""),
    code("""
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
"""),
    md("""
## The tiled forward pass

The output needs more than the normaliser: $o = \\sum_j p_j v_j$. Keep an unnormalised accumulator
$\\mathrm{acc} = \\sum_j e^{s_j - m} v_j$ and rescale it by the same $\\alpha$. One **tile update**, for a block of
queries against a block of keys, is four lines; the forward pass loops over query blocks (independent: a GPU
runs them in parallel) and, inside, over key blocks, then divides by $\\ell$ once at the end:
"""),
    code('''
def tile_update(acc, m, l, s, v):
    """Fold one tile of scaled scores s (r, c) and its values v (c, dv) into the state (acc (r, dv), m (r,), l (r,))."""
    m_new = np.maximum(m, s.max(axis=-1))  # (r,)
    m_safe = np.where(np.isneginf(m_new), 0.0, m_new)  # a row with nothing allowed yet: exps are 0, not nan
    alpha = np.exp(m - m_safe)  # (r,) rescales what was accumulated under the old max
    p = np.exp(s - m_safe[:, None])  # (r, c)
    return alpha[:, None] * acc + p @ v, m_new, alpha * l + p.sum(axis=-1)


def flash_forward(q, k, v, block_q=64, block_k=64, layout=None):
    """Tiled attention; with a block layout, key block j of query block i is visited only if layout[i, j]."""
    n, scale = q.shape[0], 1.0 / math.sqrt(q.shape[-1])
    out = np.zeros((n, v.shape[-1]), dtype=q.dtype)  # (n, dv)
    for bi, i0 in enumerate(range(0, n, block_q)):
        qi = q[i0:i0 + block_q] * scale  # (r, d)
        acc, m, l = np.zeros((len(qi), v.shape[-1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for bj, j0 in enumerate(range(0, k.shape[0], block_k)):
            if layout is not None and not layout[bi, bj]:
                continue  # block-sparse: the tile is never read
            acc, m, l = tile_update(acc, m, l, qi @ k[j0:j0 + block_k].T, v[j0:j0 + block_k])
        out[i0:i0 + block_q] = acc / np.where(l > 0, l, 1.0)[:, None]  # empty rows stay 0
    return out


n, d = 300, 32
q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
print("flash_forward == dense attention:", np.allclose(flash_forward(q, k, v, 64, 48), R.dense_attention(q, k, v)))
print("and == the course's R.flash_attention:", np.allclose(R.flash_attention(q, k, v), R.dense_attention(q, k, v)))
'''),
    md("""
## Watch the tiles

Each step folds one tile into the running state of one query block. The left panel colours the tiles already
visited; the right one follows query 0's weights: the weights implied by the state so far,
$e^{s_j - m} / \\ell$ over the keys seen, against the final softmax. They are exact once the last tile is in.
"""),
    code('''
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
'''),
    code("""
import ipywidgets as widgets

widgets.interact(show_step, step=widgets.IntSlider(value=0, min=0, max=len(STEPS) - 1));
""", IGNORE),
    md("""
While the first query block walks its key blocks, the estimate of query 0's earlier weights moves *down*
whenever a new block raises the max or adds mass: that is the rescaling by $\\alpha$. After the last key block of
its query block, the state is exact and never changes again.

## Memory: O(n) instead of O(n²)

Dense attention materialises the `n × n` score matrix; the tiled pass holds one `block_q × block_k` tile at a
time, plus `q`, `k`, `v` and the output, which grow as `n`. Peak memory, measured with `tracemalloc`:
"""),
    code("""
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
    peaks["flash (tiles of 64)"].append(peak_bytes(flash_forward, q, k, v, 64, 64))
for name, ps in peaks.items():
    exponent, _ = C.fit_power_law(ns, ps)
    print(f"{name:20} peak at n = {ns[-1]}: {ps[-1] / 1e6:6.2f} MB   fitted: memory ∝ n^{exponent:.2f}")
""", IGNORE),
    code("""
fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=72)
for name, ps in peaks.items():
    ax.loglog(ns, np.array(ps) / 1e6, "o-", label=name)
ax.set(xlabel="n (tokens)", ylabel="peak memory (MB)", title="one head, float32, d = 64")
ax.legend()
fig.tight_layout()
plt.show()
""", IGNORE),
    md("""
Dense attention's exponent comes out close to 2 (the score matrix). The tiled pass stays at or below 1: its peak
is a constant (one tile and the running state of one query block) plus the `n × d` output, the only part that grows
with `n`; at these sizes the constant is still a good share, so the fit reads less than 1. Time is another matter: our Python loop over tiles pays an overhead per tile, and NumPy has
no fused kernel, so in NumPy the tiled pass is not faster. On a GPU the same tiling is what makes attention fast:
the scores never leave on-chip memory, so the n² traffic to main memory disappears.
"""),
    code("""
n = 2048
q, k, v = (rng.standard_normal((n, 64)).astype(np.float32) for _ in range(3))
t_dense = C.time_fn(R.dense_attention, q, k, v, repeats=3).min
t_flash = C.time_fn(flash_forward, q, k, v, 64, 64, repeats=3).min
print(f"n = {n}: dense {t_dense * 1e3:.1f} ms, tiled flash_forward {t_flash * 1e3:.1f} ms (Python loop over "
      f"{(n // 64) ** 2} tiles)")
""", IGNORE),
    md("""
## Partial results and their log-sum-exp

The running state after some keys is a complete description of attention over those keys. Normalised, it is a
pair: the partial output $o_A = \\mathrm{acc} / \\ell$ and its **log-sum-exp** $\\mathrm{lse}_A = m + \\log \\ell$ (the log of
the softmax denominator). Two partial results over *disjoint* key sets merge exactly:

$$\\mathrm{lse} = \\log\\big(e^{\\mathrm{lse}_A} + e^{\\mathrm{lse}_B}\\big), \\qquad
o = e^{\\mathrm{lse}_A - \\mathrm{lse}}\\, o_A + e^{\\mathrm{lse}_B - \\mathrm{lse}}\\, o_B .$$

`R.flash_attention(..., return_lse=True)` returns the pair and `R.merge_partials` merges. Split the keys in two
halves, attend to each, merge:
"""),
    code("""
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
"""),
    md("""
> This is how **ring attention** (lesson 13) spreads one sequence over several devices: each device holds a
> block of keys, computes the partial result of its queries against the block it has, passes the block on, and
> merges with the log-sum-exp. It is also how lesson 06 combined two passes over permuted keys.

## Skipping masked tiles: block-sparse FlashAttention

A mask can be applied inside each tile (set masked scores to $-\\infty$, as the exp then gives 0), but a tile with
no allowed pair at all need not be visited: nothing it would add survives. With a **block layout** the loop
simply skips those tiles; `flash_forward` above already takes one (`layout=`). For a causal sliding window the
work then grows as $n \\cdot w$ instead of $n^2$:
"""),
    code("""
n, d, block = 4096, 64, 64
p = P.SlidingWindow(256, causal=True)
layout = p.block_layout(n, block)
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
small = 512  # correctness on a prefix: visiting the active tiles in full is R.block_sparse_attention's result
qs, ks, vs, small_layout = q[:small], k[:small], v[:small], p.block_layout(small, block)
print("skipping tiles == block-sparse attention:", np.allclose(
    flash_forward(qs, ks, vs, block, block, layout=small_layout), R.block_sparse_attention(qs, ks, vs, small_layout, block),
    atol=1e-5))
print(f"tiles visited: {int(layout.sum())} of {layout.size} ({layout.mean():.1%})")
"""),
    code("""
t_all = C.time_fn(flash_forward, q, k, v, block, block, repeats=3).min
t_skip = C.time_fn(flash_forward, q, k, v, block, block, layout, repeats=3).min
print(f"every tile: {t_all * 1e3:.1f} ms; active tiles only: {t_skip * 1e3:.1f} ms; "
      f"speedup {t_all / t_skip:.1f}× (tile ratio {layout.size / layout.sum():.1f}×)")
""", IGNORE),
    md("""
The measured speedup follows the tile ratio: skipping a tile saves its whole cost, overhead included. That is the
whole idea of block-sparse attention kernels (lesson 08 writes one in Triton): a block layout decides which tiles
run, a token mask refines the partial ones, and the online softmax makes the tiles independent of each other.

## Summary

- Softmax subtracts the row max so that no exponent is positive; the result is unchanged.
- The online softmax keeps a running max $m$ and sum $\\ell$, rescaling by $e^{m - m'}$ when the max grows; with an
  accumulator for $\\sum e^{s - m} v$ it gives attention one key tile at a time.
- FlashAttention's forward: for each query block, fold every key tile into $(\\mathrm{acc}, m, \\ell)$, then divide.
  Memory grows at most linearly in n (fitted exponent at most 1: at these sizes a fixed tile buffer is still a good
  share of the peak), where dense attention's grows close to n².
- A partial result is (output, log-sum-exp); two of them over disjoint keys merge exactly (ring attention).
- Skipping tiles the layout turns off is block-sparse FlashAttention: time follows the active tiles.

**Exercise:** [exercises/07_flash.ipynb](../exercises/07_flash.ipynb) — the online softmax, one tile update, the
tiled forward and block-sparse skipping, each checked against dense attention.
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# Exercises 06 — blocks
# ---------------------------------------------------------------------------------------------------------------
E06 = [
    code('''
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings in exercise 3 (as in lesson 06)

import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R
from saattn_edu.grading import check
'''),
    md("""
## Exercise 1: the block layout of a token mask

A block-sparse kernel cuts the `(n, n)` mask into `block × block` tiles and computes a tile when it holds **any**
allowed pair. Write `block_layout(mask, block)` returning the `(nb, nb)` boolean layout, `nb = ceil(n / block)`:
the last block row and column are short when `block` does not divide `n`.

<details><summary>Hint</summary>

Pad the mask with `False` to `nb · block` on each side, reshape it to `(nb, block, nb, block)` and ask
`.any(axis=(1, 3))`.
</details>
"""),
    code('''
def block_layout(mask, block):
    """(nb, nb) bool: does tile (I, J) of the (n, n) mask hold any allowed pair?"""
    ### BEGIN SOLUTION: pad to whole blocks, reshape to (nb, block, nb, block), any over the in-tile axes
    n = mask.shape[0]
    nb = -(-n // block)  # ceil(n / block)
    padded = np.zeros((nb * block, nb * block), dtype=bool)  # (nb·block, nb·block)
    padded[:n, :n] = mask
    return padded.reshape(nb, block, nb, block).any(axis=(1, 3))  # (nb, nb)
    ### END SOLUTION
'''),
    code('check("ex06.block_layout", block_layout)'),
    md("""
## Exercise 2: the wasted fraction

A kernel computes every pair of every active tile; the masked ones among them are wasted work. Write
`wasted_fraction(mask, block)`: `1 - allowed pairs / computed pairs`, where the computed pairs are the **real**
pairs of the active tiles (a short edge tile of `r` rows and `c` columns computes `r · c`, not `block²`).
Return `0.0` when nothing is computed.

<details><summary>Hint</summary>

Count the allowed pairs per tile the same way as in exercise 1, with `.sum(axis=(1, 3))` on an integer copy.
The real sizes of the tiles along one side are `np.minimum(block, n - np.arange(nb) * block)`; `np.outer` of
them gives each tile's area.
</details>
"""),
    code('''
def wasted_fraction(mask, block):
    """Share of the pairs in active tiles that the mask does not allow."""
    ### BEGIN SOLUTION: allowed pairs per tile and tile areas; waste = 1 - allowed / computed
    n = mask.shape[0]
    nb = -(-n // block)
    padded = np.zeros((nb * block, nb * block), dtype=np.int64)
    padded[:n, :n] = mask
    counts = padded.reshape(nb, block, nb, block).sum(axis=(1, 3))  # (nb, nb) allowed pairs per tile
    sizes = np.minimum(block, n - np.arange(nb) * block)  # (nb,) real rows (= columns) per block
    computed = int(np.outer(sizes, sizes)[counts > 0].sum())
    return 1.0 - int(counts.sum()) / computed if computed else 0.0
    ### END SOLUTION
'''),
    code('check("ex06.wasted_fraction", wasted_fraction)'),
    md("""
Your two functions on the lesson's patterns (`n = 1024`, blocks of 64):
"""),
    code('''
for p in [P.SlidingWindow(128, causal=True), P.BigBird(block=64), P.Strided(32), P.DilatedWindow(32, 8)]:
    m = p.mask(1024)
    print(f"{p!r:55} token density {m.mean():6.1%}   block density {block_layout(m, 64).mean():6.1%}   "
          f"wasted {wasted_fraction(m, 64):6.1%}")
'''),
    md("""
## Exercise 3: the best block size, from measurements

First measure: the cell below times `R.block_sparse_attention` for a causal window of 128 at `n = 2048`, three
repeats per block size, and keeps every repeat in a table `{block: [seconds, seconds, seconds]}`.
"""),
    code('''
rng = np.random.default_rng(0)
n, d = 2048, 64
p = P.SlidingWindow(128, causal=True)
q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
my_timings = {b: list(C.time_fn(R.block_sparse_attention, q, k, v, p.block_layout(n, b), b, repeats=3).times)
              for b in (16, 32, 64, 128, 256, 512)}
for b, ts in my_timings.items():
    print(f"block {b:>3}: " + "  ".join(f"{t * 1e3:6.2f} ms" for t in ts))
''', IGNORE),
    md("""
Now write `best_block_size(timings)`: the block size whose **fastest** repeat is the smallest. The fastest repeat
is the run least disturbed by other programs (noise only ever adds time); a mean would let one slow run decide.
On a tie, prefer the smaller block (less wasted work). The check feeds it tables of its own, with outliers and
ties; then you apply it to your table.

<details><summary>Hint</summary>

`min(timings, key=...)` walks the keys; a key function returning a tuple `(fastest time, block)` breaks ties by
the block.
</details>
"""),
    code('''
def best_block_size(timings):
    """The block whose fastest repeat is fastest; ties to the smaller block. timings: {block: [seconds, ...]}."""
    ### BEGIN SOLUTION: compare the fastest repeat of each block; break ties by the block size
    return min(timings, key=lambda b: (min(timings[b]), b))
    ### END SOLUTION
'''),
    code('check("ex06.best_block_size", best_block_size)'),
    code('''
print("on this machine, blocks of", best_block_size(my_timings), "are fastest for SlidingWindow(128) at n = 2048")
''', IGNORE),
    md("""
## Exercise 4: the residue order

Strided columns (`(i - j) % stride == 0`) touch every key block. Listing the tokens residue by residue,
`[0, stride, 2·stride, …, 1, 1 + stride, …, stride - 1, …]`, makes each residue a contiguous run, where the
columns become dense blocks. Write `residue_order(n, stride)` returning this permutation of `0 … n-1` as an
integer array.

<details><summary>Hint</summary>

`np.arange(r, n, stride)` lists residue `r`; `np.concatenate` the residues `0 … stride - 1`.
</details>
"""),
    code('''
def residue_order(n, stride):
    """Token indices sorted by (t % stride, t // stride)."""
    ### BEGIN SOLUTION: one arange per residue, concatenated
    return np.concatenate([np.arange(r, n, stride) for r in range(stride)]).astype(np.int64)  # (n,)
    ### END SOLUTION
'''),
    code('check("ex06.residue_order", residue_order)'),
    md("""
The grid part of `Strided(16)`, keys and queries permuted with your order: its tiles go from the whole lower
triangle to the diagonal.
"""),
    code('''
n, stride = 256, 16
i, j = np.arange(n)[:, None], np.arange(n)[None, :]
grid = P.Strided(stride).mask(n) & ((i - j) % stride == 0) & (i != j)
order = residue_order(n, stride)
print("active tiles, token order:   ", int(block_layout(grid, stride).sum()))
print("active tiles, residue order: ", int(block_layout(grid[np.ix_(order, order)], stride).sum()))
'''),
    md("""
## Exercise 5: one number, by reasoning

`Strided(16)` on `n = 256` tokens, blocks of 16: how many of the `16 × 16 = 256` tiles does a block-sparse kernel
compute in token order? Set `q5_answer` and run the cell.

<details><summary>Hint</summary>

Query `i` sees the 16 keys before it and every 16th key down to 0. Which key blocks does query block `b` reach?
</details>
"""),
    code('''
### BEGIN SOLUTION: set q5_answer to the number of active tiles
q5_answer = 16 * 17 // 2  # query block b reaches key blocks 0 .. b: the whole causal triangle of tiles
### END SOLUTION
check("ex06.q5", q5_answer)
'''),
    md("""
## Exercise 6: in words (not auto-graded)

Your measured best block size is probably not the one a GPU kernel uses (64 or 128). Which of the two costs,
per-tile overhead or wasted work, is larger in NumPy than on a GPU, and how does that move the optimum?
"""),
    md("""
### BEGIN ANSWER
In NumPy each tile costs a Python loop step and a separate small matmul call (microseconds), while a GPU kernel
pays almost nothing per tile: its tiles run in parallel inside one launch. Overhead is therefore much larger in
NumPy, which pushes the optimum towards larger blocks, where fewer tiles amortise it even at the price of more
masked pairs. On a GPU the overhead is small and the tile size is bounded by on-chip memory and by waste, so
64–128 wins.
### END ANSWER
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# Exercises 07 — FlashAttention
# ---------------------------------------------------------------------------------------------------------------
E07 = [
    code('''
import math

import numpy as np

from saattn_edu import patterns as P, reference as R
from saattn_edu.grading import check
'''),
    md("""
## Exercise 1: the online softmax

Write `online_softmax(x, block)` for a 2-D array of logits `x` (one row per query). Walk the columns in blocks of
`block`, keeping per row a running max `m` and a running sum `l = Σ exp(x - m)`:
`m_new = max(m, block max)`, `l = l · exp(m - m_new) + Σ exp(block - m_new)`. Then return `exp(x - m) / l`.
Masked entries are `-inf` (weight 0); a row with no finite entry returns zeros, never `nan`.

<details><summary>Hint</summary>

Start from `m = np.full(rows, -np.inf)`, `l = np.zeros(rows)`. Wherever `m_new` is `-inf`, subtract 0 instead:
`m_safe = np.where(np.isneginf(m_new), 0.0, m_new)`; `exp(-inf - m_safe)` is then 0, not `nan`. Divide only
where `l > 0`.
</details>
"""),
    code('''
def online_softmax(x, block):
    """Row softmax of x (r, c), computed with a running max and sum over column blocks."""
    ### BEGIN SOLUTION: running max and rescaled sum over the blocks, then one normalising pass
    m = np.full(x.shape[0], -np.inf)  # (r,)
    l = np.zeros(x.shape[0])  # (r,)
    for c0 in range(0, x.shape[1], block):
        xb = x[:, c0:c0 + block]  # (r, b)
        m_new = np.maximum(m, xb.max(axis=1))
        m_safe = np.where(np.isneginf(m_new), 0.0, m_new)
        l = l * np.exp(m - m_safe) + np.exp(xb - m_safe[:, None]).sum(axis=1)
        m = m_new
    m_safe = np.where(np.isneginf(m), 0.0, m)
    return np.exp(x - m_safe[:, None]) / np.where(l > 0, l, 1.0)[:, None]  # (r, c)
    ### END SOLUTION
'''),
    code('check("ex07.online_softmax", online_softmax)'),
    md("""
## Exercise 2: one tile update

The attention state of a block of `r` queries, after some keys, is `acc (r, dv)` (`Σ exp(s - m) v`), `m (r,)` and
`l (r,)`. Write `tile_update(acc, m, l, s, v)`: fold in one more tile of scaled scores `s (r, c)` (masked ones are
`-inf`) with its values `v (c, dv)`, and return the new `(acc, m, l)`. Leave the inputs unchanged.

<details><summary>Hint</summary>

`m_new = np.maximum(m, s.max(axis=1))`; `alpha = exp(m - m_safe)` rescales the old `acc` and `l`;
`p = exp(s - m_safe[:, None])`; `acc' = alpha[:, None] * acc + p @ v`, `l' = alpha * l + p.sum(axis=1)`.
</details>
"""),
    code('''
def tile_update(acc, m, l, s, v):
    """(acc, m, l) after one more tile of scores s (r, c) with values v (c, dv)."""
    ### BEGIN SOLUTION: new max, rescale the old state by exp(m - m_new), add the tile
    m_new = np.maximum(m, s.max(axis=1))  # (r,)
    m_safe = np.where(np.isneginf(m_new), 0.0, m_new)  # rows with nothing seen: exps give 0, not nan
    alpha = np.exp(m - m_safe)  # (r,)
    p = np.exp(s - m_safe[:, None])  # (r, c)
    return alpha[:, None] * acc + p @ v, m_new, alpha * l + p.sum(axis=1)
    ### END SOLUTION
'''),
    code('check("ex07.tile_update", tile_update)'),
    md("""
## Exercise 3: the tiled forward pass

Write `flash_forward(q, k, v, block_q, block_k)`: for each block of `block_q` queries, start from `acc = 0`,
`m = -inf`, `l = 0`, fold in every block of `block_k` keys with your `tile_update` (scores scaled by `1 / √d`),
then write `acc / l` to the output. Blocks need not divide `n`; `q` and `k` may hold different numbers of rows.
Never build the `(n, n_k)` score matrix.

<details><summary>Hint</summary>

`for i0 in range(0, n, block_q)` and `q[i0:i0 + block_q]` (NumPy clips the last slice); the same for keys. The
scores of one tile are `qi @ k[j0:j0 + block_k].T / math.sqrt(d)`.
</details>
"""),
    code('''
def flash_forward(q, k, v, block_q, block_k):
    """Attention of q (n, d) over k (n_k, d), v (n_k, dv), one (block_q, block_k) tile at a time."""
    ### BEGIN SOLUTION: loop over query blocks, fold every key tile into the state, divide by l
    scale = 1.0 / math.sqrt(q.shape[1])
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))  # (n, dv)
    for i0 in range(0, q.shape[0], block_q):
        qi = q[i0:i0 + block_q] * scale  # (r, d)
        acc, m, l = np.zeros((len(qi), v.shape[1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for j0 in range(0, k.shape[0], block_k):
            acc, m, l = tile_update(acc, m, l, qi @ k[j0:j0 + block_k].T, v[j0:j0 + block_k])
        out[i0:i0 + block_q] = acc / np.where(l > 0, l, 1.0)[:, None]
    return out
    ### END SOLUTION
'''),
    code('check("ex07.flash_forward", flash_forward)'),
    md("""
## Exercise 4: memory, measured

The check below runs your `flash_forward` at `n = 2048`, `d = 16`, tiles of 64, under `tracemalloc`, and passes
when its peak memory stays below an eighth of one `2048 × 2048` float32 score matrix (2.1 MB of 16.8 MB). A
tiled pass needs about `n · d` for the output and one tile; anything that builds a full row of `n` scores per
query block, or the whole matrix, does not fit. Your own measurement first:
"""),
    code('''
import tracemalloc

rng = np.random.default_rng(0)
for n in (512, 1024, 2048):
    q, k, v = (rng.standard_normal((n, 16)).astype(np.float32) for _ in range(3))
    tracemalloc.start()
    flash_forward(q, k, v, 64, 64)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"n = {n:>4}: peak {peak / 1e6:.3f} MB   (one n × n float32 score matrix: {4 * n * n / 1e6:.1f} MB)")
''', IGNORE),
    code('check("ex07.flash_memory", flash_forward)'),
    md("""
## Exercise 5: block-sparse FlashAttention

Write `block_sparse_flash(q, k, v, layout, block)`: your tiled pass with `block_q = block_k = block`, visiting
key block `j` of query block `i` only when `layout[i, j]` is True (rows that visit nothing return zeros). Skipped
tiles must not even be read: the check puts `nan` in the values of key blocks that no query block uses, so
computing a tile and masking it afterwards fails.

<details><summary>Hint</summary>

Enumerate the blocks: `for bi, i0 in enumerate(range(0, n, block))` and the same for `bj, j0`; `continue` when
`not layout[bi, bj]`.
</details>
"""),
    code('''
def block_sparse_flash(q, k, v, layout, block):
    """flash_forward that visits tile (bi, bj) only where layout[bi, bj]."""
    ### BEGIN SOLUTION: the tiled loop with a `continue` on inactive tiles
    scale = 1.0 / math.sqrt(q.shape[1])
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))  # (n, dv)
    for bi, i0 in enumerate(range(0, q.shape[0], block)):
        qi = q[i0:i0 + block] * scale  # (r, d)
        acc, m, l = np.zeros((len(qi), v.shape[1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for bj, j0 in enumerate(range(0, k.shape[0], block)):
            if layout[bi, bj]:
                acc, m, l = tile_update(acc, m, l, qi @ k[j0:j0 + block].T, v[j0:j0 + block])
        out[i0:i0 + block] = acc / np.where(l > 0, l, 1.0)[:, None]  # empty rows stay 0
    return out
    ### END SOLUTION
'''),
    code('check("ex07.block_sparse_flash", block_sparse_flash)'),
    md("""
Your kernel on a causal sliding window: the layout is a superset of the pattern, so on a short sequence compare
with attention restricted to the active tiles, and count the tiles it skips:
"""),
    code('''
n, block = 512, 32
p = P.SlidingWindow(64, causal=True)
layout = p.block_layout(n, block)
q, k, v = (np.random.default_rng(1).standard_normal((n, 32)) for _ in range(3))
print("equals R.block_sparse_attention:", np.allclose(block_sparse_flash(q, k, v, layout, block),
                                                      R.block_sparse_attention(q, k, v, layout, block)))
print(f"tiles visited: {int(layout.sum())} of {layout.size}")
'''),
    md("""
## Exercise 6: in words (not auto-graded)

Your `flash_forward` returns `acc / l` and throws `m` and `l` away. Ring attention (lesson 13) needs them: why,
and what single number per row would you return instead of the pair `(m, l)`?
"""),
    md("""
### BEGIN ANSWER
Ring attention computes attention over one block of keys at a time on different devices and must merge the
partial outputs: a partial output alone does not say how much softmax mass its keys carried. The log-sum-exp
`lse = m + log(l)` does; with it, two partial results over disjoint keys merge exactly:
`lse = logaddexp(lse_a, lse_b)`, `out = exp(lse_a - lse) · out_a + exp(lse_b - lse) · out_b`.
### END ANSWER
"""),
]

LESSONS = {
    "06_blocks_and_hardware": (
        "06 · Blocks and hardware",
        ["explain why attention kernels compute whole tiles, and what a tile costs when it is only partly allowed",
         "compare token density with block density for every pattern, and see why strided columns touch every "
         "key block",
         "measure dense, gather and block-sparse NumPy attention on your machine against their FLOP counts",
         "choose a block size from measurements (wasted work against per-block overhead)",
         "turn strided columns into dense blocks by permuting the keys"],
        L06),
    "07_flash_attention_tiling": (
        "07 · FlashAttention: tiling and the online softmax",
        ["explain why softmax subtracts the row max, and write the online softmax recurrence",
         "write FlashAttention's tiled forward pass in NumPy and check it against dense attention",
         "measure its memory growing as O(n) where dense attention's grows as O(n²)",
         "merge partial results with their log-sum-exp (the step ring attention reuses)",
         "skip masked tiles: block-sparse FlashAttention"],
        L07),
}

SOLUTIONS = {
    "06_blocks": (
        "Exercises 06: blocks, wasted work and block size",
        "You will compute, with NumPy alone, what a block-sparse kernel sees of a pattern (lesson 06): its block "
        "layout, the work it wastes, the block size your machine prefers, and the key order that makes strided "
        "columns dense.",
        ["turn a token mask into a block layout, for any n and block",
         "measure the fraction of computed pairs a pattern wastes",
         "pick a block size from your own timings, robustly to a disturbed run",
         "permute tokens by residue so that strided keys become contiguous"],
        E06),
    "07_flash": (
        "Exercises 07: FlashAttention in NumPy",
        "You will build FlashAttention's forward pass from its parts (lesson 07): the online softmax, one tile "
        "update, the tiled loop, then the block-sparse version that skips tiles. Each check compares your result "
        "with `dense_attention` on fresh random inputs.",
        ["compute a softmax in one pass over blocks with a running max and sum",
         "fold one tile of scores into a running (output, max, sum) state",
         "write the full tiled forward with O(n) memory, and measure it",
         "skip the tiles a block layout turns off, without ever reading them"],
        E07),
}


def main() -> int:
    for name, (title, goals, cells) in LESSONS.items():
        _write(ROOT / "notebooks" / f"{name}.ipynb", build_lesson(name, title, goals, cells))
    for name, (title, intro, goals, cells) in SOLUTIONS.items():
        _write(ROOT / "solutions" / f"{name}.ipynb", build_solution(name, title, intro, goals, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
