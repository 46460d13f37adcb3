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
# # 00 · Why attention is quadratic
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/notebooks/00_why_attention_is_quadratic.ipynb)
#
# **Learning goals.** After this notebook you can
# - write dense attention from scratch in NumPy and check it against the course reference
# - explain why its memory and time grow as n², and measure the exponent on your machine
# - estimate where the memory runs out, and what 100,000 tokens would cost

# %% tags=["colab-setup"]
# @title Setup: installs the course package when this notebook runs in Colab (a no-op elsewhere)
import sys
if "google.colab" in sys.modules:
    # %pip install -q "saattn-edu @ git+https://github.com/saattn-edu/saattn-edu"
    from google.colab import output
    output.enable_custom_widget_manager()

# %% [markdown]
# ## Attention in one line
#
# For one head, queries $Q$, keys $K$ and values $V$ are $n \times d$ matrices (one row per token) and
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt d}\right) V .$$
#
# The product $QK^\top$ is an $n \times n$ matrix: one score for every (query, key) pair. That matrix is the whole
# story of this course. Let us write it in NumPy, then measure what it costs.

# %%
import math
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one BLAS thread: steadier timings (see the aside below); set before NumPy loads

import tracemalloc

import numpy as np

from saattn_edu import complexity as C, patterns as P, reference as R, viz


# %%
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

# %% [markdown]
# Each row of `probs` says how much one query takes from every key. For a ten-token sentence with random
# embeddings (a model would learn them) the matrix is small enough to read:

# %%
tokens = "the cat sat on the mat because it was warm".split()
x = np.random.default_rng(1).standard_normal((len(tokens), 16)).astype(np.float32)
_, probs = R.dense_attention(x, x, x, return_probs=True)
viz.plot_attention_map(probs, tokens=tokens, titles=["every query scores every key: 10 × 10"])


# %% [markdown]
# ## Memory: n² numbers per head
#
# The score matrix has $n^2$ entries. In fp32 that is $4n^2$ bytes, **per head and per layer**, before the
# softmax makes a second copy. The table computes it:

# %%
# @title Helper: human-readable bytes
def fmt_bytes(b):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if b < 1000:
            return f"{b:.3g} {unit}"
        b /= 1000
    return f"{b:.3g} PB"


# %%
print(f"{'n':>10} {'scores (n²)':>18} {'fp32 per head':>14}")
for n_ in [1_024, 4_096, 16_384, 65_536, 100_000, 1_000_000]:
    print(f"{n_:>10,} {n_ * n_:>18,} {fmt_bytes(4 * n_ * n_):>14}")

# %% [markdown]
# ## Time and memory, measured on this machine
#
# Counting is one thing; let us time `attention` for growing $n$ and record its peak memory with `tracemalloc`
# (NumPy reports its allocations to it). If both grow as $n^2$, a straight line on log-log axes has slope 2:
# `C.fit_power_law` fits $t \approx c\, n^{p}$ and returns the exponent $p$.
#
# > Timing on a shared machine is noisy. The first code cell limits NumPy's BLAS to one thread (a multi-threaded
# > matmul waits for its slowest core, which makes small sizes erratic when other programs run), and we keep the
# > fastest of three repeats, the run least disturbed by anything else.

# %% tags=["nbval-ignore-output"]
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

# %% [markdown]
# The memory exponent printed above is ≈ 2, as counted: the peak is the score matrix plus the `probs` copy. The
# time exponent is ≈ 2 as well, give or take a few tenths: fixed per-call overheads flatten the curve at small
# $n$, and at large $n$ the score matrix no longer fits in the CPU caches, which steepens it.
#
# The figure puts the measurement next to the counts of `saattn_edu.complexity` (FLOPs = 4 · pairs · d, bytes a
# straightforward implementation moves), with a sliding window of 256 tokens as a preview of the cure:

# %% tags=["nbval-ignore-output"]
viz.plot_complexity({"sliding window 256": P.SlidingWindow(256)}, [2**e for e in range(9, 18)], d=64,
                    measured={"dense NumPy, this machine": (ns, times)})

# %% [markdown]
# ## Where the memory runs out
#
# Our `attention` needs a fixed number of bytes per score (measured above, at the largest n). Divide this
# machine's memory by it and you get the longest sequence one head can handle before anything else is stored:

# %% tags=["nbval-ignore-output"]
ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
bytes_per_score = peaks[-1] / ns[-1] ** 2
n_max = int(math.sqrt(ram / bytes_per_score))
print(f"this machine: {fmt_bytes(ram)} of RAM; our attention peaks at {bytes_per_score:.1f} bytes per score")
print(f"=> one head of dense attention runs out of memory near n ≈ {n_max:,} tokens")

# %% [markdown]
# > A GPU does not escape the square. An 80 GB accelerator holding one fp32 score matrix and nothing else tops out
# > at $n = \sqrt{80\cdot10^9 / 4}$:

# %%
print(f"80 GB / 4 bytes per score → n ≈ {math.isqrt(80 * 10**9 // 4):,} tokens for a single head")

# %% [markdown]
# ## The 100,000-token example
#
# A long document, a code base, a book chapter: 100k tokens is an ordinary request today. Dense attention over it:

# %%
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

# %% [markdown]
# ## Play with it
#
# Pick a sequence length and a number format: the cell counts one head's score matrix, its FLOPs and the bytes a
# straightforward implementation moves, for dense attention and for a 256-token sliding window. Double $n$ and
# watch dense grow four-fold while the window only doubles.

# %% tags=["nbval-ignore-output"]
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

# %% [markdown]
# ## Summary
#
# - Dense attention builds an $n \times n$ score matrix: memory and work grow as $n^2$ (we measured the exponent
#   on this machine and fitted it above).
# - At 100k tokens one head's fp32 scores take 40 GB, far beyond one machine's memory for a whole model.
# - A pattern that lets each query see only some keys (here a 512-token window) cuts the work by the printed
#   factor. Which keys to keep, and what is lost, is the rest of the course.
#
# **Next:** [01 — the patterns gallery](01_patterns_gallery.ipynb): every pattern of the library, drawn.
