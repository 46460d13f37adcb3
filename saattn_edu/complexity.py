"""Counting and timing attention: FLOPs, bytes moved, power-law fits and a small wall-clock timer.

Counts follow one convention, stated once so lessons can quote it:
- FLOPs = 4 · pairs · d: QKᵀ and PV each take one multiply-add (2 FLOPs) per (query, key) pair per head dim.
  Softmax (a few operations per pair, no d factor) is left out. `pairs` depends on how attention is executed:
  "dense" scores all n² pairs, "gather" only the allowed ones (`num_pairs`), "block_sparse" every pair of each
  active (block × block) tile, allowed or not.
- Bytes = what a straightforward implementation moves to and from memory (each array read or written once):
  every execution reads Q, K, V once and writes O (4 · n · d elements) except where said otherwise;
  "dense" also writes the n×n score matrix and reads it back (2 · n² elements);
  "gather" reads Q once and writes O, then per allowed pair reads one K row and one V row (2 · pairs · d
  elements) plus its column index, and the (n+1) int64 row pointers;
  "block_sparse" reads Q once and writes O, then per active block a K tile and a V tile (2 · block · d
  elements each), plus the layout (one byte per block pair).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .patterns.base import CSR, Pattern, check_block, check_int, check_n, index_dtype, layout_from_csr

EXECUTIONS = ("dense", "gather", "block_sparse")


# ----------------------------------------------------------------------------------------------------------------
# FLOPs and bytes
# ----------------------------------------------------------------------------------------------------------------
def _check_execution(execution: str) -> str:
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
    return execution


def _layout(pattern, n: int, block: int) -> np.ndarray:
    if isinstance(pattern, CSR):
        return layout_from_csr(pattern, block)
    return pattern.block_layout(n, block)


def _check_pattern(pattern, n: int):
    if isinstance(pattern, CSR):
        if pattern.n != n:
            raise ValueError(f"pattern is a CSR with {pattern.n} rows, but n={n}")
    elif not isinstance(pattern, Pattern):
        raise TypeError(f"pattern must be a Pattern or a CSR, got {type(pattern).__name__}")
    return pattern


def attention_pairs(pattern, n, execution: str = "gather", block: int = 64) -> int:
    """(query, key) pairs scored: n² (dense), allowed pairs (gather), active blocks · block² (block_sparse)."""
    n, execution = check_n(n), _check_execution(execution)
    pattern = _check_pattern(pattern, n)
    if execution == "dense":
        return n * n
    if execution == "gather":
        return pattern.nnz if isinstance(pattern, CSR) else pattern.num_pairs(n)
    return int(_layout(pattern, n, check_block(block)).sum()) * block * block


def attention_flops(pattern, n, d, execution: str = "gather", block: int = 64) -> int:
    """Matmul FLOPs of attention (QKᵀ and PV): 4 · pairs · d, pairs as in `attention_pairs`."""
    d = check_int("d", d, minimum=1)
    return 4 * attention_pairs(pattern, n, execution, block) * d


def dtype_bytes(dtype) -> int:
    """Bytes per element of a NumPy dtype, a torch dtype or a name ("float32", "fp16", "bf16", "bfloat16")."""
    aliases = {"fp16": 2, "half": 2, "bf16": 2, "bfloat16": 2, "fp32": 4, "fp64": 8, "fp8": 1}
    if isinstance(dtype, str) and dtype.lower() in aliases:
        return aliases[dtype.lower()]
    itemsize = getattr(dtype, "itemsize", None)  # torch.dtype has .itemsize, as does np.dtype
    if isinstance(itemsize, int):
        return itemsize
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        raise TypeError(f"dtype must be a NumPy / torch dtype or a name like 'float32', got {dtype!r}") from None


def attention_bytes(pattern, n, d, dtype="float32", execution: str = "gather", block: int = 64) -> int:
    """Bytes moved by one attention call under `execution` (see the module docstring for what is counted)."""
    n, d, execution = check_n(n), check_int("d", d, minimum=1), _check_execution(execution)
    size = dtype_bytes(dtype)
    pairs = attention_pairs(pattern, n, execution, block)
    if execution == "dense":
        return (4 * n * d + 2 * n * n) * size  # Q, K, V, O + score matrix written and read back
    if execution == "gather":
        index = np.dtype(index_dtype(n)).itemsize
        return 2 * n * d * size + pairs * (2 * d * size + index) + (n + 1) * 8
    active = pairs // (block * block)
    nb = math.ceil(n / block)
    return 2 * n * d * size + active * 2 * block * d * size + nb * nb


# ----------------------------------------------------------------------------------------------------------------
# Power-law fits and a timer
# ----------------------------------------------------------------------------------------------------------------
def fit_power_law(ns, ts):
    """Least-squares fit of t ≈ constant · n^exponent in log-log space; returns (exponent, constant)."""
    ns, ts = np.asarray(ns, dtype=float), np.asarray(ts, dtype=float)
    if ns.ndim != 1 or ns.shape != ts.shape:
        raise ValueError(f"ns and ts must be 1-D of the same length, got shapes {ns.shape} and {ts.shape}")
    if len(ns) < 2 or len(np.unique(ns)) < 2:
        raise ValueError(f"fit_power_law needs at least 2 distinct sizes, got ns={ns.tolist()}")
    if np.any(ns <= 0) or np.any(ts <= 0) or not np.all(np.isfinite(ts)):
        raise ValueError(f"ns and ts must be positive and finite, got ns={ns.tolist()}, ts={ts.tolist()}")
    exponent, log_c = np.polyfit(np.log(ns), np.log(ts), 1)
    return float(exponent), float(np.exp(log_c))


def _fmt_seconds(t: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= factor:
            return f"{t / factor:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


@dataclass(frozen=True)
class Timing:
    """Wall-clock times of repeated calls, in seconds."""

    median: float
    min: float
    max: float
    times: tuple

    @property
    def spread(self) -> float:
        """max - min, in seconds: how much the repeats disagree."""
        return self.max - self.min

    def __repr__(self) -> str:
        return (
            f"Timing(median={_fmt_seconds(self.median)}, min={_fmt_seconds(self.min)}, "
            f"max={_fmt_seconds(self.max)}, repeats={len(self.times)})"
        )


def time_fn(fn, *args, warmup: int = 1, repeats: int = 5, **kwargs) -> Timing:
    """Call fn(*args, **kwargs) `warmup` times untimed, then `repeats` times timed with perf_counter."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    warmup = check_int("warmup", warmup, minimum=0)
    repeats = check_int("repeats", repeats, minimum=1)
    for _ in range(warmup):  # first calls pay for caches, allocations, lazy imports, compilation
        fn(*args, **kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), max(times), tuple(times))
