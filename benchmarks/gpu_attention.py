"""GPU benchmark: the Triton block-sparse kernel vs FlexAttention (default, max-autotune) vs SDPA (flash, cuDNN).

    python benchmarks/gpu_attention.py                      # B=1 H=16 D=128 bf16, n in 4096 16384 65536
    python benchmarks/gpu_attention.py --quick              # correctness matrix + tile-config sweep at 16k
    python benchmarks/gpu_attention.py --sizes 65536 --out benchmarks/results

Patterns are RECIPES.md's anchors (all causal, token-level). Times: triton.testing.do_bench medians (ms) on
random inputs; TF/s counts computed pairs only (4·pairs·D per head forward, 2.5× that backward).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from saattn_edu.bench.anchors import AnchorBigBird, anchor_patterns  # noqa: E402
from saattn_edu.patterns import Causal, SlidingWindow  # noqa: E402
from saattn_edu.patterns.sparse_transformer import Strided  # noqa: E402


def count_pairs(pattern, n, device) -> int:
    """Exact allowed pairs, evaluated on the device in row chunks."""
    import torch

    mm, total, cols = pattern.mask_mod_for(n), 0, torch.arange(n, device=device)[None, :]
    for s in range(0, n, 2048):
        rows = torch.arange(s, min(n, s + 2048), device=device)[:, None]
        total += int(torch.as_tensor(mm(None, None, rows, cols)).expand(len(rows), n).sum())
    return total


def ours(pattern):
    from saattn_edu.accel.block_sparse_flash import block_sparse_flash
    from saattn_edu.accel.permute import strided_flash

    if isinstance(pattern, Strided):
        return lambda q, k, v: strided_flash(q, k, v, pattern)
    return lambda q, k, v: block_sparse_flash(q, k, v, pattern)


def bench(fn, q, k, v, do, backward: bool) -> float:
    import torch
    from triton.testing import do_bench

    if not backward:
        return do_bench(lambda: fn(q, k, v), return_mode="median")
    return do_bench(lambda: torch.autograd.grad(fn(q, k, v), (q, k, v), do), return_mode="median")


def rel_err(a, b) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


def dense_ref(q, k, v, mask):
    """fp32 masked softmax attention (rows with nothing allowed give 0)."""
    import torch

    g = q.shape[1] // k.shape[1]
    k, v = k.float().repeat_interleave(g, 1), v.float().repeat_interleave(g, 1)
    s = (q.float() @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return torch.softmax(s.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0) @ v


def inputs(B, H, n, D, dtype, h_kv=None, seed=0):
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    mk = lambda h: torch.randn(B, h, n, D, device="cuda", dtype=dtype, generator=g).requires_grad_()  # noqa: E731
    return mk(H), mk(h_kv or H), mk(h_kv or H), torch.randn(B, H, n, D, device="cuda", dtype=dtype, generator=g)


def correctness() -> list:
    """Forward and gradients vs fp32 autograd of the dense masked path, on every anchor and a few dtypes / shapes."""
    import torch

    rows = []
    cases = [(name, p, torch.bfloat16, 128, 16, 16, 2048) for name, p in anchor_patterns().items()]
    cases += [("sliding_fp32", SlidingWindow(300, causal=True), torch.float32, 64, 4, 4, 1000),
              ("causal_fp16_gqa", Causal(), torch.float16, 64, 8, 2, 1500),
              ("strided_l64_bf16_gqa", Strided(64), torch.bfloat16, 128, 4, 2, 1234)]
    for name, p, dtype, D, H, h_kv, n in cases:
        q, k, v, do = inputs(1, H, n, D, dtype, h_kv)
        o = ours(p)(q, k, v)
        grads = torch.autograd.grad(o, (q, k, v), do)
        qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
        of = dense_ref(qf, kf, vf, torch.as_tensor(p.mask(n), device="cuda"))
        gf = torch.autograd.grad(of, (qf, kf, vf), do.float())
        errs = [rel_err(o, of)] + [rel_err(a, b) for a, b in zip(grads, gf)]
        rows.append({"case": name, "dtype": str(dtype), "D": D, "H": H, "H_kv": h_kv, "n": n,
                     "rel_err_o_dq_dk_dv": errs})
        print(f"check {name:22s} {str(dtype):15s} D={D} n={n}: o {errs[0]:.2e} dq {errs[1]:.2e} "
              f"dk {errs[2]:.2e} dv {errs[3]:.2e}", flush=True)
    return rows


def sweep(n=16384) -> list:
    """Tile configs of each kernel at n=16k, sliding and causal (forward, then forward+backward)."""
    from saattn_edu.accel import block_sparse_flash as bsf

    rows, base = [], dict(bsf.CONFIGS[128])
    q, k, v, do = inputs(1, 16, n, 128, __import__("torch").bfloat16)
    fwd = [(128, 64, 8, 3), (128, 128, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3), (128, 64, 8, 4)]
    dkdv = [(64, 128, 8, 3), (32, 128, 4, 3), (64, 128, 4, 3), (128, 128, 8, 2), (64, 64, 4, 3)]
    dq = [(128, 64, 8, 3), (128, 32, 4, 3), (64, 64, 4, 3), (128, 128, 8, 2)]
    for pname in ("sliding_w1024", "causal"):
        p = anchor_patterns()[pname]
        for kind, cfgs in (("fwd", fwd), ("dkdv", dkdv), ("dq", dq)):
            for cfg in cfgs:
                bsf.CONFIGS[128] = dict(base, **{kind: cfg})
                try:
                    ms = bench(ours(p), q, k, v, do, backward=kind != "fwd")
                except Exception as e:  # an out-of-resources config is a result too
                    ms = float("nan")
                    print("  failed:", type(e).__name__, str(e)[:120])
                rows.append({"pattern": pname, "kernel": kind, "config": cfg, "ms": ms})
                print(f"sweep {pname:14s} {kind:5s} {cfg}: {ms:.3f} ms", flush=True)
        bsf.CONFIGS[128] = base
    return rows


def bwd_sweep(n=16384) -> list:
    """Configs of the single-launch backward at n=16k (forward+backward timed; the forward config is fixed)."""
    import torch
    from saattn_edu.accel import block_sparse_flash as bsf

    rows, base = [], dict(bsf.CONFIGS[128])
    q, k, v, do = inputs(1, 16, n, 128, torch.bfloat16)
    for pname in ("sliding_w1024", "causal"):
        for cfg in [(64, 64, 4, 3), (64, 64, 4, 2), (128, 64, 8, 3), (64, 128, 8, 3), (128, 128, 8, 2)]:
            bsf.CONFIGS[128] = dict(base, bwd=cfg)
            try:
                ms = bench(ours(anchor_patterns()[pname]), q, k, v, do, backward=True)
            except Exception as e:  # an out-of-resources config is a result too
                ms = float("nan")
                print("  failed:", type(e).__name__, str(e)[:120])
            rows.append({"pattern": pname, "kernel": "bwd", "config": cfg, "ms": ms})
            print(f"sweep {pname:14s} bwd {cfg}: fwd+bwd {ms:.3f} ms", flush=True)
    bsf.CONFIGS[128] = base
    return rows


def _variant_ok(fn, p, backward: bool) -> float:
    """Largest relative error (o, and dq/dk/dv when backward) of fn vs fp32 dense autograd at n=2048, H=4."""
    import torch

    q, k, v, do = inputs(1, 4, 2048, 128, torch.bfloat16, seed=1)
    o = fn(q, k, v)
    qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
    of = dense_ref(qf, kf, vf, torch.as_tensor(p.mask(2048), device="cuda"))
    if not backward:
        return rel_err(o, of)
    errs = [rel_err(a, b) for a, b in zip(torch.autograd.grad(o, (q, k, v), do),
                                           torch.autograd.grad(of, (qf, kf, vf), do.float()))]
    return max([rel_err(o, of)] + errs)


def tune(out, fwd_cfgs, bwd_cfgs, fwd_cases, bwd_cases, baseline=None) -> list:
    """Time kernel configs on the given (pattern, n) cases; each variant is checked against fp32 at n=2048 and
    against the first variant's output at full size. `baseline`: another kernel module timed first (A/B)."""
    import torch
    from saattn_edu.accel import block_sparse_flash as bsf

    base, pats, rows, ref_out = dict(bsf.CONFIGS[128]), anchor_patterns(), [], {}
    data = {n: inputs(1, 16, n, 128, torch.bfloat16) for n in sorted({c[1] for c in fwd_cases + bwd_cases})}
    cases = {"fwd": [c + (False,) for c in fwd_cases], "bwd": [c + (True,) for c in bwd_cases]}
    cases["baseline"] = cases["fwd"] + cases["bwd"]
    variants = [("baseline", None)] if baseline else []
    variants += [("fwd", c) for c in fwd_cfgs] + [("bwd", c) for c in bwd_cfgs]
    for kind, cfg in variants:
        if kind != "baseline":
            bsf.CONFIGS[128] = dict(base, **{kind: cfg})
        mod = baseline if kind == "baseline" else bsf
        for pname, n, backward in cases[kind]:
            p = pats[pname]
            fn = lambda q, k, v, p=p: mod.block_sparse_flash(q, k, v, p)  # noqa: E731
            try:
                err = _variant_ok(fn, p, backward)
                q, k, v, do = data[n]
                with torch.no_grad():
                    o = fn(q, k, v)
                err_big = rel_err(o, ref_out.setdefault((pname, n), o))
                ms = bench(fn, q, k, v, do, backward)
            except Exception as e:  # an out-of-resources config is a result too
                err = err_big = ms = float("nan")
                print("  failed:", type(e).__name__, str(e)[:120], flush=True)
            rows.append({"variant": kind, "config": cfg, "pattern": pname, "n": n, "mode": "fwdbwd" if backward
                         else "fwd", "ms": ms, "rel_err_fp32_2k": err, "rel_err_vs_first": err_big})
            print(f"tune {kind:8s} {str(cfg):16s} {pname:20s} n={n:6d} {rows[-1]['mode']:6s} {ms:8.3f} ms  "
                  f"err {err:.1e} / {err_big:.1e}", flush=True)
        with open(os.path.join(out, "gpu_tune.json"), "w") as f:
            json.dump(rows, f, indent=1)
    bsf.CONFIGS[128] = base
    return rows


def tune_refs(out, cases) -> list:
    """SDPA-flash causal and compiled Flex times for (pattern, n, mode) cases, to read tune() against."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    rows = []
    for name in ("cache_size_limit", "recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 256)
    for pname, n, mode in cases:
        torch._dynamo.reset()
        globals().pop("_FLEX", None)
        q, k, v, do = inputs(1, 16, n, 128, torch.bfloat16)
        if pname == "sdpa_causal":
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                ms = bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v, do,
                           mode == "fwdbwd")
        else:
            fx, _ = flex_setup(anchor_patterns()[pname], n)
            ms = bench(fx, q, k, v, do, mode == "fwdbwd")
        rows.append({"ref": pname, "n": n, "mode": mode, "ms": ms})
        print(f"ref {pname:20s} n={n:6d} {mode:6s} {ms:8.3f} ms", flush=True)
        with open(os.path.join(out, "gpu_tune_refs.json"), "w") as f:
            json.dump(rows, f, indent=1)
    return rows


def flex_setup(pattern, n, autotune=False):
    """(compiled flex fn, seconds to build the mask); autotune: mode="max-autotune-no-cudagraphs" (~1 min a mask)."""
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    global _FLEX, _FLEX_TUNED
    if "_FLEX" not in globals():
        _FLEX = torch.compile(flex_attention)
    if autotune and "_FLEX_TUNED" not in globals():
        _FLEX_TUNED = torch.compile(flex_attention, mode="max-autotune-no-cudagraphs")
    compiled = _FLEX_TUNED if autotune else _FLEX
    t = time.perf_counter()
    mask_mod = pattern.mask_mod_for(n)
    if isinstance(pattern, AnchorBigBird):
        pattern.device_table("cuda")  # warm the device copy of the table before tracing
    bm = create_block_mask(mask_mod, None, None, n, n, device="cuda")
    torch.cuda.synchronize()
    return (lambda q, k, v: compiled(q, k, v, block_mask=bm)), time.perf_counter() - t


def measure(n, B=1, H=16, D=128, skip_flex=False, autotune=False) -> list:
    """One row per pattern: ours / flex / sdpa forward and forward+backward."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch._dynamo.reset()  # static shapes for each n: Flex compiles for this length (setup time reported apart)
    for name in ("cache_size_limit", "recompile_limit"):  # one compile per mask_mod: past the default of 8
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 256)
    globals().pop("_FLEX", None)
    globals().pop("_FLEX_TUNED", None)
    q, k, v, do = inputs(B, H, n, D, torch.bfloat16)
    flash = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        fa = {m: bench(flash, q, k, v, do, m == "fwdbwd") for m in ("fwd", "fwdbwd")}
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):  # the dense bar on Hopper in torch
        cudnn = {m: bench(flash, q, k, v, do, m == "fwdbwd") for m in ("fwd", "fwdbwd")}
    print(f"n={n} sdpa causal: flash fwd {fa['fwd']:.3f} ms, fwd+bwd {fa['fwdbwd']:.3f} ms; cudnn fwd "
          f"{cudnn['fwd']:.3f} ms, fwd+bwd {cudnn['fwdbwd']:.3f} ms", flush=True)
    causal_pairs, rows = n * (n + 1) // 2, []
    for name, p in anchor_patterns().items():
        pairs = count_pairs(p, n, "cuda")
        row = {"n": n, "pattern": name, "pairs": pairs, "pair_density": pairs / n**2,
               "ideal_speedup": causal_pairs / pairs, "sdpa_flash_causal_ms": fa, "sdpa_cudnn_causal_ms": cudnn,
               "causal_pairs": causal_pairs}
        t = time.perf_counter()
        ours(p)(q, k, v)
        torch.cuda.synchronize()
        row["ours_setup_s"] = time.perf_counter() - t
        row["ours_ms"] = {m: bench(ours(p), q, k, v, do, m == "fwdbwd") for m in ("fwd", "fwdbwd")}
        if not skip_flex:
            fx, row["flex_block_mask_s"] = flex_setup(p, n)
            t = time.perf_counter()
            torch.autograd.grad(fx(q, k, v), (q, k, v), do)
            torch.cuda.synchronize()
            row["flex_compile_s"] = time.perf_counter() - t
            row["flex_ms"] = {m: bench(fx, q, k, v, do, m == "fwdbwd") for m in ("fwd", "fwdbwd")}
            row["rel_err_vs_flex"] = rel_err(ours(p)(q, k, v), fx(q, k, v))  # grad mode on: no recompile
        if autotune and not skip_flex:
            t = time.perf_counter()
            ft, _ = flex_setup(p, n, autotune=True)
            torch.autograd.grad(ft(q, k, v), (q, k, v), do)
            torch.cuda.synchronize()
            row["flex_autotune_compile_s"] = time.perf_counter() - t
            row["flex_autotune_ms"] = {m: bench(ft, q, k, v, do, m == "fwdbwd") for m in ("fwd", "fwdbwd")}
        if n <= 8192:
            mask = torch.as_tensor(p.mask(n), device="cuda")
            sd = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # noqa: E731
            row["sdpa_mask_ms"] = {m: bench(sd, q, k, v, do, m == "fwdbwd") for m in ("fwd", "fwdbwd")}
        derive(row, B, H, D)
        rows.append(row)
        print_row(row)
    return rows


def derive(row, B, H, D):
    """TF/s on computed pairs, speedup over SDPA-flash causal, ratio to Flex (>1: we are faster)."""
    flops = {"fwd": 4.0 * row["pairs"] * D * B * H, "fwdbwd": 14.0 * row["pairs"] * D * B * H}
    row["ours_tflops"] = {m: flops[m] / (row["ours_ms"][m] * 1e-3) / 1e12 for m in flops}
    row["speedup_vs_fa_causal"] = {m: row["sdpa_flash_causal_ms"][m] / row["ours_ms"][m] for m in flops}
    row["fraction_of_ideal"] = {m: row["speedup_vs_fa_causal"][m] / row["ideal_speedup"] for m in flops}
    cudnn_flops = {"fwd": 4.0 * row["causal_pairs"] * D * B * H, "fwdbwd": 14.0 * row["causal_pairs"] * D * B * H}
    row["cudnn_causal_tflops"] = {m: cudnn_flops[m] / (row["sdpa_cudnn_causal_ms"][m] * 1e-3) / 1e12 for m in flops}
    row["fraction_of_cudnn_tflops"] = {m: row["ours_tflops"][m] / row["cudnn_causal_tflops"][m] for m in flops}
    if "flex_autotune_ms" in row:
        row["ratio_to_flex_autotune"] = {m: row["flex_autotune_ms"][m] / row["ours_ms"][m] for m in flops}
    if "flex_ms" in row:
        row["ratio_to_flex"] = {m: row["flex_ms"][m] / row["ours_ms"][m] for m in flops}
        row["flex_speedup_vs_fa_causal"] = {m: row["sdpa_flash_causal_ms"][m] / row["flex_ms"][m] for m in flops}


def print_row(r):
    for m in ("fwd", "fwdbwd"):
        flex = (f"flex {r['flex_ms'][m]:8.3f} ms  ours/flex speed {r['ratio_to_flex'][m]:5.2f}x"
                if "flex_ms" in r else "")
        if "flex_autotune_ms" in r:
            flex += f"  flex-autotune {r['flex_autotune_ms'][m]:8.3f} ms ({r['ratio_to_flex_autotune'][m]:4.2f}x)"
        flex += f"  {r['fraction_of_cudnn_tflops'][m]:.2f} of cuDNN causal TF/s"
        sd = f"  sdpa-mask {r['sdpa_mask_ms'][m]:.3f} ms" if "sdpa_mask_ms" in r else ""
        print(f"n={r['n']:6d} {r['pattern']:20s} {m:6s} ours {r['ours_ms'][m]:8.3f} ms {r['ours_tflops'][m]:6.1f} TF/s "
              f"speedup {r['speedup_vs_fa_causal'][m]:6.2f}x (ideal {r['ideal_speedup']:5.2f}, "
              f"{r['fraction_of_ideal'][m]:.2f})  {flex}{sd}", flush=True)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, m in zip(axes, ("fwd", "fwdbwd")):
        names = list(anchor_patterns())
        x = np.arange(len(names))
        for s_i, n in enumerate(sizes):
            by = {r["pattern"]: r for r in rows if r["n"] == n}
            w = 0.8 / (2 * len(sizes))
            ax.bar(x + (2 * s_i) * w, [by[p]["speedup_vs_fa_causal"][m] for p in names], w, label=f"ours n={n}")
            ax.bar(x + (2 * s_i + 1) * w, [by[p].get("flex_speedup_vs_fa_causal", {}).get(m, 0) for p in names], w,
                   label=f"flex n={n}", hatch="//", alpha=0.6)
        ax.set_xticks(x + 0.4 - w / 2, names, rotation=20)
        ax.set_yscale("log")
        ax.set_title(f"{m}: speedup over SDPA flash (dense causal)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="correctness matrix and tile sweep only")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384, 65536])
    ap.add_argument("--skip-flex", action="store_true")
    ap.add_argument("--autotune", action="store_true",
                    help="also Flex compiled with mode='max-autotune-no-cudagraphs' (about a minute per mask)")
    ap.add_argument("--bwd-sweep", action="store_true", help="time backward tile configs first")
    ap.add_argument("--tune", action="store_true", help="config variants on the remaining gaps (see NOTES.md)")
    ap.add_argument("--tune-bwd", action="store_true", help="backward tile shapes (dK/dV and dQ apart), with refs")
    ap.add_argument("--baseline", help="path of an older block_sparse_flash.py to time first in --tune")
    ap.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results")
    args = ap.parse_args(argv)
    import torch
    import triton

    os.makedirs(args.out, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__}
    print(meta, flush=True)
    if args.tune_bwd:  # (BM1, BN1, BM2, BN2, warps, stages): dK/dV programs hold BN1 keys, dQ programs BM2 queries
        t16, t64 = 16384, 65536
        res = {"meta": meta, "correctness": correctness()}
        cases = [("sliding_w1024", t16), ("sliding_w1024", t64), ("causal", t16), ("causal", t64),
                 ("longformer_w512_g64", t16), ("bigbird_blk128", t16)]
        res["tune"] = tune(args.out, [], [(64, 64, 64, 64, 4, 2), (64, 128, 128, 64, 8, 2), (32, 128, 128, 32, 8, 2),
                                          (32, 128, 128, 32, 4, 2), (64, 128, 128, 64, 8, 1), (32, 128, 128, 32, 8, 3),
                                          (64, 64, 128, 64, 8, 2)], [], cases)
        res["refs"] = tune_refs(args.out, [(p, n, "fwdbwd") for p, n in cases])
        with open(os.path.join(args.out, "gpu_tune_bwd.json"), "w") as f:
            json.dump(res, f, indent=1)
        return
    if args.tune:
        baseline = None
        if args.baseline:  # an older kernel file, imported as a module of its own
            import importlib.util

            spec = importlib.util.spec_from_file_location("saattn_edu.accel._baseline", args.baseline)
            baseline = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(baseline)
        t16, t64 = 16384, 65536
        tune(args.out, [(64, 64, 4, 3), (64, 64, 4, 2), (64, 64, 4, 4), (64, 32, 4, 3), (64, 32, 4, 4),
                        (64, 128, 4, 2), (64, 128, 8, 3), (128, 64, 4, 3), (128, 64, 8, 3)],
             [(64, 64, 4, 2), (64, 64, 4, 3), (64, 64, 8, 2), (64, 32, 4, 2), (64, 32, 4, 3), (64, 64, 4, 1)],
             [("sliding_w1024", t16), ("sliding_w1024", t64), ("longformer_w512_g64", t16),
              ("longformer_w512_g64", t64), ("bigbird_blk128", t16)],
             [("sliding_w1024", t16), ("sliding_w1024", t64), ("causal", t16), ("causal", t64)], baseline)
        tune_refs(args.out, [("sdpa_causal", t16, "fwd"), ("sdpa_causal", t16, "fwdbwd"),
                             ("sliding_w1024", t16, "fwd"), ("sliding_w1024", t16, "fwdbwd"),
                             ("sliding_w1024", t64, "fwd"), ("sliding_w1024", t64, "fwdbwd"),
                             ("causal", t64, "fwdbwd"), ("causal", t16, "fwdbwd")])
        return
    if args.quick:
        res = {"meta": meta, "correctness": correctness(), "sweep": sweep()}
        name = "quick"
    else:
        sw = bwd_sweep() if args.bwd_sweep else []
        rows = [r for n in args.sizes for r in measure(n, skip_flex=args.skip_flex, autotune=args.autotune)]
        res = {"meta": meta, "rows": rows, "bwd_sweep": sw, "configs": {str(k): v for k, v in __import__(
            "saattn_edu.accel.block_sparse_flash", fromlist=["CONFIGS"]).CONFIGS.items()}}
        name = "gpu_attention_" + "_".join(map(str, args.sizes))
        plot(rows, os.path.join(args.out, name + ".png"))
    with open(os.path.join(args.out, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
