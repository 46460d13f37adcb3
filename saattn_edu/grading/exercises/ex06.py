"""Checks for exercises/06_blocks.ipynb: block layouts from token masks, wasted work, block size, key permutation."""
from __future__ import annotations

import numpy as np

from saattn_edu import complexity as C
from saattn_edu import patterns as P

from ..compare import ArrayEqual, IntEqual, NumberClose
from ..hints import Diagnosed
from ..freetext import text_question
from ..spec import Case, Question
from ._star import HUGE_N, csr_pair, random_csr
from .ex01 import forbid_pattern_api


def forbid_order_api() -> list:
    """The kernel's own residue permutation (lesson 06 borrows it for its pictures)."""
    from saattn_edu.accel import permute

    return [(permute, "permutation")]


def forbid_block_api() -> list:
    """The pattern views (block_layout among them), CSR builders and the FLOP counters: they answer the questions."""
    return forbid_pattern_api() + [(C, "attention_pairs"), (C, "attention_flops"), (C, "attention_bytes")]


# ---- references (NumPy, written independently of the library; tests compare them with viz.layout_stats) -------
def _block_counts(mask, block):
    """(counts, areas), both (nb, nb): allowed pairs and real (unpadded) pairs in every block."""
    n = mask.shape[0]
    nb = -(-n // block)
    padded = np.zeros((nb * block, nb * block), dtype=np.int64)  # pad to whole blocks with "not allowed"
    padded[:n, :n] = mask
    counts = padded.reshape(nb, block, nb, block).sum(axis=(1, 3))  # (nb, nb)
    sizes = np.minimum(block, n - np.arange(nb) * block)  # the last block may be short
    return counts, np.outer(sizes, sizes)


def ref_block_layout(mask, block):
    return _block_counts(mask, block)[0] > 0


def ref_wasted_fraction(mask, block):
    counts, areas = _block_counts(mask, block)
    computed = int(areas[counts > 0].sum())
    return 1.0 - int(mask.sum()) / computed if computed else 0.0


def ref_best_block_size(timings):
    """The block whose fastest repeat is the fastest; ties go to the smaller block."""
    return min(timings, key=lambda b: (min(timings[b]), b))


def ref_residue_order(n, stride):
    return np.concatenate([np.arange(r, n, stride) for r in range(stride)]).astype(np.int64)


# ---- input generators ------------------------------------------------------------------------------------------
def _mask_case(kind):
    def make(rng):
        n = int(rng.integers(9, 61))
        block = int(rng.integers(2, 9))
        if kind == "window":
            mask = P.SlidingWindow(int(rng.integers(1, 9)), causal=True).mask(n)
        elif kind == "strided":
            mask = P.Strided(int(rng.integers(3, 8))).mask(n)
        elif kind == "empty":
            mask = np.zeros((n, n), dtype=bool)
        elif kind == "block 1":
            mask, block = rng.random((n, n)) < 0.2, 1
        elif kind == "wide block":
            mask, block = rng.random((n, n)) < 0.05, int(rng.integers(n, 2 * n))
        else:
            mask = rng.random((n, n)) < rng.uniform(0.01, 0.1)
        if kind == "ragged":
            n = block * int(rng.integers(2, 8)) + int(rng.integers(1, block))  # not a multiple of block
            mask = rng.random((n, n)) < 0.05
        return {"mask": mask, "block": block}

    return make


def _timings_case(kind):
    def make(rng):
        blocks = [int(b) for b in 2 ** np.arange(3, 3 + int(rng.integers(3, 6)))]  # 8, 16, 32, ...
        base = {b: float(rng.uniform(1e-3, 5e-2)) for b in blocks}
        table = {b: [t * float(rng.uniform(1.0, 1.2)) for _ in range(3)] for b, t in base.items()}
        if kind == "outlier":  # one slow run (another program woke up): the fastest repeat ignores it
            best = min(base, key=base.get)
            table[best][int(rng.integers(3))] *= 50
        elif kind == "tie":
            fast = sorted(rng.choice(blocks, size=2, replace=False).tolist())
            t = min(min(r) for r in table.values()) * 0.5
            for b in fast:
                table[b][0] = t
        elif kind == "single":
            table = {blocks[0]: table[blocks[0]]}
        if kind == "unsorted":
            keys = list(table)
            rng.shuffle(keys)
            table = {b: table[b] for b in keys}
        return {"timings": table}

    return make


def _order_case(kind):
    def make(rng):
        stride = int(rng.integers(2, 9))
        if kind == "multiple":
            n = stride * int(rng.integers(2, 9))
        elif kind == "stride 1":
            n, stride = int(rng.integers(1, 30)), 1
        elif kind == "short":
            n = int(rng.integers(1, stride))
        else:
            n = stride * int(rng.integers(2, 9)) + int(rng.integers(1, stride))
        return {"n": n, "stride": stride}

    return make


# ---- ★ the block layout of CSR neighbour lists ----------------------------------------------------------------
def ref_csr_block_layout(indptr, indices, block):
    n = len(indptr) - 1
    nb = -(-n // block)
    layout = np.zeros((nb, nb), dtype=bool)
    layout[np.repeat(np.arange(n), np.diff(indptr)) // block, np.asarray(indices, dtype=np.int64) // block] = True
    return layout


def _csr_case(kind):
    def make(rng):
        if kind == "huge":  # a causal window: not symmetric; the block does not divide n
            block = int(rng.choice([48, 96, 112]))
            indptr, indices = csr_pair(P.SlidingWindow(int(rng.integers(2, 20)), causal=True), HUGE_N)
            return {"indptr": indptr, "indices": indices, "block": block}
        n, block = int(rng.integers(9, 61)), int(rng.integers(2, 9))
        if kind == "ragged":
            n = block * int(rng.integers(2, 8)) + int(rng.integers(1, block))
        if kind == "strided":
            indptr, indices = csr_pair(P.Strided(int(rng.integers(3, 8))), n)
        else:
            indptr, indices = random_csr(rng, n, float(rng.uniform(0.02, 0.1)), empty_rows=kind == "empty rows")
        return {"indptr": indptr, "indices": indices, "block": block}

    return make


# ---- the questions ---------------------------------------------------------------------------------------------
QUESTIONS = [
    Question(
        "block_layout", 1, reference=ref_block_layout, compare=Diagnosed(ArrayEqual("b")), forbid=forbid_block_api,
        hint="Pad the mask to whole blocks, reshape to (nb, block, nb, block), then ask .any(axis=(1, 3)).",
        cases=(
            Case("random sparse mask", _mask_case("random")),
            Case("causal sliding window", _mask_case("window")),
            Case("strided (Sparse Transformer)", _mask_case("strided")),
            Case("n not a multiple of block", _mask_case("ragged"),
                 hint="the last block row and column are short: there are ceil(n / block) blocks per side"),
            Case("block of 1 (the mask itself)", _mask_case("block 1")),
            Case("all-False mask", _mask_case("empty"), hint="no allowed pair: every block is skipped"),
        ),
    ),
    Question(
        "wasted_fraction", 2, reference=ref_wasted_fraction, compare=NumberClose(rtol=1e-9),
        forbid=forbid_block_api,
        hint="Computed pairs = the real (unpadded) pairs of every active block; wasted = 1 - allowed / computed.",
        cases=(
            Case("random sparse mask", _mask_case("random")),
            Case("causal sliding window", _mask_case("window")),
            Case("strided (Sparse Transformer)", _mask_case("strided")),
            Case("n not a multiple of block", _mask_case("ragged"),
                 hint="a short edge block computes only its real pairs: count rows × columns that exist"),
            Case("one block covers everything", _mask_case("wide block")),
            Case("all-False mask", _mask_case("empty"), hint="nothing is computed: return 0.0, not nan"),
        ),
    ),
    Question(
        "best_block_size", 3, reference=ref_best_block_size, compare=IntEqual(),
        hint="Take each block's fastest repeat (min), then the block with the smallest one.",
        cases=(
            Case("a table of timings", _timings_case("plain")),
            Case("one slow outlier", _timings_case("outlier"),
                 hint="compare fastest repeats (min): a mean or a sum lets one disturbed run decide"),
            Case("a tie", _timings_case("tie"), hint="on a tie, prefer the smaller block (less wasted work)"),
            Case("keys in any order", _timings_case("unsorted")),
            Case("a single block size", _timings_case("single")),
        ),
    ),
    Question(
        "residue_order", 4, reference=ref_residue_order, compare=Diagnosed(ArrayEqual("i")), forbid=forbid_order_api,
        hint="Group the tokens by residue, residue 0 first; inside a group keep token order.",
        cases=(
            Case("n a multiple of stride", _order_case("multiple")),
            Case("n not a multiple of stride", _order_case("ragged"),
                 hint="the first n % stride residues hold one token more than the others"),
            Case("stride 1 (the identity)", _order_case("stride 1")),
            Case("fewer tokens than the stride", _order_case("short"),
                 hint="residues with no token contribute nothing"),
        ),
    ),
    Question(
        "q5", 5, kind="value", answer_name="q5_answer", points=2,
        reference=lambda: int(P.Strided(16).block_layout(256, 16).sum()),
        compare=NumberClose(),
        hint="Strided(16) reaches back 16 tokens and then every 16th one: which key blocks does query block b touch?",
    ),
    text_question("ex06", 6),
    Question(
        "star_csr_block_layout", 7, answer_name="csr_block_layout", reference=ref_csr_block_layout,
        compare=Diagnosed(ArrayEqual("b")), forbid=forbid_block_api,
        hint="The layout of exercise 1, from the neighbour lists alone: each allowed pair marks the tile of its "
             "query's block and its key's block; rows are queries.",
        cases=(
            Case("random neighbour lists", _csr_case("random")),
            Case("random lists with empty rows", _csr_case("empty rows"),
                 hint="an empty row has no entries: the entries after it belong to later rows"),
            Case("strided (Sparse Transformer)", _csr_case("strided")),
            Case("n not a multiple of block", _csr_case("ragged"),
                 hint="blocks per side round up: the last block is short, and its tiles count too"),
            Case(f"{HUGE_N:,} tokens, a causal window (no n × n mask fits)", _csr_case("huge"),
                 hint="sizes that grow like n·n are out of reach here; nb·nb and the entries themselves fit"),
        ),
    ),
]
