"""check() and its runner, with plain Python functions (no kernel): every way a learner's answer can go wrong."""
from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pytest

from saattn_edu import patterns as P
from saattn_edu.grading import (ArrayClose, Case, CheckResult, Question, check, get_question, questions,
                                run_question)
from saattn_edu.grading.exercises.ex01 import forbid_pattern_api
from solution_functions import solution_functions



@pytest.fixture(scope="module")
def sol():
    return solution_functions("01_patterns.ipynb")


def _stable(report: str) -> str:
    return re.sub(r"seed[= ]\d+", "seed=SEED", report)


# ---- correct answers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sliding_window_mask", "dilated_window_mask", "global_tokens_mask", "mask_to_csr",
                                  "sliding_window_num_pairs"])
def test_solutions_get_full_points(sol, name):
    r = run_question(get_question(f"ex01.{name}"), getattr(sol, name))
    assert r.status == "passed" and r.points == r.max_points > 0, r.report()


def test_check_prints_and_returns_result(sol, capsys):
    r = check("ex01.sliding_window_mask", sol.sliding_window_mask)
    out = capsys.readouterr().out
    assert isinstance(r, CheckResult) and r.points == r.max_points == 5
    assert re.search(r"seed=\d+", out) and "score: 5/5" in out and "✓ case 1" in out
    r._ipython_display_()  # the notebook's display of the returned value: nothing new the first time...
    assert capsys.readouterr().out == ""
    r._ipython_display_()  # ...the report when shown again later
    assert "score: 5/5" in capsys.readouterr().out


def test_passing_report_is_the_same_on_every_seed(sol):
    a = run_question(get_question("ex01.mask_to_csr"), sol.mask_to_csr, seed=1)
    b = run_question(get_question("ex01.mask_to_csr"), sol.mask_to_csr, seed=2)
    assert _stable(a.report()) == _stable(b.report())


def test_seed_reproduces_the_inputs():
    def wrong(n, window, causal=False):
        return np.zeros((n, n + 1), dtype=bool)

    q = get_question("ex01.sliding_window_mask")
    a, b, c = (run_question(q, wrong, seed=s) for s in (7, 7, 8))
    assert [x.inputs for x in a.cases] == [x.inputs for x in b.cases] != [x.inputs for x in c.cases]


# ---- not attempted, errors, timeouts -------------------------------------------------------------------------
def test_not_implemented_is_not_attempted_without_traceback():
    def stub(n, window, causal=False):
        raise NotImplementedError("Exercise 1: ...")

    r = run_question(get_question("ex01.sliding_window_mask"), stub)
    assert r.status == "not attempted" and r.points == 0
    assert "Traceback" not in r.report() and "File " not in r.report() and "not attempted" in r.report()


def test_exception_reports_the_learners_traceback_only():
    def learner_function(n, window, causal=False):
        return 1 // (n - n)

    r = run_question(get_question("ex01.sliding_window_mask"), learner_function)
    text = r.report()
    assert r.status == "error" and r.points == 0
    assert "learner_function" in text and "ZeroDivisionError" in text
    assert "runner.py" not in text and "guard.py" not in text
    assert "same problem as case 1" in text  # the same error on other inputs is not repeated in full


def test_endless_loop_is_stopped_by_the_alarm():
    def loop(n, window, causal=False):
        while True:
            try:
                time.sleep(0.01)
            except BaseException:  # a learner's bare except does not keep the check alive
                pass

    start = time.monotonic()
    r = run_question(get_question("ex01.sliding_window_mask"), loop, timeout=0.3)
    assert time.monotonic() - start < 3
    assert r.cases[0].status == "timeout" and "0.3 s" in r.report()
    assert {c.status for c in r.cases[1:]} == {"skipped"} and r.points == 0


def test_endless_loop_is_stopped_by_the_watchdog_off_the_main_thread():
    def loop(n, window, causal=False):
        while True:
            pass

    box = {}
    t = threading.Thread(target=lambda: box.update(r=run_question(get_question("ex01.sliding_window_mask"), loop,
                                                                   timeout=0.3)))
    t.start()
    t.join(10)
    assert not t.is_alive() and box["r"].status == "timeout"


# ---- wrong answers -------------------------------------------------------------------------------------------
def test_mutating_the_input_fails_the_case(sol):
    def mutating(mask):
        out = sol.mask_to_csr(mask.copy())
        np.logical_not(mask, out=mask)
        return out

    r = run_question(get_question("ex01.mask_to_csr"), mutating)
    assert r.points == 0 and "changed its input `mask` in place" in r.report()


def test_list_instead_of_array(sol):
    r = run_question(get_question("ex01.sliding_window_mask"), lambda n, window, causal: sol.sliding_window_mask(
        n, window, causal).tolist())
    assert r.points == 0 and "returned a list; expected a NumPy array" in r.report()


def test_wrong_dtype_and_wrong_shape(sol):
    q = get_question("ex01.sliding_window_mask")
    r = run_question(q, lambda n, window, causal: sol.sliding_window_mask(n, window, causal).astype(int))
    assert r.points == 0 and "returned dtype int64; expected a bool array" in r.report()
    r = run_question(q, lambda n, window, causal: sol.sliding_window_mask(n, window, causal)[:, 1:])
    assert r.points == 0 and "expected shape" in r.report()


def test_wrong_values_show_where_and_a_slice(sol):
    # One too wide: wrong for odd and causal windows, right for even and clipped ones, whatever the draw.
    r = run_question(get_question("ex01.sliding_window_mask"),
                     lambda n, window, causal: sol.sliding_window_mask(n, window + 1, causal))
    text = r.report()
    assert 0 < r.points < r.max_points and r.status == "partial"
    assert "entries differ; first at" in text and "expected[" in text and "input: n=" in text
    failed = [c for c in r.cases if c.status == "failed"]
    assert failed and all(f"hint: {c.hint}" in text for c in failed)  # which case fails depends on the draw


def test_nan_in_a_float_answer_is_reported():
    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    q = Question("softmax", 9, reference=softmax, compare=ArrayClose(), exercise="ex99",
                 cases=(Case("rows", lambda rng: {"x": rng.standard_normal((4, 6))}),))
    assert run_question(q, softmax).passed
    r = run_question(q, lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True) * np.nan)
    assert r.points == 0 and "NaN" in r.report()
    r = run_question(q, lambda x: softmax(x) + 1e-3)
    assert r.points == 0 and "max error" in r.report()


def test_a_comparison_that_runs_the_answer_can_say_not_attempted():
    from saattn_edu.grading import Verdict

    def runs_it(expected, got):
        got()  # e.g. timing the learner's function
        return Verdict(True)

    q = Question("timed", 9, reference=lambda: None, compare=runs_it, kind="value", exercise="ex99")

    def stub():
        raise NotImplementedError

    assert run_question(q, stub).status == "not attempted"
    broken = run_question(q, lambda: 1 / 0)
    assert broken.status == "error" and "ZeroDivisionError" in broken.report()
    flagged = Question("flag", 9, reference=lambda: None, kind="value", exercise="ex99",
                       compare=lambda e, g: Verdict(False, ["not yet"], status="not attempted"))
    assert run_question(flagged, 1).status == "not attempted"

    def guarded(expected, got):  # runs the answer through the runner's guard, and words the failure its own way
        from saattn_edu.grading.guard import call_with_timeout

        out = call_with_timeout(got, {}, 1.0)
        return Verdict(out.error is None, ["your function raised"])

    assert run_question(Question("g", 9, reference=lambda: None, compare=guarded, kind="value", exercise="ex99"),
                        stub).status == "not attempted"


def test_float_and_bool_are_not_an_int(sol):
    q = get_question("ex01.sliding_window_num_pairs")
    r = run_question(q, lambda n, window, causal: float(sol.sliding_window_num_pairs(n, window, causal)))
    assert r.points == 0 and "expected an int" in r.report()
    assert run_question(q, lambda n, window, causal: np.int64(sol.sliding_window_num_pairs(n, window, causal))).passed


def test_not_a_function():
    r = run_question(get_question("ex01.sliding_window_mask"), 42)
    assert r.points == 0 and "expected a function, got a int" in r.report()


# ---- calling the library's own solution ----------------------------------------------------------------------
def test_calling_the_library_is_refused_and_the_library_restored():
    before = [(owner, attr, (owner.__dict__ if isinstance(owner, type) else vars(owner))[attr])
              for owner, attr in forbid_pattern_api()]

    def cheat(n, window, causal=False):
        return P.SlidingWindow(window, causal).mask(n)

    def sneaky(mask):
        try:
            return P.CSR.from_mask(mask)
        except BaseException:  # swallowing the tripwire does not help
            return np.zeros(len(mask) + 1, dtype=int), np.zeros(0, dtype=int)

    r = run_question(get_question("ex01.sliding_window_mask"), cheat)
    assert r.status == "refused" and r.points == 0 and "library's own solution" in r.report()
    assert run_question(get_question("ex01.mask_to_csr"), sneaky).status == "refused"
    for owner, attr, raw in before:
        assert (owner.__dict__ if isinstance(owner, type) else vars(owner))[attr] is raw
    assert P.SlidingWindow(3, causal=True).mask(4).sum() == 9  # the library works again


# ---- value questions, ids, logging ---------------------------------------------------------------------------
def test_value_question():
    q = get_question("ex01.q6")
    assert run_question(q, 24).passed and run_question(q, 24.0).passed
    assert run_question(q, 23).points == 0 and "expected 24, got 23" in run_question(q, 23).report()
    assert run_question(q, None).status == "not attempted"


def test_unknown_ids_name_what_is_known():
    with pytest.raises(ValueError, match="ex01.nope.*sliding_window_mask"):
        check("ex01.nope", lambda: 0)
    with pytest.raises(ValueError, match="question_id"):
        check("sliding_window_mask", lambda: 0)
    with pytest.raises(ValueError, match="ex77"):
        questions("ex77")


def test_check_logs_nothing_the_grader_would_read(sol, tmp_path, monkeypatch, capsys):
    """Behaviour changed on purpose (issue 16): `saattn grade` computes every point itself, so check() no longer
    appends results to a log file named in the kernel's environment (a learner could append lines too)."""
    monkeypatch.setenv("SAATTN_GRADE_LOG", str(tmp_path / "checks.jsonl"))
    r = check("ex01.q6", 24)
    check("ex01.mask_to_csr", sol.mask_to_csr, quiet=True)
    assert capsys.readouterr().out.count("score:") == 1  # quiet prints nothing
    assert r.points == 2 and list(tmp_path.iterdir()) == []
    assert CheckResult.from_dict(json.loads(json.dumps(r.to_dict()))).points == 2


def test_an_aliased_import_of_a_library_helper_is_refused_too():
    """`from saattn_edu.patterns.window import _window_pairs` in the notebook binds a second name to the helper:
    the tripwire knows the helper by its code, so every name for it is caught, and nothing is swapped."""
    ns = {}
    exec("from saattn_edu.patterns.window import _window_pairs\n"
         "from saattn_edu.patterns import sinks\n"
         "def cheat(n, window, causal=False):\n"
         "    return _window_pairs(n, window, causal)\n"
         "def via_other_module(n, window, causal=False):\n"
         "    return sinks._window_pairs(n, window, causal)\n", ns)
    from saattn_edu.patterns import sinks, window

    original = window._window_pairs
    for fn in (ns["cheat"], ns["via_other_module"]):
        r = run_question(get_question("ex01.sliding_window_num_pairs"), fn)
        assert r.status == "refused" and r.points == 0, r.report()
    assert ns["_window_pairs"] is original and sinks._window_pairs is original and window._window_pairs is original
