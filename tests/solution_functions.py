"""The functions a solution notebook defines, without a kernel (for the exercise tests)."""
from __future__ import annotations

import math
import types
from pathlib import Path

import nbformat
import numpy as np

from saattn_edu import patterns as P
from saattn_edu import reference as R

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def solution_functions(name: str) -> types.SimpleNamespace:
    """Run every cell of solutions/<name> that starts with `def ` in the names the notebooks import."""
    ns = {"np": np, "math": math, "P": P, "R": R}
    for cell in nbformat.read(SOLUTIONS / name, as_version=4).cells:
        if cell.cell_type == "code" and cell.source.startswith("def "):
            exec(cell.source, ns)
    return types.SimpleNamespace(**ns)
