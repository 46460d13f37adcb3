"""Every lesson and solution notebook, run top to bottom in JupyterLab in a real (headless) browser.

The helpers here also drive Notebook 7 (test_notebook7.py) and a server started with MPLBACKEND=Agg
(test_any_backend.py).

Asserts what nbval cannot see: no error output, every ipywidgets output rendered as a widget (not its text repr),
every plotly figure drawn, and the explorer redrawing when a slider moves. Saves a screenshot per notebook.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "browser" / "screenshots"
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "solutions")
                   for p in (ROOT / d).glob("*.ipynb"))
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Outputs the README shows, shot from the browser: notebook -> (text in the producing cell, file name).
README_SHOTS = {"notebooks/08_triton_block_sparse.ipynb": ("at16 = ", "kernel_timing.png")}
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

# What the page shows. JupyterLab gives widget and plotly outputs no data-mime-type, so they are found by the
# classes their renderers add; a widget that failed to render falls back to its text repr ("VBox(children=...").
DOM_SUMMARY_JS = r"""(panelSel) => {
  const panel = document.querySelector(panelSel);
  const outs = [...panel.querySelectorAll('.jp-OutputArea-output')];
  const topLevel = o => o.parentElement.closest('.jupyter-widgets') === null;
  const widgetViews = outs.filter(o => topLevel(o) && o.querySelector(':scope > .jupyter-widgets'));
  const textReprs = outs.filter(o => o.getAttribute('data-mime-type') === 'text/plain'
      && /^(VBox|HBox|Box|Tab|Accordion|Output|IntSlider|FloatSlider|Dropdown|Button|interactive)\(/
          .test(o.innerText.trim()));
  const plots = outs.filter(o => o.classList.contains('jp-RenderedPlotly'));
  return {
    widgets: widgetViews.length,
    widgetTextReprs: textReprs.length,
    widgetErrors: outs.filter(o => /Error displaying widget/.test(o.innerText)).length,
    plotly: plots.length,
    plotlyRendered: plots.filter(o => o.querySelector('.main-svg')).length,
    figureReprs: outs.filter(o => /^<Figure size/.test(o.innerText.trim())).length,
    images: outs.filter(o => o.querySelector('img[src^="data:image/png"]')).length,
  };
}"""


# Where each front end opens a notebook: JupyterLab's workspace, or Notebook 7's one-document page.
UI_PATHS = {"lab": "/lab/tree/{rel}?reset&token={token}", "notebook": "/notebooks/{rel}?token={token}"}


def open_notebook(page, lab, rel: str, ui: str = "lab") -> None:
    base, token, _ = lab
    page.goto(base + UI_PATHS[ui].format(rel=rel, token=token), wait_until="domcontentloaded")
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
        dom = page.evaluate(DOM_SUMMARY_JS, PANEL)
        if dom["plotlyRendered"] >= expect_plotly or time.monotonic() > deadline:
            return dom
        page.wait_for_timeout(500)


def run_and_check(page, lab, rel: str, ui: str = "lab", shot: str | None = None) -> dict:
    """Open `rel` in the front end `ui`, run every cell, and check what the page shows; returns the page summary."""
    open_notebook(page, lab, rel, ui)
    model = run_all(page)
    assert model["errors"] == [], f"{rel}: error outputs: {model['errors']}"
    assert model["unexecuted"] == 0, f"{rel}: {model['unexecuted']} code cells did not run"
    dom = dom_summary(page, expect_plotly=model["plotly"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / (shot or rel.replace("/", "__") + ".png")))
    assert dom["widgetErrors"] == dom["widgetTextReprs"] == 0, f"{rel}: widgets shown as text or errors: {dom}"
    assert dom["widgets"] == model["widgets"], f"{rel}: {model['widgets']} widget outputs, {dom['widgets']} drawn"
    # widgets may hold plotly figures of their own, so the page can show more figures than the cells' outputs
    assert dom["plotlyRendered"] == dom["plotly"] >= model["plotly"], f"{rel}: plotly figures not drawn: {dom}"
    assert dom["figureReprs"] == 0, f"{rel}: matplotlib figures shown as text: {dom}"
    return dom


@pytest.mark.browser
@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_notebook_runs_and_renders_in_jupyterlab(lab, page, rel):
    run_and_check(page, lab, rel)
    if rel in README_SHOTS:
        text, name = README_SHOTS[rel]
        cell = page.locator(f"{PANEL} .jp-CodeCell", has_text=text).first
        cell.locator(".jp-OutputArea-output").first.screenshot(path=str(SCREENSHOTS / name))


EXPLORER_JS = """(panelSel) => {
  const panel = document.querySelector(panelSel);
  const box = [...panel.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets')]
      .find(w => w.querySelector('.widget-slider') && w.querySelector('.widget-dropdown'));
  if (!box) return null;
  return {images: [...box.querySelectorAll('img')].map(i => i.src.length + ':' + i.src.slice(-64)),
          text: box.innerText};
}"""


@pytest.mark.browser
def test_explorer_redraws_when_a_slider_moves(lab, page):
    open_notebook(page, lab, EXPLORER_LESSON)
    assert run_all(page)["errors"] == []
    move_the_explorer(page)
    page.locator(f"{PANEL} .jp-OutputArea-output > .jupyter-widgets").first.screenshot(
        path=str(SCREENSHOTS / "explorer.png"))


EXPLORER_LESSON = "notebooks/01_patterns_gallery.ipynb"


def move_the_explorer(page, shot: str = "explorer_slider.png") -> None:
    """Move the explorer's window slider (after its lesson ran) and check that its pictures and numbers change."""
    before = page.evaluate(EXPLORER_JS, PANEL)
    assert before is not None and before["images"], "the explorer panel (sliders, dropdown, figures) is not on the page"
    slider = page.locator(f"{PANEL} .widget-slider", has=page.locator(".widget-label", has_text="window")).first
    slider.scroll_into_view_if_needed()
    box = slider.locator(".noUi-handle").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # drag the handle as a learner would (Notebook 7 keeps arrow keys for its own shortcuts)
    page.mouse.down()
    page.mouse.move(x + 30, y, steps=5)
    page.mouse.up()
    after = _settled_explorer(page)  # the release redraws: wait until the redraw has landed
    changed = [a != b for a, b in zip(after["images"], before["images"])]
    assert changed and all(changed), f"the explorer's figures did not change: {before} -> {after}"
    assert after["text"] != before["text"], "the explorer's numbers did not change with the window"
    slider.screenshot(path=str(SCREENSHOTS / shot))


def _settled_explorer(page, timeout_s: float = 60.0) -> dict:
    """The explorer's state once the kernel is idle and two reads a second apart agree."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        idle = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status")
        now = page.evaluate(EXPLORER_JS, PANEL)
        if idle == "idle" and now == last:
            return now
        last = now
    raise AssertionError("the explorer kept redrawing")
