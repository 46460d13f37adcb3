"""Rules of implementations that do not install here, re-derived from their published definitions (our own code),
and the library tested against them: OpenAI's Sparse Transformer, DeepSpeed's Fixed and BigBird configs,
attention-gym's windows, StreamingLLM's cache."""
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saattn_edu import patterns as P
from saattn_edu.patterns import conventions as C


def tokens(layout, block, causal):
    """Block layout -> token mask (n = nb·block), with the token-level causal mask the kernels add."""
    m = np.kron(layout.astype(int), np.ones((block, block), int)).astype(bool)
    return np.tril(m) if causal else m


# ---- OpenAI Sparse Transformer (attention.py get_attn_mask: 'local' = band_part(ctx - 1, 0), 'strided' grid) --------
def openai_mask(n, mode, ctx):
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if mode == "local":
        return (i - j >= 0) & (i - j <= min(n - 1, ctx - 1))
    return (i >= j) & ((i - j) % ctx == 0)  # 'strided'


@pytest.mark.parametrize("n,ctx", [(50, 7), (64, 8), (33, 1)])
def test_strided_is_openai_local_union_strided(n, ctx):
    want = openai_mask(n, "local", ctx) | openai_mask(n, "strided", ctx)  # the heads' union (fused)
    np.testing.assert_array_equal(P.Strided(ctx).mask(n), want)
    assert not np.array_equal(P.SlidingWindow(ctx + 1, causal=True).mask(n), openai_mask(n, "local", ctx))


def paper_fixed(n, stride, c, head, patterns, causal):
    """Child et al. 2019: own block, plus the c 'summary' positions; heads take distinct c-subblocks."""
    lo = stride - (1 + head % patterns) * c
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    out = (i // stride == j // stride) | ((j % stride >= lo) & (j % stride < lo + c))
    return out & (j <= i) if causal else out


# ---- DeepSpeed FixedSparsityConfig (set_local_layout, set_global_layout; vertical globals) ---------------------------
def deepspeed_fixed_layout(nb, local, glob, head, patterns, causal):
    lay = np.zeros((nb, nb), bool)
    for w0 in range(0, nb, local):
        for row in range(w0, min(w0 + local, nb)):
            lay[row, w0 : (row + 1 if causal else min(w0 + local, nb))] = True
    first = local - (1 + head % patterns) * glob
    end = nb - nb % local
    for i in range(first, end, local):
        lay[(i if causal else 0):, i : i + glob] = True
    if end < nb:  # a short last window: its globals pushed back so that they fit
        start = min(end + first, nb - glob)
        lay[(start if causal else 0):, start : start + glob] = True
    return lay


@pytest.mark.parametrize("nb,local,glob,patterns,causal", [
    (10, 4, 1, 1, False), (11, 4, 1, 2, True), (9, 4, 2, 2, False), (13, 4, 1, 4, True), (5, 4, 2, 1, False),
])
def test_fixed_matches_deepspeed_and_the_paper_per_head(nb, local, glob, patterns, causal):
    block = 3
    n = nb * block
    for head in range(patterns + 1):
        p = C.deepspeed_fixed(block, local, glob, head, patterns, causal)
        want = tokens(deepspeed_fixed_layout(nb, local, glob, head, patterns, causal), block, causal)
        np.testing.assert_array_equal(p.mask(n), want)
        plain = P.Fixed(local * block, glob * block, causal, head=head, summary_patterns=patterns)
        np.testing.assert_array_equal(plain.mask(n), paper_fixed(n, local * block, glob * block, head, patterns,
                                                                   causal))
        for q in (p, plain):  # every view of the new options agrees with the mask
            csr = q.neighbors(n)
            np.testing.assert_array_equal(csr.to_mask(n), q.mask(n))
            assert q.num_pairs(n) == csr.nnz == q.mask(n).sum()


def test_fixed_defaults_unchanged_and_options_validated():
    assert repr(P.Fixed(8, 2)) == "Fixed(stride=8, c=2, causal=True)"
    np.testing.assert_array_equal(P.Fixed(8, 2, head=3).mask(40), P.Fixed(8, 2).mask(40))  # one pattern: no change
    for kw, name in [({"summary_patterns": 5}, "summary_patterns"), ({"short_last": "x"}, "short_last"),
                     ({"head": -1}, "head")]:
        with pytest.raises(ValueError, match=name):
            P.Fixed(8, 2, **kw)


# ---- DeepSpeed BigBirdSparsityConfig (set_random_layout, set_sliding_window_layout, set_global_layout_itc) ----------
def deepspeed_bigbird_layout(nb, r, w, g, seed, causal):
    rng = random.Random(seed)
    lay = np.zeros((nb, nb), bool)
    for row in range(nb):
        lay[row, rng.sample(range(row + 1) if causal else range(nb), r)] = True
    for row in range(nb):
        lay[row, max(0, row - w // 2) : min(nb, row + w // 2 + 1)] = True
    lay[:g, :] = True
    lay[:, :g] = True
    return np.tril(lay) if causal else lay


@pytest.mark.parametrize("nb,r,w,g,seed,causal", [(12, 2, 3, 1, 0, False), (20, 3, 5, 2, 4, False),
                                                   (15, 1, 3, 1, 7, True)])
def test_bigbird_deepspeed_variant(nb, r, w, g, seed, causal):
    block = 4
    p = C.deepspeed_bigbird(block, r, w, g, seed=seed, causal=causal)
    want = tokens(deepspeed_bigbird_layout(nb, r, w, g, seed, causal), block, causal)
    np.testing.assert_array_equal(p.mask(nb * block), want)


# ---- attention-gym, Hugging Face, StreamingLLM windows ---------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), w=st.integers(0, 20), d=st.integers(1, 5))
def test_window_conventions(n, w, d):
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    gym = (i >= j) & (i - j <= w)  # attention-gym generate_sliding_window(w)
    np.testing.assert_array_equal(C.gym_sliding_window(w).mask(n), gym)
    assert gym[n - 1].sum() == min(n, w + 1)
    gym_dilated = (i - j >= 0) & (i - j < max(w, 1)) & ((i - j) % d == 0)  # generate_dilated_sliding_window
    np.testing.assert_array_equal(C.gym_dilated_sliding_window(max(w, 1), d).mask(n), gym_dilated)
    np.testing.assert_array_equal(C.hf_sliding_window(w + 1).mask(n), (i >= j) & (j > i - (w + 1)))
    np.testing.assert_array_equal(C.hf_sliding_window(w, causal=False).mask(n), abs(i - j) <= w)


def streaming_llm_keys(n, start, recent):
    """StartRecentKVCache: the new token attends to the cache and itself; the cache is then trimmed."""
    cache, keys = [], []
    for t in range(n):
        keys.append(sorted(cache + [t]))
        cache.append(t)
        if len(cache) > start + recent:
            cache = cache[:start] + cache[len(cache) - recent:]
    return keys


@pytest.mark.parametrize("n,start,recent", [(40, 4, 8), (30, 0, 5), (25, 2, 1), (10, 3, 20)])
def test_streaming_llm_recent_size_is_r_plus_one(n, start, recent):
    p = C.streaming_llm(start, recent)
    keys = streaming_llm_keys(n, start, recent)
    for t in range(n):
        np.testing.assert_array_equal(p.neighbors(n).row(t), keys[t])


def test_converters_validate():
    for fn, args, name in [(C.gym_sliding_window, (-1,), "window_size"), (C.hf_longformer, (5,), "attention_window"),
                           (C.streaming_llm, (1, -2), "recent_size"), (C.hf_sliding_window, (0,), "sliding_window")]:
        with pytest.raises(ValueError, match=name):
            fn(*args)
    assert math.isclose(C.hf_longformer(8).density(64), P.SlidingWindow(9).density(64))
