"""Checks for exercises/07_flash.ipynb: online softmax, one tile update, tiled forward, block-sparse skipping."""
from __future__ import annotations

import tracemalloc
from dataclasses import dataclass

import numpy as np

from saattn_edu import reference as R
from saattn_edu.reference import _softmax
from saattn_edu.reference import block_sparse as _block_sparse
from saattn_edu.reference import dense as _dense
from saattn_edu.reference import flash as _flash
from saattn_edu.reference import sparse as _sparse

from ..compare import ArrayClose, Verdict
from ..freetext import text_question
from ..guard import call_with_timeout, failure
from ..hints import Diagnosed, show_measurement
from ..spec import Case, Question

#: Functions of this module a notebook may call inside an answer (the tripwire refuses every other one).
LEARNER_HELPERS = ("expand_layout",)
MEMORY_N, MEMORY_D, MEMORY_BLOCK = 4096, 8, 32  # the memory check: one head, float32
# bytes: the output (even in float64) and 16 tiles of float64 scores. One query block's full row of scores
# (32 × 4096 float32 = 0.5 MB, and its exp as much again) does not fit; a tile of 32 × 32 does, many times over.
MEMORY_LIMIT = MEMORY_N * MEMORY_D * 8 + 16 * MEMORY_BLOCK * MEMORY_BLOCK * 8


def forbid_attention_api() -> list:
    """Every attention routine and softmax helper of the reference: the learner writes the tiled loop."""
    targets = [(R, name) for name in ("dense_attention", "sparse_attention", "block_sparse_attention",
                                      "flash_attention", "merge_partials")]
    targets += [(_dense, "dense_attention"), (_sparse, "sparse_attention"), (_block_sparse, "block_sparse_attention"),
                (_flash, "flash_attention"), (_flash, "_online_step")]
    targets += [(_softmax, name) for name in ("exp_shifted", "attend_tile", "merge_partials", "log_sum_exp")]
    return targets


# ---- references: dense attention (float64) is the ground truth -------------------------------------------------
def ref_softmax(x):
    """Row softmax with -inf entries masked out; a row with no finite entry gives zeros."""
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)
    e = np.exp(x - m)
    s = e.sum(axis=-1, keepdims=True)
    return e / np.where(s > 0, s, 1.0)


def ref_online_softmax(x, block):
    return ref_softmax(x)


def _state(s, v):
    """(acc, m, l) of keys seen so far, from their logits s (r, c) and values v (c, dv)."""
    m = s.max(axis=-1) if s.shape[-1] else np.full(s.shape[0], -np.inf)
    m_safe = np.where(np.isneginf(m), 0.0, m)
    p = np.exp(s - m_safe[:, None])  # (r, c)
    return p @ v, m, p.sum(axis=-1)


def ref_tile_update(acc, m, l, s, v):
    """The state after one more tile, computed from scratch would give the same; here by the recurrence."""
    m_new = np.maximum(m, s.max(axis=-1))  # (r,)
    m_safe = np.where(np.isneginf(m_new), 0.0, m_new)
    alpha = np.exp(m - m_safe)  # 0 where nothing was seen yet
    p = np.exp(s - m_safe[:, None])  # (r, c)
    return alpha[:, None] * acc + p @ v, m_new, alpha * l + p.sum(axis=-1)


def ref_flash_forward(q, k, v, block_q, block_k):
    out = R.dense_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64))
    return out.astype(np.result_type(q, k, v))  # float32 inputs give float32


def expand_layout(layout, block, n_q, n_k):
    """Token mask (n_q, n_k) of a block layout."""
    return np.repeat(np.repeat(layout, block, axis=0), block, axis=1)[:n_q, :n_k]


def ref_block_sparse_flash(q, k, v, layout, block):
    v = np.nan_to_num(v.astype(np.float64), nan=0.0)  # NaN only where no query looks: any finite value will do
    mask = expand_layout(layout, block, q.shape[0], k.shape[0])
    return R.dense_attention(q.astype(np.float64), k.astype(np.float64), v, mask=mask)


@dataclass
class StateClose:
    """A triple (acc, m, l): m equal (-inf exactly where expected), acc and l close."""

    rtol: float = 1e-7
    atol: float = 1e-9

    def __call__(self, expected, got) -> Verdict:
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            return Verdict(False, [f"expected a triple (acc, m, l), got {type(got).__name__}"])
        try:
            acc, m, l = (np.asarray(g, dtype=float) for g in got)
        except (TypeError, ValueError) as exc:
            return Verdict(False, [f"(acc, m, l) must be NumPy float arrays: {exc}"])
        if m.shape != expected[1].shape:
            return Verdict(False, [f"m: expected shape {expected[1].shape}, got shape {m.shape} (one entry per row)"])
        if np.isnan(m).any():
            return Verdict(False, ["m: NaN entries (a row with nothing seen keeps m = -inf)"])
        empty = np.isneginf(expected[1])
        if not np.array_equal(np.isneginf(m), empty):
            return Verdict(False, ["m: -inf must stay exactly on rows that have not seen an allowed key yet"])
        for name, e, g in (("m", expected[1][~empty], m[~empty]), ("acc", expected[0], acc), ("l", expected[2], l)):
            verdict = ArrayClose(self.rtol, self.atol)(e, g)
            if not verdict.ok:
                return Verdict(False, [f"{name}: {verdict.lines[0]}"] + verdict.lines[1:])
        return Verdict(True)


# ---- input generators ------------------------------------------------------------------------------------------
def _softmax_case(kind):
    def make(rng):
        r, c = int(rng.integers(2, 8)), int(rng.integers(5, 50))
        x = rng.standard_normal((r, c)) * 3
        block = int(rng.integers(1, 9))
        if kind == "large":
            x = x * 1000 + 1e4  # exp(1e4) overflows: only the running max keeps it finite
        elif kind in ("masked", "empty row"):
            x[rng.random((r, c)) < 0.4] = -np.inf
            if kind == "empty row":
                x[int(rng.integers(r))] = -np.inf
        elif kind == "wide block":
            block = c + int(rng.integers(0, 5))
        elif kind == "rising":  # every block holds a new maximum: the old sum must be rescaled each time
            x = np.sort(x, axis=-1) * 10
        return {"x": x, "block": block}

    return make


def _tile_case(kind):
    def make(rng):
        r, c0, c, dv = (int(rng.integers(lo, hi)) for lo, hi in ((2, 8), (1, 10), (1, 10), (1, 6)))
        s0, s = rng.standard_normal((r, c0)) * 2, rng.standard_normal((r, c)) * 2
        if kind == "first":
            s0 = s0[:, :0]  # nothing seen yet: m = -inf, l = 0, acc = 0
        elif kind == "larger max":
            s += 8.0  # the new tile's max dominates: the old state is rescaled by exp(m_old - m_new)
        elif kind == "masked":
            s[rng.random((r, c)) < 0.5] = -np.inf
            s[0] = -np.inf  # a row that sees nothing in this tile keeps its state
        elif kind == "large":
            s0, s = s0 * 100 + 5e3, s * 100 + 5e3
        acc, m, l = _state(s0, rng.standard_normal((s0.shape[1], dv)))
        if kind == "still empty":
            acc, m, l = _state(s0[:, :0], np.zeros((0, dv)))
            s[:] = -np.inf
            s[1:, 0] = 0.5  # row 0 has still seen nothing after this tile
        return {"acc": acc, "m": m, "l": l, "s": s, "v": rng.standard_normal((c, dv))}

    return make


def _flash_case(kind):
    def make(rng):
        n, d = int(rng.integers(10, 80)), int(rng.integers(2, 17))
        n_k = int(rng.integers(5, 80)) if kind == "cross" else n
        bq, bk = int(rng.integers(2, 17)), int(rng.integers(2, 17))
        if kind == "aligned":
            bq = bk = 8
            n = n_k = 8 * int(rng.integers(2, 9))
        elif kind == "tiny blocks":
            bq, bk = 1, 1
        elif kind == "one block":
            bq, bk = n + int(rng.integers(0, 4)), n_k + int(rng.integers(0, 6))
        q, k, v = rng.standard_normal((n, d)), rng.standard_normal((n_k, d)), rng.standard_normal((n_k, d))
        if kind == "large":
            q *= 30.0  # logits in the hundreds: no exp without the max subtracted
        elif kind == "float32":
            q, k, v = (x.astype(np.float32) for x in (q, k, v))
        return {"q": q, "k": k, "v": v, "block_q": bq, "block_k": bk}

    return make


def _sparse_case(kind):
    def make(rng):
        block, d = int(rng.integers(2, 9)), int(rng.integers(2, 13))
        n = block * int(rng.integers(3, 9)) + (int(rng.integers(1, block)) if kind == "ragged" else 0)
        nb = -(-n // block)
        if kind == "causal":
            layout = np.tril(np.ones((nb, nb), dtype=bool))
        else:
            layout = rng.random((nb, nb)) < 0.4
        if kind == "empty rows":
            layout[rng.choice(nb, size=max(1, nb // 3), replace=False)] = False
        q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
        if kind == "skipped tiles are never read":
            layout[:, int(rng.integers(nb))] = False  # a key block no query block uses ...
            unused = ~layout.any(axis=0)  # ... holds NaN: computing it and masking afterwards gives NaN
            v[expand_layout(unused[None, :], block, 1, n)[0]] = np.nan
        return {"q": q, "k": k, "v": v, "layout": layout, "block": block}

    return make


# ---- ★ causal FlashAttention, masked per tile -------------------------------------------------------------------
def ref_causal_flash(q, k, v, block_q, block_k):
    n = q.shape[0]
    mask = np.tril(np.ones((n, n), dtype=bool))
    out = R.dense_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), mask=mask)
    return out.astype(np.result_type(q, k, v))


def _causal_case(kind):
    def make(rng):
        n, d = int(rng.integers(12, 90)), int(rng.integers(2, 17))
        bq, bk = int(rng.integers(2, 17)), int(rng.integers(2, 17))
        if kind == "aligned":
            bq = bk = 8
            n = 8 * int(rng.integers(2, 9))
        elif kind == "unequal":  # one tile size a multiple of the other: the diagonal crosses tiles unevenly
            bq = int(rng.integers(2, 7))
            bk = bq * int(rng.integers(2, 4))
            if rng.integers(2):
                bq, bk = bk, bq
        elif kind == "one block":
            bq, bk = n + int(rng.integers(0, 4)), n + int(rng.integers(0, 6))
        q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
        if kind == "large":
            q *= 30.0
        elif kind == "float32":
            q, k, v = (x.astype(np.float32) for x in (q, k, v))
        return {"q": q, "k": k, "v": v, "block_q": bq, "block_k": bk}

    return make


# ---- the memory check ------------------------------------------------------------------------------------------
def _peak_bytes(fn, args) -> int:
    """Peak bytes Python allocated during fn(**args); a remote function is measured in the learner's kernel."""
    if hasattr(fn, "remote_peak_bytes"):
        return fn.remote_peak_bytes(args)
    tracemalloc.start()
    try:
        fn(**args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass
class FlashMemory:
    """The learner's flash_forward is right on a small case and peaks well below one n×n score matrix."""

    limit: int = MEMORY_LIMIT

    def __call__(self, expected, got) -> Verdict:
        if not callable(got):
            return Verdict(False, [f"expected your function flash_forward, got a {type(got).__name__}"])
        rng = np.random.default_rng(0)
        small = _flash_case("plain")(rng)
        want = ref_flash_forward(**small)
        q, k, v = (rng.standard_normal((MEMORY_N, MEMORY_D)).astype(np.float32) for _ in range(3))
        big = {"q": q, "k": k, "v": v, "block_q": MEMORY_BLOCK, "block_k": MEMORY_BLOCK}
        out = call_with_timeout(got, dict(small), 10.0, forbid=forbid_attention_api())
        if failure(out, 10.0, "flash_forward") is None:
            if not ArrayClose(1e-6, 1e-8)(want, out.value).ok:
                return Verdict(False, ["your flash_forward gives wrong values: make exercise 3 pass first"])
            out = call_with_timeout(_peak_bytes, {"fn": got, "args": big}, 30.0, forbid=forbid_attention_api(),
                                    allow=(_peak_bytes,))
        why = failure(out, 30.0, "flash_forward")
        if why is not None:
            return Verdict(False, [why.line])
        full, row = MEMORY_N**2 * 4 / 1e6, MEMORY_BLOCK * MEMORY_N * 4 / 1e6
        measured = (f"peak memory {out.value / 1e6:.3f} MB at n = {MEMORY_N}, tiles of {MEMORY_BLOCK} (limit "
                    f"{self.limit / 1e6:.3f} MB; one row of scores per query block is {row:.2f} MB, the whole "
                    f"{MEMORY_N}×{MEMORY_N} float32 score matrix {full:.1f} MB)")
        if out.value < self.limit:
            show_measurement(f"flash_memory: {measured}")
            return Verdict(True)
        why = ("likely: a full row of n scores per query block: tile over the keys too, one (block_q, block_k) tile "
               "at a time (look at flash_forward's inner loop)" if out.value < MEMORY_N**2 * 2 else
               "likely: the whole n × n score matrix is built somewhere (look at flash_forward)")
        return Verdict(False, [measured, why])


# ---- the questions ---------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "online_softmax", 1, reference=ref_online_softmax, compare=Diagnosed(ArrayClose(rtol=1e-7, atol=1e-10)),
        forbid=forbid_attention_api,
        hint="Pass 1, block by block: m_new = max(m, block max); l = l·exp(m - m_new) + sum exp(x - m_new). "
             "Pass 2: exp(x - m) / l.",
        cases=(
            Case("random logits", _softmax_case("plain")),
            Case("a new maximum in every block", _softmax_case("rising"),
                 hint="rescale the running sum by exp(m_old - m_new) whenever the max grows"),
            Case("logits near 1e4", _softmax_case("large"),
                 hint="never exp a raw logit: always subtract the running max first"),
            Case("masked entries (-inf)", _softmax_case("masked"),
                 hint="exp(-inf - m) = 0; a block that is all -inf must not turn m into nan"),
            Case("a fully masked row", _softmax_case("empty row"),
                 hint="a row with no finite logit gives zeros: use 0 instead of m = -inf, and divide only where l > 0"),
            Case("one block wider than the row", _softmax_case("wide block")),
        ),
    ),
    Question(
        "tile_update", 2, reference=ref_tile_update, compare=StateClose(), forbid=forbid_attention_api,
        hint="m_new = max(m, s.max(-1)); alpha = exp(m - m_new); p = exp(s - m_new[:, None]); "
             "return alpha·acc + p @ v, m_new, alpha·l + p.sum(-1).",
        cases=(
            Case("a tile after some keys", _tile_case("plain")),
            Case("the first tile (m = -inf, l = 0)", _tile_case("first"),
                 hint="exp(-inf - m_new) = 0: alpha is 0, the empty state is simply replaced"),
            Case("a tile with a larger maximum", _tile_case("larger max"),
                 hint="acc and l were accumulated under the old max: multiply both by alpha = exp(m - m_new)"),
            Case("masked logits, a row seeing nothing new", _tile_case("masked"),
                 hint="a row whose tile is all -inf keeps its acc, m and l"),
            Case("a row that has still seen nothing", _tile_case("still empty"),
                 hint="m stays -inf and l = 0 when no key was ever allowed: compute exps with 0 in place of -inf"),
            Case("logits near 5e3", _tile_case("large")),
        ),
    ),
    Question(
        "flash_forward", 3, reference=ref_flash_forward,
        compare=Diagnosed(ArrayClose(rtol=1e-4, atol=1e-5), where="flash_forward or tile_update", same_dtype=True),
        forbid=forbid_attention_api,
        hint="For each query block: start from acc = 0, m = -inf, l = 0; fold in every key block with tile_update; "
             "then out = acc / l.",
        cases=(
            Case("n a multiple of the blocks", _flash_case("aligned")),
            Case("ragged blocks", _flash_case("plain"),
                 hint="the last block of queries or keys is shorter: slice [i0:i0 + block], NumPy clips it"),
            Case("more or fewer keys than queries", _flash_case("cross")),
            Case("large logits", _flash_case("large"), hint="tile_update subtracts the running max: keep it"),
            Case("blocks of 1", _flash_case("tiny blocks")),
            Case("one block holds everything", _flash_case("one block")),
            Case("float32 inputs", _flash_case("float32")),
        ),
    ),
    Question(
        "flash_memory", 4, kind="value", answer_name="flash_forward", points=2,
        reference=lambda: {"n": MEMORY_N, "d": MEMORY_D, "block": MEMORY_BLOCK, "limit": MEMORY_LIMIT},
        compare=FlashMemory(),
        hint="Score tiles of (block_q, block_k) only: memory O(n·d + block_q·block_k), not O(n²).",
    ),
    Question(
        "block_sparse_flash", 5, reference=ref_block_sparse_flash, compare=Diagnosed(ArrayClose(rtol=1e-4, atol=1e-5)),
        forbid=forbid_attention_api,
        hint="Your flash_forward with block_q = block_k = block; visit key block j of query block i only if "
             "layout[i, j].",
        cases=(
            Case("random layout", _sparse_case("random")),
            Case("causal block layout", _sparse_case("causal")),
            Case("n not a multiple of block", _sparse_case("ragged")),
            Case("query blocks with no active key block", _sparse_case("empty rows"),
                 hint="a row that saw no key returns 0 (l = 0): divide only where l > 0"),
            Case("skipped tiles are never read", _sparse_case("skipped tiles are never read"),
                 hint="v holds NaN in key blocks no query block uses: skip those tiles, do not compute and mask them"),
        ),
    ),
    text_question("ex07", 6),
    Question(
        "star_causal_flash", 7, answer_name="causal_flash", reference=ref_causal_flash,
        compare=Diagnosed(ArrayClose(rtol=1e-4, atol=1e-5), where="causal_flash's tile mask", same_dtype=True),
        forbid=forbid_attention_api,
        hint="Causal attention, tile by tile: each query sees every earlier key and itself, wherever the tile "
             "boundaries fall; the positions that the rule compares are positions in the sequence.",
        cases=(
            Case("n a multiple of the tiles", _causal_case("aligned")),
            Case("ragged tiles of different sizes", _causal_case("plain"),
                 hint="the last tiles are short, and the diagonal crosses tiles at different offsets"),
            Case("one tile size a multiple of the other", _causal_case("unequal")),
            Case("one tile holds everything", _causal_case("one block"),
                 hint="a single tile still needs its mask: the first query sees only the first key"),
            Case("large logits", _causal_case("large")),
            Case("float32 inputs", _causal_case("float32"), hint="the output keeps the inputs' dtype"),
        ),
    ),
]
