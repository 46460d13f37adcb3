"""2-D patterns for image tokens (Image Transformer, Axial Transformer): pixels in row-major order."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_int, check_n
from .global_tokens import candidate_csr
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
        """The (2r+1)² square as candidates (the rule drops the ones wrapping round an image edge)."""
        n, w = check_n(n), self.width
        r = min(self.radius, max(self.height, self.width) - 1)  # a larger radius reaches no further
        self._prepare(n)
        square = (w * np.arange(-r, r + 1)[:, None] + np.arange(-r, r + 1)[None, :]).ravel()[None, :]  # (1, s²)

        def candidates(i):
            return [(i, i + square)]

        return candidate_csr(self, n, candidates, square.shape[1], self.num_pairs(n))


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
        """Own row plus own column: O(n·(height + width))."""
        n = check_n(n)
        self._prepare(n)
        row = np.arange(self.width)[None, :]  # (1, W)
        col = self.width * np.arange(self.height)[None, :]  # (1, H)

        def candidates(i):
            return [(i, (i // self.width) * self.width + row), (i, i % self.width + col)]

        return candidate_csr(self, n, candidates, self.width + self.height, self.num_pairs(n))
