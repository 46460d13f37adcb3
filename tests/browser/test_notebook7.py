"""The course in Jupyter Notebook 7 (`jupyter notebook`: its own one-document UI, served by the same Jupyter
server as JupyterLab): a lesson with its figures, widgets, plotly charts and explorer, and an exercise."""
from __future__ import annotations

import pytest

from browser.conftest import HAS_NOTEBOOK7  # tests/ is on sys.path, as for test_make_lab.py
from test_jupyterlab import EXPLORER_LESSON, PANEL, SCREENSHOTS, move_the_explorer, open_notebook, run_all, \
    run_and_check

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not HAS_NOTEBOOK7, reason="Notebook 7 is not installed (pip install notebook)")]
EXERCISE = "exercises/01_patterns.ipynb"


def test_lesson_and_explorer_in_notebook7(lab, page):
    dom = run_and_check(page, lab, EXPLORER_LESSON, ui="notebook", shot="notebook7__01_patterns_gallery.png")
    assert page.locator("#top-panel, .jp-NotebookKernelStatus, #jp-top-panel").count() > 0  # Notebook 7's page
    assert "/notebooks/" in page.url and "/lab/" not in page.url, page.url
    assert dom["images"] > 0 and dom["plotlyRendered"] > 0 and dom["widgets"] > 0, f"nothing drawn: {dom}"
    move_the_explorer(page, shot="notebook7__explorer_slider.png")


def test_exercise_in_notebook7(lab, page):
    """An untouched exercise runs top to bottom: its checks say "not attempted", its stubs raise NotImplementedError."""
    open_notebook(page, lab, EXERCISE, ui="notebook")
    model = run_all(page)
    assert model["unexecuted"] == 0, model
    unexpected = [e for e in model["errors"] if "NotImplementedError" not in e]
    assert unexpected == [], f"{EXERCISE}: {unexpected}"
    checks = page.locator(f"{PANEL} .jp-CodeCell", has_text='check("ex01.')
    assert checks.count() >= 3
    assert "ex01." in checks.first.locator(".jp-OutputArea").inner_text()  # the check's report is shown
    page.screenshot(path=str(SCREENSHOTS / "notebook7__exercises__01_patterns.png"))
