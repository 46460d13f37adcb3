"""Checks for exercises/11_hybrid_design.ipynb: receptive fields, attention FLOPs of a layer stack, a hybrid design.

The design question is graded by training: the learner's per-layer patterns go into the same tiny encoder, trained
with a fixed seed on a needle task whose needle lies beyond a stack of small windows; it passes when it stays
within the attention-FLOP budget and reaches the accuracy bar on held-out examples.
"""
from __future__ import annotations

import numpy as np

from saattn_edu import patterns as P
from saattn_edu.patterns.learned import LearnedPattern

from ..compare import ArrayEqual, IntEqual, NumberClose, Verdict
from ..freetext import text_question
from ..hints import Diagnosed
from ..spec import Case, Question
from .ex01 import forbid_pattern_api

# The design problem: everything the grader uses, so the notebook can show it and try a design first.
#: Functions of this module a notebook may call inside an answer (the tripwire refuses every other one).
LEARNER_HELPERS = ("design_task", "design_model", "design_budget", "design_problem", "train_design")
# n = 64: a window of 5 costs 8 % of a dense layer's pairs, and three windows within the budget cannot reach the
# needle; one repeated filler token (passkey-style haystack). 100 steps on one thread: a few seconds on 2 busy cores
# (the right designs reach 1.0 by step 80; at n = 256 the same task needed 150 steps, 20-60 s).
DESIGN = {"seq_len": 64, "distance": (32, 58), "n_filler": 1, "n_layers": 3, "d_model": 32, "n_heads": 2,
          "steps": 100, "batch_size": 32, "lr": 3e-3, "seed": 0, "budget_fraction": 0.4, "bar": 0.9, "threads": 1}


def design_task():
    from saattn_edu.models import NeedleRetrieval

    return NeedleRetrieval(seq_len=DESIGN["seq_len"], distance=DESIGN["distance"], n_filler=DESIGN["n_filler"])


def design_model(layers):
    """The tiny encoder the design is trained in (seeded, so the same layers give the same model)."""
    import torch

    from saattn_edu.models import TinyTransformer

    torch.manual_seed(DESIGN["seed"])
    return TinyTransformer(design_task().vocab_size, DESIGN["seq_len"], layers=list(layers),
                           d_model=DESIGN["d_model"], n_heads=DESIGN["n_heads"],
                           backend="torch")  # masked SDPA at n = 64: no FlexAttention compile at evaluation


def design_budget() -> int:
    """Attention FLOPs allowed: `budget_fraction` of the all-dense model's (one forward pass, one sequence)."""
    n, d, L = DESIGN["seq_len"], DESIGN["d_model"], DESIGN["n_layers"]
    return int(DESIGN["budget_fraction"] * L * 4 * n * n * d)


def design_problem(layers) -> str | None:
    """Why `layers` cannot be graded (wrong type or length, a learned method, over budget), or None."""
    if not isinstance(layers, (list, tuple)):
        return f"expected a list of {DESIGN['n_layers']} patterns, got {type(layers).__name__}"
    if len(layers) != DESIGN["n_layers"]:
        return f"expected {DESIGN['n_layers']} layers, got {len(layers)}"
    for k, p in enumerate(layers):
        if isinstance(p, LearnedPattern) or not isinstance(p, P.Pattern):
            return f"layer {k} must be a fixed pattern from saattn_edu.patterns (e.g. P.SlidingWindow(9)), got {p!r}"
    cost = design_model(layers).attention_flops()
    if cost > design_budget():
        return f"your layers cost {cost:,} attention FLOPs per sequence; the budget is {design_budget():,}"
    return None


def train_design(layers, progress: bool = False):
    """Train the design exactly as the grader does; returns the TrainResult (accuracy at its end: .final_accuracy).

    On DESIGN["threads"] torch threads (then restored): the same result on every machine, and no slowdown where
    other programs share the cores (two threads on two busy cores ran 5-15 times slower than one).
    """
    import torch

    from saattn_edu.models import train

    before = torch.get_num_threads()
    torch.set_num_threads(DESIGN["threads"])
    try:
        return train(design_model(layers), design_task(), steps=DESIGN["steps"], batch_size=DESIGN["batch_size"],
                     lr=DESIGN["lr"], seed=DESIGN["seed"], eval_every=DESIGN["steps"], progress=progress)
    finally:
        torch.set_num_threads(before)


def unreachable_distances(layers) -> list[int]:
    """Needle distances whose token can never reach the last one through the stack (residual stream included)."""
    n = DESIGN["seq_len"]
    reach = np.eye(n, dtype=np.int64)  # reach[i, j]: token j's information is at position i
    for p in layers:
        step = np.asarray(p.mask(n), dtype=np.int64) | np.eye(n, dtype=np.int64)
        reach = ((step @ reach) > 0).astype(np.int64)
    lo, hi = DESIGN["distance"]
    return [d for d in range(lo, hi + 1) if not reach[n - 1, n - 1 - d]]


class TrainedDesign:
    """A design passes when it is within the FLOP budget and its trained accuracy reaches the bar."""

    def __call__(self, expected, got) -> Verdict:
        why = design_problem(got)
        if why:
            return Verdict(False, [why])
        missing = unreachable_distances(got)
        if missing:  # no training can fix this: say so at once (and save the minute of training)
            return Verdict(False, [f"the last token can never receive a needle {missing[0]}"
                                   f"{'' if len(missing) == 1 else f' to {missing[-1]}'} tokens back: "
                                   "no path through your layers reaches that far (stack the masks, residual "
                                   "included: which layer could carry it?)"])
        acc = train_design(got).final_accuracy
        if acc < DESIGN["bar"]:
            return Verdict(False, [f"trained accuracy {acc:.3f} is below the bar {DESIGN['bar']} (chance is 0.125): "
                                   "can information travel from the needle to the last token?"])
        return Verdict(True)


# ---- references ------------------------------------------------------------------------------------------------
def _ref_receptive_field(windows, causal):
    return sum((w - 1) if causal else w // 2 for w in windows)


def _ref_stack_flops(layers, n, d_model):
    total = 0
    for w in layers:
        pattern = P.Dense() if w is None else P.SlidingWindow(w)
        total += 4 * pattern.num_pairs(n) * d_model
    return total


def _windows_case(causal):
    def make(rng):
        return {"windows": [int(w) for w in rng.integers(1, 40, size=int(rng.integers(1, 6)))], "causal": causal}

    return make


def _stack_case(kind):
    def make(rng):
        n, d = int(rng.integers(8, 300)), int(rng.choice([16, 32, 64]))
        L = int(rng.integers(1, 5))
        if kind == "dense":
            layers = [None] * L
        elif kind == "wide":
            layers = [int(rng.integers(2 * n + 2, 4 * n)) for _ in range(L)]  # even window // 2 passes n - 1
        else:
            layers = [None if rng.random() < 0.3 else int(rng.integers(1, n)) for _ in range(L)]
            layers[int(rng.integers(L))] = int(rng.integers(3, n))  # at least one window
        return {"layers": layers, "n": n, "d_model": d}

    return make


# ---- ★ the distances a dilated stack reaches -------------------------------------------------------------------
def ref_stack_reach(layers, n):
    """By the library's masks: one row of reachability, pushed through each layer's DilatedWindow (residual kept)."""
    reach = np.zeros(n, dtype=bool)
    reach[n - 1] = True  # reach[j]: token j's information is at the last token
    for window, dilation in reversed(list(layers)):  # from the top layer down to the input
        mask = P.DilatedWindow(window, dilation, causal=True).mask(n) | np.eye(n, dtype=bool)
        reach = (reach.astype(np.int64) @ mask.astype(np.int64)) > 0
    return reach[::-1].copy()  # by distance d = n - 1 - j


def _reach_case(kind):
    def make(rng):
        n = int(rng.integers(20, 160))
        L = int(rng.integers(1, 5))
        if kind == "plain":
            layers = [(int(rng.integers(1, 12)), 1) for _ in range(L)]
        elif kind == "growing":  # Longformer's habit: dilation grows with depth
            w = int(rng.integers(2, 6))
            layers = [(w, w ** k) for k in range(L)]
        elif kind == "wide":
            layers = [(int(rng.integers(n // 2, n)), int(rng.integers(1, 4))) for _ in range(L)]
        else:
            layers = [(int(rng.integers(1, 8)), int(rng.integers(1, 9))) for _ in range(L)]
            layers[0] = (int(rng.integers(2, 6)), int(rng.integers(3, 9)))  # one dilated layer at least
        return {"layers": layers, "n": n}

    return make


QUESTIONS = [
    Question(
        "receptive_field", 1, reference=_ref_receptive_field, compare=IntEqual(),
        hint="Each layer adds its own reach: window // 2 on each side (non-causal), window - 1 back (causal).",
        cases=(
            Case("non-causal windows", _windows_case(False), hint="a non-causal window reaches window // 2"),
            Case("causal windows", _windows_case(True), hint="a causal window sees i - window < j <= i"),
            Case("one layer", lambda rng: {"windows": [int(rng.integers(1, 50))], "causal": bool(rng.integers(2))}),
        ),
    ),
    Question(
        "stack_attention_flops", 2, reference=_ref_stack_flops, compare=IntEqual(), forbid=forbid_pattern_api,
        hint="4 · pairs · d_model per layer; a non-causal window of reach r = w // 2 keeps the offsets |i - j| <= r, "
             "and offset o != 0 occurs in 2·(n - o) pairs.",
        cases=(
            Case("dense layers only", _stack_case("dense"), hint="a dense layer has n² pairs"),
            Case("dense and sliding layers", _stack_case("mixed")),
            Case("windows wider than the sequence", _stack_case("wide"),
                 hint="offsets only go up to n - 1: clip the reach"),
        ),
    ),
    Question(
        "hybrid_design", 3, kind="value", answer_name="my_layers", points=4, reference=lambda: DESIGN,
        compare=TrainedDesign(),
        hint=f"All-sliding stacks cannot see {DESIGN['distance'][0]}+ tokens away; one dense layer (or a relay) can, "
             "within the budget.",
    ),
    Question(
        "q4", 4, kind="value", answer_name="q4_answer", points=1, compare=IntEqual(),
        reference=lambda: 41,
        hint="How far does one non-causal window of w reach, and how do the reaches of stacked layers combine?",
    ),
    Question(
        "q5", 5, kind="value", answer_name="q5_answer", points=1, compare=NumberClose(rtol=1e-3),
        reference=lambda: _ref_stack_flops([None, 9, 9], 64, 32) / _ref_stack_flops([None] * 3, 64, 32),
        hint="Your stack_attention_flops answers it: a ratio of two stacks' FLOPs.",
    ),
    text_question("ex11", 6),
    Question(
        "star_stack_reach", 7, answer_name="stack_reach", reference=ref_stack_reach,
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_pattern_api,
        hint="The distances reached are the sums of one allowed step per layer (a step of 0 included), cut below "
             "n; with dilation they leave holes, so a sum of reaches is not the answer.",
        cases=(
            Case("plain causal windows (dilation 1)", _reach_case("plain"),
                 hint="without dilation the reach has no holes: every distance up to the summed reach"),
            Case("random windows and dilations", _reach_case("random")),
            Case("dilation growing with depth", _reach_case("growing")),
            Case("windows reaching past the first token", _reach_case("wide"),
                 hint="distances of n or more do not exist: cut the array at n"),
        ),
    ),
]
