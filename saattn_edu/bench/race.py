"""`saattn bench` / `race(fn, ...)`: an attention function against the library kernel, Flex and SDPA on a GPU.

Every contender runs on the same bf16 inputs (B, H, n, D) for each anchor pattern and length. A contender is first
checked (output and, with the backward, dq/dk/dv) against float32 autograd of dense masked attention at a short
length, then against compiled FlexAttention at the full length: a wrong kernel gets its error, not a time. Times are
`triton.testing.do_bench` medians in ms, forward and forward+backward. SDPA (FlashAttention-2 and cuDNN backends)
can only run the dense causal mask: it is the dense bar every pattern is compared with, and the exact same
computation for `causal`.

The capstone's reference solution against the library, Flex and SDPA at 16k, on a GPU machine (repository root):

    PYTHONPATH=. python3 -m saattn_edu.cli bench --fn solutions/14_capstone_kernel.py:flash_attention \
        --name capstone --n 16384 --json "$OUT/capstone_bench_16384.json"
"""
from __future__ import annotations

import importlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

from .._notebook import exec_cell
from .anchors import AnchorBigBird, anchor_patterns

NO_GPU = "no CUDA GPU on this machine: nothing to time (run `saattn bench` on a GPU machine, e.g. Colab with a GPU)"
TOL = {"o": 2e-2, "grad": 5e-2}  # relative (Frobenius) error allowed in bf16 against float32
CHECK_N, CHECK_H = 2048, 4  # the dense float32 check: (1, 4, 2048, D)


# ---- loading a function ----------------------------------------------------------------------------------------
def _notebook_namespace(path: Path) -> dict:
    """Run the code cells of a notebook (or its py:percent source) that define things: no checks, no races."""
    if path.suffix == ".ipynb":
        import nbformat

        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    else:
        text, cells = path.read_text(encoding="utf-8"), []
        for chunk in ("\n" + text).split("\n# %%")[1:]:
            head, _, body = chunk.partition("\n")
            if "[markdown]" not in head:
                cells.append(body)
    ns = {"__name__": f"saattn_bench_{path.stem}", "__file__": str(path)}
    for k, src in enumerate(cells):
        if any(s in src for s in ("check(", "race(", "google.colab")) or src.lstrip().startswith(("%", "!")):
            continue
        exec_cell(src, ns, f"<{path.name} cell {k}>")
    return ns


def load_callable(spec: str) -> Callable:
    """'package.module:function', 'path/file.py:function' or 'path/notebook.ipynb:function' -> the function.

    A notebook (or a py:percent notebook source) runs its defining cells only: cells that call check( or race(
    are skipped."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ValueError(f"--fn must look like 'module:function' or 'file.py:function', got {spec!r}")
    path = Path(target)
    if path.suffix in (".py", ".ipynb") and path.exists():
        if path.suffix == ".ipynb" or "\n# %%" in path.read_text(encoding="utf-8"):
            ns = _notebook_namespace(path)
        else:
            spec_ = importlib.util.spec_from_file_location(f"saattn_bench_{path.stem}", path)
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
            ns = vars(module)
    else:
        ns = vars(importlib.import_module(target))
    if name not in ns or not callable(ns[name]):
        raise ValueError(f"{target} defines no function {name!r}")
    return ns[name]


# ---- contenders ----------------------------------------------------------------------------------------------------
def library_fn(pattern) -> Callable:
    """The library's kernel: block_sparse_flash, or the permuted strided path for Strided patterns."""
    from ..accel.block_sparse_flash import block_sparse_flash
    from ..accel.permute import strided_flash
    from ..patterns.sparse_transformer import Strided

    if isinstance(pattern, Strided):
        return lambda q, k, v: strided_flash(q, k, v, pattern)
    return lambda q, k, v: block_sparse_flash(q, k, v, pattern)


_FLEX: dict = {}


def flex_fn(pattern, n: int, autotune: bool = False) -> Callable:
    """Compiled FlexAttention under the pattern's block mask (max-autotune: autotunes 45-100 s per mask)."""
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    mode = "max-autotune-no-cudagraphs" if autotune else None
    if mode not in _FLEX:
        _FLEX[mode] = torch.compile(flex_attention, mode=mode) if mode else torch.compile(flex_attention)
    if isinstance(pattern, AnchorBigBird):
        pattern._prepare(n)
        pattern.device_table("cuda")  # the table's device copy exists before tracing
    bm = create_block_mask(pattern.mask_mod_for(n), None, None, n, n, device="cuda")
    compiled = _FLEX[mode]
    return lambda q, k, v: compiled(q, k, v, block_mask=bm)


def sdpa_fn(backend: str) -> Callable:
    """Dense causal SDPA with one backend ("flash": FlashAttention-2, "cudnn")."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    which = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}[backend]

    def run(q, k, v):
        with sdpa_kernel(which):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    return run


# ---- checking and timing -----------------------------------------------------------------------------------------
def _inputs(B, H, n, D, dtype, seed=0):
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    mk = lambda: torch.randn(B, H, n, D, device="cuda", dtype=dtype, generator=g)  # noqa: E731
    return mk().requires_grad_(), mk().requires_grad_(), mk().requires_grad_(), mk()


def _rel(a, b) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _dense_ref(q, k, v, mask):
    """float32 masked attention; rows with nothing allowed give 0."""
    import torch

    s = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    p = torch.softmax(s.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0)
    return p @ v.float()


def check_fn(fn, pattern, D: int, dtype, backward: bool) -> dict:
    """Relative errors of fn (o, dq, dk, dv) against float32 autograd at (1, 4, 2048, D); 'error' when wrong."""
    import torch

    n = CHECK_N
    q, k, v, do = _inputs(1, CHECK_H, n, D, dtype, seed=1)
    try:
        o = fn(q, k, v)
        qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
        mask = torch.as_tensor(pattern.mask(n), device="cuda")
        of = _dense_ref(qf, kf, vf, mask)
        errs = {"o": _rel(o, of)}
        if backward:
            got = torch.autograd.grad(o, (q, k, v), do)
            want = torch.autograd.grad(of, (qf, kf, vf), do.float())
            errs.update({name: _rel(a, b) for name, a, b in zip(("dq", "dk", "dv"), got, want)})
    except Exception as exc:  # noqa: BLE001 - a failing contender is a result: reported, not timed
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    bad = [f"{k} rel. error {e:.2e}" for k, e in errs.items() if not e <= TOL["o" if k == "o" else "grad"]]
    return {"rel_err": errs, **({"error": "wrong: " + ", ".join(bad)} if bad else {})}


def _bench(fn, q, k, v, do, backward: bool) -> float:
    import torch
    from triton.testing import do_bench

    if not backward:
        return float(do_bench(lambda: fn(q, k, v), return_mode="median"))
    return float(do_bench(lambda: torch.autograd.grad(fn(q, k, v), (q, k, v), do), return_mode="median"))


def count_pairs(pattern, n: int) -> int:
    """Allowed (i, j) pairs, evaluated on the GPU in row chunks."""
    import torch

    mm, total, cols = pattern.mask_mod_for(n), 0, torch.arange(n, device="cuda")[None, :]
    for s in range(0, n, 2048):
        rows = torch.arange(s, min(n, s + 2048), device="cuda")[:, None]
        total += int(torch.as_tensor(mm(None, None, rows, cols)).expand(len(rows), n).sum())
    return total


# ---- the race --------------------------------------------------------------------------------------------------
def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def race(fn=None, patterns=None, n=16384, *, name: str = "yours", library: bool = True, flex: bool = True,
         autotune: bool = False, sdpa=("flash", "cudnn"), backward: bool = True, B: int = 1, H: int = 16,
         D: int = 128, dtype: str = "bfloat16", out: str | None = None, quiet: bool = False) -> list[dict]:
    """Time fn(q, k, v, pattern) against the library, Flex and SDPA; returns one row per (pattern, n, contender).

    fn: a function or 'module:function' (None: only the others). patterns: anchor names (default: all five) or
    {name: pattern}. n: a length or a list. On a machine without a GPU: prints why and returns []."""
    if not gpu_available():
        print(NO_GPU)
        return []
    import torch

    torch_dtype = getattr(torch, dtype)
    for attr in ("cache_size_limit", "recompile_limit"):  # one compile per mask: past dynamo's default of 8
        if hasattr(torch._dynamo.config, attr):
            setattr(torch._dynamo.config, attr, 256)
    if isinstance(fn, str):
        fn = load_callable(fn)
    anchors = anchor_patterns()
    if patterns is None:
        patterns = anchors
    elif not isinstance(patterns, dict):
        unknown = [p for p in patterns if p not in anchors]
        if unknown:
            raise ValueError(f"unknown pattern(s) {unknown}; anchors are {list(anchors)}")
        patterns = {p: anchors[p] for p in patterns}
    sizes = [n] if isinstance(n, int) else list(n)
    modes = ("fwd", "fwdbwd") if backward else ("fwd",)
    rows = []
    for size in sizes:
        q, k, v, do = _inputs(B, H, size, D, torch_dtype)
        dense = {f"sdpa_{b}_causal": sdpa_fn(b) for b in sdpa}
        for cname, cfn in dense.items():  # the dense bar: one row per length
            rows.append(_time_row(cname, "dense causal", size, cfn, q, k, v, do, modes, None, {}, quiet))
        for pname, pattern in patterns.items():
            pairs = count_pairs(pattern, size)
            contenders = {}
            if fn is not None:
                contenders[name] = lambda q, k, v, p=pattern: fn(q, k, v, p)
            if library:
                contenders["library"] = library_fn(pattern)
            if flex:
                contenders["flex"] = flex_fn(pattern, size)
                if autotune:
                    contenders["flex_autotune"] = flex_fn(pattern, size, autotune=True)
            flex_out = None
            if flex:
                with torch.no_grad():
                    flex_out = contenders["flex"](q, k, v)
            for cname, cfn in contenders.items():
                gate = check_fn(cfn, pattern, D, torch_dtype, backward) if cname != "flex" else {}
                if getattr(pattern, "needs_n", False):  # the short check prepared its tables for n=2048
                    pattern._prepare(size)
                if "error" not in gate and flex_out is not None and cname != "flex":
                    with torch.no_grad():
                        gate["rel_err_vs_flex"] = _rel(cfn(q, k, v), flex_out)
                    if not gate["rel_err_vs_flex"] <= TOL["o"]:
                        gate["error"] = f"wrong at n={size}: rel. error {gate['rel_err_vs_flex']:.2e} against Flex"
                rows.append(_time_row(cname, pname, size, cfn, q, k, v, do, modes, pairs, gate, quiet, B, H, D))
        del q, k, v, do
        torch.cuda.empty_cache()
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "B": B, "H": H, "D": D,
            "dtype": dtype, "timer": "triton.testing.do_bench median (ms)"}
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        pass
    print_table(rows, meta)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"JSON: {out}")
    return rows


def _time_row(cname, pname, size, cfn, q, k, v, do, modes, pairs, gate, quiet, B=1, H=16, D=128) -> dict:
    import torch

    row = {"contender": cname, "pattern": pname, "n": size, "pairs": pairs, **gate, "ms": {}}
    if "error" not in row:
        t = time.perf_counter()
        try:
            torch.autograd.grad(cfn(q, k, v), (q, k, v), do) if "fwdbwd" in modes else cfn(q, k, v)
            torch.cuda.synchronize()
            row["first_call_s"] = time.perf_counter() - t  # compilation, plans, autotuning
            for m in modes:
                row["ms"][m] = _bench(cfn, q, k, v, do, m == "fwdbwd")
        except Exception as exc:  # noqa: BLE001 - out of resources, unsupported backend, ...: a result
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if pairs and row["ms"]:
        flops = {"fwd": 4.0 * pairs * D * B * H, "fwdbwd": 14.0 * pairs * D * B * H}
        row["tflops"] = {m: flops[m] / (ms * 1e-3) / 1e12 for m, ms in row["ms"].items()}
    if not quiet:
        times = "  ".join(f"{m} {ms:8.3f} ms" for m, ms in row["ms"].items())
        print(f"  {pname:20s} n={size:6d} {cname:16s} {times}{'  ' + row['error'] if 'error' in row else ''}",
              flush=True)
    return row


def print_table(rows: list[dict], meta: dict | None = None, file=None) -> None:
    """One line per (pattern, n): each contender's forward and forward+backward ms (or its error)."""
    file = file or sys.stdout
    if meta:
        print(f"\n{meta['device']} | B={meta['B']} H={meta['H']} D={meta['D']} {meta['dtype']} | "
              f"{meta['timer']}", file=file)
    names = list(dict.fromkeys(r["contender"] for r in rows))
    print(f"{'pattern':22s} {'n':>6s} " + " ".join(f"{c[:19]:>19s}" for c in names), file=file)
    for key in dict.fromkeys((r["pattern"], r["n"]) for r in rows):
        by = {r["contender"]: r for r in rows if (r["pattern"], r["n"]) == key}
        cells = []
        for c in names:
            r = by.get(c)
            if r is None:
                cells.append(f"{'':>19s}")
            elif "error" in r:
                cells.append(f"{'ERROR':>19s}")
            else:
                ms = r["ms"]
                cells.append(f"{ms.get('fwd', math.nan):8.3f} /{ms.get('fwdbwd', math.nan):8.3f}ms")
        print(f"{key[0]:22s} {key[1]:6d} " + " ".join(cells), file=file)
    errors = [r for r in rows if "error" in r]
    for r in errors:
        print(f"  {r['contender']} on {r['pattern']} n={r['n']}: {r['error']}", file=file)
    print("(forward / forward+backward; SDPA rows are dense causal, the bar for every pattern)", file=file)
