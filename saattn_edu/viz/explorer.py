"""`explorer()`: one ipywidgets panel to play with every pattern's knobs and see the cost change.

Core ipywidgets only (they render in JupyterLab, Notebook 7, Colab and VS Code); figures are matplotlib figures
rendered to PNG by the panel itself and shown in Output widgets, so they appear whatever matplotlib backend the
kernel runs (Agg included); plotly's FigureWidget would need anywidget. The panel exposes `controls`, `state`, `figures`
and `timings`, so tests and notebooks can drive it without a browser.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .. import patterns as P
from .complexity_plots import plot_timings
from .masks import layout_stats, plot_layout, plot_mask

HEAD_DIM = 64  # d used for FLOP counts and timings
MAX_TIMED_N = 4096  # dense NumPy beyond this takes seconds per call on a laptop


def _global(s):
    return tuple(range(s["global_tokens"]))


# name -> (builder from the control values, the controls it uses besides n / block)
BUILDERS = {
    "Dense": (lambda s: P.Dense(), ()),
    "Causal": (lambda s: P.Causal(), ()),
    "SlidingWindow": (lambda s: P.SlidingWindow(s["window"], causal=s["causal"]), ("window", "causal")),
    "DilatedWindow": (lambda s: P.DilatedWindow(s["window"], s["dilation"], causal=s["causal"]),
                      ("window", "dilation", "causal")),
    "Window + GlobalTokens": (lambda s: P.SlidingWindow(s["window"], causal=s["causal"]) | P.GlobalTokens(_global(s)),
                              ("window", "global_tokens", "causal")),
    "Longformer": (lambda s: P.Longformer(s["window"], _global(s), dilation=s["dilation"], causal=s["causal"]),
                   ("window", "dilation", "global_tokens", "causal")),
    "BigBird": (lambda s: P.BigBird(block=s["block"], window_blocks=max(1, s["window"] // s["block"]),
                                    global_blocks=math.ceil(s["global_tokens"] / s["block"]),
                                    random_blocks=s["random_blocks"], seed=0, causal=s["causal"]),
                ("window", "global_tokens", "random_blocks", "causal")),
    "Strided": (lambda s: P.Strided(s["window"], causal=s["causal"]), ("window", "causal")),
    "AttentionSinks": (lambda s: P.AttentionSinks(max(1, s["global_tokens"]), s["window"]),
                       ("window", "global_tokens")),
}


def available_patterns() -> list[str]:
    """Explorer entries whose pattern classes exist in this version of `saattn_edu.patterns`."""
    needs = {"Window + GlobalTokens": "GlobalTokens"}
    return [name for name in BUILDERS if hasattr(P, needs.get(name, name.split()[0]))]


def pattern_stats(pattern, n: int, block: int, d: int = HEAD_DIM, csr=None) -> dict:
    """Density, FLOPs (gather execution), ideal speedup over dense, and block-level waste for one pattern."""
    from ..complexity import attention_flops

    csr = pattern.neighbors(n) if csr is None else csr
    blocks = layout_stats(csr, block=block)
    flops = attention_flops(pattern, n, d, execution="gather")
    dense = attention_flops(P.Dense(), n, d, execution="dense")
    return {"pattern": repr(pattern), "n": n, "block": block, "pairs": csr.nnz, "density": csr.nnz / n**2,
            "flops": flops, "dense_flops": dense, "ideal_speedup": dense / flops if flops else math.inf,
            "active_blocks": blocks["active_blocks"], "blocks": blocks["blocks"],
            "wasted_fraction": blocks["wasted_fraction"]}


def _controls():
    import ipywidgets as W

    style = {"description_width": "110px"}

    def slider(desc, value, lo, hi, step=1):
        return W.IntSlider(value=value, min=lo, max=hi, step=step, description=desc, style=style,
                           continuous_update=False)

    return {
        "pattern": W.Dropdown(options=available_patterns(), value="Longformer" if "Longformer" in available_patterns()
                              else "SlidingWindow", description="pattern", style=style),
        "n": slider("n (tokens)", 1024, 64, MAX_TIMED_N, 64),
        "window": slider("window", 128, 1, 1024),
        "dilation": slider("dilation", 1, 1, 16),
        "global_tokens": slider("global tokens", 2, 0, 64),
        "random_blocks": slider("random blocks", 2, 0, 8),
        "block": slider("block size", 64, 16, 256, 16),
        "causal": W.Checkbox(value=False, description="causal", style=style),
    }


class Explorer:
    """The panel: `controls` (widgets by name), `state` (numbers shown), `figures`, `timings`, `widget`."""

    def __init__(self, controls=None):
        import ipywidgets as W

        self.controls = controls or _controls()
        self.summary = W.HTML()
        self.outputs = {"mask": W.Output(), "layout": W.Output(), "progress": W.Output(), "timing": W.Output()}
        self.button = W.Button(description="time it", icon="clock-o", tooltip="dense vs sparse NumPy at this n")
        self.button.on_click(lambda _: self.time_it())
        self.state, self.figures, self.timings = {}, {}, []
        for w in self.controls.values():
            w.observe(lambda change: self.update(), names="value")
        left = W.VBox(list(self.controls.values()) + [self.summary, self.button, self.outputs["progress"]])
        pictures = W.HBox([self.outputs["mask"], self.outputs["layout"]])
        self.widget = W.VBox([W.HBox([left, self.outputs["timing"]]), pictures])
        self.update()

    def values(self) -> dict:
        return {name: w.value for name, w in self.controls.items()}

    def pattern(self):
        """The pattern the controls describe."""
        values = self.values()
        return BUILDERS[values["pattern"]][0](values)

    def update(self) -> None:
        """Recompute the numbers and redraw the mask and the block layout."""
        values = self.values()
        used = BUILDERS[values["pattern"]][1]
        for name in ("window", "dilation", "global_tokens", "random_blocks", "causal"):
            self.controls[name].disabled = name not in used  # greyed out: this pattern ignores it
        try:
            p = self.pattern()
        except (ValueError, TypeError) as err:  # e.g. a window the pattern refuses: say so, keep the last picture
            self.state = {"error": str(err)}
            self.summary.value = f"<b style='color:#b2182b'>{err}</b>"
            return
        csr = p.neighbors(values["n"])  # once: the numbers and both pictures read it
        self.state = pattern_stats(p, values["n"], values["block"], csr=csr)
        self.summary.value = _summary_html(self.state)
        self.figures["mask"] = plot_mask(csr, block=values["block"], max_cells=192, label=repr(p))
        self.figures["layout"] = plot_layout(csr, block=values["block"], label=repr(p))
        for key in ("mask", "layout"):
            _show(self.outputs[key], self.figures[key])

    def time_it(self, repeats: int = 3) -> dict:
        """Time dense vs sparse NumPy attention at the chosen n (progress bar), add the point to the plot."""
        from tqdm.auto import tqdm

        from .. import reference as R

        n, p = self.controls["n"].value, self.pattern()
        rng = np.random.default_rng(0)
        q, k, v = (rng.standard_normal((n, HEAD_DIM)).astype(np.float32) for _ in range(3))  # (n, d)
        csr = p.neighbors(n)
        runs = {"dense": lambda: R.dense_attention(q, k, v), "sparse": lambda: R.sparse_attention(q, k, v, csr)}
        seconds = {name: [] for name in runs}
        with self.outputs["progress"]:
            for step in tqdm(range(2 * (repeats + 1)), desc=f"timing n={n}", leave=False):
                name = "dense" if step % 2 == 0 else "sparse"
                start = time.perf_counter()
                runs[name]()
                if step >= 2:  # the first call of each warms caches and allocators up
                    seconds[name].append(time.perf_counter() - start)
        point = {"n": n, "pattern": repr(p), **{name: float(np.median(t)) for name, t in seconds.items()}}
        self.timings.append(point)
        self._draw_timings()
        return point

    def _draw_timings(self) -> None:
        ns = [t["n"] for t in self.timings]
        runs = {name: (ns, [t[name] for t in self.timings]) for name in ("dense", "sparse")}
        if len(set(ns)) < 2:  # a fit needs two sizes: show the points as a table until then
            rows = "".join(f"<tr><td>{t['n']}</td><td>{t['dense']*1e3:.1f} ms</td><td>{t['sparse']*1e3:.1f} ms</td>"
                           f"</tr>" for t in self.timings)
            _show(self.outputs["timing"], _html_table(rows))
            return
        self.figures["timing"] = plot_timings(runs, title="NumPy, one head, d=64")
        _show(self.outputs["timing"], self.figures["timing"])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _html_table(rows: str):
    from IPython.display import HTML

    return HTML("<table><tr><th>n</th><th>dense</th><th>sparse</th></tr>" + rows + "</table>"
                "<i>time a second n to see the fitted exponents</i>")


def _summary_html(s: dict) -> str:
    return (f"<div style='line-height:1.5'>pairs <b>{s['pairs']:,}</b> · density <b>{s['density']:.3%}</b><br>"
            f"FLOPs <b>{s['flops']:.3g}</b> (dense {s['dense_flops']:.3g}, d={HEAD_DIM})<br>"
            f"ideal speedup over dense <b>{s['ideal_speedup']:.1f}×</b><br>"
            f"blocks computed {s['active_blocks']}/{s['blocks']} · wasted work in them "
            f"<b>{s['wasted_fraction']:.1%}</b></div>")


def _show(out, obj) -> None:
    from IPython.display import display

    out.clear_output(wait=True)
    with out:
        display(as_image(obj))


def as_image(obj):
    """A matplotlib figure as a PNG image (drawn here, not by the kernel's backend); anything else as it is."""
    from matplotlib.figure import Figure

    if not isinstance(obj, Figure):
        return obj
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    obj.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return Image(data=buf.getvalue(), format="png")


def explorer() -> Explorer:
    """The pattern explorer panel (display it as a cell's last expression)."""
    return Explorer()
