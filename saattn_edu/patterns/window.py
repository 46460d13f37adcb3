"""Sliding and dilated windows (Longformer, Mistral): each query sees a fixed-width neighbourhood, O(n·w)."""
from __future__ import annotations

from .base import Pattern, check_bool, check_int, check_n


def _window_pairs(n: int, reach_left: int, reach_right: int) -> int:
    """Number of (i, j) with 0 <= i, j < n and -reach_left <= j - i <= reach_right (closed form)."""
    total = 0
    for reach in (reach_left, reach_right):  # offsets 1..reach on each side, each offset d gives n - d pairs
        r = min(reach, max(n - 1, 0))
        total += r * n - r * (r + 1) // 2
    return total + n  # the diagonal


class SlidingWindow(Pattern):
    """Causal: 0 <= i - j < window.  Non-causal: |i - j| <= window // 2."""

    def __init__(self, window: int, causal: bool = False):
        self.window = check_int("window", window, minimum=1)
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"window": self.window, "causal": self.causal}

    def _reach(self):
        return (self.window - 1, 0) if self.causal else (self.window // 2, self.window // 2)

    def allowed(self, i, j, n):
        d = i - j
        if self.causal:
            return (d >= 0) & (d < self.window)
        return abs(d) <= self.window // 2

    def band(self, n):
        return self._reach()

    def num_pairs(self, n) -> int:
        return _window_pairs(check_n(n), *self._reach())


class DilatedWindow(Pattern):
    """SlidingWindow over (i - j) / dilation, keeping only keys with (i - j) % dilation == 0."""

    def __init__(self, window: int, dilation: int, causal: bool = False):
        self.window = check_int("window", window, minimum=1)
        self.dilation = check_int("dilation", dilation, minimum=1)
        self.causal = check_bool("causal", causal)

    def _params(self):
        return {"window": self.window, "dilation": self.dilation, "causal": self.causal}

    def _steps(self):
        """(left, right) reach measured in dilated steps."""
        return (self.window - 1, 0) if self.causal else (self.window // 2, self.window // 2)

    def allowed(self, i, j, n):
        d = i - j
        on_grid = d % self.dilation == 0
        steps = d // self.dilation
        if self.causal:
            return on_grid & (steps >= 0) & (steps < self.window)
        return on_grid & (abs(steps) <= self.window // 2)

    def band(self, n):
        left, right = self._steps()
        return left * self.dilation, right * self.dilation

    def num_pairs(self, n) -> int:
        n = check_n(n)
        left, right = self._steps()
        total = n  # the diagonal
        for reach in (left, right):  # step s (1..reach) is offset s*dilation: n - s*dilation pairs when positive
            s_max = min(reach, (n - 1) // self.dilation) if n else 0
            total += s_max * n - self.dilation * s_max * (s_max + 1) // 2
        return total
