"""The mask as a picture (`plot_mask`) and the block layout a kernel sees (`plot_layout`).

Large n is drawn honestly: each display cell shows the fraction of its token pairs that are allowed, computed
from the CSR one row tile at a time (never an n×n array), and the title says how many tokens a cell holds.
"""
from __future__ import annotations

import math

import numpy as np

from ..patterns.base import check_block, check_int
from ._common import as_csr, cell_counts, check_engine, new_figure, short_label

_TRANSPARENT = (0.0, 0.0, 0.0, 0.0)
_BLOCK_SHADE = "#fdd9a0"  # active blocks: the tiles a block-sparse kernel computes
_PLOTLY_BLUES = [[0.0, "rgba(255,255,255,0)"], [1e-9, "#c6dbef"], [1.0, "#08306b"]]


def mask_grid(pattern, n=None, max_cells: int = 256) -> tuple[np.ndarray, int]:
    """(grid, cell): fraction of allowed pairs per cell×cell tile, cell = 1 (the exact mask) when n <= max_cells."""
    csr, _ = as_csr(pattern, n)
    max_cells = check_int("max_cells", max_cells, minimum=1)
    cell = max(1, math.ceil(csr.n / max_cells))
    counts, areas = cell_counts(csr, cell)
    return counts / np.maximum(areas, 1), cell  # (nc, nc) in [0, 1]


def block_fill(pattern, n=None, block: int = 64) -> np.ndarray:
    """(nb, nb) fraction of each block's pairs that are allowed: 0 = skipped, 1 = full, between = wasted work."""
    csr, _ = as_csr(pattern, n)
    counts, areas = cell_counts(csr, check_block(block))
    return counts / np.maximum(areas, 1)


def layout_stats(pattern, n=None, block: int = 64) -> dict:
    """Counts behind `plot_layout`: active / partial blocks and the fraction of computed pairs that are masked."""
    csr, _ = as_csr(pattern, n)
    counts, areas = cell_counts(csr, check_block(block))
    active = counts > 0
    computed = int(areas[active].sum())  # pairs a block-sparse kernel evaluates
    return {
        "blocks": int(counts.size),
        "active_blocks": int(active.sum()),
        "partial_blocks": int((active & (counts < areas)).sum()),
        "pairs": csr.nnz,
        "computed_pairs": computed,
        "wasted_fraction": 1.0 - csr.nnz / computed if computed else 0.0,
    }


def _title(label: str, n: int, pairs: int, cell: int) -> str:
    density = pairs / (n * n) if n else 0.0
    title = f"{short_label(label)}\nn={n:,}: {pairs:,} pairs, density {density:.3g}"
    if cell > 1:
        title += f"\neach cell = {cell}×{cell} tokens, shade = fraction allowed"
    return title


def plot_mask(pattern, n=None, block=None, engine: str = "matplotlib", max_cells: int = 256, ax=None, label=None):
    """Heatmap of who may attend to whom (rows = queries, columns = keys); optional block grid and active blocks.

    `label` names a pattern passed as a CSR (the explorer computes the CSR once and reuses it).
    """
    check_engine(engine)
    csr, default_label = as_csr(pattern, n)
    label = label or default_label
    grid, cell = mask_grid(csr, max_cells=max_cells)
    layout = None if block is None else block_fill(csr, block=block) > 0
    title = _title(label, csr.n, csr.nnz, cell)
    if engine == "plotly":
        return _plotly_mask(grid, csr.n, cell, layout, block, title)
    return _mpl_mask(grid, csr.n, layout, block, title, ax)


def _mpl_mask(grid, n, layout, block, title, ax):
    import matplotlib

    fig, ax = new_figure(figsize=(5.2, 5)) if ax is None else (ax.figure, ax)
    extent = (0, n, n, 0)  # token coordinates whatever the cell size: block lines land on block boundaries
    if layout is not None:
        shade = matplotlib.colors.ListedColormap(["white", _BLOCK_SHADE])
        ax.imshow(layout, cmap=shade, vmin=0, vmax=1, extent=extent, interpolation="nearest", label="layout")
        _grid_lines(ax, n, block)
    cmap = matplotlib.colormaps["Blues"].copy()
    cmap = cmap.with_extremes(under=_TRANSPARENT)  # zero = not allowed: let the block shading show through
    img = ax.imshow(grid, cmap=cmap, vmin=1e-12, vmax=1, extent=extent, interpolation="nearest", label="mask")
    if grid.shape[0] < n:
        fig.colorbar(img, ax=ax, fraction=0.046, pad=0.04, label="fraction of pairs allowed")
    ax.set(xlabel="key j", ylabel="query i", title=title)
    ax.title.set_fontsize(9)
    return fig


def _grid_lines(ax, n, block):
    nb = math.ceil(n / block)
    if nb > 64:  # denser lines would paint the picture grey
        return
    for k in range(1, nb):
        ax.axhline(k * block, color="#999999", lw=0.5)
        ax.axvline(k * block, color="#999999", lw=0.5)


def _plotly_mask(grid, n, cell, layout, block, title):
    import plotly.graph_objects as go

    centers = (np.arange(grid.shape[0]) + 0.5) * cell  # tile centres in token units
    fig = go.Figure()
    if layout is not None:
        bc = (np.arange(layout.shape[0]) + 0.5) * block
        fig.add_trace(go.Heatmap(z=layout.astype(np.int8), x=bc, y=bc, name="layout", showscale=False,
                                 colorscale=[[0, "white"], [1, _BLOCK_SHADE]], zmin=0, zmax=1, hoverinfo="skip"))
    hover = "query %{y}<br>key %{x}<br>allowed %{z:.3g}<extra></extra>"
    fig.add_trace(go.Heatmap(z=grid, x=centers, y=centers, name="mask", colorscale=_PLOTLY_BLUES, zmin=0, zmax=1,
                             showscale=cell > 1, hovertemplate=hover))
    fig.update_yaxes(autorange="reversed", title="query i", scaleanchor="x", constrain="domain")
    fig.update_xaxes(title="key j", side="top", constrain="domain")
    fig.update_layout(title=dict(text=title.replace("\n", "<br>"), font=dict(size=12)), width=520, height=560,
                      margin=dict(t=110, l=60, r=20, b=20), plot_bgcolor="white")
    return fig


def plot_layout(pattern, n=None, block: int = 64, engine: str = "matplotlib", ax=None, label=None):
    """The block layout a block-sparse kernel runs: full blocks, partial blocks (wasted work marked), skipped."""
    check_engine(engine)
    csr, default_label = as_csr(pattern, n)
    label = label or default_label
    fill = block_fill(csr, block=block)  # (nb, nb)
    st = layout_stats(csr, block=block)
    title = (f"{short_label(label)}\nblock {block}: {st['active_blocks']}/{st['blocks']} blocks computed, "
             f"{st['partial_blocks']} partial\nwasted work in computed blocks: {st['wasted_fraction']:.1%}")
    if engine == "plotly":
        return _plotly_layout(fill, title)
    return _mpl_layout(fill, title, ax)


def _mpl_layout(fill, title, ax):
    import matplotlib
    from matplotlib.patches import Patch

    fig, ax = new_figure(figsize=(5.2, 5)) if ax is None else (ax.figure, ax)
    full = np.where(fill >= 1, 1.0, 0.0)
    partial = np.where((fill > 0) & (fill < 1), fill, 0.0)  # shade = fraction of the block that is useful
    blue = matplotlib.colors.ListedColormap(["#2166ac"])
    blue = blue.with_extremes(under=_TRANSPARENT)
    oranges = matplotlib.colors.ListedColormap(matplotlib.colormaps["Oranges"](np.linspace(0.2, 0.8, 256)))
    oranges = oranges.with_extremes(under=_TRANSPARENT)  # even a 1%-useful block stays visible
    ax.imshow(full, cmap=blue, vmin=0.5, vmax=1, interpolation="nearest", label="full")
    ax.imshow(partial, cmap=oranges, vmin=1e-12, vmax=1, interpolation="nearest", label="partial")
    if fill.shape[0] <= 32:  # annotate the useful fraction where it stays readable
        for (r, c) in zip(*np.nonzero(partial)):
            ax.text(c, r, f"{partial[r, c]:.0%}", ha="center", va="center", fontsize=6)
    ax.legend(handles=[Patch(color="#2166ac", label="full block"),
                       Patch(color="#fd8d3c", label="partial block (wasted work)")],
              loc="upper right", fontsize=7, framealpha=0.9)
    ax.set(xlabel="key block", ylabel="query block", title=title)
    ax.title.set_fontsize(9)
    return fig


def _plotly_layout(fill, title):
    import plotly.graph_objects as go

    kind = np.where(fill >= 1, 2, np.where(fill > 0, 1, 0))  # 0 skipped, 1 partial, 2 full
    colors = [[0, "white"], [0.33, "white"], [0.34, "#fd8d3c"], [0.66, "#fd8d3c"], [0.67, "#2166ac"], [1, "#2166ac"]]
    hover = "block (%{y}, %{x})<br>useful %{customdata:.0%}<extra></extra>"
    fig = go.Figure(go.Heatmap(z=kind, customdata=fill, name="layout", colorscale=colors, zmin=0, zmax=2,
                               showscale=False, hovertemplate=hover))
    fig.update_yaxes(autorange="reversed", title="query block", scaleanchor="x", constrain="domain")
    fig.update_xaxes(title="key block", side="top", constrain="domain")
    fig.update_layout(title=dict(text=title.replace("\n", "<br>"), font=dict(size=12)), width=520, height=560,
                      margin=dict(t=110, l=60, r=20, b=20))
    return fig
