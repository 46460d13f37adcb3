"""Checks for exercises/03_global_tokens.ipynb: global tokens, Longformer's mask and cost, two-hop reachability."""
from __future__ import annotations

import importlib

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import viz as _viz

from ..compare import ArrayEqual, CSREqual, IntEqual, NumberClose
from ..hints import Diagnosed
from ..spec import Case, Question
from ._star import HUGE_N
from .ex01 import _n, forbid_pattern_api

_receptive_field = importlib.import_module("saattn_edu.viz.receptive_field")  # viz exports a function by this name


def forbid_graph_api() -> list:
    """The pattern views and the library's reachability: the learner multiplies the matrices."""
    return forbid_pattern_api() + [(_receptive_field, "reachability"), (_viz, "reachability"),
                                   (_receptive_field, "receptive_field"), (_viz, "receptive_field")]


# ---- references ------------------------------------------------------------------------------------------------
def _ref_two_hop(mask):
    step = np.asarray(mask).astype(np.int64) | np.eye(len(mask), dtype=np.int64)  # residual stream
    return (step @ step) > 0


def _ref_longformer_mask(n, window, global_indices, dilation):
    return P.Longformer(window, tuple(global_indices), dilation=dilation).mask(n)


def _ref_longformer_pairs(n, window, global_indices):
    return P.Longformer(window, tuple(global_indices)).num_pairs(n)


# ---- input generators ------------------------------------------------------------------------------------------
def _globals(rng, n, few=True):
    idx = [int(x) for x in rng.choice(n, size=int(rng.integers(1, 5)) if few else 0, replace=False)]
    return idx + idx[:1]  # one repeated: still one global token


def _longformer_case(dilation=None, no_globals=False):
    def make(rng):
        n = _n(rng)
        d = int(rng.integers(2, 4)) if dilation is None else dilation
        return {"n": n, "window": int(rng.integers(1, 9)), "global_indices": [] if no_globals else _globals(rng, n),
                "dilation": d}

    return make


def _reach_case(kind):
    def make(rng):
        n = _n(rng, 6, 40)
        if kind == "window":
            mask = P.SlidingWindow(int(rng.integers(2, 7))).mask(n)
        elif kind == "window + global":
            mask = (P.SlidingWindow(3) | P.GlobalTokens((int(rng.integers(n)),))).mask(n)
        elif kind == "causal":
            mask = P.SlidingWindow(int(rng.integers(2, 5)), causal=True).mask(n)
        else:  # a sparse directed graph, some rows empty
            mask = rng.random((n, n)) < 2.0 / n
        return {"mask": mask}

    return make


def _pairs_case(huge=False, edge_globals=False, wide=False):
    def make(rng):
        n = int(rng.integers(10**6, 10**9)) if huge else _n(rng, 1, 60)
        window = int(rng.integers(n, 3 * n + 1)) if wide else int(rng.integers(1, min(n, 2048) + 1))
        if edge_globals:  # the first and last tokens and one near the start: windows overlap at the ends
            g = sorted({0, n - 1, min(n - 1, int(rng.integers(0, 4)))})
        else:
            g = [int(x) for x in rng.choice(min(n, 10**6), size=min(n, int(rng.integers(1, 6))), replace=False)]
            g += g[:1]
        return {"n": n, "window": window, "global_indices": g}

    return make


# ---- ★ Longformer's neighbour lists -------------------------------------------------------------------------
def _ref_longformer_neighbors(n, window, global_indices):
    c = P.Longformer(window, tuple(int(x) for x in global_indices)).neighbors(n)
    return c.indptr.astype(np.int64), c.indices.astype(np.int64)


def _neighbors_case(kind):
    def make(rng):
        if kind == "huge":
            n = HUGE_N
            g = [int(x) for x in rng.choice(n, size=3, replace=False)] + [0]
            return {"n": n, "window": int(rng.integers(2, 9)), "global_indices": g}
        n = _n(rng, 6, 60)
        if kind == "no globals":
            return {"n": n, "window": int(rng.integers(1, 12)), "global_indices": []}
        if kind == "ends":
            return {"n": n, "window": int(rng.integers(2, 9)), "global_indices": [n - 1, 0, 1]}
        window = int(rng.integers(n, 2 * n + 2)) if kind == "wide" else int(rng.integers(1, 12))
        return {"n": n, "window": window, "global_indices": _globals(rng, n)}

    return make


# ---- the questions ---------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "longformer_mask", 1, reference=_ref_longformer_mask, compare=Diagnosed(ArrayEqual("b")),
        forbid=forbid_pattern_api,
        hint="Wrong pairs in longformer_mask: it is the dilated window of exercise 01 together with the global tokens' "
             "whole rows and columns.",
        cases=(
            Case("window only (no global tokens)", _longformer_case(dilation=1, no_globals=True),
                 hint="wrong even without global tokens: the window alone reaches half its width each side, rounded down"),
            Case("window + global tokens", _longformer_case(dilation=1)),
            Case("dilated window + global tokens", _longformer_case(),
                 hint="wrong only when dilated: keep whole multiples of the dilation, and count the reach in dilation steps"),
        ),
    ),
    Question(
        "two_hop_reachable", 2, reference=_ref_two_hop, compare=Diagnosed(ArrayEqual("b")),
        forbid=forbid_graph_api,
        hint="Add the identity (the residual stream), then one boolean matrix product: (S @ S) > 0 with S as ints.",
        cases=(
            Case("sliding window", _reach_case("window"),
                 hint="the band is too narrow or too wide: two window layers reach exactly twice as far as one"),
            Case("window + one global token", _reach_case("window + global"),
                 hint="with a hub every pair is connected in two hops"),
            Case("causal window", _reach_case("causal")),
            Case("sparse random graph, some rows empty", _reach_case("random"),
                 hint="the diagonal is always reachable: the residual stream carries every token's own value"),
        ),
    ),
    Question(
        "longformer_num_pairs", 3, reference=_ref_longformer_pairs, compare=IntEqual(), forbid=forbid_pattern_api,
        hint="window pairs + for each global x: (n - window keys of row x) twice, minus the global pairs (x, y) "
             "outside the window, counted in both row x and column y.",
        cases=(
            Case("short sequences", _pairs_case()),
            Case("globals at the ends of the sequence", _pairs_case(edge_globals=True),
                 hint="off near the ends: a global row near the first or last token has fewer window keys, cut at the ends"),
            Case("window wider than the sequence", _pairs_case(wide=True),
                 hint="then the window alone already allows all n² pairs"),
            Case("a million tokens or more", _pairs_case(huge=True),
                 hint="never build the mask: count the window in closed form and each global token alone"),
        ),
    ),
    Question(
        "q4", 4, kind="value", answer_name="q4_answer", points=2,
        reference=lambda: int(np.ceil(99 / (9 // 2))),
        compare=NumberClose(),
        hint="Each layer of a window of 9 moves information at most 4 tokens: how many layers cover 99?",
    ),
    Question(
        "star_longformer_neighbors", 5, answer_name="longformer_neighbors", reference=_ref_longformer_neighbors,
        compare=CSREqual(), forbid=forbid_pattern_api,
        hint="A row of the answer is its band, plus every global key, plus every key at all for a global row; each "
             "key once, ascending. Work on the allowed pairs only, all rows at once.",
        cases=(
            Case("window only (no global tokens)", _neighbors_case("no globals")),
            Case("window + global tokens, unsorted, one repeated", _neighbors_case("few"),
                 hint="a global key inside a row's band is still one key of that row"),
            Case("global tokens at both ends", _neighbors_case("ends"),
                 hint="the band is cut at the first and the last token"),
            Case("window wider than the sequence", _neighbors_case("wide"), hint="then every row holds every key"),
            Case(f"{HUGE_N:,} tokens (no n × n mask fits)", _neighbors_case("huge"),
                 hint="sizes that grow like n·n are out of reach here: only the allowed pairs fit"),
        ),
    ),
]
