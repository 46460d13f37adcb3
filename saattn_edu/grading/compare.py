"""Comparisons: is the learner's answer the expected one? Each says why not, in words a learner can act on."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

_KIND_NAMES = {"b": "bool", "i": "integer", "f": "float"}
_SLICE = 8  # side of the window shown around the first difference


@dataclass
class Verdict:
    ok: bool
    lines: list[str] = field(default_factory=list)  # what was expected vs got, on failure
    status: str = ""  # overrides "failed" when not ok: e.g. "not attempted" (a comparison that runs the answer)


def _describe_type(x) -> str:
    if isinstance(x, np.ndarray):
        return f"a {x.dtype} array of shape {x.shape}"
    return f"a {type(x).__name__}"


def _not_an_array(got) -> str | None:
    """Why `got` is not a NumPy array, phrased as advice; None when it is one."""
    if got is None:
        return "returned None: did you forget `return`?"
    if isinstance(got, (list, tuple)):
        return f"returned a {type(got).__name__}; expected a NumPy array (build it with NumPy, or np.asarray(...))"
    if type(got).__module__.startswith("torch"):
        return "returned a torch tensor; expected a NumPy array (.numpy())"
    if isinstance(got, np.ma.MaskedArray):
        return "returned a masked array (np.ma); expected a plain NumPy array of real values"
    if not isinstance(got, np.ndarray):
        return f"returned {_describe_type(got)}; expected a NumPy array"
    if type(got) is not np.ndarray:
        return f"returned a {type(got).__name__}, a subclass of np.ndarray; expected a plain NumPy array (np.asarray)"
    return None


def _grid(a: np.ndarray) -> list[str]:
    if a.dtype == np.bool_:
        return [" ".join("1" if v else "." for v in row) for row in np.atleast_2d(a)]
    return [line for line in np.array2string(np.atleast_2d(a), precision=4, max_line_width=60).splitlines()]


def _window(idx: tuple, shape: tuple) -> tuple:
    return tuple(slice(max(0, i - _SLICE // 2), min(s, max(0, i - _SLICE // 2) + _SLICE)) for i, s in zip(idx, shape))


def _side_by_side(expected: np.ndarray, got: np.ndarray, idx: tuple) -> list[str]:
    """The slice around index `idx` of both arrays, side by side."""
    if expected.ndim > 2:  # show the last two axes at the leading index of the difference
        lead = tuple(idx[:-2])
        expected, got, idx = expected[lead], got[lead], idx[-2:]
    win = _window(idx, expected.shape)
    where = ", ".join(f"{s.start}:{s.stop}" for s in win)
    left, right = _grid(expected[win]), _grid(got[win])
    width = max(len(s) for s in left + [f"expected[{where}]"])
    out = [f"{'expected[' + where + ']':<{width}}   got[{where}]"]
    out += [f"{a:<{width}}   {b}" for a, b in zip(left, right)]
    return out


@dataclass
class ArrayEqual:
    """Exact equality of arrays of one dtype kind ('b' bool, 'i' integer); shape and dtype kind checked first."""

    kind: str = "b"

    def __call__(self, expected, got) -> Verdict:
        why = _not_an_array(got) or self._kind_problem(got)
        if why:
            return Verdict(False, [why])
        if got.shape != expected.shape:
            return Verdict(False, [f"expected shape {expected.shape}, got shape {got.shape}"])
        diff = got != expected
        if not diff.any():
            return Verdict(True)
        idx = tuple(int(k) for k in np.argwhere(diff)[0])
        lines = [
            f"{int(diff.sum())} of {diff.size} entries differ; first at {list(idx)}: "
            f"expected {expected[idx].item()!r}, got {got[idx].item()!r}"
        ]
        return Verdict(False, lines + _side_by_side(expected, got, idx))

    def _kind_problem(self, got) -> str | None:
        kind = "i" if got.dtype.kind == "u" else got.dtype.kind
        if kind != self.kind:
            tip = " (comparisons give booleans; or .astype(bool))" if self.kind == "b" else ""
            return f"returned dtype {got.dtype}; expected a {_KIND_NAMES[self.kind]} array{tip}"
        return None


@dataclass
class ArrayClose:
    """Float arrays equal within rtol/atol; NaN and inf are reported where they are."""

    rtol: float = 1e-5
    atol: float = 1e-6

    def __call__(self, expected, got) -> Verdict:
        why = _not_an_array(got)
        if why:
            return Verdict(False, [why])
        if got.dtype.kind not in "fiu":
            return Verdict(False, [f"returned dtype {got.dtype}; expected a float array"])
        if got.shape != expected.shape:
            return Verdict(False, [f"expected shape {expected.shape}, got shape {got.shape}"])
        bad = ~np.isfinite(got)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            where = f"first at {list(idx)}: {got[idx].item()!r}"
            return Verdict(False, [f"{int(bad.sum())} entries are NaN or inf; {where}"])
        err = np.abs(got.astype(np.float64) - expected)
        if np.all(err <= self.atol + self.rtol * np.abs(expected)):
            return Verdict(True)
        idx = tuple(int(k) for k in np.unravel_index(np.argmax(err), err.shape))
        lines = [f"max error {err[idx]:.3g} at {list(idx)} (tolerance {self.atol:g} + {self.rtol:g}·|expected|)"]
        return Verdict(False, lines + _side_by_side(np.asarray(expected), got, idx))


@dataclass
class IntEqual:
    """An exact integer (Python int or NumPy integer; not a float, not a bool)."""

    def __call__(self, expected, got) -> Verdict:
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Integral):
            if isinstance(got, numbers.Real) and float(got).is_integer():
                return Verdict(False, [f"returned the float {got!r}; expected an int (use // and int arithmetic)"])
            return Verdict(False, [f"returned {_describe_type(got)} {got!r}; expected an int"])
        if int(got) != int(expected):
            return Verdict(False, [f"expected {int(expected)}, got {int(got)} (off by {int(got) - int(expected):+d})"])
        return Verdict(True)


@dataclass
class NumberClose:
    """A number within a relative tolerance (value questions)."""

    rtol: float = 1e-6

    def __call__(self, expected, got) -> Verdict:
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Real):
            return Verdict(False, [f"got {_describe_type(got)} {got!r}; expected a number"])
        if not np.isfinite(float(got)):
            return Verdict(False, [f"got {got!r}; expected a finite number"])
        if abs(float(got) - float(expected)) <= self.rtol * max(1.0, abs(float(expected))):
            return Verdict(True)
        return Verdict(False, [f"expected {expected!r}, got {got!r}"])


@dataclass
class CSREqual:
    """A pair (indptr, indices) of integer arrays, e.g. a patterns.CSR, equal to the expected one."""

    def __call__(self, expected, got) -> Verdict:
        if not isinstance(got, tuple) or len(got) != 2:
            return Verdict(False, [f"returned {_describe_type(got)}; expected a pair (indptr, indices)"])
        for name, e, g in zip(("indptr", "indices"), expected, got):
            v = ArrayEqual("i")(np.asarray(e), g)
            if not v.ok:
                return Verdict(False, [f"{name}: {line}" if k == 0 else line for k, line in enumerate(v.lines)])
        return Verdict(True)
