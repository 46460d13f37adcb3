"""Checks for exercises/10_learned_sparsity.ipynb: LSH bucketing, top-k block selection, captured attention mass."""
from __future__ import annotations

import numpy as np

from saattn_edu import quality as _quality
from saattn_edu.patterns import CSR
from saattn_edu.patterns import _learned, indexer, lsh, routing, topk_blocks

from ..compare import ArrayClose, ArrayEqual, CSREqual, IntEqual
from ..hints import Diagnosed
from ..freetext import text_question
from ..spec import Case, Question
from ._star import HUGE_N


def forbid_learned_api() -> list:
    """The library's own selections and measures: calling them inside an answer does not count."""
    targets = [(lsh, "lsh_hash"), (lsh, "chunked_pairs"), (topk_blocks, "block_scores"),
               (topk_blocks, "topk_layout"), (topk_blocks, "mean_pool_blocks"), (_learned, "csr_from_unsorted_pairs")]
    for cls in (lsh.LSHBuckets, topk_blocks.TopKBlocks, routing.KMeansRouting, indexer.IndexerTopK):
        targets += [(cls, "select"), (cls, "build")]
    targets += [(_quality, name) for name in ("captured_mass", "dense_prob_chunks", "dense_reference", "evaluate")]
    return targets


# ---- references (the library, called the way the notebook's functions are) ---------------------------------------
def _ref_buckets(x, rotations):
    return lsh.lsh_hash(x, rotations[None], 2 * rotations.shape[1])[0]  # one round


def _ref_chunk_mask(buckets, chunk):
    rows, cols = lsh.chunked_pairs(np.asarray(buckets), None, chunk, same_bucket=True)
    mask = np.zeros((len(buckets), len(buckets)), dtype=bool)
    mask[rows, cols] = True
    return mask


def _ref_layout(q, k, block, top, causal):
    return topk_blocks.TopKBlocks(block, top, include_local=True, causal=causal).select(q, k)


def _ref_mass(q, k, indptr, indices):
    return _quality.captured_mass(q, k, CSR(np.asarray(indptr), np.asarray(indices)), per_row=True)


# ---- input generators: every check draws new ones ----------------------------------------------------------------
def _bucket_case(half_buckets=None, clustered=False):
    def make(rng):
        n, d = int(rng.integers(5, 40)), int(rng.integers(2, 9))
        b2 = int(rng.integers(1, 9)) if half_buckets is None else half_buckets
        x = rng.standard_normal((n, d))
        if clustered:  # a few directions, so buckets repeat
            x = rng.standard_normal((3, d))[rng.integers(0, 3, n)] * rng.uniform(0.5, 3, (n, 1))
        return {"x": x, "rotations": rng.standard_normal((d, b2))}

    return make


def _chunk_case(kind):
    def make(rng):
        n = int(rng.integers(6, 48))
        n_buckets = {"one bucket": 1, "every token alone": n}.get(kind, int(rng.integers(2, 9)))
        buckets = np.arange(n) if kind == "every token alone" else rng.integers(0, n_buckets, n)
        chunk = {"chunk of 1": 1, "one chunk": n}.get(kind, int(rng.integers(2, 9)))
        return {"buckets": buckets.astype(np.int64), "chunk": chunk}

    return make


def _padded_layout(q, k, block, top, causal):
    """What averaging the padding zeros into the short last block selects (a common mistake)."""
    n, d = q.shape
    nb = -(-n // block)
    pad = np.zeros((nb * block - n, d))
    qp, kp = np.concatenate([q, pad]), np.concatenate([k, pad])
    return _ref_layout(qp, kp, block, top, causal)


def _layout_case(causal=None, ragged=False, big_top=False):
    def draw(rng):
        block = int(rng.integers(2, 9))
        nb = int(rng.integers(3 if ragged or causal else 2, 9))
        n = nb * block - (int(rng.integers(1, block)) if ragged else 0)
        d = int(rng.integers(2, 9))
        top = int(rng.integers(nb, nb + 4)) if big_top else int(rng.integers(2 if causal else 1, nb))
        c = bool(rng.integers(2)) if causal is None else causal
        return {"q": rng.standard_normal((n, d)), "k": rng.standard_normal((n, d)), "block": block, "top": top,
                "causal": c}

    def make(rng):  # redraw until the case tells the right answer from the mistake it is about
        for _ in range(200):
            kw = draw(rng)
            right = _ref_layout(**kw)
            if ragged and np.array_equal(right, _padded_layout(**kw)):
                continue
            if causal and np.array_equal(right, _ref_layout(**{**kw, "causal": False})):
                continue
            return kw
        return kw

    return make


def _mass_case(kind):
    def make(rng):
        n, d = int(rng.integers(4, 30)), int(rng.integers(2, 9))
        q, k = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        keep = rng.random((n, n)) < 0.4
        if kind == "empty rows":
            keep[rng.choice(n, max(1, n // 3), replace=False)] = False
        elif kind == "everything":
            keep[:] = True
        elif kind == "large logits":
            q *= 2000.0  # logits of thousands: exp overflows float64 (past ~709) unless the row max is subtracted
        c = CSR.from_mask(keep)
        return {"q": q, "k": k, "indptr": c.indptr, "indices": c.indices}

    return make


def _ref_q5():
    rows, _ = lsh.chunked_pairs(np.zeros(256, dtype=np.int64), None, 32, same_bucket=False)
    return len(rows)


# ---- ★ same-bucket neighbour lists ---------------------------------------------------------------------------
def ref_bucket_neighbors(buckets):
    """Every same-bucket pair as one row-major key, sorted: CSR in token order."""
    b = np.asarray(buckets, dtype=np.int64)
    n = len(b)
    order = np.lexsort((np.arange(n), b))  # by bucket, then position
    _, first, size = np.unique(b[order], return_index=True, return_counts=True)
    pairs = [(order[f:f + c][:, None] * n + order[f:f + c][None, :]).ravel() for f, c in zip(first, size)]
    key = np.sort(np.concatenate(pairs)) if pairs else np.zeros(0, dtype=np.int64)
    return np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * n).astype(np.int64), key % max(n, 1)


def _bucket_ids(kind):
    def make(rng):
        if kind == "huge":
            return {"buckets": rng.integers(0, HUGE_N // 8, size=HUGE_N) * 3 + 7}  # ids with gaps
        n = int(rng.integers(5, 60))
        if kind == "one bucket":
            return {"buckets": np.full(n, int(rng.integers(0, 100)))}
        if kind == "alone":
            return {"buckets": rng.permutation(n) * 2}
        return {"buckets": rng.integers(0, int(rng.integers(2, 9)), size=n) * int(rng.integers(1, 5))}

    return make


# ---- the questions ----------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "lsh_buckets", 1, reference=_ref_buckets, compare=Diagnosed(ArrayEqual("i")), forbid=forbid_learned_api,
        hint="proj = x @ rotations is (n, b/2); np.concatenate([proj, -proj], axis=1).argmax(axis=1).",
        cases=(
            Case("2 buckets (one rotation column)", _bucket_case(half_buckets=1),
                 hint="with one column the bucket is 0 when x·r > 0 and 1 otherwise"),
            Case("2 to 16 buckets", _bucket_case()),
            Case("clustered vectors of various lengths", _bucket_case(clustered=True),
                 hint="the bucket depends on the direction only: scaling x by a positive number changes nothing"),
        ),
    ),
    Question(
        "lsh_chunk_mask", 2, reference=_ref_chunk_mask, compare=Diagnosed(ArrayEqual("b")), forbid=forbid_learned_api,
        hint="order = np.lexsort((np.arange(n), buckets)); rank[order] = arange(n); chunk id = rank // chunk.",
        cases=(
            Case("random buckets", _chunk_case("random")),
            Case("one bucket: a band in token order", _chunk_case("one bucket"),
                 hint="with one bucket the sort keeps token order: own chunk and previous chunk of positions"),
            Case("every token in its own bucket", _chunk_case("every token alone"),
                 hint="same bucket is required too: only the diagonal survives"),
            Case("chunk of 1", _chunk_case("chunk of 1"), hint="own chunk + previous chunk = 2 sorted neighbours"),
            Case("a single chunk", _chunk_case("one chunk"), hint="everything in one chunk: same-bucket pairs"),
        ),
    ),
    Question(
        "topk_block_layout", 3, reference=_ref_layout, compare=Diagnosed(ArrayEqual("b")), forbid=forbid_learned_api,
        hint="Mean-pool q and k per block, score = qbar @ kbar.T; -inf above the diagonal if causal, +inf on it.",
        cases=(
            Case("non-causal, n a multiple of block", _layout_case(causal=False)),
            Case("causal", _layout_case(causal=True),
                 hint="causal rows choose among blocks 0..I only: row I keeps min(top, I + 1) blocks"),
            Case("last block shorter", _layout_case(ragged=True),
                 hint="the last block's mean is over its real tokens only (do not average padding zeros)"),
            Case("top >= number of blocks", _layout_case(big_top=True), hint="then every allowed block is kept"),
        ),
    ),
    Question(
        "captured_mass", 4, reference=_ref_mass, compare=Diagnosed(ArrayClose(rtol=1e-6, atol=1e-9)),
        forbid=forbid_learned_api,
        hint="p = softmax(q kᵀ / sqrt(d)) row by row (subtract the row max); sum p[i, indices of row i].",
        cases=(
            Case("random selection", _mass_case("random")),
            Case("rows with nothing selected", _mass_case("empty rows"), hint="an empty row captures 0"),
            Case("everything selected", _mass_case("everything"), hint="selecting every key captures 1"),
            Case("large logits", _mass_case("large logits"),
                 hint="subtract each row's max logit before np.exp, or the exps overflow to inf and give NaN"),
        ),
    ),
    Question(
        "q5", 5, kind="value", answer_name="q5_answer", points=2, reference=_ref_q5, compare=IntEqual(),
        hint="Chunk 0 has no previous chunk; every later chunk's 32 queries see 64 keys.",
    ),
    text_question("ex10", 6),
    Question(
        "star_bucket_neighbors", 7, answer_name="bucket_neighbors", reference=ref_bucket_neighbors,
        compare=CSREqual(), forbid=forbid_learned_api,
        hint="Row i lists every token of i's bucket, itself included, in token order; rows in token order too. "
             "Only the allowed pairs fit in memory at the largest size.",
        cases=(
            Case("random buckets", _bucket_ids("random")),
            Case("one bucket: every pair", _bucket_ids("one bucket")),
            Case("every token alone: the diagonal", _bucket_ids("alone"),
                 hint="a token always shares its own bucket: each row holds at least itself"),
            Case(f"{HUGE_N:,} tokens, ids with gaps (no n × n array fits)", _bucket_ids("huge"),
                 hint="sizes that grow like n·n are out of reach here; bucket ids need not be 0, 1, 2, ..."),
        ),
    ),
]
