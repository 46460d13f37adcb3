"""saattn-edu: see, build and time sparse attention.

    from saattn_edu import patterns as P, reference as R
    import saattn_edu as sa
    sa.attention(q, k, v, P.SlidingWindow(256, causal=True))
"""
from . import patterns
from ._notebook import ensure_inline_figures

ensure_inline_figures()  # in a notebook kernel: figures drawn inline even where the shell set MPLBACKEND=Agg

__version__ = "0.1.0"
__all__ = ["attention", "patterns", "__version__"]


def attention(q, k, v, pattern, backend="auto", **kwargs):
    """Sparse attention of q, k, v (..., n, d) under `pattern`; backend "auto" | "numpy" | "torch" | "gather" |
    "flex" | "triton" (see saattn_edu.api)."""
    from .api import attention as _attention  # torch-based backends load only when asked for

    return _attention(q, k, v, pattern, backend=backend, **kwargs)
