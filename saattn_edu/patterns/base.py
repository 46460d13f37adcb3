"""Pattern base class: one vectorised rule `allowed(i, j, n)`, every view derived from it.

A pattern says which key j a query i may attend to. Subclasses write the rule once, with operators that work on
NumPy arrays and on torch tensors alike (`&`, `|`, `%`, `//`, comparisons, `abs`), so the same rule gives the
boolean mask, the CSR neighbour lists, the block layout and FlexAttention's `mask_mod`. Views that can be
computed faster than by evaluating the rule (closed-form pair counts, banded neighbour lists) are overridden.
"""
from __future__ import annotations

import abc
import math
import numbers
from typing import NamedTuple

import numpy as np

MAX_MASK_ELEMENTS = 2**30  # mask(n) refuses more than 1 GiB of booleans: use neighbors(n) for long sequences
_CHUNK_ELEMENTS = 2**22  # rows are evaluated in chunks of about this many (i, j) pairs: bounded memory


# ----------------------------------------------------------------------------------------------------------------
# Argument checks: every constructor names the parameter and the value it got.
# ----------------------------------------------------------------------------------------------------------------
def check_int(name: str, value, minimum: int | None = None) -> int:
    """Return `value` as an int, or raise TypeError / ValueError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_n(n) -> int:
    """Sequence length: a non-negative integer."""
    return check_int("n", n, minimum=0)


def check_block(block) -> int:
    return check_int("block", block, minimum=1)


# ----------------------------------------------------------------------------------------------------------------
# Array-library helpers: the same rule runs on NumPy arrays and on torch tensors (FlexAttention's mask_mod).
# ----------------------------------------------------------------------------------------------------------------
def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


_DEVICE_TABLES: dict = {}  # (id(table), device) -> (table, tensor): one upload per table and device


def _device_table(table: np.ndarray, device):
    """The torch copy of `table` on `device`, made once and reused.

    Compiled FlexAttention cannot create a tensor while it lowers the mask_mod ("Buffers cannot be created while
    lowering"); the first, eager call (create_block_mask) uploads the table and the traced ones find it here.
    """
    import torch

    key = (id(table), str(device))
    hit = _DEVICE_TABLES.get(key)
    if hit is None or hit[0] is not table:  # keeping the array in the entry keeps its id from being reused
        hit = (table, torch.as_tensor(np.array(table), device=device))  # a writeable copy: torch warns otherwise
        _DEVICE_TABLES[key] = hit
    return hit[1]


def lookup(table: np.ndarray, *indices):
    """`table[indices]` for NumPy or torch index arrays; indices are clamped into range (Flex pads sequences)."""
    if _is_torch(indices[0]):
        import torch

        t = _device_table(table, indices[0].device)
        idx = tuple(torch.clamp(ix, 0, size - 1) for ix, size in zip(indices, table.shape))
        return t[idx]
    idx = tuple(np.clip(ix, 0, size - 1) for ix, size in zip(indices, table.shape))
    return table[idx]


# ----------------------------------------------------------------------------------------------------------------
# CSR neighbour lists
# ----------------------------------------------------------------------------------------------------------------
class CSR(NamedTuple):
    """Row i may attend to keys `indices[indptr[i]:indptr[i+1]]` (ascending). Never holds an n×n array."""

    indptr: np.ndarray  # (n+1,) int64
    indices: np.ndarray  # (nnz,) int32 (int64 when n >= 2**31)

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row_ids(self) -> np.ndarray:
        """(nnz,) query index of every stored pair."""
        return np.repeat(np.arange(self.n, dtype=self.indices.dtype), self.row_lengths())

    def to_mask(self, n_cols: int | None = None) -> np.ndarray:
        n_cols = self.n if n_cols is None else n_cols
        out = np.zeros((self.n, n_cols), dtype=bool)
        out[self.row_ids(), self.indices] = True
        return out

    @classmethod
    def from_mask(cls, mask) -> "CSR":
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.dtype != np.bool_:
            raise ValueError(f"mask must be a 2-D boolean array, got shape {mask.shape} dtype {mask.dtype}")
        rows, cols = np.nonzero(mask)
        return cls.from_pairs(rows, cols, mask.shape[0])

    @classmethod
    def from_pairs(cls, rows, cols, n: int) -> "CSR":
        """Build from (row, col) pairs in row-major order (as np.nonzero gives them)."""
        counts = np.bincount(rows, minlength=n) if len(rows) else np.zeros(n, dtype=np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, np.asarray(cols, dtype=index_dtype(n)))


def index_dtype(n: int):
    """int32 halves the memory of a million-token CSR; int64 only when indices need it."""
    return np.int32 if n < 2**31 else np.int64


def csr_from_rows(n: int, row_chunks, nnz: int | None = None) -> CSR:
    """Concatenate CSR pieces given as (row_lengths, indices) per consecutive chunk of rows.

    With `nnz` known up front the pieces are written into one preallocated array, so the peak memory is the
    CSR itself plus one chunk (collecting the pieces and concatenating them would hold the CSR twice).
    """
    if nnz is None:
        lengths, indices = [], []
        for ln, ix in row_chunks:
            lengths.append(ln)
            indices.append(ix.astype(index_dtype(n), copy=False))
        idx = np.concatenate(indices) if indices else np.zeros(0, dtype=index_dtype(n))
    else:
        lengths, idx, at = [], np.empty(nnz, dtype=index_dtype(n)), 0
        for ln, ix in row_chunks:
            if at + len(ix) > nnz:
                raise RuntimeError(f"num_pairs(n={n}) = {nnz} disagrees with the neighbour lists (bug)")
            idx[at : at + len(ix)] = ix
            lengths.append(ln)
            at += len(ix)
        if at != nnz:
            raise RuntimeError(f"num_pairs(n={n}) = {nnz} disagrees with the neighbour lists ({at}) (bug)")
    indptr = np.zeros(n + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=indptr[1:])
    return CSR(indptr, idx)


# ----------------------------------------------------------------------------------------------------------------
# Pattern
# ----------------------------------------------------------------------------------------------------------------
class ParamsRepr:
    """repr, equality and hashing from the constructor arguments (`_params()`): caches key on patterns."""

    def _params(self) -> dict:
        """Constructor arguments, in order."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class Pattern(ParamsRepr, abc.ABC):
    """Which keys each query may attend to. Subclasses implement `allowed`; every view follows from it."""

    #: True when the rule itself depends on n (random tables), so `mask_mod` needs `mask_mod_for(n)`.
    needs_n: bool = False

    # ---- the rule ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def allowed(self, i, j, n):
        """Boolean array: may query i attend to key j (i, j broadcastable int arrays / tensors; n = length)."""

    def band(self, n: int):
        """(left, right) such that every allowed pair has i - left <= j <= i + right, or None if unbounded.

        Window-like patterns return their reach; references and `neighbors` then only look inside the band.
        """
        return None

    def _prepare(self, n: int) -> None:
        """Hook for patterns whose rule needs per-n tables (random choices); called before evaluating views."""

    # ---- views ------------------------------------------------------------------------------------------------
    def mask(self, n) -> np.ndarray:
        """(n, n) boolean mask; for small n and pictures."""
        n = check_n(n)
        if n * n > MAX_MASK_ELEMENTS:
            raise ValueError(f"n={n} would need an n×n mask of {n * n / 2**30:.1f} GiB; use neighbors(n)")
        self._prepare(n)
        i = np.arange(n)[:, None]
        j = np.arange(n)[None, :]
        return np.broadcast_to(np.asarray(self.allowed(i, j, n), dtype=bool), (n, n)).copy()

    def neighbors(self, n) -> CSR:
        """CSR neighbour lists (rows ascending), built in row chunks without an n×n array."""
        n = check_n(n)
        self._prepare(n)
        band = self.band(n)
        if band is not None:
            return self._neighbors_in_band(n, *band)
        return csr_from_rows(n, self._rule_chunks(n, np.arange(n)[None, :]), self._known_nnz(n))

    def _known_nnz(self, n: int):
        """num_pairs(n) when a subclass gives it in closed form (lets neighbors preallocate), else None."""
        return self.num_pairs(n) if type(self).num_pairs is not Pattern.num_pairs else None

    def _neighbors_in_band(self, n: int, left: int, right: int) -> CSR:
        offsets = np.arange(-left, right + 1)[None, :]  # (1, width)

        def cols_for(i):  # keys i+offset; out-of-range ones are masked below
            return i + offsets

        return csr_from_rows(n, self._rule_chunks(n, None, cols_for), self._known_nnz(n))

    def _rule_chunks(self, n: int, cols, cols_for=None):
        """Yield (row_lengths, indices) for consecutive row chunks, evaluating the rule on candidate columns."""
        width = cols.shape[1] if cols is not None else cols_for(np.zeros((1, 1), dtype=np.int64)).shape[1]
        rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(width, 1))
        for start in range(0, n, rows_per_chunk):
            i = np.arange(start, min(n, start + rows_per_chunk))[:, None]  # (r, 1)
            j = cols if cols is not None else cols_for(i)  # (1|r, width)
            ok = np.broadcast_to(np.asarray(self.allowed(i, j, n), dtype=bool), (len(i), width))
            if cols_for is not None:
                ok = ok & (j >= 0) & (j < n)
            jj = np.broadcast_to(j, ok.shape)
            yield ok.sum(axis=1), jj[ok]

    def block_layout(self, n, block) -> np.ndarray:
        """(nb, nb) booleans, nb = ceil(n / block): True where any pair in the block is allowed."""
        n, block = check_n(n), check_block(block)
        return layout_from_csr(self.neighbors(n), block)

    def num_pairs(self, n) -> int:
        """Exact number of allowed (i, j) pairs."""
        return self.neighbors(check_n(n)).nnz

    def density(self, n) -> float:
        """num_pairs / n²."""
        n = check_n(n)
        return self.num_pairs(n) / (n * n) if n else 0.0

    # ---- FlexAttention --------------------------------------------------------------------------------------
    def mask_mod_for(self, n: int | None):
        """FlexAttention predicate (b, h, q_idx, kv_idx) -> bool tensor, for sequences of length n."""
        if n is not None:
            n = check_n(n)
            self._prepare(n)
        elif self.needs_n:
            raise ValueError(f"{self!r} draws random choices per sequence length: use mask_mod_for(n)")

        def mask_mod(b, h, q_idx, kv_idx):
            return self.allowed(q_idx, kv_idx, n)

        mask_mod.__name__ = type(self).__name__.lower()
        return mask_mod

    @property
    def mask_mod(self):
        """FlexAttention predicate; patterns with per-n random tables need `mask_mod_for(n)`."""
        return self.mask_mod_for(None)

    # ---- composition ------------------------------------------------------------------------------------------
    def __or__(self, other: "Pattern") -> "Pattern":
        return Union(self, other)

    def __and__(self, other: "Pattern") -> "Pattern":
        return Intersection(self, other)



def csr_from_block_layout(layout, block: int, n: int, causal: bool = False) -> CSR:
    """Token-level CSR of a block layout in O(nnz): row i sees every key of the blocks `layout[i // block]` is
    True on (the last block may be short), and with `causal` only the keys j <= i.

    layout: (ceil(n / block), ceil(n / block)) booleans. Each row block's keys are laid out once (O(nnz / block));
    every row then reads a prefix of its block's list (`rows.segments_csr`), so no n×n array is ever built.
    """
    from .rows import run, segments_csr

    n, block = check_n(n), check_block(block)
    layout = np.asarray(layout, dtype=bool)
    nb = math.ceil(n / block)
    if layout.shape != (nb, nb):
        raise ValueError(f"layout must have shape (ceil(n/block),)*2 = {(nb, nb)} for n={n}, block={block}, "
                         f"got {layout.shape}")
    rb, cb = np.nonzero(layout)  # (tiles,) row-major: each row block's column blocks ascending
    sizes = np.minimum(block, n - block * np.arange(nb, dtype=np.int64))  # (nb,) keys per column block
    tile_keys = sizes[cb]
    table = np.repeat(cb * block, tile_keys) + _ranks(tile_keys)  # every row block's keys, ascending
    start = np.zeros(nb + 1, dtype=np.int64)  # row block rb's keys are table[start[rb]:start[rb + 1]]
    np.cumsum(np.bincount(rb, weights=tile_keys, minlength=nb).astype(np.int64), out=start[1:])
    i = np.arange(n, dtype=np.int64)
    own = i // block
    count = start[own + 1] - start[own]
    if causal:  # earlier column blocks in full, the own block up to i, later blocks not at all
        before = np.bincount(rb, weights=np.where(cb < rb, tile_keys, 0), minlength=nb).astype(np.int64)
        count = before[own] + np.where(layout[own, own], i - own * block + 1, 0)
    return segments_csr(n, [run(start[own], count, 1, table)])


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., len-1 for every length, concatenated: the position of each element within its group."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def layout_from_csr(csr: CSR, block: int) -> np.ndarray:
    """Block layout from neighbour lists, one row block at a time (no n×n array)."""
    n = csr.n
    nb = math.ceil(n / block)
    layout = np.zeros((nb, nb), dtype=bool)
    for rb in range(nb):
        lo, hi = csr.indptr[rb * block], csr.indptr[min(n, (rb + 1) * block)]
        layout[rb, csr.indices[lo:hi] // block] = True
    return layout


class _Combination(Pattern):
    op_symbol = "?"

    def __init__(self, *parts: Pattern):
        for k, p in enumerate(parts):
            if not isinstance(p, Pattern):
                raise TypeError(f"parts[{k}] must be a Pattern, got {p!r}")
        flat = []
        for p in parts:  # (a | b) | c  ->  Union(a, b, c): one level, readable repr
            flat.extend(p.parts if type(p) is type(self) else [p])
        self.parts = tuple(flat)
        self.needs_n = any(p.needs_n for p in self.parts)
        self.causal = all(getattr(p, "causal", False) for p in self.parts)

    def _prepare(self, n):
        for p in self.parts:
            p._prepare(n)

    def __repr__(self):
        return f" {self.op_symbol} ".join(
            f"({p!r})" if isinstance(p, _Combination) else repr(p) for p in self.parts
        )


class Union(_Combination):
    """Allowed where any part allows."""

    op_symbol = "|"

    def allowed(self, i, j, n):
        out = self.parts[0].allowed(i, j, n)
        for p in self.parts[1:]:
            out = out | p.allowed(i, j, n)
        return out

    def band(self, n):
        bands = [p.band(n) for p in self.parts]
        if any(b is None for b in bands):
            return None
        return max(b[0] for b in bands), max(b[1] for b in bands)

    def neighbors(self, n) -> CSR:
        """The parts' sorted rows merged (O(nnz log parts)); never the rule over every pair."""
        from .rows import merge_rows

        n = check_n(n)
        self._prepare(n)
        return merge_rows([p.neighbors(n) for p in self.parts], keep_all=False)

    def num_pairs(self, n) -> int:
        """The largest part's count, plus each other part's pairs that no earlier part allows: no union CSR."""
        from .rows import count_pairs

        n = check_n(n)
        self._prepare(n)
        parts = sorted(self.parts, key=lambda p: -p.num_pairs(n))
        total = parts[0].num_pairs(n)
        for k, part in enumerate(parts[1:], start=1):
            seen = parts[:k]
            total += count_pairs(part.neighbors(n), lambda i, j, s=seen: ~Intersection._any_allow(s, i, j, n))
        return total

    def block_layout(self, n, block):
        # "any pair in the block" distributes over a union: OR the parts' (possibly closed-form) layouts.
        n, block = check_n(n), check_block(block)
        out = self.parts[0].block_layout(n, block)
        for p in self.parts[1:]:
            out = out | p.block_layout(n, block)
        return out


class Intersection(_Combination):
    """Allowed where every part allows."""

    op_symbol = "&"

    def allowed(self, i, j, n):
        out = self.parts[0].allowed(i, j, n)
        for p in self.parts[1:]:
            out = out & p.allowed(i, j, n)
        return out

    def neighbors(self, n) -> CSR:
        """The sparsest part's rows, kept where every other part's rule allows: O(nnz of the sparsest part)."""
        from .rows import filter_pairs

        n = check_n(n)
        self._prepare(n)
        sparsest = min(self.parts, key=lambda p: p.num_pairs(n))
        others = [p for p in self.parts if p is not sparsest]
        return filter_pairs(sparsest.neighbors(n), lambda i, j: self._all_allow(others, i, j, n))

    @staticmethod
    def _any_allow(parts, i, j, n):
        out = np.zeros(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=bool)
        for p in parts:
            out |= np.asarray(p.allowed(i, j, n), dtype=bool)
        return out

    @staticmethod
    def _all_allow(parts, i, j, n):
        out = np.ones(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=bool)
        for p in parts:
            out &= np.asarray(p.allowed(i, j, n), dtype=bool)
        return out

    def band(self, n):
        bands = [b for b in (p.band(n) for p in self.parts) if b is not None]
        if not bands:
            return None
        return min(b[0] for b in bands), min(b[1] for b in bands)
