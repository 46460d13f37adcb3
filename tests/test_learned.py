"""Learned / data-dependent sparsity: each method against a brute-force loop, limits, seeds, torch, quality."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from saattn_edu import quality as Q
from saattn_edu import reference as R
from saattn_edu.patterns import CSR, Causal, Dense
from saattn_edu.patterns.learned import (
    IndexerTopK, KMeansRouting, LSHBuckets, TopKBlocks, index_projection, random_rotations,
)


def qkv(n=48, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d)) for _ in range(3))


def mask_of(selection, n):
    return selection.to_mask() if isinstance(selection, CSR) else selection.mask(n)


# ---- brute-force definitions (loops over pairs, written from the docstrings) -----------------------------------
def brute_lsh(m: LSHBuckets, q, k):
    n, d = q.shape
    rot = random_rotations(d, m.n_buckets, m.n_hashes, m.seed)
    out = np.zeros((n, n), bool)
    for h in range(m.n_hashes):
        def bucket(x):
            if m.n_buckets == 1:
                return 0
            p = [float(x @ rot[h][:, c]) for c in range(m.n_buckets // 2)]
            return int(np.argmax(p + [-v for v in p]))
        qb = [bucket(q[i]) for i in range(n)]
        kb = qb if m.shared_qk else [bucket(k[j]) for j in range(n)]
        items = [(qb[i], i, 0) for i in range(n)] if m.shared_qk else \
            [(qb[i], i, 0) for i in range(n)] + [(kb[j], j, 1) for j in range(n)]
        rank = {it: r for r, it in enumerate(sorted(items))}
        for i in range(n):
            for j in range(n):
                cq = rank[(qb[i], i, 0)] // m.chunk
                ck = rank[(kb[j], j, 0 if m.shared_qk else 1)] // m.chunk
                ok = cq - 1 <= ck <= cq and (not m.same_bucket or qb[i] == kb[j])
                out[i, j] |= ok and (not m.causal or j <= i)
    return out


def brute_topk_blocks(m: TopKBlocks, q, k):
    n = len(q)
    nb = math.ceil(n / m.block)
    qm = [q[b * m.block:(b + 1) * m.block].mean(0) for b in range(nb)]
    km = [k[b * m.block:(b + 1) * m.block].mean(0) for b in range(nb)]
    layout = np.zeros((nb, nb), bool)
    for bi in range(nb):
        cands = [bj for bj in range(nb) if not (m.causal and bj > bi)]
        ranked = sorted(cands, key=lambda bj: (not (m.include_local and bj == bi), -float(qm[bi] @ km[bj]), bj))
        layout[bi, ranked[: m.k]] = True
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return layout[i // m.block, j // m.block] & ((j <= i) | (not m.causal))


def brute_indexer(m: IndexerTopK, q, k):
    n, d = q.shape
    p = np.eye(d) if m.index_dim is None else index_projection(d, m.index_dim, m.seed)
    out = np.zeros((n, n), bool)
    for i in range(n):
        cands = [j for j in range(n) if not (m.causal and j > i)]
        ranked = sorted(cands, key=lambda j: -float((q[i] @ p) @ (k[j] @ p)))
        out[i, ranked[: m.k]] = True
    return out


def brute_routing(m: KMeansRouting, q, k):
    c = m.centroids(q, k)
    unit = lambda x: x / np.linalg.norm(x)  # noqa: E731
    qc = [int(np.argmax([unit(x) @ cc for cc in c])) for x in q]
    kc = [int(np.argmax([unit(x) @ cc for cc in c])) for x in k]
    n = len(q)
    return np.array([[qc[i] == kc[j] and (not m.causal or j <= i) for j in range(n)] for i in range(n)])


T = LSHBuckets.teaching  # the brute force below is the teaching rule; HF's rule: tests/test_conformance_reformer.py
LSH_CASES = [T(4, 1, 8), T(8, 3, 5, seed=3), T(4, 2, 6, causal=True), T(6, 2, 7, shared_qk=False),
             T(4, 1, 8, same_bucket=False), T(2, 2, 9, shared_qk=False, causal=True, same_bucket=False)]


@pytest.mark.parametrize("m", LSH_CASES, ids=repr)
def test_lsh_matches_brute_force(m):
    q, k, _ = qkv(37)
    np.testing.assert_array_equal(m.build(q, k).to_mask(), brute_lsh(m, q, k))


@pytest.mark.parametrize("m", [TopKBlocks(8, 2), TopKBlocks(5, 3, causal=True), TopKBlocks(7, 1),
                               TopKBlocks(6, 2, include_local=False), TopKBlocks(4, 3, False, causal=True)], ids=repr)
def test_topk_blocks_matches_brute_force(m):
    q, k, _ = qkv(45)
    np.testing.assert_array_equal(m.build(q, k).mask(45), brute_topk_blocks(m, q, k))


@given(n=st.integers(1, 40), block=st.integers(1, 12), kb=st.integers(1, 6), causal=st.booleans(),
       local=st.booleans(), seed=st.integers(0, 10**6))
def test_topk_blocks_property(n, block, kb, causal, local, seed):
    q, k, _ = qkv(n, 4, seed)
    m = TopKBlocks(block, kb, local, causal=causal)
    layout = m.select(q, k)
    np.testing.assert_array_equal(m.build(q, k).mask(n), brute_topk_blocks(m, q, k))
    nb = layout.shape[0]
    if local:  # the current block is always kept
        assert layout[np.arange(nb), np.arange(nb)].all()
    expected = np.minimum(kb, np.arange(1, nb + 1)) if causal else np.full(nb, min(kb, nb))
    np.testing.assert_array_equal(layout.sum(1), expected)


@pytest.mark.parametrize("m", [IndexerTopK(5, 4), IndexerTopK(7, None), IndexerTopK(6, 3, seed=2, causal=True),
                               IndexerTopK(100, 2)], ids=repr)
def test_indexer_matches_brute_force(m):
    q, k, _ = qkv(41)
    np.testing.assert_array_equal(m.build(q, k).to_mask(), brute_indexer(m, q, k))


@pytest.mark.parametrize("m", [KMeansRouting(3, 5), KMeansRouting(5, 0, seed=1), KMeansRouting(4, 3, causal=True)],
                         ids=repr)
def test_routing_matches_brute_force(m):
    q, k, _ = qkv(33)
    np.testing.assert_array_equal(m.build(q, k).to_mask(), brute_routing(m, q, k))


def test_kmeans_centroids_match_a_plain_lloyd_loop():
    q, k, _ = qkv(30, 5, seed=4)
    m = KMeansRouting(4, 6, seed=9)
    x = np.concatenate([q, k])
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = x[np.random.default_rng(9).choice(60, 4, replace=False)]
    for _ in range(6):
        a = np.argmax(x @ c.T, axis=1)
        new = [x[a == t].sum(0) if (a == t).any() else c[t] for t in range(4)]
        c = np.array([v / np.linalg.norm(v) for v in new])
    np.testing.assert_allclose(m.centroids(q, k), c, atol=1e-12)


# ---- limits: selecting everything gives dense (or causal) attention --------------------------------------------
def all_of(n, causal):
    return [T(1, 1, n, causal=causal), T(4, 2, n, causal=causal, same_bucket=False),
            KMeansRouting(1, causal=causal), TopKBlocks(4, n, causal=causal), IndexerTopK(n, 3, causal=causal)]


@pytest.mark.parametrize("causal", [False, True])
def test_selecting_all_equals_dense(causal):
    q, k, v = qkv(30)
    base = Causal() if causal else Dense()
    dense = R.dense_attention(q, k, v, mask=base)
    for m in all_of(30, causal):
        sel = m.build(q, k)
        np.testing.assert_array_equal(mask_of(sel, 30), base.mask(30), err_msg=repr(m))
        np.testing.assert_allclose(R.sparse_attention(q, k, v, sel), dense, atol=1e-12, err_msg=repr(m))
        assert Q.captured_mass(q, k, sel, causal) == pytest.approx(1.0)
        assert Q.output_error(q, k, v, sel, causal) < 1e-12


@pytest.mark.parametrize("m", LSH_CASES[:3] + [KMeansRouting(4, causal=True), TopKBlocks(4, 2, causal=True),
                                               IndexerTopK(5, 2, causal=True)], ids=repr)
def test_causal_selections_never_look_ahead(m):
    q, k, _ = qkv(40, seed=5)
    sel = mask_of(m.build(q, k), 40)
    if m.causal:
        assert not np.triu(sel, 1).any()


# ---- determinism, seeds, torch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda s: LSHBuckets(8, 2, 8, seed=s), lambda s: KMeansRouting(4, 3, seed=s),
                                  lambda s: IndexerTopK(6, 2, seed=s)])
def test_deterministic_under_seed(make):
    q, k, _ = qkv(64)
    a, b, c = make(1).build(q, k), make(1).build(q, k), make(2).build(q, k)
    np.testing.assert_array_equal(a.to_mask(), b.to_mask())
    assert not np.array_equal(a.to_mask(), c.to_mask())


TORCH_CASES = [LSHBuckets(8, 2, 8), LSHBuckets(4, 2, 8, shared_qk=False, causal=True), KMeansRouting(4, 5),
               TopKBlocks(8, 3), TopKBlocks(8, 2, causal=True), IndexerTopK(6, 4), IndexerTopK(6, None, causal=True)]


@pytest.mark.parametrize("m", TORCH_CASES, ids=repr)
def test_torch_selection_equals_numpy(m):
    torch = pytest.importorskip("torch")
    q, k, _ = qkv(70)
    sel_np, sel_t = m.select(q, k), m.select(torch.tensor(q), torch.tensor(k))
    as_tuple = lambda x: x if isinstance(x, tuple) else (x,)  # noqa: E731
    for a, b in zip(as_tuple(sel_np), as_tuple(sel_t)):
        assert isinstance(b, torch.Tensor)
        np.testing.assert_array_equal(a, b.numpy())
    np.testing.assert_array_equal(mask_of(m.build(q, k), 70), mask_of(m.build(torch.tensor(q), torch.tensor(k)), 70))


def test_more_hash_rounds_only_add_pairs():
    q, k, _ = qkv(64)
    masks = [LSHBuckets.teaching(8, r, 8).build(q, k).to_mask() for r in (1, 2, 4)]  # rounds chunked alone
    assert (masks[0] <= masks[1]).all() and (masks[1] <= masks[2]).all()


# ---- every attention path accepts the result ---------------------------------------------------------------------
def test_results_feed_reference_paths():
    q, k, v = qkv(64)
    for m in [LSHBuckets(4, 2, 8), KMeansRouting(4), IndexerTopK(9, 4)]:
        csr = m.build(q, k)
        np.testing.assert_allclose(R.sparse_attention(q, k, v, csr), R.dense_attention(q, k, v, mask=csr.to_mask()),
                                   atol=1e-12)
    for causal in (False, True):
        m = TopKBlocks(16, 2, causal=causal)
        ref = R.block_sparse_attention(q, k, v, m.select(q, k), 16, mask=Causal() if causal else None)
        np.testing.assert_allclose(R.sparse_attention(q, k, v, m.build(q, k)), ref, atol=1e-12)


# ---- bad parameters ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, name", [
    (lambda: LSHBuckets(3), "n_buckets"), (lambda: LSHBuckets(0), "n_buckets"), (lambda: LSHBuckets(4, 0), "n_hashes"),
    (lambda: LSHBuckets(4, 1, 0), "chunk"), (lambda: LSHBuckets(4, 1, 8, -1), "seed"),
    (lambda: LSHBuckets(4, 1.5), "n_hashes"), (lambda: LSHBuckets(4, causal=1), "causal"),
    (lambda: LSHBuckets(4, merge="set"), "merge"), (lambda: LSHBuckets(4, wrap=1), "wrap"),
    (lambda: KMeansRouting(0), "n_clusters"), (lambda: KMeansRouting(2, -1), "iters"),
    (lambda: TopKBlocks(0, 2), "block"), (lambda: TopKBlocks(4, 0), "k"),
    (lambda: TopKBlocks(4, 2, "yes"), "include_local"),
    (lambda: IndexerTopK(0), "k"), (lambda: IndexerTopK(4, 0), "index_dim"),
    (lambda: IndexerTopK(4, 2, seed=None), "seed"),
])
def test_bad_parameters_raise_named_errors(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


def test_bad_inputs_raise_named_errors():
    q, k, _ = qkv(10)
    with pytest.raises(ValueError, match="q must have shape"):
        IndexerTopK(3).build(q[None], k[None])
    with pytest.raises(ValueError, match="same shape"):
        TopKBlocks(4, 2).build(q, k[:5])
    with pytest.raises(ValueError, match="k must be given"):
        IndexerTopK(3).build(q)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeansRouting(25).build(q, k)
    with pytest.raises(TypeError, match="q must be"):
        IndexerTopK(3).build(q.tolist(), k.tolist())
    np.testing.assert_array_equal(LSHBuckets(4).build(q).to_mask(), LSHBuckets(4).build(q, q).to_mask())  # shared QK


# ---- quality measures ------------------------------------------------------------------------------------------------
def test_captured_mass_and_recall_match_brute_force():
    q, k, v = qkv(40, seed=7)
    sel = IndexerTopK(6, 3).build(q, k)
    _, p = R.dense_attention(q, k, v, return_probs=True)
    rows = Q.captured_mass(q, k, sel, per_row=True)
    np.testing.assert_allclose(rows, [p[i, sel.row(i)].sum() for i in range(40)], atol=1e-12)
    top = np.argsort(-p, axis=1)[:, :4]
    expect = np.mean([np.isin(top[i], sel.row(i)).mean() for i in range(40)])
    assert Q.topk_recall(q, k, sel, 4) == pytest.approx(expect)
    assert Q.topk_recall(q, k, IndexerTopK(4, None).build(q, k), 4) == 1.0  # the oracle finds the true top-4
    empty = CSR(np.zeros(41, np.int64), np.zeros(0, np.int32))
    assert Q.captured_mass(q, k, empty) == 0.0 and Q.output_error(q, k, v, empty) == pytest.approx(1.0)


def test_cost_counts_pairs_and_selection():
    q, k, v = qkv(32)
    m = IndexerTopK(4, 2)
    c = Q.cost(m.build(q, k), 32, 8, m)
    assert c["pairs"] == 32 * 4 and c["attention_cost"] == 2 * 8 * 128
    assert c["selection_cost"] == 2 * 32 * 8 * 2 + 32 * 32 * 2 + 32 * 32
    assert c["relative_cost"] == pytest.approx(c["total_cost"] / (2 * 8 * 32 * 32))
    rows = Q.sweep(lambda kk: IndexerTopK(kk, None), [2, 8, 32], q, k, v)
    masses = [r["captured_mass"] for r in rows]
    assert masses == sorted(masses) and masses[-1] == pytest.approx(1.0)


def test_learned_beats_random_on_clustered_data():
    q, k, v = Q.clustered_qkv(512, 32, n_topics=8, seed=1)
    oracle = Q.evaluate(IndexerTopK(32, None), q, k, v)["captured_mass"]
    kmeans = Q.evaluate(KMeansRouting(8), q, k, v)["captured_mass"]
    assert oracle > 0.5 and kmeans > 0.5


# ---- Hugging Face's LSH rule, by brute force (the conformance test compares with HF itself) ----------------------
def brute_lsh_hf(m: LSHBuckets, q):
    """Counts (n, n) written from the docstring, with loops: one sorted sequence of all rounds, cyclic chunks."""
    n, d = q.shape
    rot = random_rotations(d, m.n_buckets, m.n_hashes, m.seed)
    counts = np.zeros((n, n), int)
    if n <= m.chunk:
        counts[:] = 1
    else:
        items = []
        for h in range(m.n_hashes):
            for i in range(n):
                p = [float(q[i] @ rot[h][:, c]) for c in range(m.n_buckets // 2)]
                items.append((h, int(np.argmax(p + [-x for x in p])), i))
        items.sort()
        chunks = [items[s:s + m.chunk] for s in range(0, len(items), m.chunk)]
        for c, own in enumerate(chunks):
            window = chunks[c - 1] + own  # c = 0: the last chunk (Python's -1), as HF's wrap-around
            for (hq, bq, i) in own:
                for (hk, bk, j) in window:
                    if not m.same_bucket or (hq, bq) == (hk, bk):
                        counts[i, j] += 1
    if m.causal:
        counts = np.tril(counts)
    for i in range(n):  # the own key only when nothing else is left
        if m.self_mask and counts[i].sum() > counts[i, i]:
            counts[i, i] = 0
    return counts if m.merge == "multiset" else (counts > 0).astype(int)


@pytest.mark.parametrize("m", [LSHBuckets(4, 1, 8), LSHBuckets(8, 3, 5, seed=3), LSHBuckets(4, 2, 6, causal=True),
                               LSHBuckets(6, 2, 7, same_bucket=True), LSHBuckets(4, 2, 8, merge="union"),
                               LSHBuckets(4, 3, 40), LSHBuckets(2, 2, 9, causal=True, self_mask=False)], ids=repr)
def test_lsh_hf_rule_matches_brute_force(m):
    q, _, _ = qkv(37, seed=4)
    csr, counts = m.key_counts(q)
    got = np.zeros((37, 37), int)
    got[csr.row_ids(), csr.indices] = counts
    np.testing.assert_array_equal(got, brute_lsh_hf(m, q))
