"""2-D patterns for image tokens (Image Transformer, Axial Transformer): pixels in row-major order."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_int, check_n
from .rows import run, segments_csr
from .window import _window_pairs


class _Image(Pattern):
    """Shared: an image of height × width tokens, token t = row · width + col; n must be height · width."""

    causal = False

    def __init__(self, height: int, width: int):
        self.height = check_int("height", height, minimum=1)
        self.width = check_int("width", width, minimum=1)

    def _prepare(self, n):
        if n != self.height * self.width:
            raise ValueError(
                f"n must equal height * width = {self.height} * {self.width} = {self.height * self.width} "
                f"for {self!r}, got n={n}"
            )

    def _rows_cols(self, t):
        return t // self.width, t % self.width


class Local2D(_Image):
    """Chebyshev distance <= radius: a (2·radius+1)² square around each pixel."""

    def __init__(self, height: int, width: int, radius: int):
        super().__init__(height, width)
        self.radius = check_int("radius", radius, minimum=0)

    def _params(self):
        return {"height": self.height, "width": self.width, "radius": self.radius}

    def allowed(self, i, j, n):
        ri, ci = self._rows_cols(i)
        rj, cj = self._rows_cols(j)
        return (abs(ri - rj) <= self.radius) & (abs(ci - cj) <= self.radius)

    def band(self, n):
        reach = min(self.radius * (self.width + 1), max(n - 1, 0))  # radius rows and radius columns away
        return reach, reach

    def num_pairs(self, n) -> int:
        n = check_n(n)
        self._prepare(n)  # the square factorises: (row pairs within radius) × (column pairs within radius)
        return _window_pairs(self.height, self.radius, self.radius) * _window_pairs(self.width, self.radius,
                                                                                   self.radius)

    def neighbors(self, n) -> CSR:
        """One run of consecutive keys per image row within the radius, rows in order: O(nnz)."""
        n, w = check_n(n), self.width
        self._prepare(n)
        y, x = self._rows_cols(np.arange(n, dtype=np.int64))
        x_lo, x_hi = np.maximum(0, x - self.radius), np.minimum(w - 1, x + self.radius)
        runs = []
        for dy in range(-min(self.radius, self.height - 1), min(self.radius, self.height - 1) + 1):
            inside = (y + dy >= 0) & (y + dy < self.height)
            runs.append(run((y + dy) * w + x_lo, np.where(inside, x_hi - x_lo + 1, 0)))
        return segments_csr(n, runs)


class Axial2D(_Image):
    """Same image row or same image column: a cross through each pixel."""

    def _params(self):
        return {"height": self.height, "width": self.width}

    def allowed(self, i, j, n):
        ri, ci = self._rows_cols(i)
        rj, cj = self._rows_cols(j)
        return (ri == rj) | (ci == cj)

    def num_pairs(self, n) -> int:
        n = check_n(n)
        self._prepare(n)
        return n * (self.width + self.height - 1)

    def neighbors(self, n) -> CSR:
        """Own column above, own row, own column below: three runs, O(nnz)."""
        n, w = check_n(n), self.width
        self._prepare(n)
        y, x = self._rows_cols(np.arange(n, dtype=np.int64))
        return segments_csr(n, [run(x, y, w), run(y * w, np.full(n, w)), run((y + 1) * w + x, self.height - 1 - y, w)])
