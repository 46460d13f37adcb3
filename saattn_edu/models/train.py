"""`train(model, task, steps)`: seeded AdamW training with a tqdm bar; returns curves, wall time and FLOPs.

FLOPs per step follow `complexity.py`'s convention (4 · pairs · d for attention, 2 per multiply-add for the
linear layers), forward + backward ≈ 3 × forward:
    attention_flops_per_step = 3 · batch · model.attention_flops(n)
    flops_per_step = 3 · batch · (2 · n · weights in linear layers + attention FLOPs of one sequence)
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..patterns.base import check_int
from .tasks import IGNORE, Task

EVAL_SEED = 10_000  # evaluation batches come from seeds the training never draws (training uses seed·1e6 + step)


def set_threads(n: int | None = None) -> int:
    """Use the machine's cores (or n) for torch; returns the count."""
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (model init, dropout-free training is then deterministic on CPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    """What one training run measured."""

    steps: list = field(default_factory=list)  # step numbers of the evaluations
    loss: list = field(default_factory=list)  # training loss, every step
    eval_loss: list = field(default_factory=list)  # at `steps`
    accuracy: list = field(default_factory=list)  # at `steps`: share of target tokens predicted right
    wall_time: float = 0.0  # seconds spent in training steps (evaluation excluded)
    step_time: float = 0.0  # median seconds per training step
    attention_flops: int = 0  # attention FLOPs of one forward pass over one sequence
    attention_flops_per_step: int = 0
    flops_per_step: int = 0
    peak_memory_bytes: int | None = None  # CUDA: peak allocated during training (None on CPU: not measured)

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1] if self.accuracy else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "final_accuracy": self.final_accuracy}


def linear_flops(model, n: int) -> int:
    """2 · n · (weights of every nn.Linear): the projections and MLPs of one forward pass over one sequence."""
    return 2 * n * sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def autocast(device):
    """bf16 autocast on a GPU (the Triton kernel and SDPA's fused kernels run in bf16); nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loss_and_accuracy(model, x, y):
    """Cross-entropy over target positions (y != IGNORE) and the share of them predicted right."""
    device = next(model.parameters()).device
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    with autocast(device):
        logits = model(x)  # (B, n, vocab)
    logits = logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
    keep = y != IGNORE
    acc = (logits.argmax(-1)[keep] == y[keep]).float().mean()
    return loss, acc


@torch.no_grad()
def evaluate(model, task: Task, n_examples: int = 256, batch_size: int = 128, seed: int = EVAL_SEED):
    """(loss, accuracy) on a fixed evaluation set: the same examples for every model and every call."""
    model.eval()
    losses, accs, sizes = [], [], []
    for k, start in enumerate(range(0, n_examples, batch_size)):
        x, y = task.batch(min(batch_size, n_examples - start), seed + k)
        loss, acc = loss_and_accuracy(model, x, y)
        losses.append(float(loss)), accs.append(float(acc)), sizes.append(len(x))
    model.train()
    return float(np.average(losses, weights=sizes)), float(np.average(accs, weights=sizes))


def train(model, task: Task, steps: int, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
          eval_every: int | None = None, eval_examples: int = 256, progress: bool = True,
          warmup: int = 20, eval_task: Task | None = None, eval_batch_size: int = 128) -> TrainResult:
    """AdamW on fresh batches of `task` (seeded: the same seed gives the same run); evaluates every `eval_every`.

    The model may live on a GPU (batches follow it; bf16 autocast; step times synchronised; peak memory measured).
    `eval_task` (default: `task`) is what held-out accuracy is measured on, e.g. a separate `Pooled` set.
    """
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    eval_every = check_int("eval_every", eval_every or max(1, steps // 10), minimum=1)
    seed_everything(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * _cosine(s, steps))
    result, times = TrainResult(), []
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    eval_task = task if eval_task is None else eval_task
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)

    bar = tqdm(range(1, steps + 1), disable=not progress, desc=type(task).__name__, leave=False)
    for step in bar:
        x, y = task.batch(batch_size, seed * 1_000_000 + step)
        start = time.perf_counter()
        loss, _ = loss_and_accuracy(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        result.loss.append(float(loss.detach()))
        if step % eval_every == 0 or step == steps:
            ev_loss, ev_acc = evaluate(model, eval_task, eval_examples, eval_batch_size)
            result.steps.append(step), result.eval_loss.append(ev_loss), result.accuracy.append(ev_acc)
            bar.set_postfix(loss=f"{ev_loss:.3f}", acc=f"{ev_acc:.2f}")
    if cuda:
        result.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
    n = task.seq_len
    result.wall_time, result.step_time = float(sum(times)), float(np.median(times))
    result.attention_flops = int(model.attention_flops(n))
    result.attention_flops_per_step = 3 * batch_size * result.attention_flops
    result.flops_per_step = 3 * batch_size * (linear_flops(model, n) + result.attention_flops)
    return result


def _cosine(step: int, steps: int) -> float:
    """Cosine decay from 1 to 0.1 over the run."""
    return 0.1 + 0.45 * (1 + np.cos(np.pi * min(step, steps) / steps))
