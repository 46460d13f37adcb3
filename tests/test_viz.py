"""Every figure built headless, its content checked against the pattern it draws."""
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from saattn_edu import patterns as P  # noqa: E402
from saattn_edu import viz  # noqa: E402
from saattn_edu.viz.receptive_field import receptive_field, reachability  # noqa: E402


def _image(fig, label):
    """The AxesImage with this label (first axes that has one)."""
    for ax in fig.axes:
        for im in ax.images:
            if im.get_label() == label:
                return np.ma.getdata(im.get_array())
    raise AssertionError(f"no image labelled {label!r}")


def _cell_means(mask, cell):
    """Brute-force fraction of allowed pairs per cell×cell tile (edge tiles smaller)."""
    n = mask.shape[0]
    nc = math.ceil(n / cell)
    out = np.zeros((nc, nc))
    for r in range(nc):
        for c in range(nc):
            out[r, c] = mask[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell].mean()
    return out


@pytest.fixture(autouse=True)
def _no_global_state():
    import matplotlib.pyplot as plt

    before, rc = plt.get_fignums(), dict(matplotlib.rcParams)
    yield
    assert plt.get_fignums() == before, "a viz function left a figure open in pyplot"
    assert dict(matplotlib.rcParams) == rc, "a viz function changed matplotlib's global style"


# ---- plot_mask ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", [P.SlidingWindow(9), P.DilatedWindow(5, 3, causal=True), P.Causal()])
def test_plot_mask_heatmap_is_the_mask(pattern):
    fig = viz.plot_mask(pattern, 50, block=16)
    np.testing.assert_array_equal(_image(fig, "mask"), pattern.mask(50))
    np.testing.assert_array_equal(_image(fig, "layout"), pattern.block_layout(50, 16))
    title = fig.axes[0].get_title()
    assert f"{pattern.num_pairs(50):,} pairs" in title and f"density {pattern.density(50):.3g}" in title


def test_plot_mask_plotly_traces_hold_mask_and_layout():
    p = P.SlidingWindow(7, causal=True)
    fig = viz.plot_mask(p, 40, block=8, engine="plotly")
    traces = {t.name: t for t in fig.data}
    np.testing.assert_array_equal(np.asarray(traces["mask"].z), p.mask(40))
    np.testing.assert_array_equal(np.asarray(traces["layout"].z).astype(bool), p.block_layout(40, 8))
    assert "density" in fig.layout.title.text


def test_plot_mask_large_n_is_downsampled_honestly(monkeypatch):
    p = P.DilatedWindow(11, 2)
    expected = _cell_means(p.mask(1003), 11)  # 1003 = 91·11 + 2: the last tile is partial
    monkeypatch.setattr(type(p), "mask", lambda self, n: pytest.fail("plot_mask built an n×n mask"))
    fig = viz.plot_mask(p, 1003, max_cells=92)
    np.testing.assert_allclose(_image(fig, "mask"), expected)
    assert "each cell = 11×11 tokens" in fig.axes[0].get_title()
    pfig = viz.plot_mask(p, 1003, max_cells=92, engine="plotly")
    np.testing.assert_allclose(np.asarray(pfig.data[-1].z), expected)


def test_plot_mask_accepts_csr_and_boolean_mask():
    m = P.SlidingWindow(5).mask(20)
    np.testing.assert_array_equal(_image(viz.plot_mask(m), "mask"), m)
    np.testing.assert_array_equal(_image(viz.plot_mask(P.CSR.from_mask(m)), "mask"), m)


def test_plot_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="engine"):
        viz.plot_mask(P.Dense(), 8, engine="bokeh")
    with pytest.raises(ValueError, match="n"):
        viz.plot_mask(P.Dense(), None)
    with pytest.raises(ValueError, match="block"):
        viz.plot_mask(P.Dense(), 8, block=0)
    with pytest.raises(TypeError, match="pattern"):
        viz.plot_mask("sliding", 8)


# ---- plot_layout ----------------------------------------------------------------------------------------------
def test_plot_layout_marks_full_and_partial_blocks():
    p = P.SlidingWindow(24, causal=True)
    n, b = 100, 16
    fill = _cell_means(p.mask(n), b)
    fig = viz.plot_layout(p, n, b)
    np.testing.assert_array_equal(_image(fig, "full"), (fill >= 1).astype(float))
    np.testing.assert_allclose(_image(fig, "partial"), np.where((fill > 0) & (fill < 1), fill, 0))
    stats = viz.layout_stats(p, n, b)
    active = fill > 0
    area = np.outer(*[np.minimum(b, n - np.arange(fill.shape[0]) * b)] * 2)
    assert stats["active_blocks"] == active.sum() and stats["pairs"] == p.num_pairs(n)
    assert stats["wasted_fraction"] == pytest.approx(1 - p.num_pairs(n) / area[active].sum())
    assert f"{stats['wasted_fraction']:.1%}" in fig.axes[0].get_title()
    pfig = viz.plot_layout(p, n, b, engine="plotly")
    np.testing.assert_allclose(np.asarray(pfig.data[0].customdata), fill)


def test_dense_layout_wastes_nothing():
    assert viz.layout_stats(P.Dense(), 96, 32)["wasted_fraction"] == 0.0


# ---- receptive field ------------------------------------------------------------------------------------------
def _brute_reach(mask, layers, query):
    step = mask | np.eye(len(mask), dtype=bool)
    reach = np.zeros(len(mask), dtype=bool)
    reach[query] = True
    rows = []
    for _ in range(layers):
        reach = (reach.astype(int) @ step.astype(int)) > 0
        rows.append(reach)
    return np.array(rows)


@pytest.mark.parametrize("pattern", [P.SlidingWindow(5), P.DilatedWindow(3, 4), P.SlidingWindow(4, causal=True)])
def test_receptive_field_matches_boolean_matrix_powers(pattern):
    n, L, q = 64, 4, 30
    np.testing.assert_array_equal(receptive_field(pattern, n, L, q), _brute_reach(pattern.mask(n), L, q))
    fig = viz.plot_receptive_field(pattern, n, L, q)
    for layer in range(L):
        np.testing.assert_array_equal(_image(fig, f"layer {layer + 1}")[0].astype(bool),
                                      _brute_reach(pattern.mask(n), L, q)[layer])


def test_stacked_windows_widen_linearly():
    rf = receptive_field(P.SlidingWindow(9), 200, layers=5, query=100)  # reach 4 each side per layer
    assert [int(r.sum()) for r in rf] == [9 + 8 * l for l in range(5)]


def test_global_tokens_connect_every_pair_in_two_hops():
    p = P.GlobalTokens((0,))
    assert not reachability(p, 40, hops=1).all()
    assert reachability(p, 40, hops=2).all()
    with pytest.raises(ValueError, match="query"):
        receptive_field(p, 40, 2, query=40)


def test_plot_receptive_field_plotly_has_a_slider():
    fig = viz.plot_receptive_field(P.SlidingWindow(5), 50, 3, 10, engine="plotly")
    assert len(fig.data) == 3 and len(fig.layout.sliders[0].steps) == 3
    np.testing.assert_array_equal(np.asarray(fig.data[2].z)[0], receptive_field(P.SlidingWindow(5), 50, 3, 10)[2])


# ---- attention maps -------------------------------------------------------------------------------------------
def test_plot_attention_map_side_by_side_heads_with_tokens():
    rng = np.random.default_rng(0)
    probs = rng.random((3, 6, 6))
    probs /= probs.sum(-1, keepdims=True)
    tokens = list("abcdef")
    fig = viz.plot_attention_map(probs, tokens=tokens)
    images = [np.ma.getdata(ax.images[0].get_array()) for ax in fig.axes if ax.images]
    assert len(images) == 3
    for h in range(3):
        np.testing.assert_allclose(images[h], probs[h])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == tokens
    pfig = viz.plot_attention_map({"window": probs[0], "dense": probs[1]}, engine="plotly")
    assert [t.name for t in pfig.data] == ["window", "dense"]
    with pytest.raises(ValueError, match="probs"):
        viz.plot_attention_map(np.zeros(5))
    with pytest.raises(ValueError, match="tokens"):
        viz.plot_attention_map(probs, tokens=["a"])


# ---- complexity -----------------------------------------------------------------------------------------------
def test_plot_complexity_draws_the_counts_and_fitted_exponents():
    from saattn_edu import complexity as C

    ns = [256, 512, 1024]
    p = P.SlidingWindow(64)
    ts = [1e-9 * n**2 for n in ns]
    fig = viz.plot_complexity({"window": p}, ns, d=32, measured={"dense numpy": (ns, ts)})
    flop_lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
    np.testing.assert_allclose(flop_lines["window"], [C.attention_flops(p, n, 32, execution="gather") for n in ns])
    np.testing.assert_allclose(flop_lines["dense"], [C.attention_flops(P.Dense(), n, 32, execution="dense")
                                                     for n in ns])
    labels = [line.get_label() for line in fig.axes[2].get_lines()]
    assert "dense numpy: t ∝ n^2.00" in labels
    with pytest.raises(ValueError, match="ns"):
        viz.plot_complexity([p], [128])


# ---- explorer -------------------------------------------------------------------------------------------------
def test_explorer_recomputes_when_a_slider_moves():
    e = viz.explorer()
    c = e.controls
    c["pattern"].value = "SlidingWindow"
    c["n"].value, c["causal"].value, c["block"].value = 512, False, 64
    c["window"].value = 33
    p = P.SlidingWindow(33)
    assert e.state["pairs"] == p.num_pairs(512) and e.state["density"] == pytest.approx(p.density(512))
    assert e.state["wasted_fraction"] == pytest.approx(viz.layout_stats(p, 512, 64)["wasted_fraction"])
    assert e.state["ideal_speedup"] == pytest.approx(e.state["dense_flops"] / e.state["flops"])
    # 512 tokens on <= 192 display cells: 3×3-token tiles
    np.testing.assert_allclose(_image(e.figures["mask"], "mask"), _cell_means(p.mask(512), 3))
    c["window"].value = 129
    assert e.state["pairs"] == P.SlidingWindow(129).num_pairs(512)
    assert c["dilation"].disabled and not c["window"].disabled
    assert "density" in e.summary.value


def test_explorer_time_it_adds_points():
    e = viz.explorer()
    e.controls["pattern"].value = "SlidingWindow"
    e.controls["n"].value = 128
    first = e.time_it(repeats=1)
    e.controls["n"].value = 256
    e.time_it(repeats=1)
    assert [t["n"] for t in e.timings] == [128, 256] and first["dense"] > 0 and first["sparse"] > 0
    assert "timing" in e.figures


def test_receptive_field_with_one_pattern_per_layer():
    n, q = 64, 32
    layers = [P.DilatedWindow(3, 4), P.SlidingWindow(3)]  # the query's layer is dilated, the one below local
    rf = receptive_field(layers, n, 2, q)
    step0, step1 = (p.mask(n) | np.eye(n, dtype=bool) for p in layers)
    first = step0[q]
    second = (first.astype(int) @ step1.astype(int)) > 0
    np.testing.assert_array_equal(rf, np.array([first, second]))
    assert viz.plot_receptive_field(layers, n, 2, q) is not None
    with pytest.raises(ValueError, match="layers"):
        receptive_field(layers, n, 3, q)


def test_image_patterns_draw_a_grid():
    p = P.Local2D(8, 8, 1)
    fig = viz.plot_receptive_field(p, 64, 2, 27)
    np.testing.assert_array_equal(_image(fig, "layer 2"), receptive_field(p, 64, 2, 27)[1].reshape(8, 8))
