"""Sparse Transformer patterns (Child et al. 2019): strided and fixed factorisations of attention, O(n·√n)."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_bool, check_int, check_n
from .rows import run, segments_csr
from .window import _window_pairs


def _grid_pairs(n: int, stride: int) -> int:
    """Pairs at offsets i - j = k·stride, k >= 2 (one side): sum over k of n - k·stride."""
    k_max = (n - 1) // stride if n else 0
    if k_max < 2:
        return 0
    return (k_max - 1) * n - stride * (k_max * (k_max + 1) // 2 - 1)


class Strided(Pattern):
    """Causal: 0 <= i-j <= stride, or (i-j) % stride == 0 and j <= i.  Non-causal: |i-j| <= stride or on grid.

    Equals OpenAI's `local(stride) ∪ strided(stride)` masks (its `local` keeps `stride` keys, the grid adds the
    one at distance `stride`; tests/test_conformance_rules.py).
    """

    def __init__(self, stride: int, causal: bool = True):
        self.stride = check_int("stride", stride, minimum=1)
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"stride": self.stride, "causal": self.causal}

    def allowed(self, i, j, n):
        d = i - j
        on_grid = d % self.stride == 0
        if self.causal:
            return ((d >= 0) & (d <= self.stride)) | (on_grid & (j <= i))
        return (abs(d) <= self.stride) | on_grid

    def num_pairs(self, n) -> int:
        n, s = check_n(n), self.stride
        if self.causal:
            return _window_pairs(n, s, 0) + _grid_pairs(n, s)
        return _window_pairs(n, s, s) + 2 * _grid_pairs(n, s)

    def neighbors(self, n) -> CSR:
        """Grid keys before the band (one run every `stride`), the band, and (non-causal) the grid after it: O(nnz)."""
        n, s = check_n(n), self.stride
        i = np.arange(n, dtype=np.int64)
        before = run(i % s, i // s - 1, s)  # i % s, i % s + s, ..., up to i - 2s
        lo, hi = np.maximum(0, i - s), i if self.causal else np.minimum(n - 1, i + s)
        runs = [before, run(lo, hi - lo + 1)]
        if not self.causal:  # i + 2s, i + 3s, ... below n
            runs.append(run(i + 2 * s, (n - 1 - i) // s - 1, s))
        return segments_csr(n, runs)


class Fixed(Pattern):
    """j // stride == i // stride, or j % stride >= stride - c (the 'summary' keys); and j <= i when causal.

    head / summary_patterns: per-head summary positions (head h: offsets stride-(1+h%P)·c .. stride-(h%P)·c-1);
    short_last="deepspeed": DeepSpeed's FixedSparsityConfig rule for a short last window (its c summary keys start
    at min(window start + offset, n - c)). Defaults: one summary position, the plain rule.
    """

    def __init__(self, stride: int, c: int, causal: bool = True, *, head: int = 0, summary_patterns: int = 1,
                 short_last: str = "none"):
        self.stride = check_int("stride", stride, minimum=1)
        self.c = check_int("c", c, minimum=1)
        if self.c > self.stride:
            raise ValueError(f"c must satisfy 1 <= c <= stride = {self.stride}, got {self.c}")
        self.causal = check_bool("causal", causal)
        # Per-head summaries (the paper: heads attend to distinct length-c subblocks; OpenAI's num_verts, DeepSpeed's
        # num_different_global_patterns): head h uses the ((h % summary_patterns) + 1)-th c-subblock from the end.
        self.head = check_int("head", head, minimum=0)
        self.summary_patterns = check_int("summary_patterns", summary_patterns, minimum=1)
        if self.summary_patterns * self.c > self.stride:
            raise ValueError(f"summary_patterns must satisfy summary_patterns * c <= stride = {self.stride}, "
                             f"got {summary_patterns}")
        if short_last not in ("none", "deepspeed"):
            raise ValueError(f"short_last must be 'none' or 'deepspeed', got {short_last!r}")
        self.short_last = short_last  # "deepspeed": a short last window keeps its summaries, pushed to fit
        self.needs_n = short_last != "none"  # that rule depends on n: mask_mod_for(n)

    def _params(self):
        out = {"stride": self.stride, "c": self.c, "causal": self.causal}
        if (self.head, self.summary_patterns, self.short_last) != (0, 1, "none"):
            out.update(head=self.head, summary_patterns=self.summary_patterns, short_last=self.short_last)
        return out

    def _summary_offset(self) -> int:
        """First summary offset inside a window: stride - c for head 0, one subblock earlier per pattern."""
        return self.stride - (1 + self.head % self.summary_patterns) * self.c

    def is_summary(self, j, n):
        """Is key j a summary ('global column') key (NumPy or torch)."""
        lo = self._summary_offset()
        r = j % self.stride
        plain = (r >= lo) & (r < lo + self.c)
        if self.short_last == "none" or n is None:  # mask_mod without n: the plain rule (needs_n covers the rest)
            return plain
        end = n - n % self.stride  # the short last window starts here
        if end == n:
            return plain
        start = min(end + lo, n - self.c)  # DeepSpeed: moved back so that all c summary keys fit
        return (plain & (j < end)) | ((j >= start) & (j < start + self.c))

    def allowed(self, i, j, n):
        out = (j // self.stride == i // self.stride) | self.is_summary(j, n)
        if self.causal:
            return out & (j <= i)
        return out

    def _summary_keys(self, n: int) -> np.ndarray:
        keys = np.arange(n, dtype=np.int64)
        return keys[self.is_summary(keys, n)]  # (≈ n·c/stride,)

    def num_pairs(self, n) -> int:
        n, s = check_n(n), self.stride
        sizes = np.minimum(s, n - s * np.arange(-(-n // s), dtype=np.int64))  # (nb,) rows per block
        blocks = self._summary_keys(n) // s  # block of every summary key
        if self.causal:  # own block: a triangle; a summary key j is also seen by every later block's rows
            own = int((sizes * (sizes + 1) // 2).sum())
            return own + int(np.maximum(0, n - (blocks + 1) * s).sum())
        return int((sizes * sizes).sum()) + int((n - sizes[blocks]).sum())

    def neighbors(self, n) -> CSR:
        """Summary keys before the own block, the own block (causal: up to i), summary keys after it: O(nnz)."""
        n, s = check_n(n), self.stride
        summary = self._summary_keys(n)  # (S,) ascending
        i = np.arange(n, dtype=np.int64)
        start = (i // s) * s  # first key of the own block
        before = np.searchsorted(summary, start)  # summary keys in earlier blocks
        end = i + 1 if self.causal else np.minimum(n, start + s)
        runs = [run(np.zeros(n), before, 1, summary), run(start, end - start)]
        if not self.causal:
            after = np.searchsorted(summary, start + s)
            runs.append(run(after, len(summary) - after, 1, summary))
        return segments_csr(n, runs)
