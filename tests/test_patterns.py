"""Every pattern's views (mask, neighbors, block_layout, num_pairs, mask_mod) against DESIGN.md's formulas.

The reference is a plain Python double loop over (i, j) that evaluates the table's formula literally, written
independently of `Pattern.allowed`, so a wrong rule cannot hide behind a shared helper.
"""
import math
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from saattn_edu import patterns as P

N = st.integers(0, 40)
BOOL = st.booleans()


# ----------------------------------------------------------------------------------------------------------------
# Brute force
# ----------------------------------------------------------------------------------------------------------------
def brute(rule, n):
    """(n, n) mask from a per-pair Python predicate."""
    out = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            out[i, j] = bool(rule(i, j))
    return out


def block_any(mask, blk):
    """True where any pair of the (blk × blk) tile is allowed; the last tile may be short."""
    nb = math.ceil(len(mask) / blk)
    out = np.zeros((nb, nb), dtype=bool)
    for a in range(nb):
        for b in range(nb):
            out[a, b] = mask[a * blk : (a + 1) * blk, b * blk : (b + 1) * blk].any()
    return out


# ----------------------------------------------------------------------------------------------------------------
# One case per family: (pattern, rule(i, j), n) with the rule written from DESIGN.md's table
# ----------------------------------------------------------------------------------------------------------------
def case_dense(draw, n):
    return P.Dense(), (lambda i, j: True), n


def case_causal(draw, n):
    return P.Causal(), (lambda i, j: j <= i), n


def case_sliding(draw, n):
    w, causal = draw(st.integers(1, 12)), draw(BOOL)
    rule = (lambda i, j: 0 <= i - j < w) if causal else (lambda i, j: abs(i - j) <= w // 2)
    return P.SlidingWindow(w, causal=causal), rule, n


def case_dilated(draw, n):
    w, d, causal = draw(st.integers(1, 8)), draw(st.integers(1, 5)), draw(BOOL)

    def rule(i, j):
        steps = (i - j) / d
        inside = (0 <= steps < w) if causal else abs(steps) <= w // 2
        return inside and (i - j) % d == 0

    return P.DilatedWindow(w, d, causal=causal), rule, n


def case_global(draw, n):
    g = draw(st.lists(st.integers(0, n - 1), max_size=5)) if n else []
    return P.GlobalTokens(g), (lambda i, j: i in g or j in g), n


def case_strided(draw, n):
    s, causal = draw(st.integers(1, 10)), draw(BOOL)
    if causal:
        rule = lambda i, j: 0 <= i - j <= s or ((i - j) % s == 0 and j <= i)  # noqa: E731
    else:
        rule = lambda i, j: abs(i - j) <= s or (i - j) % s == 0  # noqa: E731
    return P.Strided(s, causal=causal), rule, n


def case_fixed(draw, n):
    s = draw(st.integers(1, 10))
    c, causal = draw(st.integers(1, s)), draw(BOOL)

    def rule(i, j):
        return (j // s == i // s or j % s >= s - c) and (j <= i or not causal)

    return P.Fixed(s, c, causal=causal), rule, n


def case_random(draw, n):
    r, seed, causal = draw(st.integers(0, 6)), draw(st.integers(0, 5)), draw(BOOL)
    p = P.RandomPattern(r, seed=seed, causal=causal)
    table = p.keys_for(n)
    for i in range(n):  # each row: num_random distinct keys, fewer only if fewer exist
        keys = [int(k) for k in table[i] if k >= 0]
        avail = i + 1 if causal else n
        assert len(keys) == len(set(keys)) == min(r, avail) and keys == sorted(keys)
        assert all(0 <= k < avail for k in keys) and all(k == -1 for k in table[i][len(keys):])
    chosen = [set(int(k) for k in row) for row in table]
    return p, (lambda i, j: j in chosen[i]), n


def case_block(draw, n):
    blk = draw(st.integers(1, 8))
    nb = math.ceil(n / blk)
    layout = np.array(draw(st.lists(BOOL, min_size=nb * nb, max_size=nb * nb)), dtype=bool).reshape(nb, nb)
    return P.BlockSparse(layout, blk), (lambda i, j: layout[i // blk][j // blk]), n


def case_bigbird(draw, n):
    blk, w, g = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(0, 3))
    r, seed, causal = draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(BOOL)
    variant = draw(st.sampled_from(["itc", "hf_eval", "paper", "deepspeed"]))
    p = P.BigBird(blk, w, g, r, seed=seed, causal=causal, variant=variant)
    nb, table = math.ceil(n / blk), p.random_blocks_for(n)
    assert table.shape == (nb, r)
    top, bottom = ((g + 1) // 2, g // 2) if variant in ("itc", "hf_eval") else (g, 0)  # the ITC: first and last

    def is_global(b):
        return b < top or b >= nb - bottom

    rand = []
    for bi in range(nb):
        picks = [int(b) for b in table[bi] if b >= 0]
        assert all(0 <= b < nb for b in picks) and (not picks or not is_global(bi) or variant == "deepspeed")
        if variant == "paper":  # distinct, outside the window and the globals (earlier when causal)
            allowed = [b for b in range(nb) if abs(bi - b) > w // 2 and b >= g and (b < bi or not causal)]
            want = 0 if bi < g else min(r, len(allowed))
            assert len(picks) == len(set(picks)) == want and set(picks) <= set(allowed)
        rand.append(set(picks))

    def rule(i, j):
        bi, bj = i // blk, j // blk
        ok = abs(bi - bj) <= w // 2 or is_global(bi) or is_global(bj) or bj in rand[bi]
        return ok and (j <= i or not causal)

    return p, rule, n


def case_longformer(draw, n):
    w, d, causal = draw(st.integers(1, 8)), draw(st.integers(1, 4)), draw(BOOL)
    g = draw(st.lists(st.integers(0, n - 1), max_size=5)) if n else []

    def rule(i, j):
        steps = (i - j) / d
        inside = (0 <= steps < w) if causal else abs(steps) <= w // 2
        ok = (inside and (i - j) % d == 0) or i in g or j in g
        return ok and (j <= i or not causal)

    return P.Longformer(w, g, dilation=d, causal=causal), rule, n


def case_sinks(draw, n):
    s, w = draw(st.integers(0, 5)), draw(st.integers(1, 8))
    return P.AttentionSinks(s, w), (lambda i, j: j <= i and (j < s or i - j < w)), n


def case_local2d(draw, n):
    h, w, r = draw(st.integers(1, 6)), draw(st.integers(1, 7)), draw(st.integers(0, 3))
    rule = lambda i, j: max(abs(i // w - j // w), abs(i % w - j % w)) <= r  # noqa: E731
    return P.Local2D(h, w, r), rule, h * w


def case_axial2d(draw, n):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    return P.Axial2D(h, w), (lambda i, j: i // w == j // w or i % w == j % w), h * w


FAMILIES = {f.__name__[5:]: f for f in [
    case_dense, case_causal, case_sliding, case_dilated, case_global, case_strided, case_fixed, case_random,
    case_block, case_bigbird, case_longformer, case_sinks, case_local2d, case_axial2d,
]}
ANY_N = [name for name in FAMILIES if name not in ("local2d", "axial2d")]  # those fix n = height · width


# ----------------------------------------------------------------------------------------------------------------
# Every view against the brute-force mask
# ----------------------------------------------------------------------------------------------------------------
def check_views(p, n, expected, blk):
    mask = p.mask(n)
    assert mask.dtype == np.bool_ and mask.shape == (n, n)
    np.testing.assert_array_equal(mask, expected)
    csr = p.neighbors(n)
    assert csr.indptr.shape == (n + 1,) and csr.indptr[0] == 0 and csr.nnz == len(csr.indices)
    for i in range(n):
        assert np.all(np.diff(csr.row(i)) > 0), f"row {i} not strictly ascending: {csr.row(i)}"
    np.testing.assert_array_equal(csr.to_mask(), expected)
    pairs = p.num_pairs(n)
    assert type(pairs) is int and pairs == int(expected.sum())
    assert p.density(n) == pytest.approx(expected.mean() if n else 0.0)
    np.testing.assert_array_equal(p.block_layout(n, blk), block_any(expected, blk))
    own = getattr(p, "block", None)  # BlockSparse / BigBird have their own exact block table
    if own is not None:
        np.testing.assert_array_equal(p.block_layout(n, own), block_any(expected, own))
    if n:
        check_mask_mod(p, n, expected)


def check_mask_mod(p, n, expected):
    from torch.nn.attention.flex_attention import create_mask

    got = create_mask(p.mask_mod_for(n), None, None, n, n, device="cpu")[0, 0].numpy()
    np.testing.assert_array_equal(got, expected)
    if not p.needs_n:
        np.testing.assert_array_equal(create_mask(p.mask_mod, None, None, n, n, device="cpu")[0, 0].numpy(),
                                      expected)


@pytest.mark.parametrize("family", list(FAMILIES))
@given(data=st.data())
def test_views_match_design_formula(family, data):
    p, rule, n = FAMILIES[family](data.draw, data.draw(N))
    check_views(p, n, brute(rule, n), data.draw(st.integers(1, 9)))


@given(data=st.data())
def test_union_and_intersection_match_brute_force(data):
    n = data.draw(N)
    (a, ra, _), (b, rb, _), (c, rc, _) = (
        FAMILIES[data.draw(st.sampled_from(ANY_N))](data.draw, n) for _ in range(3))
    blk = data.draw(st.integers(1, 9))
    check_views(a | b, n, brute(lambda i, j: ra(i, j) or rb(i, j), n), blk)
    check_views(a & b, n, brute(lambda i, j: ra(i, j) and rb(i, j), n), blk)
    check_views((a | b) & c, n, brute(lambda i, j: (ra(i, j) or rb(i, j)) and rc(i, j), n), blk)


# ----------------------------------------------------------------------------------------------------------------
# Long sequences: overridden neighbour lists agree with the rule and with num_pairs
# ----------------------------------------------------------------------------------------------------------------
LONG = [
    P.SlidingWindow(64, causal=True), P.DilatedWindow(16, 3), P.GlobalTokens([0, 5, 4000]), P.Strided(77),
    P.Strided(50, causal=False), P.Fixed(64, 8), P.Fixed(50, 3, causal=False), P.RandomPattern(5, seed=1),
    P.RandomPattern(7, causal=True), P.BigBird(64, 3, 1, 2), P.BigBird(50, 3, 2, 3, causal=True),
    P.Longformer(128, range(16), dilation=2), P.Longformer(128, [3, 999, 4000], causal=True),
    P.AttentionSinks(4, 100), P.Local2D(61, 83, 2), P.Axial2D(61, 83),
]


@pytest.mark.parametrize("p", LONG, ids=repr)
def test_long_neighbors_agree_with_rule(p):
    n = 61 * 83  # 5063: no block size or stride above divides it
    csr = p.neighbors(n)
    assert csr.nnz == p.num_pairs(n) and csr.indices.dtype == np.int32
    assert np.all((np.diff(csr.indices) > 0) | (np.diff(csr.row_ids()) > 0))  # ascending within each row
    p._prepare(n)
    for i in np.random.default_rng(0).choice(n, 12, replace=False).tolist() + [0, n - 1]:
        j = np.arange(n)
        np.testing.assert_array_equal(csr.row(i), j[np.asarray(p.allowed(i, j, n), dtype=bool)])


def test_sliding_window_million_tokens_memory_and_time():
    """The CSR of 256 M pairs is ~1 GiB of int32: building it must not hold a second copy (or an n×n array)."""
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        csr = P.SlidingWindow(256, causal=True).neighbors(1_000_000)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\nSlidingWindow(256, causal=True).neighbors(1e6): {seconds:.2f} s, peak {peak / 2**30:.2f} GiB")
    assert peak < 1.5 * 2**30 and seconds < 30
    assert csr.nnz == P.SlidingWindow(256, causal=True).num_pairs(1_000_000) == 256 * 10**6 - 255 * 256 // 2
    np.testing.assert_array_equal(csr.row(999_999), np.arange(999_744, 1_000_000))
    np.testing.assert_array_equal(csr.row(3), np.arange(4))


# ----------------------------------------------------------------------------------------------------------------
# Seeds, reprs, FlexAttention block masks
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda seed: P.RandomPattern(4, seed=seed), lambda seed: P.RandomPattern(4, seed=seed, causal=True),
    lambda seed: P.BigBird(4, 3, 1, 2, seed=seed), lambda seed: P.BigBird(4, 3, 1, 2, seed=seed, causal=True),
])
def test_random_patterns_reproducible_from_seed(make):
    n = 300
    a, b, other = make(7).neighbors(n), make(7).neighbors(n), make(8).neighbors(n)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not (np.array_equal(a.indptr, other.indptr) and np.array_equal(a.indices, other.indices))
    assert make(7) == make(7) and make(7) != make(8) and hash(make(7)) == hash(make(7))


def test_random_keys_are_uniform():
    """Every key is about equally likely (a biased draw would still be distinct and in range)."""
    counts = np.bincount(P.RandomPattern(50, seed=3).keys_for(500).ravel(), minlength=500)  # mean 50, sd ≈ 7
    assert counts.min() > 20 and counts.max() < 90
    bigbird = P.BigBird(1, 1, 0, 20, seed=3, variant="paper").random_blocks_for(400)  # 20 of 399 blocks per row
    assert (bigbird != np.arange(400)[:, None]).all()
    assert np.bincount(bigbird.ravel(), minlength=400).min() > 3  # mean 20, sd ≈ 4.4


SIMPLE = [
    P.Dense(), P.Causal(), P.SlidingWindow(8, causal=True), P.DilatedWindow(4, 2), P.GlobalTokens([3, 1, 3]),
    P.GlobalTokens(range(10)), P.Strided(16), P.Fixed(16, 2, causal=False), P.RandomPattern(3, seed=2),
    P.BigBird(32, 3, 1, 2, seed=5, causal=True), P.Longformer(512, range(64), causal=True),
    P.AttentionSinks(4, 128), P.Local2D(8, 8, 1), P.Axial2D(4, 6),
    P.BlockSparse(np.eye(3, dtype=bool), 16), P.SlidingWindow(4) | P.GlobalTokens([0]),
    (P.Strided(8) | P.Causal()) & P.SlidingWindow(32, causal=True),
]


@pytest.mark.parametrize("p", SIMPLE, ids=repr)
def test_repr_is_readable_and_evaluates_back(p):
    text = repr(p)
    assert "object at 0x" not in text and len(text) < 200
    assert eval(text, {**vars(P), "np": np}) == p
    assert hash(eval(text, {**vars(P), "np": np})) == hash(p)


def test_repr_details():
    assert repr(P.GlobalTokens([5, 2, 2])) == "GlobalTokens(indices=(2, 5))"
    assert repr(P.Longformer(512, range(64), causal=True)) == \
        "Longformer(window=512, global_indices=range(0, 64), dilation=1, causal=True)"
    assert "32x32 bool" in repr(P.BlockSparse(np.ones((32, 32), bool), 4))
    assert P.BlockSparse(np.ones((32, 32), bool), 4) != P.BlockSparse(~np.eye(32, dtype=bool), 4)


def test_longformer_matches_recipes_anchor():
    """RECIPES.md's causal anchor: q - k < 512 or k < 64 or q < 64, all with q >= k (here scaled down 8×)."""
    n = 200
    q, k = np.arange(n)[:, None], np.arange(n)[None, :]
    anchor = (q >= k) & ((q - k < 64) | (k < 8) | (q < 8))
    np.testing.assert_array_equal(P.Longformer(64, range(8), causal=True).mask(n), anchor)


@pytest.mark.parametrize("p", [
    P.Dense(), P.SlidingWindow(100, causal=True), P.DilatedWindow(8, 4), P.GlobalTokens([0, 200]),
    P.Strided(64), P.Fixed(64, 4), P.RandomPattern(3), P.BigBird(64, 3, 1, 1, causal=True),
    P.Longformer(64, [0, 1]), P.AttentionSinks(4, 64), P.Local2D(16, 16, 2), P.Axial2D(16, 16),
    P.BlockSparse(np.array([[True, False], [True, True]]), 128),
], ids=repr)
def test_flex_block_mask_matches_block_layout(p):
    from torch.nn.attention.flex_attention import create_block_mask

    n = 256
    bm = create_block_mask(p.mask_mod_for(n), None, None, n, n, device="cpu")  # BLOCK_SIZE 128
    np.testing.assert_array_equal(bm.to_dense()[0, 0].numpy().astype(bool), p.block_layout(n, 128))


# ----------------------------------------------------------------------------------------------------------------
# Bad input: the named error, naming the parameter and the value
# ----------------------------------------------------------------------------------------------------------------
BAD = [
    (lambda: P.SlidingWindow(0), ValueError, ["window", "0"]),
    (lambda: P.SlidingWindow(-3, causal=True), ValueError, ["window", "-3"]),
    (lambda: P.SlidingWindow(2.5), TypeError, ["window", "2.5"]),
    (lambda: P.SlidingWindow(4, causal="yes"), TypeError, ["causal", "yes"]),
    (lambda: P.DilatedWindow(0, 2), ValueError, ["window", "0"]),
    (lambda: P.DilatedWindow(4, 0), ValueError, ["dilation", "0"]),
    (lambda: P.GlobalTokens([0, -2]), ValueError, ["indices", "-2"]),
    (lambda: P.GlobalTokens(3), TypeError, ["indices", "3"]),
    (lambda: P.GlobalTokens([1.5]), TypeError, ["indices", "1.5"]),
    (lambda: P.GlobalTokens([0, 7]).mask(5), ValueError, ["indices", "7", "n=5"]),
    (lambda: P.GlobalTokens([7]).neighbors(7), ValueError, ["indices", "7", "n=7"]),
    (lambda: P.GlobalTokens([7]).num_pairs(5), ValueError, ["indices", "7", "n=5"]),
    (lambda: P.GlobalTokens([7]).mask_mod_for(5), ValueError, ["indices", "7", "n=5"]),
    (lambda: P.Strided(0), ValueError, ["stride", "0"]),
    (lambda: P.Fixed(0, 1), ValueError, ["stride", "0"]),
    (lambda: P.Fixed(4, 0), ValueError, ["c", "0"]),
    (lambda: P.Fixed(4, 5), ValueError, ["c", "5"]),
    (lambda: P.RandomPattern(-1), ValueError, ["num_random", "-1"]),
    (lambda: P.RandomPattern(2, seed=-4), ValueError, ["seed", "-4"]),
    (lambda: P.RandomPattern(2).mask_mod, ValueError, ["mask_mod_for"]),
    (lambda: P.BlockSparse(np.ones((2, 3), bool), 4), ValueError, ["layout", "(2, 3)"]),
    (lambda: P.BlockSparse(np.ones((2, 2), int), 4), ValueError, ["layout", "int"]),
    (lambda: P.BlockSparse(np.ones(4, bool), 4), ValueError, ["layout", "(4,)"]),
    (lambda: P.BlockSparse(None, 4), TypeError, ["layout", "None"]),
    (lambda: P.BlockSparse(np.ones((2, 2), bool), 0), ValueError, ["block", "0"]),
    (lambda: P.BlockSparse(np.ones((2, 2), bool), 4).mask(9), ValueError, ["n=9"]),
    (lambda: P.BlockSparse(np.ones((2, 2), bool), 4).num_pairs(4), ValueError, ["n=4"]),
    (lambda: P.BigBird(block=0), ValueError, ["block", "0"]),
    (lambda: P.BigBird(window_blocks=0), ValueError, ["window_blocks", "0"]),
    (lambda: P.BigBird(global_blocks=-1), ValueError, ["global_blocks", "-1"]),
    (lambda: P.BigBird(random_blocks=-2), ValueError, ["random_blocks", "-2"]),
    (lambda: P.BigBird().mask_mod, ValueError, ["mask_mod_for"]),
    (lambda: P.BigBird(variant="etc"), ValueError, ["variant", "etc"]),
    (lambda: P.BigBird(heads=2, head=2), ValueError, ["head", "2"]),
    (lambda: P.Longformer(0), ValueError, ["window", "0"]),
    (lambda: P.Longformer(4, dilation=0), ValueError, ["dilation", "0"]),
    (lambda: P.Longformer(4, [-1]), ValueError, ["global_indices", "-1"]),
    (lambda: P.Longformer(8, [9]).num_pairs(5), ValueError, ["global_indices", "9", "n=5"]),
    (lambda: P.Longformer(8, [9]).mask(5), ValueError, ["global_indices", "9", "n=5"]),
    (lambda: P.AttentionSinks(-1, 4), ValueError, ["num_sinks", "-1"]),
    (lambda: P.AttentionSinks(4, 0), ValueError, ["window", "0"]),
    (lambda: P.Local2D(0, 4, 1), ValueError, ["height", "0"]),
    (lambda: P.Local2D(4, 4, -1), ValueError, ["radius", "-1"]),
    (lambda: P.Axial2D(4, 0), ValueError, ["width", "0"]),
    (lambda: P.Local2D(4, 4, 1).mask(15), ValueError, ["n=15", "16"]),
    (lambda: P.Local2D(4, 4, 1).num_pairs(17), ValueError, ["n=17", "16"]),
    (lambda: P.Axial2D(4, 4).neighbors(17), ValueError, ["n=17", "16"]),
    (lambda: P.SlidingWindow(4).block_layout(10, 0), ValueError, ["block", "0"]),
    (lambda: P.SlidingWindow(4) | 3, TypeError, ["3"]),
]


@pytest.mark.parametrize("call, error, words", BAD, ids=[str(k) for k in range(len(BAD))])
def test_bad_input_raises_named_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from {info.value}"


@pytest.mark.parametrize("p", LONG + [P.Dense(), P.Causal()], ids=repr)
@pytest.mark.parametrize("view", ["mask", "neighbors", "num_pairs", "density", "block_layout", "mask_mod_for"])
def test_negative_n_raises(p, view):
    args = (-3, 4) if view == "block_layout" else (-3,)
    with pytest.raises(ValueError, match="n must be >= 0, got -3"):
        getattr(p, view)(*args)
