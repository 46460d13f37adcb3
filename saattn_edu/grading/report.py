"""Results of a check and the short report a learner reads (stable text for every passing case)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .tiers import column_of, columns

MARKS = {"passed": "✓", "not attempted": "·", "skipped": "·"}  # every other status: ✗


def fmt_points(x: float) -> str:
    return f"{x:g}"


# ---- the grade's point columns (tiers.py): core exercises, ★ challenge tasks, free text (answered / not answered) -
def shown_points(result: dict) -> str:
    """A question's points as a report shows them: a free-text answer is 'answered' or 'not answered'."""
    if column_of(result["question"]) == "free text":
        return "answered" if result.get("status") == "passed" else "not answered"
    return fmt_points(result["points"])


def columns_line(results) -> str:
    """'core 24/24   ★ 4/4   free text 1/1 answered' over CheckResults or their dicts."""
    c = columns(results)
    (cp, cm), (sp, sm), (fa, fq) = c["core"], c["star"], c["free_text"]
    return (f"core {fmt_points(cp)}/{fmt_points(cm)}   ★ {fmt_points(sp)}/{fmt_points(sm)}   "
            f"free text {fa}/{fq} answered")


@dataclass
class CaseResult:
    index: int  # 1-based
    label: str
    status: str  # passed | failed | error | not attempted | timeout | refused | skipped
    points: float
    max_points: float
    inputs: str = ""  # the drawn inputs, shown when the case did not pass
    lines: list[str] = field(default_factory=list)  # expected vs got, traceback, ...
    hint: str = ""


@dataclass
class CheckResult:
    """What `check` found: points, max_points, per-case results; printed as a report, written as JSON."""

    question: str  # "ex01.sliding_window_mask"
    seed: int
    cases: list[CaseResult]
    title: str = ""
    hint: str = ""
    note: str = ""  # a line for the whole check (e.g. why it was not run)
    _fresh: bool = field(default=False, repr=False, compare=False)  # printed by check(), not displayed yet

    @property
    def points(self) -> float:
        return float(sum(c.points for c in self.cases))

    @property
    def max_points(self) -> float:
        return float(sum(c.max_points for c in self.cases))

    @property
    def status(self) -> str:
        if self.cases and self.points == self.max_points:
            return "passed"
        kinds = {c.status for c in self.cases if c.status != "skipped"}
        if len(kinds) == 1 and kinds != {"passed"}:  # some passed, the rest skipped: partial, not passed
            return kinds.pop()
        return "partial" if self.points > 0 else "failed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d.update(points=self.points, max_points=self.max_points, status=self.status)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CheckResult":
        cases = [CaseResult(**c) for c in d.get("cases", [])]
        keep = {k: d[k] for k in ("question", "seed", "title", "hint", "note") if k in d}
        return cls(cases=cases, **keep)

    # ---- the report --------------------------------------------------------------------------------------------
    def report(self) -> str:
        head = f"{self.question}" + (f" ({self.title})" if self.title else "") + f"  seed={self.seed}"
        lines = [head]
        if self.note:
            lines.append(f"  {self.note}")
        if self.status == "not attempted":
            lines.append("  not attempted yet: your code still raises NotImplementedError.")
        else:
            seen: dict[str, int] = {}
            for c in self.cases:
                lines += _case_lines(c, seen)
        lines.append(self._footer())
        return "\n".join(lines)

    def _footer(self) -> str:
        score = f"  score: {fmt_points(self.points)}/{fmt_points(self.max_points)}"
        if self.passed:
            return score + "  - all cases passed"
        if self.hint and self.status != "not attempted":
            score = f"  hint: {self.hint}\n" + score
        return score + f"  (same inputs again: seed={self.seed})"

    def __repr__(self) -> str:
        return f"<CheckResult {self.question}: {fmt_points(self.points)}/{fmt_points(self.max_points)} {self.status}>"

    def _ipython_display_(self):
        # `check(...)` as a cell's last line already printed the report: show nothing that first time.
        if self._fresh:
            self._fresh = False
            return
        print(self.report())


def _case_lines(c: CaseResult, seen: dict) -> list[str]:
    mark = MARKS.get(c.status, "✗")
    label = f"case {c.index}: {c.label}"
    pts = f"{fmt_points(c.points)}/{fmt_points(c.max_points)}"
    out = [f"  {mark} {label:<52} {pts:>7}" + ("" if c.status in ("passed", "failed") else f"  {c.status}")]
    if c.status in ("passed", "skipped", "not attempted"):
        return out  # stable text only: inputs are random
    key = c.status + re.sub(r"\d+", "#", "\n".join(c.lines))  # the same problem on other inputs: say so briefly
    if key in seen:
        return out + [f"      same problem as case {seen[key]}"]
    seen[key] = c.index
    if c.inputs:
        out.append(f"      input: {c.inputs}")
    out += [f"      {line}" for line in c.lines]
    if c.hint:
        out.append(f"      hint: {c.hint}")
    return out
