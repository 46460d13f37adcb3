"""`saattn build-exercises`: exercises/NN_name.ipynb from solutions/NN_name.ipynb, byte-identical on every run.

Solution code between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers) becomes
`raise NotImplementedError("Exercise N: <text after the BEGIN marker>")` at the marker's indentation; prose between
`### BEGIN ANSWER` / `### END ANSWER` becomes `YOUR ANSWER HERE`. Outputs, execution counts and widget state are
dropped. A content hash per built file (exercises/.build-hashes.json) tells a learner's edits from the build's
own output: an edited exercise is never overwritten without `force`.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MANIFEST = ".build-hashes.json"
SOURCE_GLOB = "[0-9][0-9]_*.ipynb"
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN (?P<kind>SOLUTION|ANSWER)\b[ \t:.-]*(?P<text>.*?)\s*$")
_END = re.compile(r"^[ \t]*### END (?P<kind>SOLUTION|ANSWER)\s*$")
_EXERCISE_HEADING = re.compile(r"^#+\s*(?:★\s*)?Exercise\s+(\d+)", re.MULTILINE)  # "## ★ Exercise 8 (challenge)" too
_DROP_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


# ----------------------------------------------------------------------------------------------------------------
# One notebook
# ----------------------------------------------------------------------------------------------------------------
def _stub(indent: str, kind: str, number: int, text: str, code: bool) -> str:
    if kind == "ANSWER":
        return f"{indent}# YOUR ANSWER HERE" if code else f"{indent}YOUR ANSWER HERE"
    message = f"Exercise {number}: {text or 'write your code here'}"
    return f'{indent}raise NotImplementedError("' + message.replace("\\", "\\\\").replace('"', '\\"') + '")'


def strip_regions(source: str, number: int, code: bool, where: str = "") -> tuple[str, int]:
    """Replace every marked region of one cell by its stub; returns (new source, number of regions)."""
    out, open_marker, regions = [], None, 0
    for line in source.split("\n"):
        begin, end = _BEGIN.match(line), _END.match(line)
        if open_marker is None and begin:
            open_marker = begin
        elif open_marker is not None and end:
            if end["kind"] != open_marker["kind"]:
                raise ValueError(f"{where}: '### END {end['kind']}' closes '### BEGIN {open_marker['kind']}'")
            out.append(_stub(open_marker["indent"], open_marker["kind"], number, open_marker["text"], code))
            open_marker, regions = None, regions + 1
        elif open_marker is None:
            if end:
                raise ValueError(f"{where}: '### END {end['kind']}' without a BEGIN")
            out.append(line)
    if open_marker is not None:
        raise ValueError(f"{where}: '### BEGIN {open_marker['kind']}' is never closed")
    return "\n".join(out), regions


def _parse(source: str):
    """The cell's AST (IPython %magics turned into plain Python first); None when it does not parse."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:
        pass
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _run_now(nodes):
    """Every node that runs when its statements run: function bodies are skipped (they run when called)."""
    todo = list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _raises_stub(nodes) -> bool:
    return any(isinstance(n, ast.Raise) and "NotImplementedError" in ast.unparse(n) for n in _run_now(nodes))


def _called_names(nodes) -> set:
    return {n.func.id for n in _run_now(nodes) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _stubbed(defs: dict) -> set:
    """Functions that raise when called: a stub in their body, or a call to such a function (a fixpoint)."""
    out = {name for name, (stub, _) in defs.items() if stub}
    grew = True
    while grew:
        new = {name for name, (_, calls) in defs.items() if calls & out} - out
        out, grew = out | new, bool(new)
    return out


def cell_raises(source: str, defs: dict) -> bool:
    """Would the cell raise NotImplementedError when run? Statement by statement: a stub outside any function
    body, or a top-level call to a stubbed function. `defs` (name -> (has a stub, names it calls)) carries the
    functions defined so far from cell to cell; a clean redefinition repairs its callers."""
    tree = _parse(source)
    raises = False
    for node in tree.body if tree is not None else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs[node.name] = (_raises_stub(node.body), _called_names(node.body))
        elif _raises_stub([node]) or _called_names([node]) & _stubbed(defs):
            raises = True
    return raises


def raises_at_top_level(source: str) -> bool:
    """True when the cell raises a stub's NotImplementedError outside any function body."""
    return cell_raises(source, {})


def make_exercise(nb: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """The learner's copy of a solution notebook (a new object; `nb` is untouched)."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}  # the executing machine's version would be noise
    number, regions_seen, defs = 0, 0, {}
    for k, cell in enumerate(nb.cells):
        src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "markdown":
            headings = _EXERCISE_HEADING.findall(src)
            number = int(headings[-1]) if headings else number
        where = f"{name} cell {k}"
        new, regions = strip_regions(src, number or regions_seen + 1, cell.cell_type == "code", where)
        regions_seen += regions
        if cell.cell_type == "markdown" and name:
            new = new.replace(f"/solutions/{name}", f"/exercises/{name}")  # the Colab badge opens the exercise
        cell.source = new
        for key in _DROP_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if cell_raises(new, defs):  # a stub, or a call to a stubbed function, at top level
                tags = cell.metadata.setdefault("tags", [])
                if "raises-exception" not in tags:
                    tags.append("raises-exception")  # nbval --nbval-lax accepts this cell's error, and only this

        if nb.nbformat_minor >= 5:
            cell.setdefault("id", f"cell-{k}")  # nbformat >= 4.5 wants ids: derived, never random
    return nb


def exercise_bytes(src: Path) -> bytes:
    nb = nbformat.read(src, as_version=4)
    text = nbformat.writes(make_exercise(nb, src.name))
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


# ----------------------------------------------------------------------------------------------------------------
# A folder
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class BuildReport:
    written: list[str] = field(default_factory=list)  # "01_patterns.ipynb (created)" ...
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "01_patterns.ipynb: edited since ..."

    def lines(self) -> list[str]:
        out = [f"wrote {w}" for w in self.written] + [f"unchanged {u}" for u in self.unchanged]
        return out + [f"SKIPPED {s}" for s in self.skipped]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_manifest(dst: Path) -> dict:
    path = dst / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _decide(target: Path, new: bytes, recorded: str | None, force: bool) -> str:
    """'created' | 'unchanged' | 'updated' | 'overwritten' | 'skipped: <why>'."""
    if not target.exists():
        return "created"
    old = target.read_bytes()
    if old == new:
        return "unchanged"
    if recorded is not None and sha256(old) == recorded:
        return "updated"
    if force:
        return "overwritten (--force)"
    why = "edited since it was built" if recorded else "not written by this build (no recorded hash)"
    return f"skipped: {why}; rebuild it with --force"


def build_exercises(src_dir="solutions", dst_dir="exercises", force: bool = False, names=(),
                    dry_run: bool = False) -> BuildReport:
    """Build every solutions/NN_name.ipynb (or only `names`) into dst_dir; never clobbers a learner's edits."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if not src_dir.is_dir():
        raise ValueError(f"src_dir must be a folder of solution notebooks, got {str(src_dir)!r}")
    sources = sorted(src_dir.glob(SOURCE_GLOB))
    if names:
        sources = [s for s in sources if s.name in names or s.stem in names]
    manifest, report = _load_manifest(dst_dir), BuildReport()
    for src in sources:
        new = exercise_bytes(src)
        target = dst_dir / src.name
        outcome = _decide(target, new, manifest.get(src.name), force)
        if outcome.startswith("skipped"):
            report.skipped.append(f"{target}: {outcome[len('skipped: '):]}")
            continue
        manifest[src.name] = sha256(new)
        if outcome == "unchanged":
            report.unchanged.append(str(target))
            continue
        report.written.append(f"{target} ({outcome})")
        if not dry_run:
            dst_dir.mkdir(parents=True, exist_ok=True)
            target.write_bytes(new)
    if not dry_run and (sources or (dst_dir / MANIFEST).exists()):
        dst_dir.mkdir(parents=True, exist_ok=True)
        (dst_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report
