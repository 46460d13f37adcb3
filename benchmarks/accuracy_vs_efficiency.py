"""Accuracy vs efficiency where sparsity pays: long-context tasks, every pattern, hybrids with dense layers.

    python benchmarks/accuracy_vs_efficiency.py --profile cpu                      # the committed CPU run (512, 1k)
    python benchmarks/accuracy_vs_efficiency.py --profile gpu --lengths 4096 --tasks needle mqar --max-minutes 8
    python benchmarks/accuracy_vs_efficiency.py --plan-only --profile gpu          # the plan and its time estimate
    python benchmarks/accuracy_vs_efficiency.py --plot-only                        # figures from every results JSON
    python benchmarks/accuracy_vs_efficiency.py --table                            # NOTES.md's tables, from the JSON

Tasks (saattn_edu/models): needle retrieval (one value token, 1 of 8, n/2 .. n-2 tokens before the query, in a
haystack of one repeated filler token, as passkey retrieval),
MQAR (8 key-value pairs first, 8 queries in the second half, 64 values), selective copying (8 tokens scattered over
the whole sequence, copied in order at the end, 8 symbols) and LRA's ListOps (a fixed pool of expressions drawn by
LRA's rules, 10 classes). Models: encoders of `layers` pre-LN blocks; every pattern keeps its size fixed in tokens
(window 128 or 256, blocks of 64) so a longer sequence means a sparser layer. Sparse layers run on the project's
Triton kernel on a GPU (`backend="triton"`, bf16 autocast) and dense layers on SDPA's fused kernels; on CPU sparse
layers run `--cpu-backend` (masked SDPA by default: the dense price; "gather" is O(pairs)). TopKBlocks (a learned
selection) runs masked SDPA with one mask per batch and head everywhere: it is skipped at n > 4096 (its mask).

Each run is one JSON row, written as soon as it finishes (a killed run keeps what it finished; run the same command
again to go on, or `--fresh`). Results: `$OUT/` when $OUT is set, else benchmarks/results/, as
accuracy_long_<profile>_<lengths>_<tasks>.json; `--plot-only` draws accuracy_long_<profile>.png (against step time) and
accuracy_long_<profile>_flops.png (against attention FLOPs) from all of them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from saattn_edu import patterns as P
from saattn_edu.complexity import attention_flops
from saattn_edu.models import (MQAR, ListOps, NeedleRetrieval, Pooled, SelectiveCopy, TinyTransformer, set_threads,
                               train)
from saattn_edu.patterns.learned import TopKBlocks

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("needle", "mqar", "copy", "listops")
CONFIGS = ("dense", "sliding", "longformer", "bigbird", "strided", "sinks", "topk_blocks",
           "hybrid_bottom", "hybrid_middle", "hybrid_top", "hybrid_every4")
PROFILES = {  # model and budget per machine; a GPU call is sized for ~8 minutes of one H200 (see --plan-only)
    "gpu": {"lengths": (1024, 4096, 16384), "layers": 8, "d_model": 128, "n_heads": 4, "batch_size": 8,
            "steps": 250, "seeds": 2, "window": 256, "block": 64, "eval_examples": 256, "lr": 2e-3},
    "cpu": {"lengths": (512,), "layers": 3, "d_model": 32, "n_heads": 2, "batch_size": 8,
            "steps": 300, "seeds": 1, "window": 64, "block": 32, "eval_examples": 128, "lr": 3e-3},
}
CHANCE = {"needle": 1 / 8, "mqar": 1 / 64, "copy": 1 / 8, "listops": 0.1}


def make_task(name: str, n: int, pool: int, seed: int = 0):
    """The task at length n (distances scale with n); ListOps is a fixed pool (LRA: a data set of 96k)."""
    if name == "needle":
        return NeedleRetrieval(n, distance=(n // 2, n - 2), n_values=8, n_filler=1)  # passkey-style haystack
    if name == "mqar":
        return MQAR(n, n_pairs=8, n_queries=8, n_keys=64, n_values=64)
    if name == "copy":
        return SelectiveCopy(n, distance=n - 8, n_data=8, n_tokens=8)
    if name == "listops":
        return Pooled(ListOps(n), size=pool, seed=seed)
    raise ValueError(f"task must be one of {TASKS}, got {name!r}")


def configs(n: int, layers: int, window: int, block: int) -> dict:
    """Name -> per-layer patterns. Hybrids: a quarter of the layers dense, at the bottom / middle / top, or
    one dense layer in every four (layers 0, 4, ...); the other layers slide."""
    s, d, q = P.SlidingWindow(window), P.Dense(), max(1, layers // 4)
    stride = 2 ** round(math.log2(math.sqrt(n)))  # Sparse Transformer: stride about sqrt(n)
    mid = (layers - q) // 2
    out = {
        "dense": [d] * layers,
        "sliding": [s] * layers,
        "longformer": [P.Longformer(window, global_indices=(0, n - 1))] * layers,  # first token + the query slot
        "bigbird": [P.BigBird(block=block, window_blocks=3, global_blocks=1, random_blocks=2, seed=0)] * layers,
        "strided": [P.Strided(stride, causal=False)] * layers,
        "sinks": [P.AttentionSinks(4, window)] * layers,
        "topk_blocks": [TopKBlocks(block=block, k=max(2, window // block))] * layers,
        "hybrid_bottom": [d] * q + [s] * (layers - q),
        "hybrid_middle": [s] * mid + [d] * q + [s] * (layers - q - mid),
        "hybrid_top": [s] * (layers - q) + [d] * q,
        "hybrid_every4": [d if i % 4 == 0 else s for i in range(layers)],
    }
    if layers < 8:  # with 4 layers or fewer "one in four" is hybrid_bottom
        out.pop("hybrid_every4")
    return out


def tile_flops(model, n: int, block: int) -> int:
    """Attention FLOPs a block-sparse kernel computes: every active (block × block) tile in full."""
    total = 0
    for b in model.blocks:
        p = b.attn.effective
        total += attention_flops(p, n, model.d_model, "block_sparse", block) if isinstance(p, P.Pattern) else 0
    return total


class RssPeak:
    """Peak resident memory above the level at entry, sampled every 10 ms (CPU runs: torch has no CPU counter)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            return 0

    @property
    def bytes(self) -> int:
        return self.peak - self.base


def run_one(prof, task_name, n, name, layers, seed, tasks, device, cpu_backend) -> dict:
    train_task, eval_task = tasks
    backend = "triton" if device.type == "cuda" else cpu_backend
    torch.manual_seed(seed)
    model = TinyTransformer(train_task.vocab_size, n, layers=layers, d_model=prof["d_model"],
                            n_heads=prof["n_heads"], backend=backend)
    for blk in model.blocks:  # dense layers: SDPA's fused kernels (the layer's "auto" path), sparse: `backend`
        if isinstance(blk.attn.effective, P.Dense):
            blk.attn.backend = "auto"
    model.to(device)
    with RssPeak() as rss:
        r = train(model, train_task, steps=prof["steps"], batch_size=prof["batch_size"], lr=prof["lr"], seed=seed,
                  eval_every=max(1, prof["steps"] // 2), eval_examples=prof["eval_examples"], progress=False,
                  eval_task=eval_task, eval_batch_size=prof["batch_size"])
    L, d = len(layers), prof["d_model"]
    return {"task": task_name, "n": n, "config": name, "seed": seed, "steps": prof["steps"],
            "layers": [repr(p) for p in model.patterns], "backend": backend, "device": str(device),
            "accuracy": r.final_accuracy, "accuracy_curve": r.accuracy, "eval_steps": r.steps,
            "final_loss": r.eval_loss[-1], "attention_flops": r.attention_flops,
            "attention_flops_tiles": tile_flops(model, n, prof["block"]) or r.attention_flops,
            "dense_attention_flops": 4 * n * n * d * L, "flops_per_step": r.flops_per_step,
            "step_time_s": r.step_time, "train_time_s": r.wall_time,
            "peak_memory_bytes": r.peak_memory_bytes if r.peak_memory_bytes is not None else rss.bytes,
            "peak_memory_kind": "cuda max_memory_allocated" if r.peak_memory_bytes is not None else "cpu rss rise"}


def estimate_s(prof, config_layers, n, device_kind) -> float:
    """A rough time for one run (training + evaluation + setup), from the layers' pairs; printed with the plan."""
    dense = sum(isinstance(p, P.Dense) or isinstance(p, TopKBlocks) for p in config_layers)
    sparse = len(config_layers) - dense
    B, d = prof["batch_size"], prof["d_model"]
    if device_kind == "cuda":  # H200, bf16, head dim 32: ~100 TF/s on attention, ~2 ms per sparse layer-step floor
        dense_s = 3.5 * 4 * n * n * d * B / 1.0e14
        step = 0.004 + dense * dense_s + sparse * max(0.0008, 3.5 * 4 * n * 2 * prof["window"] * d * B / 5e13)
        setup = 4.0
    else:  # 2 cores shared by 8 jobs (load ~12): measured ~0.13 s per layer-step at n = 512, d_model 32, batch 8
        step = len(config_layers) * 0.13 * (n / 512) ** 1.6 * B / 8 * d / 32
        setup = 10.0
    evals = 2 * prof["eval_examples"] / B * step / 3
    return prof["steps"] * step + evals + setup


def plan(args, prof) -> list[tuple]:
    rows = []
    for seed in range(args.seeds):  # every setting at seed 0 first: a cut-short call still covers the grid
        for n in args.lengths:
            table = configs(n, prof["layers"], prof["window"], prof["block"])
            for name in (p for p in args.patterns if p in table):  # in the order asked for
                for task in args.tasks:  # each pattern on every task before the next pattern
                    if not (name == "topk_blocks" and n > 4096):
                        rows.append((task, n, name, table[name], seed))
    return rows


def out_path(args) -> Path:
    if args.out:
        return Path(args.out)
    base = Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS
    tag = "-".join(str(n) for n in args.lengths) + "_" + "-".join(args.tasks)
    return base / f"accuracy_long_{args.profile}_{tag}.json"


def sweep(args):
    prof = {**PROFILES[args.profile], **{k: v for k, v in vars(args).items() if k in ("steps",) and v}}
    device = torch.device("cuda" if args.profile == "gpu" and torch.cuda.is_available() else "cpu")
    todo = plan(args, prof)
    kind = "cuda" if args.profile == "gpu" else "cpu"  # the estimate is for the machine the profile is sized for
    est = [estimate_s(prof, t[3], t[1], kind) for t in todo]
    print(f"plan: {len(todo)} runs ({args.profile}: {prof['layers']} layers, d_model {prof['d_model']}, "
          f"{prof['steps']} steps, batch {prof['batch_size']}) on {device}; estimate {sum(est) / 60:.1f} min "
          f"({'one H200' if kind == 'cuda' else '2 shared CPU cores'})"
          + (f", capped at {args.max_minutes} min" if args.max_minutes else ""), flush=True)
    if args.plan_only:
        for t, e in zip(todo, est):
            print(f"  {t[0]:8s} n={t[1]:<6d} {t[2]:14s} seed {t[4]}  ~{e:.0f} s")
        return
    path = out_path(args)
    old = json.loads(path.read_text()) if path.exists() and not args.fresh else {"meta": {}, "rows": []}
    done = [r for r in old["rows"] if r["steps"] == prof["steps"]]
    keys = {(r["task"], r["n"], r["config"], r["seed"]) for r in done}
    todo = [t for t in todo if (t[0], t[1], t[2], t[4]) not in keys]
    meta = {"profile": args.profile, **prof, "lengths": list(args.lengths), "tasks": list(args.tasks),
            "chance": CHANCE, "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
            or platform.machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_backend": args.cpu_backend, "machine": platform.platform(),
            "wall_time_s_before": old["meta"].get("wall_time_s", 0.0) if done else 0.0}
    start, data, rows = time.perf_counter(), {}, list(done)
    bar = tqdm(todo, desc="accuracy sweep", unit="run")
    for task, n, name, layers, seed in bar:
        elapsed = time.perf_counter() - start
        if args.max_minutes and elapsed + estimate_s(prof, layers, n, device.type) > 60 * args.max_minutes:
            print(f"stopping at {elapsed / 60:.1f} min (--max-minutes {args.max_minutes}): run again to go on")
            break
        if (task, n) not in data:
            pool = prof["steps"] * prof["batch_size"] // 2  # ListOps: each example seen about twice
            data[task, n] = (make_task(task, n, pool, seed=1), make_task(task, n, prof["eval_examples"], seed=2))
        bar.set_postfix_str(f"{task} n={n} {name} seed {seed}")
        row = run_one(prof, task, n, name, layers, seed, data[task, n], device, args.cpu_backend)
        rows.append(row)
        tqdm.write(f"{task:8s} n={n:<6d} {name:14s} seed {seed}: acc {row['accuracy']:.3f}  "
                   f"step {row['step_time_s'] * 1e3:6.1f} ms  attn {row['attention_flops'] / 1e9:8.3f} GFLOP  "
                   f"peak {row['peak_memory_bytes'] / 2**20:7.0f} MiB")
        meta["wall_time_s"] = meta.get("wall_time_s_before", 0) + time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": meta, "rows": rows, "summary": summarize(rows)}, indent=1) + "\n")
    print(f"{len(rows)} rows in {path} ({(time.perf_counter() - start) / 60:.1f} min this call)")


def summarize(rows) -> list[dict]:
    """Mean, min and max of accuracy over seeds per (task, n, config); medians of the cost columns."""
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], r["n"], r["config"]), []).append(r)
    out = []
    for (task, n, name), rs in sorted(groups.items()):
        acc = np.array([r["accuracy"] for r in rs])
        out.append({"task": task, "n": n, "config": name, "seeds": len(rs), "accuracy_mean": float(acc.mean()),
                    "accuracy_min": float(acc.min()), "accuracy_max": float(acc.max()),
                    "accuracy_std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                    **{k: float(np.median([r[k] for r in rs])) for k in
                       ("attention_flops", "attention_flops_tiles", "dense_attention_flops", "step_time_s",
                        "peak_memory_bytes")}})
    return out


def load_all(profile: str, folder: Path = RESULTS) -> dict:
    """Every results file of one profile merged: {"meta": [...], "rows": [...], "summary": [...]}."""
    metas, rows = [], {}
    for f in sorted(folder.glob(f"accuracy_long_{profile}_*.json")):
        d = json.loads(f.read_text())
        metas.append({**d["meta"], "file": f.name})
        for r in d["rows"]:
            rows[r["task"], r["n"], r["config"], r["seed"]] = r
    rows = list(rows.values())
    return {"meta": metas, "rows": rows, "summary": summarize(rows)}


LRA_LISTOPS = {"Transformer": (36.37, "dense"), "Sparse Transformer": (17.07, "strided"),
               "Longformer": (35.63, "longformer"), "BigBird": (36.05, "bigbird"), "Reformer": (37.27, None)}


def markdown(result, profile: str) -> str:
    """The tables NOTES.md carries: accuracy and costs per (task, n, config), and the ListOps column beside LRA's."""
    lines = ["| task | n | pattern | accuracy mean (min–max, seeds) | step ms | attention FLOPs (of dense) | "
             "peak MiB |", "|---|---|---|---|---|---|---|"]
    for s in sorted(result["summary"], key=lambda s: (s["task"], s["n"], s["attention_flops"])):
        lines.append(f"| {s['task']} | {s['n']} | {s['config']} | {s['accuracy_mean']:.2f} "
                     f"({s['accuracy_min']:.2f}–{s['accuracy_max']:.2f}, {s['seeds']}) | "
                     f"{s['step_time_s'] * 1e3:.0f} | "
                     f"{s['attention_flops'] / 1e9:.3g} G ({s['attention_flops'] / s['dense_attention_flops']:.0%}) | "
                     f"{s['peak_memory_bytes'] / 2**20:.0f} |")
    ours = {(s["config"], s["n"]): s for s in result["summary"] if s["task"] == "listops"}
    lengths = sorted({n for _, n in ours})
    lines += ["", "| model (LRA Table 1) | LRA ListOps % | " + " | ".join(f"ours, {profile}, n={n}" for n in lengths)
              + " |", "|---|---|" + "---|" * len(lengths)]
    for model, (lra, config) in LRA_LISTOPS.items():
        cells = [f"{100 * ours[config, n]['accuracy_mean']:.1f} ({config})" if (config, n) in ours else "—"
                 for n in lengths]
        lines.append(f"| {model} | {lra:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto(points) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher), by cost."""
    front, best = [], -np.inf
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot(result, path: Path, cost: str = "step_time_s"):
    """One panel per (task, n): accuracy (mean, min–max over seeds) against `cost`, Pareto front dashed."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = result["summary"]
    tasks = [t for t in TASKS if any(s["task"] == t for s in summary)]
    lengths = sorted({s["n"] for s in summary})
    fig, axes = plt.subplots(len(tasks), len(lengths), figsize=(max(7.5, 3.8 * len(lengths)), 3.0 * len(tasks)),
                             squeeze=False)
    colors = {c: plt.cm.tab20(k / (len(CONFIGS) - 1)) for k, c in enumerate(CONFIGS)}
    for i, task in enumerate(tasks):
        for j, n in enumerate(lengths):
            ax, rows = axes[i, j], [s for s in summary if s["task"] == task and s["n"] == n]
            if not rows:  # a (task, n) not run: say so (a log axis with no data cannot be drawn)
                ax.text(0.5, 0.5, f"{task}, n={n}: not run", ha="center", va="center", color="grey",
                        transform=ax.transAxes)
                ax.axis("off")
                continue
            pts = [(s[cost], s["accuracy_mean"]) for s in rows]
            for s, (x, y) in zip(rows, pts):
                ax.errorbar(x, y, yerr=[[y - s["accuracy_min"]], [s["accuracy_max"] - y]], fmt="o", capsize=2,
                            color=colors[s["config"]], label=s["config"])
            front = pareto(pts)
            ax.plot([pts[k][0] for k in front], [pts[k][1] for k in front], "k--", lw=1)
            ax.axhline(CHANCE[task], color="grey", ls=":", lw=0.8)
            ax.set(xscale="log", ylim=(0, 1.05), title=f"{task}, n={n}")
            # ticks at 1, 2, 5 × 10^k, labelled: a panel's costs often span less than a decade
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
                lambda v, _: f"{v:g}" if cost == "step_time_s" else f"{v / 1e9:g} G"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.tick_params(axis="x", labelsize=7)
            ax.set_xlabel({"step_time_s": "training step (s)", "attention_flops": "attention FLOPs / sequence"}
                          .get(cost, cost.replace("_", " ")), fontsize=8)
    handles = {lab: h for ax in axes.flat for h, lab in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.12 if len(tasks) < 3 else 0.07, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--lengths", nargs="+", type=int, default=None, help="default: the profile's")
    ap.add_argument("--patterns", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    ap.add_argument("--seeds", type=int, default=None, help="default: the profile's (seeds 0 .. seeds-1)")
    ap.add_argument("--steps", type=int, default=None, help="default: the profile's")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no run that would end after this")
    ap.add_argument("--out", default=None, help="results JSON (default: see the module docstring)")
    ap.add_argument("--fresh", action="store_true", help="ignore rows already in the results file")
    ap.add_argument("--cpu-backend", choices=("torch", "gather"), default="torch")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--plan-only", action="store_true")
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("--table", action="store_true", help="print NOTES.md's markdown tables from the results")
    args = ap.parse_args(argv)
    if args.table:
        for profile in PROFILES:
            result = load_all(profile)
            if result["rows"]:
                wall = sum(m.get("wall_time_s", 0.0) for m in result["meta"])
                print(f"### {profile}: {len(result['rows'])} runs, {wall / 60:.0f} min of training\n")
                print(markdown(result, profile) + "\n")
        return
    if args.plot_only:
        for profile in PROFILES:
            result = load_all(profile)
            if result["rows"]:
                for cost, suffix in (("step_time_s", ""), ("attention_flops", "_flops")):
                    path = RESULTS / f"accuracy_long_{profile}{suffix}.png"
                    plot(result, path, cost)
                    print(f"wrote {path} from {len(result['rows'])} rows")
        return
    args.lengths = args.lengths or list(PROFILES[args.profile]["lengths"])
    args.seeds = args.seeds or PROFILES[args.profile]["seeds"]
    set_threads(args.threads)
    sweep(args)


if __name__ == "__main__":
    main()
