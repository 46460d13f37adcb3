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
# # Capstone: block-sparse FlashAttention in Triton, forward and backward
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/14_capstone_kernel.ipynb)
#
# You write the whole kernel that lesson 08 describes: the forward pass (online softmax over a query tile's active
# key tiles, full ones then partial ones, writing the output and the log-sum-exp), the backward pass (`delta`,
# dK/dV per key tile, dQ per query tile) and the `torch.autograd.Function` that makes it trainable. The skeleton
# gives you only the **tile plan** (which tiles each program visits, and the token masks of the partial ones) and
# the **launch code**. Without a GPU your kernels run in Triton's interpreter on the CPU and are graded there, at
# small sizes; on a GPU (Colab) the last section races your kernel against FlexAttention with `saattn bench`.
#
# **Learning goals**
# - write a FlashAttention-2 forward kernel in Triton from a tile plan: pointer arithmetic, bounds masks, online
#   softmax in base 2, a log-sum-exp for the backward pass
# - derive and write its backward: `delta = rowsum(o · dO)`, `dS = P ∘ (dP − delta)`, dK/dV over the transposed plan,
#   dQ over the plan
# - keep rows with no allowed key at zero output and zero gradient (never NaN)
# - wrap kernels in a `torch.autograd.Function`, check them against float64 autograd, and time them against Flex
#
# **How it works.** Write your code where a cell raises `NotImplementedError`, run it, then run the check cell
# below it. Each check draws fresh random inputs (it prints the seed, so `check(..., seed=...)` repeats a failure)
# and compares with float64 autograd of dense masked attention; each exercise has its own points, and each check
# needs only its own exercise (the backward checks feed the exact `lse` and `delta`). In the interpreter a check
# takes a few seconds. Calling the library's kernel inside yours does not count: the check notices and refuses.

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
# As in exercise 08: without a GPU, `TRITON_INTERPRET=1` must be set **before** `triton` is imported; then every
# `@triton.jit` function runs on CPU tensors. If `triton` was imported first, restart the kernel and run this cell
# first. Where Triton is not installed (macOS, Windows) the cells still run and say that they skip.

# %%
import math
import os

import numpy as np
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton loads: kernels then run on CPU tensors

from saattn_edu import patterns as P
from saattn_edu.accel.block_plan import cached_plan, pattern_rule
from saattn_edu.grading import check
from saattn_edu.grading.exercises.ex08 import interpreter_problem, launch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # stand-ins: @triton.jit keeps the function, tl.constexpr annotates; nothing launches
    from saattn_edu.grading.exercises.ex08 import no_tl as tl, no_triton as triton

    HAS_TRITON = False
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
where = "compiled for the GPU" if DEVICE == "cuda" else "run by Triton's interpreter on the CPU"
print(f"Triton installed: {HAS_TRITON}; kernels are {where}" if HAS_TRITON else
      "Triton is not installed here (Linux x86-64 only): kernel cells will skip. Try Colab.")
print(interpreter_problem() or "")

# %% [markdown]
# ## What you are given: the plan and the launch code
#
# `plan_for(pattern, n, BM, BN)` is the library's tile plan (lesson 08): the `n × n` score matrix cut into `BM × BN`
# tiles, each tile **empty** (never visited), **full** (every pair allowed and inside the sequence: no mask) or
# **partial** (some pairs allowed, or the tile crosses the sequence end: a `BM × BN` uint8 token mask). It has two
# views, each a `TileCSR` of int32 tensors:
#
# | field | `plan.rows` (per query tile `i`) | `plan.cols` (per key tile `j`, the transposed plan) |
# |---|---|---|
# | `full_idx[full_ptr[i] : full_ptr[i+1]]` | its full key tiles | the query tiles that see key tile `j` fully |
# | `part_idx[part_ptr[i] : part_ptr[i+1]]` | its partial key tiles | the query tiles that see it partly |
# | `part_mask[t]` | row of `plan.masks` for partial tile `t` | the same masks (not transposed) |
# | `order` | query tiles, heaviest first | key tiles, heaviest first |
#
# Mask number `mid` is stored contiguously: the bit of query `r` and key `c` inside the tile is at
# `Masks + mid * BM * BN + r * BN + c`, and it is already 0 past the sequence end. Program `p` of a launch owns tile
# `order[p]` (long rows start first). Every tensor is contiguous `(B, H, rows, D)`: head `z = b·H + h` starts at
# `z * stride_h` and position `i` at `i * stride_n`; `LSE` and `DELTA` are float32 `(B·H, rows)`. Grouped-query
# attention (★ at the end): `K` and `V` have `H_kv = H / GROUP` heads, query head `z` reads kv head `z // GROUP`.
#
# Scores are in **log2 units**: the launch code passes `qk_scale = scale · log2(e)`, so `exp2(qk · qk_scale) =
# exp(scale · q·k)`, and your `LSE` is `m + log2(l)` (log2 units too; `-inf` for a row with no allowed key).
# `PREC` is the `input_precision` for every `tl.dot` ("ieee" for float32: exact; "tf32" otherwise, ignored for
# bf16 and fp16). Accumulate in float32 and cast `p` and `ds` to the inputs' dtype before a `tl.dot`.

# %%
LOG2E = 1.4426950408889634


def tile_config(q, kind: str, long_rows: bool = False):
    """(BM, BN, warps, stages) of a kernel: small tiles in the interpreter, the library's tuned shapes on a GPU."""
    if q.device.type != "cuda":
        return (32, 16, 4, 1)  # BM != BN on purpose: a transposed index shows up at once
    if kind == "bwd":
        return (64, 64, 4, 2)
    if long_rows:  # rows that see many key tiles: bigger query tiles reuse each K/V load more
        return (128, 64, 4, 3)
    return (64, 32, 4, 3) if q.shape[-1] == 128 else (64, 64, 4, 3)


def plan_for(pattern, n, bm, bn, device):
    """The library's tile plan of `pattern` at length n (built once per pattern, length, tile shape, device)."""
    return cached_plan(("capstone", pattern, n), lambda: pattern_rule(pattern, n), n, bm, bn, device, n)


def _nonempty(t):  # Triton wants a real pointer even for an empty list (the loop never reads it)
    return t if t.numel() else torch.zeros(1, dtype=t.dtype, device=t.device)


def csr_args(plan, by_rows: bool) -> list:
    """FPtr, FIdx, PPtr, PIdx, PMask, Order, Masks: the kernel arguments of one view of the plan."""
    c = plan.rows if by_rows else plan.cols
    return [_nonempty(x) for x in (c.full_ptr, c.full_idx, c.part_ptr, c.part_idx, c.part_mask, c.order,
                                   plan.masks)]


def precision(q) -> str:
    return "ieee" if q.dtype == torch.float32 else "tf32"


# %% [markdown]
# ## Exercise 1: the forward kernel
#
# One program owns `BM` query positions of one head. Write it in two functions:
#
# ```
# fwd_tiles (one list of key tiles: the full ones, or with MASKED the partial ones)
#     for t in Ptr[pid_m] .. Ptr[pid_m+1]:
#         kb = Idx[t];  positions kb·BN + arange(BN);  col_ok = positions < n
#         k (D, BN), v (BN, D) loaded with mask col_ok, other 0
#         qk = q @ k · qk_scale                           # (BM, BN), log2 units
#         if MASKED: qk = -inf where the tile's bits are 0
#         m_new = max(m, rowmax(qk));  m_safe = 0 where m_new = -inf, else m_new
#         p = exp2(qk − m_safe);  alpha = exp2(m − m_safe)
#         l = alpha·l + rowsum(p);  acc = alpha·acc + p @ v;  m = m_new
#
# fwd_kernel
#     pid_m = Order[program_id(0)];  z = program_id(1)        # query tile, head
#     q (BM, D) loaded with mask row_ok;  m = -inf, l = 0, acc = 0
#     fwd_tiles over the full tiles, then over the partial tiles (MASKED=True)
#     O = acc / l (0 where l = 0);  LSE = m + log2(l)  (stores masked by row_ok)
# ```
#
# Full tiles lie inside the sequence and every pair is allowed: no mask code at all in that loop (`MASKED` is a
# `tl.constexpr`, so `if MASKED:` is decided at compile time). Use `tl.max(x, 1)`, `tl.sum(x, 1)`, `tl.maximum`,
# `tl.where`, `tl.math.exp2`, `tl.math.log2`, `tl.dot(a, b, input_precision=PREC)`.
#
# > The checks pad Q, K, V past `n` with NaN: a load that forgets its mask shows up as NaN.

# %%
@triton.jit
def fwd_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n,
              Ptr, Idx, MaskId, Masks, pid_m, qk_scale,
              BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr, PREC: tl.constexpr):
    """(acc, l_i, m_i) after this query tile's key tiles Idx[Ptr[pid_m]:Ptr[pid_m+1]] (partial ones if MASKED)."""
    ### BEGIN SOLUTION: loop over the CSR slice; load K^T and V; scores; mask when MASKED; online softmax
    start = tl.load(Ptr + pid_m)
    end = tl.load(Ptr + pid_m + 1)
    for t in range(start, end):
        offs_n = tl.load(Idx + t) * BN + offs_n0  # (BN,) key positions of this tile
        col_ok = offs_n < n
        k = tl.load(k_base + offs_n[None, :] * stride_n + offs_d[:, None], mask=col_ok[None, :], other=0.0)  # (D, BN)
        v = tl.load(v_base + offs_n[:, None] * stride_n + offs_d[None, :], mask=col_ok[:, None], other=0.0)  # (BN, D)
        qk = tl.dot(q, k, input_precision=PREC) * qk_scale  # (BM, BN), log2 units
        if MASKED:  # compile-time branch: full tiles carry no mask code
            bits = tl.load(Masks + tl.load(MaskId + t) * BM * BN + offs_m0[:, None] * BN + offs_n0[None, :])
            qk = tl.where(bits != 0, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # nothing allowed yet: exps give 0, not NaN
        p = tl.math.exp2(qk - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
        m_i = m_new
    return acc, l_i, m_i
    ### END SOLUTION


@triton.jit
def fwd_kernel(Q, K, V, O, LSE,
               FPtr, FIdx, PPtr, PIdx, PMask, Order, Masks,
               qk_scale, n, stride_qh, stride_kh, stride_n, stride_lse,
               BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, GROUP: tl.constexpr, PREC: tl.constexpr):
    """Program (p, z): query tile Order[p] of head z; writes O (its dtype) and LSE (float32, log2 units)."""
    ### BEGIN SOLUTION: load the query tile, run fwd_tiles on the full then the partial list, store O and LSE
    pid_m = tl.load(Order + tl.program_id(0))  # heaviest query tiles start first
    z = tl.program_id(1)
    offs_m0, offs_n0, offs_d = tl.arange(0, BM), tl.arange(0, BN), tl.arange(0, D)
    offs_m = pid_m * BM + offs_m0
    row_ok = offs_m < n
    q_ptrs = Q + z * stride_qh + offs_m[:, None] * stride_n + offs_d[None, :]
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)  # (BM, D)
    m_i = tl.full([BM], float("-inf"), tl.float32)
    l_i = tl.zeros([BM], tl.float32)
    acc = tl.zeros([BM, D], tl.float32)
    k_base = K + (z // GROUP) * stride_kh  # GQA: GROUP query heads share one kv head
    v_base = V + (z // GROUP) * stride_kh
    acc, l_i, m_i = fwd_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n,
                              FPtr, FIdx, FIdx, Masks, pid_m, qk_scale, BM, BN, False, PREC)
    acc, l_i, m_i = fwd_tiles(acc, l_i, m_i, q, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n,
                              PPtr, PIdx, PMask, Masks, pid_m, qk_scale, BM, BN, True, PREC)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # rows that saw no allowed key: output 0, lse -inf
    o_ptrs = O + z * stride_qh + offs_m[:, None] * stride_n + offs_d[None, :]
    tl.store(o_ptrs, (acc / l_safe[:, None]).to(O.dtype.element_ty), mask=row_ok[:, None])
    tl.store(LSE + z * stride_lse + offs_m, m_i + tl.math.log2(l_safe), mask=row_ok)
    ### END SOLUTION


# %% [markdown]
# The launch code (given) and what the check calls: `capstone_forward` takes float32 NumPy `(B, H, n, D)` arrays
# and returns `(o, lse)` with `lse` in natural-log units (`-inf` for empty rows).

# %%
def run_forward(q, k, v, pattern, scale, n=None):
    """o (like q) and lse (B·H, rows) float32 in log2 units, from your fwd_kernel; the first n rows are real."""
    B, H, rows, D = q.shape
    n = rows if n is None else n
    bm, bn, warps, stages = tile_config(q, "fwd")
    plan = plan_for(pattern, n, bm, bn, q.device)
    if q.device.type == "cuda" and plan.n_active * bn > 3072 * plan.rows.order.numel():
        bm, bn, warps, stages = tile_config(q, "fwd", long_rows=True)
        plan = plan_for(pattern, n, bm, bn, q.device)
    o = torch.zeros_like(q)
    lse = torch.full((B * H, rows), float("-inf"), dtype=torch.float32, device=q.device)
    launch(fwd_kernel, (triton.cdiv(n, bm), B * H), q, k, v, o, lse, *csr_args(plan, True), scale * LOG2E, n,
           q.stride(1), k.stride(1), q.stride(2), lse.stride(0), BM=bm, BN=bn, D=D, GROUP=H // k.shape[1],
           PREC=precision(q), num_warps=warps, num_stages=stages)
    return o, lse


def padded(x, n_real, fill=math.nan):
    """float32 torch copy of a NumPy (B, H, n, D) array, padded to whole tiles of 32 with `fill` past n."""
    rows = -(-n_real // 32) * 32
    t = torch.full((*x.shape[:-2], rows, x.shape[-1]), fill, dtype=torch.float32)
    t[..., :n_real, :] = torch.from_numpy(np.array(x, dtype=np.float32))
    return t.to(DEVICE)


def capstone_forward(q, k, v, pattern):
    """Your forward on float32 NumPy q (B, H, n, D), k, v (B, H_kv, n, D): (o, lse natural log) as NumPy."""
    n, B, H = q.shape[-2], q.shape[0], q.shape[1]
    o, lse = run_forward(padded(q, n), padded(k, n), padded(v, n), pattern, 1 / math.sqrt(q.shape[-1]), n)
    return (o[..., :n, :].cpu().numpy(),
            (lse[:, :n] / LOG2E).reshape(B, H, n).cpu().numpy())


# %% [markdown]
# Try it on one pattern first (a causal sliding window over 100 tokens: the last query tile is ragged):

# %%
p_demo, n_demo = P.SlidingWindow(40, causal=True), 100
rng = np.random.default_rng(0)
q_demo, k_demo, v_demo = (rng.standard_normal((1, 1, n_demo, 16)).astype(np.float32) for _ in range(3))
if HAS_TRITON:
    try:
        from saattn_edu import reference as R

        o_demo, lse_demo = capstone_forward(q_demo, k_demo, v_demo, p_demo)
        err = np.abs(o_demo - R.dense_attention(q_demo, k_demo, v_demo, mask=p_demo.mask(n_demo))).max()
        print("forward matches dense attention (max error < 1e-4):", bool(err < 1e-4))
    except NotImplementedError as exc:
        print("not written yet:", exc)

# %% [markdown]
# The check: output and log-sum-exp against float64 on a causal mask, a causal sliding window with a ragged end, a
# random block layout whose blocks (12 to 40 tokens) straddle the tiles, and a layout with fully masked rows.

# %%
if HAS_TRITON:
    check("ex14.forward", capstone_forward, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %% [markdown]
# ## Exercise 2: `delta`, the backward's row term
#
# With `P = softmax(S)` and `O = P V`, the gradient of the scores is `dS = P ∘ (dP − delta)` where `dP = dO Vᵀ`
# and `delta_i = Σ_j P_ij dP_ij = Σ_d O_id dO_id`: one number per query row, `rowsum(O ∘ dO)`, computed once before
# the two backward kernels. Write `delta_kernel`: program `p` handles rows `p·BR .. p·BR + BR − 1` of the flattened
# `(rows, D)` arrays `O` and `DO` (contiguous), in float32, masking rows `≥ rows`.

# %%
@triton.jit
def delta_kernel(O, DO, DELTA, rows, D: tl.constexpr, BR: tl.constexpr):
    """DELTA[r] = sum_d O[r, d] * DO[r, d] (float32) for the BR rows of this program."""
    ### BEGIN SOLUTION: (BR, D) tiles of O and DO, masked rows; multiply, sum over d, store
    offs = tl.program_id(0) * BR + tl.arange(0, BR)
    ok = offs < rows
    ptrs = offs[:, None] * D + tl.arange(0, D)[None, :]
    o = tl.load(O + ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    do = tl.load(DO + ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    tl.store(DELTA + offs, tl.sum(o * do, 1), mask=ok)
    ### END SOLUTION


def run_delta(o, do):
    """delta (B·H, rows) float32 from your delta_kernel."""
    B, H, rows, D = o.shape
    delta = torch.empty(B * H, rows, dtype=torch.float32, device=o.device)
    launch(delta_kernel, (triton.cdiv(B * H * rows, 64),), o, do, delta, B * H * rows, D=D, BR=64)
    return delta


def capstone_delta(o, do):
    """rowsum(o * do) of float32 NumPy (B, H, n, D) arrays, (B, H, n), from your kernel."""
    B, H, n, D = o.shape
    t = lambda x: torch.from_numpy(np.array(x, dtype=np.float32)).to(DEVICE)  # noqa: E731
    return run_delta(t(o), t(do)).reshape(B, H, n).cpu().numpy()


# %%
if HAS_TRITON:
    check("ex14.delta", capstone_delta, timeout=60)
else:
    print("skipped: Triton is not installed here")

# %% [markdown]
# ## Exercise 3: dK and dV, one program per key tile
#
# A program owns `BN` keys (and their values) of one kv head and walks the **transposed plan**: the query tiles that
# see its key tile, full ones then partial ones. Working transposed (rows are keys) keeps every product a plain
# `tl.dot`:
#
# ```
# dkdv_tiles (one list of query tiles)
#     for t in Ptr[pid_n] .. Ptr[pid_n+1]:
#         mb = Idx[t];  positions mb·BM + arange(BM);  row_ok = positions < n
#         qT (D, BM), do (BM, D), lse (BM,), delta (BM,) loaded with mask row_ok
#         pT = exp2(k @ qT · qk_scale − lse)                # (BN, BM): P transposed, recomputed
#         if MASKED: pT = 0 where the bits are 0            # bits of query r, key c: r·BN + c
#         dv += pT @ do
#         dpT = v @ doᵀ                                     # (BN, BM)
#         dsT = pT ∘ (dpT − delta)
#         dk += dsT @ qTᵀ
#
# dkdv_kernel
#     pid_n = Order[program_id(0)];  zk = program_id(1)      # key tile, kv head
#     k, v (BN, D) loaded with mask col_ok;  dk = dv = 0
#     for each query head z of this kv head (z = zk·GROUP + g):  dkdv_tiles full, then partial
#     store dk · scale and dv (masked by col_ok)
# ```
#
# Where does the `scale` go? `S = scale · Q Kᵀ`, so `dK = scale · dSᵀ Q` (and `dQ = scale · dS K`); `qk_scale`
# already holds `scale · log2(e)` for the exponent. A padded query row must give `p = 0`: load its `lse` as `+inf`.
# The check feeds the exact float64 `lse` and `delta` (in log2 units, as your forward writes them).

# %%
@triton.jit
def dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, dl_base, offs_m0, offs_n0, offs_d, n, stride_n,
               Ptr, Idx, MaskId, Masks, pid_n, qk_scale,
               BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr, PREC: tl.constexpr):
    """(dk, dv) (BN, D) after the query tiles Idx[Ptr[pid_n]:Ptr[pid_n+1]] that see this key tile."""
    ### BEGIN SOLUTION: per query tile: recompute P^T from lse, then dV += P^T dO, dS^T = P^T (dP^T - delta), dK += dS^T Q
    start = tl.load(Ptr + pid_n)
    end = tl.load(Ptr + pid_n + 1)
    for t in range(start, end):
        offs_m = tl.load(Idx + t) * BM + offs_m0  # (BM,) query positions
        row_ok = offs_m < n
        qT = tl.load(q_base + offs_m[None, :] * stride_n + offs_d[:, None], mask=row_ok[None, :], other=0.0)  # (D, BM)
        do = tl.load(do_base + offs_m[:, None] * stride_n + offs_d[None, :], mask=row_ok[:, None], other=0.0)  # (BM, D)
        lse = tl.load(lse_base + offs_m, mask=row_ok, other=float("inf"))  # +inf: p = 0 on padded rows
        delta = tl.load(dl_base + offs_m, mask=row_ok, other=0.0)
        pT = tl.math.exp2(tl.dot(k, qT, input_precision=PREC) * qk_scale - lse[None, :])  # (BN, BM)
        if MASKED:
            bits = tl.load(Masks + tl.load(MaskId + t) * BM * BN + offs_m0[None, :] * BN + offs_n0[:, None])
            pT = tl.where(bits != 0, pT, 0.0)
        dv += tl.dot(pT.to(do.dtype), do, input_precision=PREC)
        dpT = tl.dot(v, tl.trans(do), input_precision=PREC)  # (BN, BM)
        dsT = pT * (dpT - delta[None, :])
        dk += tl.dot(dsT.to(qT.dtype), tl.trans(qT), input_precision=PREC)
    return dk, dv
    ### END SOLUTION


@triton.jit
def dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV,
                FPtr, FIdx, PPtr, PIdx, PMask, Order, Masks,
                qk_scale, sm_scale, n, stride_qh, stride_kh, stride_n, stride_lse,
                BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, GROUP: tl.constexpr, PREC: tl.constexpr):
    """Program (p, zk): key tile Order[p] of kv head zk, summed over its GROUP query heads; writes DK, DV."""
    ### BEGIN SOLUTION: load K and V of the key tile, loop over the query heads and both lists, store
    pid_n = tl.load(Order + tl.program_id(0))
    zk = tl.program_id(1)
    offs_m0, offs_n0, offs_d = tl.arange(0, BM), tl.arange(0, BN), tl.arange(0, D)
    offs_n = pid_n * BN + offs_n0
    col_ok = offs_n < n
    kv_off = zk * stride_kh + offs_n[:, None] * stride_n + offs_d[None, :]
    k = tl.load(K + kv_off, mask=col_ok[:, None], other=0.0)  # (BN, D)
    v = tl.load(V + kv_off, mask=col_ok[:, None], other=0.0)
    dk = tl.zeros([BN, D], tl.float32)
    dv = tl.zeros([BN, D], tl.float32)
    for g in range(GROUP):  # GQA: the query heads that read this kv head
        z = zk * GROUP + g
        q_base, do_base = Q + z * stride_qh, DO + z * stride_qh
        lse_base, dl_base = LSE + z * stride_lse, DELTA + z * stride_lse
        dk, dv = dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, dl_base, offs_m0, offs_n0, offs_d, n, stride_n,
                            FPtr, FIdx, FIdx, Masks, pid_n, qk_scale, BM, BN, False, PREC)
        dk, dv = dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, dl_base, offs_m0, offs_n0, offs_d, n, stride_n,
                            PPtr, PIdx, PMask, Masks, pid_n, qk_scale, BM, BN, True, PREC)
    tl.store(DK + kv_off, (dk * sm_scale).to(DK.dtype.element_ty), mask=col_ok[:, None])
    tl.store(DV + kv_off, dv.to(DV.dtype.element_ty), mask=col_ok[:, None])
    ### END SOLUTION


# %% [markdown]
# ## Exercise 4: dQ, one program per query tile
#
# The mirror image over `plan.rows`: a program owns `BM` queries of one head (their `q`, `dO`, `lse`, `delta`), walks
# its key tiles (full, then partial) and accumulates `dq += ds @ k` with `p = exp2(q @ kT · qk_scale − lse)` and
# `ds = p ∘ (do @ vT − delta)`; it stores `dq · scale`.

# %%
@triton.jit
def dq_tiles(dq, q, do, lse, delta, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n,
             Ptr, Idx, MaskId, Masks, pid_m, qk_scale,
             BM: tl.constexpr, BN: tl.constexpr, MASKED: tl.constexpr, PREC: tl.constexpr):
    """dq (BM, D) after this query tile's key tiles Idx[Ptr[pid_m]:Ptr[pid_m+1]]."""
    ### BEGIN SOLUTION: per key tile: recompute P from lse, dS = P (dO V^T - delta), dQ += dS K
    start = tl.load(Ptr + pid_m)
    end = tl.load(Ptr + pid_m + 1)
    for t in range(start, end):
        offs_n = tl.load(Idx + t) * BN + offs_n0
        col_ok = offs_n < n
        kT = tl.load(k_base + offs_n[None, :] * stride_n + offs_d[:, None], mask=col_ok[None, :], other=0.0)  # (D, BN)
        vT = tl.load(v_base + offs_n[None, :] * stride_n + offs_d[:, None], mask=col_ok[None, :], other=0.0)
        p = tl.math.exp2(tl.dot(q, kT, input_precision=PREC) * qk_scale - lse[:, None])  # (BM, BN)
        if MASKED:
            bits = tl.load(Masks + tl.load(MaskId + t) * BM * BN + offs_m0[:, None] * BN + offs_n0[None, :])
            p = tl.where(bits != 0, p, 0.0)
        ds = p * (tl.dot(do, vT, input_precision=PREC) - delta[:, None])
        dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=PREC)
    return dq
    ### END SOLUTION


@triton.jit
def dq_kernel(Q, K, V, DO, LSE, DELTA, DQ,
              FPtr, FIdx, PPtr, PIdx, PMask, Order, Masks,
              qk_scale, sm_scale, n, stride_qh, stride_kh, stride_n, stride_lse,
              BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, GROUP: tl.constexpr, PREC: tl.constexpr):
    """Program (p, z): query tile Order[p] of head z; writes DQ."""
    ### BEGIN SOLUTION: load q, dO, lse, delta of the query tile; dq_tiles on both lists; store dq * scale
    pid_m = tl.load(Order + tl.program_id(0))
    z = tl.program_id(1)
    offs_m0, offs_n0, offs_d = tl.arange(0, BM), tl.arange(0, BN), tl.arange(0, D)
    offs_m = pid_m * BM + offs_m0
    row_ok = offs_m < n
    q_off = z * stride_qh + offs_m[:, None] * stride_n + offs_d[None, :]
    q = tl.load(Q + q_off, mask=row_ok[:, None], other=0.0)
    do = tl.load(DO + q_off, mask=row_ok[:, None], other=0.0)
    lse = tl.load(LSE + z * stride_lse + offs_m, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + z * stride_lse + offs_m, mask=row_ok, other=0.0)
    k_base, v_base = K + (z // GROUP) * stride_kh, V + (z // GROUP) * stride_kh
    dq = tl.zeros([BM, D], tl.float32)
    dq = dq_tiles(dq, q, do, lse, delta, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n,
                  FPtr, FIdx, FIdx, Masks, pid_m, qk_scale, BM, BN, False, PREC)
    dq = dq_tiles(dq, q, do, lse, delta, k_base, v_base, offs_m0, offs_n0, offs_d, n, stride_n,
                  PPtr, PIdx, PMask, Masks, pid_m, qk_scale, BM, BN, True, PREC)
    tl.store(DQ + q_off, (dq * sm_scale).to(DQ.dtype.element_ty), mask=row_ok[:, None])
    ### END SOLUTION


# %% [markdown]
# The launch code of the backward (given), and what the two checks call: `capstone_dkdv` and `capstone_dq` take the
# exact `lse` (natural log, as float64 computes it) and `delta`, so each check needs only its own exercise.

# %%
def run_dkdv(q, k, v, do, lse, delta, pattern, scale, n=None):
    """dk, dv (like k) from your dkdv_kernel; lse in log2 units."""
    B, H, rows, D = q.shape
    n = rows if n is None else n
    bm, bn, warps, stages = tile_config(q, "bwd")
    plan = plan_for(pattern, n, bm, bn, q.device)
    dk, dv = torch.zeros_like(k), torch.zeros_like(v)
    launch(dkdv_kernel, (triton.cdiv(n, bn), B * k.shape[1]), q, k, v, do, lse, delta, dk, dv,
           *csr_args(plan, False), scale * LOG2E, scale, n, q.stride(1), k.stride(1), q.stride(2), lse.stride(0),
           BM=bm, BN=bn, D=D, GROUP=H // k.shape[1], PREC=precision(q), num_warps=warps, num_stages=stages)
    return dk, dv


def run_dq(q, k, v, do, lse, delta, pattern, scale, n=None):
    """dq (like q) from your dq_kernel; lse in log2 units."""
    B, H, rows, D = q.shape
    n = rows if n is None else n
    bm, bn, warps, stages = tile_config(q, "bwd")
    plan = plan_for(pattern, n, bm, bn, q.device)
    dq = torch.zeros_like(q)
    launch(dq_kernel, (triton.cdiv(n, bm), B * H), q, k, v, do, lse, delta, dq, *csr_args(plan, True),
           scale * LOG2E, scale, n, q.stride(1), k.stride(1), q.stride(2), lse.stride(0),
           BM=bm, BN=bn, D=D, GROUP=H // k.shape[1], PREC=precision(q), num_warps=warps, num_stages=stages)
    return dq


def _bwd_inputs(q, k, v, do, lse, delta):
    """Padded float32 tensors for the backward checks: lse (natural log, NumPy) -> log2 units, +inf past n."""
    n, B, H = q.shape[-2], q.shape[0], q.shape[1]
    rows = -(-n // 32) * 32
    lse2 = torch.full((B * H, rows), math.inf)
    lse2[:, :n] = torch.from_numpy(np.asarray(lse, dtype=np.float64) * LOG2E).reshape(B * H, n).float()
    dl = torch.zeros(B * H, rows)
    dl[:, :n] = torch.from_numpy(np.asarray(delta, dtype=np.float32)).reshape(B * H, n)
    return (padded(q, n), padded(k, n), padded(v, n), padded(do, n), lse2.to(DEVICE), dl.to(DEVICE),
            1 / math.sqrt(q.shape[-1]))


def capstone_dkdv(q, k, v, do, lse, delta, pattern):
    """(dk, dv) as NumPy from your dkdv_kernel, given the exact lse (natural log) and delta."""
    n = q.shape[-2]
    qt, kt, vt, dot, lse2, dl, scale = _bwd_inputs(q, k, v, do, lse, delta)
    dk, dv = run_dkdv(qt, kt, vt, dot, lse2, dl, pattern, scale, n)
    return dk[..., :n, :].cpu().numpy(), dv[..., :n, :].cpu().numpy()


def capstone_dq(q, k, v, do, lse, delta, pattern):
    """dq as NumPy from your dq_kernel, given the exact lse (natural log) and delta."""
    n = q.shape[-2]
    qt, kt, vt, dot, lse2, dl, scale = _bwd_inputs(q, k, v, do, lse, delta)
    return run_dq(qt, kt, vt, dot, lse2, dl, pattern, scale, n)[..., :n, :].cpu().numpy()


# %%
if HAS_TRITON:
    check("ex14.dkdv", capstone_dkdv, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %%
if HAS_TRITON:
    check("ex14.dq", capstone_dq, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %% [markdown]
# ## Exercise 5: the `torch.autograd.Function`
#
# Tie the kernels together. `forward(ctx, q, k, v, pattern, scale)` runs `run_forward`, saves what the backward needs
# (`ctx.save_for_backward` for tensors, plain attributes for the rest) and returns `o`. `backward(ctx, do)` computes
# `delta` with `run_delta`, then `run_dkdv` and `run_dq`, and returns one gradient per input of `forward`: `None`
# for `pattern` and `scale`. `do` may arrive non-contiguous: make it contiguous first.

# %%
class FlashAttention(torch.autograd.Function):
    """Block-sparse FlashAttention-2: your Triton forward and backward."""

    @staticmethod
    def forward(ctx, q, k, v, pattern, scale):
        ### BEGIN SOLUTION: run_forward; save q, k, v, o, lse; keep pattern and scale on ctx; return o
        o, lse = run_forward(q, k, v, pattern, scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.pattern, ctx.scale = pattern, scale
        return o
        ### END SOLUTION

    @staticmethod
    def backward(ctx, do):
        ### BEGIN SOLUTION: delta, then dk/dv and dq; one gradient per forward input
        q, k, v, o, lse = ctx.saved_tensors
        do = do.contiguous()
        delta = run_delta(o, do)
        dk, dv = run_dkdv(q, k, v, do, lse, delta, ctx.pattern, ctx.scale)
        dq = run_dq(q, k, v, do, lse, delta, ctx.pattern, ctx.scale)
        return dq, dk, dv, None, None
        ### END SOLUTION


def flash_attention(q, k, v, pattern, scale=None):
    """Your block-sparse attention of q (B, H, n, D), k, v (B, H_kv, n, D) under `pattern`, differentiable."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return FlashAttention.apply(q.contiguous(), k.contiguous(), v.contiguous(), pattern, scale)


def capstone_grads(q, k, v, do, pattern):
    """(o, dq, dk, dv) as NumPy through flash_attention and torch.autograd.grad (float32, unpadded)."""
    qt, kt, vt = (torch.from_numpy(np.array(x, dtype=np.float32)).to(DEVICE).requires_grad_() for x in (q, k, v))
    o = flash_attention(qt, kt, vt, pattern)
    grads = torch.autograd.grad(o, (qt, kt, vt), torch.from_numpy(np.array(do, dtype=np.float32)).to(DEVICE))
    return tuple(t.detach().cpu().numpy() for t in (o, *grads))


# %%
if HAS_TRITON:
    check("ex14.autograd", capstone_grads, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %% [markdown]
# ## Exercise 6 ★: grouped-query attention
#
# Llama-style models share each key/value head among `GROUP` query heads (lesson 12). The launch code already passes
# `GROUP = H / H_kv` and launches `dkdv_kernel` once per **kv** head: make all four kernels read the right kv head,
# and make dK/dV sum over the query heads that share it. The check runs `capstone_grads` with `H = 4, H_kv = 2`
# (graded in its own ★ column).

# %%
if HAS_TRITON:
    check("ex14.star_gqa", capstone_grads, timeout=120)
else:
    print("skipped: Triton is not installed here")

# %% [markdown]
# ## Race your kernel against FlexAttention (on a GPU)
#
# `saattn_edu.bench.race` times any attention function against compiled FlexAttention and SDPA (FlashAttention-2
# and cuDNN backends) on the same bf16 inputs, for the anchor patterns of lesson 08, with `triton.testing.do_bench`
# medians. Each function is first checked against float32 attention on the same inputs: a wrong kernel gets its
# error, not a time. The same race from a terminal: `saattn bench --fn yourmodule:flash_attention --n 16384`.
# On a CPU it says so and returns no rows. (Colab: *Runtime → Change runtime type → GPU*.)

# %% tags=["nbval-ignore-output"]
from saattn_edu.bench import race

rows = race(flash_attention, patterns=["causal", "sliding_w1024", "longformer_w512_g64"], n=[4096, 16384],
            name="yours", library=True)

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/14_capstone_kernel.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
# The library's kernel, `saattn_edu/accel/block_sparse_flash.py`, is the same design with more: the strided
# permutation, one launch for the whole backward, tuned tile shapes. Read it now and compare.
