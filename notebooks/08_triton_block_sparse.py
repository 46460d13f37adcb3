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
# # 08 · A Triton block-sparse kernel
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/08_triton_block_sparse.ipynb)
#
# **Learning goals.** After this notebook you can
# - explain the design of a block-sparse FlashAttention-2 kernel in Triton: programs, tile plans (rows and their transpose), full and masked partial tiles, a backward that recomputes instead of storing
# - run that kernel on your CPU through Triton's interpreter and check it against dense attention
# - measure NumPy, Torch and FlexAttention on your machine, and read the committed H100 table
# - time a kernel of your own on a GPU (Colab or elsewhere) with the toolkit's timer

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## From a NumPy loop to a grid of programs
#
# Lesson 07's block-sparse FlashAttention was two nested Python loops: for each query tile, for each *active* key
# tile, one online-softmax update. A GPU kernel keeps the inner loop and replaces the outer one by a **grid of
# programs** running in parallel: program `(i, z)` owns query tile `i` of batch·head `z`, loads its queries once
# into fast on-chip memory, and walks its key tiles. Triton lets us write that program in Python: `tl.load` and
# `tl.dot` act on whole tiles, and the compiler turns them into tensor-core instructions.
#
# The library's kernel is `saattn_edu/accel/block_sparse_flash.py`. Without a GPU, Triton's **interpreter**
# (`TRITON_INTERPRET=1`, set before `triton` is imported; the module does it when there is no GPU) runs the same
# kernel on CPU tensors, one program after another: slow, exact, and enough to read and test it.

# %%
import json
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


# %% [markdown]
# ## The plan: which tiles each program visits
#
# Before launching, the library turns the pattern into a **plan** (`accel/block_plan.py`), once per (pattern,
# length, tile shape, device). It evaluates the pattern's rule in row chunks and classes every `BM × BN` tile:
#
# - **empty**: no allowed pair, never visited;
# - **full**: every pair allowed: the kernel runs it with no mask code at all;
# - **partial**: some pairs allowed: the kernel also loads a packed `BM × BN` uint8 token mask.
#
# The kernel reads, per query tile, two CSR lists of key tiles (full, then partial) and the masks of the partial ones:

# %%
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
    ax.set_title(f"{title}\nfull {full}, partial {part}, empty {grid.size - full - part}", fontsize=9)
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

# %% [markdown]
# BigBird was designed in blocks: with blocks equal to the tiles, almost every active tile is full. The window's band
# has full tiles inside and partial ones on its two edges. The strided pattern's columns switch on every tile of the
# causal triangle, each one partial and mostly wasted: lesson 09 and the permutation below come back to it.
#
# **Explore**: pick a pattern, a length and a tile size and watch the classes change (small tiles: fewer wasted
# pairs, but more tiles, each with a fixed cost).

# %% tags=["nbval-ignore-output"]
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


# %% [markdown]
# ## The kernel's design
#
# The library's kernel (`saattn_edu/accel/block_sparse_flash.py`) is FlashAttention-2 driven by the plan. This section
# gives its design: who does what, in which order, with which state. Writing it is the capstone
# (`exercises/14_capstone_kernel.ipynb`); read the library's source after you have written yours.
#
# **Forward: one program per (query tile, head).** The grid is `(query tiles, batch·head)`. A program loads its `BM`
# queries once, then walks its query tile's row of the plan: first the full key tiles, then the partial ones. For each
# it keeps lesson 07's online-softmax state in fp32 registers (running max `m`, running sum `l`, accumulator `acc`):
#
# ```
# program (i, z):                     # query tile i of head z
#     q ← Q[z, tile i]                # (BM, D), rows past n masked
#     m, l, acc ← -inf, 0, 0
#     for each key tile j in plan.rows[i]:  full ones first (no mask code), then partial ones (token mask)
#         s ← q Kⱼᵀ · scale, in log2 units; -inf where the mask says no
#         fold s into (m, l, acc) with V_j          # rescale the old state when the max grows
#     O[z, tile i] ← acc / l   (0 where l = 0);   LSE ← m + log2 l   (kept for the backward)
# ```
#
# Three design choices carry the speed. *Skipping is free*: the loop runs over a CSR slice, so an empty tile is never
# touched. *Full and partial tiles are two loops*: whether a tile is masked is a compile-time constant, so the common
# full tile carries no mask load and no `where`. *Heaviest first*: the plan lists query tiles by decreasing work, and
# program `p` takes tile `order[p]`, so a long row (a global token) does not finish last, alone.
#
# **Backward: recompute, don't store.** The forward kept only `O` and `LSE` (one number a row), never the `n × n`
# probabilities. The backward recomputes each tile's probabilities from `LSE`, and splits the work so that no two
# programs write the same output (no atomics):
#
# ```
# delta ← rowsum(O ∘ dO)                          # one number a query row, before the two kernels below
# program per (key tile j, kv head):   walk plan.cols[j]  (the query tiles that see key tile j)
#     recompute P of the tile from LSE; dV_j += Pᵀ dO;  dS = P ∘ (dO Vⱼᵀ − delta);  dK_j += dSᵀ Q · scale
# program per (query tile i, head):    walk plan.rows[i]  (as the forward)
#     recompute P and dS the same way;  dQ_i += dS K_j · scale
# ```
#
# The column walk is why the plan has a **transposed** view: `plan.cols[j]` lists, per key tile, the query tiles that
# see it. The figure shows the tiles three programs visit on one pattern: a forward (or dQ) program walks a row,
# a dK/dV program walks a column.

# %%
def visited(pattern, n, tile, i, j):
    """Boolean tile grids: the row that query tile i's program walks, the column that key tile j's program walks."""
    plan = build_plan(pattern_rule(pattern, n), n, tile, tile, "cpu")
    nt = -(-n // tile)
    row, col = np.zeros((nt, nt), bool), np.zeros((nt, nt), bool)
    for c, r in ((plan.rows, row), (plan.cols, col)):
        outer = i if r is row else j
        for ptr, idx in ((c.full_ptr, c.full_idx), (c.part_ptr, c.part_idx)):
            inner = idx[ptr[outer]:ptr[outer + 1]].numpy()
            if r is row:
                r[outer, inner] = True
            else:
                r[inner, outer] = True
    return row, col


p_fig, n_fig, tile_fig = P.Longformer(128, global_indices=range(32)), 1024, 64
grid = tile_classes(p_fig, n_fig, tile_fig)
row, col = visited(p_fig, n_fig, tile_fig, i=10, j=0)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=72)
for ax, sel, title in ((axes[0], row, "forward / dQ program of query tile 10:\nwalks plan.rows[10]"),
                       (axes[1], col, "dK/dV program of key tile 0 (global keys):\nwalks plan.cols[0]")):
    show_classes(grid, title, ax)
    ax.imshow(np.ma.masked_where(~sel, sel), cmap="Greys", alpha=0.55, vmin=0, vmax=1)
    ax.set_title(f"{title}: {int(sel.sum())} tiles", fontsize=9)
fig.suptitle("Longformer(128, 32 global), n = 1024, tiles of 64: the tiles one program visits (darkened)")
fig.tight_layout(rect=(0, 0, 1, 0.9))
plt.show()

# %% [markdown]
# Key tile 0 holds the global keys: every query tile sees it, so its dK/dV program walks the whole column, the
# longest job of the backward. That is what the heaviest-first order is for.
#
# ## Run it on this machine
#
# Through the interpreter, on a short causal sliding window (two query tiles: three active tiles), against dense
# attention with the pattern's mask:

# %%
p, n = P.SlidingWindow(48, causal=True), 128
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(1, 1, n, 32, generator=g) for _ in range(3))
if HAS_TRITON:
    out = bsf.block_sparse_flash(q, k, v, p)
    ref = R.dense_attention(q.numpy()[0, 0], k.numpy()[0, 0], v.numpy()[0, 0], mask=p.mask(n))
    print("equals dense attention (max error < 1e-4):", bool(np.abs(out[0, 0].numpy() - ref).max() < 1e-4))
else:
    print("skipped: Triton is not installed here")

# %% tags=["nbval-ignore-output"]
if HAS_TRITON:
    t = C.time_fn(bsf.block_sparse_flash, q, k, v, p, warmup=0, repeats=1).median
    tiles = build_plan(pattern_rule(p, n), n, 64, 64, "cpu").n_active
    print(f"{t:.2f} s for {tiles} tiles in the interpreter: about {t / tiles * 1e3:.0f} ms a tile "
          "(an H100 does a 64 × 64 × 32 tile in well under a microsecond)")

# %% [markdown]
# ## Measured on this machine: NumPy, Torch, Flex
#
# On a CPU the kernel only runs in the interpreter, so here we time the paths that run natively: the NumPy gather
# reference (`R.sparse_attention`), masked SDPA (dense price), Torch gather (`accel.gather_attention`, O(nnz·d))
# and compiled FlexAttention (`accel.flex`). Flex compiles on its first call (seconds; see lesson 09), so the first
# call is left out of the timing. One causal sliding window of 256, one head of 64:

# %% tags=["nbval-ignore-output"]
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

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(6, 3.8), dpi=72)
for name, ts in measured.items():
    ax.loglog(sizes, np.array(ts) * 1e3, "o-", label=name, base=2)
ax.set_xlabel("sequence length n")
ax.set_ylabel("ms (this machine)")
ax.set_title("causal sliding window 256: sparse paths grow like n, masked SDPA like n²", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## On an H100: the committed table
#
# `benchmarks/gpu_attention.py` timed the Triton kernel ("ours") against compiled FlexAttention and PyTorch's
# FlashAttention (SDPA, dense causal) on one H100 (B=1, H=16, D=128, bf16; `benchmarks/NOTES.md` tells how the
# kernel was tuned). The rows are committed in `benchmarks/results/`; in Colab the cell fetches them from GitHub.

# %% tags=["nbval-ignore-output"]
NAME = "gpu_attention_4096_16384_65536.json"
URL = f"https://raw.githubusercontent.com/saattn-edu/saattn-edu/main/benchmarks/results/{NAME}"


def load_gpu_table(name=NAME):
    """Committed GPU rows: from the repository checkout, else from GitHub (Colab)."""
    for folder in (Path(".."), Path(".")):
        path = folder / "benchmarks" / "results" / name
        if path.exists():
            return json.loads(path.read_text())
    import urllib.request

    with urllib.request.urlopen(URL.replace(NAME, name), timeout=10) as f:
        return json.load(f)


table = load_gpu_table()
rows = table["rows"]
print(table["meta"]["device"], "| forward ms at n = 16384 (and speedup over dense causal FlashAttention)")
for r in (r for r in rows if r["n"] == 16384):
    print(f"{r['pattern']:22} ours {r['ours_ms']['fwd']:6.3f}  Flex {r['flex_ms']['fwd']:6.3f}  "
          f"SDPA causal {r['sdpa_flash_causal_ms']['fwd']:6.3f}   speedup {r['speedup_vs_fa_causal']['fwd']:5.1f}× "
          f"(ideal {r['ideal_speedup']:.1f}×)")

# %%
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

# %% [markdown]
# Three things to read in it. Sparse kernels gain with `n` (sliding window: about 8× at 16k, about 30× at 64k), close to the
# ideal FLOP ratio. The kernel and Flex run the same algorithm, so they are within a few percent on windows,
# Longformer and BigBird. The strided pattern is the exception: Flex pays almost the dense price (its columns touch
# every key tile), while the library kernel runs it **permuted** (`accel/permute.py`): tokens reordered by residue
# `t mod l` make the strided keys contiguous, so the kernel visits a few dense tiles per residue, and is 5 to 6×
# faster than Flex at 16k, nearly 20× at 64k. Lesson 09 counts the tiles.
#
# ## On an H200: Hopper's copy engine, and the strongest peers
#
# On sm_90 the library swaps in a second pair of kernels (`accel/block_sparse_hopper.py`): the same plan and the same
# online softmax, but each K/V tile arrives through a *tensor descriptor*, one bulk copy by the TMA engine instead of
# 128 threads computing addresses. That bought 4–10 % (`benchmarks/NOTES.md` has the A/B). The run below also
# times the strongest peers in the same process: Flex compiled with `mode="max-autotune-no-cudagraphs"` (from the
# autotuned run of the same day) and SDPA's cuDNN backend, the fastest dense causal kernel on Hopper. "TF/s" counts
# only computed pairs, so it says how close each sparse pattern runs to the dense peak.

# %% tags=["nbval-ignore-output"]
h200 = load_gpu_table("gpu_attention_16384_h200_tma.json")
tuned = {r["pattern"]: r["flex_autotune_ms"] for r in load_gpu_table("gpu_attention_16384_h200_anchors.json")["rows"]
         if r.get("flex_autotune_ms")}
print(h200["meta"]["device"], "| n = 16384 | forward ms | TF/s on computed pairs | fraction of cuDNN causal")
for r in h200["rows"]:
    t = tuned.get(r["pattern"], {}).get("fwd", float("nan"))
    print(f"{r['pattern']:22} ours {r['ours_ms']['fwd']:6.3f}  Flex {r['flex_ms']['fwd']:6.3f}  tuned Flex {t:6.3f}  "
          f"cuDNN causal {r['sdpa_cudnn_causal_ms']['fwd']:6.3f}   {r['ours_tflops']['fwd']:4.0f} TF/s  "
          f"{r['fraction_of_cudnn_tflops']['fwd']:.2f}")

# %% [markdown]
# Dense causal work reaches about 0.8 of cuDNN (which uses Hopper's warp-specialised ping-pong schedule, beyond what
# Triton 3.6 expresses for this loop); the sparse anchors beat tuned Flex by 6 % (sliding window) to 38 % (BigBird)
# forward. Short rows (a window of 1024 is 16 key tiles) run at 300–360 TF/s: each program has little work to
# pipeline, which is why the theory of lesson 05 (pairs) and the wall clock differ.
#
# ## Time your own kernel on a GPU
#
# On a GPU (Colab: *Runtime → Change runtime type → GPU*; or any Linux machine with CUDA), time with the toolkit's
# timer `complexity.time_fn`, with two precautions: GPU calls return before the work is done, so **synchronize**
# inside the timed function; and **warm up**, since the first calls compile the kernel. `triton.testing.do_bench`
# (median over many runs, with the L2 cache flushed) is the alternative Triton's tutorials use. On a CPU the cell
# says why it skips.
#
# For a full race on the anchor patterns (your kernel, the library's, compiled Flex, SDPA's FlashAttention-2 and cuDNN
# backends, each checked for correctness first) use `saattn bench` from a terminal, or `saattn_edu.bench.race` from a
# notebook; `saattn bench --help` lists the options.

# %% tags=["nbval-ignore-output"]
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

# %% [markdown]
# ## Summary
#
# - A block-sparse kernel is FlashAttention-2 with a **plan**: one program per query tile walks only its active key
#   tiles, full ones with no mask and partial ones with a packed token mask; empty tiles cost nothing.
# - The backward recomputes each tile's probabilities from the saved log-sum-exp: dK/dV programs walk the plan's
#   columns (its transpose), dQ programs its rows, so no two programs write the same output.
# - Triton writes these programs in Python over whole tiles (`tl.load` with masks, `tl.dot`, `exp2`); the
#   interpreter runs them on a CPU for testing, a GPU compiles them.
# - Sparse paths grow like `n` where masked dense attention grows like `n²`, on your CPU and on an H100; the kernel
#   equals Flex on local patterns and beats it on strided ones through the residue permutation.
# - To time a kernel on a GPU: warm up, synchronize, take the median.
#
# Next: write the kernel's inner loop yourself in `exercises/08_triton_kernel.ipynb`; then the whole kernel, forward
# and backward, in the capstone `exercises/14_capstone_kernel.ipynb`, and race it against Flex with `saattn bench`.
# Flex's side of the story is `09_flexattention.ipynb`.
