"""Author lessons 04–05 (notebooks/) with nbformat; then execute them with tools/execute_notebooks.py.

    .venv/bin/python tools/make_lessons_04_05.py && .venv/bin/python tools/execute_notebooks.py notebooks/0[45]_*.ipynb

Same form as lessons 00–03 (tools/make_lessons_00_03.py builds the header and the Colab cell); outputs come from
executing, never from this file.
"""
from __future__ import annotations

import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_lessons_00_03 import IGNORE, build, code, md, write_if_changed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------------------------
# 04 — random attention and BigBird
# ---------------------------------------------------------------------------------------------------------------
L04 = [
    md("""
## The attention graph

Lesson 03 read a mask as a graph: an edge $i \\to j$ when query $i$ may attend to key $j$. The **hop distance**
from $i$ to $j$ is the fewest edges on a path: the number of layers before $i$'s output can depend on $j$. The
**diameter** is the largest hop distance: how deep a model must be before every token can influence every other.

BigBird (Zaheer et al., 2020) decides everything per *block*, so we draw its graph with one node per block (one
node per token with `block=1`): a window, a few random blocks per row, and a few global blocks.
"""),
    code("""
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings (as in lesson 00)

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz
"""),
    code('''
# @title Helpers: hop distances by breadth-first search, and the three graphs of this lesson
def hop_distances(adj):
    """(n, n) fewest steps i -> ... -> j (adj[i, k]: i attends to k); 0 on the diagonal, -1 if never."""
    step = adj.astype(np.float32)  # (n, n)
    reach = np.eye(len(adj), dtype=bool)
    dist = np.where(reach, 0, -1)
    for hops in range(1, len(adj)):
        new = ((reach.astype(np.float32) @ step) > 0) & ~reach  # pairs first reached at this depth
        if not new.any():
            break
        dist[new], reach = hops, reach | new
    return dist


def graph_stats(adj):
    """(diameter, mean hop distance over pairs i != j); diameter -1 when some pair is never connected."""
    dist = hop_distances(adj)
    return (-1 if (dist < 0).any() else int(dist.max())), float(dist[dist > 0].mean())


def graphs(nb, seed=0):
    """Block graphs on nb blocks: window 3; + 3 random blocks per row; + 2 global blocks (BigBird's shape)."""
    kw = dict(block=1, window_blocks=3, seed=seed)
    return {"window": P.BigBird(global_blocks=0, random_blocks=0, **kw).mask(nb),
            "window + random": P.BigBird(global_blocks=0, random_blocks=3, **kw).mask(nb),
            "window + random + global": P.BigBird(global_blocks=2, random_blocks=3, **kw).mask(nb)}
'''),
    code("""
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), dpi=72)
for ax, (name, adj) in zip(axes, graphs(32).items()):
    viz.plot_mask(adj, ax=ax)
    diam, mean = graph_stats(adj)
    ax.set_title(f"{name}\\ndiameter {diam}, mean hops {mean:.2f}", fontsize=9)
fig.tight_layout()
plt.show()
"""),
    md("""
## Random edges are shortcuts

With a window alone, information crawls one block per layer: the diameter is $n_b - 1$. A few random edges per
row change that completely — the graph becomes a *small world* (Watts & Strogatz, 1998): most pairs are a few
hops apart, and the diameter grows like $\\log n_b$ instead of $n_b$. BigBird's paper uses exactly this argument
(random graphs are expanders). Global blocks cap it at 2: up to a hub, down from it. Measured on graphs of
growing size:
"""),
    code("""
sizes = [16, 32, 64, 128, 256]
table = {name: [] for name in graphs(16)}
print(f"{'blocks':>7}" + "".join(f"{name:>30}" for name in table))
for nb in sizes:
    row = []
    for name, adj in graphs(nb).items():
        diam, mean = graph_stats(adj)
        table[name].append((diam, mean))
        row.append(f"diameter {diam:3d}, mean {mean:6.2f}")
    print(f"{nb:>7}" + "".join(f"{r:>30}" for r in row))
"""),
    code("""
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
"""),
    md("""
> The window-only line grows linearly, the random one logarithmically, the global one is flat at 2. Depth is
> what a model pays for a large diameter: a 12-layer model with windows alone never connects tokens more than
> 12 windows apart.

## BigBird ITC, built from blocks

BigBird's *internal transformer construction* (ITC) combines the three parts at block level: block row $b_i$ may
see block column $b_j$ when $|b_i - b_j| \\le$ `window_blocks // 2`, when either is one of the first
`global_blocks` blocks, or when $b_j$ is one of $b_i$'s `random_blocks` random blocks (drawn, seeded, outside the
window and the globals). Coloured by which rule switches each block on:
"""),
    code("""
def parts(bb, nb):
    \"\"\"(nb, nb) ints: 1 window, 2 global, 3 random, 0 off (the first rule that applies).\"\"\"
    bi, bj = np.arange(nb)[:, None], np.arange(nb)[None, :]
    out = np.zeros((nb, nb), dtype=int)
    rows, ks = np.nonzero(bb.random_blocks_for(nb * bb.block) >= 0)
    out[rows, bb.random_blocks_for(nb * bb.block)[rows, ks]] = 3
    out[(bi < bb.global_blocks) | (bj < bb.global_blocks)] = 2
    out[np.abs(bi - bj) <= bb.window_blocks // 2] = 1
    return out


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
"""),
    md("""
## The default hyperparameters, and what they cost

BigBird's defaults: `block=64`, 3 window blocks, 2 global blocks, 3 random blocks. A query in a middle block sees
$(3 + 2 + 3) \\cdot 64 = 512$ keys, whatever $n$; the 128 global queries see all $n$. So the pairs grow as
$\\approx 512\\,n + 2 \\cdot 128\\,n$, linearly, and every computed block is full (the pattern is block-aligned:
no wasted work inside a tile, unlike lesson 03's global tokens):
"""),
    code("""
bb = P.BigBird()  # block=64, window_blocks=3, global_blocks=2, random_blocks=3, seed=0
print(repr(bb))
print(f"{'n':>7} {'pairs':>13} {'density':>8} {'pairs / n':>11} {'blocks':>13} {'ideal speedup':>14}")
for n_ in [1024, 4096, 16384, 65536]:
    layout = bb.block_layout(n_, 64)
    speedup = C.attention_flops(P.Dense(), n_, 64, execution="dense") / C.attention_flops(bb, n_, 64,
                                                                                        execution="block_sparse")
    print(f"{n_:>7,} {bb.num_pairs(n_):>13,} {bb.density(n_):>8.2%} {bb.num_pairs(n_) / n_:>11.0f} "
          f"{int(layout.sum()):>6}/{layout.size:<6} {speedup:>13.1f}×")
"""),
    code("""
viz.plot_layout(bb, 4096, 64)
"""),
    md("""
Below about 1,024 tokens BigBird *is* dense (8 blocks cover everything), which is why the paper uses it for long
inputs only. At 4,096 tokens a block-sparse kernel computes about one block in seven (the layout's title gives the share).

## Measured on this machine

`R.block_sparse_attention` skips the blocks the layout switches off; dense attention computes every pair. Both
are NumPy, one BLAS thread, fastest of two runs:
"""),
    code("""
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
""", IGNORE),
    code("""
viz.plot_timings({"BigBird (block-sparse)": (ns_bb, t_bb), "dense": (ns_dense, t_dense)})
""", IGNORE),
    md("""
BigBird's fitted exponent comes out well below dense attention's ≈ 2, though above 1: at 1,024 tokens BigBird is
still more than half dense (little to skip yet), so the smallest sizes are not in the linear regime, and the
128 global rows are dense at every size. Run the cell again on a quiet machine: the gap stays.

## Explore

Move the sliders: the block layout on `nb` blocks, its density and the attention graph's diameter and mean hop
distance. Try `random_blocks = 0` with `global_blocks = 0` (a plain window), then add one random block.
"""),
    code("""
def explore(nb=48, window_blocks=3, global_blocks=0, random_blocks=1, seed=0):
    p = P.BigBird(block=1, window_blocks=window_blocks, global_blocks=global_blocks, random_blocks=random_blocks,
                  seed=seed)
    adj = p.mask(nb)
    diam, mean = graph_stats(adj)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=72)
    ax.imshow(adj, cmap="Blues", interpolation="nearest")
    ax.set_title(f"density {adj.mean():.1%}, diameter {diam}, mean hops {mean:.2f}", fontsize=9)
    plt.show()


widgets.interact(explore, nb=(8, 96, 8), window_blocks=(1, 9, 2), global_blocks=(0, 4), random_blocks=(0, 6),
                 seed=(0, 20));
""", IGNORE),
    md("""
## Summary

- Read as a graph, a window alone has a diameter that grows linearly with the length; a few **random** edges per
  row make it logarithmic (a small world), and **global** blocks make it 2. We measured all three.
- BigBird ITC = window ∪ global ∪ random, decided per block: exact, block-aligned, no waste inside tiles.
- Its defaults (block 64, 3 window, 2 global, 3 random blocks) give 512 keys per query and linear cost; they only
  pay off beyond about 1,024 tokens.

**Exercise:** [exercises/04_bigbird.ipynb](../exercises/04_bigbird.ipynb) — build BigBird's layout and random
blocks yourself, and compute hop distances and diameters.
"""),
]
# ---------------------------------------------------------------------------------------------------------------
# 05 — the Sparse Transformer
# ---------------------------------------------------------------------------------------------------------------
L05 = [
    md("""
## Two heads instead of one

Child et al. (2019), *Generating Long Sequences with Sparse Transformers*, factorise causal attention into two
heads with a stride $l$. Query $i$'s keys, $d = i - j$:

| pattern | head $A^{(1)}_i$ | head $A^{(2)}_i$ |
|---|---|---|
| **strided** | $\\{t, t+1, \\dots, i\\}$, $t = \\max(0, i - l)$: the previous $l$ keys and itself | $\\{j : (i - j) \\bmod l = 0\\}$ |
| **fixed** | $\\{j : \\lfloor j/l \\rfloor = \\lfloor i/l \\rfloor\\}$: its own block | $\\{j : j \\bmod l \\in \\{l - c, \\dots, l - 1\\}\\}$: every block's last $c$ keys |

all with $j \\le i$. Strided suits data with a period (image rows: $l$ = the row width); fixed suits text, where
the last $c$ positions of each block act as its *summary*. `P.Strided(l)` and `P.Fixed(l, c)` are the unions
$A^{(1)} \\cup A^{(2)}$; the heads alone are plain masks:
"""),
    code("""
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings (as in lesson 00)

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz


def heads(kind, n, l, c=1):
    \"\"\"The two causal heads (A1, A2) of the Sparse Transformer, as (n, n) boolean masks.\"\"\"
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    causal = j <= i
    if kind == "strided":
        return causal & (i - j <= l), causal & ((i - j) % l == 0)
    return causal & (i // l == j // l), causal & (j % l >= l - c)
"""),
    code("""
n, l, c = 48, 8, 2
fig, axes = plt.subplots(2, 3, figsize=(12, 8.2), dpi=72)
for row, (kind, union) in enumerate({"strided": P.Strided(l), "fixed": P.Fixed(l, c)}.items()):
    a1, a2 = heads(kind, n, l, c)
    for ax, (name, m) in zip(axes[row], {"A(1)": a1, "A(2)": a2, "A(1) ∪ A(2)": union.mask(n)}.items()):
        viz.plot_mask(m, ax=ax)
        ax.set_title(f"{kind} {name}: {int(m.sum())} pairs", fontsize=9)
    assert np.array_equal(a1 | a2, union.mask(n))  # the library's pattern is exactly the union of the two heads
fig.tight_layout()
plt.show()
"""),
    code("""
q = 37
for kind in ("strided", "fixed"):
    a1, a2 = heads(kind, n, l, c)
    print(f"{kind:8} query {q}: A(1) keys {np.nonzero(a1[q])[0].tolist()}")
    print(f"{'':8}           A(2) keys {np.nonzero(a2[q])[0].tolist()}")
"""),
    md("""
## Every pair in two steps

Why two heads suffice: when a layer with head $A$ reads the output of a layer with head $B$, query $i$ depends
on key $j$ if $A_{ik}$ and $B_{kj}$ for some $k$ — the boolean product $AB$. For the **strided** pattern take
$k = i - ((i - j) \\bmod l)$: then $0 \\le i - k < l$ ($A^{(1)}$ links $i$ to $k$) and $k - j$ is a multiple of $l$
($A^{(2)}$ links $k$ to $j$). So $A^{(1)} A^{(2)}$ holds every causal pair. For **fixed** the order flips:
$A^{(2)}$ reaches the summary keys of earlier blocks, and the last key of a block sees its whole block through
$A^{(1)}$; the residual stream ($+I$) keeps the query's own block. Shown, then checked on many sizes:
"""),
    code("""
def compose(outer, inner):
    return (outer.astype(np.int64) @ inner.astype(np.int64)) > 0


n, l = 64, 8
eye, causal = np.eye(n, dtype=bool), np.tril(np.ones((n, n), dtype=bool))
s1, s2 = heads("strided", n, l)
f1, f2 = heads("fixed", n, l, 1)
shown = {"strided: A(1) alone": s1, "strided: A(1) then A(2)": compose(s1, s2),
         "fixed: A(2) then A(1), + residual": compose(f2 | eye, f1 | eye)}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), dpi=72)
for ax, (name, m) in zip(axes, shown.items()):
    viz.plot_mask(m, ax=ax)
    ax.set_title(f"{name}\\n{m.sum()} of {causal.sum()} causal pairs", fontsize=9)
fig.tight_layout()
plt.show()
"""),
    code("""
checked = misses = 0
for n_ in range(2, 130, 9):
    eye_, causal_ = np.eye(n_, dtype=bool), np.tril(np.ones((n_, n_), dtype=bool))
    for l_ in range(1, 17):
        s1_, s2_ = heads("strided", n_, l_)
        f1_, f2_ = heads("fixed", n_, l_, 1)
        misses += not np.array_equal(compose(s1_, s2_), causal_)
        misses += not np.array_equal(compose(f2_ | eye_, f1_ | eye_), causal_)
        checked += 2
print(f"{checked} (pattern, n, l) combinations checked; two steps miss a causal pair in {misses} of them")
"""),
    md("""
The same in the receptive-field picture of lesson 02: the query at the end of the sequence, a layer with the
stride head under a layer with the local head, reaches every earlier token in two layers:
"""),
    code("""
viz.plot_receptive_field([s1, s2], layers=2, query=n - 1)
"""),
    md("""
## Why $l \\approx \\sqrt n$

A query sees about $l$ keys through $A^{(1)}$ and $i / l$ through $A^{(2)}$ ($n / 2l$ on average, causal). The
total, $n\\,(l + n/2l)$, is smallest at $l = \\sqrt{n/2}$, where it is $\\sqrt2 \\cdot n\\sqrt n$; the paper's
choice $l \\approx \\sqrt n$ costs $1.5 \\cdot n\\sqrt n$, within 6%. Either way the cost is $O(n\\sqrt n)$,
against $n^2/2$ for causal dense attention. The exact counts, swept:
"""),
    code("""
n = 4096
strides = np.arange(4, 513)
pairs = np.array([P.Strided(int(s)).num_pairs(n) for s in strides])
best = int(strides[pairs.argmin()])
fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=72)
ax.plot(strides, pairs, label="Strided(l).num_pairs(4096)")
ax.axvline(best, color="tab:green", ls="--", label=f"minimum at l = {best}")
ax.axvline(np.sqrt(n), color="tab:red", ls=":", label=f"√n = {np.sqrt(n):.0f}")
ax.set(xscale="log", yscale="log", xlabel="stride l", ylabel="pairs", title="causal strided pattern, n = 4096")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
"""),
    code("""
ns = [2**e for e in range(10, 21, 2)]
at_sqrt = [P.Strided(round(n_**0.5)).num_pairs(n_) for n_ in ns]
for n_, p in zip(ns, at_sqrt):
    print(f"n = {n_:>9,}: l = √n = {round(n_**0.5):5d}: {p:>16,} pairs = {p / n_**1.5:.3f}·n√n,"
          f" density {p / n_**2:8.4%}")
print(f"fitted: pairs ∝ n^{C.fit_power_law(ns, at_sqrt)[0]:.3f}")
"""),
    md("""
## Measured on this machine

`R.sparse_attention` gathers exactly the allowed pairs (lesson 02's gather). With $l = \\sqrt n$ its time should
grow about as $n^{1.5}$, dense attention's as $n^2$:
"""),
    code("""
rng = np.random.default_rng(0)
d = 32


def qkv(n):
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(3)]


ns_st, ns_dense = [1024, 2048, 4096, 8192], [512, 1024, 2048, 4096]
t_st = [C.time_fn(R.sparse_attention, *qkv(n), P.Strided(round(n**0.5)), repeats=2).min for n in ns_st]
t_dense = [C.time_fn(R.dense_attention, *qkv(n), repeats=2).min for n in ns_dense]
print(f"strided, l = √n: time ∝ n^{C.fit_power_law(ns_st, t_st)[0]:.2f}  ({t_st[-1] * 1e3:.0f} ms at n = {ns_st[-1]})")
print(f"dense:           time ∝ n^{C.fit_power_law(ns_dense, t_dense)[0]:.2f}  ({t_dense[-1] * 1e3:.0f} ms at n = {ns_dense[-1]})")
""", IGNORE),
    code("""
viz.plot_timings({"strided, l = √n (gather)": (ns_st, t_st), "dense": (ns_dense, t_dense)})
""", IGNORE),
    md("""
The two exponents printed above sit far apart, near 1.5 and 2 give or take a few tenths (caches and a busy
machine move them; lesson 02's exercise explains why). Yet at these sizes the gather can be *slower* than dense:
it moves every gathered key through memory one pair at a time, while dense attention runs one big matrix
product at full speed. Fewer FLOPs is not less time until $n$ is large, and on a GPU the strided pattern has a
worse problem — its columns touch every key block:
"""),
    code("""
viz.plot_layout(P.Strided(64), 4096, 64)
"""),
    md("""
Every block of the causal triangle is active, each mostly wasted: a block-sparse kernel does nearly dense work.
On an H100 (course anchors) `Strided(256)` at 16k tokens runs only 1.9× faster than dense causal attention
against an ideal 28.7×. Lesson 06 is about this gap.

## Explore

Pick the pattern, the length and the stride: the two heads, their two-step composition and the counts.
"""),
    code("""
def explore(kind="strided", n=64, l=8, c=1):
    c = min(c, l)
    a1, a2 = heads(kind, n, l, c)
    eye, causal = np.eye(n, dtype=bool), np.tril(np.ones((n, n), dtype=bool))
    two = compose(a1, a2) if kind == "strided" else compose(a2 | eye, a1 | eye)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), dpi=72)
    for ax, (name, m) in zip(axes, {"A(1)": a1, "A(2)": a2, "two steps": two}.items()):
        ax.imshow(m, cmap="Blues", interpolation="nearest")
        ax.set_title(f"{name}: {int(m.sum())} pairs", fontsize=9)
    fig.suptitle(f"{kind}, n = {n}, l = {l}: two steps cover {(two & causal).sum() / causal.sum():.0%} "
                 f"of causal pairs", fontsize=10)
    plt.show()


widgets.interact(explore, kind=["strided", "fixed"], n=(16, 128, 8), l=(1, 32), c=(1, 8));
""", IGNORE),
    md("""
## Summary

- The Sparse Transformer splits causal attention into two heads: strided (previous $l$ keys + every $l$-th key)
  or fixed (own block + every block's last $c$ keys). The library's `Strided` and `Fixed` are their unions.
- Two heads in sequence connect every causal pair in two steps — shown above and checked on hundreds of sizes.
- With $l \\approx \\sqrt n$ the work is $O(n\\sqrt n)$ (exactly minimal at $l = \\sqrt{n/2}$); measured time
  follows, but strided columns defeat block-sparse kernels.

**Exercise:** [exercises/05_sparse_transformer.ipynb](../exercises/05_sparse_transformer.ipynb) — write the strided
and fixed masks, check the two-step claim numerically, and sweep the stride.
"""),
]

LESSONS = {
    "04_random_and_bigbird": (
        "04 · Random attention and BigBird",
        ["read an attention pattern as a graph and measure its hop distances and diameter",
         "explain, with measurements, why random edges are shortcuts (diameter ~ log n) and global blocks hubs (2)",
         "build BigBird ITC from window, global and random blocks, and state what its defaults cost"],
        L04),
    "05_sparse_transformer": (
        "05 · The Sparse Transformer: strided and fixed",
        ["write the strided and fixed patterns exactly as in the paper, head by head",
         "show that two heads connect every causal pair in two steps",
         "derive the O(n·√n) choice l ≈ √n, and measure it against dense attention"],
        L05),
}


def main() -> int:
    for name, (title, goals, cells) in LESSONS.items():
        write_if_changed(ROOT / "notebooks" / f"{name}.ipynb", build(name, title, goals, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
