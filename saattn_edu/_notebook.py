"""Figures that show whatever the shell set: the inline backend in a notebook kernel.

A kernel inherits its server's environment, and servers, Docker images and CI often set `MPLBACKEND=Agg`. ipykernel
then keeps Agg instead of its inline backend, and every figure a lesson leaves as a cell's last value prints as
`<Figure size 520x500 with 2 Axes>`. Importing `saattn_edu` inside a kernel (every lesson does, in its first code
cell) switches a non-interactive backend to the inline one. A learner's own interactive choice (`%matplotlib widget`,
`qt`, ...) is kept; outside a kernel (scripts, pytest, a terminal IPython) nothing changes.

`exec_cell` runs a notebook cell's source outside a kernel as a kernel would for `@triton.jit` (the bench and the
kernel-exercise tests use it). The install address of the course (Colab's setup cell, the README) lives in
`saattn_edu.course.colab`.
"""
from __future__ import annotations

import linecache
import os
import sys

INLINE = "module://matplotlib_inline.backend_inline"
# Backends that draw only to files: in a kernel they leave a figure's text repr where its picture should be.
FILE_ONLY = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def kernel_shell():
    """The IPython shell of a notebook kernel (Jupyter, Colab, VS Code), or None outside one."""
    if "IPython" not in sys.modules:  # never imported: not in IPython, and importing it here would cost time
        return None
    from IPython import get_ipython

    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def current_backend() -> str:
    """Matplotlib's backend as configured, without resolving (or importing) one."""
    mpl = sys.modules.get("matplotlib")
    if mpl is None:
        return os.environ.get("MPLBACKEND", "")
    get = getattr(mpl.rcParams, "_get_backend_or_none", None)  # matplotlib >= 3.5; None while still "auto"
    return (get() if get else mpl.rcParams.get("backend")) or ""


def ensure_inline_figures(shell=None) -> bool:
    """In a kernel whose matplotlib backend draws only to files, switch to the inline one; True if it switched."""
    shell = shell if shell is not None else kernel_shell()
    if shell is None or current_backend().lower() not in FILE_ONLY:
        return False
    if "matplotlib" not in sys.modules:
        # Not imported yet: the environment decides the backend at import; matplotlib_inline then registers the
        # PNG formatter itself. Set for this process only, which is what ipykernel does when MPLBACKEND is unset.
        os.environ["MPLBACKEND"] = INLINE
        return True
    shell.run_line_magic("matplotlib", "inline")  # switches pyplot and registers the figure formatter
    return True


def exec_cell(source: str, namespace: dict, name: str) -> None:
    """exec a cell's source in `namespace` under the file name `name`, kept in linecache as IPython does:
    `@triton.jit` reads a function's source back (Triton 3.7 cannot from a plain `exec` of a string)."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), namespace)
