"""Honest quality measures for a sparse selection: captured attention mass, output error, and what it cost.

A selection (a CSR, a Pattern, or a learned method that builds one from q and k) is judged against the dense
softmax it approximates:
- captured mass: for each query, the share of its dense attention probability that falls on the selected keys
  (1 = nothing lost); its mean over queries is the recall of the attention mass;
- top-m recall: the share of each query's m highest-probability keys that the selection contains;
- output error: ‖O_sparse − O_dense‖ / ‖O_dense‖, the attention output itself;
- cost: multiply-adds of the attention on the selected pairs (2·d per pair: q·k and p·v) plus the selection's
  own work (hashing, clustering, scoring), against the dense 2·n²·d (causal: n(n+1)·d).
These need the dense attention, so they are O(n²) measurements for lessons and tests, computed in row chunks.
q, k, v are (n, d): measure per head.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import reference as R
from .patterns.base import CSR, Pattern, check_bool, check_int
from .patterns.dense import Causal

_CHUNK_ELEMENTS = 2**22  # dense probabilities are computed for about this many (i, j) pairs at a time


def as_csr(selection, n: int) -> CSR:
    """The CSR of a CSR or a Pattern (a learned method must be built first: `method.build(q, k)`)."""
    if isinstance(selection, CSR):
        if selection.n != n:
            raise ValueError(f"selection has {selection.n} rows, q has n={n}")
        return selection
    if isinstance(selection, Pattern):
        return selection.neighbors(n)
    raise TypeError(f"selection must be a CSR or a Pattern, got {type(selection).__name__}")


def _check_qk(q, k):
    q, k = np.asarray(q), np.asarray(k)
    if q.ndim != 2 or k.ndim != 2 or q.shape != k.shape:
        raise ValueError(f"q and k must both have shape (n, d), got {q.shape} and {k.shape}")
    return q, k


class DenseReference(NamedTuple):
    """The dense softmax probabilities (n, n) and output (n, dv) that every measure compares against."""

    probs: np.ndarray
    out: np.ndarray


def dense_reference(q, k, v, causal: bool = False, scale=None) -> DenseReference:
    """Compute the dense attention once, to share between measures and a sweep's points (n² memory)."""
    q, k = _check_qk(q, k)
    out, probs = R.dense_attention(q, k, v, mask=Causal() if causal else None, scale=scale, return_probs=True)
    return DenseReference(probs, out)


def dense_prob_chunks(q, k, causal: bool = False, scale=None, reference: DenseReference | None = None):
    """Yield (row0, probs (r, n)): the dense (or causal) softmax, a chunk of rows at a time."""
    q, k = _check_qk(q, k)
    n = len(q)
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    if reference is not None:  # precomputed: just slice it
        yield from ((lo, reference.probs[lo : lo + rows]) for lo in range(0, n, rows))
        return
    dummy_v = np.zeros((n, 1), dtype=q.dtype)  # only the probabilities are wanted
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        mask = np.arange(n)[None, :] <= np.arange(lo, hi)[:, None] if causal else None  # (r, n)
        _, p = R.dense_attention(q[lo:hi], k, dummy_v, mask=mask, scale=scale, return_probs=True)
        yield lo, p


def captured_mass(q, k, selection, causal: bool = False, scale=None, per_row: bool = False, reference=None):
    """Mean over queries of the dense softmax mass on the selected keys; `per_row` gives the (n,) values."""
    q, k = _check_qk(q, k)
    csr = as_csr(selection, len(q))
    out = np.zeros(len(q))
    for lo, p in dense_prob_chunks(q, k, check_bool("causal", causal), scale, reference):
        hi = lo + len(p)
        a, b = csr.indptr[lo], csr.indptr[hi]
        rows = np.repeat(np.arange(len(p)), np.diff(csr.indptr[lo : hi + 1]))  # (pairs,) local row ids
        out[lo:hi] = np.bincount(rows, weights=p[rows, csr.indices[a:b]], minlength=len(p))
    return out if per_row else float(out.mean())


def topk_recall(q, k, selection, m: int, causal: bool = False, scale=None, reference=None) -> float:
    """Mean share of each query's m most probable keys (dense softmax) that the selection keeps."""
    q, k = _check_qk(q, k)
    m = check_int("m", m, minimum=1)
    csr = as_csr(selection, len(q))
    hits, total = 0, 0
    for lo, p in dense_prob_chunks(q, k, check_bool("causal", causal), scale, reference):
        mm = min(m, p.shape[1])
        top = np.argpartition(-p, mm - 1, axis=1)[:, :mm]  # (r, mm)
        valid = np.take_along_axis(p, top, axis=1) > 0  # causal rows have fewer than m candidates
        sel = csr_rows_mask(csr, lo, lo + len(p), p.shape[1])  # (r, n)
        hits += int((np.take_along_axis(sel, top, axis=1) & valid).sum())
        total += int(valid.sum())
    return hits / total if total else 1.0


def csr_rows_mask(csr: CSR, lo: int, hi: int, n_cols: int) -> np.ndarray:
    """(hi - lo, n_cols) boolean mask of the CSR rows lo..hi-1."""
    out = np.zeros((hi - lo, n_cols), dtype=bool)
    rows = np.repeat(np.arange(hi - lo), np.diff(csr.indptr[lo : hi + 1]))
    out[rows, csr.indices[csr.indptr[lo] : csr.indptr[hi]]] = True
    return out


def output_error(q, k, v, selection, causal: bool = False, scale=None, reference=None) -> float:
    """Relative error ‖O_sparse − O_dense‖_F / ‖O_dense‖_F of the attention output (0 = exact)."""
    q, k = _check_qk(q, k)
    baseline = Causal() if check_bool("causal", causal) else None
    dense = R.dense_attention(q, k, v, mask=baseline, scale=scale) if reference is None else reference.out
    sparse = R.sparse_attention(q, k, v, as_csr(selection, len(q)), scale=scale)
    return float(np.linalg.norm(sparse - dense) / max(np.linalg.norm(dense), 1e-30))


def dense_cost(n: int, d: int, causal: bool = False) -> int:
    """Multiply-adds of dense attention: 2·d per pair (q·k, then p·v), n² pairs (causal: n(n+1)/2)."""
    pairs = n * (n + 1) // 2 if causal else n * n
    return 2 * d * pairs


def cost(selection, n: int, d: int, method=None, causal: bool = False) -> dict:
    """Pairs computed and multiply-adds (attention + selection), also relative to dense attention."""
    pairs = as_csr(selection, n).nnz
    select = 0 if method is None else int(method.selection_cost(n, d))
    total = 2 * d * pairs + select
    return {"pairs": pairs, "density": pairs / (n * n), "attention_cost": 2 * d * pairs,
            "selection_cost": select, "total_cost": total, "relative_cost": total / dense_cost(n, d, causal)}


def evaluate(method, q, k, v, causal=None, scale=None, top_m: int = 16, reference=None) -> dict:
    """Build `method` (or take a CSR / Pattern) on (q, k) and measure cost, captured mass, recall, error."""
    causal = check_bool("causal", getattr(method, "causal", False) if causal is None else causal)
    selection = method.build(q, k) if hasattr(method, "build") else method
    n, d = np.shape(q)
    reference = dense_reference(q, k, v, causal, scale) if reference is None else reference
    out = cost(selection, n, d, method if hasattr(method, "selection_cost") else None, causal)
    out["captured_mass"] = captured_mass(q, k, selection, causal, scale, reference=reference)
    out["topk_recall"] = topk_recall(q, k, selection, top_m, causal, scale, reference=reference)
    out["output_error"] = output_error(q, k, v, selection, causal, scale, reference=reference)
    return out


def sweep(make_method, values, q, k, v, causal: bool = False, **kwargs) -> list[dict]:
    """`evaluate(make_method(x), ...)` for every x in values (one dense reference), rows tagged "value".

    The methods must agree with `causal` (the dense baseline: full softmax, or causal softmax).
    """
    reference = dense_reference(q, k, v, causal, kwargs.get("scale"))
    return [{"value": x, **evaluate(make_method(x), q, k, v, causal, reference=reference, **kwargs)}
            for x in values]


def clustered_qkv(n: int = 1024, d: int = 64, n_topics: int = 16, segment: int = 64, sharpness: float = 2.0,
                  seed: int = 0):
    """Synthetic q, k, v (n, d) with structure worth finding: tokens come in runs on random topics.

    Token i lies near its topic's unit direction (scaled so a same-topic logit is about sharpness²) with Gaussian
    noise, so its attention concentrates on the keys of the same topic, wherever they are: far-away runs matter as
    much as near ones. Random q and k (no structure) spread attention almost uniformly and make every selection look
    the same.
    """
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    topics = rng.standard_normal((check_int("n_topics", n_topics, minimum=1), d))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)  # (T, d) unit directions
    runs = rng.integers(0, n_topics, size=-(-n // check_int("segment", segment, minimum=1)))
    label = np.repeat(runs, segment)[:n]  # (n,) topic of every token
    centre = sharpness * d**0.25 * topics[label]  # (n, d): same-topic logit q·k/√d ≈ sharpness²
    q = centre + rng.standard_normal((n, d))
    k = centre + rng.standard_normal((n, d))
    v = rng.standard_normal((n, d))
    return q, k, v
