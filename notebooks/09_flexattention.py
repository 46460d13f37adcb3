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
# # 09 · FlexAttention: mask_mods and BlockMasks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/09_flexattention.ipynb)
#
# **Learning goals.** After this notebook you can
# - write a `mask_mod` for every pattern of the course and check it against the pattern's mask
# - build a BlockMask, read it with `to_string()`, and count its full and partial blocks
# - measure what `torch.compile` costs the first time, for a new shape and for a new mask
# - see where Flex wastes work (strided columns) and how permuting tokens by residue removes the waste

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## A pattern as a function
#
# FlexAttention (PyTorch ≥ 2.5) takes the pattern as a small Python function, a **mask_mod**
# `(b, h, q_idx, kv_idx) -> bool`, and generates a fused FlashAttention kernel for it with `torch.compile`. Before
# running, it evaluates the mask_mod tile by tile into a **BlockMask**: which `128 × 128` blocks are empty (skipped),
# full (no mask) or partial (the mask_mod is evaluated inside the kernel). The same three classes as lesson 08's plan.
#
# A mask_mod must be written with tensor operations: it is called on index tensors (and traced by the compiler), so
# `and`/`or`/`if` become `&`, `|` and `torch.where`.

# %%
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

# %% [markdown]
# ## A mask_mod for every pattern
#
# Every pattern of the course has one: `p.mask_mod` (or `p.mask_mod_for(n)`, which first builds the per-length tables
# of the patterns that need them). Rule-based patterns compile their `allowed(i, j)` rule; table-based ones (random
# keys, BigBird's random blocks, block layouts) close over a small tensor and look it up with the indices. Each is
# checked here against the pattern's own mask:

# %%
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

# %%
fig, axes = plt.subplots(2, 7, figsize=(14, 4.6), dpi=72)
for ax, (name, m) in zip(axes.flat, masks.items()):
    ax.imshow(m, cmap="Greys", interpolation="nearest")
    ax.set_title(name, fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle(f"every pattern's mask_mod evaluated on a {n} × {n} grid (rows: queries, columns: keys)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## BlockMask: what Flex will compute
#
# `create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=..., BLOCK_SIZE=128)` evaluates the mask_mod over the whole
# grid once (B = H = None: the same for every batch and head) and keeps, per query block, the lists of partial and of
# full key blocks (`kv_num_blocks`/`kv_indices` and `full_kv_num_blocks`/`full_kv_indices`). `to_string()` draws it,
# one character per block; `sparsity()` is the percentage of blocks skipped.

# %%
n = 1024
p = P.SlidingWindow(256, causal=True)
bm = create_block_mask(p.mask_mod_for(n), None, None, n, n, device="cpu", BLOCK_SIZE=128)
print(bm.to_string())
partial, full = int(bm.kv_num_blocks.sum()), int(bm.full_kv_num_blocks.sum())
print(f"blocks: {partial} partial + {full} full of {(n // 128) ** 2}; sparsity {bm.sparsity():.1f}% skipped")
print(f"token density {p.density(n):.1%}, block density {(partial + full) / (n // 128) ** 2:.1%}")


# %% [markdown]
# The band's inside is full (no mask code runs there), its two edges are partial. The same counts come out of the
# library's Triton plan with 128-token tiles (`accel/block_plan.py`): both kernels do the same work.
#
# ## What compiling costs
#
# `flex_attention` must be compiled (`torch.compile`): run eagerly it materializes the `n × n` scores and warns.
# The first call compiles (seconds on a CPU), later calls with the same shapes and mask reuse the kernel; a new
# sequence length recompiles once (then the compiler marks the length dynamic), and a new mask_mod recompiles too,
# because the mask is compiled into the kernel. `accel.flex(q, k, v, pattern)` keeps one compiled function and
# caches BlockMasks per (pattern, n, device).

# %% tags=["nbval-ignore-output"]
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

# %% [markdown]
# Compile once, call many times: in a training loop the compile cost disappears; in a notebook that tries ten
# patterns it dominates. (On a GPU the first compile takes seconds too; the H100 table of lesson 08 lists them.)
#
# ## Where Flex wastes work: strided columns
#
# Sparse Transformer's strided pattern (lesson 05) lets query `i` see its last `l` keys and every `l`-th key before
# them. The columns `(i - j) % l == 0` cross **every** key block below the diagonal: each block holds a few allowed
# pairs per row, and Flex computes all of it.

# %%
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

# %% [markdown]
# **The permutation.** Reorder the tokens by residue: first `0, l, 2l, ...`, then `1, 1 + l, ...` and so on
# (`accel.permute.permutation(n, l)`). In that order the strided pairs (`i ≡ j mod l`) of one residue are neighbours:
# they fill a small dense causal triangle of `n / l` tokens on the diagonal. What is left, the local band
# `i - l < j ≤ i`, stays in token order. Split the pattern's pairs that way (`strided_rules` does it) and count the
# blocks of each part:

# %%
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

# %%
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

# %% [markdown]
# The two parts run as two passes of one softmax: the second continues the first's running max and sum (lesson 07's
# merge), and every allowed pair is visited exactly once. Flex could run them too (two calls and a log-sum-exp merge,
# with `q`, `k`, `v` gathered into the permuted order for the first); the library's Triton kernel does it without
# copying anything, reading the permuted order through strided pointers. On an H200 (lesson 08's second table,
# 2026-12-02), strided `l = 256` at 16k: Flex 1.93 ms (autotuned 1.72 ms), the permuted kernel 0.31 ms, 10.6× dense
# causal FlashAttention-2.
#
# Measured here, Flex on the strided pattern against a sliding window that allows **more** pairs: the time follows
# the blocks, not the pairs (a new mask_mod: one more compile first).

# %% tags=["nbval-ignore-output"]
n = 2048
window = P.SlidingWindow(3 * l, causal=True)
q, k, v = (torch.randn(1, 2, n, 64, generator=g) for _ in range(3))
for name, pat in (("Strided(64)", strided), ("SlidingWindow(192)", window)):
    flex(q, k, v, pat)  # compiles this mask_mod
    t = min(seconds(lambda: flex(q, k, v, pat)) for _ in range(3))
    bm = create_block_mask(pat.mask_mod_for(n), None, None, n, n, device="cpu")
    print(f"{name:20} pairs {pat.num_pairs(n):>8}   blocks {int(bm.kv_num_blocks.sum() + bm.full_kv_num_blocks.sum()):>4}"
          f"   {t * 1e3:7.1f} ms")

# %% [markdown]
# **Explore**: pick a pattern and a block size; the BlockMask's picture and its block density against the token
# density (no compile here: building a BlockMask is cheap).

# %% tags=["nbval-ignore-output"]
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

# %% [markdown]
# > **Conventions.** attention-gym's mask_mods count differently from this course: `generate_sliding_window(w)`
# > keeps w + 1 keys, `generate_dilated_sliding_window(w, d)` counts tokens not steps, `generate_prefix_lm_mask(p)`
# > is `P.PrefixLM(p)`. The converters in `saattn_edu.patterns.conventions` and `docs/patterns.md` give each one;
# > `tests/test_conformance_rules.py` and `tests/test_conformance_prefix_lm.py` check them (PrefixLM on every path,
# > the Triton kernel included).
#
# ## Summary
#
# - A FlexAttention pattern is a `mask_mod(b, h, q_idx, kv_idx)` written with tensor operations; every pattern of
#   the course provides one (`p.mask_mod_for(n)`), and it equals the pattern's mask.
# - `create_block_mask` turns it into a BlockMask of empty, partial and full `128 × 128` blocks (`to_string()`,
#   `sparsity()`): Flex's work is the active blocks, whatever the token density.
# - `torch.compile` pays seconds on the first call, again per new length (once) and per new mask_mod.
# - Scattered patterns waste most of each block: strided columns switch on every block. Reordering tokens by residue
#   turns the strided pairs into dense diagonal triangles, 5 to 6× fewer blocks here; the library's Triton kernel
#   (lesson 08) runs that order without copying.
#
# Next: write the Triton kernel's inner loop yourself in `exercises/08_triton_kernel.ipynb`, then learned sparsity in
# `10_learned_sparsity.ipynb`.
