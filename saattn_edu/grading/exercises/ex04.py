"""Checks for exercises/04_bigbird.ipynb: BigBird's block layout, its random blocks, path lengths and diameter."""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import viz as _viz
from saattn_edu.patterns import bigbird as _bigbird
from saattn_edu.patterns import random_pattern as _random

from ..compare import ArrayEqual, IntEqual, NumberClose, Verdict, _describe_type
from ..hints import Diagnosed
from ..guard import call_with_timeout, failure
from ..spec import Case, Question
from .ex01 import forbid_pattern_api

_receptive_field = importlib.import_module("saattn_edu.viz.receptive_field")  # viz exports a function by this name


def forbid_bigbird_api() -> list:
    """The pattern views, BigBird's own draws and tables, and the library's reachability."""
    targets = forbid_pattern_api() + [(_random, "draw_distinct"), (_bigbird, "draw_distinct")]
    targets += [(P.BigBird, name) for name in ("random_blocks_for", "_draw", "block_table", "_col_blocks")]
    targets += [(_receptive_field, "reachability"), (_viz, "reachability"), (_receptive_field, "receptive_field"),
                (_viz, "receptive_field")]
    return targets + [(sys.modules[__name__], "hop_distances"), (sys.modules[__name__], "diameter")]


# ---- references ------------------------------------------------------------------------------------------------
def hop_distances(adj) -> np.ndarray:
    """(n, n) fewest steps i -> ... -> j along adj (adj[i, k]: i attends to k); 0 on the diagonal, -1 if never."""
    adj = np.asarray(adj, dtype=bool)
    n = len(adj)
    step = adj.astype(np.float32)  # (n, n)
    dist = np.where(np.eye(n, dtype=bool), 0, -1).astype(np.int64)
    reach = np.eye(n, dtype=bool)
    for hops in range(1, n):
        new = ((reach.astype(np.float32) @ step) > 0) & ~reach  # one more layer, only pairs not reached before
        if not new.any():
            break
        dist[new] = hops
        reach |= new
    return dist


def diameter(adj) -> int:
    """Largest hop distance over all pairs; -1 when some pair is never connected."""
    dist = hop_distances(adj)
    return -1 if (dist < 0).any() else int(dist.max())


def _bigbird_for(nb, window_blocks, global_blocks, random_blocks, seed):
    # The exercise builds the paper's rule (first g blocks global, uniform random blocks), not the official ITC plan
    return P.BigBird(block=1, window_blocks=window_blocks, global_blocks=global_blocks,
                     random_blocks=random_blocks, seed=seed, variant="paper")  # block=1: one token per block


# ---- random blocks, graded by their properties -------------------------------------------------------------------
def _candidates(bi, nb, half, g):
    return [bj for bj in range(g, nb) if abs(bi - bj) > half]


@dataclass
class ValidRandomBlocks:
    """(nb, r) ints: each non-global row's valid entries are min(r, #candidates) distinct candidates; -1 pads."""

    def __call__(self, params, got) -> Verdict:
        nb, w, g, r = (params[k] for k in ("nb", "window_blocks", "global_blocks", "random_blocks"))
        if not isinstance(got, np.ndarray) or got.dtype.kind not in "iu":
            return Verdict(False, [f"returned {_describe_type(got)}; expected an integer NumPy array"])
        if got.shape != (nb, r):
            return Verdict(False, [f"expected shape {(nb, r)} (one row per block, random_blocks columns), "
                                   f"got shape {got.shape}"])
        smallest_everywhere = nb - g > 3 * (w // 2 + 1) + r  # enough candidates that a random draw varies
        for bi in range(nb):
            why = _row_problem(bi, got[bi], nb, w // 2, g, r)
            if why:
                return Verdict(False, [f"row block {bi}: {why}", f"your row {bi}: {got[bi].tolist()}"])
            cands = _candidates(bi, nb, w // 2, g)
            smallest_everywhere &= bi < g or sorted(x for x in got[bi] if x >= 0) == cands[:r]
        if smallest_everywhere and nb >= 40 and r > 0:
            return Verdict(False, ["every row takes its smallest candidates: draw them at random (seeded rng)"])
        return Verdict(True)


def _row_problem(bi, row, nb, half, g, r) -> str:
    picks = [int(x) for x in row if x >= 0]
    if any(x < -1 for x in row):
        return "entries must be block indices or -1 (padding)"
    if bi < g:
        return "" if not picks else f"global row blocks (bi < {g}) see everything: their row is all -1"
    cands = set(_candidates(bi, nb, half, g))
    bad = [x for x in picks if x not in cands]
    if bad:
        return (f"block {bad[0]} is not a candidate (must be >= {g}, < {nb}, and |{bi} - bj| > {half}: "
                "outside the window and the globals)")
    if len(set(picks)) != len(picks):
        return "a block is drawn twice: draws must be distinct"
    if len(picks) != min(r, len(cands)):
        return f"expected {min(r, len(cands))} random blocks ({len(cands)} candidates), got {len(picks)}"
    return ""


@dataclass
class SeededDraws:
    """The learner's random_blocks is valid, the same seed gives the same table, and other seeds other tables."""

    params: tuple = ((48, 3, 2, 3), (17, 3, 0, 2))  # (nb, window_blocks, global_blocks, random_blocks)
    seeds: tuple = (11, 12, 13, 14, 15)

    def __call__(self, expected, got) -> Verdict:
        if not callable(got):
            return Verdict(False, [f"expected your function random_blocks, got a {type(got).__name__}"])
        for nb, w, g, r in self.params:
            kw = dict(nb=nb, window_blocks=w, global_blocks=g, random_blocks=r)
            tables = []
            for seed in self.seeds + self.seeds[:1]:
                out = call_with_timeout(got, dict(kw, seed=seed), 10.0, forbid=forbid_bigbird_api())
                why = failure(out, 10.0, "random_blocks")
                if why is not None and why.status == "not attempted":
                    return Verdict(False, [], status="not attempted")
                if why is not None:
                    return Verdict(False, [why.line])
                valid = ValidRandomBlocks()(kw, out.value)
                if not valid.ok:
                    return Verdict(False, [f"random_blocks(**{kw}, seed={seed}): " + valid.lines[0]] + valid.lines[1:])
                tables.append(np.asarray(out.value))
            if not np.array_equal(tables[0], tables[-1]):
                return Verdict(False, [f"two calls with seed={self.seeds[0]} gave different tables: draw from "
                                       "an rng made from `seed` (and only from it), so a seed repeats its layout"])
            if all(np.array_equal(tables[0], t) for t in tables[1:-1]):
                return Verdict(False, [f"seeds {', '.join(map(str, self.seeds))} all gave the same table: the "
                                       "draw ignores the seed or is not random"])
        return Verdict(True)


# ---- ★ the random-block table, vectorised ------------------------------------------------------------------------
HUGE_NB = 200_000  # a loop over rows with a candidate list each takes minutes here


def table_problem(table, nb, w, g, r) -> str:
    """Why `table` breaks a rule of random_blocks (checked for all rows at once), or ''."""
    if not isinstance(table, np.ndarray) or table.dtype.kind not in "iu":
        return f"returned {_describe_type(table)}; expected an integer NumPy array"
    if table.shape != (nb, r):
        return f"expected shape {(nb, r)}, got shape {table.shape}"
    t, rows, half = table.astype(np.int64), np.arange(nb)[:, None], w // 2
    valid = t >= 0
    lo, hi = np.clip(rows - half, g, nb), np.clip(rows + half + 1, g, nb)
    want = np.where(rows[:, 0] < g, 0, np.minimum(r, (nb - g) - (hi - lo)[:, 0]))  # (nb,) blocks per row
    bad = valid & ((t < g) | (t >= nb) | (np.abs(t - rows) <= half))
    distinct = np.sort(np.where(valid, t, -1 - np.arange(r)), axis=1)  # padding made distinct
    checks = ((t < -1).any(axis=1), "entries must be block indices or -1 (padding)"), \
        (bad.any(axis=1), f"a drawn block is not a candidate (>= {g}, < {nb}, outside the window of its row)"), \
        ((distinct[:, 1:] == distinct[:, :-1]).any(axis=1), "a block is drawn twice in one row: draws must be distinct"), \
        (valid.sum(axis=1) != want, "the number of random blocks in a row is not min(random_blocks, #candidates)")
    for rows_bad, why in checks:
        if rows_bad.any():
            k = int(np.argmax(rows_bad))
            return f"row block {k}: {why}; your row {k}: {t[k].tolist()}"
    if nb >= 1000 and r:
        picks, owner = t[valid], np.broadcast_to(rows, t.shape)[valid]
        share = np.bincount((picks - g) * 10 // (nb - g), minlength=10) / len(picks)
        if share.min() < 0.05:
            return "the draws do not spread over the sequence: some tenth of the blocks is (almost) never drawn"
        if np.median(np.abs(picks - owner)) < nb / 10:
            return "the draws stay close to their row: every candidate must be equally likely, near or far"
    return ""


@dataclass
class FastSeededDraws:
    """The learner's vectorised random_blocks keeps every rule at nb = HUGE_NB within the time, and seeds behave."""

    params: tuple = ((HUGE_NB, 3, 2, 3), (7, 3, 1, 3), (5000, 7, 0, 2))  # (nb, window, global, random blocks)
    seeds: tuple = (21, 22, 21)
    seconds: float = 10.0

    def __call__(self, expected, got) -> Verdict:
        if not callable(got):
            return Verdict(False, [f"expected your function random_blocks_vectorised, got a {type(got).__name__}"])
        for nb, w, g, r in self.params:
            kw = dict(nb=nb, window_blocks=w, global_blocks=g, random_blocks=r)
            tables = []
            for seed in self.seeds:
                out = call_with_timeout(got, dict(kw, seed=seed), self.seconds, forbid=forbid_bigbird_api())
                why = failure(out, self.seconds, "random_blocks_vectorised")
                if why is not None and why.status == "not attempted":
                    return Verdict(False, [], status="not attempted")
                if why is not None:
                    return Verdict(False, [why.line])
                problem = table_problem(out.value, nb, w, g, r)
                if problem:
                    return Verdict(False, [f"random_blocks_vectorised(**{kw}, seed={seed}): {problem}"])
                tables.append(np.asarray(out.value))
            if not np.array_equal(tables[0], tables[2]):
                return Verdict(False, [f"two calls with seed={self.seeds[0]} gave different tables ({kw}): draw "
                                       "from a generator made from `seed` only"])
            if nb > 100 and np.array_equal(tables[0], tables[1]):
                return Verdict(False, [f"seeds {self.seeds[0]} and {self.seeds[1]} gave the same table ({kw})"])
        return Verdict(True)


# ---- input generators ------------------------------------------------------------------------------------------
def _params(rng, nb_range=(3, 24), g=None, r=None, w=None):
    return {"nb": int(rng.integers(*nb_range)), "window_blocks": int(rng.integers(1, 6)) if w is None else w,
            "global_blocks": int(rng.integers(0, 3)) if g is None else g,
            "random_blocks": int(rng.integers(1, 4)) if r is None else r}


def _layout_case(**fixed):
    def make(rng):
        p = _params(rng, **fixed)
        bb = _bigbird_for(p["nb"], p["window_blocks"], p["global_blocks"], p["random_blocks"],
                          seed=int(rng.integers(0, 10**6)))
        table = np.array(bb.random_blocks_for(p["nb"]))  # a writable copy of the library's seeded draw
        return {"nb": p["nb"], "window_blocks": p["window_blocks"], "global_blocks": p["global_blocks"],
                "random_table": table}

    return make


def _ref_layout_from_table(nb, window_blocks, global_blocks, random_table):
    bb = _bigbird_for(nb, window_blocks, global_blocks, random_table.shape[1], seed=0)
    bb._tables[nb] = np.asarray(random_table)  # the reference draws nothing: it uses this very table
    return bb.block_layout(nb, 1)


def _random_case(**fixed):
    def make(rng):
        return {**_params(rng, **fixed), "seed": int(rng.integers(0, 10**6))}

    return make


def _graph_case(kind):
    def make(rng):
        n = int(rng.integers(6, 40))
        if kind == "window":
            adj = P.SlidingWindow(int(rng.integers(3, 8))).mask(n)
        elif kind == "bigbird":
            adj = P.BigBird(block=2, window_blocks=3, global_blocks=int(rng.integers(0, 2)), random_blocks=1,
                            seed=int(rng.integers(0, 10**6))).mask(2 * (n // 2))
        elif kind == "directed":
            adj = rng.random((n, n)) < 3.0 / n
            adj[np.arange(n), (np.arange(n) + 1) % n] = True  # a directed cycle: connected one way round
        else:  # disconnected: two windows that never meet
            adj = np.zeros((n, n), dtype=bool)
            h = n // 2
            adj[:h, :h] = P.SlidingWindow(3).mask(h)
            adj[h:, h:] = P.SlidingWindow(3).mask(n - h)
        return {"adj": adj}

    return make


# ---- the questions ---------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "bigbird_block_layout", 1, reference=_ref_layout_from_table, compare=Diagnosed(ArrayEqual("b")),
        forbid=forbid_bigbird_api,
        hint="Wrong blocks in bigbird_block_layout: a layout is the window band, the global rows and columns, and the "
             "random table's blocks of each row; the padding entries mark nothing.",
        cases=(
            Case("window and global blocks, no random table entries", _layout_case(r=1, w=5, nb_range=(3, 6)),
                 hint="a row whose candidates ran out holds -1: skip those"),
            Case("BigBird's proportions: window 3, 2 global, 3 random", _layout_case(g=2, r=3, w=3)),
            Case("no global blocks", _layout_case(g=0)),
            Case("random parameters", _layout_case()),
        ),
    ),
    Question(
        "random_blocks", 2, reference=lambda nb, window_blocks, global_blocks, random_blocks, seed: dict(
            nb=nb, window_blocks=window_blocks, global_blocks=global_blocks, random_blocks=random_blocks),
        compare=ValidRandomBlocks(), forbid=forbid_bigbird_api,
        hint="A rule broken in random_blocks: a row draws distinct blocks among its candidates (not global, outside "
             "its window), as many as asked or as exist, padded after.",
        cases=(
            Case("BigBird's proportions on 48 to 64 blocks", _random_case(nb_range=(48, 65), g=2, r=3, w=3)),
            Case("no global blocks", _random_case(g=0)),
            Case("few blocks: candidates run out", _random_case(nb_range=(3, 7), w=3),
                 hint="with fewer candidates than random_blocks, take them all and pad with -1"),
            Case("random parameters", _random_case()),
        ),
    ),
    Question(
        "random_blocks_seeded", 2, kind="value", answer_name="random_blocks", points=2,
        reference=lambda: {"params": SeededDraws.params, "seeds": SeededDraws.seeds}, compare=SeededDraws(),
        hint="Tables that differ for one seed, or agree for different seeds, in random_blocks: make one generator "
             "from the seed alone and draw every row from it.",
    ),
    Question(
        "hop_distances", 3, reference=hop_distances, compare=Diagnosed(ArrayEqual("i")), forbid=forbid_bigbird_api,
        hint="Wrong distances from hop_distances: grow the reached set one hop at a time from every query at once, and "
             "record the hop at which each pair is first reached.",
        cases=(
            Case("sliding window", _graph_case("window"), hint="distances too short or too long: a window moves information half its width per hop, rounded down"),
            Case("BigBird (tokens)", _graph_case("bigbird")),
            Case("directed graph", _graph_case("directed"),
                 hint="right on symmetric graphs only: a step goes from a query to a key it attends to, one way"),
            Case("two parts that never meet", _graph_case("two parts"),
                 hint="pairs never connected get -1; the diagonal is 0"),
        ),
    ),
    Question(
        "diameter", 4, reference=diameter, compare=IntEqual(), forbid=forbid_bigbird_api,
        hint="The largest entry of hop_distances, or -1 when any entry is -1.",
        cases=(
            Case("sliding window", _graph_case("window")),
            Case("BigBird (tokens)", _graph_case("bigbird")),
            Case("directed graph", _graph_case("directed")),
            Case("two parts that never meet", _graph_case("two parts"), hint="disconnected: -1"),
        ),
    ),
    Question(
        "q5", 5, kind="value", answer_name="q5_answer", points=2,
        reference=lambda: (3 + 2 + 3) * 64, compare=NumberClose(),
        hint="A query in a middle block sees 3 window blocks, 2 global blocks and 3 random blocks of 64 tokens.",
    ),
    Question(
        "star_random_blocks_vectorised", 6, kind="value", answer_name="random_blocks_vectorised", points=3,
        reference=lambda: {"params": FastSeededDraws.params, "seeds": FastSeededDraws.seeds},
        compare=FastSeededDraws(),
        hint="The same rules as exercise 2, for every row at once: a loop over rows, or a list of a row's "
             "candidates, is too slow at this size; every candidate of a row equally likely, none twice.",
    ),
]
