"""Lessons never hold an exercise's answer: no solution body, no exercise function defined, no pointer to solutions/."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
OWNED = [p for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")) if not p.name.startswith("08_")]
GRID = re.compile(r"^np\.arange\(\w+\)\[:, None\](?: - |, )np\.arange\(\w+\)\[None, :\]$")  # index grids
REGION = re.compile(r"### BEGIN SOLUTION[^\n]*\n(.*?)### END SOLUTION", re.S)


def _code_lines(text: str) -> list[str]:
    """Code lines without comments and blanks, spaces squeezed: what a copy would carry."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\s+", " ", line))
    return out


def _answers(solution: Path):
    text = solution.read_text()
    for body in REGION.findall(text):
        lines = _code_lines(body)
        if lines:
            yield lines


def _functions(solution: Path) -> set[str]:
    """Names of the functions whose bodies are exercises (a def followed by a solution region)."""
    pattern = r"^def (\w+)\(.*\n(?:    \"\"\".*\"\"\"\n)?    ### BEGIN SOLUTION"
    return set(re.findall(pattern, solution.read_text(), re.M))


@pytest.mark.parametrize("solution", OWNED, ids=lambda p: p.stem)
def test_no_lesson_holds_an_answer(solution):
    lessons = {p.name: _code_lines(p.read_text()) for p in LESSONS}
    found = []
    for lines in _answers(solution):
        pairs = [tuple(lines[k:k + 2]) for k in range(len(lines) - 1)] or [tuple(lines)]
        pairs = [p for p in pairs if sum(len(x) for x in p) >= 40]  # two lines of substance, or one long one
        for name, code in lessons.items():
            windows = {tuple(code[k:k + len(p)]) for p in pairs for k in range(len(code))}
            hits = [p for p in pairs if p in windows]
            if hits:
                found.append(f"{name} holds {hits[0]}")
        for line in lines:  # one long expression, whatever it is assigned to or returned as
            expr = re.sub(r"\.astype\([^)]*\)\)?$", "", re.sub(r"^(return |[\w, \[\]:]+ = )", "", line))
            if len(expr) >= 35 and not GRID.match(expr):
                found += [f"{name} holds {expr!r}" for name, code in lessons.items() if any(expr in c for c in code)]
    for fn in _functions(solution):
        found += [f"{p.name} defines {fn}()" for p in LESSONS if re.search(rf"^def {fn}\(", p.read_text(), re.M)]
    assert not found, f"answers of {solution.name} in lessons: {found}"


def test_no_lesson_points_at_solutions():
    pointing = [p.name for p in LESSONS if re.search(r"\bsolutions/", p.read_text())]
    assert not pointing, f"lessons that send the learner to solutions/: {pointing}"
