"""Hints name a symptom, its likely cause and the function to look at, in words: no code. Every hint of the graders
of exercises 01 to 05, and every hint of a ★ task (grader and notebook), is checked."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from saattn_edu.grading import questions
from saattn_edu.grading.tiers import is_star

ROOT = Path(__file__).resolve().parents[1]
NO_CODE_EXERCISES = ("ex01", "ex02", "ex03", "ex04", "ex05")
ALL_EXERCISES = sorted(p.stem for p in (ROOT / "saattn_edu" / "grading" / "exercises").glob("ex[0-9][0-9].py"))

#: What code looks like in a sentence: a library prefix, a call, an index, a method, an assignment or keyword
#: argument, a Python-only operator, inline code. Prose and plain maths (i - j, n·n, a ≤ b, "(look at f)") pass.
CODE = re.compile(r"""
      \b(?:np|torch|tl|math|rng)\.       # np.arange, torch.where, rng.choice
    | \w\(                               # a call: f(x), argmax(
    | \w\[                               # an index or a slice: x[i], g[:, None]
    | \.\w+\(                            # a method call: .sum(
    | (?<![<>=!])=(?!=)                  # an assignment or a keyword argument: x = 1, axis=1
    | == | != | // | \*\* | \+= | -=     # operators only Python writes this way
    | `                                  # inline code
    | \[\s*:                             # a slice [:, ...]
""", re.X)


def code_in(text: str) -> list[str]:
    return [m.group(0) for m in CODE.finditer(text)]


def _hints(exercise: str, star_only: bool = False):
    for name, q in questions(exercise).items():
        if star_only and not is_star(f"{exercise}.{name}"):
            continue
        if q.hint:
            yield f"{exercise}.{name}", q.hint
        for c in q.cases:
            if c.hint:
                yield f"{exercise}.{name} case {c.label!r}", c.hint


def test_the_detector_tells_code_from_prose():
    for code in ("np.arange(n)[:, None]", "d = i - j", "mask.sum(axis=1)", "window // 2", "x == y", "`acc / l`",
                 "argmax(axis=1)", "rng.choice(cand, size=r)", "g[indices] = True"):
        assert code_in(code), code
    for prose in ("NaN on the rows with no allowed key: a missing guard on an empty row (look at tile_update)",
                  "the window reaches half its width on each side, rounded down; offsets i - j ≤ r",
                  "every pair once, rows ascending; sizes that grow like n·n are out of reach"):
        assert not code_in(prose), (prose, code_in(prose))


@pytest.mark.parametrize("exercise", NO_CODE_EXERCISES)
def test_hints_of_exercises_01_to_05_hold_no_code(exercise):
    bad = {where: code_in(h) for where, h in _hints(exercise) if code_in(h)}
    assert not bad, f"hints with code (say the symptom, the cause and the function in words): {bad}"


@pytest.mark.parametrize("exercise", ALL_EXERCISES)
def test_star_hints_hold_no_code(exercise):
    bad = {where: code_in(h) for where, h in _hints(exercise, star_only=True) if code_in(h)}
    assert not bad, f"★ hints with code: {bad}"


def _star_markdown_hints(source: Path):
    """The <details> hint of every ★ exercise in a solution's text source."""
    text = source.read_text(encoding="utf-8")
    for section in re.split(r"\n# ## ", text)[1:]:
        if "★" in section.splitlines()[0]:
            hint = re.search(r"<details><summary>Hint</summary>(.*?)</details>", section, re.S)
            if hint:
                yield section.splitlines()[0], re.sub(r"^# ?", "", hint.group(1), flags=re.M)


@pytest.mark.parametrize("source", sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_star_hints_in_the_notebooks_hold_no_code(source):
    bad = {title: code_in(h) for title, h in _star_markdown_hints(source) if code_in(h)}
    assert not bad, f"{source.name}: ★ hints with code: {bad}"
