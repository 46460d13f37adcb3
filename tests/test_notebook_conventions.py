"""Every notebook opens the same way in JupyterLab and Colab, and its setup cell is a no-op outside Colab."""
from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from saattn_edu.course import colab

ROOT = Path(__file__).resolve().parents[1]
ALL = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "solutions", "exercises")
             for p in (ROOT / d).glob("*.ipynb"))
LESSONS = [p for p in ALL if p.startswith("notebooks/")]
BADGE = colab.BADGE
COLAB_URL = colab.COLAB_PREFIX  # saattn_edu.course.colab: the one place that names the repository
MAX_BYTES = 3_000_000


def _cells(rel):
    return nbformat.read(ROOT / rel, as_version=4).cells


class _FakeShell:
    """Stands in for get_ipython(): records the magics the setup cell would run."""

    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line, *args, **kwargs):
        self.magics.append((name, line))


def _run_setup_cell(source: str, in_colab: bool):
    shell = _FakeShell()
    widget_calls = []
    saved = {k: sys.modules.get(k) for k in ("google", "google.colab")}
    if in_colab:  # a fake google.colab whose output.enable_custom_widget_manager records the call
        colab = types.ModuleType("google.colab")
        colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: widget_calls.append(True))
        sys.modules["google"], sys.modules["google.colab"] = types.ModuleType("google"), colab
        sys.modules["google"].colab = colab
    else:
        sys.modules.pop("google.colab", None)
    try:
        exec(TransformerManager().transform_cell(source), {"get_ipython": lambda: shell})
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod
    return shell.magics, widget_calls


@pytest.mark.parametrize("rel", ALL)
def test_first_cells_are_the_colab_badge_and_setup(rel):
    cells = _cells(rel)
    assert cells[0].cell_type == "markdown" and BADGE in cells[0].source, f"{rel}: no Colab badge in cell 1"
    assert COLAB_URL + rel in cells[0].source, f"{rel}: the badge does not open this notebook"
    setup = cells[1]
    assert setup.cell_type == "code" and "colab-setup" in setup.metadata.get("tags", []), f"{rel}: no setup cell"


@pytest.mark.parametrize("rel", ALL)
def test_setup_cell_installs_only_in_colab(rel):
    source = _cells(rel)[1].source
    magics, widgets = _run_setup_cell(source, in_colab=False)
    assert magics == [] and widgets == [], f"{rel}: the setup cell did something outside Colab: {magics}"
    magics, widgets = _run_setup_cell(source, in_colab=True)
    assert [m for m, _ in magics] == ["pip"], f"{rel}: expected one %pip in Colab, got {magics}"
    line = magics[0][1]
    assert "saattn-edu" in line and "torch" not in line, f"{rel}: installs {line!r} (Colab keeps its own torch)"
    assert "%" + " ".join(magics[0]) == colab.PIP_LINE, f"{rel}: installs {line!r}, not {colab.PIP_LINE!r}"
    assert widgets == [True], f"{rel}: Colab's custom widget manager is not enabled"


@pytest.mark.parametrize("rel", LESSONS)
def test_lessons_state_goals_end_with_a_summary_and_point_onwards(rel):
    md = [c.source.lower() for c in _cells(rel) if c.cell_type == "markdown"]
    assert "goal" in md[0] or "you will" in md[0], f"{rel}: no learning goals at the top"
    tail = " ".join(md[-3:])
    assert "summary" in tail or "takeaways" in tail, f"{rel}: no summary at the end"
    assert "exercises/" in " ".join(md) or ".ipynb" in tail, f"{rel}: does not point to its exercise or the next lesson"


@pytest.mark.parametrize("rel", ALL)
def test_notebooks_are_small_and_exercises_cleared(rel):
    assert (ROOT / rel).stat().st_size < MAX_BYTES, f"{rel} is over {MAX_BYTES} bytes"
    nb = nbformat.read(ROOT / rel, as_version=4)
    assert "widgets" not in nb.metadata, f"{rel}: widget state is committed (it churns on every run)"
    if rel.startswith("exercises/"):
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{rel}: outputs committed"


FIGURE_MIMES = ("image/png", "application/vnd.plotly.v1+json")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _draws(source: str) -> bool:
    """The cell asks for a picture when it runs: plt.show(), display(...) of a figure, or a viz.plot_* call as its
    last line (cells that only define functions draw nothing until called)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    body = [node for node in ast.parse(code).body
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))]
    if not body:
        return False
    run = "\n".join(ast.get_source_segment(code, node) or "" for node in body)
    last = ast.get_source_segment(code, body[-1]) or ""
    return "plt.show()" in run or "display(fig" in run or "display(viz." in run or (
        last.startswith("viz.plot_") and not source.rstrip().endswith(";"))


@pytest.mark.parametrize("rel", [p for p in ALL if not p.startswith("exercises/")])
def test_every_cell_that_draws_shows_its_figure(rel):
    """Committed lessons and solutions show the figures their cells draw (a figure closed before it is shown
    leaves an empty output: the text then describes a picture nobody sees). Widget cells draw inside the widget."""
    missing = []
    for k, cell in enumerate(_cells(rel)):
        if cell.cell_type != "code" or not _draws(cell.source):
            continue
        mimes = {m for out in cell.get("outputs", []) for m in out.get("data", {})}
        if WIDGET_MIME not in mimes and not mimes & set(FIGURE_MIMES):
            missing.append(k)
    assert missing == [], f"{rel}: code cells {missing} draw a figure but their outputs hold none"
