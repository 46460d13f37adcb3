"""Accuracy vs efficiency: tiny transformers trained with each sparse pattern, and hybrids with one dense layer.

    python benchmarks/accuracy_vs_efficiency.py              # the committed sweep (10–25 min on 2 shared cores)
    python benchmarks/accuracy_vs_efficiency.py --resume     # go on after an interruption (keeps measured rows)
    python benchmarks/accuracy_vs_efficiency.py --quick      # a smoke run (not committed)
    python benchmarks/accuracy_vs_efficiency.py --plot-only  # redraw the PNG (and the summary) from the JSON

Task: `NeedleRetrieval` (models/tasks.py): filler tokens, one value token `distance` before the last position,
the last position must name it (chance = 1/8). Every model is a 3-layer encoder (d_model 32, 2 heads) trained
for 250 steps (batch 32) with AdamW from the same seeds; accuracy is measured on 256 held-out examples. Cost axes:
attention FLOPs of one forward pass over one sequence (4·pairs·d_model per layer, `complexity.attention_flops`,
"gather" execution) and the median wall time of one training step on this CPU.
Writes results/accuracy_vs_efficiency.json (+ .png).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from saattn_edu import patterns as P
from saattn_edu.models import NeedleRetrieval, TinyTransformer, set_threads, train
from saattn_edu.patterns.learned import TopKBlocks

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "accuracy_vs_efficiency.json"
LONG_CONFIGS = ("dense", "sliding", "longformer", "bigbird", "hybrid_bottom")
D_MODEL, N_HEADS = 32, 2
WINDOW = 9  # non-causal: |i - j| <= 4, so 3 stacked layers reach 12 tokens
BLOCK = 8


def configs(n: int) -> dict:
    """Name -> per-layer patterns (3 layers), the same at every n (so the reach is the same: 12 tokens for windows)."""
    s = P.SlidingWindow(WINDOW)
    d = P.Dense()
    return {
        "dense": [d] * 3,
        "sliding": [s] * 3,
        "dilated": [P.DilatedWindow(WINDOW, 4)] * 3,
        "longformer": [P.Longformer(WINDOW, global_indices=(0,))] * 3,
        "bigbird": [P.BigBird(block=BLOCK, window_blocks=3, global_blocks=1, random_blocks=1, seed=0)] * 3,
        "strided": [P.Strided(BLOCK, causal=False)] * 3,
        "sinks": [P.AttentionSinks(4, WINDOW)] * 3,
        "topk_blocks": [TopKBlocks(block=BLOCK, k=2)] * 3,
        "hybrid_bottom": [d, s, s],
        "hybrid_middle": [s, d, s],
        "hybrid_top": [s, s, d],
    }


def receptive_field(layers) -> int | None:
    """Tokens reachable at the query through stacked sliding windows (None when some layer is not a window)."""
    if all(isinstance(p, P.SlidingWindow) for p in layers):
        return sum(p.window // 2 for p in layers)
    return None


def run_one(name, layers, n, distance, seed, steps, batch_size) -> dict:
    task = NeedleRetrieval(seq_len=n, distance=distance)
    model = TinyTransformer(task.vocab_size, n, layers=layers, d_model=D_MODEL, n_heads=N_HEADS)
    r = train(model, task, steps=steps, batch_size=batch_size, seed=seed, eval_every=max(1, steps // 4),
              progress=False)
    return {"config": name, "n": n, "distance": list(task.distance), "seed": seed, "steps": steps,
            "layers": [repr(p) for p in model.patterns], "receptive_field": receptive_field(model.patterns),
            "accuracy": r.final_accuracy, "accuracy_curve": r.accuracy, "eval_steps": r.steps,
            "final_loss": r.eval_loss[-1], "attention_flops": r.attention_flops,
            "dense_attention_flops": 4 * n * n * D_MODEL * len(layers), "flops_per_step": r.flops_per_step,
            "step_time_s": r.step_time, "train_time_s": r.wall_time}


def grid(quick: bool):
    """(n, distance label, distance) settings: near = inside the windows' reach, far = outside it."""
    if quick:
        return [(64, "far", (40, 60))]
    return [(64, "far", (32, 60)), (64, "near", (4, 12)), (128, "far", (64, 120))]  # most telling first


def sweep(args) -> dict:
    rows, start = [], time.perf_counter()
    plan = [(n, label, dist, name, layers, seed) for n, label, dist in grid(args.quick)
            for seed in range(args.seeds) for name, layers in configs(n).items()
            if seed == 0 or (n == 64 and label == "far")]  # extra seeds where the answer is not obvious
    plan = [p for p in plan if p[0] == 64 or p[3] in LONG_CONFIGS]  # the long sequences: fewer runs (time)
    plan.sort(key=lambda p: (p[5], p[0] == 64 and p[1] == "near"))  # seed 0 everywhere first, then the rest
    if args.resume and OUT.exists():  # keep the rows an interrupted sweep already measured
        rows = [r for r in json.loads(OUT.read_text())["rows"] if r["steps"] == args.steps]
        done = {(r["n"], r["distance_label"], r["config"], r["seed"]) for r in rows}
        plan = [p for p in plan if (p[0], p[1], p[3], p[5]) not in done]
    for k, (n, label, dist, name, layers, seed) in enumerate(plan, 1):
        row = run_one(name, layers, n, dist, seed, args.steps, args.batch_size)
        row["distance_label"] = label
        rows.append(row)
        print(f"[{len(rows)}/{len(rows) + len(plan) - k}] n={n} {label:4s} {name:14s} seed {seed}: "
              f"acc {row['accuracy']:.3f} "
              f"attn GFLOP {row['attention_flops'] / 1e9:.4f} step {row['step_time_s'] * 1e3:.0f} ms "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        if not args.quick:
            save({"rows": rows, "summary": summarize(rows)}, args, start, partial=True)
    return {"rows": rows, "wall_time_s": time.perf_counter() - start}


def save(result, args, start, partial=False):
    meta = {"task": "NeedleRetrieval (n_values=8: chance 0.125)",
            "model": f"3-layer encoder, d_model {D_MODEL}, {N_HEADS} heads",
            "steps": args.steps, "batch_size": args.batch_size, "seeds": args.seeds, "lr": 3e-3,
            "torch_threads": args.threads, "machine": platform.platform(), "python": platform.python_version(),
            "complete": not partial, "wall_time_s": time.perf_counter() - start}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, **result}, indent=1) + "\n")


def summarize(rows) -> list[dict]:
    """Mean ± spread over seeds per (n, distance label, config)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["n"], r["distance_label"], r["config"]), []).append(r)
    out = []
    for (n, label, name), rs in groups.items():
        acc = np.array([r["accuracy"] for r in rs])
        out.append({"n": n, "distance_label": label, "config": name, "accuracy_mean": float(acc.mean()),
                    "accuracy_min": float(acc.min()), "accuracy_max": float(acc.max()), "seeds": len(rs),
                    "attention_flops": float(np.mean([r["attention_flops"] for r in rs])),
                    "step_time_s": float(np.median([r["step_time_s"] for r in rs]))})
    return out


def pareto(points) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher), by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot(result, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(result["rows"])
    settings = sorted({(s["n"], s["distance_label"]) for s in summary}, key=lambda t: (t[0], t[1] != "near"))
    fig, axes = plt.subplots(2, len(settings), figsize=(4.6 * len(settings), 8), squeeze=False)
    names = sorted({s["config"] for s in summary})
    colors = {name: plt.cm.tab20(k / max(1, len(names) - 1)) for k, name in enumerate(names)}
    for col, (n, label) in enumerate(settings):
        rows = [s for s in summary if s["n"] == n and s["distance_label"] == label]
        for row_ax, key, xlabel in ((0, "attention_flops", "attention FLOPs / sequence"),
                                    (1, "step_time_s", "training step (s, this CPU)")):
            ax = axes[row_ax, col]
            pts = [(s[key], s["accuracy_mean"]) for s in rows]
            for s, (x, y) in zip(rows, pts):
                ax.errorbar(x, y, yerr=[[y - s["accuracy_min"]], [s["accuracy_max"] - y]], fmt="o",
                            color=colors[s["config"]], label=s["config"], capsize=2)
            front = pareto(pts)
            ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, label="Pareto front")
            ax.axhline(1 / 8, color="grey", lw=0.8, ls=":")
            ax.set(xscale="log", xlabel=xlabel, ylabel="accuracy", ylim=(0, 1.05),
                   title=f"n={n}, {label} needle")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in the results file")
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args(argv)
    if args.plot_only:  # also completes the summary of an interrupted sweep's partial file
        result = json.loads(OUT.read_text())
        result["summary"] = summarize(result["rows"])
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        plot(result, OUT.with_suffix(".png"))
        return
    args.threads = set_threads(args.threads)
    if args.quick:
        args.steps, args.seeds = min(args.steps, 30), 1
    start = time.perf_counter()
    result = sweep(args)
    result["summary"] = summarize(result["rows"])
    if args.quick:
        print(json.dumps(result["summary"], indent=1))
        return
    save(result, args, start)
    plot(result, OUT.with_suffix(".png"))
    print(f"wrote {OUT} and {OUT.with_suffix('.png')} in {result['wall_time_s']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
