"""PyTorch's own context parallelism (`torch.distributed.tensor.experimental.context_parallel` with SDPA) on the GPUs
this machine has: exactness against single-device SDPA and forward / forward+backward times, for comparison with
this project's ring (benchmarks/ring_gpu.py).

    python benchmarks/context_parallel_probe.py --n 65536 --world 1 2 --out results/context_parallel_h200.json

Each world size runs in its own processes (torch.multiprocessing, one rank per process). With fewer GPUs than ranks,
ranks share GPU 0: NCCL refuses that ("duplicate GPU"), so those runs try gloo; whatever fails is recorded with its
error, not hidden. B = 1, H = 16, D = 128, bf16, causal; do_bench-style medians of CUDA-event timings.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _median_ms(fn, reps=10) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def _rank(rank, world, n, backend, init_file, out_file):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.experimental import context_parallel
    from torch.nn.attention import SDPBackend, sdpa_kernel

    row = {"world": world, "backend": backend, "n": n, "rank": rank}
    try:
        dev = rank % torch.cuda.device_count()
        torch.cuda.set_device(dev)
        dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
        mesh = init_device_mesh("cuda", (world,))
        B, H, D = 1, 16, 128
        g = torch.Generator(device="cuda").manual_seed(0)  # same inputs on every rank
        q, k, v, do = (torch.randn(B, H, n, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(4))
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        ref_local = ref.clone()

        def step(backward: bool):  # the buffers are sharded in place inside the context, restored after it
            with context_parallel(mesh, buffers=[q, k, v, ref_local], buffer_seq_dims=[2, 2, 2, 2]):
                ql, kl, vl = (x.detach().requires_grad_(backward) for x in (q, k, v))
                with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION]):
                    o = torch.nn.functional.scaled_dot_product_attention(ql, kl, vl, is_causal=True)
                if backward:
                    o.backward(torch.ones_like(o))
                return o.detach(), ref_local.clone()

        o, ref_shard = step(False)
        row["rel_err_vs_single_device"] = float((o.float() - ref_shard.float()).norm() / ref_shard.float().norm())
        row["fwd_ms"] = _median_ms(lambda: step(False))
        row["fwdbwd_ms"] = _median_ms(lambda: step(True))
        row["ok"] = True
    except Exception as e:  # noqa: BLE001 - the failure is the result on a machine that cannot run it
        row["ok"] = False
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        row["trace_tail"] = traceback.format_exc()[-800:]
    with open(f"{out_file}.{rank}", "w") as f:
        json.dump(row, f)
    if dist.is_initialized():
        dist.destroy_process_group()


def run(world: int, n: int, backend: str) -> list:
    tmp = tempfile.mkdtemp()
    init_file, out_file = os.path.join(tmp, "init"), os.path.join(tmp, "row")
    try:
        mp.start_processes(_rank, args=(world, n, backend, init_file, out_file), nprocs=world, join=True,
                           start_method="spawn")
    except Exception as e:  # noqa: BLE001
        return [{"world": world, "backend": backend, "n": n, "ok": False, "error": f"{type(e).__name__}: {e}"[:400]}]
    rows = []
    for r in range(world):
        path = f"{out_file}.{r}"
        rows.append(json.load(open(path)) if os.path.exists(path) else {"world": world, "rank": r, "ok": False,
                                                                         "error": "rank wrote nothing"})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=65536)
    ap.add_argument("--world", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="benchmarks/results/context_parallel.json")
    args = ap.parse_args(argv)
    rows, t0 = [], time.time()
    for world in args.world:
        backends = ["nccl"] if world <= torch.cuda.device_count() else ["nccl", "gloo"]
        for backend in backends:
            got = run(world, args.n, backend)
            rows += got
            for r in got:
                print({k: r.get(k) for k in ("world", "backend", "rank", "ok", "rel_err_vs_single_device", "fwd_ms",
                                             "fwdbwd_ms", "error")}, flush=True)
    meta = {"device": torch.cuda.get_device_name(), "gpus": torch.cuda.device_count(), "torch": torch.__version__,
            "python": platform.python_version(), "wall_s": time.time() - t0}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
