"""Attacks on both grading modes, as a hostile learner would try them; each must fail, and nobody else's grade or
file may change. One `saattn grade --all` batch (in a subprocess: it makes itself a subreaper) grades a folder of
honest and hostile notebooks built from exercise 01; the formative attacks run in-process."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from saattn_edu.grading import get_question, questions, run_question

ROOT = Path(__file__).resolve().parents[1]
# Full marks of exercise 01 as the grade CSV writes them (core, free-text and ★ questions together).
EX01_MAX = f"{sum(run_question(get_question(f'ex01.{name}')).max_points for name in questions('ex01')):g}"
EX01 = ["ex01.sliding_window_mask", "ex01.dilated_window_mask", "ex01.global_tokens_mask", "ex01.mask_to_csr",
        "ex01.sliding_window_num_pairs", "ex01.q6"]

# ---- hostile cells: each runs after the exercise notebook's setup cells (no solution: any point is stolen) ------
FRAME_WALK = '''
import sys
def _steal(*args, **kwargs):
    for frame in list(sys._current_frames().values()) + [sys._getframe()]:
        while frame is not None:
            for key in ("expected", "want", "reference"):
                if key in frame.f_locals:
                    value = frame.f_locals[key]
                    return value(**kwargs) if callable(value) else value
            q = frame.f_locals.get("q")
            if q is not None and hasattr(q, "reference"):
                return q.reference(**kwargs)
            frame = frame.f_back
    return None
sliding_window_mask = dilated_window_mask = global_tokens_mask = mask_to_csr = sliding_window_num_pairs = _steal
'''
MASKED = '''
def sliding_window_mask(n, window, causal=False):
    return np.ma.masked_all((n, n), dtype=bool)
def mask_to_csr(mask):
    return np.ma.masked_all(len(mask) + 1, dtype=int), np.ma.masked_all(0, dtype=int)
'''
SUBCLASS = '''
class Agreeable(np.ndarray):
    def __ne__(self, other):
        return np.zeros(np.broadcast(self, other).shape, dtype=bool)
    def __eq__(self, other):
        return np.ones(np.broadcast(self, other).shape, dtype=bool)
def dilated_window_mask(n, window, dilation, causal=False):
    return np.zeros((n, n), dtype=bool).view(Agreeable)
global_tokens_mask = lambda n, indices: dilated_window_mask(n, 1, 1)
'''
PATCH_GRADER = '''
import saattn_edu.grading.runner as runner, saattn_edu.grading.kernel_side as ks, saattn_edu.grading.compare as cmp
from saattn_edu.grading.compare import Verdict
runner.run_question = lambda *a, **k: None
ks.serve = lambda ns, folder: open(folder + "/status.json", "w").write('{"status": "ok"}')
for name in ("ArrayEqual", "CSREqual", "IntEqual", "NumberClose"):
    getattr(cmp, name).__call__ = lambda self, e, g: Verdict(True)
q6_answer = 24
'''
LOG_FORGERY = '''
import json, os
fake = {"question": "ex01.sliding_window_mask", "points": 1000, "max_points": 5, "status": "passed",
        "cases": [], "seed": 0, "source": "final"}
for path in (os.environ.get("SAATTN_GRADE_LOG"), "checks.jsonl", "grade_report.json", "grades.csv"):
    if path:
        open(path, "a").write(json.dumps(fake) + "\\n" * 1000)
print(json.dumps(fake))
'''
LIBRARY_ROUTES = '''
import importlib
import saattn_edu.patterns.window as window_module
from saattn_edu.patterns import base as base_module
def sliding_window_mask(n, window, causal=False, _cls=P.SlidingWindow):
    return _cls(window, causal).mask(n)
reloaded = importlib.reload(window_module)
def dilated_window_mask(n, window, dilation, causal=False):
    return reloaded.DilatedWindow(window, dilation, causal).mask(n)
mask_to_csr = P.CSR.from_mask
def sliding_window_num_pairs(n, window, causal=False):
    return reloaded._window_pairs(n, window, causal)
'''
DELETE_AND_REWRITE = '''
import glob, os
for path in glob.glob("*.ipynb") + glob.glob("../*.ipynb") + glob.glob("../*/*.ipynb"):
    try:
        os.remove(path)
    except OSError:
        pass
open("01_patterns_deleter.ipynb", "w").write("rewritten")
'''
BACKGROUND = '''
import subprocess, sys
code = "import time, os; time.sleep(4); open({canary!r} + str(os.getpid()), 'w').write('alive'); open('late.txt', 'w')"
subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.Popen([sys.executable, "-c", "import os, subprocess, sys; os.setsid(); "
                  "subprocess.Popen([sys.executable, '-c', " + repr(code) + "]); os._exit(0)"])
'''
FORK_BOMB = '''
import os, time
for _ in range(20):
    if os.fork() == 0:
        os.setsid()
        time.sleep(4)
        open({canary!r} + str(os.getpid()), "w").write("alive")
        os._exit(0)
'''
IGNORES_SIGNALS = '''
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    pass
'''
DISABLES_ALARM = '''
import signal
def sliding_window_mask(n, window, causal=False):
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
    except BaseException:
        pass
    while True:
        try:
            pass
        except BaseException:
            pass
'''
OS_EXIT = "import os\nos._exit(1)\n"
RECURSION = "def sliding_window_mask(n, window, causal=False):\n    return sliding_window_mask(n, window, causal)\n"
PRINTING = "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 50_000 + '\\n')\n"
NEVER_ENDS = "import time\nwhile True:\n    time.sleep(0.5)\n"

# Attacks that cannot interfere share a notebook (each notebook costs a kernel start: seconds on 2 cores).
HOSTILE = {"frame_walk": FRAME_WALK, "fake_arrays": MASKED + SUBCLASS, "forger": PATCH_GRADER + LOG_FORGERY,
           "library_routes": LIBRARY_ROUTES, "deleter": DELETE_AND_REWRITE, "escapers": BACKGROUND + FORK_BOMB,
           "ignores_signals": IGNORES_SIGNALS, "disables_alarm": DISABLES_ALARM, "os_exit": OS_EXIT,
           "noisy_recursion": PRINTING + RECURSION, "never_ends": NEVER_ENDS}


def _notebook(cells_from: str, extra: str = ""):
    nb = nbformat.read(ROOT / cells_from / "01_patterns.ipynb", as_version=4)
    if extra:
        nb.cells = [c for c in nb.cells if c.cell_type == "code"][:2] + [nbformat.v4.new_code_cell(extra)]
    return nb


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade one folder of 2 honest and every hostile notebook with `saattn grade --all --jobs 2`."""
    tmp = tmp_path_factory.mktemp("adversarial")
    subs, canary = tmp / "subs", tmp / "canary"
    canary.mkdir()
    for name, cell in HOSTILE.items():
        folder = subs / ("flat" if name == "deleter" else name)
        folder.mkdir(parents=True, exist_ok=True)
        cell = cell.replace("{canary!r}", repr(str(canary) + "/"))
        nbformat.write(_notebook("exercises", cell), folder / f"01_patterns_{name}.ipynb")
    nbformat.write(_notebook("solutions"), subs / "flat" / "01_patterns.ipynb")  # the deleter's neighbour
    nbformat.write(_notebook("solutions"), subs / "alice_01_patterns.ipynb")
    (subs / "zz_invalid.ipynb").write_text('{"cells": [', encoding="utf-8")
    (subs / "zz_binary.ipynb").write_bytes(bytes(range(256)) * 64)
    before = _snapshot(subs)
    report, table = tmp / "report.json", tmp / "grades.csv"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "saattn_edu.cli", "grade", "--all", str(subs), "--report",
                           str(report), "--csv", str(table), "--jobs", "2", "--timeout", "5", "--check-timeout", "3",
                           "--limit", "40"], capture_output=True, text=True, timeout=400, cwd=tmp)
    elapsed = time.monotonic() - start
    rows = {Path(r["submission"]).stem: r for r in csv.DictReader(table.open())}
    books = {Path(n["path"]).stem: n for n in json.loads(report.read_text())["notebooks"]}
    return {"proc": proc, "rows": rows, "books": books, "subs": subs, "before": before, "canary": canary,
            "elapsed": elapsed, "tmp": tmp, "report": report, "table": table}


def test_the_batch_ends_by_itself_with_one_row_per_file(batch):
    assert batch["proc"].returncode == 1, batch["proc"].stderr[-2000:]  # 1: two files could not be graded
    assert len(batch["rows"]) == len(HOSTILE) + 4 == len(batch["books"])
    assert batch["elapsed"] < 300


def test_honest_submissions_keep_every_point(batch):
    for stem in ("alice_01_patterns", "01_patterns"):
        row = batch["rows"][stem]
        assert row["total"] == row["max"] == EX01_MAX and row["status"] == "graded", row


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_hostile_submission_scores_zero(batch, name):
    row = batch["rows"][f"01_patterns_{name}"]
    assert row["total"] == "0" and row["max"] == EX01_MAX, (row, batch["books"][f"01_patterns_{name}"]["results"])


def test_how_the_hostile_ones_are_reported(batch):
    status = {stem: r["status"] for stem, r in batch["rows"].items()}
    assert status["01_patterns_ignores_signals"] == "timed out", batch["rows"]["01_patterns_ignores_signals"]
    assert status["01_patterns_os_exit"] == "kernel died", batch["rows"]["01_patterns_os_exit"]
    assert status["zz_invalid"] == status["zz_binary"] == "not graded"
    results = {r["question"]: r for r in batch["books"]["01_patterns_library_routes"]["results"]}
    for q in ("sliding_window_mask", "dilated_window_mask", "mask_to_csr", "sliding_window_num_pairs"):
        assert {c["status"] for c in results[f"ex01.{q}"]["cases"]} == {"refused"}, results[f"ex01.{q}"]
    fake = {r["question"]: json.dumps(r) for r in batch["books"]["01_patterns_fake_arrays"]["results"]}
    assert "masked array" in fake["ex01.sliding_window_mask"] and "masked array" in fake["ex01.mask_to_csr"]
    assert "subclass of np.ndarray" in fake["ex01.dilated_window_mask"]
    alarm = batch["books"]["01_patterns_disables_alarm"]["results"][0]
    assert {c["status"] for c in alarm["cases"]} <= {"timeout", "skipped"}, alarm


def test_the_submissions_folder_is_unchanged_and_nothing_survives(batch):
    assert _snapshot(batch["subs"]) == batch["before"]
    time.sleep(5)  # the background writers slept 4 s: had they survived, they would have written by now
    assert _snapshot(batch["subs"]) == batch["before"]
    assert list(batch["canary"].iterdir()) == []


def test_a_rerun_skips_what_is_graded_and_bad_output_paths_fail_first(batch, tmp_path):
    cmd = [sys.executable, "-m", "saattn_edu.cli", "grade", str(batch["subs"] / "alice_01_patterns.ipynb"),
           "--report", str(batch["report"]), "--csv", str(batch["table"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=batch["tmp"])
    assert proc.returncode == 0 and "already graded: skipped" in proc.stdout, proc.stdout + proc.stderr
    missing = subprocess.run(cmd[:-4] + ["--report", str(tmp_path / "missing" / "r.json")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "--report" in missing.stderr and "does not exist" in missing.stderr


# ---- formative check(): the same attacks in the learner's own kernel ------------------------------------------------
def _run(source: str, name: str, qid: str, timeout: float = 3.0):
    ns = {"np": np, "P": __import__("saattn_edu.patterns", fromlist=["P"])}
    exec(source, ns)
    return run_question(get_question(qid), ns[name], timeout=timeout)


@pytest.mark.parametrize("qid", EX01[:5])
def test_formative_frame_walking_scores_zero(qid):
    r = _run(FRAME_WALK, "_steal", qid)
    assert r.points == 0, r.report()


def test_formative_masked_arrays_and_subclasses_are_named():
    r = _run(MASKED, "sliding_window_mask", "ex01.sliding_window_mask")
    assert r.points == 0 and "masked array" in r.report()
    r = _run(SUBCLASS, "dilated_window_mask", "ex01.dilated_window_mask")
    assert r.points == 0 and "subclass of np.ndarray" in r.report()


def test_formative_library_routes_are_refused():
    from saattn_edu.patterns import window

    saved = dict(vars(window))  # the attack reloads this module: put its original objects back afterwards
    try:
        for name, qid in (("sliding_window_mask", EX01[0]), ("dilated_window_mask", EX01[1]),
                          ("sliding_window_num_pairs", EX01[4])):
            r = _run(LIBRARY_ROUTES, name, qid)
            assert r.status == "refused" and r.points == 0, r.report()
    finally:
        vars(window).update(saved)


# CPython <= 3.10 never checks for a GIL hand-over when a loop jumps back to a `try:` (the eval breaker skips
# SETUP_FINALLY), so `while True: try: pass` holds the GIL for good: no in-process watchdog can stop it there (the
# notebook's kernel must be restarted). Summative grading is unaffected: its sandbox process is killed on time
# (test_every_hostile_submission_scores_zero above runs the same source there on every Python).
@pytest.mark.skipif(sys.version_info < (3, 11), reason="CPython 3.10: `while True: try: pass` never releases the "
                    "GIL; only the summative sandbox (tested above) can stop it")
def test_formative_time_limit_holds_when_the_alarm_is_disabled():
    previous = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    r = _run(DISABLES_ALARM, "sliding_window_mask", EX01[0], timeout=0.5)
    assert time.monotonic() - start < 5 and r.cases[0].status == "timeout" and r.points == 0, r.report()
    assert signal.getsignal(signal.SIGALRM) == previous  # the learner's thread could not even touch the handler


def test_formative_a_thread_left_running_cannot_rewrite_the_answer():
    source = ("import threading, time\n"
              "def sliding_window_mask(n, window, causal=False):\n"
              "    out = np.zeros((n, n), dtype=bool)\n"
              "    threading.Thread(target=time.sleep, args=(0.5,), daemon=True).start()\n"
              "    return out\n")
    r = _run(source, "sliding_window_mask", EX01[0])
    assert r.points == 0 and "thread(s) running" in r.report()


def test_formative_check_writes_no_log(monkeypatch, tmp_path):
    monkeypatch.setenv("SAATTN_GRADE_LOG", str(tmp_path / "log.jsonl"))
    from saattn_edu.grading import check

    check("ex01.q6", 24, quiet=True)
    assert not (tmp_path / "log.jsonl").exists() and not os.listdir(tmp_path)


# ---- the channel: only plain data comes back from a learner's kernel ------------------------------------------------
def test_plain_data_round_trips_and_forgeries_are_refused(tmp_path):
    from saattn_edu.grading.plain import PlainError, build_patterns, read, to_plain, write

    value = {"csr": (np.arange(4), np.zeros(0, dtype=np.int64)), 8: [1.5, float("inf")], "p": [None, True],
             "layers": [__import__("saattn_edu.patterns", fromlist=["P"]).SlidingWindow(9)]}
    write(value, tmp_path, "result")
    back = read(tmp_path, "result")
    assert back["csr"][0].tolist() == [0, 1, 2, 3] and type(back["csr"]) is tuple and back[8] == [1.5, float("inf")]
    assert repr(build_patterns(back["layers"])[0]) == "SlidingWindow(window=9, causal=False)"
    for bad in (np.ma.masked_all(3), np.zeros(2).view(type("Sub", (np.ndarray,), {})), np.array([object()]),
                lambda: 0, type("Int", (int,), {})(3)):
        with pytest.raises(PlainError):
            to_plain(bad)
    np.save(tmp_path / "evil-0.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "evil.json").write_text('{"__npy__": "evil-0.npy"}')
    (tmp_path / "up.json").write_text('{"__npy__": "../result-0.npy"}')
    (tmp_path / "link-0.npy").symlink_to(tmp_path / "result-0.npy")
    (tmp_path / "link.json").write_text('{"__npy__": "link-0.npy"}')
    (tmp_path / "junk.json").write_text('{"cells": [')
    for stem in ("evil", "up", "link", "junk", "missing"):
        with pytest.raises(PlainError):
            read(tmp_path, stem)
