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
# # Exercises 08: the inner loop of a Triton block-sparse kernel
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/08_triton_kernel.ipynb)
#
# You will write the three pieces of the inner loop of a block-sparse FlashAttention kernel in Triton (lesson 08): load the next active key tile, fold it into the online softmax, and mask a partial tile. Without a GPU your kernel runs in Triton's interpreter on the CPU (slow but exact); on a GPU it is compiled, and the last part times it against the library's kernel.
#
# **Learning goals**
# - load a tile of keys and values with pointer arithmetic and a bounds mask
# - write the online-softmax update of FlashAttention-2 in Triton (base-2 exponentials)
# - apply a partial tile's token mask, keeping fully masked rows at 0 (never NaN)
# - check a kernel against dense attention on several patterns, and time it on a GPU
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure),
# compares with the library's reference and gives points per case. Calling the library's own solution inside your
# function does not count: the check notices and refuses.

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Setup: Triton, or its interpreter
#
# Triton compiles `@triton.jit` functions for a GPU. Without one, setting `TRITON_INTERPRET=1` **before `triton` is
# imported** makes Triton run the same kernels on CPU tensors with NumPy: every program of the grid in turn, every
# `tl.*` call on whole tiles. It is slow (each tile of the loop costs milliseconds) but exact, so the checks use
# small sequences. Import order matters: if `triton` was imported before the variable was set, `tl.max` and `tl.sum`
# fail inside the interpreter; restart the kernel and run this cell first. Where Triton is not installed (macOS,
# Windows) the cells below still run, and say that they skip.

# %%
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


# %% [markdown]
# ## The kernel you complete
#
# The plan comes from the library (`saattn_edu.accel.block_plan`, lesson 08): for query tile `i`, the key tiles with
# at least one allowed pair, split into **full** tiles (every pair allowed: no mask needed) and **partial** tiles
# (each with a `BM × BN` uint8 token mask in `Masks`). Both lists are CSRs: the key tiles of query tile `pid_m` are
# `Idx[Ptr[pid_m] : Ptr[pid_m + 1]]`.
#
# One program of the kernel owns `BM` queries of one (batch, head). It loads its queries once, then walks the full
# list and the partial list with the same loop, `attend_tiles`. You write the three functions that loop calls:
#
# ```
# for t in range(start, end):                       # this query tile's active key tiles
#     kb = tl.load(Idx + t)                         # the next one
#     k, v, col_ok = load_kv_tile(...)              # Exercise 1
#     qk = tl.dot(q, k) * qk_scale                  # (BM, BN) scores in log2 units
#     if MASKED:
#         qk = mask_partial_tile(qk, ...)           # Exercise 3
#     acc, l_i, m_i = online_softmax_update(...)    # Exercise 2
# ```
#
# Pointers are plain integers plus offsets: `K + row * stride + col` addresses element `(row, col)`, and
# `tl.load(ptrs, mask=ok, other=0.0)` reads a whole tile, giving `0.0` where `ok` is False. Tiles are powers of two
# (`tl.arange` needs them); the head dimension `D` too.
#
# ## Exercise 1: load the next active key tile
#
# Write `load_kv_tile`: key tile `kb` covers positions `kb * BN + offs_n0` (`offs_n0 = tl.arange(0, BN)`); only
# positions `< n` exist (`col_ok`). Return `k` as a `(D, BN)` tile (keys as columns: `tl.dot(q, k)` is then `Q Kᵀ`),
# `v` as `(BN, D)` and `col_ok`. Element `(position, d)` of K sits at `k_base + position * stride_kn + d`.
#
# > Past `n`, the checks fill K and V with NaN: a load that forgets `mask=` shows up as NaN at once, instead of
# > reading memory it does not own (which, in the interpreter, can crash the notebook's kernel).

# %%
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


# %% [markdown]
# ## Exercise 2: the online-softmax update
#
# Lesson 07's tile update, in Triton. The kernel keeps per query row a running max `m_i`, a running sum `l_i` and an
# accumulator `acc (BM, D)`. The scores arrive already multiplied by `scale · log2(e)`, so use **base-2**
# exponentials, `tl.math.exp2` (FlashAttention-2 does this: `exp2` is one cheap GPU instruction, and
# `2^(x·log2 e) = e^x`):
#
# `m_new = max(m_i, rowmax(qk))`, `alpha = exp2(m_i - m_new)`, `p = exp2(qk - m_new)`,
# `l_i = alpha · l_i + rowsum(p)`, `acc = alpha · acc + p @ v`.
#
# Masked scores are `-inf`. A row that has seen no allowed key yet has `m_new = -inf`, and `-inf - (-inf)` is NaN:
# use 0 in place of `-inf` inside the exponentials (then `p = 0` and `alpha = 0`). Use `tl.max(x, 1)`, `tl.sum(x, 1)`,
# `tl.maximum`, `tl.where`, and `tl.dot(p, v, input_precision="ieee")` (exact fp32 on a GPU too; the default TF32
# would miss the `1e-4` tolerance).

# %%
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


# %% [markdown]
# ## Exercise 3: mask a partial tile
#
# A partial tile `t` has its token mask at row `mid = MaskId[t]` of `Masks`, a `(P, BM, BN)` uint8 array stored
# contiguously: element `(r, c)` of mask `mid` is at `Masks + mid * BM * BN + r * BN + c`. Return `qk` with `-inf`
# where the mask is 0 **or** the key position does not exist (`col_ok`): the bits of a tile that crosses the sequence
# end do not know where it ends (the plan is built over whole tiles).

# %%
@triton.jit
def mask_partial_tile(qk, Masks, mid, offs_m0, offs_n0, col_ok, BM: tl.constexpr, BN: tl.constexpr):
    """qk (BM, BN) with -inf where token mask number mid forbids the pair, or past the sequence end."""
    ### BEGIN SOLUTION: load the (BM, BN) bits, then tl.where
    bits = tl.load(Masks + mid * BM * BN + offs_m0[:, None] * BN + offs_n0[None, :])  # (BM, BN) uint8
    return tl.where((bits != 0) & col_ok[None, :], qk, float("-inf"))
    ### END SOLUTION


# %% [markdown]
# ## The kernel around your functions (given)
#
# Run this cell again after you edit a function above: on a GPU the compiled kernel is cached with the functions it
# saw. `triton_attention` is what the checks call: float32 NumPy `(B, H, n, D)` in and out. It pads the sequence to
# whole tiles (NaN in K and V past `n`), builds the plan and launches one program per (query tile, batch·head).

# %%
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
    """The library's tile plan: per query tile, CSR lists of full and partial key tiles (block_plan.py).

    It is built over whole tiles as if the sequence went on past n (the last position repeated): tiles that cross n
    are partial, and their bits past n may be 1, so the kernel itself must stop at n (col_ok)."""
    rows = -(-n // BLOCK) * BLOCK
    rule = pattern_rule(pattern, n)
    return build_plan(lambda i, j: rule(i.clamp(max=n - 1), j.clamp(max=n - 1)), rows, BLOCK, BLOCK, device, n)


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


# %% [markdown]
# Try it on one pattern before the checks (a causal sliding window over 150 tokens: three query tiles, the last one
# ragged):

# %%
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

# %% [markdown]
# ## The checks
#
# Each check draws fresh random inputs, runs `triton_attention` and compares with `R.dense_attention` under the
# pattern's mask (float64) within `1e-4`. The first needs Exercises 1 and 2 only (every tile it visits is full, so
# every row has a finite maximum: the `-inf` guard of Exercise 2 is graded by the sliding-window and block-layout
# checks, where a row can meet a partial tile with nothing allowed before any allowed key); the other three need
# Exercise 3 too: diagonal tiles of causal attention, band edges and a ragged end of sliding windows,
# and a random block layout whose blocks (24 to 48 tokens) do not line up with the kernel's 64-token tiles. In the
# interpreter each check takes a few seconds; on a GPU every function must be written before any check passes (the
# compiler sees the whole kernel).

# %%
if HAS_TRITON:
    check("ex08.full_tiles", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %%
if HAS_TRITON:
    check("ex08.causal", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %%
if HAS_TRITON:
    check("ex08.sliding_window", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %%
if HAS_TRITON:
    check("ex08.block_layout", triton_attention, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %% [markdown]
# ## Exercise 4: time your kernel on a GPU (not graded)
#
# On a GPU (Colab: *Runtime → Change runtime type → GPU*), time `run_kernel` against the library's
# `block_sparse_flash` on the same fp32 inputs, with the toolkit's timer `complexity.time_fn`. GPU calls return
# before the work is done, so the timed function ends with `torch.cuda.synchronize()`; the warm-up calls pay for the
# compilation. On a CPU this cell only says why it skips: the interpreter measures Python, not a GPU.

# %% tags=["nbval-ignore-output"]
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

# %% [markdown]
# ## Exercise 5: in words (not auto-graded)
#
# Your kernel walks the full tiles and the partial tiles in two loops, with `MASKED` a compile-time constant. Why not
# one loop over all active tiles that always loads and applies a mask?

# %% [markdown]
# ### BEGIN ANSWER
# Most active tiles are full (the inside of a band, dense blocks). One loop with a mask would load a `BM × BN` mask
# and run a `tl.where` on every tile, extra memory traffic and instructions for nothing, and a runtime branch would
# keep the compiler from pipelining the loop. With `MASKED` a `tl.constexpr`, Triton compiles two specialised loops:
# the full-tile loop is a clean FlashAttention loop, and only the few partial tiles (band edges, diagonals, the
# ragged end) pay for the mask.
# ### END ANSWER

# %% [markdown]
# ## Exercise 6 ★: the transposed plan
#
# The backward's dK/dV programs walk the plan **by key tile**: for each key tile, the query tiles that see it
# (`plan.cols` in lesson 08). Build that view from the view by query tile. `ptr`, `idx` are a CSR of active tiles by
# query tile (`idx[ptr[i]:ptr[i + 1]]` are the key tiles of query tile `i`, increasing); return `(col_ptr, col_idx)`,
# the CSR by key tile for `n_cols` key tiles, with the query tiles of each key tile increasing. The time must grow
# with the number of active tiles, not with the size of the tile grid: the last case has 50,000 query tiles.
# Graded in the ★ column; it needs NumPy only.

# %%
def transpose_tiles(ptr, idx, n_cols):
    """CSR of active tiles by key tile from the CSR by query tile: (col_ptr, col_idx), int64."""
    ### BEGIN SOLUTION: count the tiles of every key tile, prefix sums, then the query tiles in key-tile order
    ptr, idx = np.asarray(ptr, dtype=np.int64), np.asarray(idx, dtype=np.int64)
    rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    order = np.argsort(idx, kind="stable")  # stable: query tiles stay increasing inside each key tile
    col_ptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(idx, minlength=n_cols), out=col_ptr[1:])
    return col_ptr, rows[order]
    ### END SOLUTION


# %%
check("ex08.star_transpose_tiles", transpose_tiles)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/08_triton_kernel.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
