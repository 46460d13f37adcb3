"""Checks for exercises/08_triton_kernel.ipynb: the learner's Triton block-sparse kernel, run on fresh random inputs.

The learner's answer is `triton_attention(q, k, v, pattern)`: float32 NumPy (B, H, n, D) in, NumPy out; it runs
their `@triton.jit` kernel (in Triton's interpreter without a GPU, compiled on one) and is compared with
`R.dense_attention` under the pattern's mask (float64). Helpers for the notebook live here too: `launch` (turns
a stub's NotImplementedError, wrapped by Triton, back into one) and stand-ins for `triton` / `tl` where Triton
is missing, so the notebook still defines every name.
"""
from __future__ import annotations

import re
import types

import numpy as np

from saattn_edu import patterns as P
from saattn_edu import reference as R

from ..compare import ArrayClose, CSREqual
from ..spec import Case, Question

#: Functions of this module a notebook may call inside an answer (the tripwire refuses every other one).
LEARNER_HELPERS = ("launch", "_stub_message", "_jit", "_no_triton", "_NoTL", "interpreter_problem")
TOL = {"rtol": 1e-4, "atol": 1e-5}  # float32 kernel vs float64 reference (IEEE fp32 dots, also on a GPU)
_STUB = re.compile(r"NotImplementedError\(?['\"]?(Exercise \d+[^'\"\n]*)")


# ---- notebook helpers --------------------------------------------------------------------------------------------
def _stub_message(exc: BaseException) -> str | None:
    """The stub's message when `exc` is (or wraps, or reports compiling) a NotImplementedError; else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError):
            return str(exc)
        text = str(exc)
        if "NotImplementedError" in text:  # interpreter: InterpreterError(repr); GPU: CompilationError on `raise`
            m = _STUB.search(text)
            return m.group(1) if m else "a function of the kernel is not written yet"
        exc = exc.__cause__ or exc.__context__
    return None


def launch(kernel, grid, *args, **kwargs):
    """kernel[grid](*args, **kwargs); a NotImplementedError raised in (or compiled from) the kernel stays one."""
    try:
        return kernel[grid](*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - only stubs are translated; anything else propagates unchanged
        msg = _stub_message(exc)
        if msg is None:
            raise
        raise NotImplementedError(msg) from None


class _Constexpr:
    """Stand-in for tl.constexpr when Triton is missing: annotations evaluate, nothing runs."""


def _no_triton(*args, **kwargs):
    raise RuntimeError("Triton is not installed on this machine (it ships for Linux x86-64): the kernel cannot run "
                       "here; open this notebook in Colab or on a Linux machine")


def _jit(fn=None, **kwargs):
    return fn if fn is not None else (lambda f: f)


#: `triton` and `tl` stand-ins: `@triton.jit` keeps the Python function, `tl.constexpr` annotates, calls raise.
class _NoTL:
    constexpr = _Constexpr

    def __getattr__(self, name):  # tl.load, tl.dot, ...: only inside kernels, which never run without Triton
        return _no_triton


no_triton = types.SimpleNamespace(jit=_jit, cdiv=lambda a, b: -(-a // b))
no_tl = _NoTL()


def interpreter_problem() -> str | None:
    """Why the interpreter cannot run tl.max / tl.sum here (triton loaded before TRITON_INTERPRET=1); else None."""
    import os
    import sys

    if os.environ.get("TRITON_INTERPRET") != "1" or "triton" not in sys.modules:
        return None
    import triton.language as tl

    if type(tl.max).__name__ == "InterpretedFunction":
        return None
    return ("triton was imported before TRITON_INTERPRET=1 was set, so tl.max / tl.sum cannot run in the "
            "interpreter: restart the kernel and run the setup cell first")


# ---- references and cases ----------------------------------------------------------------------------------------
def reference(q, k, v, pattern):
    """Dense attention in float64 under the pattern's mask; rows with no allowed key give 0."""
    n = q.shape[-2]
    return R.dense_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), mask=pattern.mask(n))


def _qkv(rng, n, heads, d=32, scale=1.0, batch=1):
    shape = (batch, heads, n, d)
    q = rng.standard_normal(shape) * scale
    return {"q": q.astype(np.float32), "k": rng.standard_normal(shape).astype(np.float32),
            "v": rng.standard_normal(shape).astype(np.float32)}


def _layout(rng, nb, density=0.45, empty_row=True):
    layout = rng.random((nb, nb)) < density
    layout[np.arange(nb), rng.integers(0, nb, nb)] = True  # most rows see something ...
    if empty_row:
        layout[int(rng.integers(nb))] = False  # ... and one query block sees nothing: its rows give 0
    return layout


def _case(kind):
    def make(rng):
        if kind == "dense":
            return {**_qkv(rng, 128, 2), "pattern": P.Dense()}
        if kind == "aligned layout":  # blocks of 64 = the kernel's tiles: every active tile is full
            return {**_qkv(rng, 256, 1), "pattern": P.BlockSparse(_layout(rng, 4), 64)}
        if kind == "causal":
            return {**_qkv(rng, 128, 2, batch=2), "pattern": P.Causal()}
        if kind == "causal ragged":
            return {**_qkv(rng, int(rng.integers(130, 190)), 1), "pattern": P.Causal()}
        if kind == "sliding causal":
            n = int(rng.integers(130, 250))
            return {**_qkv(rng, n, 1), "pattern": P.SlidingWindow(int(rng.integers(16, 80)), causal=True)}
        if kind == "sliding":
            n = int(rng.integers(130, 190))
            return {**_qkv(rng, n, 1), "pattern": P.SlidingWindow(int(rng.integers(8, 60)))}
        block = int(rng.choice([24, 40, 48]))  # not the kernel's 64: tiles hold parts of several blocks
        n = int(rng.integers(150, 250))
        pattern = P.BlockSparse(_layout(rng, -(-n // block), density=0.3), block)
        return {**_qkv(rng, n, 1, scale=8.0 if kind == "large logits" else 1.0), "pattern": pattern}

    return make


def forbid_library() -> list:
    """The library's attention routines (NumPy, Torch, Flex, Triton): the learner's kernel does the work."""
    import torch.nn.functional as F

    import saattn_edu.api as api
    from saattn_edu.accel import block_sparse_flash as bsf
    from saattn_edu.accel import flex as flex_mod
    from saattn_edu.accel import permute, torch_paths
    from saattn_edu.reference import dense as _dense

    targets = [(R, name) for name in ("dense_attention", "sparse_attention", "block_sparse_attention",
                                      "flash_attention")]
    targets += [(_dense, "dense_attention"), (api, "attention"), (F, "scaled_dot_product_attention")]
    targets += [(bsf, "block_sparse_flash"), (bsf, "_forward"), (bsf.BlockSparseFlash, "forward"),
                (permute, "strided_flash"), (flex_mod, "flex"), (torch_paths, "masked_sdpa"),
                (torch_paths, "gather_attention")]
    return targets


_LOAD_HINT = ("load K as (D, BN) and V as (BN, D) at key positions kb·BN + offs_n0, with mask=col_ok and other=0.0 "
              "(rows past n hold NaN here: an unmasked load shows up as NaN)")
_UPDATE_HINT = ("m_new = max(m_i, tl.max(qk, 1)); alpha = exp2(m_i - m_new); p = exp2(qk - m_new[:, None]); "
                "l_i·alpha + tl.sum(p, 1); acc·alpha[:, None] + tl.dot(p, v): scores are in log2 units (exp2)")
_MASK_HINT = ("bits = tl.load(Masks + mid·BM·BN + offs_m0[:, None]·BN + offs_n0[None, :]); "
              "qk = tl.where((bits != 0) & col_ok[None, :], qk, -inf); a row with nothing allowed yet keeps m = -inf: "
              "use 0 in its place inside exp2")


def _question(name, number, hint, cases):
    return Question(name, number, reference=reference, compare=ArrayClose(**TOL), forbid=forbid_library,
                    hint=hint, cases=cases, answer_name="triton_attention",  # every question grades this function
                    min_timeout=60.0)  # its least time in `saattn grade`: Triton's interpreter runs the kernel on CPU


QUESTIONS = [
    _question("full_tiles", 2, "Exercises 1 and 2: " + _LOAD_HINT + "; " + _UPDATE_HINT, (
        Case("dense, n = 128, two heads (full tiles only)", _case("dense"), hint=_UPDATE_HINT),
        Case("a 64-aligned block layout with an empty query block", _case("aligned layout"),
             hint="a query tile with no active key tile keeps l = 0: the kernel writes 0 there"),
    )),
    _question("causal", 3, _MASK_HINT, (
        Case("causal, n = 128, batch 2 × 2 heads (diagonal tiles are partial)", _case("causal"), hint=_MASK_HINT),
        Case("causal, n not a multiple of 64", _case("causal ragged"),
             hint="the last key tile runs past n: mask its columns with col_ok as well as the tile's bits"),
    )),
    _question("sliding_window", 3, _MASK_HINT, (
        Case("causal sliding window, ragged n", _case("sliding causal")),
        Case("two-sided sliding window, ragged n", _case("sliding")),
    )),
    _question("block_layout", 3, _MASK_HINT, (
        Case("random block layout, blocks of 24–48 (partial tiles, an empty row)", _case("layout")),
        Case("the same with logits around ±100", _case("large logits"),
             hint="subtract the running max before exp2, and rescale acc and l by alpha when it grows"),
    )),
]


# ---- ★ the transposed plan (NumPy: graded with or without Triton) -------------------------------------------------
def ref_transpose_tiles(ptr, idx, n_cols):
    """CSR by key tile of a CSR by query tile: query tiles sorted by (key tile, query tile)."""
    ptr, idx = np.asarray(ptr, np.int64), np.asarray(idx, np.int64)
    rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    order = np.lexsort((rows, idx))
    return np.searchsorted(idx[order], np.arange(n_cols + 1)).astype(np.int64), rows[order]


def _tiles_case(n_rows_range, per_row):
    """A random CSR of active tiles by query tile (increasing key tiles, some rows empty) and n_cols with empty
    trailing key tiles."""
    def make(rng):
        n_rows = int(rng.integers(*n_rows_range))
        n_cols = int(rng.integers(n_rows // 2 + 2, 2 * n_rows + 3))
        counts = rng.integers(0, 2 * per_row + 1, n_rows)
        counts[rng.choice(n_rows, max(1, n_rows // 10), replace=False)] = 0  # some query tiles see nothing
        used = n_cols - int(rng.integers(1, 4))  # the last key tiles stay empty
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
        key = np.unique(rows * used + rng.integers(0, used, rows.size))  # sorted by (row, key tile), no repeats
        rows, idx = key // used, key % used
        ptr = np.searchsorted(rows, np.arange(n_rows + 1)).astype(np.int64)
        return {"ptr": ptr, "idx": idx, "n_cols": n_cols}

    return make


QUESTIONS.append(Question(
    "star_transpose_tiles", 6, reference=ref_transpose_tiles, compare=CSREqual(), answer_name="transpose_tiles",
    hint="The dK/dV loop needs, for each key tile, the query tiles that see it in increasing order, and one more "
         "pointer than key tiles: a key tile nobody sees still has its (empty) range, the last ones included.",
    cases=(
        Case("7-12 query tiles, empty rows and empty last key tiles", _tiles_case((7, 13), 2)),
        Case("300-500 query tiles, about 6 key tiles each", _tiles_case((300, 501), 3)),
        Case("50,000 query tiles: in time proportional to the active tiles", _tiles_case((50_000, 50_001), 3)),
    ),
))
