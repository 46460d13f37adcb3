"""Plain data: the only thing that crosses between a learner's code and the grader.

Plain means: None, bool, int, float, str; NumPy arrays of booleans or numbers (exactly `np.ndarray`, never a
masked array or another subclass); tuples, lists and dicts of those; and the library's patterns as (class name,
constructor arguments). `to_plain` reads a learner's value without calling any method the learner could have
overridden (`tuple.__iter__`, not `iter`), so no learner code runs while it is converted.

`write(value, folder, stem)` / `read(folder, stem)` carry plain data through files: one JSON manifest and one
`.npy` file per array, read back with `np.load(allow_pickle=False)`; dtypes, names and sizes are checked.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

KINDS = "biuf"  # bool, signed / unsigned integer, float
MAX_DEPTH = 8
MAX_ITEMS = 100_000  # entries of all containers together
MAX_JSON_BYTES = 4 << 20
MAX_ARRAY_BYTES = 256 << 20
_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.npy$")


class PlainError(ValueError):
    """The value is not plain data; the message says what it is, in words a learner can act on."""


def _pattern_classes() -> dict:
    from saattn_edu import patterns as P

    return {name: obj for name in dir(P) if isinstance(obj := getattr(P, name), type) and issubclass(obj, P.Pattern)}


def _pattern_params(x) -> dict:
    if type(x).__name__ == "BlockSparse":
        return {"layout": np.array(x.layout, dtype=bool), "block": int(x.block)}
    return type(x)._params(x)  # the class's own method on the library's own class


def to_plain(x, _budget=None, _depth: int = 0):
    """x as plain data (a fresh copy); PlainError when some part of it is not plain."""
    budget = [MAX_ITEMS] if _budget is None else _budget
    budget[0] -= 1
    if budget[0] < 0 or _depth > MAX_DEPTH:
        raise PlainError(f"a value nested deeper than {MAX_DEPTH} levels or with more than {MAX_ITEMS} entries")
    t = type(x)
    if x is None or t in (bool, int, float, str):
        return x
    if t is PatternSpec:
        return PatternSpec(str.__str__(x[0]), to_plain(x[1], budget, _depth + 1))
    if t is np.ndarray:
        if x.dtype.kind not in KINDS or x.dtype.names is not None:
            raise PlainError(f"an array of dtype {x.dtype}; expected an array of numbers or booleans")
        return np.array(x, copy=True)
    if isinstance(x, np.ma.MaskedArray):
        raise PlainError("a masked array (np.ma); return a plain NumPy array (np.asarray(...) of real values)")
    if isinstance(x, np.ndarray):
        raise PlainError(f"a {t.__name__}, a subclass of np.ndarray; return a plain NumPy array (np.asarray(x))")
    if isinstance(x, np.generic) and t.__module__ == "numpy" and x.dtype.kind in KINDS:
        return x.item()
    if isinstance(x, (tuple, list)):
        items = tuple.__iter__(x) if isinstance(x, tuple) else list.__iter__(x)
        out = [to_plain(v, budget, _depth + 1) for v in items]
        return tuple(out) if isinstance(x, tuple) else out
    if isinstance(x, dict):
        return {to_plain(k, budget, _depth + 1): to_plain(v, budget, _depth + 1) for k, v in dict.items(x)}
    if t.__module__.startswith("torch"):
        raise PlainError(f"a torch {t.__name__}; expected a NumPy array (.numpy())")
    classes = _pattern_classes()
    if classes.get(t.__name__) is t:
        return PatternSpec(t.__name__, to_plain(_pattern_params(x), budget, _depth + 1))
    raise PlainError(f"a {t.__name__}; expected NumPy arrays, numbers, tuples or lists")


class PatternSpec(tuple):
    """(class name, constructor arguments) of one of the library's patterns; `build()` makes the pattern."""

    def __new__(cls, name: str, params: dict):
        return super().__new__(cls, (name, params))

    def build(self):
        name, params = self
        cls = _pattern_classes().get(name)
        if cls is None:
            raise PlainError(f"unknown pattern class {name!r}")
        return cls(**params)


def build_patterns(x):
    """x with every PatternSpec replaced by its pattern (lists, tuples and dicts searched)."""
    if isinstance(x, PatternSpec):
        return x.build()
    if type(x) in (list, tuple):
        return type(x)(build_patterns(v) for v in x)
    if type(x) is dict:
        return {k: build_patterns(v) for k, v in x.items()}
    return x


# ----------------------------------------------------------------------------------------------------------------
# Files: a JSON manifest and .npy arrays
# ----------------------------------------------------------------------------------------------------------------
def write(value, folder, stem: str) -> None:
    """Write plain `value` (to_plain first) as folder/stem.json plus folder/stem-K.npy for its arrays."""
    folder, arrays = Path(folder), []

    def encode(x):
        if isinstance(x, PatternSpec):
            return {"__pattern__": x[0], "params": encode(x[1])}
        if isinstance(x, np.ndarray):
            name = f"{stem}-{len(arrays)}.npy"
            arrays.append((name, x))
            return {"__npy__": name}
        if isinstance(x, tuple):
            return {"__tuple__": [encode(v) for v in x]}
        if isinstance(x, list):
            return [encode(v) for v in x]
        if isinstance(x, dict):
            return {"__dict__": [[encode(k), encode(v)] for k, v in x.items()]}
        return x

    tree = encode(to_plain(value))
    for name, a in arrays:
        np.save(folder / name, a, allow_pickle=False)
    tmp = folder / f".{stem}.json.part"
    tmp.write_text(json.dumps(tree), encoding="utf-8")
    os.replace(tmp, folder / f"{stem}.json")  # the manifest appears whole, after its arrays


def read(folder, stem: str):
    """The plain value written by `write`; PlainError for anything else (pickles, object arrays, odd names)."""
    folder = Path(folder)
    text = _regular_file(folder / f"{stem}.json", MAX_JSON_BYTES).decode("utf-8")
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlainError(f"the manifest {stem}.json is not JSON: {exc}") from None
    return _decode(tree, folder, [MAX_ITEMS], 0)


def _decode(x, folder: Path, budget: list, depth: int):
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH + 2:
        raise PlainError("the manifest is nested too deep or holds too many entries")
    if x is None or type(x) in (bool, int, float, str):
        return x
    if type(x) is list:
        return [_decode(v, folder, budget, depth + 1) for v in x]
    if type(x) is not dict or len(x) not in (1, 2):
        raise PlainError(f"unexpected entry in the manifest: {str(x)[:80]}")
    if "__npy__" in x:
        return _load_array(folder, x["__npy__"])
    if "__tuple__" in x:
        return tuple(_decode(v, folder, budget, depth + 1) for v in _list(x["__tuple__"]))
    if "__dict__" in x:
        pairs = [_decode(p, folder, budget, depth + 1) for p in _list(x["__dict__"])]
        if not all(type(p) is list and len(p) == 2 and type(p[0]) in (int, str, bool, float) for p in pairs):
            raise PlainError("a dict entry of the manifest is not a (key, value) pair")
        return {k: v for k, v in pairs}
    if "__pattern__" in x and type(x["__pattern__"]) is str:
        params = _decode(x.get("params", {"__dict__": []}), folder, budget, depth + 1)
        if type(params) is not dict or not all(type(k) is str for k in params):
            raise PlainError("a pattern's parameters must be a dict of names")
        return PatternSpec(x["__pattern__"], params)
    raise PlainError(f"unexpected entry in the manifest: {str(x)[:80]}")


def _list(x) -> list:
    if type(x) is not list:
        raise PlainError("a tuple or dict of the manifest is not a list")
    return x


def _load_array(folder: Path, name) -> np.ndarray:
    if type(name) is not str or not _NAME.match(name):
        raise PlainError(f"bad array file name {str(name)[:60]!r}")
    path = folder / name
    _regular_file(path, MAX_ARRAY_BYTES + 4096, read=False)
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as exc:  # an object array needs pickle: refused
        raise PlainError(f"{name} is not a plain array: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or forged file
        raise PlainError(f"{name} cannot be read as .npy: {type(exc).__name__}: {exc}") from None
    if type(a) is not np.ndarray or a.dtype.kind not in KINDS or a.dtype.names is not None:
        raise PlainError(f"{name} holds dtype {getattr(a, 'dtype', type(a).__name__)}; expected numbers or booleans")
    return a


def _regular_file(path: Path, limit: int, read: bool = True) -> bytes:
    """The bytes of a regular file (not a link, not a device) no larger than `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise PlainError(f"{path.name} is missing or not a regular file ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000) or st.st_size > limit:
            raise PlainError(f"{path.name} is not a regular file of at most {limit} bytes")
        return os.read(fd, limit + 1) if read else b""
    finally:
        os.close(fd)
