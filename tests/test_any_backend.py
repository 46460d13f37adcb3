"""Figures whatever the shell sets: a kernel started with MPLBACKEND=Agg still shows the course's figures, and the
explorer draws its pictures itself (they do not depend on the kernel's backend)."""
from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from saattn_edu import _notebook

FIGURE = "fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([0, 1]); fig"


def _run_cells(tmp_path, sources, env_backend):
    """Run `sources` in a fresh kernel of this Python whose environment sets MPLBACKEND (None: unset), with a bare
    kernel spec (the course's spec pins the inline backend, which would hide what this tests)."""
    spec = tmp_path / "kernels" / "bare"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python",
         "display_name": "bare"}))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if env_backend is not None:
        env["MPLBACKEND"] = env_backend
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    km = KernelManager(kernel_name="bare", kernel_spec_manager=specs)
    NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    return [{m for out in cell.outputs for m in out.get("data", {})} | {out.output_type for out in cell.outputs}
            for cell in nb.cells]


@pytest.mark.parametrize("order", ["pyplot first", "saattn_edu first"])
def test_a_kernel_under_agg_shows_figures_once_the_course_is_imported(tmp_path, order):
    imports = ["import matplotlib.pyplot as plt", "import saattn_edu"]
    if order == "saattn_edu first":
        imports.reverse()
    outputs = _run_cells(tmp_path, ["\n".join(imports), FIGURE, "import matplotlib; matplotlib.get_backend()"],
                         env_backend="Agg")
    assert "image/png" in outputs[1], outputs  # a picture, not "<Figure size 144x144 with 1 Axes>" alone


def test_agg_without_the_course_is_what_learners_saw(tmp_path):
    """The symptom this guards against: the same kernel without the course's import shows no picture."""
    outputs = _run_cells(tmp_path, ["import matplotlib.pyplot as plt", FIGURE], env_backend="Agg")
    assert "image/png" not in outputs[1], outputs


def test_a_learners_interactive_backend_is_kept(monkeypatch):
    import matplotlib  # noqa: F401  (imported: the switch goes through %matplotlib, not the environment)

    monkeypatch.delenv("MPLBACKEND", raising=False)
    calls = []
    shell = type("Shell", (), {"kernel": object(), "run_line_magic": lambda self, *a: calls.append(a)})()
    for backend in ("module://matplotlib_inline.backend_inline", "module://ipympl.backend_nbagg", "QtAgg", "inline"):
        monkeypatch.setattr(_notebook, "current_backend", lambda b=backend: b)
        assert _notebook.ensure_inline_figures(shell) is False
    monkeypatch.setattr(_notebook, "current_backend", lambda: "Agg")
    assert _notebook.ensure_inline_figures(shell) is True and calls == [("matplotlib", "inline")]


def test_outside_a_kernel_nothing_changes(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert _notebook.kernel_shell() is None  # pytest is no kernel
    assert _notebook.ensure_inline_figures() is False and os.environ["MPLBACKEND"] == "Agg"


def test_the_explorer_draws_its_pictures_itself(monkeypatch):
    """Its Output widgets get PNG images it rendered, not figures left to the kernel's backend to draw."""
    import importlib

    import IPython.display
    from IPython.display import Image

    explorer = importlib.import_module("saattn_edu.viz.explorer")  # the module (the package exports the function)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    e = explorer.explorer()
    assert len(shown) == 2 and all(isinstance(obj, Image) for obj in shown), shown  # the mask and the layout
    assert all(obj.data.startswith(b"\x89PNG") for obj in shown)
    assert explorer.as_image("text") == "text"  # tables and HTML pass through
    assert set(e.figures) == {"mask", "layout"}
