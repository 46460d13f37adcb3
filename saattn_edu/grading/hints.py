"""Hints by symptom: a comparison wrapper that reads the learner's wrong output and names the likely mistake.

`Diagnosed(ArrayClose(...), where="tile_update")` compares as the wrapped comparison does; when that fails it adds
lines such as "likely: NaN exactly on the rows that have no allowed key ... (look at tile_update)". With
`same_dtype=True` it also requires the learner's dtype to equal the expected one (float32 in, float32 out).
The hook into the grading core is only the comparison's returned Verdict: nothing in runner.py changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .compare import Verdict


def _arrays(expected, got):
    if not isinstance(got, np.ndarray) or not isinstance(expected, np.ndarray):
        return None
    if got.shape != expected.shape or got.dtype.kind not in "biuf" or expected.dtype.kind not in "biuf":
        return None
    return expected.astype(np.float64), got.astype(np.float64)


def symptoms(expected, got) -> list[str]:
    """What the difference between `got` and `expected` looks like, most specific first (may be empty)."""
    pair = _arrays(expected, got)
    if pair is None:
        if (isinstance(got, np.ndarray) and isinstance(expected, np.ndarray) and got.ndim == expected.ndim == 2
                and got.shape == expected.shape[::-1] and got.shape[0] != got.shape[1]):
            return ["the shape is transposed: rows are queries, columns keys"]
        return []
    e, g = pair
    out = []
    nan = np.isnan(g)
    if nan.any():
        empty = np.all(e == 0, axis=-1) if e.ndim else np.array(e == 0)
        if e.ndim and np.array_equal(np.any(nan, axis=-1), empty):
            return ["NaN exactly on the rows with no allowed key: 0 / 0 from an empty row's sum (or -inf - -inf from "
                    "its max); use 0 in place of -inf and divide only where the sum is > 0"]
        return ["NaN or inf appears: an exp of an unshifted logit overflowed, or -inf - -inf; subtract the (finite) "
                "row max first"]
    if not np.isfinite(g).all():
        return ["inf appears: exp overflowed; subtract the row max before np.exp"]
    if e.ndim == 2 and e.shape[0] == e.shape[1] and not np.array_equal(e, e.T) and np.allclose(g, e.T):
        return ["your output is the expected one transposed: rows are queries i, columns keys j"]
    if e.ndim >= 1 and e.shape[-1] > 1 and np.allclose(g, e[..., ::-1]) and not np.allclose(e, e[..., ::-1]):
        return ["your output is the expected one in reverse order"]
    if e.ndim >= 1 and e.shape[0] > 1 and np.allclose(g, e[::-1]) and not np.allclose(e, e[::-1]):
        return ["your output is the expected one in reverse order (along the first axis)"]
    diff = g - e
    if e.size > 1 and np.ptp(diff) < 1e-9 and abs(diff.flat[0]) > 1e-9:
        return [f"every entry is off by the same constant {diff.flat[0]:+.6g}: an off-by-one in a bound or offset?"]
    nz = np.abs(e) > 1e-12
    if nz.sum() > 1:
        ratio = g[nz] / e[nz]
        if np.ptp(ratio) < 1e-6 and abs(ratio[0] - 1) > 1e-6 and ratio[0] != 0:
            return [f"every entry is {ratio[0]:.6g} times the expected one: a missing or extra scale factor "
                    "(1 / sqrt(d)? a normalisation?)"]
    if e.ndim >= 1:
        lost = np.all(g == 0, axis=-1) & np.any(e != 0, axis=-1)
        if lost.any():
            where = np.argwhere(lost)[0].tolist()
            out.append(f"{int(lost.sum())} rows are all zeros where values were expected (first at {where}): a loop "
                       "that never ran over them, or a range that stops too early?")
    if expected.dtype == np.bool_ and got.dtype == np.bool_:
        if (g <= e).all():
            out.append(f"your mask allows {int((e > g).sum())} pairs too few and none too many: a condition too strict "
                       "(< where <= belongs, a reach one too short?)")
        elif (g >= e).all():
            out.append(f"your mask allows {int((g > e).sum())} pairs too many and none too few: a condition too loose "
                       "or a missing test")
    return out


@dataclass
class Diagnosed:
    """The wrapped comparison, plus a symptom hint naming the function the mistake is likely in."""

    inner: Callable
    where: str = ""  # the function to look at, e.g. "tile_update"; "" for the function under test
    same_dtype: bool = False  # the output's dtype must equal the expected one (float32 inputs give float32)

    def __call__(self, expected, got) -> Verdict:
        if (self.same_dtype and isinstance(got, np.ndarray) and isinstance(expected, np.ndarray)
                and got.dtype.kind == "f" and got.dtype != expected.dtype):
            return Verdict(False, [f"returned {got.dtype} for {expected.dtype} inputs: keep the inputs' dtype "
                                   f"(allocate with dtype=q.dtype, or .astype(q.dtype) at the end)"])
        verdict = self.inner(expected, got)
        if verdict.ok or verdict.status:
            return verdict
        where = f" (look at {self.where})" if self.where else ""
        extra = [f"likely: {s}{where}" for s in symptoms(expected, got)]
        return Verdict(False, list(verdict.lines[:1]) + extra + list(verdict.lines[1:]), verdict.status)


def show_measurement(line: str) -> None:
    """A passing measured check shows what it measured (the report shows no lines for a passing case)."""
    print(f"measured: {line}")
