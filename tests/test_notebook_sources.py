"""Every lesson and solution notebook has one editable source, its py:percent text file, and the two agree."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "tools" / "sync_notebooks.py")
sync_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_notebooks)
STEMS = sync_notebooks.paired_stems(ROOT)


def test_every_lesson_and_solution_is_paired():
    names = {s.relative_to(ROOT).as_posix() for s in STEMS}
    assert len([n for n in names if n.startswith("notebooks/")]) == 14, sorted(names)
    assert len([n for n in names if n.startswith("solutions/")]) >= 12, sorted(names)
    for folder in sync_notebooks.PAIRED_FOLDERS:
        assert (ROOT / folder / "jupytext.toml").exists(), f"{folder}/ has no jupytext.toml"


@pytest.mark.parametrize("stem", STEMS, ids=lambda s: s.relative_to(ROOT).as_posix())
def test_text_source_and_notebook_agree(stem):
    problem = sync_notebooks.disagreement(stem)
    assert problem is None, f"{problem}: run `make sync` (edit the .py text source, or the notebook in JupyterLab)"


@pytest.fixture
def pair(tmp_path):
    """A copy of one solution pair (text + executed notebook + config) to edit."""
    src = ROOT / "solutions"
    for name in ("jupytext.toml", "13_ring_merge.py", "13_ring_merge.ipynb"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path / "13_ring_merge"


def _bump(path: Path, seconds: float) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime + seconds, stat.st_mtime + seconds))


def test_an_edited_text_source_is_caught_and_synced_keeping_other_outputs(pair):
    text = pair.with_suffix(".py")
    before = nbformat.read(pair.with_suffix(".ipynb"), as_version=4)
    text.write_text(text.read_text() + '\n# %%\nprint("a new cell")\n')
    _bump(text, 5)
    assert "different cells" in sync_notebooks.disagreement(pair)
    assert "synced from the text" in sync_notebooks.sync(pair, execute=False)
    assert sync_notebooks.disagreement(pair) is None
    after = nbformat.read(pair.with_suffix(".ipynb"), as_version=4)
    assert after.cells[-1].source == 'print("a new cell")'
    kept = [(a.source, a.get("outputs")) for a in after.cells[:-1]]
    assert kept == [(b.source, b.get("outputs")) for b in before.cells], "outputs of unchanged cells were lost"
    assert after.metadata["kernelspec"]["name"] == "python3"


def test_an_edited_notebook_is_caught_and_written_back_to_the_text(pair):
    ipynb = pair.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A new closing remark."))
    nbformat.write(nb, ipynb)
    _bump(ipynb, 5)
    assert sync_notebooks.disagreement(pair) is not None
    assert "synced from the notebook" in sync_notebooks.sync(pair, execute=False)
    assert "# A new closing remark." in pair.with_suffix(".py").read_text()
    assert sync_notebooks.disagreement(pair) is None


def test_a_missing_side_is_named(pair):
    pair.with_suffix(".py").unlink()
    assert "has no text source" in sync_notebooks.disagreement(pair)
