"""`make sync`: bring every lesson and solution notebook in line with its one editable source.

Each `notebooks/NN_name.ipynb` and `solutions/NN_name.ipynb` is paired with the py:percent text file beside it
(`NN_name.py`) by the folder's `jupytext.toml`. JupyterLab keeps the two in step on every save; this script does it
from the command line:

    .venv/bin/python tools/sync_notebooks.py            # sync every pair, re-execute the notebooks that changed
    .venv/bin/python tools/sync_notebooks.py --check    # only report pairs that disagree (exit 1 if any)
    .venv/bin/python tools/sync_notebooks.py --no-execute solutions/07_flash.py
    .venv/bin/python tools/sync_notebooks.py --from-text notebooks/04_*.py   # after a merge: the text wins

When the two sides of a pair disagree, the side modified last is the source (as `jupytext --sync` decides): the
other side is rewritten from it, outputs are kept for every cell whose source did not change, and the notebook is
re-executed (cwd = its folder) so its outputs match its code.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs
from jupytext.config import load_jupytext_config
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PAIRED_FOLDERS = ("notebooks", "solutions")
TEXT_SUFFIX = ".py"


def text_format(folder: Path) -> dict:
    """The py:percent format with the folder's jupytext.toml options (metadata filters)."""
    config = load_jupytext_config(str(folder))
    if config is None:
        raise FileNotFoundError(f"{folder}: no jupytext.toml, so its notebooks have no paired text source")
    fmt = {"extension": TEXT_SUFFIX, "format_name": "percent"}
    fmt["notebook_metadata_filter"] = config.notebook_metadata_filter
    fmt["cell_metadata_filter"] = config.cell_metadata_filter
    return fmt


def paired_stems(root: Path = ROOT) -> list[Path]:
    """notebooks/NN_name and solutions/NN_name (no suffix) for every notebook or text source found."""
    stems = set()
    for folder in PAIRED_FOLDERS:
        for path in (root / folder).glob("[0-9][0-9]_*"):
            if path.suffix in (".ipynb", TEXT_SUFFIX):
                stems.add(path.with_suffix(""))
    return sorted(stems)


def notebook_as_text(ipynb: Path) -> str:
    """What the paired text source must hold for this notebook."""
    return jupytext.writes(nbformat.read(ipynb, as_version=4), fmt=text_format(ipynb.parent))


def disagreement(stem: Path) -> str | None:
    """None when the text source and the notebook hold the same cells; else what is wrong."""
    text, ipynb = stem.with_suffix(TEXT_SUFFIX), stem.with_suffix(".ipynb")
    if not text.exists():
        return f"{ipynb.name} has no text source {text.name}"
    if not ipynb.exists():
        return f"{text.name} has no notebook {ipynb.name}"
    if notebook_as_text(ipynb) != text.read_text(encoding="utf-8"):
        return f"{text.name} and {ipynb.name} hold different cells"
    return None


def text_to_notebook(stem: Path) -> None:
    """Rewrite the notebook's cells from the text source, keeping outputs of cells whose source is unchanged."""
    text, ipynb = stem.with_suffix(TEXT_SUFFIX), stem.with_suffix(".ipynb")
    fmt = text_format(text.parent)
    new = jupytext.read(text, fmt=fmt)
    if ipynb.exists():
        old = nbformat.read(ipynb, as_version=4)
        new = combine_inputs_with_outputs(new, old, fmt=fmt)
        new.metadata = {**old.metadata, **{k: v for k, v in new.metadata.items() if k != "jupytext"}}
    new.metadata.pop("jupytext", None)
    new.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                           "language": "python"})
    nbformat.write(new, ipynb)


def notebook_to_text(stem: Path) -> None:
    stem.with_suffix(TEXT_SUFFIX).write_text(notebook_as_text(stem.with_suffix(".ipynb")), encoding="utf-8")


def newer_side(stem: Path) -> str:
    """'text' or 'notebook': the side modified last (a missing side is never the source)."""
    text, ipynb = stem.with_suffix(TEXT_SUFFIX), stem.with_suffix(".ipynb")
    if not ipynb.exists():
        return "text"
    if not text.exists():
        return "notebook"
    return "text" if text.stat().st_mtime >= ipynb.stat().st_mtime else "notebook"


def execute_notebook(ipynb: Path, timeout: int = 180) -> float:
    """Run a notebook in place as it is committed: fresh kernel, cwd = its folder; returns the wall time.

    Widget state is dropped (it changes on every run and nbval ignores it), so re-running a notebook only
    changes what its cells really print.
    """
    nb = nbformat.read(ipynb, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ipynb.parent)}})
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, ipynb)
    return elapsed


def sync(stem: Path, execute: bool = True, source: str | None = None) -> str:
    """Bring one pair in line (from `source`, 'text' or 'notebook'; default the newer side); returns what was done."""
    problem = disagreement(stem)
    if problem is None:
        return "in sync"
    source = source or newer_side(stem)
    if source == "text":
        text_to_notebook(stem)
    else:
        notebook_to_text(stem)
        text_to_notebook(stem)  # the notebook's own cells, normalised as the text source reads them
    if execute:
        seconds = execute_notebook(stem.with_suffix(".ipynb"))
        return f"{problem}: synced from the {source}, re-executed in {seconds:.1f} s"
    return f"{problem}: synced from the {source} (not executed)"


def _stems_from_args(paths: list[str]) -> list[Path]:
    if not paths:
        return paired_stems()
    return [Path(p).resolve().with_suffix("") for p in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="text sources or notebooks (default: every pair)")
    parser.add_argument("--check", action="store_true", help="report pairs that disagree; change nothing")
    parser.add_argument("--no-execute", action="store_true", help="sync cells only; do not re-execute")
    parser.add_argument("--from-text", action="store_true",
                        help="the text source wins whatever the timestamps (e.g. after a git merge)")
    args = parser.parse_args(argv)
    stems = _stems_from_args(args.paths)
    if args.check:
        problems = [p for p in map(disagreement, stems) if p]
        print("\n".join(problems) or f"all {len(stems)} notebooks match their text sources")
        return 1 if problems else 0
    source = "text" if args.from_text else None
    for stem in stems:
        print(f"{stem.relative_to(ROOT)}: {sync(stem, not args.no_execute, source)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
