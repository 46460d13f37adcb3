"""Figures and widgets: masks, block layouts, complexity curves, attention maps, receptive fields, an explorer.

Every function returns its figure (matplotlib by default, plotly where `engine="plotly"`) and keeps no global
state: no style changes at import, no figures left open in pyplot.
"""
from .attention_maps import plot_attention_map
from .complexity_plots import complexity_table, plot_complexity, plot_timings
from .explorer import Explorer, explorer, pattern_stats
from .masks import block_fill, layout_stats, mask_grid, plot_layout, plot_mask
from .receptive_field import plot_receptive_field, reachability, receptive_field

__all__ = [
    "plot_mask", "plot_layout", "plot_complexity", "plot_timings", "plot_attention_map", "plot_receptive_field",
    "explorer", "Explorer", "mask_grid", "block_fill", "layout_stats", "complexity_table", "pattern_stats",
    "receptive_field", "reachability",
]
