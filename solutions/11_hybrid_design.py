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
# # Exercises 11: hybrid design under a FLOP budget
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/saattn-edu/saattn-edu/blob/main/solutions/11_hybrid_design.ipynb)
#
# You will count reach and FLOPs of layer stacks, then design a hybrid that passes an accuracy bar within an attention budget: the grader trains it.
#
# **Learning goals**
# - compute the receptive field of stacked windows;
# - count a stack's attention FLOPs in closed form;
# - choose per-layer patterns that meet a FLOP budget and an accuracy bar.
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

# %%
import numpy as np

from saattn_edu import patterns as P
from saattn_edu.grading import check
from saattn_edu.models import set_threads

set_threads()


# %% [markdown]
# ## Exercise 1: receptive field of a stack
#
# A non-causal `SlidingWindow(w)` lets token `i` see `|i − j| ≤ w // 2`; a causal one `0 ≤ i − j < w`. Write
# `receptive_field(windows, causal)`: how many tokens away the last layer's output can have heard from, after the
# layers `windows` (a list of window sizes, bottom first).
#
# <details><summary>Hint</summary>
#
# Each layer adds its own reach: `w // 2` (non-causal) or `w − 1` (causal).
# </details>

# %%
def receptive_field(windows, causal=False):
    """Tokens reachable after stacking sliding windows of the given sizes."""
    ### BEGIN SOLUTION: add up the reach of each layer
    return sum((w - 1) if causal else w // 2 for w in windows)
    ### END SOLUTION


# %%
check("ex11.receptive_field", receptive_field)


# %% [markdown]
# ## Exercise 2: attention FLOPs of a layer stack
#
# The course counts attention as `4 · pairs · d_model` FLOPs per layer (QKᵀ and PV, one multiply-add per pair per
# dimension, all heads together). Write `stack_attention_flops(layers, n, d_model)` where `layers` lists, bottom
# first, `None` for a dense layer (`n²` pairs) or an int `w` for a non-causal `SlidingWindow(w)`. Count the pairs
# yourself (the pattern classes' `num_pairs` is the library's answer and does not count).
#
# <details><summary>Hint</summary>
#
# With reach `r = min(w // 2, n − 1)`, offset 0 occurs in `n` pairs and each offset `o = 1 … r` in `2 · (n − o)`
# pairs: `n + 2·(r·n − r·(r + 1)/2)`.
# </details>

# %%
def stack_attention_flops(layers, n, d_model):
    """4 · pairs · d_model summed over the layers (None = dense, int w = non-causal sliding window)."""
    ### BEGIN SOLUTION: count each layer's pairs in closed form
    total = 0
    for w in layers:
        if w is None:
            pairs = n * n
        else:
            r = min(w // 2, n - 1)
            pairs = n + 2 * (r * n - r * (r + 1) // 2)
        total += 4 * pairs * d_model
    return total
    ### END SOLUTION


# %%
check("ex11.stack_attention_flops", stack_attention_flops)

# %% [markdown]
# ## Exercise 3: design a hybrid within a budget
#
# The grader's problem is in `DESIGN`: a 3-layer encoder (`d_model 32`, 2 heads) trained for 100 steps with seed 0
# on `NeedleRetrieval(seq_len=64, distance=(32, 58), n_filler=1)`: the needle lies 32 to 58 tokens before the
# query, beyond the reach of three small windows, and a window of 5 keeps only 8 % of a dense layer's pairs. Your
# `my_layers` (3 fixed patterns from `saattn_edu.patterns`, bottom first) must cost at most **40 %** of the
# all-dense model's attention FLOPs and reach **90 %** held-out accuracy. The check trains your design (about
# 3–10 s on 2 cores; a stack that cannot reach the needle is refused at once, untrained);
# `train_design(layers).final_accuracy` trains it exactly as the grader does, should you want to compare designs
# first.
#
# <details><summary>Hint</summary>
#
# Three small windows cannot see 32+ tokens away (exercise 1). One dense layer costs a third of the dense model;
# what is left must pay for the other two layers (exercise 2 and question 5). A global token is another way to
# reach far.
# </details>

# %%
from saattn_edu.grading.exercises.ex11 import DESIGN, design_budget, design_problem

print(DESIGN)
print(f"budget: {design_budget():,} attention FLOPs per sequence")

# %%
### BEGIN SOLUTION: one dense layer at the bottom, two narrow windows above it
my_layers = [P.Dense(), P.SlidingWindow(5), P.SlidingWindow(5)]
### END SOLUTION
print(design_problem(my_layers) or "within the budget")
check("ex11.hybrid_design", my_layers)

# %% [markdown]
# ## Exercise 4: the smallest window, by reasoning
#
# Three stacked non-causal sliding windows of the same odd size `w` must let the last token hear from a needle 60
# tokens away. What is the smallest such `w`? Set `q4_answer`.

# %%
### BEGIN SOLUTION: set q4_answer to the smallest odd window
q4_answer = 41
### END SOLUTION
check("ex11.q4", q4_answer)

# %% [markdown]
# ## Exercise 5: the price of a hybrid
#
# At `n = 64`, `d_model = 32`: what fraction of the all-dense 3-layer model's attention FLOPs does
# `[dense, window 9, window 9]` cost? Set `q5_answer` (a number between 0 and 1). Is that design within
# exercise 3's budget?

# %%
### BEGIN SOLUTION: set q5_answer to the fraction
q5_answer = stack_attention_flops([None, 9, 9], 64, 32) / stack_attention_flops([None] * 3, 64, 32)
### END SOLUTION
print(f"{q5_answer:.3f}")
check("ex11.q5", q5_answer)

# %% [markdown]
# ## Exercise 6: in words (self-checked)
#
# In the committed sweep, which patterns fail on the far needle, and why does more training not help them? Why can
# Longformer's single global token succeed where a sliding window of the same width fails?
#
# Write your answer as a string in `q6_text` (a few sentences) and run the cell: the check counts it as
# answered, then shows a model answer to compare yours with. The grade lists it as answered or not; nobody
# scores the words.

# %%
### BEGIN SOLUTION: write your answer as a string in q6_text
q6_text = """
Sliding windows and attention sinks fail: after three layers the last token can only have heard from tokens
within the stack's receptive field (3 · 32 = 96 for the sweep's windows of 64 at n = 512; the needle is 256 or
more tokens away), and the sinks see only themselves and a window, so they relay nothing. The needle's information
has no path to the query, so the best the model can do is guess (1/8). Longformer's global token is seen by every
token and sees every token: the needle writes into it in one layer and the query reads it in the next, a path of
two hops whatever the distance, for the price of 2n extra pairs per global token."""
### END SOLUTION
check("ex11.text_q6", q6_text)

# %% [markdown]
# ## ★ Exercise 7 (challenge): the distances a dilated stack really reaches
#
# Exercise 1 added up reaches. With dilation that overstates what a stack sees: a causal
# `DilatedWindow(w, dilation)` lets token `i` hear from `i − t · dilation` for `t = 0 .. w − 1` only, and stacking
# layers adds one allowed step from each layer, so some distances below the total can never be covered. Write
# `stack_reach(layers, n)`: for causal layers `layers` (a list of `(window, dilation)` pairs, bottom first) on `n`
# tokens, the boolean array `reach` of length `n` with `reach[d]` True when the last token can hear from the token
# `d` places before it (`reach[0]` is the token itself). Graded in the ★ column.
#
# <details><summary>Hint</summary>
#
# Keep the set of distances reached so far as a boolean array, one entry per distance below n. One layer turns it
# into the union of its copies shifted by each of the layer's steps, cut at n; a layer costs one shifted copy per
# step of its window, never a loop over tokens or an n × n matrix.
# </details>

# %%
def stack_reach(layers, n):
    """(n,) bool: reach[d] when the last token hears from d tokens back through causal dilated windows."""
    ### BEGIN SOLUTION: a boolean array of distances; each layer ORs in its shifted copies
    reach = np.zeros(n, dtype=bool)
    reach[0] = True  # the token itself (the residual stream)
    for window, dilation in layers:
        new = reach.copy()
        for t in range(1, window):
            step = t * dilation
            if step >= n:
                break
            new[step:] |= reach[:n - step]
        reach = new
    return reach
    ### END SOLUTION


# %%
check("ex11.star_stack_reach", stack_reach)

# %% [markdown]
# Dilation growing with depth covers a long distance with few layers. Whether it also covers every distance below
# that depends on the windows: windows of 4 with dilations 1, 4, 16 write every distance up to 63 in base 4;
# windows of 3 leave holes.

# %%
for layers in ([(4, 1), (4, 4), (4, 16)], [(3, 1), (3, 4), (3, 16)]):
    reach = stack_reach(layers, 80)
    far = int(np.flatnonzero(reach).max())
    print(f"{layers}: farthest {far}, distances reached up to it: {int(reach[:far + 1].sum())} of {far + 1}")

# %% [markdown]
# ## Your grade
#
# Every check above prints its points. To grade the whole notebook as the course does, from a terminal:
# `saattn grade exercises/11_hybrid_design.ipynb` (a fresh kernel runs every cell; your notebook is not modified).
