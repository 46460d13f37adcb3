"""Tiny transformers with a sparse pattern per layer, long-range tasks with known answers, and a trainer.

    from saattn_edu import patterns as P
    from saattn_edu.models import TinyTransformer, NeedleRetrieval, train
    task = NeedleRetrieval(seq_len=128, distance=(64, 120))
    model = TinyTransformer(task.vocab_size, task.seq_len, layers=[P.SlidingWindow(17)] * 2 + [P.Dense()])
    result = train(model, task, steps=300)       # curves, wall time, FLOPs per step
"""
from .attention_layer import SparseSelfAttention, effective_pattern, learned_mask, masked_attention
from .listops import ListOps
from .tasks import (IGNORE, MQAR, TASKS, AssociativeRecall, CharLM, NeedleRetrieval, Pooled, SelectiveCopy, Task,
                    make_task, shipped_text)
from .train import TrainResult, evaluate, linear_flops, seed_everything, set_threads, train
from .transformer import Block, TinyTransformer, layer_attention_flops, layer_names

__all__ = [
    "TinyTransformer", "Block", "SparseSelfAttention", "effective_pattern", "learned_mask", "masked_attention",
    "layer_attention_flops", "layer_names",
    "Task", "NeedleRetrieval", "AssociativeRecall", "MQAR", "SelectiveCopy", "ListOps", "CharLM", "Pooled", "TASKS",
    "make_task", "IGNORE", "shipped_text",
    "train", "evaluate", "TrainResult", "seed_everything", "set_threads", "linear_flops",
]
