"""Start local ranks with torch.multiprocessing (gloo on 127.0.0.1), or join a torchrun job; `saattn ring`.

    python -m saattn_edu.distributed.launch --world-size 4 --n 65536 --causal
    torchrun --nproc-per-node=8 -m saattn_edu.distributed.launch --n 1048576 --backend nccl

`spawn(fn, world_size, args)` runs `fn(rank, world_size, *args)` in `world_size` fresh processes with the process
group initialised, and returns every rank's result. A rank that raises or dies makes `spawn` stop the others and
raise RuntimeError with that rank's traceback; nothing waits forever (process-group and join timeouts).
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import queue as queue_mod
import socket
import sys
import threading
import time
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .options import DESCRIPTION, add_arguments, build_parser, parse_pattern  # noqa: F401  (launch.add_arguments)
from .ring import resolve_pattern, ring_attention, shard
from .schedule import check_split, shard_positions

DEFAULT_TIMEOUT_S = 60.0  # collective / p2p timeout inside the process group


def free_port() -> int:
    """A TCP port nobody listens on now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_process_group(rank, world_size, port, backend="gloo", timeout_s=DEFAULT_TIMEOUT_S):
    """Join the group on 127.0.0.1:port, one thread per rank on CPU (ranks share the cores)."""
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # containers: gloo would pick an unreachable interface
    torch.set_num_threads(1)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))


def _worker(rank, world_size, port, backend, timeout_s, fn, args, queue):
    """Body of one spawned rank: run fn, report ("ok", result) or ("error", traceback) to the parent."""
    try:
        init_process_group(rank, world_size, port, backend, timeout_s)
        result = fn(rank, world_size, *args)
        queue.put((rank, "ok", result))
    except BaseException:  # report everything, KeyboardInterrupt included: the parent must not wait for us
        queue.put((rank, "error", traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def spawn(fn, world_size, args=(), backend="gloo", timeout_s=DEFAULT_TIMEOUT_S, join_timeout_s=None):
    """Run fn(rank, world_size, *args) on `world_size` local processes; list of results by rank.

    fn must be importable (defined at module level). Raises RuntimeError naming the failed rank on an exception,
    a crash or a timeout (join_timeout_s, default 2 × timeout_s + 30), after stopping the remaining ranks.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    ctx = _context(mp)
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, backend, timeout_s, fn, args, q), daemon=True)
             for r in range(world_size)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + (2 * timeout_s + 30 if join_timeout_s is None else join_timeout_s)
    results = {}
    try:
        while len(results) < world_size:
            try:
                rank, status, payload = q.get(timeout=0.2)
            except queue_mod.Empty:
                _check_alive(procs, results, deadline)
                continue
            if status == "error":
                raise RuntimeError(f"rank {rank} of {world_size} failed:\n{payload}")
            results[rank] = payload
    finally:  # all reported: let them exit cleanly; a failure: stop the others now (they may wait on the dead one)
        _stop(procs, grace_s=5.0 if len(results) == world_size else 0.5)
    return [results[r] for r in range(world_size)]


def _context(mp):
    """forkserver where it exists: one server imports torch once and forks every rank from it (a rank starts in
    ~0.1 s instead of a fresh torch import); plain fork is unsafe once torch has started threads, spawn is slow."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return mp.get_context("spawn")  # Windows
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed", "saattn_edu.distributed.ring"])
    return ctx


def _check_alive(procs, results, deadline):
    """Raise if a rank died without reporting, or the job ran past its deadline."""
    for rank, p in enumerate(procs):
        if rank not in results and p.exitcode is not None:
            raise RuntimeError(f"rank {rank} exited with code {p.exitcode} before reporting a result")
    if time.monotonic() > deadline:
        missing = [r for r in range(len(procs)) if r not in results]
        raise RuntimeError(f"ranks {missing} did not finish before the join timeout")


def _stop(procs, grace_s=5.0):
    """Join the ranks; terminate (then kill) any still running."""
    end = time.monotonic() + grace_s
    for p in procs:
        p.join(timeout=max(0.0, end - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=2.0)
        if p.is_alive():
            p.kill()
            p.join()


# ----------------------------------------------------------------------------------------------------------------
# `saattn ring`: one demo run, compared with dense attention on sampled rows
# ----------------------------------------------------------------------------------------------------------------
def run_rank(rank, world_size, opts):
    """One rank of the demo: the same random inputs everywhere, the ring timed (and its peak memory), rows checked."""
    device = torch.device(f"cuda:{rank % max(1, torch.cuda.device_count())}") if opts["backend"] == "nccl" else None
    if device is not None:
        torch.cuda.set_device(device)
    gen = torch.Generator().manual_seed(0)
    shape = (1, opts["heads"], opts["n"], opts["d"])
    q, k, v = (torch.randn(shape, generator=gen).to(device or "cpu") for _ in range(3))
    pattern = parse_pattern(opts["pattern"])
    local = [shard(t, world_size, rank, opts["layout"]).requires_grad_(opts["backward"]) for t in (q, k, v)]
    stats, times = {}, {}
    with PeakMemory(device) as mem:
        dist.barrier()
        with _timer(times, "seconds", device):
            out = ring_attention(*local, pattern, causal=opts["causal"], layout=opts["layout"], stats=stats)
        if opts["backward"]:
            with _timer(times, "backward_seconds", device):
                out.backward(torch.ones_like(out))
    err = _check_rows(q, k, v, out.detach(), rank, world_size, opts, pattern)
    return {"rank": rank, **times, "peak_mib": mem.peak_bytes / 2**20, "max_abs_err": err, **stats}


class _timer:
    """Wall time of the block into out[key] (CUDA synchronised)."""

    def __init__(self, out, key, device):
        self.out, self.key, self.device = out, key, device

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        if self.device is not None:
            torch.cuda.synchronize()
        self.out[self.key] = time.perf_counter() - self.t0


class PeakMemory:
    """Peak memory a block adds: CUDA max_memory_allocated, or on CPU the process RSS sampled every 2 ms."""

    def __init__(self, device=None):
        self.device, self.peak_bytes = device, 0

    def __enter__(self):
        if self.device is not None:
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        self.base, self.top, self.stop = _rss(), _rss(), threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.002):
            self.top = max(self.top, _rss())

    def __exit__(self, *exc):
        if self.device is not None:
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.base
            return
        self.stop.set()
        self.thread.join()
        self.peak_bytes = max(self.top, _rss()) - self.base


def _rss() -> int:
    """Resident set size in bytes (Linux /proc; elsewhere the lifetime peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _check_rows(q, k, v, out, rank, world_size, opts, pattern):
    """Max |error| of a few of this rank's rows against plain dense attention over the full keys."""
    pos = shard_positions(opts["n"], world_size, rank, opts["layout"])
    pick = torch.linspace(0, len(pos) - 1, min(opts["check_rows"], len(pos))).long()
    rows = torch.as_tensor(pos)[pick].to(q.device)
    s = (q[..., rows, :] @ k.transpose(-1, -2)) * opts["d"] ** -0.5  # (1, H, rows, n)
    keys = torch.arange(opts["n"], device=q.device)
    allowed = resolve_pattern(pattern, opts["causal"]).allowed(rows[:, None], keys[None, :], opts["n"])
    ref = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1) @ v
    return float((ref - out[..., pick, :]).abs().max())


def report(results, opts, world_size):
    """Print one summary line per rank and the totals."""
    worst = max(r["seconds"] + r.get("backward_seconds", 0.0) for r in results)
    print(f"ring attention: world_size={world_size} n={opts['n']} d={opts['d']} heads={opts['heads']} "
          f"causal={opts['causal']} layout={opts['layout']} pattern={opts['pattern']} backend={opts['backend']}")
    for r in results:
        bwd = f" + backward {r['backward_seconds']:.3f} s" if "backward_seconds" in r else ""
        print(f"  rank {r['rank']}: {r['seconds']:.3f} s{bwd}, peak +{r['peak_mib']:.0f} MiB, "
              f"blocks computed {r.get('blocks_computed', 0)}, skipped {r.get('blocks_skipped', 0)}, "
              f"messages {r.get('messages', 0)}, "
              f"sent {r.get('bytes_sent', 0) / 2**20:.1f} MiB, max |err| vs dense {r['max_abs_err']:.2e}")
    hops = results[0]["hops"]
    print(f"  hops per rank: {hops} (dense ring: {results[0]['dense_hops']}); "
          f"{opts['n'] / worst:,.0f} tokens/s")
    return max(r["max_abs_err"] for r in results)


def main(argv=None) -> int:
    """Entry point of `saattn ring` and `python -m saattn_edu.distributed.launch`; 0 on success."""
    return run_parsed(build_parser().parse_args(argv))


def run_parsed(args) -> int:
    """Run `saattn ring` from parsed options."""
    parse_pattern(args.pattern)  # fail early, in the parent
    layout = args.layout or ("zigzag" if args.causal else "contiguous")
    opts = {k: getattr(args, k) for k in ("n", "d", "heads", "causal", "pattern", "backend", "backward", "check_rows")}
    opts["layout"] = layout
    if "WORLD_SIZE" not in os.environ:
        check_split(args.n, args.world_size, layout)  # an uneven split fails here, not in every rank
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # under torchrun: this process is one rank
        return _main_torchrun(opts, args)
    results = spawn(run_rank, args.world_size, (opts,), backend=args.backend, timeout_s=args.timeout)
    err = report(results, opts, args.world_size)
    return 0 if err < 1e-3 else 1


def _main_torchrun(opts, args) -> int:
    dist.init_process_group(args.backend, timeout=datetime.timedelta(seconds=args.timeout))
    rank, world_size = dist.get_rank(), dist.get_world_size()
    result = run_rank(rank, world_size, opts)
    gathered = [None] * world_size
    dist.all_gather_object(gathered, result)
    err = report(gathered, opts, world_size) if rank == 0 else 0.0
    dist.destroy_process_group()
    return 0 if err < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
