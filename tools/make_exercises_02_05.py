"""Author the solution notebooks 02–05 (solutions/) with nbformat; exercises/ is built from them by the course build.

    .venv/bin/python tools/make_exercises_02_05.py
    .venv/bin/python tools/execute_notebooks.py solutions/0[2-5]_*.ipynb
    .venv/bin/saattn build-exercises

Solution code sits between `### BEGIN SOLUTION` / `### END SOLUTION` (the build turns it into a stub); the checks
live in saattn_edu/grading/exercises/ex02.py … ex05.py. Outputs come from executing, never from this file.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_lessons_00_03 import SETUP, write_if_changed  # noqa: E402  the same Colab cell in every notebook

ROOT = Path(__file__).resolve().parent.parent
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/{name}.ipynb)")
IGNORE = ("nbval-ignore-output",)
HOW = """**How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure),
compares with the library's reference and gives points per case. Calling the library's own solution inside your
function does not count: the check notices and refuses."""


def md(text):
    return ("md", text, ())


def code(text, tags=()):
    return ("code", text, tags)


def grade_cell(name):
    return md(f"""
## Your grade

Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
`saattn grade exercises/{name}.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
""")


def build(name: str, title: str, intro: str, goals: list[str], cells: list) -> nbf.NotebookNode:
    header = f"# {title}\n\n{BADGE.format(name=name)}\n\n{intro}\n\n**Learning goals**\n"
    header += "\n".join(f"- {g}" for g in goals) + "\n\n" + HOW
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(header), nbf.v4.new_code_cell(SETUP, metadata={"tags": ["colab-setup"]})]
    for kind, text, tags in cells + [grade_cell(name)]:
        meta = {"tags": list(tags)} if tags else {}
        make = nbf.v4.new_markdown_cell if kind == "md" else nbf.v4.new_code_cell
        nb.cells.append(make(text.strip("\n"), metadata=meta))
    return nb


# ---------------------------------------------------------------------------------------------------------------
# 02 — local attention
# ---------------------------------------------------------------------------------------------------------------
E02 = [
    code('''
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings in exercise 5 (as in lessons 00 and 02)

import math

import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R
from saattn_edu.grading import check
'''),
    md("""
## Exercise 1: a sliding-window mask

Write `sliding_window_mask(n, window, causal)` returning an `(n, n)` boolean array. Causal: key `j` is allowed
when `0 <= i - j < window`. Non-causal: when `|i - j| <= window // 2`.

<details><summary>Hint</summary>

`np.arange(n)[:, None] - np.arange(n)[None, :]` is the `(n, n)` array of offsets `i - j`.
</details>
"""),
    code('''
def sliding_window_mask(n, window, causal=False):
    """(n, n) bool mask of SlidingWindow(window, causal)."""
    ### BEGIN SOLUTION: compare the offsets i - j with the window
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n) offsets i - j
    if causal:
        return (d >= 0) & (d < window)
    return np.abs(d) <= window // 2
    ### END SOLUTION
'''),
    code('check("ex02.sliding_window_mask", sliding_window_mask)'),
    md("""
## Exercise 2: a dilated window

`DilatedWindow(window, dilation)` keeps only offsets that are multiples of `dilation`, `(i - j) % dilation == 0`,
and applies the window rule to the number of steps `(i - j) // dilation`. Write `dilated_window_mask`.
"""),
    code('''
def dilated_window_mask(n, window, dilation, causal=False):
    """(n, n) bool mask of DilatedWindow(window, dilation, causal)."""
    ### BEGIN SOLUTION: the grid (i - j) % dilation == 0, then the window rule on the steps
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    steps = d // dilation
    if causal:
        return (d % dilation == 0) & (steps >= 0) & (steps < window)
    return (d % dilation == 0) & (np.abs(steps) <= window // 2)
    ### END SOLUTION
'''),
    code('check("ex02.dilated_window_mask", dilated_window_mask)'),
    md("""
## Exercise 3: neighbour lists without a mask

A mask costs `n²` booleans: 10 GB at `n = 100,000`. A sparse kernel reads CSR neighbour lists instead (lesson
01): row `i`'s keys are `indices[indptr[i]:indptr[i + 1]]`, ascending. A window knows its keys without looking
at any other pair: row `i` holds `j = i + s·dilation` for the allowed steps `s`
(`-(window - 1) <= s <= 0` causal, `|s| <= window // 2` otherwise), kept where `0 <= j < n`.
Write `window_neighbors(n, window, dilation, causal)` returning `(indptr, indices)` in O(n·w) time and memory.

<details><summary>Hint</summary>

`cand = np.arange(n)[:, None] + dilation * steps[None, :]` is `(n, m)`; `valid = (cand >= 0) & (cand < n)`;
`cand[valid]` reads row by row, so it is already `indices`; `indptr` is 0 then the cumulative sum of
`valid.sum(axis=1)`.
</details>
"""),
    code('''
def window_neighbors(n, window, dilation=1, causal=False):
    """CSR (indptr (n+1,), indices (nnz,)) of DilatedWindow(window, dilation, causal), never n × n."""
    ### BEGIN SOLUTION: candidate keys i + s·dilation for the allowed steps, keep those inside [0, n)
    left, right = (window - 1, 0) if causal else (window // 2, window // 2)
    steps = np.arange(-left, right + 1)  # (m,) ascending, so keys come out ascending
    cand = np.arange(n)[:, None] + dilation * steps[None, :]  # (n, m)
    valid = (cand >= 0) & (cand < n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=indptr[1:])
    return indptr, cand[valid]
    ### END SOLUTION
'''),
    code('check("ex02.window_neighbors", window_neighbors)'),
    md("""
## Exercise 4: sparse attention by gather

Now the attention itself, touching only the allowed pairs. For query `i` with keys `J = indices[indptr[i]:indptr[i+1]]`:

$$o_i = \\sum_{j \\in J} \\frac{e^{s_{ij}}}{\\sum_{j' \\in J} e^{s_{ij'}}}\\, v_j, \\qquad s_{ij} = \\frac{q_i \\cdot k_j}{\\sqrt d}.$$

Rows have different lengths, so pad them: `m` = the longest row, an `(n, m)` array of key indices with a
`valid` flag, gather `k[idx]` and `v[idx]` as `(n, m, d)` arrays, give padded slots a score of `-inf`, subtract
each row's max before `np.exp`, and return zeros for a row with no keys (never NaN). Write
`sparse_attention(q, k, v, indptr, indices)` for `q, k, v` of shape `(n, d)`; it must never build an `(n, n)`
array: exercise 5 times it.

<details><summary>Hint</summary>

`lengths = np.diff(indptr)`; `slot = np.arange(m)[None, :]`; `valid = slot < lengths[:, None]`;
`pos = np.where(valid, indptr[:-1, None] + slot, 0)`; `idx = indices[pos]` (careful when there are no pairs at all);
scores `np.einsum("nd,nmd->nm", q, k[idx])`. A row of only `-inf` has max `-inf`: replace it by 0 before
subtracting, and divide by the row sum only where it is positive.
</details>
"""),
    code('''
def sparse_attention(q, k, v, indptr, indices):
    """softmax(q kᵀ / √d) v restricted to the CSR pairs; q, k, v (n, d); rows without keys give 0."""
    ### BEGIN SOLUTION: pad rows to the longest, gather keys and values, masked softmax, weighted sum
    n, d = q.shape
    lengths = np.diff(indptr)  # (n,)
    m = int(lengths.max(initial=0))
    out = np.zeros((n, v.shape[1]), dtype=np.result_type(q, k, v))
    if m == 0:
        return out  # no pairs at all: every row is empty
    slot = np.arange(m)[None, :]  # (1, m)
    valid = slot < lengths[:, None]  # (n, m)
    idx = indices[np.where(valid, indptr[:-1, None] + slot, 0)]  # (n, m) key of each slot (padding: any key)
    scores = np.einsum("nd,nmd->nm", q, k[idx]) / math.sqrt(d)  # (n, m)
    scores = np.where(valid, scores, -np.inf)
    top = scores.max(axis=1, keepdims=True)  # (n, 1); -inf for an empty row
    p = np.exp(scores - np.where(np.isfinite(top), top, 0))  # padding: exp(-inf) = 0
    total = p.sum(axis=1, keepdims=True)  # (n, 1)
    out[:] = np.einsum("nm,nmd->nd", p, v[idx]) / np.where(total > 0, total, 1)
    return out
    ### END SOLUTION
'''),
    code('check("ex02.sparse_attention", sparse_attention)'),
    md("""
## Exercise 5: O(n·w), measured

Your `sparse_attention` does `n · w` dot products for a window of `w`; dense attention does `n²`. Time both on this
machine with `C.time_fn` (fastest of a few repeats) and fit `t ≈ c·n^p` with `C.fit_power_law`. The sizes below
are a suggestion: the dense ones stop early because they grow fast.
"""),
    code('''
rng = np.random.default_rng(0)
d, w = 16, 9


def inputs(n):
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(3)]


ns_sparse, ns_dense = [512, 1024, 2048, 4096, 8192], [256, 512, 1024, 2048]
### BEGIN SOLUTION: time sparse_attention on a window's neighbour lists and R.dense_attention, then fit
t_sparse = [C.time_fn(sparse_attention, *inputs(n), *window_neighbors(n, w), repeats=3).min for n in ns_sparse]
t_dense = [C.time_fn(R.dense_attention, *inputs(n), repeats=3).min for n in ns_dense]
### END SOLUTION
p_sparse, _ = C.fit_power_law(ns_sparse, t_sparse)
p_dense, _ = C.fit_power_law(ns_dense, t_dense)
print(f"your sparse_attention, window {w}: time ∝ n^{p_sparse:.2f}   ({t_sparse[-1] * 1e3:.1f} ms at n = {ns_sparse[-1]})")
print(f"dense attention:                  time ∝ n^{p_dense:.2f}   ({t_dense[-1] * 1e3:.1f} ms at n = {ns_dense[-1]})")
''', IGNORE),
    md("""
The check times **your** `sparse_attention` itself (a window of 9 keys, `d = 16`, `n` from 512 to 8,192, fastest
of five calls per size) after checking it on one small input. It passes when the fitted exponent is below **1.3**:
a correct gather fits about 1.0, anything that builds an `n × n` array about 2. On a busy machine a size can be
slow by accident; the check then measures once more and keeps the faster times before it decides.

> Why these sizes? Up to `n ≈ 8k` the gathered `(n, w, d)` arrays fit in the CPU caches. Beyond, each step
> waits on main memory, and the measured exponent of the very same O(n·w) code drifts up by a few tenths:
> counted work is linear, wall-clock time is linear only as long as the memory traffic per pair stays the same
> (lesson 06 comes back to this).
"""),
    code('check("ex02.linear_time", sparse_attention)', IGNORE),
]
# ---------------------------------------------------------------------------------------------------------------
# 03 — global tokens
# ---------------------------------------------------------------------------------------------------------------
E03 = [
    code('''
import numpy as np

from saattn_edu import patterns as P
from saattn_edu.grading import check
'''),
    md("""
## Exercise 1: global tokens

`GlobalTokens(indices)` allows `(i, j)` when `i` or `j` is in `indices`: a global token attends to everything and
everything attends to it. The list may be unsorted, hold repeats, or be empty. Write `global_tokens_mask(n, indices)`.
"""),
    code('''
def global_tokens_mask(n, indices):
    """(n, n) bool mask of GlobalTokens(indices)."""
    ### BEGIN SOLUTION: mark the global positions, then broadcast rows | columns
    g = np.zeros(n, dtype=bool)  # (n,)
    g[np.asarray(indices, dtype=np.int64)] = True
    return g[:, None] | g[None, :]
    ### END SOLUTION
'''),
    code('check("ex03.global_tokens_mask", global_tokens_mask)'),
    md("""
## Exercise 2: Longformer's mask

`Longformer(window, global_indices, dilation)` is exactly `DilatedWindow(window, dilation) | GlobalTokens(global_indices)`
(non-causal here): the dilated window keeps `(i - j) % dilation == 0` and `|(i - j) // dilation| <= window // 2`.
Write `longformer_mask(n, window, global_indices, dilation)` (you may call your `global_tokens_mask`).
"""),
    code('''
def longformer_mask(n, window, global_indices, dilation=1):
    """(n, n) bool mask of Longformer(window, global_indices, dilation), non-causal."""
    ### BEGIN SOLUTION: the dilated window rule, OR the global rows and columns
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    local = (d % dilation == 0) & (np.abs(d // dilation) <= window // 2)
    return local | global_tokens_mask(n, global_indices)
    ### END SOLUTION
'''),
    code('check("ex03.longformer_mask", longformer_mask)'),
    md("""
## Exercise 3: who reaches whom in two layers

Read a mask as a graph: an edge `i → j` when query `i` may attend to key `j`. After one layer, token `i` holds
information from its keys; the residual stream also keeps its own. After two layers it holds what its keys held
after one. So with `S = mask | I` (the identity for the residual), pair `(i, j)` is connected within two layers
when `S[i, k] and S[k, j]` for some `k`: a boolean matrix product. Write `two_hop_reachable(mask)`.

<details><summary>Hint</summary>

`S = mask.astype(int) | np.eye(n, dtype=int)`; `(S @ S) > 0`. The product counts paths; `> 0` turns counts into booleans.
</details>
"""),
    code('''
def two_hop_reachable(mask):
    """(n, n) bool: can information flow from key j to query i within two layers (residual included)?"""
    ### BEGIN SOLUTION: add the identity, one integer matrix product, > 0
    s = mask.astype(np.int64) | np.eye(len(mask), dtype=np.int64)  # (n, n) one layer + residual
    return (s @ s) > 0
    ### END SOLUTION
'''),
    code('check("ex03.two_hop_reachable", two_hop_reachable)'),
    md("""
Lesson 03's claim, checked with your function: a window alone connects only nearby pairs in two layers; one
global token anywhere connects every pair.
"""),
    code('''
n = 64
window = P.SlidingWindow(5).mask(n)
for name, mask in {"window 5": window, "window 5 + global token 40": window | global_tokens_mask(n, [40])}.items():
    print(f"{name:28} pairs connected in two layers: {two_hop_reachable(mask).mean():6.1%}")
'''),
    md("""
## Exercise 4: Longformer's cost, counted

How many pairs does `Longformer(window, global_indices)` allow? The check asks for sequences of a million to a
billion tokens, so count without a mask (a mask would need terabytes). Inclusion–exclusion, with `h = window // 2`:

- the window alone allows `n + 2·(h·n − h(h+1)/2)` pairs (`h` clipped to `n − 1`);
- global row `x` adds the keys its window misses: `n − r(x)`, where `r(x) = min(h, x) + min(h, n − 1 − x) + 1`;
  global column `x` adds the same number of queries (the window is symmetric);
- a pair `(x, y)` of two global tokens outside each other's window is added by row `x` **and** by column `y`:
  subtract it once.

Repeated indices count once (`np.unique`). Write `longformer_num_pairs(n, window, global_indices)` returning an `int`.
"""),
    code('''
def longformer_num_pairs(n, window, global_indices):
    """Exact number of pairs of Longformer(window, global_indices) on n tokens (non-causal, no dilation)."""
    ### BEGIN SOLUTION: window pairs + what global rows and columns add - global pairs counted twice
    g = np.unique(np.asarray(global_indices, dtype=np.int64))  # (G,)
    h = min(window // 2, n - 1)
    pairs = n + 2 * (h * n - h * (h + 1) // 2)
    row = np.minimum(h, g) + np.minimum(h, n - 1 - g) + 1  # (G,) window keys of global row x
    pairs += 2 * int((n - row).sum())
    pairs -= int((np.abs(g[:, None] - g[None, :]) > h).sum())
    return int(pairs)
    ### END SOLUTION
'''),
    code('check("ex03.longformer_num_pairs", longformer_num_pairs)'),
    md("""
## Exercise 5: one number, by reasoning

With `SlidingWindow(9)` only, on `n = 100` tokens, how many layers are needed before token 99's output can
depend on token 0? Set `q5_answer` (an integer) and run the cell.

<details><summary>Hint</summary>

Each layer moves information at most `9 // 2` tokens; you need to cover a distance of 99.
</details>
"""),
    code('''
### BEGIN SOLUTION: set q5_answer to the number of layers
q5_answer = 25  # ceil(99 / 4)
### END SOLUTION
check("ex03.q5", q5_answer)
'''),
]
# ---------------------------------------------------------------------------------------------------------------
# 04 — BigBird
# ---------------------------------------------------------------------------------------------------------------
E04 = [
    code('''
import numpy as np

from saattn_edu import patterns as P
from saattn_edu.grading import check
'''),
    md("""
BigBird's ITC pattern decides everything per block of `block` tokens. With `nb` blocks, block row `bi` may
attend to block column `bj` when

1. **window**: `|bi - bj| <= window_blocks // 2`;
2. **global**: `bi < global_blocks` or `bj < global_blocks` (the first blocks are global);
3. **random**: `bj` is one of row `bi`'s `random_blocks` random blocks.

The random blocks of a non-global row are drawn, without repeats, among the **candidates**: blocks
`bj >= global_blocks` outside the window (`|bi - bj| > window_blocks // 2`). A global row needs none (it already
sees everything): its row of the table is all `-1`. When a row has fewer candidates than `random_blocks`, it takes
them all and pads with `-1`. `P.BigBird(...).random_blocks_for(n)` returns the library's table:
"""),
    code('''
bb = P.BigBird(block=1, window_blocks=3, global_blocks=2, random_blocks=3, seed=0)  # block=1: a block per token
table = bb.random_blocks_for(12)  # (nb, random_blocks), ascending per row, -1 = padding
print(table)
'''),
    md("""
## Exercise 1: the block layout from its parts

Write `bigbird_block_layout(nb, window_blocks, global_blocks, random_table)`: the `(nb, nb)` boolean block layout,
given the random table (`-1` entries mean nothing). The check compares with `P.BigBird(...).block_layout` built
on the very same table.

<details><summary>Hint</summary>

Broadcast `bi = np.arange(nb)[:, None]`, `bj = np.arange(nb)[None, :]` for rules 1 and 2; for rule 3,
`rows, ks = np.nonzero(random_table >= 0)` and `layout[rows, random_table[rows, ks]] = True`.
</details>
"""),
    code('''
def bigbird_block_layout(nb, window_blocks, global_blocks, random_table):
    """(nb, nb) bool block layout of BigBird ITC: window | global | the random blocks of `random_table`."""
    ### BEGIN SOLUTION: window and global rules by broadcasting, then switch on the table's entries
    bi, bj = np.arange(nb)[:, None], np.arange(nb)[None, :]
    layout = (np.abs(bi - bj) <= window_blocks // 2) | (bi < global_blocks) | (bj < global_blocks)
    rows, ks = np.nonzero(random_table >= 0)
    layout[rows, random_table[rows, ks]] = True
    return layout
    ### END SOLUTION
'''),
    code('check("ex04.bigbird_block_layout", bigbird_block_layout)'),
    md("""
## Exercise 2: drawing the random blocks

Write `random_blocks(nb, window_blocks, global_blocks, random_blocks, seed)` returning the `(nb, random_blocks)`
integer table: row `bi` holds `min(random_blocks, #candidates)` **distinct** candidates of row `bi`, then `-1`
padding; global rows are all `-1`. Draw with `rng = np.random.default_rng(seed)`, so a seed always gives the same
pattern.

**How this is graded, and why not by equality.** The library draws all rows at once with a vectorised form of
Floyd's algorithm (`saattn_edu/patterns/random_pattern.py: draw_distinct`: for step `t = 0..r-1` every row draws
`x` in `[0, count - r + t]` and takes `count - r + t` itself if `x` was already taken; the `x`-th candidate is then
counted left of the window first, then right of it). Any other correct sampler, `rng.choice(..., replace=False)`
row by row for instance, gives a different but equally valid BigBird. So the check grades the **rules**, not one
algorithm's bits: right shape and dtype, global rows all `-1`, every drawn block a candidate, no repeats, the right
count per row, and draws that vary (a table that always takes the smallest candidates fails).

<details><summary>Hint</summary>

For row `bi`: `bj = np.arange(global_blocks, nb)`; `cand = bj[np.abs(bj - bi) > window_blocks // 2]`;
`rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)`.
</details>
"""),
    code('''
def random_blocks(nb, window_blocks, global_blocks, random_blocks, seed):
    """(nb, random_blocks) int table of BigBird's random blocks, -1 padded; reproducible from `seed`."""
    ### BEGIN SOLUTION: per non-global row, choose among the candidates without replacement
    rng = np.random.default_rng(seed)
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)
        table[bi, : len(pick)] = np.sort(pick)
    return table
    ### END SOLUTION
'''),
    code('check("ex04.random_blocks", random_blocks)'),
    md("""
Your two functions together give a complete BigBird layout. BigBird's defaults on 4,096 tokens (64 blocks of 64):
"""),
    code('''
layout = bigbird_block_layout(64, 3, 2, random_blocks(64, 3, 2, 3, seed=0))
print(f"{layout.sum()} of {layout.size} blocks computed ({layout.mean():.1%}); "
      f"library with its own draw: {P.BigBird().block_layout(4096, 64).sum()} blocks")
'''),
    md("""
## Exercise 3: hop distances in the attention graph

Read a layout (or a mask) as a directed graph: an edge `i → k` when `adj[i, k]` (row `i` attends to `k`). The hop
distance from `i` to `j` is the fewest edges on a path `i → … → j`: the number of layers before `i`'s output can
depend on `j`. Write `hop_distances(adj)` returning an `(n, n)` integer array, `0` on the diagonal and `-1` for
pairs never connected.

<details><summary>Hint</summary>

Breadth-first from every row at once: `reach` starts as the identity; each step,
`new = ((reach.astype(int) @ adj.astype(int)) > 0) & ~reach` are the pairs first reached at this many hops; stop
when `new` is empty.
</details>
"""),
    code('''
def hop_distances(adj):
    """(n, n) int: fewest steps i -> ... -> j along adj; 0 on the diagonal, -1 if never connected."""
    ### BEGIN SOLUTION: breadth-first search from all rows at once with boolean matrix products
    n = len(adj)
    step = adj.astype(np.int64)  # (n, n)
    reach = np.eye(n, dtype=bool)
    dist = np.where(reach, 0, -1)
    hops = 0
    while True:
        new = ((reach.astype(np.int64) @ step) > 0) & ~reach
        if not new.any():
            return dist
        hops += 1
        dist[new] = hops
        reach |= new
    ### END SOLUTION
'''),
    code('check("ex04.hop_distances", hop_distances)'),
    md("""
## Exercise 4: the diameter

The diameter is the largest hop distance over all pairs: how many layers until every token can influence every
other. Write `diameter(adj)` returning an `int`, or `-1` when some pair is never connected.
"""),
    code('''
def diameter(adj):
    """Largest hop distance over all pairs of adj, or -1 when some pair is never connected."""
    ### BEGIN SOLUTION: the maximum of hop_distances, unless a -1 is there
    dist = hop_distances(adj)
    return -1 if (dist < 0).any() else int(dist.max())
    ### END SOLUTION
'''),
    code('check("ex04.diameter", diameter)'),
    md("""
Lesson 04's table, with your functions, on 64 blocks: window only, window + random, window + random + global.
"""),
    code('''
nb = 64
window_only = bigbird_block_layout(nb, 3, 0, np.full((nb, 0), -1))
with_random = bigbird_block_layout(nb, 3, 0, random_blocks(nb, 3, 0, 3, seed=0))
with_global = bigbird_block_layout(nb, 3, 2, random_blocks(nb, 3, 2, 3, seed=0))
for name, adj in {"window": window_only, "window + random": with_random, "window + random + global": with_global}.items():
    dist = hop_distances(adj)
    print(f"{name:26} diameter {diameter(adj):2d}, mean hop distance {dist[dist > 0].mean():5.2f}")
'''),
    md("""
## Exercise 5: what the defaults cost

BigBird's defaults are `block=64, window_blocks=3, global_blocks=2, random_blocks=3`. How many keys does a query in
a block far from the start (not global, its window and random blocks all distinct from the global ones) attend to?
Set `q5_answer`.
"""),
    code('''
### BEGIN SOLUTION: set q5_answer to the number of keys
q5_answer = (3 + 2 + 3) * 64
### END SOLUTION
check("ex04.q5", q5_answer)
'''),
]
# ---------------------------------------------------------------------------------------------------------------
# 05 — Sparse Transformer
# ---------------------------------------------------------------------------------------------------------------
E05 = [
    code('''
import numpy as np

from saattn_edu import patterns as P
from saattn_edu.grading import check
'''),
    md("""
Child et al. (2019), *Generating Long Sequences with Sparse Transformers*, factorise causal attention into two
heads with stride `l`. With `d = i - j`:

| pattern | head A⁽¹⁾ | head A⁽²⁾ |
|---|---|---|
| **strided** | `0 <= d <= l` (the previous `l` keys and itself) | `d >= 0` and `d % l == 0` |
| **fixed** | `j // l == i // l` (same block) | `j % l >= l - c` (the last `c` keys of every block: "summaries") |

Both causal (`j <= i`). The library's `P.Strided(l)` and `P.Fixed(l, c)` are the unions A⁽¹⁾ ∪ A⁽²⁾;
non-causal versions drop `j <= i` (strided: `|d| <= l` or `d % l == 0`).

## Exercise 1: the strided mask

Write `strided_mask(n, stride, causal)`.
"""),
    code('''
def strided_mask(n, stride, causal=True):
    """(n, n) bool mask of Strided(stride, causal)."""
    ### BEGIN SOLUTION: the local band OR the stride grid, on the offsets d = i - j
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    if causal:
        return ((d >= 0) & (d <= stride)) | ((d >= 0) & (d % stride == 0))
    return (np.abs(d) <= stride) | (d % stride == 0)
    ### END SOLUTION
'''),
    code('check("ex05.strided_mask", strided_mask)'),
    md("""
## Exercise 2: the fixed mask

Write `fixed_mask(n, stride, c, causal)`: same block, or a summary key (`j % stride >= stride - c`); and
`j <= i` when causal.
"""),
    code('''
def fixed_mask(n, stride, c, causal=True):
    """(n, n) bool mask of Fixed(stride, c, causal)."""
    ### BEGIN SOLUTION: same block OR summary column, then j <= i when causal
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    out = (i // stride == j // stride) | (j % stride >= stride - c)
    return out & (j <= i) if causal else out
    ### END SOLUTION
'''),
    code('check("ex05.fixed_mask", fixed_mask)'),
    md("""
## Exercise 3: the strided pattern's two heads

The paper gives each factor its own head (or its own layer). Write `strided_heads(n, stride)` returning the pair
`(a1, a2)` of causal masks of the table above.
"""),
    code('''
def strided_heads(n, stride):
    """(A1, A2): the strided pattern's local head and its stride head, both causal (n, n) bool."""
    ### BEGIN SOLUTION: split the causal strided rule into its two terms
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    return (d >= 0) & (d <= stride), (d >= 0) & (d % stride == 0)
    ### END SOLUTION
'''),
    code('check("ex05.strided_heads", strided_heads)'),
    md("""
## Exercise 4: two heads in sequence

When a layer using head `outer` reads the output of a layer using head `inner`, query `i` depends on key `j` when
`outer[i, k]` and `inner[k, j]` for some `k`. Write `compose(outer, inner)`: that boolean matrix product.
"""),
    code('''
def compose(outer, inner):
    """(n, n) bool: some k with outer[i, k] and inner[k, j]."""
    ### BEGIN SOLUTION: an integer matrix product, > 0
    return (outer.astype(np.int64) @ inner.astype(np.int64)) > 0
    ### END SOLUTION
'''),
    code('check("ex05.compose", compose)'),
    md("""
**The two-step claim, checked numerically.** The paper's argument for the strided pattern: for `j <= i`, take
`k = i - ((i - j) % l)`. Then `0 <= i - k < l` (head A⁽¹⁾ links `i` to `k`) and `k - j` is a multiple of `l`
(head A⁽²⁾ links `k` to `j`). So `compose(A1, A2)` should contain **every** causal pair. For the fixed pattern the
order flips: a query reaches a summary key of an earlier block with A⁽²⁾, and that summary key (the last position
of its block when `c >= 1`) reaches its whole block with A⁽¹⁾; the query's own block is A⁽¹⁾ directly, which the
residual stream (`| I`) keeps. Your functions, over many sizes and strides:
"""),
    code('''
failures = 0
for n in range(1, 70, 7):
    causal = np.tril(np.ones((n, n), dtype=bool))
    eye = np.eye(n, dtype=bool)
    block = np.arange(n) // np.arange(1, 12)[:, None]  # (strides, n) block of every token
    for stride in range(1, 12):
        a1, a2 = strided_heads(n, stride)
        failures += not np.array_equal(compose(a1, a2), causal)
        block_head = (block[stride - 1][:, None] == block[stride - 1][None, :]) & causal  # fixed A(1)
        for c in range(1, stride + 1):
            summary_head = (np.arange(n)[None, :] % stride >= stride - c) & causal  # fixed A(2)
            failures += not np.array_equal(compose(summary_head | eye, block_head | eye), causal)
print("pairs (n, stride[, c]) where two steps miss a causal pair:", failures)
'''),
    md("""
## Exercise 5: counting strided pairs

How much work is `Strided(l)`? Count its causal pairs exactly, for sequences up to a trillion tokens: offset `d`
occurs in `n - d` rows; the band keeps offsets `0 .. min(l, n - 1)`, the grid adds `k·l` for `k >= 2` while
`k·l <= n - 1`. Write `strided_num_pairs(n, stride)` returning an `int`.

<details><summary>Hint</summary>

`sum_{d=0..r} (n - d) = (r + 1)·n - r(r + 1)/2`; with `K = (n - 1) // l`, `sum_{k=2..K} (n - k·l) = (K - 1)·n - l·(K(K + 1)/2 - 1)`
when `K >= 2`. Integer `//` throughout.
</details>
"""),
    code('''
def strided_num_pairs(n, stride):
    """Exact number of pairs of the causal Strided(stride) on n tokens."""
    ### BEGIN SOLUTION: band offsets 0..r, then grid offsets k·stride for k = 2..K, each in n - d rows
    r = min(stride, n - 1)
    band = (r + 1) * n - r * (r + 1) // 2
    k_max = (n - 1) // stride
    grid = (k_max - 1) * n - stride * (k_max * (k_max + 1) // 2 - 1) if k_max >= 2 else 0
    return band + grid
    ### END SOLUTION
'''),
    code('check("ex05.strided_num_pairs", strided_num_pairs)'),
    md("""
## Exercise 6: the √n sweep

Per query, the band holds about `l` keys and the grid about `i / l`, `n / (2l)` on average (causal): the total
`n·(l + n/(2l))` is smallest at `l = √(n/2)`, where it is `√2 · n·√n`. The paper picks `l ≈ √n`: the same
O(n·√n) order, within 6% of the minimum. Write `best_stride(n)`: the stride in `1..n` with the fewest pairs (the
smallest one on a tie), using your `strided_num_pairs`. Then compare it with `√n`.
"""),
    code('''
def best_stride(n):
    """The stride in 1..n minimising strided_num_pairs(n, stride) (the smallest on ties)."""
    ### BEGIN SOLUTION: evaluate every stride, take the first minimum
    pairs = [strided_num_pairs(n, s) for s in range(1, n + 1)]
    return int(np.argmin(pairs)) + 1
    ### END SOLUTION
'''),
    code('check("ex05.best_stride", best_stride)'),
    code('''
for n in [256, 1024, 4096, 16384, 65536]:
    best = best_stride(n)
    pairs = strided_num_pairs(n, best)
    at_sqrt = strided_num_pairs(n, round(n ** 0.5))
    print(f"n = {n:6,}: best stride {best:4d} = {best / n ** 0.5:.2f}·√n, {pairs / (n * n ** 0.5):.2f}·n√n pairs; "
          f"stride √n: {at_sqrt / (n * n ** 0.5):.2f}·n√n pairs")
'''),
]

NOTEBOOKS = {
    "02_local_attention": (
        "Exercises 02: local attention, from the mask to O(n·w) time",
        "You will build lesson 02's sliding and dilated windows, turn them into neighbour lists without ever forming "
        "an `n × n` array, compute attention by gathering only the allowed keys, and measure that its time grows "
        "linearly in `n`.",
        ["build sliding-window and dilated masks with broadcasting;",
         "build CSR neighbour lists of a window directly, in O(n·w);",
         "write sparse attention by gather (padding, masked softmax, empty rows give 0);",
         "time it against dense attention and fit the exponent (graded: below 1.3)."],
        E02),
    "03_global_tokens": (
        "Exercises 03: global tokens and Longformer",
        "You will add lesson 03's hubs to a window: global-token masks, Longformer's composition and its exact "
        "cost, and the two-hop property checked with a boolean matrix product.",
        ["build a global-token mask and Longformer's window ∪ global mask;",
         "compute which pairs are connected within two layers (residual stream included);",
         "count Longformer's pairs in closed form for a million tokens and more."],
        E03),
    "04_bigbird": (
        "Exercises 04: BigBird's blocks and the attention graph",
        "You will assemble BigBird's ITC block layout from its parts, draw its random blocks from a seed, and "
        "measure the attention graph: hop distances and diameter, the numbers that explain why random shortcuts "
        "and global blocks matter.",
        ["build BigBird's block layout: window, global and random blocks;",
         "draw BigBird's random blocks (seeded) under its rules: outside the window and the globals, distinct;",
         "compute all-pairs hop distances and the diameter of an attention graph."],
        E04),
    "05_sparse_transformer": (
        "Exercises 05: the Sparse Transformer's strided and fixed patterns",
        "You will write the two factorised patterns of Child et al. (2019) exactly as in the paper, check "
        "numerically that their two heads connect every pair in two steps, and find the stride that minimises "
        "the work: l ≈ √n.",
        ["build the strided and fixed masks, and the strided pattern's two heads;",
         "compose two heads with a boolean product and verify the two-step connectivity claim;",
         "count strided pairs in closed form and sweep the stride to find the O(n·√n) optimum."],
        E05),
}


def main() -> int:
    for name, (title, intro, goals, cells) in NOTEBOOKS.items():
        write_if_changed(ROOT / "solutions" / f"{name}.ipynb", build(name, title, intro, goals, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
