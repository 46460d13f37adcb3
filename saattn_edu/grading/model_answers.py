"""Model answers of the free-text questions, kept with the grader: a check shows one once the learner has answered."""

MODEL_ANSWERS = {
    "ex01.text_q7": (
        "It reaches `k` times as far for the same number of keys per query, so stacked layers grow the "
        "receptive field `k` times faster. It gives up the tokens in between: the immediate neighbours `1 "
        ".. k-1` away are invisible to that head. Keeping some heads undilated (or dilating only higher "
        "layers) keeps local detail while the dilated heads carry long-range information."
    ),
    "ex06.text_q6": (
        "In NumPy each tile costs a Python loop step and a separate small matmul call (microseconds), "
        "while a GPU kernel pays almost nothing per tile: its tiles run in parallel inside one launch. "
        "Overhead is therefore much larger in NumPy, which pushes the optimum towards larger blocks, "
        "where fewer tiles amortise it even at the price of more masked pairs. On a GPU the overhead is "
        "small and the tile size is bounded by on-chip memory and by waste, so 64–128 wins."
    ),
    "ex07.text_q6": (
        "Ring attention computes attention over one block of keys at a time on different devices and must "
        "merge the partial outputs: a partial output alone does not say how much softmax mass its keys "
        "carried. The log-sum-exp `lse = m + log(l)` does; with it, two partial results over disjoint "
        "keys merge exactly: `lse = logaddexp(lse_a, lse_b)`, `out = exp(lse_a - lse) · out_a + exp(lse_b "
        "- lse) · out_b`."
    ),
    "ex10.text_q6": (
        "A GPU computes attention in tiles (e.g. 64 queries × 64 keys per matrix multiply on tensor "
        "cores). A block selection maps one-to-one onto those tiles: a kernel skips whole tiles and runs "
        "dense, contiguous loads and matmuls on the kept ones, so the counted savings become wall-clock "
        "savings, and the selection itself is cheap (`(n/B)²` block scores instead of `n²`). Token-level "
        "choices need gathers of scattered keys, which waste memory bandwidth and tensor-core efficiency. "
        "What blocks give up is precision: a block is kept or dropped as a whole, so a query pays for the "
        "63 unimportant keys next to an important one, and loses an important key whose block's *mean* "
        "scores poorly (averaging hides a single strong key among weak ones)."
    ),
    "ex11.text_q6": (
        "Sliding windows and attention sinks fail: after three layers the last token can only have heard "
        "from tokens within the stack's receptive field (3 · 32 = 96 for the sweep's windows of 64 at "
        "n = 512; the needle is 256 or more tokens away), and the sinks see only themselves and a window, so "
        "they relay nothing. The needle's information has no path to the query, so the best the model can "
        "do is guess (1/8). Longformer's global token is seen by every token and sees every token: the "
        "needle writes into it in one layer and the query reads it in the next, a path of two hops whatever "
        "the distance, for the price of 2n extra pairs per global token."
    ),
    "ex12.text_q7": (
        "Softmax must put its weight somewhere; trained models learn to park attention they do not need "
        "on the first tokens (they are seen by every query), so those keys act as a sink. A plain window "
        "evicts them after `W` tokens, the attention mass goes elsewhere and the model's activations "
        "shift: perplexity explodes. Keeping 4 sinks restores that outlet for 4 extra slots. Positions: "
        "with original indices, the distance from a new query to the sinks grows without bound, past "
        "anything seen in training (RoPE at unseen distances); re-numbering inside the cache keeps every "
        "distance below `S + W`. The price is that no single full-sequence mask reproduces it."
    ),
    "ex13.text_q5": (
        "Every step of the ring is a synchronisation point: a rank cannot receive the next block before "
        "its neighbour has sent it, so the step takes as long as the slowest rank's compute. Contiguous "
        "causal work grows with the rank (rank `r` attends to `r + 1` blocks, half of the diagonal one), "
        "so the last rank does about `2W - 1` times the work of the first while the others wait. Zigzag "
        "gives every rank one early chunk (little causal work) and the mirrored late chunk (much work): "
        "each rank's total is the same, so no rank waits."
    ),
}
