"""Ring attention on the GPU: exactness with ranks sharing one GPU, kernel rates, and a cost model for 4-8 H200.

    python benchmarks/ring_gpu.py                      # on a CUDA machine; JSON to $OUT (or benchmarks/results)
    python benchmarks/ring_gpu.py --skip-functional    # only rates, the one-GPU check of the model, the model

1. Functional: W = 2 and 4 ranks (gloo, CUDA tensors through host memory) run the ring with the Triton kernel in
   every step, forward and backward, bf16; sampled rows and gradients are compared with fp32 dense attention.
2. Rates: the kernel's forward and forward+backward TF/s on the block kinds a ring step is made of (a full block
   of keys, a causal diagonal block, a causal window band), measured with do_bench at a feasible size.
3. One-GPU check: a simulated ring (every (rank, step) block run in turn on the one GPU) at n = 65,536, W = 4,
   measured per rank against the model's compute prediction for the same blocks.
4. Model: per (rank, step) pairs counted exactly from the zigzag layout, compute = pairs / rate, communication =
   K/V bytes / NVLink bandwidth (dK/dV travel too in the backward), overlapped: a step costs max(compute, comm).
   Target: per-rank time within 1.25x of (one GPU's kernel time on all pairs) / W.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from saattn_edu import patterns as P
from saattn_edu.distributed.schedule import plan_from_needed, shard_positions

H, D, DTYPE = 16, 128, torch.bfloat16
NVLINK_GBPS = 400.0  # effective GB/s per direction between two H200 over NVLink 4 (900 GB/s total bidirectional)
WINDOW = 4096


def chunks(n, W, rank):
    """The zigzag layout's two contiguous chunks of a rank, as (start, stop) intervals."""
    pos = shard_positions(n, W, rank, "zigzag")
    c = len(pos) // 2
    return [(int(pos[0]), int(pos[0]) + c), (int(pos[c]), int(pos[c]) + c)]


def interval_pairs(q, k, window=None) -> int:
    """Allowed (i, j) pairs, i in q, j in k, under causal (j <= i) and optionally i - j < window."""
    i = np.arange(*q, dtype=np.int64)
    hi = np.minimum(i, k[1] - 1)
    lo = np.full_like(i, k[0]) if window is None else np.maximum(k[0], i - window + 1)
    return int(np.clip(hi - lo + 1, 0, None).sum())


def step_pairs(n, W, window=None) -> np.ndarray:
    """(W, W) pairs each rank's queries see in each rank's keys."""
    ch = [chunks(n, W, r) for r in range(W)]
    return np.array([[sum(interval_pairs(a, b, window) for a in ch[r] for b in ch[s]) for s in range(W)]
                     for r in range(W)])


# ---- 2. rates ----------------------------------------------------------------------------------------------
def kernel_rates(m=32768) -> dict:
    """TF/s (fwd, fwd+bwd) of the Triton ring step on full, diagonal-causal and window blocks of m tokens."""
    from triton.testing import do_bench

    from saattn_edu.distributed.triton_steps import triton_block_backward, triton_block_forward

    q, k, v, do = (torch.randn(1, H, m, D, device="cuda", dtype=DTYPE) for _ in range(4))
    kinds = {"full": (np.arange(m, 2 * m), np.arange(m), P.Causal(), None),
             "diagonal": (np.arange(m), np.arange(m), P.Causal(), None),
             "window": (np.arange(m), np.arange(m), P.SlidingWindow(WINDOW, causal=True), WINDOW)}
    rates = {}
    for name, (qp, kp, pat, w) in kinds.items():
        pairs = interval_pairs((int(qp[0]), int(qp[-1]) + 1), (int(kp[0]), int(kp[-1]) + 1), w)
        fwd = lambda: triton_block_forward(q, k, v, qp, kp, pat, 2 * m, 2 * m, D**-0.5)  # noqa: E731
        o, lse = fwd()
        bwd = lambda: triton_block_backward(q, k, v, o, lse, do, qp, kp, pat, 2 * m, 2 * m, D**-0.5)  # noqa: E731
        t_f, t_b = do_bench(fwd, return_mode="median"), do_bench(bwd, return_mode="median")
        flops = 4.0 * pairs * D * H
        rates[name] = {"pairs": pairs, "fwd_ms": t_f, "bwd_ms": t_b, "fwd_tflops": flops / t_f / 1e9,
                       "fwdbwd_tflops": 3.5 * flops / (t_f + t_b) / 1e9}
        print(f"rate {name:9s} m={m}: fwd {t_f:.3f} ms ({rates[name]['fwd_tflops']:.0f} TF/s), "
              f"bwd {t_b:.3f} ms, fwd+bwd {rates[name]['fwdbwd_tflops']:.0f} TF/s", flush=True)
    return rates


def _kind_rate(rates, window, key):
    return rates["window" if window else "full"][key]


# ---- 4. the model ------------------------------------------------------------------------------------------
def rank_seconds(compute, rank, chains, comm, accumulator=0.0) -> float:
    """One rank's time under ring.py's schedule: every chain's first transfer starts at 0 (during the local block);
    at each step the rank waits for the block, forwards it (it travels during this step's compute), computes it;
    in the backward the dK/dV accumulator of a block travels during the next step's compute."""
    t = compute[rank]
    for chain in chains:
        arrive = comm  # the first transfer of every chain started at time 0
        for src in chain:
            t = max(t, arrive)
            arrive = t + comm + accumulator  # the next block (and, backward, its accumulator) travels meanwhile
            t += compute[src]
    return t


def model(n, W, window, rates, gbps=NVLINK_GBPS) -> dict:
    """Predicted forward and forward+backward seconds per rank (slowest rank), and the single-GPU ideal / W."""
    pairs = step_pairs(n, W, window)
    flops = 4.0 * pairs * D * H  # (W, W) forward flops of each block
    m = n // W
    kv_bytes = 2 * m * H * D * 2  # K and V of one rank, bf16
    plan = plan_from_needed(pairs > 0)  # a window needs only close ranks
    hops = plan.hops
    comm_f, comm_b = kv_bytes / (gbps * 1e9), 2 * kv_bytes / (gbps * 1e9)  # dK/dV travel in the backward
    fwd_rate, fb_rate = (_kind_rate(rates, window, k) * 1e12 for k in ("fwd_tflops", "fwdbwd_tflops"))
    per_rank_f, per_rank_fb = [], []
    for r in range(W):
        comp_f = flops[r] / fwd_rate  # (W,) seconds of each block
        comp_b = 3.5 * flops[r] / fb_rate - comp_f  # backward seconds of each block
        chains = [[(r - d * s) % W for s in range(1, h + 1)] for d, h in ((+1, plan.forward_hops),
                                                                          (-1, plan.backward_hops)) if h]
        per_rank_f.append(rank_seconds(comp_f, r, chains, comm_f))
        per_rank_fb.append(per_rank_f[-1] + rank_seconds(comp_b, r, chains, comm_f, accumulator=comm_b / 2))
    total = int(pairs.sum())
    ideal_f, ideal_fb = 4.0 * total * D * H / fwd_rate / W, 14.0 * total * D * H / fb_rate / W
    return {"n": n, "W": W, "pattern": "causal" if window is None else f"causal window {window}",
            "fwd_s": max(per_rank_f), "fwdbwd_s": max(per_rank_fb), "ideal_fwd_s": ideal_f,
            "ideal_fwdbwd_s": ideal_fb, "ratio_fwd": max(per_rank_f) / ideal_f,
            "ratio_fwdbwd": max(per_rank_fb) / ideal_fb, "hops": hops, "mib_sent_per_rank_fwd": hops * kv_bytes / 2**20,
            "comm_ms_per_hop": comm_f * 1e3}


# ---- 3. one-GPU check of the model -------------------------------------------------------------------------
def simulated_ring(n, W, window, rates) -> dict:
    """Every (rank, step) block on the one GPU, timed; per rank measured compute vs the model's compute."""
    from triton.testing import do_bench

    from saattn_edu.distributed.triton_steps import triton_block_forward

    pat = P.Causal() if window is None else P.SlidingWindow(window, causal=True)
    pos = [shard_positions(n, W, r, "zigzag") for r in range(W)]
    q, k, v = (torch.randn(1, H, n // W, D, device="cuda", dtype=DTYPE) for _ in range(3))
    pairs = step_pairs(n, W, window)
    rate = _kind_rate(rates, window, "fwd_tflops") * 1e12
    rows = []
    for r in range(W):
        measured = sum(do_bench(lambda s=s: triton_block_forward(q, k, v, pos[r], pos[s], pat, n, n, D**-0.5),
                                return_mode="median") for s in range(W) if pairs[r, s])
        predicted = 4.0 * pairs[r].sum() * D * H / rate * 1e3
        rows.append({"rank": r, "measured_ms": measured, "model_ms": predicted})
        print(f"simulated ring n={n} W={W} rank {r}: measured {measured:.2f} ms, model {predicted:.2f} ms", flush=True)
    return {"n": n, "W": W, "window": window, "ranks": rows}


# ---- 1. functional multi-rank on one GPU -------------------------------------------------------------------
def _functional_rank(rank, W, opts):
    from saattn_edu.distributed.ring import ring_attention, shard

    torch.cuda.set_device(0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    n, pat = opts["n"], P.SlidingWindow(opts["window"], causal=True) if opts["window"] else None
    q, k, v, g = (torch.randn(1, 4, n, D, device="cuda", dtype=DTYPE, generator=gen) for _ in range(4))
    local = [shard(t, W, rank, "zigzag").requires_grad_() for t in (q, k, v)]
    out = ring_attention(*local, pat, causal=True, layout="zigzag", kernel="triton")
    (out.float() * shard(g, W, rank, "zigzag").float()).sum().backward()
    qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
    full = P.Causal() if pat is None else pat
    mask = torch.as_tensor(full.mask(n), device="cuda")
    ref = torch.softmax((qf @ kf.transpose(-1, -2) * D**-0.5).masked_fill(~mask, float("-inf")), -1) @ vf
    (ref * g.float()).sum().backward()
    mine = [shard(t, W, rank, "zigzag") for t in (ref, qf.grad, kf.grad, vf.grad)]
    errs = [float((a.float() - b).norm() / b.norm()) for a, b in zip([out] + [t.grad for t in local], mine)]
    return {"rank": rank, "rel_err_o_dq_dk_dv": errs}


def functional(n=4096) -> list:
    from saattn_edu.distributed.launch import spawn

    rows = []
    for W in (2, 4):
        for window in (None, 512):
            ranks = spawn(_functional_rank, W, ({"n": n, "window": window},), backend="gloo", timeout_s=300)
            worst = np.max([r["rel_err_o_dq_dk_dv"] for r in ranks], axis=0).tolist()
            rows.append({"W": W, "n": n, "window": window, "max_rel_err_o_dq_dk_dv": worst})
            print(f"functional W={W} n={n} window={window}: rel err o/dq/dk/dv {np.round(worst, 5)}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-functional", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    res = {"meta": {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "H": H, "D": D,
                    "dtype": "bf16", "nvlink_GBps_assumed": NVLINK_GBPS}}
    res["functional"] = [] if args.skip_functional else functional()
    res["rates"] = kernel_rates()
    res["simulated"] = [simulated_ring(65536, 4, None, res["rates"]), simulated_ring(65536, 4, WINDOW, res["rates"])]
    res["model"] = [model(n, W, w, res["rates"]) for w in (None, WINDOW) for W in (4, 8)
                    for n in (262144, 1048576, 4194304)]
    for r in res["model"]:
        print(f"model {r['pattern']:20s} W={r['W']} n={r['n']:8d}: fwd {r['fwd_s']:8.3f} s "
              f"(x{r['ratio_fwd']:.2f} of ideal), fwd+bwd {r['fwdbwd_s']:8.3f} s (x{r['ratio_fwdbwd']:.2f}), "
              f"{r['mib_sent_per_rank_fwd']:.0f} MiB sent per rank", flush=True)
    res["wall_s"] = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ring_gpu.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
