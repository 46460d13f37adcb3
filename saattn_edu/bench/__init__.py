"""GPU races: `race(fn, patterns=..., n=...)` times an attention function against the library kernel, compiled
FlexAttention and SDPA on the anchor patterns (`saattn bench` on the command line)."""
from .anchors import anchor_patterns
from .race import gpu_available, load_callable, race

__all__ = ["race", "anchor_patterns", "load_callable", "gpu_available"]
