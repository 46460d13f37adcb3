"""Author lessons 08–09 (notebooks/) and the solution of exercise 08 (solutions/) with nbformat.

    .venv/bin/python tools/make_lessons_08_09.py
    .venv/bin/python tools/execute_notebooks.py notebooks/0[89]_*.ipynb solutions/08_triton_kernel.ipynb
    .venv/bin/saattn build-exercises 08_triton_kernel

The notebooks are the product; this script is how they are written (outputs come from executing, never from
this file). Like make_lessons_06_07.py it is long: it is prose and cells, not library code.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_exercises_02_05 import build as build_solution  # noqa: E402  same header, HOW text and grade cell
from make_lessons_00_03 import build as build_lesson  # noqa: E402  same header and Colab cell
from make_lessons_00_03 import write_if_changed as _write  # noqa: E402  keeps outputs when nothing changed

ROOT = Path(__file__).resolve().parent.parent
IGNORE = ("nbval-ignore-output",)  # measured numbers, versions, widgets: they change run to run


def md(text):
    return ("md", text, ())


def code(text, tags=()):
    return ("code", text, tags)


# ---------------------------------------------------------------------------------------------------------------
# Exercise 08 — the inner loop of the Triton kernel
# ---------------------------------------------------------------------------------------------------------------
E08 = [
    md("""
## Setup: Triton, or its interpreter

Triton compiles `@triton.jit` functions for a GPU. Without one, setting `TRITON_INTERPRET=1` **before `triton` is
imported** makes Triton run the same kernels on CPU tensors with NumPy: every program of the grid in turn, every
`tl.*` call on whole tiles. It is slow (each tile of the loop costs milliseconds) but exact, so the checks use
small sequences. Import order matters: if `triton` was imported before the variable was set, `tl.max` and `tl.sum`
fail inside the interpreter; restart the kernel and run this cell first. Where Triton is not installed (macOS,
Windows) the cells below still run, and say that they skip.
"""),
    code('''
import math
import os

import numpy as np
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton loads: kernels then run on CPU tensors

from saattn_edu import patterns as P, reference as R
from saattn_edu.accel.block_plan import build_plan, pattern_rule
from saattn_edu.grading import check
from saattn_edu.grading.exercises.ex08 import interpreter_problem, launch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # stand-ins: @triton.jit keeps the function, tl.constexpr annotates; nothing launches
    from saattn_edu.grading.exercises.ex08 import no_tl as tl, no_triton as triton

    HAS_TRITON = False
where = "compiled for the GPU" if DEVICE == "cuda" else "run by Triton's interpreter on the CPU"
print(f"Triton installed: {HAS_TRITON}; kernels are {where}" if HAS_TRITON else
      "Triton is not installed here (Linux x86-64 only): kernel cells will skip. Try Colab.")
print(interpreter_problem() or "")
'''),
    md("""
## The kernel you complete

The plan comes from the library (`saattn_edu.accel.block_plan`, lesson 08): for query tile `i`, the key tiles with
at least one allowed pair, split into **full** tiles (every pair allowed: no mask needed) and **partial** tiles
(each with a `BM × BN` uint8 token mask in `Masks`). Both lists are CSRs: the key tiles of query tile `pid_m` are
`Idx[Ptr[pid_m] : Ptr[pid_m + 1]]`.

One program of the kernel owns `BM` queries of one (batch, head). It loads its queries once, then walks the full
list and the partial list with the same loop, `attend_tiles`. You write the three functions that loop calls:

```
for t in range(start, end):                       # this query tile's active key tiles
    kb = tl.load(Idx + t)                         # the next one
    k, v, col_ok = load_kv_tile(...)              # Exercise 1
    qk = tl.dot(q, k) * qk_scale                  # (BM, BN) scores in log2 units
    if MASKED:
        qk = mask_partial_tile(qk, ...)           # Exercise 3
    acc, l_i, m_i = online_softmax_update(...)    # Exercise 2
```

Pointers are plain integers plus offsets: `K + row * stride + col` addresses element `(row, col)`, and
`tl.load(ptrs, mask=ok, other=0.0)` reads a whole tile, giving `0.0` where `ok` is False. Tiles are powers of two
(`tl.arange` needs them); the head dimension `D` too.

## Exercise 1: load the next active key tile

Write `load_kv_tile`: key tile `kb` covers positions `kb * BN + offs_n0` (`offs_n0 = tl.arange(0, BN)`); only
positions `< n` exist (`col_ok`). Return `k` as a `(D, BN)` tile (keys as columns: `tl.dot(q, k)` is then `Q Kᵀ`),
`v` as `(BN, D)` and `col_ok`. Element `(position, d)` of K sits at `k_base + position * stride_kn + d`.

> Past `n`, the checks fill K and V with NaN: a load that forgets `mask=` shows up as NaN at once, instead of
> reading memory it does not own (which, in the interpreter, can crash the notebook's kernel).
"""),
    code('''
@triton.jit
def load_kv_tile(k_base, v_base, kb, offs_n0, offs_d, n, stride_kn, stride_vn, BN: tl.constexpr):
    """K of key tile kb as (D, BN), V as (BN, D), zeros past n; and col_ok (BN,): which positions exist."""
    ### BEGIN SOLUTION: positions kb * BN + offs_n0, two masked tl.load calls
    offs_n = kb * BN + offs_n0  # (BN,) key positions of this tile
    col_ok = offs_n < n  # the last tile may run past the sequence end
    k = tl.load(k_base + offs_n[None, :] * stride_kn + offs_d[:, None], mask=col_ok[None, :], other=0.0)  # (D, BN)
    v = tl.load(v_base + offs_n[:, None] * stride_vn + offs_d[None, :], mask=col_ok[:, None], other=0.0)  # (BN, D)
    return k, v, col_ok
    ### END SOLUTION
'''),
    md("""
## Exercise 2: the online-softmax update

Lesson 07's tile update, in Triton. The kernel keeps per query row a running max `m_i`, a running sum `l_i` and an
accumulator `acc (BM, D)`. The scores arrive already multiplied by `scale · log2(e)`, so use **base-2**
exponentials, `tl.math.exp2` (FlashAttention-2 does this: `exp2` is one cheap GPU instruction, and
`2^(x·log2 e) = e^x`):

`m_new = max(m_i, rowmax(qk))`, `alpha = exp2(m_i - m_new)`, `p = exp2(qk - m_new)`,
`l_i = alpha · l_i + rowsum(p)`, `acc = alpha · acc + p @ v`.

Masked scores are `-inf`. A row that has seen no allowed key yet has `m_new = -inf`, and `-inf - (-inf)` is NaN:
use 0 in place of `-inf` inside the exponentials (then `p = 0` and `alpha = 0`). Use `tl.max(x, 1)`, `tl.sum(x, 1)`,
`tl.maximum`, `tl.where`, and `tl.dot(p, v, input_precision="ieee")` (exact fp32 on a GPU too; the default TF32
would miss the `1e-4` tolerance).
"""),
    code('''
@triton.jit
def online_softmax_update(acc, l_i, m_i, qk, v):
    """(acc, l_i, m_i) after one more tile of scores qk (BM, BN) in log2 units (-inf: masked), values v (BN, D)."""
    ### BEGIN SOLUTION: new max, rescale the old state by exp2(m_i - m_new), add the tile
    m_new = tl.maximum(m_i, tl.max(qk, 1))  # (BM,)
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing allowed yet: exps give 0, not NaN
    p = tl.math.exp2(qk - m_safe[:, None])  # (BM, BN)
    alpha = tl.math.exp2(m_i - m_safe)  # (BM,) what the old state is worth under the new max
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="ieee")  # (BM, D)
    return acc, l_i, m_new
    ### END SOLUTION
'''),
    md("""
## Exercise 3: mask a partial tile

A partial tile `t` has its token mask at row `mid = MaskId[t]` of `Masks`, a `(P, BM, BN)` uint8 array stored
contiguously: element `(r, c)` of mask `mid` is at `Masks + mid * BM * BN + r * BN + c`. Return `qk` with `-inf`
where the mask is 0 **or** the key position does not exist (`col_ok`).
"""),
    code('''
@triton.jit
def mask_partial_tile(qk, Masks, mid, offs_m0, offs_n0, col_ok, BM: tl.constexpr, BN: tl.constexpr):
    """qk (BM, BN) with -inf where token mask number mid forbids the pair, or past the sequence end."""
    ### BEGIN SOLUTION: load the (BM, BN) bits, then tl.where
    bits = tl.load(Masks + mid * BM * BN + offs_m0[:, None] * BN + offs_n0[None, :])  # (BM, BN) uint8
    return tl.where((bits != 0) & col_ok[None, :], qk, float("-inf"))
    ### END SOLUTION
'''),
    md("""
## The kernel around your functions (given)

Run this cell again after you edit a function above: on a GPU the compiled kernel is cached with the functions it
saw. `triton_attention` is what the checks call: float32 NumPy `(B, H, n, D)` in and out. It pads the sequence to
whole tiles (NaN in K and V past `n`), builds the plan and launches one program per (query tile, batch·head).
"""),
    code('''
BLOCK = 64  # query and key tile side (a power of two)
LOG2E = 1.4426950408889634


@triton.jit
def attend_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n, Ptr, Idx, MaskId, Masks,
                 pid_m, qk_scale, BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr):
    """Fold one list of this query tile's key tiles (full ones; partial ones when MASKED) into the state."""
    start = tl.load(Ptr + pid_m)
    end = tl.load(Ptr + pid_m + 1)
    for t in range(start, end):
        kb = tl.load(Idx + t)  # the next active key tile
        k, v, col_ok = load_kv_tile(k_base, v_base, kb, offs_n0, offs_d, n, stride_n, stride_n, BN)
        qk = tl.dot(q, k, input_precision="ieee") * qk_scale  # (BM, BN) scores, log2 units
        if MASKED:  # a compile-time branch: the full-tile loop has no mask code at all
            qk = mask_partial_tile(qk, Masks, tl.load(MaskId + t), offs_m0, offs_n0, col_ok, BM, BN)
        acc, l_i, m_i = online_softmax_update(acc, l_i, m_i, qk, v)
    return acc, l_i, m_i


@triton.jit
def fwd_kernel(Q, K, V, O, FPtr, FIdx, PPtr, PIdx, PMask, Masks, qk_scale, n, stride_h, stride_n,
               BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr):
    """One program: BM queries of one (batch·head) row; q, k, v, o share one contiguous (BH, rows, D) layout."""
    pid_m = tl.program_id(0)
    base = tl.program_id(1) * stride_h
    offs_m0, offs_n0, offs_d = tl.arange(0, BM), tl.arange(0, BN), tl.arange(0, D)
    offs_m = pid_m * BM + offs_m0
    row_ok = offs_m < n
    q = tl.load(Q + base + offs_m[:, None] * stride_n + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    m_i = tl.full([BM], 0.0, tl.float32) - float("inf")
    l_i = tl.full([BM], 0.0, tl.float32)
    acc = tl.full([BM, D], 0.0, tl.float32)
    acc, l_i, m_i = attend_tiles(acc, l_i, m_i, q, K + base, V + base, offs_m0, offs_n0, offs_d, n, stride_n,
                                 FPtr, FIdx, FIdx, Masks, pid_m, qk_scale, BM, BN, False)
    acc, l_i, m_i = attend_tiles(acc, l_i, m_i, q, K + base, V + base, offs_m0, offs_n0, offs_d, n, stride_n,
                                 PPtr, PIdx, PMask, Masks, pid_m, qk_scale, BM, BN, True)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # rows that saw no allowed key: output 0
    tl.store(O + base + offs_m[:, None] * stride_n + offs_d[None, :], acc / l_safe[:, None], mask=row_ok[:, None])


def plan_for(pattern, n, device=DEVICE):
    """The library's tile plan: per query tile, CSR lists of full and partial key tiles (block_plan.py)."""
    return build_plan(pattern_rule(pattern, n), n, BLOCK, BLOCK, device)


def _nonempty(t):  # Triton wants a real pointer even for an empty list (the loop never reads it)
    return t if t.numel() else torch.zeros(1, dtype=t.dtype, device=t.device)


def run_kernel(q, k, v, plan, n=None):
    """fwd_kernel on contiguous float32 torch tensors (B, H, rows, D) on one device; the first n rows are real."""
    B, H, rows, D = q.shape
    n = rows if n is None else n
    o = torch.zeros_like(q)
    r = plan.rows
    lists = [_nonempty(x) for x in (r.full_ptr, r.full_idx, r.part_ptr, r.part_idx, r.part_mask, plan.masks)]
    launch(fwd_kernel, (triton.cdiv(n, BLOCK), B * H), q, k, v, o, *lists, LOG2E / math.sqrt(D), n, rows * D, D,
           BM=BLOCK, BN=BLOCK, D=D)
    return o


def triton_attention(q, k, v, pattern):
    """Your kernel on float32 NumPy q, k, v (B, H, n, D) under `pattern`; returns a NumPy array (what checks call)."""
    n = q.shape[-2]
    rows = -(-n // BLOCK) * BLOCK

    def padded(x, fill):  # whole tiles; NaN past n makes an unmasked load visible
        t = torch.full((*x.shape[:-2], rows, x.shape[-1]), fill, dtype=torch.float32)
        t[..., :n, :] = torch.from_numpy(np.array(x, dtype=np.float32))
        return t.to(DEVICE)

    o = run_kernel(padded(q, 0.0), padded(k, math.nan), padded(v, math.nan), plan_for(pattern, n), n)
    return o[..., :n, :].cpu().numpy()
'''),
    md("""
Try it on one pattern before the checks (a causal sliding window over 150 tokens: three query tiles, the last one
ragged):
"""),
    code('''
p, n = P.SlidingWindow(40, causal=True), 150
rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((1, 1, n, 32)).astype(np.float32) for _ in range(3))
plan = plan_for(p, n, "cpu")
print(f"tiles: {plan.n_active} active of {plan.n_tiles}; full {plan.rows.full_idx.numel()}, "
      f"partial {plan.rows.part_idx.numel()}")
if HAS_TRITON:
    try:
        err = np.abs(triton_attention(q, k, v, p) - R.dense_attention(q, k, v, mask=p.mask(n))).max()
        print("matches dense attention (max error < 1e-4):", bool(err < 1e-4))
    except NotImplementedError as exc:
        print("not written yet:", exc)
'''),
    md("""
## The checks

Each check draws fresh random inputs, runs `triton_attention` and compares with `R.dense_attention` under the
pattern's mask (float64) within `1e-4`. The first needs Exercises 1 and 2 only (every tile it visits is full); the
other three need Exercise 3 too: diagonal tiles of causal attention, band edges and a ragged end of sliding windows,
and a random block layout whose blocks (24 to 48 tokens) do not line up with the kernel's 64-token tiles. In the
interpreter each check takes a few seconds; on a GPU every function must be written before any check passes (the
compiler sees the whole kernel).
"""),
    code('''
if HAS_TRITON:
    check("ex08.full_tiles", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")
'''),
    code('''
if HAS_TRITON:
    check("ex08.causal", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")
'''),
    code('''
if HAS_TRITON:
    check("ex08.sliding_window", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")
'''),
    code('''
if HAS_TRITON:
    check("ex08.block_layout", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")
'''),
    md("""
## Exercise 4: time your kernel on a GPU (not graded)

On a GPU (Colab: *Runtime → Change runtime type → GPU*), time `run_kernel` against the library's
`block_sparse_flash` on the same fp32 inputs, with the toolkit's timer `complexity.time_fn`. GPU calls return
before the work is done, so the timed function ends with `torch.cuda.synchronize()`; the warm-up calls pay for the
compilation. On a CPU this cell only says why it skips: the interpreter measures Python, not a GPU.
"""),
    code('''
from saattn_edu.complexity import time_fn

if DEVICE != "cuda" or not HAS_TRITON:
    print("skipped: no GPU here (timing the interpreter would measure Python, not a kernel)")
else:
    from saattn_edu.accel.block_sparse_flash import block_sparse_flash

    def gpu_ms(fn):
        """Median of 20 synchronized calls, in ms (3 warm-up calls compile and fill caches)."""
        return time_fn(lambda: (fn(), torch.cuda.synchronize()), warmup=3, repeats=20).median * 1e3

    try:
        for n, p in [(4096, P.SlidingWindow(512, causal=True)), (16384, P.SlidingWindow(1024, causal=True))]:
            q, k, v = torch.randn(3, 1, 8, n, 64, device="cuda").unbind(0)
            plan = plan_for(p, n)
            yours, library = gpu_ms(lambda: run_kernel(q, k, v, plan)), gpu_ms(lambda: block_sparse_flash(q, k, v, p))
            err = (run_kernel(q, k, v, plan) - block_sparse_flash(q, k, v, p)).abs().max().item()
            print(f"n={n:>5} {p}: yours {yours:.3f} ms, library {library:.3f} ms (max difference {err:.1e})")
    except NotImplementedError as exc:
        print("write Exercises 1-3 first:", exc)
''', IGNORE),
    md("""
## Exercise 5: in words (not auto-graded)

Your kernel walks the full tiles and the partial tiles in two loops, with `MASKED` a compile-time constant. Why not
one loop over all active tiles that always loads and applies a mask?
"""),
    md("""
### BEGIN ANSWER
Most active tiles are full (the inside of a band, dense blocks). One loop with a mask would load a `BM × BN` mask
and run a `tl.where` on every tile, extra memory traffic and instructions for nothing, and a runtime branch would
keep the compiler from pipelining the loop. With `MASKED` a `tl.constexpr`, Triton compiles two specialised loops:
the full-tile loop is a clean FlashAttention loop, and only the few partial tiles (band edges, diagonals, the
ragged end) pay for the mask.
### END ANSWER
"""),
]


# ---------------------------------------------------------------------------------------------------------------
# 08 — the Triton block-sparse kernel
# ---------------------------------------------------------------------------------------------------------------
L08 = [
    md("""
## From a NumPy loop to a grid of programs

Lesson 07's block-sparse FlashAttention was two nested Python loops: for each query tile, for each *active* key
tile, one online-softmax update. A GPU kernel keeps the inner loop and replaces the outer one by a **grid of
programs** running in parallel: program `(i, z)` owns query tile `i` of batch·head `z`, loads its queries once
into fast on-chip memory, and walks its key tiles. Triton lets us write that program in Python: `tl.load` and
`tl.dot` act on whole tiles, and the compiler turns them into tensor-core instructions.

The library's kernel is `saattn_edu/accel/block_sparse_flash.py`. Without a GPU, Triton's **interpreter**
(`TRITON_INTERPRET=1`, set before `triton` is imported; the module does it when there is no GPU) runs the same
kernel on CPU tensors, one program after another: slow, exact, and enough to read and test it.
"""),
    code('''
import inspect
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from saattn_edu import complexity as C, patterns as P, reference as R
from saattn_edu.accel import flex, gather_attention, masked_sdpa
from saattn_edu.accel.block_plan import build_plan, pattern_rule

try:
    from saattn_edu.accel import block_sparse_flash as bsf  # sets TRITON_INTERPRET=1 first when there is no GPU
    HAS_TRITON = True
except ImportError:  # no triton package (macOS, Windows): the kernel cells below skip
    bsf, HAS_TRITON = None, False
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
print("Triton:", "compiled kernels on the GPU" if HAS_TRITON and DEVICE == "cuda" else
      "the interpreter on the CPU" if HAS_TRITON else "not installed (kernel cells skip; try Colab)")
'''),
    md("""
## The plan: which tiles each program visits

Before launching, the library turns the pattern into a **plan** (`accel/block_plan.py`), once per (pattern,
length, tile shape, device). It evaluates the pattern's rule in row chunks and classes every `BM × BN` tile:

- **empty**: no allowed pair, never visited;
- **full**: every pair allowed: the kernel runs it with no mask code at all;
- **partial**: some pairs allowed: the kernel also loads a packed `BM × BN` uint8 token mask.

The kernel reads, per query tile, two CSR lists of key tiles (full, then partial) and the masks of the partial ones:
"""),
    code('''
def tile_classes(pattern, n, tile=64):
    """(n_tiles, n_tiles) ints: 0 empty, 1 partial, 2 full, from the library's plan."""
    plan = build_plan(pattern_rule(pattern, n), n, tile, tile, "cpu")
    grid = np.zeros((-(-n // tile),) * 2, dtype=int)
    for cls, ptr, idx in ((2, plan.rows.full_ptr, plan.rows.full_idx), (1, plan.rows.part_ptr, plan.rows.part_idx)):
        for i in range(len(ptr) - 1):
            grid[i, idx[ptr[i]:ptr[i + 1]].numpy()] = cls
    return grid


def show_classes(grid, title, ax):
    ax.imshow(grid, cmap=plt.matplotlib.colors.ListedColormap(["white", "#f4a261", "#2a9d8f"]), vmin=0, vmax=2)
    full, part = int((grid == 2).sum()), int((grid == 1).sum())
    ax.set_title(f"{title}\\nfull {full}, partial {part}, empty {grid.size - full - part}", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])


n = 1024
examples = {"SlidingWindow(200, causal)": P.SlidingWindow(200, causal=True), "BigBird(block 64)": P.BigBird(block=64),
            "Longformer(128, global 0..15)": P.Longformer(128, global_indices=range(16)), "Strided(64)": P.Strided(64)}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.8), dpi=72)
for ax, (name, p) in zip(axes, examples.items()):
    show_classes(tile_classes(p, n), name, ax)
fig.suptitle(f"tiles of 64 × 64 at n = {n}: green full (no mask), orange partial (token mask), white skipped")
fig.tight_layout(rect=(0, 0, 1, 0.9))
plt.show()
'''),
    md("""
BigBird was designed in blocks: with blocks equal to the tiles, almost every active tile is full. The window's band
has full tiles inside and partial ones on its two edges. The strided pattern's columns switch on every tile of the
causal triangle, each one partial and mostly wasted: lesson 09 and the permutation below come back to it.

**Explore**: pick a pattern, a length and a tile size and watch the classes change (small tiles: fewer wasted
pairs, but more tiles, each with a fixed cost).
"""),
    code('''
import ipywidgets as widgets

PATTERNS = {**examples, "Causal": P.Causal(), "DilatedWindow(64, 4)": P.DilatedWindow(64, 4),
            "AttentionSinks(16, 256)": P.AttentionSinks(16, 256), "RandomPattern(16)": P.RandomPattern(16, seed=0)}


def explore(pattern="SlidingWindow(200, causal)", n=1024, tile=64):
    p = PATTERNS[pattern]
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=72)
    grid = tile_classes(p, n, tile)
    show_classes(grid, f"{pattern}, tiles {tile}", ax)
    computed = ((grid > 0).sum() * tile * tile)
    ax.set_xlabel(f"token density {p.density(n):.1%}, pairs computed / allowed {computed / p.num_pairs(n):.1f}×")
    plt.show()


widgets.interact(explore, pattern=list(PATTERNS), n=widgets.IntSlider(1024, 256, 2048, 256),
                 tile=widgets.Dropdown(options=[16, 32, 64, 128], value=64));
''', IGNORE),
    md("""
## The kernel, line by line

The cells below print the kernel from the installed library (`inspect.getsource`), so you read the code that
runs. First the program, `_fwd_kernel`:
"""),
    code('''
def source(kernel):
    """The Python source of a @triton.jit function (JITFunction and the interpreter's wrapper both keep .fn)."""
    return inspect.getsource(getattr(kernel, "fn", kernel))


print(source(bsf._fwd_kernel) if HAS_TRITON else "Triton is not installed: no kernel to show")
''', IGNORE),
    md("""
Reading it from the top:

- `@triton.jit` and the `tl.constexpr` arguments (`BM`, `BN`, `D`, ...): compile-time constants. Each combination
  is compiled once; tile shapes must be powers of two.
- `pid_m = tl.load(Order + tl.program_id(0))`: which query tile this program owns. The plan sorts tiles by their
  number of active key tiles, heaviest first, so a long row (a global token of Longformer) starts early instead of
  finishing last. `tl.program_id(1)` picks the batch, head and *residue* (`r`, used by the strided permutation below;
  `tok_stride = 1` otherwise, and token = position).
- `offs_m = pid_m * BM + tl.arange(0, BM)`: the `BM` query positions as a vector; `row_ok` masks those past the
  sequence end. `tl.load(Q + ... + tok_m[:, None] * sqn + offs_d[None, :], mask=row_ok[:, None], other=0.0)`
  reads the whole `(BM, D)` query tile with pointer arithmetic (row stride `sqn`, contiguous `d`).
- `m_i = -inf`, `l_i = 0`, `acc = 0`: lesson 07's state (running max, running sum, unnormalised output), in fp32
  registers whatever the input dtype. `HAS_INIT` instead continues an earlier pass's softmax (the permutation).
- `hk = h // GROUP`: grouped-query attention, several query heads read one key/value head.
- two calls of `_fwd_tiles`: the **full** tiles (no mask), then the **partial** ones (masked).
- `acc / l_safe` and the store: rows that saw no allowed key have `l = 0` and get 0 (never NaN); the log-sum-exp
  `m_i + log2(l)` is kept for the backward pass.

Then the loop over active key tiles, `_fwd_tiles`:
"""),
    code('''
print(source(bsf._fwd_tiles) if HAS_TRITON else "Triton is not installed: no kernel to show")
''', IGNORE),
    md("""
- `start, end = Ptr[pid_m], Ptr[pid_m + 1]`, `kb = tl.load(Idx + t)`: the CSR of the plan. Only active tiles are
  visited: **skipping is free**, the loop never touches an empty tile.
- `k` is loaded as `(D, BN)` (keys as columns), `v` as `(BN, D)`, both with `mask=col_ok` so the last tile may run
  past `n`.
- `qk = tl.dot(q, k) * qk_scale`: one tensor-core matrix product, `(BM, D) @ (D, BN)`. `qk_scale` includes
  `log2(e)`, so the exponentials are `exp2` (one cheap instruction; `2^(x log2 e) = e^x`).
- `if MASKED:` is a compile-time branch: the full-tile loop has no mask code. A partial tile loads its bits and
  sets forbidden scores to `-inf`.
- the online softmax: new max, `m_safe` (0 in place of `-inf`, so a row with nothing allowed yet gives 0 and not
  NaN), `p = exp2(qk - m)`, `alpha = exp2(m_old - m_new)` rescales the old sum and accumulator, and
  `acc += p @ v`, a second tensor-core product.

The backward pass (`_bwd_kernel` in the same file) uses the same plans: one set of programs per key tile computes
dK and dV, another per query tile computes dQ.

## Run it on this machine

Through the interpreter, on a short causal sliding window (two query tiles: three active tiles), against dense
attention with the pattern's mask:
"""),
    code('''
p, n = P.SlidingWindow(48, causal=True), 128
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(1, 1, n, 32, generator=g) for _ in range(3))
if HAS_TRITON:
    out = bsf.block_sparse_flash(q, k, v, p)
    ref = R.dense_attention(q.numpy()[0, 0], k.numpy()[0, 0], v.numpy()[0, 0], mask=p.mask(n))
    print("equals dense attention (max error < 1e-4):", bool(np.abs(out[0, 0].numpy() - ref).max() < 1e-4))
else:
    print("skipped: Triton is not installed here")
'''),
    code('''
if HAS_TRITON:
    t = C.time_fn(bsf.block_sparse_flash, q, k, v, p, warmup=0, repeats=1).median
    tiles = build_plan(pattern_rule(p, n), n, 64, 64, "cpu").n_active
    print(f"{t:.2f} s for {tiles} tiles in the interpreter: about {t / tiles * 1e3:.0f} ms a tile "
          "(an H100 does a 64 × 64 × 32 tile in well under a microsecond)")
''', IGNORE),
    md("""
## Measured on this machine: NumPy, Torch, Flex

On a CPU the kernel only runs in the interpreter, so here we time the paths that run natively: the NumPy gather
reference (`R.sparse_attention`), masked SDPA (dense price), Torch gather (`accel.gather_attention`, O(nnz·d))
and compiled FlexAttention (`accel.flex`). Flex compiles on its first call (seconds; see lesson 09), so the first
call is left out of the timing. One causal sliding window of 256, one head of 64:
"""),
    code('''
p = P.SlidingWindow(256, causal=True)
sizes = [1024, 2048, 4096]
paths = {
    "NumPy gather": lambda q, k, v: R.sparse_attention(q.numpy(), k.numpy(), v.numpy(), p),
    "Torch masked SDPA": lambda q, k, v: masked_sdpa(q, k, v, p),
    "Torch gather": lambda q, k, v: gather_attention(q, k, v, p),
    "Flex (compiled)": lambda q, k, v: flex(q, k, v, p),
}
measured = {name: [] for name in paths}
for n in sizes:
    q, k, v = (torch.randn(1, 1, n, 64, generator=g) for _ in range(3))
    for name, fn in paths.items():
        measured[name].append(C.time_fn(fn, q, k, v, warmup=1, repeats=3).min)  # min: least disturbed run
for name, ts in measured.items():
    print(f"{name:18}", "  ".join(f"n={n}: {t * 1e3:7.1f} ms" for n, t in zip(sizes, ts)))
''', IGNORE),
    code('''
fig, ax = plt.subplots(figsize=(6, 3.8), dpi=72)
for name, ts in measured.items():
    ax.loglog(sizes, np.array(ts) * 1e3, "o-", label=name, base=2)
ax.set_xlabel("sequence length n")
ax.set_ylabel("ms (this machine)")
ax.set_title("causal sliding window 256: sparse paths grow like n, masked SDPA like n²", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
''', IGNORE),
    md("""
## On an H100: the committed table

`benchmarks/gpu_attention.py` timed the Triton kernel ("ours") against compiled FlexAttention and PyTorch's
FlashAttention (SDPA, dense causal) on one H100 (B=1, H=16, D=128, bf16; `benchmarks/NOTES.md` tells how the
kernel was tuned). The rows are committed in `benchmarks/results/`; in Colab the cell fetches them from GitHub.
"""),
    code('''
NAME = "gpu_attention_4096_16384_65536.json"
URL = f"https://raw.githubusercontent.com/saattn-edu/saattn-edu/main/benchmarks/results/{NAME}"


def load_gpu_table():
    """The committed H100 rows: from the repository checkout, else from GitHub (Colab)."""
    for folder in (Path(".."), Path(".")):
        path = folder / "benchmarks" / "results" / NAME
        if path.exists():
            return json.loads(path.read_text())
    import urllib.request

    with urllib.request.urlopen(URL, timeout=10) as f:
        return json.load(f)


table = load_gpu_table()
rows = table["rows"]
print(table["meta"]["device"], "| forward ms at n = 16384 (and speedup over dense causal FlashAttention)")
for r in (r for r in rows if r["n"] == 16384):
    print(f"{r['pattern']:22} ours {r['ours_ms']['fwd']:6.3f}  Flex {r['flex_ms']['fwd']:6.3f}  "
          f"SDPA causal {r['sdpa_flash_causal_ms']['fwd']:6.3f}   speedup {r['speedup_vs_fa_causal']['fwd']:5.1f}× "
          f"(ideal {r['ideal_speedup']:.1f}×)")
''', IGNORE),  # refreshed when the kernel is re-tuned
    code('''
patterns = list(dict.fromkeys(r["pattern"] for r in rows))
fig, axes = plt.subplots(1, 2, figsize=(13, 4), dpi=72)
x = np.arange(len(patterns))
at16 = {r["pattern"]: r for r in rows if r["n"] == 16384}
for off, (label, key) in zip((-0.2, 0.2), (("ours (Triton)", "ours_ms"), ("Flex", "flex_ms"))):
    axes[0].bar(x + off, [at16[p][key]["fwd"] for p in patterns], width=0.4, label=label)
axes[0].axhline(at16[patterns[0]]["sdpa_flash_causal_ms"]["fwd"], color="k", ls="--", label="SDPA flash, causal")
axes[0].set_xticks(x, patterns, rotation=15, fontsize=8)
axes[0].set_ylabel("forward ms, n = 16384")
axes[0].legend(fontsize=8)
for p_name in patterns:
    pr = [r for r in rows if r["pattern"] == p_name]
    axes[1].loglog([r["n"] for r in pr], [r["speedup_vs_fa_causal"]["fwd"] for r in pr], "o-", label=p_name, base=2)
axes[1].set_xlabel("n")
axes[1].set_ylabel("speedup over dense causal (forward)")
axes[1].legend(fontsize=8)
fig.suptitle(f"{table['meta']['device']}: the kernel matches Flex where Flex is good, and beats it on strided")
fig.tight_layout()
plt.show()
'''),
    md("""
Three things to read in it. Sparse kernels gain with `n` (sliding window: about 8× at 16k, about 30× at 64k), close to the
ideal FLOP ratio. The kernel and Flex run the same algorithm, so they are within a few percent on windows,
Longformer and BigBird. The strided pattern is the exception: Flex pays almost the dense price (its columns touch
every key tile), while the library kernel runs it **permuted** (`accel/permute.py`): tokens reordered by residue
`t mod l` make the strided keys contiguous, so the kernel visits a few dense tiles per residue, and is 5 to 6×
faster than Flex at 16k, nearly 20× at 64k. Lesson 09 counts the tiles.

## Time your own kernel on a GPU

On a GPU (Colab: *Runtime → Change runtime type → GPU*; or any Linux machine with CUDA), time with the toolkit's
timer `complexity.time_fn`, with two precautions: GPU calls return before the work is done, so **synchronize**
inside the timed function; and **warm up**, since the first calls compile the kernel. `triton.testing.do_bench`
(median over many runs, with the L2 cache flushed) is the alternative Triton's tutorials use. On a CPU the cell
says why it skips.
"""),
    code('''
if DEVICE != "cuda" or not HAS_TRITON:
    print("skipped: no GPU here. On one, this cell times the kernel and Flex at n = 16384 in bf16.")
else:
    def gpu_ms(fn, *args):
        """Median of 20 synchronized calls, in ms, after 3 warm-up calls (compilation, caches)."""
        return C.time_fn(lambda: (fn(*args), torch.cuda.synchronize()), warmup=3, repeats=20).median * 1e3

    n, p = 16384, P.SlidingWindow(1024, causal=True)
    q, k, v = torch.randn(3, 1, 16, n, 128, device="cuda", dtype=torch.bfloat16).unbind(0)
    print(f"Triton kernel {gpu_ms(bsf.block_sparse_flash, q, k, v, p):.3f} ms, "
          f"Flex {gpu_ms(flex, q, k, v, p):.3f} ms, "
          f"SDPA causal {gpu_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)):.3f} ms")
''', IGNORE),
    md("""
## Summary

- A block-sparse kernel is FlashAttention-2 with a **plan**: one program per query tile walks only its active key
  tiles, full ones with no mask and partial ones with a packed token mask; empty tiles cost nothing.
- Triton writes that program in Python over whole tiles (`tl.load` with masks, `tl.dot`, `exp2`); the interpreter
  runs it on a CPU for reading and testing, a GPU compiles it.
- Sparse paths grow like `n` where masked dense attention grows like `n²`, on your CPU and on an H100; the kernel
  equals Flex on local patterns and beats it on strided ones through the residue permutation.
- To time a kernel on a GPU: warm up, synchronize, take the median.

Next: write the kernel's inner loop yourself in `exercises/08_triton_kernel.ipynb`, then see Flex's side of the
story in `09_flexattention.ipynb`.
"""),
]


# ---------------------------------------------------------------------------------------------------------------
# 09 — FlexAttention
# ---------------------------------------------------------------------------------------------------------------
L09 = [
    md("""
## A pattern as a function

FlexAttention (PyTorch ≥ 2.5) takes the pattern as a small Python function, a **mask_mod**
`(b, h, q_idx, kv_idx) -> bool`, and generates a fused FlashAttention kernel for it with `torch.compile`. Before
running, it evaluates the mask_mod tile by tile into a **BlockMask**: which `128 × 128` blocks are empty (skipped),
full (no mask) or partial (the mask_mod is evaluated inside the kernel). The same three classes as lesson 08's plan.

A mask_mod must be written with tensor operations: it is called on index tensors (and traced by the compiler), so
`and`/`or`/`if` become `&`, `|` and `torch.where`.
"""),
    code('''
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn.attention.flex_attention import create_block_mask

from saattn_edu import patterns as P
from saattn_edu.accel import flex
from saattn_edu.accel.flex import compiled_flex_attention
from saattn_edu.accel.permute import permutation, strided_rules


def causal(b, h, q_idx, kv_idx):
    return kv_idx <= q_idx


def sliding_window(window):
    def sliding(b, h, q_idx, kv_idx):  # causal: 0 <= i - j < window
        return (q_idx - kv_idx >= 0) & (q_idx - kv_idx < window)

    return sliding


def evaluate(mask_mod, n):
    """The (n, n) boolean mask a mask_mod describes, evaluated on broadcast index grids."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return torch.as_tensor(mask_mod(None, None, i, j)).expand(n, n).numpy()


print(np.array_equal(evaluate(causal, 16), P.Causal().mask(16)),
      np.array_equal(evaluate(sliding_window(4), 16), P.SlidingWindow(4, causal=True).mask(16)))
'''),
    md("""
## A mask_mod for every pattern

Every pattern of the course has one: `p.mask_mod` (or `p.mask_mod_for(n)`, which first builds the per-length tables
of the patterns that need them). Rule-based patterns compile their `allowed(i, j)` rule; table-based ones (random
keys, BigBird's random blocks, block layouts) close over a small tensor and look it up with the indices. Each is
checked here against the pattern's own mask:
"""),
    code('''
n = 64
gallery = {
    "Dense": P.Dense(), "Causal": P.Causal(), "SlidingWindow(9)": P.SlidingWindow(9),
    "DilatedWindow(4, 3, causal)": P.DilatedWindow(4, 3, causal=True), "GlobalTokens([0, 31])": P.GlobalTokens([0, 31]),
    "Strided(8)": P.Strided(8), "Fixed(8, 2)": P.Fixed(8, 2), "RandomPattern(4)": P.RandomPattern(4, seed=0),
    "BlockSparse(layout, 16)": P.BlockSparse(np.eye(4, dtype=bool) | np.eye(4, k=-2, dtype=bool), 16),
    "BigBird(block 8)": P.BigBird(block=8, window_blocks=3, global_blocks=1, random_blocks=1, seed=0),
    "Longformer(8, [0])": P.Longformer(8, global_indices=[0]), "AttentionSinks(2, 8)": P.AttentionSinks(2, 8),
    "Local2D(8, 8, 1)": P.Local2D(8, 8, 1), "Axial2D(8, 8)": P.Axial2D(8, 8),
}
masks = {}
for name, p in gallery.items():
    masks[name] = evaluate(p.mask_mod_for(n), n)
    print(f"{name:28} mask_mod == mask: {np.array_equal(masks[name], p.mask(n))}   density {p.density(n):6.1%}")
'''),
    code('''
fig, axes = plt.subplots(2, 7, figsize=(14, 4.6), dpi=72)
for ax, (name, m) in zip(axes.flat, masks.items()):
    ax.imshow(m, cmap="Greys", interpolation="nearest")
    ax.set_title(name, fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle(f"every pattern's mask_mod evaluated on a {n} × {n} grid (rows: queries, columns: keys)")
fig.tight_layout()
plt.show()
'''),
    md("""
## BlockMask: what Flex will compute

`create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=..., BLOCK_SIZE=128)` evaluates the mask_mod over the whole
grid once (B = H = None: the same for every batch and head) and keeps, per query block, the lists of partial and of
full key blocks (`kv_num_blocks`/`kv_indices` and `full_kv_num_blocks`/`full_kv_indices`). `to_string()` draws it,
one character per block; `sparsity()` is the percentage of blocks skipped.
"""),
    code('''
n = 1024
p = P.SlidingWindow(256, causal=True)
bm = create_block_mask(p.mask_mod_for(n), None, None, n, n, device="cpu", BLOCK_SIZE=128)
print(bm.to_string())
partial, full = int(bm.kv_num_blocks.sum()), int(bm.full_kv_num_blocks.sum())
print(f"blocks: {partial} partial + {full} full of {(n // 128) ** 2}; sparsity {bm.sparsity():.1f}% skipped")
print(f"token density {p.density(n):.1%}, block density {(partial + full) / (n // 128) ** 2:.1%}")
'''),
    md("""
The band's inside is full (no mask code runs there), its two edges are partial. The same counts come out of the
library's Triton plan with 128-token tiles (`accel/block_plan.py`): both kernels do the same work.

## What compiling costs

`flex_attention` must be compiled (`torch.compile`): run eagerly it materializes the `n × n` scores and warns.
The first call compiles (seconds on a CPU), later calls with the same shapes and mask reuse the kernel; a new
sequence length recompiles once (then the compiler marks the length dynamic), and a new mask_mod recompiles too,
because the mask is compiled into the kernel. `accel.flex(q, k, v, pattern)` keeps one compiled function and
caches BlockMasks per (pattern, n, device).
"""),
    code('''
def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


fa = compiled_flex_attention("cpu")
g = torch.Generator().manual_seed(0)
qkv = {n: [torch.randn(1, 2, n, 64, generator=g) for _ in range(3)] for n in (1024, 2048)}
bms = {n: create_block_mask(p.mask_mod_for(n), None, None, n, n, device="cpu") for n in (1024, 2048)}
cost = {
    "first call (compiles)": seconds(lambda: fa(*qkv[1024], block_mask=bms[1024])),
    "second call": seconds(lambda: fa(*qkv[1024], block_mask=bms[1024])),
    "new length 2048 (recompiles)": seconds(lambda: fa(*qkv[2048], block_mask=bms[2048])),
    "length 2048 again": seconds(lambda: fa(*qkv[2048], block_mask=bms[2048])),
}
for what, t in cost.items():
    print(f"{what:30} {t:8.3f} s")
''', IGNORE),
    md("""
Compile once, call many times: in a training loop the compile cost disappears; in a notebook that tries ten
patterns it dominates. (On a GPU the first compile takes seconds too; the H100 table of lesson 08 lists them.)

## Where Flex wastes work: strided columns

Sparse Transformer's strided pattern (lesson 05) lets query `i` see its last `l` keys and every `l`-th key before
them. The columns `(i - j) % l == 0` cross **every** key block below the diagonal: each block holds a few allowed
pairs per row, and Flex computes all of it.
"""),
    code('''
n, l = 4096, 64
strided = P.Strided(l)
nb = (n // 128) ** 2


def blocks(mask_mod):
    """Active (partial + full) 128 × 128 blocks of a mask_mod over n × n."""
    bm = create_block_mask(mask_mod, None, None, n, n, device="cpu")
    return int(bm.kv_num_blocks.sum() + bm.full_kv_num_blocks.sum())


original = blocks(strided.mask_mod_for(n))
print(f"Strided({l}) at n = {n}: token density {strided.density(n):.2%}, "
      f"block density {original / nb:.1%} ({original} of {nb} blocks)")
'''),
    md("""
**The permutation.** Reorder the tokens by residue: first `0, l, 2l, ...`, then `1, 1 + l, ...` and so on
(`accel.permute.permutation(n, l)`). In that order the strided pairs (`i ≡ j mod l`) of one residue are neighbours:
they fill a small dense causal triangle of `n / l` tokens on the diagonal. What is left, the local band
`i - l < j ≤ i`, stays in token order. Split the pattern's pairs that way (`strided_rules` does it) and count the
blocks of each part:
"""),
    code('''
local_rule, _ = strided_rules(strided, n, l)
perm = torch.as_tensor(permutation(n, l))  # permuted position -> token
rule = strided.mask_mod_for(n)


def strided_part_permuted(b, h, q_idx, kv_idx):  # positions in the permuted order
    i, j = perm[q_idx], perm[kv_idx]
    return rule(b, h, i, j) & ((i - j) % l == 0) & (i != j)


def local_part(b, h, q_idx, kv_idx):
    return local_rule(q_idx, kv_idx)


strided_blocks, local_blocks = blocks(strided_part_permuted), blocks(local_part)
print(f"strided part, permuted: {strided_blocks} blocks; local band: {local_blocks} blocks")
print(f"together {strided_blocks + local_blocks} blocks instead of {original}: "
      f"{original / (strided_blocks + local_blocks):.1f}× less work")
'''),
    code('''
small_n, small_l = 256, 16
sp = P.Strided(small_l)
m = sp.mask(small_n)
order = permutation(small_n, small_l)
d = order[:, None] - order[None, :]
strided_pairs = m[np.ix_(order, order)] & (d % small_l == 0) & (d != 0)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), dpi=72)
axes[0].imshow(m, cmap="Greys", interpolation="nearest")
axes[0].set_title(f"Strided({small_l}), token order: its lines cross every block", fontsize=9)
axes[1].imshow(strided_pairs, cmap="Greys", interpolation="nearest")
axes[1].set_title("its strided pairs in residue order: dense triangles", fontsize=9)
for ax in axes:
    ax.set_xticks(np.arange(0, small_n, 32) - 0.5, minor=True), ax.set_yticks(np.arange(0, small_n, 32) - 0.5, minor=True)
    ax.grid(which="minor", color="#e76f51", lw=0.5), ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
plt.show()
'''),
    md("""
The two parts run as two passes of one softmax: the second continues the first's running max and sum (lesson 07's
merge), and every allowed pair is visited exactly once. Flex could run them too (two calls and a log-sum-exp merge,
with `q`, `k`, `v` gathered into the permuted order for the first); the library's Triton kernel does it without
copying anything, reading the permuted order through strided pointers. On the H100 (lesson 08's table), strided
`l = 256` at 16k: Flex about 1.9 ms, the permuted kernel about 0.33 ms.

Measured here, Flex on the strided pattern against a sliding window that allows **more** pairs: the time follows
the blocks, not the pairs (a new mask_mod: one more compile first).
"""),
    code('''
n = 2048
window = P.SlidingWindow(3 * l, causal=True)
q, k, v = (torch.randn(1, 2, n, 64, generator=g) for _ in range(3))
for name, pat in (("Strided(64)", strided), ("SlidingWindow(192)", window)):
    flex(q, k, v, pat)  # compiles this mask_mod
    t = min(seconds(lambda: flex(q, k, v, pat)) for _ in range(3))
    bm = create_block_mask(pat.mask_mod_for(n), None, None, n, n, device="cpu")
    print(f"{name:20} pairs {pat.num_pairs(n):>8}   blocks {int(bm.kv_num_blocks.sum() + bm.full_kv_num_blocks.sum()):>4}"
          f"   {t * 1e3:7.1f} ms")
''', IGNORE),
    md("""
**Explore**: pick a pattern and a block size; the BlockMask's picture and its block density against the token
density (no compile here: building a BlockMask is cheap).
"""),
    code('''
import ipywidgets as widgets

CHOICES = {"SlidingWindow(128, causal)": P.SlidingWindow(128, causal=True), "Strided(32)": P.Strided(32),
           "Fixed(64, 8)": P.Fixed(64, 8), "BigBird(block 64)": P.BigBird(block=64),
           "Longformer(128, global 0..7)": P.Longformer(128, global_indices=range(8)),
           "DilatedWindow(32, 4)": P.DilatedWindow(32, 4), "RandomPattern(8)": P.RandomPattern(8, seed=0)}


def explore(pattern="Strided(32)", block=128):
    p, n = CHOICES[pattern], 1024
    bm = create_block_mask(p.mask_mod_for(n), None, None, n, n, device="cpu", BLOCK_SIZE=block)
    active = int(bm.kv_num_blocks.sum() + bm.full_kv_num_blocks.sum())
    print(bm.to_string(limit=1) if block >= 64 else "(too many blocks to draw)")
    print(f"token density {p.density(n):.1%}   block density {active / (n // block) ** 2:.1%}")


widgets.interact(explore, pattern=list(CHOICES), block=widgets.Dropdown(options=[32, 64, 128, 256], value=128));
''', IGNORE),
    md("""
## Summary

- A FlexAttention pattern is a `mask_mod(b, h, q_idx, kv_idx)` written with tensor operations; every pattern of
  the course provides one (`p.mask_mod_for(n)`), and it equals the pattern's mask.
- `create_block_mask` turns it into a BlockMask of empty, partial and full `128 × 128` blocks (`to_string()`,
  `sparsity()`): Flex's work is the active blocks, whatever the token density.
- `torch.compile` pays seconds on the first call, again per new length (once) and per new mask_mod.
- Scattered patterns waste most of each block: strided columns switch on every block. Reordering tokens by residue
  turns the strided pairs into dense diagonal triangles, 5 to 6× fewer blocks here; the library's Triton kernel
  (lesson 08) runs that order without copying.

Next: write the Triton kernel's inner loop yourself in `exercises/08_triton_kernel.ipynb`, then learned sparsity in
`10_learned_sparsity.ipynb`.
"""),
]


LESSONS = {
    "08_triton_block_sparse": (
        "08 · A Triton block-sparse kernel",
        ["read a block-sparse FlashAttention-2 kernel in Triton line by line: programs, tile plans, the loop over "
         "active key tiles, the masked partial tiles",
         "run that kernel on your CPU through Triton's interpreter and check it against dense attention",
         "measure NumPy, Torch and FlexAttention on your machine, and read the committed H100 table",
         "time a kernel of your own on a GPU (Colab or elsewhere) with the toolkit's timer"],
        L08),
    "09_flexattention": (
        "09 · FlexAttention: mask_mods and BlockMasks",
        ["write a `mask_mod` for every pattern of the course and check it against the pattern's mask",
         "build a BlockMask, read it with `to_string()`, and count its full and partial blocks",
         "measure what `torch.compile` costs the first time, for a new shape and for a new mask",
         "see where Flex wastes work (strided columns) and how permuting tokens by residue removes the waste"],
        L09),
}

SOLUTIONS = {
    "08_triton_kernel": (
        "Exercises 08: the inner loop of a Triton block-sparse kernel",
        "You will write the three pieces of the inner loop of a block-sparse FlashAttention kernel in Triton "
        "(lesson 08): load the next active key tile, fold it into the online softmax, and mask a partial tile. "
        "Without a GPU your kernel runs in Triton's interpreter on the CPU (slow but exact); on a GPU it is "
        "compiled, and the last part times it against the library's kernel.",
        ["load a tile of keys and values with pointer arithmetic and a bounds mask",
         "write the online-softmax update of FlashAttention-2 in Triton (base-2 exponentials)",
         "apply a partial tile's token mask, keeping fully masked rows at 0 (never NaN)",
         "check a kernel against dense attention on several patterns, and time it on a GPU"],
        E08),
}


def main() -> int:
    for name, (title, goals, cells) in LESSONS.items():
        _write(ROOT / "notebooks" / f"{name}.ipynb", build_lesson(name, title, goals, cells))
    for name, (title, intro, goals, cells) in SOLUTIONS.items():
        _write(ROOT / "solutions" / f"{name}.ipynb", build_solution(name, title, intro, goals, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
