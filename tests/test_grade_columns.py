"""The grade shows three columns (core points, ★ points, free text answered / not answered), and the course has a
challenge tier: every exercise notebook ends with a ★ task graded in the ★ column."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from saattn_edu.course.grade import NotebookGrade, table
from saattn_edu.course.results import TIER_COLUMNS, csv_text
from saattn_edu.grading import questions
from saattn_edu.grading.report import column_of, columns_line, shown_points
from saattn_edu.grading.tiers import is_star

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_STAR: set = set()  # every exercise notebook has its ★ task


def _result(qid, points, max_points, status):
    return {"question": qid, "points": points, "max_points": max_points, "status": status, "seed": 0, "cases": []}


def _grade(text_status="passed"):
    results = [_result("ex01.sliding_window_mask", 5, 5, "passed"), _result("ex01.mask_to_csr", 2, 4, "partial"),
               _result("ex01.text_q7", 1 if text_status == "passed" else 0, 1, text_status),
               _result("ex01.star_union_neighbors", 3, 4, "partial")]
    return NotebookGrade(path="sub/01_patterns.ipynb", graded=True, exercise="ex01", results=results)


def test_columns_of_a_question():
    assert column_of("ex01.sliding_window_mask") == "core"
    assert column_of("ex01.star_union_neighbors") == "★"
    assert column_of("ex07.text_q6") == "free text"
    assert shown_points(_result("ex07.text_q6", 1, 1, "passed")) == "answered"
    assert shown_points(_result("ex07.text_q6", 0, 1, "not attempted")) == "not answered"
    assert shown_points(_result("ex01.mask_to_csr", 2.5, 4, "partial")) == "2.5"


def test_the_printed_table_shows_core_star_and_free_text():
    out = table(_grade())
    assert "core 7/9   ★ 3/4   free text 1/1 answered" in out
    rows = {line.split()[0]: line for line in out.splitlines()[3:]}
    assert re.search(r"\s★\s+3\s+4\s+partial$", rows["ex01.star_union_neighbors"])
    assert re.search(r"\sfree text\s+answered\s+1\s+passed$", rows["ex01.text_q7"])
    assert "not answered" in table(_grade("not attempted"))
    assert "free text 0/1 answered" in table(_grade("not attempted"))


def test_the_json_and_the_csv_carry_the_columns():
    g = _grade("not attempted")
    assert g.to_dict()["columns"] == {"core": [7.0, 9.0], "star": [3.0, 4.0], "free_text": [0, 1]}
    assert NotebookGrade.from_dict(g.to_dict()).columns == g.columns
    row = next(csv.DictReader(io.StringIO(csv_text([g]))))
    assert set(TIER_COLUMNS) <= set(row)
    assert (row["core"], row["core max"], row["star"], row["star max"]) == ("7", "9", "3", "4")
    assert (row["free text answered"], row["free text asked"]) == ("0", "1")
    assert row["ex01.text_q7"] == "not answered" and row["ex01.mask_to_csr"] == "2"
    assert row["total"] == "10"  # the total still counts every point


def test_columns_line_over_check_results():
    assert columns_line([]) == "core 0/0   ★ 0/0   free text 0/0 answered"


@pytest.mark.parametrize("source", sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_exercise_notebook_ends_with_a_star_task(source):
    """The challenge tier: the notebook's last graded check is a ★ question, graded in the ★ column."""
    nn = source.name[:2]
    ids = re.findall(r'check\("(ex\d\d\.\w+)"', source.read_text(encoding="utf-8"))
    stars = [q for q in questions(f"ex{nn}") if is_star(f"ex{nn}.{q}")]
    if nn in WITHOUT_STAR:
        pytest.skip(f"notebook {nn} has no ★ task yet")
    assert stars, f"{source.name}: no ★ question (a name starting with star_) in grading/exercises/ex{nn}.py"
    assert ids and is_star(ids[-1]), f"{source.name}: the last check is {ids[-1] if ids else None}, not a ★ task"
    assert all(f"ex{nn}.{q}" in ids for q in stars), f"{source.name}: a ★ question is never checked"
