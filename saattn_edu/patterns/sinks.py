"""Attention sinks (StreamingLLM, Xiao et al. 2023): a causal window that always keeps the first few tokens."""
from __future__ import annotations

import numpy as np

from .base import CSR, Pattern, check_int, check_n
from .rows import run, segments_csr
from .window import _window_pairs


class AttentionSinks(Pattern):
    """j <= i and (j < num_sinks or i - j < window).

    StreamingLLM's `StartRecentKVCache(start_size=s, recent_size=r)` is `AttentionSinks(s, r + 1)`: the query sees
    its r cached recent tokens and itself (`conventions.streaming_llm`; tests/test_conformance_rules.py).
    """

    causal = True

    def __init__(self, num_sinks: int, window: int):
        self.num_sinks = check_int("num_sinks", num_sinks, minimum=0)
        self.window = check_int("window", window, minimum=1)

    def _params(self):
        return {"num_sinks": self.num_sinks, "window": self.window}

    def allowed(self, i, j, n):
        return (j <= i) & ((j < self.num_sinks) | (i - j < self.window))

    def num_pairs(self, n) -> int:
        n, s, w = check_n(n), self.num_sinks, self.window
        in_window = _window_pairs(n, w - 1, 0)
        sinks = min(s, max(n - w, 0))  # sink columns j that some row i >= j + w still sees outside its window
        return in_window + sinks * (n - w) - sinks * (sinks - 1) // 2  # column j adds n - w - j rows

    def neighbors(self, n) -> CSR:
        """The sinks left of the window, then the causal window: two runs of consecutive keys, O(nnz)."""
        n = check_n(n)
        i = np.arange(n, dtype=np.int64)
        lo = np.maximum(0, i - self.window + 1)  # first key of the window
        return segments_csr(n, [run(np.zeros(n), np.minimum(self.num_sinks, lo)), run(lo, i - lo + 1)])
