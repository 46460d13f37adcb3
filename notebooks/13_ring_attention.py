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
# # 13 · Ring attention over torch.distributed
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/13_ring_attention.ipynb)
#
# A million-token sequence does not fit one device's memory, even with FlashAttention: the activations alone grow
# with `n`. Ring attention splits the *sequence* over `W` devices and passes the keys and values around a ring.
#
# **Learning goals**
# - see the ring schedule: at step `s`, rank `r` holds the K/V block of rank `r - s`, and merges one partial result;
# - check numerically that the log-sum-exp merge of partial results is exact;
# - balance causal work with the zigzag split;
# - run real ring attention on 4 local processes (gloo), compared with dense attention;
# - count the communication a sparse-aware ring saves for a sliding window.

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %%
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.distributed import communication, plan_ring, shard_positions, simulate_ring


# %% [markdown]
# ## See it: who holds what, step by step
#
# Each rank keeps its queries and, at every step, attends them to the K/V block it holds, then passes that block to
# the next rank. After `W` steps every rank has met every block. `simulate_ring` computes the schedule in NumPy (the
# torch code follows the same plan); each cell below is one rank at one step, labelled with the block it holds.

# %%
# @title Helper: draw a ring schedule (rows = steps, columns = ranks)
def draw_schedule(plan, ax, title="", upto=None):
    """Cell (step, rank): the K/V block the rank holds; grey when it is not needed (compute skipped)."""
    steps = simulate_ring(plan)
    W = plan.world_size
    colors = plt.cm.tab10(np.arange(W) % 10)
    for k, st in enumerate(steps):
        for r in range(W):
            src, used = st["holds"][r], st["compute"][r]
            shown = upto is None or k <= upto
            face = colors[src] if (used and shown) else (0.85, 0.85, 0.85, 1.0 if shown else 0.3)
            ax.add_patch(plt.Rectangle((r, k), 0.95, 0.95, color=face))
            if shown:
                ax.text(r + 0.47, k + 0.47, f"K/V {src}", ha="center", va="center", fontsize=8)
    labels = ["own"] + [f"{'→' if d > 0 else '←'} hop {s}" for d, s in plan.steps()]
    ax.set(xlim=(0, W), ylim=(len(steps), 0), xticks=np.arange(W) + 0.47, xticklabels=[f"rank {r}" for r in range(W)],
           yticks=np.arange(len(steps)) + 0.47, yticklabels=labels, title=title)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)


# %%
W, n = 4, 64
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
draw_schedule(plan_ring(None, n, W), axes[0], "dense: W - 1 = 3 hops")
draw_schedule(plan_ring(P.Causal(), n, W), axes[1], "causal, contiguous split: grey = skipped")
plt.tight_layout()
plt.show()

# %%
for st in simulate_ring(plan_ring(None, n, W)):
    print(f"step {st['step']}: rank r holds the block of rank", st["holds"].tolist())

# %% [markdown]
# ## Why the merge is exact
#
# Each step gives a *partial* result over one key block: the output `out` (normalised over that block only) and the
# log-sum-exp `lse` of the scores. Two partials over disjoint keys combine exactly: with weights `w = exp(lse - m)`,
# `m = max(lse_a, lse_b)`, the merged output is `(w_a out_a + w_b out_b) / (w_a + w_b)` and the merged log-sum-exp
# `m + log(w_a + w_b)`. The same rule drives FlashAttention's inner loop (lesson 07).

# %%
rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((1, 8, 16)) for _ in range(3))  # 8 tokens, d = 16
out_a, lse_a = R.flash_attention(q, k[:, :4], v[:, :4], return_lse=True)  # keys 0..3 (one rank's block)
out_b, lse_b = R.flash_attention(q, k[:, 4:], v[:, 4:], return_lse=True)  # keys 4..7 (the other's)
merged, lse = R.merge_partials(out_a, lse_a, out_b, lse_b)
dense = R.dense_attention(q, k, v)
print("weight of block a per query:", np.exp(lse_a - lse)[0].round(3))
print("max |merged - dense| =", float(np.abs(merged - dense).max()))

# %% [markdown]
# ## Balance causal work: the zigzag split
#
# With causal attention and a contiguous split, rank 0 attends to almost nothing and the last rank to almost
# everything, and every ring step waits for the slowest rank. Zigzag cuts the sequence into `2W` chunks and gives
# rank `r` chunks `r` and `2W - 1 - r`: one cheap and one expensive chunk each. (`striped` — rank `r` owns tokens
# `r, r + W, …` — balances it too.)

# %%
n, W = 1024, 4
causal = P.Causal()
fig, ax = plt.subplots(figsize=(6, 2.6))
for k, layout in enumerate(("contiguous", "zigzag", "striped")):
    pairs = [causal.allowed(shard_positions(n, W, r, layout)[:, None], np.arange(n)[None, :], n).sum() for r in range(W)]
    ax.bar(np.arange(W) + 0.27 * (k - 1), pairs, width=0.27, label=layout)
ax.set(xlabel="rank", ylabel="(query, key) pairs", title=f"causal work per rank, n={n}, W={W}", xticks=range(W))
ax.legend()
plt.show()

# %% [markdown]
# ## Sparse-aware ring: a window needs only its neighbours
#
# With a sliding window, a rank's queries only reach keys of the neighbouring ranks. The plan then sends K/V one hop
# each way instead of `W - 1` hops, and skips the compute of blocks out of reach. Below, the hops and the bytes each
# rank sends in the forward pass (fp32, `d = 128`, one head), for a window of 4096 on a million tokens:

# %%
n, window, d = 2**20, 4096, 128
print(f"{'W':>4} {'dense hops':>10} {'window hops':>11} {'dense MiB':>10} {'window MiB':>11} {'blocks computed':>16}")
for W in (2, 4, 8, 16, 32):
    block_bytes = (n // W) * d * 4  # one K (or V) block
    c = communication(plan_ring(P.SlidingWindow(window), n, W), block_bytes)
    print(f"{W:>4} {c['dense_hops']:>10} {c['hops']:>11} {c['dense_bytes_per_rank'] / 2**20:>10.0f} "
          f"{c['bytes_per_rank'] / 2**20:>11.0f} {c['blocks_computed']:>7} of {c['blocks_total']}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
draw_schedule(plan_ring(P.SlidingWindow(16), 192, 6), axes[0], "window 16, n=192, W=6: 1 hop each way")
draw_schedule(plan_ring(P.SlidingWindow(16, causal=True), 192, 6), axes[1], "causal window: 1 hop")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Measure it: a real run on 4 processes
#
# `saattn ring` (here `python -m saattn_edu.distributed.launch`) starts `W` local processes joined by gloo over
# 127.0.0.1, each holding `n / W` tokens, runs ring attention forward and backward, and checks rows against dense
# attention. On a multi-GPU machine the same code runs with
# `torchrun --nproc-per-node=8 -m saattn_edu.distributed.launch --backend nccl --n 1048576`.
# Timings vary from run to run (and 4 processes share the cores of a small machine).

# %% tags=["nbval-ignore-output"]
cmd = [sys.executable, "-m", "saattn_edu.distributed.launch", "--world-size", "4", "--n", "2048", "--d", "32",
       "--pattern", "window:256", "--backward"]
run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
print(run.stdout or run.stderr)

# %% [markdown]
# Each rank reports its time, the memory the call added, the blocks it computed and skipped, the messages it
# sent (forward and backward) and the largest error against dense attention (fp32, about 1e-7).

# %% [markdown]
# ## Play with it
#
# Slide through the steps of the ring: which block each rank holds so far. Change the world size and the pattern.

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets

def show(step, world_size, pattern):
    pat = {"dense": None, "causal": P.Causal(), "window 16": P.SlidingWindow(16)}[pattern]
    plan = plan_ring(pat, 32 * world_size, world_size)
    fig, ax = plt.subplots(figsize=(1.3 * world_size + 1.5, 0.5 * (plan.hops + 1) + 1.2))
    draw_schedule(plan, ax, f"{pattern}, W={world_size}: {plan.hops} hops", upto=step)
    plt.show()

widgets.interact(show, step=widgets.IntSlider(0, 0, 7, description="step"),
                 world_size=widgets.IntSlider(4, 2, 8, description="world size"),
                 pattern=widgets.Dropdown(options=["dense", "causal", "window 16"], value="dense"));

# %% [markdown]
# ## On GPUs: the Triton kernel in every step, and what 8 GPUs would take
#
# On CUDA tensors, `ring_attention(..., kernel="auto")` runs every step on the course's block-sparse FlashAttention
# kernel (lesson 08): the tiles of a step are planned from the pattern at the two ranks' global positions, so a
# step whose block has no allowed pair costs nothing. `benchmarks/ring_gpu.py` measured it on one H200: ranks
# sharing the GPU matched dense attention (bf16), the kernel's rate on a ring step's blocks was measured, and a cost
# model — exact pairs per (rank, step), compute at the measured rate, K/V transfers over NVLink, the ring's own
# schedule — predicts 4 and 8 GPUs. The committed results:

# %%
import json
from pathlib import Path

ring_gpu = json.loads(Path("../benchmarks/results/ring_gpu_h200.json").read_text())
for r in ring_gpu["functional"]:
    errs = ", ".join(f"{e:.1e}" for e in r["max_rel_err_o_dq_dk_dv"])
    print(f"{r['W']} ranks on one GPU, window {r['window']}: relative error of o, dq, dk, dv = {errs}")
print()
print(f"{'pattern':21} {'GPUs':>4} {'tokens':>10} {'fwd s':>8} {'fwd+bwd s':>10} {'x ideal':>8}")
for m in ring_gpu["model"]:
    print(f"{m['pattern']:21} {m['W']:4d} {m['n']:10,d} {m['fwd_s']:8.3f} {m['fwdbwd_s']:10.3f} {m['ratio_fwdbwd']:8.2f}")

# %% [markdown]
# "x ideal" compares a rank's time with one GPU's kernel time on all the pairs divided by the number of GPUs:
# 1.00 means the ring costs nothing beyond splitting the work. The zigzag split balances causal work, and each
# transfer hides under a block's compute. Checked against the one GPU (every (rank, step) block of a 4-rank ring at
# 65,536 tokens run in turn), the model is 4 % low for causal blocks and up to half low for small window blocks,
# whose launch overheads it leaves out. A million-token run on 8 real GPUs is the next measurement.
#
# ## Summary
#
# - Ring attention shards the sequence: each rank keeps `n / W` queries, keys and values, and passes K/V blocks
#   around the ring with point-to-point sends, overlapping each transfer with the compute of the current block.
# - Partial results merge exactly through their log-sum-exps; the backward runs the ring again with the dK/dV
#   accumulators travelling alongside the blocks.
# - Causal attention needs a balanced split (zigzag or striped), or the busiest rank sets the pace.
# - Sparse patterns skip whole hops: a sliding window needs only neighbouring ranks, whatever `W`.
# - On GPUs each step runs the block-sparse kernel; a model of 8 H200 at a million tokens puts a rank within 1 % of
#   an even share of one GPU's work (measured rates, modelled transfers).
#
# > Library: `saattn_edu.distributed.ring_attention` (torch, any pattern), `plan_ring` / `simulate_ring` (NumPy),
# > `spawn` (local processes); benchmark: `benchmarks/ring_attention.py`.
#
# **Exercise:** `exercises/13_ring_merge.ipynb` — write the log-sum-exp merge, the ring schedule and a NumPy ring
# attention that matches dense attention.
