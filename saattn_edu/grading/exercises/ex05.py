"""Checks for exercises/05_sparse_transformer.ipynb: strided and fixed masks, their heads, two steps, the √n choice."""
from __future__ import annotations

import importlib

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import viz as _viz
from saattn_edu.patterns import sparse_transformer as _st

from ..compare import ArrayEqual, CSREqual, IntEqual, Verdict
from ..hints import Diagnosed
from ._star import csr_pair
from ..spec import Case, Question
from .ex01 import _n, forbid_pattern_api

_receptive_field = importlib.import_module("saattn_edu.viz.receptive_field")  # viz exports a function by this name


def forbid_sparse_transformer_api() -> list:
    """The pattern views, the closed-form helpers and the library's reachability."""
    return forbid_pattern_api() + [(_st, "_grid_pairs"), (_receptive_field, "reachability"), (_viz, "reachability")]


# ---- references ------------------------------------------------------------------------------------------------
def _ref_heads(n, stride):
    """The paper's two strided heads (causal): A1 the previous stride + 1 keys, A2 every stride-th key back."""
    d = np.arange(n)[:, None] - np.arange(n)[None, :]  # (n, n)
    return (d >= 0) & (d <= stride), (d >= 0) & (d % stride == 0)


def _ref_compose(outer, inner):
    return (np.asarray(outer).astype(np.int64) @ np.asarray(inner).astype(np.int64)) > 0


def strided_pairs_all(n: int) -> np.ndarray:
    """(n,) causal Strided(stride).num_pairs(n) for stride = 1..n, vectorised (the closed form of the library)."""
    s = np.arange(1, n + 1, dtype=np.int64)  # (n,)
    r = np.minimum(s, n - 1)  # band offsets 0..r
    band = (r + 1) * n - r * (r + 1) // 2
    k_max = (n - 1) // s  # grid offsets k·s for k = 2..k_max
    grid = np.where(k_max >= 2, (k_max - 1) * n - s * (k_max * (k_max + 1) // 2 - 1), 0)
    return band + grid


def _ref_best_stride(n):
    return int(np.argmin(strided_pairs_all(n))) + 1  # argmin: the smallest stride among ties


# ---- input generators ------------------------------------------------------------------------------------------
def _strided_case(causal=None, kind="random"):
    def make(rng):
        n = _n(rng)
        stride = {"one": 1, "wide": int(rng.integers(n, 2 * n + 1))}.get(kind, int(rng.integers(2, 9)))
        return {"n": n, "stride": stride, "causal": bool(rng.integers(2)) if causal is None else causal}

    return make


def _fixed_case(causal=None, kind="random"):
    def make(rng):
        n, stride = _n(rng), int(rng.integers(2, 9))
        c = {"c=1": 1, "c=stride": stride}.get(kind, int(rng.integers(1, stride + 1)))
        if kind == "ragged" and n % stride == 0:
            n += 1  # the last block is shorter
        return {"n": n, "stride": stride, "c": c, "causal": bool(rng.integers(2)) if causal is None else causal}

    return make


def _heads_case(kind="random"):
    def make(rng):
        n = _n(rng)
        return {"n": n, "stride": {"one": 1, "wide": n + int(rng.integers(0, 5))}.get(kind, int(rng.integers(2, 9)))}

    return make


def _compose_case(kind):
    def make(rng):
        n = _n(rng, 4, 40)
        if kind == "heads":
            a1, a2 = _ref_heads(n, int(rng.integers(2, 7)))
            return {"outer": a1, "inner": a2}
        density = 2.0 / n if kind == "sparse" else rng.uniform(0.1, 0.4)
        return {"outer": rng.random((n, n)) < density, "inner": rng.random((n, n)) < density}

    return make


def _pairs_case(kind):
    def make(rng):
        if kind == "huge":
            n = int(rng.integers(10**9, 10**12))
            return {"n": n, "stride": int(rng.integers(2, 10**6))}
        n = _n(rng, 1, 80)
        stride = {"wide": int(rng.integers(n, 2 * n + 2)), "sqrt": max(1, int(round(np.sqrt(n))))}.get(
            kind, int(rng.integers(1, 12)))
        return {"n": n, "stride": stride}

    return make


def _best_case(kind):
    def make(rng):
        if kind == "small":
            return {"n": int(rng.integers(1, 50))}
        if kind == "square":
            return {"n": int(rng.integers(30, 300)) ** 2}
        if kind == "tie":  # n = k(2k + 1) - 1 or k(2k + 1): two strides tie for the fewest pairs
            k = int(rng.integers(2, 40))
            return {"n": k * (2 * k + 1) - int(rng.integers(0, 2))}
        return {"n": int(rng.integers(1000, 100_000))}

    return make


class PairEqual:
    """A pair (A1, A2) of boolean arrays, each equal to the expected one."""

    def __call__(self, expected, got) -> Verdict:
        if not isinstance(got, tuple) or len(got) != 2:
            return Verdict(False, [f"returned a {type(got).__name__}; expected a pair (a1, a2) of masks"])
        for name, e, g in zip(("a1 (local head)", "a2 (strided head)"), expected, got):
            v = ArrayEqual("b")(e, g)
            if not v.ok:
                return Verdict(False, [f"{name}: {v.lines[0]}"] + v.lines[1:])
        return Verdict(True)


# ---- ★ the Fixed pattern's CSR in closed form ------------------------------------------------------------------
def _fixed_csr_case(kind):
    def make(rng):
        stride = int(rng.integers(48, 80)) if kind == "long" else int(rng.integers(2, 9))
        c = {"c = stride": stride, "c = 1": 1}.get(kind, int(rng.integers(1, min(stride, 8) + 1)))
        n = int(rng.integers(3000, 4000)) if kind == "long" else int(rng.integers(1, 60))
        return {"n": n, "stride": stride, "c": c}

    return make

# ---- the questions ---------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "strided_mask", 1,
        reference=lambda n, stride, causal: P.Strided(stride, causal).mask(n),
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_pattern_api,
        hint="Wrong pairs in strided_mask: causal keeps the previous stride keys with the query itself, or any earlier "
             "key a whole number of strides back.",
        cases=(
            Case("causal, as in the paper", _strided_case(causal=True),
                 hint="the local head keeps the previous stride keys and the query itself: stride + 1 keys"),
            Case("non-causal", _strided_case(causal=False),
                 hint="wrong only without causality: the band and the grid then extend on both sides of the query"),
            Case("stride 1", _strided_case(kind="one")),
            Case("stride at least the sequence length", _strided_case(kind="wide")),
        ),
    ),
    Question(
        "fixed_mask", 2,
        reference=lambda n, stride, c, causal: P.Fixed(stride, c, causal).mask(n),
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_pattern_api,
        hint="Wrong pairs in fixed_mask: a query sees its own block and the last c keys of every block, and nothing "
             "after itself when causal.",
        cases=(
            Case("causal, as in the paper", _fixed_case(causal=True)),
            Case("non-causal", _fixed_case(causal=False)),
            Case("c = 1: one summary key per block", _fixed_case(kind="c=1"),
                 hint="the summary keys are the last c positions of each block"),
            Case("last block shorter", _fixed_case(kind="ragged")),
        ),
    ),
    Question(
        "strided_heads", 3, reference=_ref_heads, compare=PairEqual(), forbid=forbid_pattern_api,
        hint="Wrong heads from strided_heads: the first head is the local band of the previous stride keys and the "
             "query, the second the earlier keys a whole number of strides back.",
        cases=(
            Case("random stride", _heads_case()),
            Case("stride 1", _heads_case("one")),
            Case("stride at least the sequence length", _heads_case("wide"),
                 hint="then a2 keeps only the diagonal"),
        ),
    ),
    Question(
        "compose", 4, reference=_ref_compose, compare=Diagnosed(ArrayEqual("b")), forbid=forbid_sparse_transformer_api,
        hint="Wrong pairs in compose: i reaches j when some middle token k is allowed for i by the outer pattern and "
             "allows j under the inner one; an integer matrix product counts such k.",
        cases=(
            Case("dense-ish random masks", _compose_case("random")),
            Case("sparse random masks", _compose_case("sparse")),
            Case("the two strided heads", _compose_case("heads")),
        ),
    ),
    Question(
        "strided_num_pairs", 5,
        reference=lambda n, stride: P.Strided(stride, causal=True).num_pairs(n),
        compare=IntEqual(), forbid=forbid_sparse_transformer_api,
        hint="A wrong count in strided_num_pairs: count by offset; the band's offsets and the grid's offsets beyond "
             "it, each occurring in n - d rows.",
        cases=(
            Case("short sequences", _pairs_case("random")),
            Case("stride ≈ √n", _pairs_case("sqrt")),
            Case("stride at least the sequence length", _pairs_case("wide"),
                 hint="then every causal pair is in the local band: n (n + 1) / 2"),
            Case("a billion tokens or more", _pairs_case("huge"),
                 hint="sum the grid offsets k·stride in closed form; never loop over n"),
        ),
    ),
    Question(
        "best_stride", 6, reference=_ref_best_stride, compare=IntEqual(), forbid=forbid_sparse_transformer_api,
        hint="The wrong stride from best_stride: try every stride from 1 to n with your strided_num_pairs and keep the "
             "first one with the fewest pairs.",
        cases=(
            Case("short sequences", _best_case("small")),
            Case("perfect squares", _best_case("square")),
            Case("two strides tie", _best_case("tie"), hint="on a tie the smaller stride wins"),
            Case("1,000 to 100,000 tokens", _best_case("large")),
        ),
    ),
    Question(
        "star_fixed_csr", 7, answer_name="fixed_csr", reference=lambda n, stride, c: csr_pair(P.Fixed(stride, c), n), compare=CSREqual(),
        forbid=forbid_sparse_transformer_api,
        hint="Row i holds the summary keys of every earlier block, then its own block up to i: both counts and "
             "both key formulas are closed forms of i, stride and c.",
        cases=(
            Case("random stride and c", _fixed_csr_case("plain")),
            Case("c = 1 (one summary key per block)", _fixed_csr_case("c = 1")),
            Case("c = stride: every earlier key", _fixed_csr_case("c = stride"),
                 hint="wrong when c equals the stride: then every earlier key is a summary key, plain causal attention"),
            Case("3,000 tokens or more, strides near √n", _fixed_csr_case("long")),
        ),
    ),
]
