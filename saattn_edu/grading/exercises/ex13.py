"""Checks for exercises/13_ring_merge.ipynb: the log-sum-exp merge, the ring schedule, ring attention simulated."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.distributed import blockwise as _blockwise
from saattn_edu.distributed import schedule as _schedule
from saattn_edu.reference import _softmax

from ..compare import ArrayClose, ArrayEqual, IntEqual, Verdict
from ..hints import Diagnosed
from ..freetext import text_question
from ..spec import Case, Question


def forbid_attention_api() -> list:
    """The library's merges, attention references and ring schedule: they already compute the answers."""
    targets = [(R, name) for name in ("merge_partials", "dense_attention", "flash_attention", "sparse_attention",
                                      "block_sparse_attention")]
    targets += [(_softmax, "merge_partials"), (_blockwise, "merge_partials")]
    targets += [(_schedule, name) for name in ("simulate_ring", "plan_ring", "shard_positions", "needed_blocks")]
    return targets


@dataclass
class OutLseClose:
    """A pair (out, lse): out close, lse close where finite and -inf exactly where expected (never NaN)."""

    rtol: float = 1e-6
    atol: float = 1e-9

    def __call__(self, expected, got) -> Verdict:
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return Verdict(False, [f"expected a pair (out, lse), got {type(got).__name__}"])
        out, lse = (np.asarray(g) for g in got)
        verdict = ArrayClose(self.rtol, self.atol)(expected[0], out)
        if not verdict.ok:
            return Verdict(False, ["out: " + verdict.lines[0]] + verdict.lines[1:])
        if lse.shape != expected[1].shape:
            return Verdict(False, [f"lse: expected shape {expected[1].shape}, got shape {lse.shape}"])
        if np.isnan(lse).any():
            return Verdict(False, [f"lse: {int(np.isnan(lse).sum())} entries are NaN (an empty row's lse is -inf)"])
        empty = np.isneginf(expected[1])
        if not np.array_equal(np.isneginf(lse), empty):
            return Verdict(False, ["lse: -inf must appear exactly on rows that saw no key on either side"])
        verdict = ArrayClose(self.rtol, self.atol)(expected[1][~empty], lse[~empty])
        return verdict if verdict.ok else Verdict(False, ["lse: " + verdict.lines[0]] + verdict.lines[1:])


# ---- input generators -----------------------------------------------------------------------------------------
def _partial(rng, n, d, empty_rows=(), offset=0.0):
    out = rng.standard_normal((2, n, d))
    lse = rng.standard_normal((2, n)) * 3 + offset
    out[:, list(empty_rows)] = 0.0
    lse[:, list(empty_rows)] = -np.inf
    return out, lse


def _merge_case(kind):
    def make(rng):
        n, d = int(rng.integers(3, 12)), int(rng.integers(1, 6))
        offset = 1e4 if kind == "large" else 0.0
        out_a, lse_a = _partial(rng, n, d, offset=offset)
        out_b, lse_b = _partial(rng, n, d, offset=-offset if kind == "large" else 0.0)
        if kind in ("one empty", "both empty"):
            rows = rng.choice(n, size=2, replace=False)
            out_b[:, rows], lse_b[:, rows] = 0.0, -np.inf
            if kind == "both empty":
                out_a[:, rows[:1]], lse_a[:, rows[:1]] = 0.0, -np.inf
        return {"out_a": out_a, "lse_a": lse_a, "out_b": out_b, "lse_b": lse_b}

    return make


def _holds_case(W=None, step=None):
    def make(rng):
        w = int(rng.integers(3, 9)) if W is None else W
        if step == "zero":
            return {"world_size": w, "step": 0}
        s = int(rng.integers(1, w)) if w > 1 else 0
        if w > 2 and 2 * s % w == 0:  # half way round both directions meet: step one further
            s += 1
        return {"world_size": w, "step": s if step is None else step(w)}

    return make


def _ring_case(W, causal, partial=False):
    def make(rng):
        n = W * int(rng.integers(2, 7))
        q, k, v = (rng.standard_normal((2, n, 4)) for _ in range(3))
        steps = int(rng.integers(2, W)) if partial else W
        return {"q": q, "k": k, "v": v, "world_size": W, "causal": causal, "steps": steps}

    return make


# ---- references ----------------------------------------------------------------------------------------------
def _ref_holds(world_size, step):
    return (np.arange(world_size) - step) % world_size


def _ref_ring(q, k, v, world_size, causal, steps):
    """After `steps` ring steps rank r has seen the blocks of ranks r, r - 1, ..., r - steps + 1."""
    n = q.shape[-2]
    rank = np.arange(n) // (n // world_size)  # (n,) owner of each token
    mask = (rank[:, None] - rank[None, :]) % world_size < steps
    if causal:
        mask &= P.Causal().mask(n)
    return R.dense_attention(q, k, v, mask=mask)


def _ref_q4():
    return _schedule.plan_ring(P.SlidingWindow(16), 256, 8).hops


# ---- ★ the zigzag split -----------------------------------------------------------------------------------------
def _ref_zigzag(n, world_size):
    chunks = np.arange(n).reshape(2 * world_size, n // (2 * world_size))
    return np.stack([np.concatenate([chunks[r], chunks[2 * world_size - 1 - r]]) for r in range(world_size)])


def _zigzag_case(W=None):
    def make(rng):
        w = int(rng.integers(2, 9)) if W is None else W
        return {"n": 2 * w * int(rng.integers(1, 6)), "world_size": w}

    return make


QUESTIONS = [
    Question(
        "merge_partials", 1, reference=R.merge_partials, compare=OutLseClose(), forbid=forbid_attention_api,
        hint="Weights w = exp(lse - max(lse_a, lse_b)); out = (w_a·out_a + w_b·out_b) / (w_a + w_b); "
             "lse = max + log(w_a + w_b). Rows empty on both sides: subtract 0 instead of -inf.",
        cases=(
            Case("random partials", _merge_case("random")),
            Case("log-sum-exps near ±1e4", _merge_case("large"),
                 hint="exp(1e4) overflows: subtract the larger lse before exponentiating"),
            Case("rows that saw no key on one side", _merge_case("one empty"),
                 hint="an empty side has lse = -inf: its weight exp(-inf) = 0"),
            Case("rows that saw no key on either side", _merge_case("both empty"),
                 hint="both -inf: max is -inf, -inf - -inf is NaN; use 0 as the max there, out = 0, lse = -inf"),
        ),
    ),
    Question(
        "ring_holds", 2, reference=_ref_holds, compare=Diagnosed(ArrayEqual("i")), forbid=forbid_attention_api,
        hint="Every step each rank passes its block to rank r + 1, so after s steps rank r holds rank r - s's block.",
        cases=(
            Case("step 0: every rank holds its own block", _holds_case(step="zero")),
            Case("3 to 8 ranks, some steps in", _holds_case(),
                 hint="each step passes blocks on to rank r + 1: the receiver holds what its left neighbour had"),
            Case("5 ranks, one step", _holds_case(5, step=lambda w: 1),
                 hint="after one step rank 0 holds the block of rank 4 (wrap around with % world_size)"),
            Case("one rank", _holds_case(1), hint="a ring of one: the rank always holds its own block"),
        ),
    ),
    Question(
        "ring_attention_sim", 3, reference=_ref_ring,
        compare=Diagnosed(ArrayClose(rtol=1e-6, atol=1e-9), where="ring_holds, merge_partials or the positions"),
        forbid=forbid_attention_api,
        hint="Split q, k, v into world_size contiguous blocks; for every rank and every step, attend to the block "
             "it holds (partial_attention with the global-position mask) and merge into its running (out, lse).",
        cases=(
            Case("non-causal, 2 ranks", _ring_case(2, False)),
            Case("non-causal, 4 ranks", _ring_case(4, False)),
            Case("stopped after some steps, 5 ranks", _ring_case(5, False, partial=True),
                 hint="after s steps rank r has merged the blocks of ranks r, r - 1, ..., r - s + 1 only: "
                      "is the ring turning the way ring_holds says?"),
            Case("causal, 4 ranks", _ring_case(4, True),
                 hint="causal: query position i sees key position j <= i — use global positions, not local ones"),
            Case("causal, 1 rank", _ring_case(1, True)),
        ),
    ),
    Question(
        "q4", 4, kind="value", answer_name="q4_answer", points=2, reference=_ref_q4, compare=IntEqual(),
        hint="A non-causal window of 16 reaches 8 tokens each way; each rank owns 32 tokens: which ranks' keys can "
             "its queries see, and how many hops bring them (both directions allowed)?",
    ),
    text_question("ex13", 5),
    Question(
        "star_zigzag_positions", 6, answer_name="zigzag_positions", reference=_ref_zigzag, compare=Diagnosed(ArrayEqual("i")),
        forbid=forbid_attention_api,
        hint="Cut the sequence into twice as many chunks as ranks; each rank takes one chunk from each end.",
        cases=(
            Case("2 to 8 ranks", _zigzag_case()),
            Case("4 ranks", _zigzag_case(4), hint="rank 0 owns chunks 0 and 7 of 8"),
            Case("1 rank", _zigzag_case(1), hint="one rank owns everything, in token order"),
        ),
    ),
]
