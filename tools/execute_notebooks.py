"""Execute notebooks in place, the way they are committed: fresh kernel, cwd = the notebook's folder.

    .venv/bin/python tools/execute_notebooks.py notebooks/00_*.ipynb solutions/01_patterns.ipynb

Widget state is stripped after execution (it changes on every run and nbval ignores it), so re-running a
notebook only changes what its cells really print. Prints the wall time of each notebook (the < 60 s budget).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int = 180) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> int:
    for arg in argv:
        print(f"{arg}: {execute(Path(arg)):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
