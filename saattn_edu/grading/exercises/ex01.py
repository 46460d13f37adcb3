"""Checks for exercises/01_patterns.ipynb: masks, CSR neighbour lists and pair counts, with NumPy only."""
from __future__ import annotations

import numpy as np

from saattn_edu import patterns as P
from saattn_edu.patterns import base as _base
from saattn_edu.patterns import window as _window

from ..compare import ArrayEqual, CSREqual, IntEqual, NumberClose
from ..hints import Diagnosed
from ..freetext import text_question
from ._star import HUGE_N, csr_pair, random_csr
from ..spec import Case, Question

_VIEWS = ("allowed", "mask", "neighbors", "num_pairs", "density", "block_layout", "mask_mod_for",
          "_neighbors_in_band", "_rule_chunks")


def _global_tokens():
    from saattn_edu.patterns.global_tokens import GlobalTokens  # written in parallel; P exports it too

    return GlobalTokens


def forbid_pattern_api() -> list:
    """Every view of every pattern class, the CSR builders and the closed-form helpers: the library's solutions."""
    classes, todo = [], [P.Pattern]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    targets = [(cls, name) for cls in classes for name in _VIEWS if name in cls.__dict__]
    targets += [(P.CSR, "from_mask"), (P.CSR, "from_pairs"), (P.CSR, "to_mask")]
    targets += [(_base, "csr_from_rows"), (_base, "layout_from_csr"), (_window, "_window_pairs")]
    return targets


# ---- input generators: every check draws new ones ------------------------------------------------------------
def _n(rng, lo=8, hi=40) -> int:
    return int(rng.integers(lo, hi + 1))


def _window_case(parity=None, causal=None, wide=False):
    def make(rng):
        n = _n(rng)
        window = int(rng.integers(n, 2 * n + 1)) if wide else int(rng.integers(2, n // 2 + 1))  # 1: symmetric
        if parity is not None and window % 2 != parity:
            window += 1
        c = bool(rng.integers(2)) if causal is None else causal
        return {"n": n, "window": window, "causal": c}

    return make


def _dilated_case(dilation=None, causal=None, wide=False):
    def make(rng):
        n = _n(rng)
        d = int(rng.integers(2, 5)) if dilation is None else dilation
        window = int(rng.integers(n // d + 1, n + 2)) if wide else int(rng.integers(1, 8))
        c = bool(rng.integers(2)) if causal is None else causal
        return {"n": n, "window": window, "dilation": d, "causal": c}

    return make


def _global_case(kind):
    def make(rng):
        n = _n(rng)
        if kind == "first":
            idx = [0]
        elif kind == "none":
            idx = []
        elif kind == "all":
            idx = list(range(n))
        else:  # a few positions anywhere, unsorted, one repeated
            idx = [int(k) for k in rng.choice(n, size=int(rng.integers(2, 5)), replace=False)]
            idx.append(idx[0])
        return {"n": n, "indices": idx}

    return make


def _mask_case(kind):
    def make(rng):
        n = _n(rng, 5, 24)
        if kind == "window":
            return {"mask": P.SlidingWindow(int(rng.integers(1, 6)), causal=True).mask(n)}
        if kind == "empty":
            return {"mask": np.zeros((n, n), dtype=bool)}
        mask = rng.random((n, n)) < rng.uniform(0.1, 0.5)
        if kind == "empty rows":
            mask[rng.choice(n, size=max(1, n // 3), replace=False)] = False
        return {"mask": mask}

    return make


def _pairs_case(causal, wide=False, huge=False):
    def make(rng):
        n = int(rng.integers(10**9, 10**12)) if huge else _n(rng, 1, 60)
        window = int(rng.integers(2 * n + 2, 4 * n + 3)) if wide else int(rng.integers(1, min(n, 4096) + 1))
        return {"n": n, "window": window, "causal": causal}  # wide: even window // 2 reaches past n - 1

    return make


# ---- ★ the union of two neighbour lists ----------------------------------------------------------------------
def _ref_union(indptr_a, indices_a, indptr_b, indices_b):
    """Both lists' (row, key) pairs as one sorted, de-duplicated key row·n + key."""
    n = len(indptr_a) - 1
    rows = np.concatenate([np.repeat(np.arange(n), np.diff(indptr_a)), np.repeat(np.arange(n), np.diff(indptr_b))])
    key = np.sort(rows.astype(np.int64) * n + np.concatenate([indices_a, indices_b]).astype(np.int64))
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key  # sorted: repeats are neighbours
    return np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * n).astype(np.int64), key % n


def _union_case(kind):
    def make(rng):
        if kind == "huge":
            a = csr_pair(P.SlidingWindow(2, causal=True), HUGE_N)
            b = csr_pair(P.SlidingWindow(3), HUGE_N)
        elif kind == "windows":
            n = int(rng.integers(8, 60))
            a, b = csr_pair(P.SlidingWindow(int(rng.integers(1, 9))), n), csr_pair(
                P.DilatedWindow(int(rng.integers(1, 5)), int(rng.integers(2, 5))), n)
        else:
            n = int(rng.integers(5, 40))
            a, b = random_csr(rng, n, 0.2, empty_rows=True), random_csr(rng, n, 0.3, empty_rows=kind == "empty")
        return {"indptr_a": a[0], "indices_a": a[1], "indptr_b": b[0], "indices_b": b[1]}

    return make


# ---- the questions ------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "sliding_window_mask", 1,
        reference=lambda n, window, causal: P.SlidingWindow(window, causal).mask(n),
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_pattern_api,
        hint="Wrong pairs allowed or missing in sliding_window_mask: usually the offset i - j built the wrong way "
             "round (rows are queries i, columns keys j) or a bound one off.",
        cases=(
            Case("non-causal, odd window", _window_case(parity=1, causal=False),
                 hint="pairs missing or extra far from the diagonal: non-causal keeps |i - j| up to half the window, rounded down"),
            Case("non-causal, even window", _window_case(parity=0, causal=False),
                 hint="one pair too few on each side: an even window still reaches half its width on each side"),
            Case("causal window", _window_case(causal=True), hint="causal keeps 0 <= i - j < window"),
            Case("window at least as long as the sequence", _window_case(wide=True),
                 hint="errors near the first or last token: a wide window is clipped by the sequence's ends"),
            Case("causal window of 1 (the diagonal)", lambda rng: {"n": _n(rng), "window": 1, "causal": True},
                 hint="anything off the diagonal is wrong: a causal window of 1 keeps each token alone"),
        ),
    ),
    Question(
        "dilated_window_mask", 2,
        reference=lambda n, window, dilation, causal: P.DilatedWindow(window, dilation, causal).mask(n),
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_pattern_api,
        hint="Pairs between the grid points allowed, or the reach wrong, in dilated_window_mask: keep only offsets that "
             "are whole multiples of the dilation, and count the window in dilation steps.",
        cases=(
            Case("dilation 1 is the sliding window", _dilated_case(dilation=1),
                 hint="a dilation of 1 must give exactly the sliding window of exercise 1"),
            Case("non-causal, dilation 2 to 4", _dilated_case(causal=False),
                 hint="too many or too few steps each side: non-causal keeps up to half the window, in steps of the dilation"),
            Case("causal, dilation 2 to 4", _dilated_case(causal=True),
                 hint="causal keeps the query and the window - 1 grid steps before it, none after"),
            Case("reach beyond the sequence", _dilated_case(wide=True),
                 hint="keys outside [0, n) simply do not exist"),
        ),
    ),
    Question(
        "global_tokens_mask", 3,
        reference=lambda n, indices: _global_tokens()(indices).mask(n),
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_pattern_api,
        hint="Rows or columns missing in global_tokens_mask: a global token allows its whole row and its whole "
             "column; mark the global positions once, then spread them along both axes.",
        cases=(
            Case("one global token at position 0", _global_case("first"),
                 hint="row 0 and column 0 are all True"),
            Case("a few global tokens, unsorted, one repeated", _global_case("few"),
                 hint="a repeated index is still one global token"),
            Case("no global tokens", _global_case("none"), hint="an empty list gives an all-False mask"),
            Case("every token global", _global_case("all"), hint="then every pair is allowed"),
        ),
    ),
    Question(
        "mask_to_csr", 4,
        reference=lambda mask: P.CSR.from_mask(mask),
        compare=CSREqual(), forbid=forbid_pattern_api,
        hint="Rows start at the wrong place or keys come out of order in mask_to_csr: indptr is the running total "
             "of the row counts, starting at 0; keys are listed row by row, ascending.",
        cases=(
            Case("random mask", _mask_case("random")),
            Case("random mask with empty rows", _mask_case("empty rows"),
                 hint="an empty row still gets its indptr entry (indptr has n + 1 entries)"),
            Case("causal sliding-window mask", _mask_case("window")),
            Case("all-False mask", _mask_case("empty"), hint="no pairs: indptr is all zeros, indices is empty"),
        ),
    ),
    Question(
        "sliding_window_num_pairs", 5,
        reference=lambda n, window, causal: P.SlidingWindow(window, causal).num_pairs(n),
        compare=IntEqual(), forbid=forbid_pattern_api,
        hint="A wrong count in sliding_window_num_pairs: count by offset (an offset d between 0 and n occurs in n - d "
             "rows) and add up the offsets the window keeps.",
        cases=(
            Case("non-causal, short sequences", _pairs_case(causal=False)),
            Case("causal, short sequences", _pairs_case(causal=True)),
            Case("window wider than the sequence", _pairs_case(causal=False, wide=True),
                 hint="only offsets below n exist: clip the reach at n - 1"),
            Case("causal, a billion tokens or more", _pairs_case(causal=True, huge=True),
                 hint="wrong or a float at a billion tokens: sum n - d over the kept offsets in closed form, in integers only"),
            Case("non-causal, a billion tokens or more", _pairs_case(causal=False, huge=True),
                 hint="off by about n: both sides reach half the window; count one side, double it, add the diagonal once"),
        ),
    ),
    Question(
        "q6", 6, kind="value", answer_name="q6_answer", points=2,
        reference=lambda: P.DilatedWindow(window=3, dilation=2, causal=True).num_pairs(10),
        compare=NumberClose(),
        hint="Causal, window 3, dilation 2: each query sees offsets 0, 2 and 4 when those keys exist.",
    ),
    text_question("ex01", 7),
    Question(
        "star_union_neighbors", 8, answer_name="union_neighbors", reference=_ref_union, compare=CSREqual(), forbid=forbid_pattern_api,
        hint="Every row of the answer is the merge of two sorted rows without repeats; do all rows at once.",
        cases=(
            Case("two windows", _union_case("windows")),
            Case("random neighbour lists", _union_case("random")),
            Case("rows empty in one or both", _union_case("empty"), hint="an empty row merges to the other row"),
            Case(f"{HUGE_N:,} tokens (no n × n mask fits)", _union_case("huge"),
                 hint="work on the nnz entries only: sizes that grow like n·n are out of reach here"),
        ),
    ),
]
