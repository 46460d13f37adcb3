"""The course build (exercises from solutions) and `saattn grade` (notebooks run in a fresh kernel)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from saattn_edu.cli import main
from saattn_edu.course.build import (MANIFEST, build_exercises, cell_raises, make_exercise, raises_at_top_level,
                                     strip_regions)

ROOT = Path(__file__).resolve().parents[1]


def _toy_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        new_markdown_cell("# Toy\n[badge](https://x/blob/main/solutions/05_toy.ipynb)"),
        new_markdown_cell("## Exercise 3: add"),
        new_code_cell("def add(a, b):\n    x = 1\n    ### BEGIN SOLUTION: return a + b\n    return a + b\n"
                      "    ### END SOLUTION", outputs=[new_output("stream", text="hi")], execution_count=4),
        new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\nprint(answer)"),
        new_code_cell("print(add(1, 2))", execution_count=5),
        new_markdown_cell("Why?\n### BEGIN ANSWER\nBecause.\n### END ANSWER"),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2026"}
    return nb


def test_markers_become_stubs_with_the_indentation_kept():
    ex = make_exercise(_toy_notebook(), "05_toy.ipynb")
    assert ex.cells[2].source == 'def add(a, b):\n    x = 1\n    raise NotImplementedError("Exercise 3: return a + b")'
    assert ex.cells[3].source == 'raise NotImplementedError("Exercise 3: write your code here")\nprint(answer)'
    assert ex.cells[5].source == "Why?\nYOUR ANSWER HERE"
    assert "/exercises/05_toy.ipynb" in ex.cells[0].source  # the Colab badge opens the exercise


def test_outputs_counts_and_widget_state_are_cleared_and_only_top_level_stubs_tagged():
    ex = make_exercise(_toy_notebook(), "05_toy.ipynb")
    assert "widgets" not in ex.metadata and "execution" not in ex.cells[2].metadata
    code = [c for c in ex.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c.metadata.get("tags", []) for c in code] == [[], ["raises-exception"], ["raises-exception"]]


def test_marker_errors_name_the_cell():
    with pytest.raises(ValueError, match="never closed"):
        strip_regions("### BEGIN SOLUTION\nx = 1", 1, True, "nb cell 2")
    with pytest.raises(ValueError, match="END ANSWER.*closes"):
        strip_regions("### BEGIN SOLUTION\nx = 1\n### END ANSWER", 1, True, "nb cell 2")


def test_top_level_raise_detection():
    stub = 'raise NotImplementedError("Exercise 1: x")'
    assert raises_at_top_level(stub)
    assert raises_at_top_level(f"%matplotlib inline\nif True:\n    {stub}")
    assert raises_at_top_level(f"class A:\n    {stub}")  # a class body runs at definition time
    assert not raises_at_top_level(f"def f():\n    {stub}")
    assert not raises_at_top_level("x = 1")


def _copy_solutions(tmp_path) -> Path:
    src = tmp_path / "solutions"
    shutil.copytree(ROOT / "solutions", src)
    return src


def test_build_is_byte_identical_and_matches_the_committed_exercises(tmp_path):
    src = _copy_solutions(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    build_exercises(src, first)
    build_exercises(src, second)
    names = sorted(p.name for p in first.iterdir())
    assert MANIFEST in names and "01_patterns.ipynb" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        assert (first / name).read_bytes() == (ROOT / "exercises" / name).read_bytes(), (
            f"exercises/{name} is stale: run `make exercises` (saattn build-exercises)")
    assert build_exercises(src, first).written == []  # a rebuild rewrites nothing


def test_calls_to_stubbed_functions_are_tagged_too():
    nb = new_notebook(cells=[
        new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"),
        new_code_cell("def g(x):\n    return f(x) + 1"),  # calls a stub: raises when called
        new_code_cell("check('ex01.q6', f)\nh = lambda: f(1)"),  # passes f, never calls it at top level
        new_code_cell("for k in range(2):\n    print(g(k))"),
        new_code_cell("def f(x):\n    return 2 * x\nprint(g(1))"),  # f redefined: g works again
        new_code_cell("print(h())"),  # h is a lambda: not followed (a cell a build cannot see through)
    ])
    tags = [c.metadata.get("tags", []) for c in make_exercise(nb).cells]
    assert tags == [[], [], [], ["raises-exception"], [], []]


def test_exercise_notebooks_tag_only_cells_that_raise():
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        defs = {}
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            tagged = "raises-exception" in cell.metadata.get("tags", [])
            assert tagged == cell_raises(cell.source, defs), (path.name, cell.source)


def test_an_edited_exercise_is_skipped_unless_forced(tmp_path, capsys):
    src, dst = _copy_solutions(tmp_path), tmp_path / "exercises"
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst)]) == 0
    target = dst / "01_patterns.ipynb"
    edited = target.read_bytes().replace(b"raise NotImplementedError(\\\"Exercise 1", b"return None  # (\\\"mine")
    assert edited != target.read_bytes()
    target.write_bytes(edited)
    capsys.readouterr()
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst)]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "01_patterns.ipynb" in out and "--force" in out
    assert target.read_bytes() == edited
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst), "--check"]) == 1
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst), "--force"]) == 0
    assert target.read_bytes() == (ROOT / "exercises" / "01_patterns.ipynb").read_bytes()
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst), "--check"]) == 0


def test_grade_reports_what_it_cannot_grade(tmp_path, capsys):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("not a notebook")
    assert main(["grade", str(bad), str(tmp_path / "missing.ipynb"), "--report", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert out.count("NOT GRADED") == 2
    assert [n["graded"] for n in json.loads((tmp_path / "r.json").read_text())["notebooks"]] == [False, False]


def _learner_edited(tmp_path) -> Path:
    """A submission whose check cells were deleted / moved and one answer wrong: grading must still work."""
    nb = nbformat.read(ROOT / "solutions" / "01_patterns.ipynb", as_version=4)
    cells = nb.cells
    checks = {c.source: k for k, c in enumerate(cells) if c.source.startswith("check(")}
    del cells[checks['check("ex01.sliding_window_mask", sliding_window_mask)']]  # deleted check cell
    k = next(k for k, c in enumerate(cells) if c.source.startswith('check("ex01.dilated'))
    cells.insert(3, cells.pop(k))  # moved above its function: it raises NameError when run
    g = next(c for c in cells if c.source.startswith("def global_tokens_mask"))
    g.source = g.source.replace("g[:, None] | g[None, :]", "g[:, None] & g[None, :]")  # wrong answer
    path = tmp_path / "learner.ipynb"
    nbformat.write(nb, path)
    return path


def test_grade_the_whole_course_and_a_folder_of_submissions(tmp_path, capsys):
    """One kernel per notebook: every solution gets full points, every exercise 0 points and "not attempted", and
    a learner's edited notebook (deleted / moved check cells, one wrong answer) is still graded, unmodified."""
    subs = tmp_path / "subs"
    subs.mkdir()
    learner = _learner_edited(subs)
    before = learner.read_bytes()
    solutions = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    exercises = [ROOT / "exercises" / p.name for p in solutions]
    report, table = tmp_path / "report.json", tmp_path / "grades.csv"
    rc = main(["grade", *map(str, solutions + exercises), "--all", str(subs), "--report", str(report),
               "--csv", str(table), "--jobs", "2"])
    assert rc == 0, capsys.readouterr().out
    assert learner.read_bytes() == before  # never modified
    entries = json.loads(report.read_text())["notebooks"]
    books = {(Path(n["path"]).parent.name, Path(n["path"]).name): n for n in entries}
    for p in solutions:
        sol, ex = books["solutions", p.name], books["exercises", p.name]
        assert sol["graded"] and sol["points"] == sol["max_points"] > 0, (p.name, sol["results"])
        assert {r["status"] for r in sol["results"]} == {"passed"}, p.name
        assert ex["graded"] and ex["points"] == 0 and ex["max_points"] == sol["max_points"], p.name
        assert {r["status"] for r in ex["results"]} == {"not attempted"}, (p.name, ex["results"])
        assert sol["cell_errors"] == [], p.name
        assert {e["ename"] for e in ex["cell_errors"]} <= {"NotImplementedError"}, (p.name, ex["cell_errors"])
    status = {r["question"]: r["status"] for r in books["subs", "learner.ipynb"]["results"]}
    assert status.pop("ex01.global_tokens_mask") in ("partial", "failed")
    assert set(status.values()) == {"passed"}  # deleted and moved check cells lose nothing
    assert any(e["ename"] == "NameError" for e in books["subs", "learner.ipynb"]["cell_errors"])
    rows = {Path(r["submission"]).name + Path(r["submission"]).parent.name: r for r in csv.DictReader(table.open())}
    # 24 core points + 1 free-text (answered) + 4 ★
    assert rows["01_patterns.ipynbsolutions"]["total"] == "29" and rows["01_patterns.ipynbexercises"]["total"] == "0"
    assert rows["learner.ipynb"]["ex01.q6"] == "2"
    out = capsys.readouterr().out
    assert "exercise" in out and "not attempted" in out
