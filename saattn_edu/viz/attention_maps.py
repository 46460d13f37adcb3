"""Attention probabilities as heatmaps: one head, several heads, or several patterns side by side."""
from __future__ import annotations

import numpy as np

from ._common import check_engine, new_figure

MAX_TOKEN_LABELS = 40  # beyond this, tick labels overlap


def _as_maps(probs, titles):
    """List of (n_q, n_k) arrays and their titles from an array (n, n) / (h, n, n), a list, or a dict."""
    if isinstance(probs, dict):
        titles = list(probs) if titles is None else titles
        probs = list(probs.values())
    if isinstance(probs, (list, tuple)):
        maps = [np.asarray(p, dtype=float) for p in probs]
    else:
        arr = np.asarray(probs, dtype=float)
        if arr.ndim not in (2, 3):
            raise ValueError(f"probs must be (n, n) or (heads, n, n), got shape {arr.shape}")
        maps = [arr] if arr.ndim == 2 else list(arr)
    for k, m in enumerate(maps):
        if m.ndim != 2:
            raise ValueError(f"probs[{k}] must be 2-D (queries, keys), got shape {m.shape}")
    titles = [f"head {k}" for k in range(len(maps))] if titles is None and len(maps) > 1 else titles
    titles = titles or [""]
    if len(titles) != len(maps):
        raise ValueError(f"titles must have {len(maps)} entries, got {len(titles)}")
    return maps, list(titles)


def plot_attention_map(probs, tokens=None, titles=None, engine: str = "matplotlib", vmax=None):
    """Heatmaps of attention probabilities (rows = queries, columns = keys), side by side for several maps.

    `probs`: (n, n), (heads, n, n), a list of arrays or a {title: array} dict. `tokens` label the axes when short.
    """
    check_engine(engine)
    maps, titles = _as_maps(probs, titles)
    if tokens is not None and len(tokens) != maps[0].shape[-1]:
        raise ValueError(f"tokens must have {maps[0].shape[-1]} entries, got {len(tokens)}")
    vmax = max(float(m.max()) for m in maps) if vmax is None else vmax
    if engine == "plotly":
        return _plotly_maps(maps, titles, tokens, vmax)
    return _mpl_maps(maps, titles, tokens, vmax)


def _mpl_maps(maps, titles, tokens, vmax):
    k = len(maps)
    fig, axes = new_figure(1, k, figsize=(3.6 * k + 0.8, 3.8), squeeze=False)
    for m, title, ax in zip(maps, titles, axes[0]):
        img = ax.imshow(m, cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest", label="probs")
        ax.set_title(title, fontsize=9)
        if tokens is not None and len(tokens) <= MAX_TOKEN_LABELS:
            ticks = np.arange(len(tokens))
            ax.set_xticks(ticks, [str(t) for t in tokens], rotation=90, fontsize=7)
            ax.set_yticks(ticks, [str(t) for t in tokens], fontsize=7)
        else:
            ax.set(xlabel="key", ylabel="query")
    fig.colorbar(img, ax=list(axes[0]), fraction=0.025, pad=0.02, label="probability")
    return fig


def _plotly_maps(maps, titles, tokens, vmax):
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=titles)
    labels = [str(t) for t in tokens] if tokens is not None else None
    for c, m in enumerate(maps, start=1):
        fig.add_trace(go.Heatmap(z=m, x=labels, y=labels, zmin=0, zmax=vmax, colorscale="Viridis",
                                 showscale=c == len(maps), name=titles[c - 1]), row=1, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c)
    fig.update_layout(height=380, width=340 * len(maps) + 80)
    return fig
