"""FLOPs and memory against n on log-log axes, dense as the reference, measured times with fitted exponents."""
from __future__ import annotations

import numpy as np

from ..patterns import Dense, Pattern
from ..patterns.base import check_int, check_n
from ._common import new_figure, short_label


def _named(patterns) -> dict:
    """{label: Pattern} from a dict, a list or a single pattern."""
    if isinstance(patterns, Pattern):
        patterns = [patterns]
    items = patterns.items() if isinstance(patterns, dict) else ((short_label(repr(p), 40), p) for p in patterns)
    out = {}
    for label, p in items:
        if not isinstance(p, Pattern):
            raise TypeError(f"patterns[{label!r}] must be a Pattern, got {type(p).__name__}")
        out[str(label)] = p
    return out


def _as_runs(measured) -> dict:
    """{label: (ns, seconds)} from a dict of pairs, or a single (ns, seconds) pair."""
    if measured is None:
        return {}
    if not isinstance(measured, dict):
        measured = {"measured": measured}
    runs = {}
    for label, (ns, ts) in measured.items():
        ns, ts = np.asarray(ns, dtype=float), np.asarray(ts, dtype=float)
        if ns.shape != ts.shape or ns.ndim != 1 or len(ns) < 2:
            raise ValueError(f"measured[{label!r}] needs two equal 1-D sequences of >= 2 (n, seconds), "
                             f"got shapes {ns.shape} and {ts.shape}")
        runs[str(label)] = (ns, ts)
    return runs


def complexity_table(patterns, ns, d: int = 64, dtype="float32", execution: str = "gather", block: int = 64):
    """{label: {"flops": [...], "bytes": [...]}} per pattern and n, with dense attention under "dense"."""
    from .. import complexity as C

    d = check_int("d", d, minimum=1)
    ns = [check_n(n) for n in ns]
    rows = {"dense": (Dense(), "dense")}
    rows.update({label: (p, execution) for label, p in _named(patterns).items()})
    table = {}
    for label, (p, ex) in rows.items():
        table[label] = {
            "flops": [C.attention_flops(p, n, d, execution=ex, block=block) for n in ns],
            "bytes": [C.attention_bytes(p, n, d, dtype, execution=ex, block=block) for n in ns],
        }
    return table


def plot_complexity(patterns, ns, d: int = 64, measured=None, dtype="float32", execution: str = "gather",
                    block: int = 64):
    """Log-log FLOPs and memory per pattern against n (dense dashed); a third panel for measured times."""
    ns = [check_n(n) for n in ns]
    if len(ns) < 2:
        raise ValueError(f"ns needs at least two sequence lengths, got {ns}")
    table = complexity_table(patterns, ns, d, dtype, execution, block)
    runs = _as_runs(measured)
    fig, axes = new_figure(1, 3 if runs else 2, figsize=(13 if runs else 9, 3.8), squeeze=False)
    for ax, key, unit in zip(axes[0], ("flops", "bytes"), ("FLOPs", "bytes")):
        for label, row in table.items():
            style = dict(color="black", ls="--") if label == "dense" else dict(marker="o", ms=3)
            ax.loglog(ns, row[key], label=label, **style)
        ax.set(xlabel="sequence length n", ylabel=unit, title=f"{unit} per head (d={d}, {execution})")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    if runs:
        _plot_runs(axes[0, 2], runs)
    fig.tight_layout()
    return fig


def _plot_runs(ax, runs: dict) -> dict:
    """Measured seconds with a fitted power law per run; returns {label: exponent}."""
    from ..complexity import fit_power_law

    exponents = {}
    for label, (ns, ts) in runs.items():
        exponent, constant = fit_power_law(ns, ts)
        exponents[label] = exponent
        (line,) = ax.loglog(ns, ts, "o", label=f"{label}: t ∝ n^{exponent:.2f}")
        grid = np.geomspace(ns.min(), ns.max(), 50)
        ax.loglog(grid, constant * grid**exponent, color=line.get_color(), lw=1, alpha=0.7)
    ax.set(xlabel="sequence length n", ylabel="seconds", title="measured time (fitted exponent)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return exponents


def plot_timings(measured, title: str = "measured time"):
    """Measured (n, seconds) runs alone on log-log axes, each with its fitted exponent in the legend."""
    runs = _as_runs(measured)
    fig, ax = new_figure(figsize=(5.5, 3.8))
    _plot_runs(ax, runs)
    ax.set_title(title)
    fig.tight_layout()
    return fig
