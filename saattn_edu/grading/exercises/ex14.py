"""Checks for exercises/14_capstone_kernel.ipynb: the learner's whole block-sparse FlashAttention, forward and backward.

Every question compares with float64 autograd of dense masked attention (rows with no allowed key: output 0,
log-sum-exp -inf, zero gradients). The backward questions feed the exact `lse` and `delta`, so each exercise is
graded on its own. Failures are explained by symptom: NaN exactly in the empty rows, a constant factor, zeros where
a list of tiles was never visited, errors only at the ragged end, dK and dV swapped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saattn_edu import patterns as P

from ..compare import Verdict, _side_by_side
from ..spec import Case, Question
from .ex08 import forbid_library as _forbid08

D = 16  # head dim of the checks (tl.dot needs >= 16): the interpreter's cost is per tile, not per element
TILE = 32  # the notebook's query tile in the interpreter (ragged ends are measured against it)
LOG2E = 1.4426950408889634
KERNEL_SECONDS = 90.0  # a question's least time in `saattn grade`: Triton's interpreter runs every kernel on CPU


# ---- reference -----------------------------------------------------------------------------------------------
@dataclass
class Expected:
    """What the reference computed, and what the hints need to know about the case."""

    values: tuple  # float64 arrays, in the order the learner returns them
    names: tuple
    empty_rows: np.ndarray  # (n,) bool: queries with no allowed key
    scale: float
    n: int


def _dense(q, k, v, mask, do=None):
    """float64 torch autograd: (o, lse natural) and, with do, (dq, dk, dv); GQA by repeating kv heads."""
    import torch

    t = lambda x: torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True)  # noqa: E731
    qt, kt, vt = t(q), t(k), t(v)
    g = qt.shape[1] // kt.shape[1]
    kk, vv = kt.repeat_interleave(g, 1), vt.repeat_interleave(g, 1)
    m = torch.as_tensor(mask)
    any_row = m.any(-1)  # (n,)
    s = (qt @ kk.transpose(-1, -2)) / np.sqrt(q.shape[-1])
    s = s.masked_fill(~m, float("-inf"))
    lse = torch.logsumexp(s, -1)  # -inf on empty rows
    p = torch.softmax(torch.where(any_row[:, None], s, torch.zeros_like(s)), -1) * any_row[:, None]
    o = p @ vv
    if do is None:
        return o.detach().numpy(), lse.detach().numpy()
    grads = torch.autograd.grad(o, (qt, kt, vt), torch.tensor(np.asarray(do), dtype=torch.float64))
    return (o.detach().numpy(), lse.detach().numpy(), *(x.numpy() for x in grads))


def _expected(values, names, pattern, q):
    n = q.shape[-2]
    return Expected(tuple(values), tuple(names), ~pattern.mask(n).any(-1), 1 / np.sqrt(q.shape[-1]), n)


def ref_forward(q, k, v, pattern):
    o, lse = _dense(q, k, v, pattern.mask(q.shape[-2]))
    return _expected((o, lse), ("o", "lse"), pattern, q)


def ref_delta(o, do):
    delta = (np.asarray(o, np.float64) * np.asarray(do, np.float64)).sum(-1)
    return Expected((delta,), ("delta",), np.zeros(o.shape[-2], bool), 1.0, o.shape[-2])


def ref_dkdv(q, k, v, do, lse, delta, pattern):
    _, _, _, dk, dv = _dense(q, k, v, pattern.mask(q.shape[-2]), do)
    return _expected((dk, dv), ("dk", "dv"), pattern, q)


def ref_dq(q, k, v, do, lse, delta, pattern):
    dq = _dense(q, k, v, pattern.mask(q.shape[-2]), do)[2]
    return _expected((dq,), ("dq",), pattern, q)


def ref_grads(q, k, v, do, pattern):
    o, _, dq, dk, dv = _dense(q, k, v, pattern.mask(q.shape[-2]), do)
    return _expected((o, dq, dk, dv), ("o", "dq", "dk", "dv"), pattern, q)


# ---- comparison with hints by symptom ------------------------------------------------------------------------
def _factor_hint(c: float, scale: float) -> str:
    known = {scale: "a factor `scale` too many", 1 / scale: "the `scale` is missing (dK and dQ are scale · dSᵀQ, "
             "scale · dS K)", LOG2E: "log2(e) too many (exp2 vs exp: scores arrive in log2 units)",
             1 / LOG2E: "a log2 / natural-log mix-up (LSE is m + log2(l), in log2 units)", 2.0: "counted twice",
             0.5: "half of it: one list (or one head) was skipped"}
    for value, why in known.items():
        if abs(c - value) < 1e-3 * max(1.0, abs(value)):
            return f"everything is off by the factor {c:.4g}: {why}"
    return f"everything is off by the factor {c:.4g} (a scale or a log2/ln mix-up?)"


def _symptom(name: str, e: np.ndarray, g: np.ndarray, exp: Expected, others: dict) -> str:
    """One line naming the likely cause of the difference between expected e and got g."""
    rows_axis = e.ndim - 2 if name not in ("lse", "delta") else e.ndim - 1
    bad = ~np.isfinite(g) & np.isfinite(e)
    empty = exp.empty_rows
    if bad.any():
        bad_rows = np.moveaxis(bad, rows_axis, -1).reshape(-1, exp.n).any(0) if name not in ("dk", "dv") else None
        if bad_rows is not None and empty.any() and bad_rows[empty].all():
            return ("NaN in the rows that see no key: exp2(-inf - (-inf)); use 0 in place of a running max of -inf "
                    "(m_safe), divide by l only where l > 0, and mask p with tl.where (never multiply)")
        return ("NaN or inf where a finite value belongs: a row with nothing allowed yet in a tile (running max "
                "-inf: use 0 in its place inside exp2), a load without its mask (the checks put NaN past n), or "
                "exp2 of a score that should have been masked")
    if name == "lse" and np.isneginf(e).any() and not np.isneginf(g[np.isneginf(e)]).all():
        return "rows with no allowed key must get lse = -inf (m = -inf, log2(l) with l replaced by 1)"
    if name == "lse" and "o" in others.get("_passed", ()):
        return ("o is right but lse is not: store m + log2(l), both in log2 units (tl.math.log2, not tl.log); the "
                "launch code converts to natural log")
    fin = np.isfinite(e)
    ee, gg = e[fin], g[fin].astype(np.float64)
    denom = float(ee @ ee)
    if denom > 0:
        c = float(ee @ gg) / denom
        if abs(c - 1) > 1e-3 and np.linalg.norm(gg - c * ee) < 1e-3 * np.linalg.norm(gg):
            return _factor_hint(c, exp.scale)
    for other, o in others.items():  # dk where dv belongs, ...
        if other not in (name, "_passed") and o.shape == g.shape and np.allclose(g, o, rtol=1e-3, atol=1e-4):
            return f"this is {other}, not {name}: two results are swapped"
    if np.abs(e).max() > 0:
        zero_where = (np.abs(g) < 1e-12) & (np.abs(e) > 1e-6)
        if zero_where.sum() > 0.05 * e.size:
            return ("zeros where values belong: a list of tiles was never visited (the full ones, or the partial "
                    "ones, or the other heads of a group)")
    err = np.abs(g - e)
    err = np.moveaxis(err, rows_axis, -1).reshape(-1, exp.n).max(0) if name not in ("dk", "dv") else None
    ragged = exp.n - exp.n % TILE if exp.n % TILE else exp.n
    if err is not None and ragged < exp.n and err[:ragged].max() < 1e-5 < err[ragged:].max():
        return f"wrong only in the last, ragged tile (rows {ragged}..{exp.n - 1}): a missing bounds mask"
    if err is not None and empty.any() and err[~empty].max() < 1e-5:
        return "wrong only in the rows that see no key: they must give 0"
    return ""


@dataclass
class Results:
    """The learner's arrays (one, or a tuple) against Expected, within rtol / atol; -inf must match -inf."""

    rtol: float = 2e-4
    atol: float = 2e-5

    def __call__(self, expected: Expected, got) -> Verdict:
        names, k = expected.names, len(expected.names)
        got = (got,) if k == 1 and not isinstance(got, tuple) else got
        if not isinstance(got, tuple) or len(got) != k:
            return Verdict(False, [f"expected {'a tuple ' if k > 1 else ''}({', '.join(names)}), got "
                                   f"{type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, tuple)
                                                              else "")])
        others = {nm: np.asarray(e) for nm, e in zip(names, expected.values)}
        others["_passed"] = passed = []
        for name, e, g in zip(names, expected.values, got):
            if type(g).__module__.startswith("torch"):
                return Verdict(False, [f"{name}: a torch tensor; expected a NumPy array (.cpu().numpy())"])
            if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
                return Verdict(False, [f"{name}: expected a float NumPy array, got {type(g).__name__}"])
            if g.shape != e.shape:
                return Verdict(False, [f"{name}: expected shape {e.shape}, got {g.shape}"])
            inf = np.isneginf(e)
            ok = np.where(inf, np.isneginf(g), np.abs(g - np.where(inf, 0, e)) <= self.atol + self.rtol * np.abs(
                np.where(inf, 0, e)))
            if ok.all():
                passed.append(name)
                continue
            idx = tuple(int(i) for i in np.argwhere(~ok)[0])
            lines = [f"{name}: {int((~ok).sum())} of {ok.size} entries wrong; first at {list(idx)}: expected "
                     f"{e[idx]:.6g}, got {g[idx]:.6g}"]
            why = _symptom(name, np.asarray(e), np.asarray(g), expected, others)
            if why:
                lines.append("likely cause: " + why)
            if e.ndim >= 2:
                lines += _side_by_side(np.where(inf, -np.inf, e), g, idx)
            return Verdict(False, lines)
        return Verdict(True)


# ---- cases -----------------------------------------------------------------------------------------------------
def _arr(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _pattern(rng, kind: str, n: int):
    if kind == "causal":
        return P.Causal()
    if kind == "sliding":
        return P.SlidingWindow(int(rng.integers(12, 40)), causal=True)
    block = int(rng.choice([12, 20, 24, 40]))  # not the tiles (32 × 16): tiles hold parts of several blocks
    nb = -(-n // block)
    layout = rng.random((nb, nb)) < 0.35
    layout[np.arange(nb), rng.integers(0, nb, nb)] = True
    if kind == "empty rows":  # two query blocks see nothing: their rows give 0, their gradients 0
        layout[rng.choice(nb, 2, replace=False)] = False
    return P.BlockSparse(layout, block)


def _n(rng, kind):
    if kind == "causal":
        return int(rng.integers(70, 97))
    return int(rng.integers(70, 120)) | 1  # odd: never a multiple of the tiles


KINDS = {"causal": "causal, two heads", "sliding": "causal sliding window, n not a multiple of the tile",
         "layout": "random block layout, blocks of 12-40 across the 32 × 16 tiles",
         "empty rows": "block layout with fully masked rows (output 0, lse -inf, gradients 0, never NaN)"}


def _fwd_case(kind):
    def make(rng):
        n = _n(rng, kind)
        h = 2 if kind == "causal" else 1
        logit = 3.0 if kind == "layout" else 1.0  # larger logits: the running max must be subtracted
        return {"q": _arr(rng, 1, h, n, D, scale=logit), "k": _arr(rng, 1, h, n, D), "v": _arr(rng, 1, h, n, D),
                "pattern": _pattern(rng, kind, n)}

    return make


def _bwd_case(kind, with_stats=True, heads=(1, 1)):
    def make(rng):
        n = _n(rng, kind)
        h, h_kv = heads if kind != "causal" else (2, 2)
        q, k, v = _arr(rng, 1, h, n, D), _arr(rng, 1, h_kv, n, D), _arr(rng, 1, h_kv, n, D)
        do, pattern = _arr(rng, 1, h, n, D), _pattern(rng, kind, n)
        out = {"q": q, "k": k, "v": v, "do": do}
        if with_stats:
            o, lse = _dense(q, k, v, pattern.mask(n))
            out["lse"], out["delta"] = lse, (o * do.astype(np.float64)).sum(-1).astype(np.float32)
        return {**out, "pattern": pattern}

    return make


def _strided_case(rng):
    """Causal P.Strided(l), l of 8-16, n odd (never a multiple of l): two heads, larger logits."""
    n, l = int(rng.integers(70, 120)) | 1, int(rng.choice([8, 12, 16]))
    q, k, v, do = _arr(rng, 1, 2, n, D, scale=2.0), _arr(rng, 1, 2, n, D), _arr(rng, 1, 2, n, D), _arr(rng, 1, 2, n, D)
    return {"q": q, "k": k, "v": v, "do": do, "pattern": P.Strided(l)}


def _delta_case(shape):
    def make(rng):
        return {"o": _arr(rng, *shape), "do": _arr(rng, *shape)}

    return make


def forbid_library() -> list:
    from saattn_edu.accel import block_sparse_flash as bsf

    return _forbid08() + [(bsf, "_backward"), (bsf.BlockSparseFlash, "backward")]


_FWD_HINT = ("fwd_tiles: m_new = max(m, rowmax(qk)); 0 in place of m_new = -inf; p = exp2(qk - m); alpha = "
             "exp2(m_old - m); l and acc rescaled by alpha; fwd_kernel: full tiles, then partial ones (MASKED); "
             "O = acc / l (0 where l = 0), LSE = m + log2(l)")
_BWD_HINT = ("recompute p = exp2(qk · qk_scale - lse) (0 where the bits are 0 or the row is padding), dS = p ∘ (dP - "
             "delta), then dV += pᵀ dO, dK += dSᵀ Q · scale, dQ += dS K · scale")


ANSWERS = {"forward": "capstone_forward", "delta": "capstone_delta", "dkdv": "capstone_dkdv", "dq": "capstone_dq",
           "autograd": "capstone_grads", "star_gqa": "capstone_grads", "star_strided": "capstone_grads"}  # the notebook's wrappers the grader calls


def _q(name, number, reference, cases, hint, rtol=2e-4, atol=2e-5):
    return Question(name, number, reference=reference, compare=Results(rtol, atol), forbid=forbid_library,
                    hint=hint, cases=cases, answer_name=ANSWERS[name], min_timeout=KERNEL_SECONDS)


QUESTIONS = [
    _q("forward", 1, ref_forward, tuple(
        Case(f"forward: {KINDS[k]}", _fwd_case(k), points=1.0,
             hint="a partial tile needs its bits: Masks + mid·BM·BN + r·BN + c" if k == "layout" else
             ("an empty row has m = -inf and l = 0: use 0 in place of m inside exp2, 1 in place of l"
              if k == "empty rows" else ""))
        for k in KINDS), _FWD_HINT, rtol=1e-4, atol=1e-5),
    _q("delta", 2, ref_delta, (
        Case("delta = rowsum(o · dO), (1, 2, 100, 16)", _delta_case((1, 2, 100, 16))),
        Case("delta, (2, 3, 77, 32): rows not a multiple of BR", _delta_case((2, 3, 77, 32))),
    ), "multiply o and dO elementwise and sum over d (axis 1 of the (BR, D) tile); mask rows >= rows",
        rtol=1e-5, atol=1e-5),
    _q("dkdv", 3, ref_dkdv, tuple(Case(f"dK, dV: {KINDS[k]}", _bwd_case(k)) for k in KINDS), _BWD_HINT),
    _q("dq", 4, ref_dq, tuple(Case(f"dQ: {KINDS[k]}", _bwd_case(k)) for k in KINDS), _BWD_HINT),
    _q("autograd", 5, ref_grads, (
        Case("o, dq, dk, dv through autograd: causal sliding window", _bwd_case("sliding", with_stats=False)),
        Case("o, dq, dk, dv through autograd: fully masked rows", _bwd_case("empty rows", with_stats=False)),
    ), "forward: run_forward, ctx.save_for_backward(q, k, v, o, lse); backward: run_delta, run_dkdv, run_dq; return "
       "dq, dk, dv, None, None (one per forward input)"),
    _q("star_gqa", 6, ref_grads, (
        Case("★ GQA, H = 4 query heads on H_kv = 2: o, dq, dk, dv", _bwd_case("empty rows", False, (4, 2))),
    ), "Each key/value head serves a group of consecutive query heads: the forward and dQ read their group's head; "
       "dK and dV of a key/value head add up what every query head of its group contributes."),
    _q("star_strided", 7, ref_grads, (
        Case("★ strided by residue: P.Strided(l), l of 8-16, n not a multiple of l: o, dq, dk, dv", _strided_case),
    ), "each pass covers part of every row's keys: the merged output weights each pass by its share of the mass "
       "(2^lse), and each pass's backward needs the final lse and delta, not its own"),
]
