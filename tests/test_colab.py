"""Colab, rehearsed here, and the course's address in one place.

The rehearsal runs a lesson the way Colab would: `google.colab` (a stand-in recording its calls) is imported before
any cell, the setup cell's `%pip install` is served by a wheel built from this checkout (pip installs it with
`--target` into a temporary folder: no network, nothing installed in this environment), and every cell must then run
with the package imported from that install, the custom widget manager enabled and plotly on its Colab renderer.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from saattn_edu.course import colab

ROOT = Path(__file__).resolve().parents[1]
LESSON = "notebooks/01_patterns_gallery.ipynb"  # figures, core widgets, plotly and the explorer
SOURCES = sorted([*ROOT.glob("notebooks/*.py"), *ROOT.glob("solutions/*.py")])
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / d).glob("*.ipynb"))

STANDIN_OUTPUT = '''"""Stand-in for google.colab.output: records what the notebook asks of Colab's front end."""
calls = []


def enable_custom_widget_manager():
    calls.append("enable_custom_widget_manager")
'''

# Runs before the lesson's first cell: what a Colab runtime has set up before any cell runs.
COLAB_START = '''import shlex, subprocess, sys
sys.path.insert(0, {standin!r})
import google.colab  # Colab imports it before any cell: the setup cell tests for it in sys.modules
import google.colab.output
from IPython.core.magic import register_line_magic
PIP_CALLS = []

@register_line_magic
def pip(line):
    """Colab's %pip, with the GitHub download replaced by the wheel built from this checkout."""
    args = shlex.split(line)
    PIP_CALLS.append(args)
    assert args == ["install", "-q", {install!r}], args
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", {target!r},
                    {wheel!r}], check=True)
    sys.path.insert(0, {target!r})  # where pip put it (Colab's site-packages is on sys.path already)
'''

REPORT = '''import json, saattn_edu, plotly.io
print("REHEARSAL " + json.dumps({"package": saattn_edu.__file__, "pip": PIP_CALLS, "colab": google.colab.output.calls,
                                 "renderer": plotly.io.renderers.default}))
'''


def _wheel(tmp_path: Path) -> Path:
    """A wheel of this checkout, built from a copy (the checkout gets no build/ or egg-info)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "saattn_edu", src / "saattn_edu", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("saattn_edu-*.whl")
    return wheel


def test_colab_rehearsal_installs_the_wheel_and_runs_a_lesson(tmp_path):
    standin = tmp_path / "standin" / "google" / "colab"  # `google` stays a namespace package (google.protobuf ...)
    standin.mkdir(parents=True)
    (standin / "__init__.py").write_text("from . import output  # noqa: F401\n")
    (standin / "output.py").write_text(STANDIN_OUTPUT)
    target = tmp_path / "site"
    start = COLAB_START.format(standin=str(tmp_path / "standin"), install=colab.INSTALL, target=str(target),
                               wheel=str(_wheel(tmp_path)))
    nb = nbformat.read(ROOT / LESSON, as_version=4)
    assert colab.PIP_LINE in nb.cells[1].source  # the lesson's own setup cell, unchanged
    nb.cells = [nbformat.v4.new_code_cell(start), *nb.cells, nbformat.v4.new_code_cell(REPORT)]

    run = tmp_path / "run"
    run.mkdir()
    spec = tmp_path / "kernels" / "colab"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python",
         "display_name": "colab rehearsal"}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}  # no checkout on the path
    # COLAB_NOTEBOOK_ID: set in every Colab runtime; plotly picks its Colab renderer from it
    env.update(HOME=str(tmp_path / "home"), MPLCONFIGDIR=str(tmp_path / "mpl"), COLAB_NOTEBOOK_ID="rehearsal")
    km = KernelManager(kernel_name="colab", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(run)}}).execute(env=env)

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == [], errors
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    report = json.loads(text.split("REHEARSAL ", 1)[1])
    assert report["pip"] == [["install", "-q", colab.INSTALL]], report  # the setup cell's one install
    assert Path(report["package"]).is_relative_to(target), report  # the package came from the wheel's install
    assert report["colab"] == ["enable_custom_widget_manager"], report  # widgets: Colab's custom manager on
    assert report["renderer"] == "colab", report  # plotly found Colab by itself
    mimes = {m for c in nb.cells for o in c.get("outputs", []) for m in o.get("data", {})}
    assert {"image/png", "application/vnd.jupyter.widget-view+json", "text/html"} <= mimes, mimes


# ---- the address in one place ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_every_notebook_installs_from_and_opens_at_the_course_address(rel):
    cells = nbformat.read(ROOT / rel, as_version=4).cells
    assert colab.colab_url(rel) in cells[0].source, f"{rel}: its badge is not {colab.colab_url(rel)}"
    assert colab.PIP_LINE in cells[1].source, f"{rel}: its setup cell does not run {colab.PIP_LINE!r}"
    assert colab.rewrite(cells[0].source + cells[1].source) == cells[0].source + cells[1].source, rel


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_text_source_agrees_with_the_course_address(path):
    text = path.read_text()
    assert "# " + colab.PIP_LINE in text, f"{path.name}: no `# {colab.PIP_LINE}` in its setup cell"
    assert colab.rewrite(text) == text, f"{path.name}: run python tools/set_course_address.py"


def test_the_readme_names_the_same_address():
    readme = (ROOT / "README.md").read_text()
    assert colab.INSTALL in readme and colab.rewrite(readme) == readme


def test_publishing_elsewhere_rewrites_every_address(monkeypatch):
    """What tools/set_course_address.py does after REPOSITORY changes: every badge and install line follows."""
    text = (ROOT / "notebooks" / "01_patterns_gallery.py").read_text()
    monkeypatch.setattr(colab, "INSTALL", "saattn-edu @ git+https://github.com/someone/course-fork")
    monkeypatch.setattr(colab, "COLAB_PREFIX", colab.COLAB_PREFIX.replace("saattn-edu/saattn-edu/blob/main",
                                                                          "someone/course-fork/blob/v2"))
    new = colab.rewrite(text)
    assert "saattn-edu/saattn-edu" not in new
    assert new.count("someone/course-fork") == text.count("saattn-edu/saattn-edu")
    assert new.replace("someone/course-fork/blob/v2", "saattn-edu/saattn-edu/blob/main").replace(
        "someone/course-fork", "saattn-edu/saattn-edu") == text
