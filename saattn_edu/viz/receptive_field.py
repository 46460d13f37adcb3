"""Receptive field through stacked layers: which tokens can influence a query after 1..L attention layers.

Layer l's output at token i mixes the layer-(l-1) outputs of the keys i attends to, and the residual stream
carries i's own value forward. So the set that can reach query q grows by one boolean product per layer:
R_1 = {q} ∪ keys(q), R_{l+1} = R_l ∪ keys(R_l).  `reachability` does the same for every query at once.
"""
from __future__ import annotations

import numpy as np

from ..patterns.base import check_int
from ._common import as_csr, check_engine, new_figure, short_label

MAX_REACHABILITY_N = 4096  # the all-pairs version multiplies n×n boolean matrices


def _layer_csrs(pattern, n, layers: int):
    """One CSR per layer: the same pattern stacked, or a list giving each layer its own (e.g. its dilation)."""
    if isinstance(pattern, (list, tuple)):
        if len(pattern) != layers:
            raise ValueError(f"layers={layers} but {len(pattern)} patterns were given, one per layer")
        csrs = [as_csr(p, n)[0] for p in pattern]
        if len({c.n for c in csrs}) != 1:
            raise ValueError(f"the per-layer patterns disagree on n: {[c.n for c in csrs]}")
        return csrs, " → ".join(as_csr(p, n)[1] for p in pattern)
    csr, label = as_csr(pattern, n)
    return [csr] * layers, label


def receptive_field(pattern, n=None, layers: int = 3, query: int = 0) -> np.ndarray:
    """(layers, n) booleans: row l-1 marks the tokens that can influence `query` after l layers.

    `pattern` may be a list with one pattern per layer, listed from the query's layer downwards.
    """
    layers = check_int("layers", layers, minimum=1)
    csrs, _ = _layer_csrs(pattern, n, layers)
    n = csrs[0].n
    query = check_int("query", query, minimum=0)
    if query >= n:
        raise ValueError(f"query must be < n={n}, got {query}")
    reach = np.zeros(n, dtype=bool)
    reach[query] = True
    out = np.zeros((layers, n), dtype=bool)
    for layer, csr in enumerate(csrs):
        keys = csr.indices[np.repeat(reach, csr.row_lengths())]  # every key of every reached token
        reach = reach.copy()
        reach[keys] = True  # residual: tokens already reached stay reached
        out[layer] = reach
    return out


def reachability(pattern, n=None, hops: int = 2) -> np.ndarray:
    """(n, n) booleans: [i, j] True when information can flow from key j to query i within `hops` layers."""
    csr, _ = as_csr(pattern, n)
    hops = check_int("hops", hops, minimum=1)
    if csr.n > MAX_REACHABILITY_N:
        raise ValueError(f"n={csr.n} is too large for all-pairs reachability (max {MAX_REACHABILITY_N}); "
                         "use receptive_field for one query")
    step = csr.to_mask().astype(np.float32)  # (n, n)
    np.fill_diagonal(step, 1.0)  # the residual stream
    reach = step.copy()
    for _ in range(hops - 1):
        reach = ((reach @ step) > 0).astype(np.float32)  # boolean product via a float matmul (counts stay exact > 0)
    return reach > 0


def _grid_shape(pattern, n: int):
    """(height, width) for image patterns (Local2D, Axial2D), else None."""
    h, w = getattr(pattern, "height", None), getattr(pattern, "width", None)
    return (h, w) if isinstance(h, int) and isinstance(w, int) and h * w == n else None


def plot_receptive_field(pattern, n=None, layers: int = 3, query: int = 0, engine: str = "matplotlib"):
    """Small multiples, one per layer: the tokens that can influence `query` (a 2-D grid for image patterns).

    `pattern` may be a list, one pattern per layer (from the query's layer down).
    """
    check_engine(engine)
    layers = check_int("layers", layers, minimum=1)
    csrs, label = _layer_csrs(pattern, n, layers)
    rf = receptive_field(csrs, layers=layers, query=query)  # (L, n)
    first = pattern[0] if isinstance(pattern, (list, tuple)) else pattern
    shape = _grid_shape(first, rf.shape[1])
    titles = [f"{l + 1} layer{'s' if l else ''}: {int(rf[l].sum()):,} of {rf.shape[1]:,}" for l in range(len(rf))]
    if engine == "plotly":
        return _plotly_rf(rf, shape, titles, label, query)
    if shape is not None:
        return _mpl_rf_grid(rf, shape, titles, label, query)
    return _mpl_rf_strips(rf, titles, label, query)


def _mpl_rf_strips(rf, titles, label, query):
    import matplotlib

    L, n = rf.shape
    fig, axes = new_figure(L, 1, figsize=(8, 0.55 * L + 1.0), sharex=True, squeeze=False)
    cmap = matplotlib.colors.ListedColormap(["#f0f0f0", "#2171b5"])
    for l, ax in enumerate(axes[:, 0]):
        ax.imshow(rf[l][None, :], cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest",
                  extent=(-0.5, n - 0.5, 0, 1), label=f"layer {l + 1}")
        ax.axvline(query, color="#d62728", lw=1.2)
        ax.set_yticks([])
        ax.set_ylabel(titles[l], rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("token (red line: the query)")
    fig.suptitle(f"receptive field of query {query}\n{short_label(label)}", fontsize=9)
    fig.tight_layout()
    return fig


def _mpl_rf_grid(rf, shape, titles, label, query):
    import matplotlib

    L = len(rf)
    fig, axes = new_figure(1, L, figsize=(2.3 * L, 2.8), squeeze=False)
    cmap = matplotlib.colors.ListedColormap(["#f0f0f0", "#2171b5"])
    qr, qc = divmod(query, shape[1])
    for l, ax in enumerate(axes[0]):
        ax.imshow(rf[l].reshape(shape), cmap=cmap, vmin=0, vmax=1, interpolation="nearest", label=f"layer {l + 1}")
        ax.plot([qc], [qr], marker="s", color="#d62728", markersize=4)
        ax.set(xticks=[], yticks=[])
        ax.set_title(titles[l], fontsize=8)
    fig.suptitle(f"receptive field of pixel {query} (red)\n{short_label(label)}", fontsize=9)
    fig.tight_layout()
    return fig


def _plotly_rf(rf, shape, titles, label, query):
    """One heatmap with a slider over the number of layers."""
    import plotly.graph_objects as go

    frames = [rf[l].reshape(shape) if shape else rf[l][None, :] for l in range(len(rf))]
    fig = go.Figure([go.Heatmap(z=f.astype(np.int8), visible=(l == 0), showscale=False, name=f"layer {l + 1}",
                                colorscale=[[0, "#f0f0f0"], [1, "#2171b5"]], zmin=0, zmax=1)
                     for l, f in enumerate(frames)])
    steps = [dict(method="update", label=str(l + 1),
                  args=[{"visible": [k == l for k in range(len(frames))]}, {"title.text": titles[l]}])
             for l in range(len(frames))]
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="layers: "))],
                      title=dict(text=f"query {query} — {titles[0]}"), height=260 if shape is None else 480,
                      yaxis=dict(autorange="reversed", showticklabels=shape is not None))
    return fig
