"""Checks for exercises/02_local_attention.ipynb: CSR neighbour lists, gather attention, its scaling (the window
masks themselves are exercises 1 and 2 of notebook 01)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saattn_edu import complexity as C
from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.reference import block_sparse as _block_sparse
from saattn_edu.reference import dense as _dense
from saattn_edu.reference import flash as _flash
from saattn_edu.reference import sparse as _sparse

from ..compare import ArrayClose, ArrayEqual, CSREqual, Verdict
from ..guard import call_with_timeout, failure
from ..hints import Diagnosed, show_measurement
from ._star import HUGE_N, csr_pair
from ..spec import Case, Question
from .ex01 import _dilated_case, forbid_pattern_api

MAX_EXPONENT = 1.3  # a correct O(n·w) gather fits ≈ 1.0; dense work would fit ≈ 2
# Sizes where a gather's arrays (n·w·d floats) stay in the CPU caches: beyond ~5 MB cache misses bend the curve up
# (measured: 1.1 to 1.6 at n = 16k..128k on a busy 2-core machine, against 0.9 to 1.0 here).
TIMING_NS = (512, 1024, 2048, 4096, 8192)
TIMING_WINDOW, TIMING_D = 9, 16
TIMING_BUDGET = 60.0  # seconds for the whole timing check (a Python loop over rows still fits)


def forbid_attention_api() -> list:
    """The pattern views (ex01) and every attention routine of the reference: the learner writes the gather."""
    targets = forbid_pattern_api()
    targets += [(R, name) for name in ("dense_attention", "sparse_attention", "block_sparse_attention",
                                       "flash_attention")]
    targets += [(_dense, "dense_attention"), (_sparse, "sparse_attention"), (_sparse, "_gather_attention"),
                (_sparse, "_band_attention"), (_block_sparse, "block_sparse_attention"),
                (_flash, "flash_attention")]
    return targets


# ---- references ------------------------------------------------------------------------------------------------
def _ref_attention(q, k, v, indptr, indices):
    mask = P.CSR(np.asarray(indptr), np.asarray(indices)).to_mask(k.shape[0])
    out = R.dense_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), mask=mask)
    return out.astype(np.result_type(q, k, v))  # float32 inputs give float32


def _window_csr(n, window, causal=False):
    c = P.SlidingWindow(window, causal).neighbors(n)
    return c.indptr.astype(np.int64), c.indices.astype(np.int64)


# ---- input generators ------------------------------------------------------------------------------------------
def _neighbors_case(dilation=None, causal=None, wide=False, tiny=False):
    base = _dilated_case(dilation=dilation, causal=causal, wide=wide)

    def make(rng):
        kw = base(rng)
        if tiny:
            kw["n"] = int(rng.integers(1, 3))
        return kw

    return make


def _attention_case(kind):
    def make(rng):
        n, d = int(rng.integers(6, 40)), int(rng.integers(2, 17))
        q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
        if kind == "window":
            indptr, indices = _window_csr(n, int(rng.integers(1, 9)), causal=bool(rng.integers(2)))
        else:
            keep = rng.random((n, n)) < rng.uniform(0.1, 0.5)
            if kind == "empty rows":
                keep[rng.choice(n, size=max(1, n // 3), replace=False)] = False
            c = P.CSR.from_mask(keep)
            indptr, indices = c.indptr.astype(np.int64), c.indices.astype(np.int64)
        if kind == "large logits":
            q *= 3000.0  # logits in the thousands: exp overflows unless each row's max is subtracted first
        if kind == "float32":
            q, k, v = (x.astype(np.float32) for x in (q, k, v))
        return {"q": q, "k": k, "v": v, "indptr": indptr, "indices": indices}

    return make


# ---- the timing check ------------------------------------------------------------------------------------------
def _timing_inputs(rng) -> list:
    """(q, k, v, indptr, indices) for every size of TIMING_NS; built before the tripwire (they use the library)."""
    out = []
    for n in TIMING_NS:
        q, k, v = (rng.standard_normal((n, TIMING_D)).astype(np.float32) for _ in range(3))
        out.append((q, k, v, *_window_csr(n, TIMING_WINDOW)))
    return out


def _measure(fn, inputs, repeats) -> list:
    """Fastest of `repeats` calls at every size (the run least disturbed by other programs); a remote function
    (summative grading) is timed where it runs, in the learner's kernel, guarded there."""
    if hasattr(fn, "remote_times"):
        names = ("q", "k", "v", "indptr", "indices")
        return fn.remote_times([dict(zip(names, args)) for args in inputs], repeats)
    return [C.time_fn(fn, *args, warmup=1, repeats=repeats).min for args in inputs]


@dataclass
class LinearTime:
    """The learner's sparse_attention is right on a small case, and its time fits n^p with p < max_exponent."""

    max_exponent: float = MAX_EXPONENT
    budget: float = TIMING_BUDGET

    def __call__(self, expected, got) -> Verdict:
        if not callable(got):
            return Verdict(False, [f"expected your function sparse_attention, got a {type(got).__name__}"])
        rng = np.random.default_rng(0)
        small = _attention_case("window")(rng)
        want, inputs = _ref_attention(**small), _timing_inputs(rng)  # before the learner's code runs
        out = call_with_timeout(got, dict(small), 10.0, forbid=forbid_attention_api())
        if failure(out, 10.0, "sparse_attention") is None:
            if not ArrayClose(1e-4, 1e-5)(want, out.value).ok:
                return Verdict(False, ["your sparse_attention gives wrong values: make exercise 2 pass first"])
            out = call_with_timeout(self._fit, {"fn": got, "inputs": inputs}, self.budget,
                                    forbid=forbid_attention_api(), allow=(LinearTime._fit, _measure))
        why = failure(out, self.budget, "sparse_attention")
        if why is not None:
            tip = ": is the work per row O(w)?" if why.status == "timeout" else ""
            return Verdict(False, [why.line + tip])
        p, times = out.value
        shown = ", ".join(f"n={n}: {t * 1e3:.2f} ms" for n, t in zip(TIMING_NS, times))
        if p < self.max_exponent:
            show_measurement(f"linear_time: time grows as n^{p:.2f} (needs < {self.max_exponent}): {shown}")
            return Verdict(True)
        return Verdict(False, [f"time grows as n^{p:.2f} (needs < {self.max_exponent}): {shown}",
                               "a row should touch only its own keys: gather k[indices], never an (n, n) array"])

    def _fit(self, fn, inputs):
        times = _measure(fn, inputs, repeats=5)
        p = C.fit_power_law(TIMING_NS, times)[0]
        if self.max_exponent <= p < self.max_exponent + 0.4:  # near the line: a busy machine may have disturbed
            times = [min(a, b) for a, b in zip(times, _measure(fn, inputs, repeats=5))]  # a size; measure again
            p = C.fit_power_law(TIMING_NS, times)[0]
        return p, times


# ---- ★ attention sinks' neighbour lists -------------------------------------------------------------------------
def _sinks_case(kind):
    def make(rng):
        n = HUGE_N if kind == "huge" else int(rng.integers(5, 60))
        window = int(rng.integers(1, 9))
        sinks = {"no sinks": 0, "sinks inside the window": window + int(rng.integers(0, 3))}.get(
            kind, int(rng.integers(1, 5)))
        return {"n": n, "num_sinks": sinks, "window": window}

    return make

# ---- the questions ---------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "window_neighbors", 1,
        reference=lambda n, window, dilation, causal: P.DilatedWindow(window, dilation, causal).neighbors(n),
        compare=CSREqual(), forbid=forbid_pattern_api,
        hint="Missing or extra keys in window_neighbors: a row holds the keys at the allowed multiples of the dilation "
             "around its query, cut at the first and the last token.",
        cases=(
            Case("sliding window (dilation 1), non-causal", _neighbors_case(dilation=1, causal=False)),
            Case("sliding window (dilation 1), causal", _neighbors_case(dilation=1, causal=True),
                 hint="causal row i holds keys i - window + 1 .. i, clipped at 0"),
            Case("dilated window", _neighbors_case(),
                 hint="row i holds i + s·dilation for the allowed steps s, ascending"),
            Case("window wider than the sequence", _neighbors_case(wide=True),
                 hint="drop keys below 0 and at or above n; indptr counts what is left"),
            Case("one or two tokens", _neighbors_case(tiny=True)),
        ),
    ),
    Question(
        "sparse_attention", 2, reference=_ref_attention,
        compare=Diagnosed(ArrayClose(rtol=1e-4, atol=1e-5), same_dtype=True),
        forbid=forbid_attention_api,
        hint="Wrong outputs from sparse_attention: each query must take its softmax over its own neighbour list only; "
             "padding that makes rows equally long must weigh nothing.",
        cases=(
            Case("sliding-window neighbour lists", _attention_case("window")),
            Case("random neighbour lists", _attention_case("random")),
            Case("rows with no keys", _attention_case("empty rows"),
                 hint="a row with no keys returns zeros (not NaN): divide only where the sum is > 0"),
            Case("large logits", _attention_case("large logits"),
                 hint="inf or NaN with large logits: the exponent overflowed; subtract each row's largest real score first"),
            Case("float32 inputs", _attention_case("float32")),
        ),
    ),
    Question(
        "linear_time", 3, kind="value", answer_name="sparse_attention", points=3,
        reference=lambda: {"ns": TIMING_NS, "window": TIMING_WINDOW, "d": TIMING_D},  # for the record
        compare=LinearTime(),
        hint="Work on the (n, m) gathered keys only; an (n, n) array anywhere makes the time quadratic.",
    ),
    Question(
        "star_sink_neighbors", 4, answer_name="sink_neighbors", reference=lambda n, num_sinks, window: csr_pair(P.AttentionSinks(num_sinks, window), n),
        compare=CSREqual(), forbid=forbid_pattern_api,
        hint="Count each row's keys first (sinks not already in the window, then the window); every key then follows "
             "from its row and its place in the row.",
        cases=(
            Case("a few sinks", _sinks_case("plain")),
            Case("no sinks: a causal window", _sinks_case("no sinks")),
            Case("more sinks than the window", _sinks_case("sinks inside the window"),
                 hint="a key that is both a sink and in the window appears once"),
            Case(f"{HUGE_N:,} tokens (no n × n mask fits)", _sinks_case("huge")),
        ),
    ),
]
