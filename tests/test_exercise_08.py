"""Exercise 08 (the Triton kernel's inner loop): the solution gets full points in the interpreter, the stubs are
"not attempted", typical mistakes lose points, and the helpers translate Triton's wrapped errors.

The kernel runs in a fresh Python process: Triton's interpreter can run `tl.max` / `tl.sum` only when
TRITON_INTERPRET=1 was set before `triton` was first imported, which another test module may already have done.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from saattn_edu.grading import questions
from saattn_edu.grading.exercises import ex08

ROOT = Path(__file__).resolve().parents[1]
NAME = "08_triton_kernel.ipynb"

# Run the notebook's code cells (setup, the functions, the kernel) without its check cells, then grade every
# question with the given seed; MUTATE edits the learner's functions first (a typical mistake). Prints JSON.
_SCRIPT = r"""
import json, sys, nbformat
from saattn_edu._notebook import exec_cell
from saattn_edu.grading import questions, run_question
nb = nbformat.read(sys.argv[1], as_version=4)
g = {}
for cell in nb.cells:
    if cell.cell_type == "code" and "check(" not in cell.source and "colab" not in cell.source \
            and "time_fn" not in cell.source and "try:" not in cell.source.split("\n")[0]:
        src = cell.source.replace(sys.argv[3], sys.argv[4]) if sys.argv[3] else cell.source
        exec_cell(src, g, f"<cell {id(cell)}>")
out = {}
for name, q in questions("ex08").items():
    r = run_question(q, g[q.lookup_name], seed=int(sys.argv[2]), timeout=120)
    out[name] = {"status": r.status, "points": r.points, "max": r.max_points, "report": r.report()}
print("RESULT" + json.dumps(out))
"""


def _grade(folder: str, seed: int = 1, old: str = "", new: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT / folder / NAME), str(seed), old, new],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_four_graded_kernel_questions_a_star_and_fresh_inputs():
    qs = questions("ex08")
    assert list(qs) == ["full_tiles", "causal", "sliding_window", "block_layout", "star_transpose_tiles"]
    assert all(len(q.cases) >= 2 for q in qs.values())

    a = ex08._case("layout")(np.random.default_rng(1))
    b = ex08._case("layout")(np.random.default_rng(2))
    assert not np.array_equal(a["q"], b["q"]) and a["q"].dtype == np.float32 and np.abs(a["q"]).max() > 0


@pytest.mark.triton
def test_solution_gets_full_points_and_exercise_is_not_attempted():
    pytest.importorskip("triton")
    sol = _grade("solutions", seed=3)
    for name, r in sol.items():
        assert r["status"] == "passed" and r["points"] == r["max"] >= 2, r["report"]
    ex = _grade("exercises", seed=3)
    assert {r["status"] for r in ex.values()} == {"not attempted"}, [r["report"] for r in ex.values()]


@pytest.mark.slow  # three more interpreter runs (~35 s): the mistakes, not a feature
@pytest.mark.triton
def test_a_missing_load_mask_a_missing_nan_guard_and_a_missing_col_ok_fail():
    pytest.importorskip("triton")
    unmasked = _grade("solutions", 4, "mask=col_ok[:, None], other=0.0)  # (BN, D)", ")  # (BN, D)")
    assert unmasked["full_tiles"]["status"] == "passed"  # full tiles never cross n
    assert unmasked["causal"]["points"] < unmasked["causal"]["max"]  # NaN past n reaches the output
    no_guard = _grade("solutions", 4, 'm_safe = tl.where(m_new == float("-inf"), 0.0, m_new)', "m_safe = m_new")
    assert no_guard["full_tiles"]["status"] == "passed"  # full tiles give every row a finite max: said in the notebook
    assert no_guard["block_layout"]["points"] < no_guard["block_layout"]["max"]  # empty rows: NaN
    no_col_ok = _grade("solutions", 5, "(bits != 0) & col_ok[None, :]", "bits != 0")
    assert no_col_ok["causal"]["points"] < no_col_ok["causal"]["max"]  # the bits past n are 1: col_ok must stop there


def test_launch_turns_wrapped_stubs_back_into_not_implemented():
    class InterpreterError(Exception):
        pass

    def wrapped(*a, **k):
        raise InterpreterError("NotImplementedError('Exercise 1: positions kb * BN + offs_n0')")

    def other(*a, **k):
        raise ValueError("out of resources")

    with pytest.raises(NotImplementedError, match="Exercise 1: positions"):
        ex08.launch({(1,): wrapped}, (1,))
    with pytest.raises(ValueError):
        ex08.launch({(1,): other}, (1,))
    compile_error = ("at 4:4:\n    raise NotImplementedError(\"Exercise 3: load the bits\")\n"
                     " unsupported AST node type: Raise")
    assert ex08._stub_message(RuntimeError(compile_error)) == "Exercise 3: load the bits"


def test_stand_ins_let_the_notebook_define_kernels_without_triton():
    tl, triton = ex08.no_tl, ex08.no_triton

    @triton.jit
    def kernel(X, BM: tl.constexpr):
        return tl.load(X)

    with pytest.raises(RuntimeError, match="Triton is not installed"):
        kernel(0, 64)


def test_exercise_is_built_and_keeps_every_name_defined():
    nb = nbformat.read(ROOT / "exercises" / NAME, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count('raise NotImplementedError("Exercise') == 4
    for name in ("def load_kv_tile", "def online_softmax_update", "def mask_partial_tile", "def triton_attention"):
        assert name in code
    assert not any("raises-exception" in c.metadata.get("tags", []) for c in nb.cells)  # no cell raises


# ---- ★ the transposed plan: NumPy, graded everywhere; a catalogue of wrong answers, each losing on 20 seeds ------
def _transpose_solution():
    nb = nbformat.read(ROOT / "solutions" / "08_triton_kernel.ipynb", as_version=4)
    ns = {"np": np}
    exec(next(c.source for c in nb.cells if c.source.startswith("def transpose_tiles")), ns)
    return ns["transpose_tiles"]


def _unstable(ptr, idx, n_cols):
    ptr, idx = np.asarray(ptr), np.asarray(idx)
    rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    col_ptr = np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=n_cols))])
    return col_ptr, rows[np.argsort(-idx, kind="quicksort")[::-1]]  # equal key tiles: rows not in order


def _cols_from_largest_index(ptr, idx, n_cols):
    return _transpose_solution()(ptr, idx, int(np.max(idx)) + 1 if len(idx) else 0)


def _no_leading_zero(ptr, idx, n_cols):
    col_ptr, col_idx = _transpose_solution()(ptr, idx, n_cols)
    return col_ptr[1:], col_idx


def _rows_view_unchanged(ptr, idx, n_cols):
    return np.asarray(ptr), np.asarray(idx)


TRANSPOSE_MUTANTS = {"query tiles out of order in a key tile (unstable sort)": _unstable,
                     "key tiles counted up to the largest index only": _cols_from_largest_index,
                     "col_ptr without its leading 0": _no_leading_zero,
                     "the row view returned as it came": _rows_view_unchanged}


def test_transpose_tiles_solution_full_marks_and_mutants_lose_on_every_seed():
    from saattn_edu.grading import get_question, run_question

    q = get_question("ex08.star_transpose_tiles")
    assert run_question(q, _transpose_solution(), seed=0).points == q.max_points == 3
    for name, wrong in TRANSPOSE_MUTANTS.items():
        for seed in range(20):
            r = run_question(q, wrong, seed=seed, timeout=30)
            assert r.points < r.max_points, f"{name!r} kept full points on seed {seed}"
