"""What quantizing the KV cache adds to what a window saves: bytes, decode speed and accuracy, on CPU.

    .venv/bin/python benchmarks/kv_quantization.py              # ~2 min on 2 cores; table + JSON + figure
    .venv/bin/python benchmarks/kv_quantization.py --steps 100  # quicker, less trained model

1. Memory: GiB of KV cache for Mistral 7B's shape at 32k and 128k tokens, per cache kind and storage format.
2. Speed: one-token decode steps per second of the tiny decoder on this CPU, per format.
3. Accuracy: a tiny decoder trained on the course corpus (character level) reads a held-out text through a
   window + sinks cache; perplexity and the logit error against the fp32 cache, step by step, per format.
4. Where the error sits: key quantization error of sink tokens vs window tokens, and per channel.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from saattn_edu import inference as I
from saattn_edu import patterns as P
from saattn_edu.models.tasks import CharLM

FORMATS = {"fp32": None, "bf16": "bf16", "int8": "int8", "int8-g4": "int8-g4", "fp8": "fp8"}
WINDOW, SINKS = 64, 4


def memory_rows(contexts=(32768, 131072)) -> list[dict]:
    shape, rows = I.MODEL_SHAPES["mistral-7b"], []
    for context in contexts:
        for name, quant in (("bf16", None), ("int8", "int8"), ("int8-g32", "int8-g32"), ("fp8", "fp8")):
            row = {"context": context, "format": name}
            for kind in ("full", "rolling", "sinks"):
                tokens = I.cached_tokens(kind, context, shape.window, num_sinks=4)
                row[kind + "_GiB"] = shape.kv_bytes(tokens, "bf16", quant=quant) / 2**30
            row["bytes_per_token"] = shape.bytes_per_token("bf16", quant=quant)
            rows.append(row)
    return rows


def make_caches(model, kind, fmt, **kwargs):
    return model.make_caches(kind, quant=FORMATS[fmt], **kwargs)


def train_decoder(steps: int, seq_len: int = 128, batch: int = 32, seed: int = 0):
    """A TinyDecoder trained for next-character prediction on the course corpus (causal, full attention)."""
    task = CharLM(seq_len=seq_len)
    cfg = I.DecoderConfig(vocab_size=task.vocab_size, n_layer=2, n_head=4, n_kv_head=2, head_dim=16)
    model = I.tiny_decoder(cfg, seed=seed).train()
    opt, rng = torch.optim.AdamW(model.parameters(), lr=3e-3), np.random.default_rng(seed)
    for _ in range(steps):
        x, y = (torch.as_tensor(a) for a in task.sample(batch, rng))
        loss = torch.nn.functional.cross_entropy(model(x, pattern=P.Causal()).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), loss.item()


def stream_logits(model, tokens, kind, fmt, chunk=16):
    caches = make_caches(model, kind, fmt, window=WINDOW, num_sinks=SINKS)
    return I.prefill(model, tokens, caches, chunk=chunk).float(), caches


def accuracy_rows(model, n_eval: int) -> tuple[list[dict], dict]:
    ids = CharLM(seq_len=128, split="eval").ids[: n_eval + 1]
    tokens, targets = torch.as_tensor(ids[None, :-1]), torch.as_tensor(ids[1:])
    ref, _ = stream_logits(model, tokens, "sinks", "fp32")
    rows, curves = [], {}
    for fmt in FORMATS:
        logits, _ = stream_logits(model, tokens, "sinks", fmt)
        nll = torch.nn.functional.cross_entropy(logits[0], targets).item()
        err = (logits[0] - ref[0]).abs().amax(-1)  # (n,) largest logit error at each step
        agree = (logits[0].argmax(-1) == ref[0].argmax(-1)).float().mean().item()
        curves[fmt] = err.tolist()
        rows.append({"format": fmt, "perplexity": float(np.exp(nll)), "max_logit_err": err.max().item(),
                     "mean_logit_err": err.mean().item(), "top1_agreement": agree})
    return rows, curves


def error_location(model, n_eval: int) -> dict:
    """Relative key-quantization error of the layer-0 cache: sink slots vs window slots, and per channel."""
    ids = CharLM(seq_len=128, split="eval").ids[:n_eval]
    _, caches = stream_logits(model, torch.as_tensor(ids[None]), "sinks", "fp32")
    keys, _, pos = caches[0].read()  # (1, Hkv, m, d) exact keys held at the end of the stream
    out = {"key_absmax_per_channel": keys.abs().amax(dim=(0, 1, 2)).tolist()}
    for fmt in ("int8", "int8-g4", "fp8"):
        err = (I.quantize_roundtrip(keys, FORMATS[fmt]) - keys).abs()  # (1, Hkv, m, d)
        rel = err.norm(dim=-1) / keys.norm(dim=-1)  # (1, Hkv, m) per cached token
        out[fmt] = {"sinks_rel_err": rel[..., pos < SINKS].mean().item(),
                    "window_rel_err": rel[..., pos >= SINKS].mean().item(),
                    "err_per_channel": err.mean(dim=(0, 1, 2)).tolist()}
    return out


def speed_rows(model, context=2048, steps=32) -> list[dict]:
    rows = []
    for fmt in FORMATS:
        for kind, extra in (("full", {"max_tokens": context + steps}), ("sinks", {"window": 256, "num_sinks": 4})):
            caches = make_caches(model, kind, fmt, **extra)
            I.prefill(model, I.random_tokens(1, context, model.cfg.vocab_size), caches, chunk=256)
            nxt, best = I.random_tokens(1, steps, model.cfg.vocab_size, seed=1), float("inf")
            with torch.inference_mode():
                t0 = time.perf_counter()
                for s in range(steps):
                    model(nxt[:, s:s + 1], pos=caches[0].next_pos, caches=caches)
                best = min(best, time.perf_counter() - t0)
            rows.append({"format": fmt, "kind": kind, "context": context, "tokens_per_s": steps / best,
                         "cache_bytes": sum(c.nbytes for c in caches)})
    return rows


def plot(curves, location, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    for fmt, c in curves.items():
        if fmt != "fp32":
            a.plot(np.maximum.accumulate(c), label=fmt)
    a.set(yscale="log", xlabel="decode step", ylabel="largest logit error so far",
          title=f"window {WINDOW} + {SINKS} sinks vs the fp32 cache")
    a.legend()
    b.bar(np.arange(len(location["key_absmax_per_channel"])), location["key_absmax_per_channel"], color="0.7",
          label="max |key| (right: error)")
    b2 = b.twinx()
    for fmt in ("int8", "int8-g4", "fp8"):
        b2.plot(location[fmt]["err_per_channel"], marker=".", label=f"{fmt} error")
    b.set(xlabel="channel", ylabel="max |key|", title="layer 0 keys: outlier channels and their error")
    b2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def md_table(rows, cols) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
    fmt = lambda x: f"{x:.4g}" if isinstance(x, float) else str(x)  # noqa: E731
    return head + "".join("\n| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps of the tiny decoder")
    ap.add_argument("--eval-tokens", type=int, default=1024)
    ap.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # steadier decode timings on a shared 2-core machine
    started = time.perf_counter()
    res = {"memory": memory_rows()}
    print(md_table(res["memory"], ["context", "format", "bytes_per_token", "full_GiB", "rolling_GiB", "sinks_GiB"]))
    model, loss = train_decoder(args.steps)
    res["train"] = {"steps": args.steps, "final_loss": loss}
    print(f"\ntiny decoder trained {args.steps} steps, final loss {loss:.3f}")
    res["accuracy"], curves = accuracy_rows(model, args.eval_tokens)
    print(md_table(res["accuracy"], ["format", "perplexity", "max_logit_err", "mean_logit_err", "top1_agreement"]))
    res["location"] = error_location(model, args.eval_tokens)
    for fmt in ("int8", "int8-g4", "fp8"):
        loc = res["location"][fmt]
        print(f"{fmt:8s} key error: sinks {loc['sinks_rel_err']:.2e}, window {loc['window_rel_err']:.2e} (relative)")
    res["speed"] = speed_rows(model)
    print(md_table(res["speed"], ["format", "kind", "context", "tokens_per_s", "cache_bytes"]))
    res["curves"], res["wall_s"] = curves, time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "kv_quantization.json"), "w") as f:
        json.dump(res, f, indent=1)
    plot(curves, res["location"], os.path.join(args.out, "kv_quantization.png"))
    print(f"\nwall time {res['wall_s']:.0f} s; results in {args.out}/kv_quantization.{{json,png}}")


if __name__ == "__main__":
    main()
