"""Tasks with known answers: synthetic long-range tasks whose difficulty grows with distance, and a char-level LM.

Needle retrieval, associative recall (one query), multi-query associative recall (MQAR), selective copying, and
LRA's ListOps (listops.py); `Pooled(task, size)` freezes a task into a fixed data set.

Every task draws a batch from a NumPy generator: `x, y = task.sample(batch_size, rng)`, both int64 (B, n);
`y` holds the target token where there is one and IGNORE (-100, PyTorch's ignore_index) elsewhere.
`task.batch(batch_size, seed)` is the same as torch tensors; the same seed always gives the same batch.

`distance` is how far the answer lies from where it is asked for (in tokens): an int, or (lo, hi) for a
distance drawn uniformly in [lo, hi] per example. A model whose receptive field at the query is smaller
than the distance cannot see the answer.
"""
from __future__ import annotations

import abc
from importlib import resources

import numpy as np
import torch

from ..patterns.base import ParamsRepr, check_int

IGNORE = -100
FILLER, QUERY = 0, 1  # token ids shared by the synthetic tasks


def check_distance(distance, seq_len: int, room: int) -> tuple[int, int]:
    """(lo, hi) from an int or a pair; both in [1, seq_len - room]."""
    lo, hi = (distance, distance) if np.isscalar(distance) else tuple(distance)
    lo, hi = check_int("distance", lo, minimum=1), check_int("distance", hi, minimum=1)
    if lo > hi or hi > seq_len - room:
        raise ValueError(f"distance must satisfy 1 <= lo <= hi <= {seq_len - room} for seq_len={seq_len}, "
                         f"got {distance!r}")
    return lo, hi


class Task(abc.ABC):
    """Base class: a name, a vocabulary, a sequence length, the model type it suits (causal or not)."""

    name = "task"
    causal = False
    vocab_size = 0

    def __init__(self, seq_len: int):
        self.seq_len = check_int("seq_len", seq_len, minimum=4)

    @abc.abstractmethod
    def sample(self, batch_size: int, rng: np.random.Generator):
        """(x, y) int64 NumPy arrays (B, n); y holds IGNORE where there is nothing to predict."""

    def batch(self, batch_size: int, seed: int):
        """(x, y) int64 torch tensors (B, n) drawn from np.random.default_rng(seed)."""
        x, y = self.sample(check_int("batch_size", batch_size, minimum=1), np.random.default_rng(seed))
        return torch.as_tensor(x), torch.as_tensor(y)

    def _params(self) -> dict:
        """Constructor arguments, in order (for the repr)."""
        return {"seq_len": self.seq_len}

    __repr__ = ParamsRepr.__repr__  # the patterns' repr, `Name(arg=value, ...)`; equality stays identity


class NeedleRetrieval(Task):
    """Filler tokens, one needle (a value token) `distance` before the end; the last token asks which value."""

    name = "needle"

    def __init__(self, seq_len: int = 128, distance=(64, 120), n_values: int = 8, n_filler: int = 16):
        super().__init__(seq_len)
        self.distance = check_distance(distance, self.seq_len, 1)
        self.n_values = check_int("n_values", n_values, minimum=2)
        self.n_filler = check_int("n_filler", n_filler, minimum=1)
        self.vocab_size = 2 + self.n_values + self.n_filler  # ids: filler marker, query, values, fillers

    def _params(self):
        return {"seq_len": self.seq_len, "distance": self.distance, "n_values": self.n_values,
                "n_filler": self.n_filler}

    def sample(self, batch_size, rng):
        B, n = batch_size, self.seq_len
        x = rng.integers(2 + self.n_values, self.vocab_size, size=(B, n))  # (B, n) filler
        x[:, -1] = QUERY
        dist = rng.integers(self.distance[0], self.distance[1] + 1, size=B)  # (B,)
        value = rng.integers(2, 2 + self.n_values, size=B)  # (B,)
        x[np.arange(B), n - 1 - dist] = value
        y = np.full((B, n), IGNORE)
        y[:, -1] = value
        return x, y


class AssociativeRecall(Task):
    """Key-value pairs side by side; the last token repeats one key, `distance` after it: answer its value."""

    name = "recall"

    def __init__(self, seq_len: int = 128, distance=(64, 120), n_keys: int = 16, n_values: int = 16):
        super().__init__(seq_len)
        self.distance = check_distance(distance, self.seq_len, 2)
        self.n_keys = check_int("n_keys", n_keys, minimum=2)
        self.n_values = check_int("n_values", n_values, minimum=2)
        self.vocab_size = 2 + self.n_keys + self.n_values  # ids: filler, query, keys, values

    def _params(self):
        return {"seq_len": self.seq_len, "distance": self.distance, "n_keys": self.n_keys, "n_values": self.n_values}

    def sample(self, batch_size, rng):
        B, n = batch_size, self.seq_len
        x = np.full((B, n), FILLER)
        y = np.full((B, n), IGNORE)
        for b in range(B):
            target_key = int(rng.integers(self.n_keys))
            others = np.delete(np.arange(self.n_keys), target_key)  # the asked key appears once only
            keys = rng.choice(others, size=(n - 1) // 2)
            vals = rng.integers(self.n_values, size=(n - 1) // 2)
            d = int(rng.integers(self.distance[0], self.distance[1] + 1))
            slot = min((n - 1 - d) // 2, len(keys) - 1)  # the pair whose key sits about d before the end
            keys[slot] = target_key
            x[b, 0:2 * len(keys):2] = 2 + keys
            x[b, 1:2 * len(keys):2] = 2 + self.n_keys + vals
            x[b, -1] = 2 + target_key
            y[b, -1] = 2 + self.n_keys + vals[slot]
        return x, y


class SelectiveCopy(Task):
    """A few data tokens scattered over the last `distance` positions before the queries; copy them in order."""

    name = "copy"

    def __init__(self, seq_len: int = 128, distance: int = 96, n_data: int = 4, n_tokens: int = 8):
        self.n_data = check_int("n_data", n_data, minimum=1)
        super().__init__(seq_len)
        self.distance = check_distance(distance, self.seq_len, self.n_data)
        if self.distance[0] < self.n_data:
            raise ValueError(f"distance must be >= n_data={self.n_data}, got {distance!r}")
        self.n_tokens = check_int("n_tokens", n_tokens, minimum=2)
        self.vocab_size = 2 + self.n_tokens  # ids: blank, query marker, data tokens

    def _params(self):
        return {"seq_len": self.seq_len, "distance": self.distance, "n_data": self.n_data, "n_tokens": self.n_tokens}

    def sample(self, batch_size, rng):
        B, n, m = batch_size, self.seq_len, self.n_data
        x = np.full((B, n), FILLER)
        y = np.full((B, n), IGNORE)
        x[:, n - m:] = QUERY
        for b in range(B):
            span = int(rng.integers(self.distance[0], self.distance[1] + 1))
            pos = np.sort(rng.choice(span, size=m, replace=False)) + (n - m - span)  # in the span before queries
            data = 2 + rng.integers(self.n_tokens, size=m)
            x[b, pos] = data
            y[b, n - m:] = data
        return x, y


class MQAR(Task):
    """Multi-query associative recall (Zoology, Arora et al. 2023): key-value pairs first, then queries far after.

    The first 2·n_pairs tokens are pairs `key value` with distinct keys; each of n_queries distinct positions drawn
    in the last `distance` tokens (default: the second half) repeats one of those keys, and its target is the key's
    value. Everything else is filler (0). So every query lies at least seq_len - distance - 2·n_pairs + 1 tokens
    after its key: the gap, and the difficulty for a local pattern, grows with seq_len.
    """

    name = "mqar"

    def __init__(self, seq_len: int = 512, n_pairs: int = 8, n_queries: int = 8, n_keys: int = 64,
                 n_values: int = 64, distance: int | None = None):
        super().__init__(seq_len)
        self.n_pairs = check_int("n_pairs", n_pairs, minimum=1)
        self.n_queries = check_int("n_queries", n_queries, minimum=1)
        self.n_keys = check_int("n_keys", n_keys, minimum=self.n_pairs)
        self.n_values = check_int("n_values", n_values, minimum=2)
        room = self.seq_len - 2 * self.n_pairs  # positions after the pairs
        self.distance = check_int("distance", room // 2 if distance is None else distance, minimum=self.n_queries)
        if self.distance > room:
            raise ValueError(f"distance must be <= seq_len - 2·n_pairs = {room}, got {distance!r}")
        self.vocab_size = 2 + self.n_keys + self.n_values  # ids: filler, (unused), keys, values

    def _params(self):
        return {"seq_len": self.seq_len, "n_pairs": self.n_pairs, "n_queries": self.n_queries,
                "n_keys": self.n_keys, "n_values": self.n_values, "distance": self.distance}

    def sample(self, batch_size, rng):
        B, n, P, Q = batch_size, self.seq_len, self.n_pairs, self.n_queries
        x = np.full((B, n), FILLER)
        y = np.full((B, n), IGNORE)
        keys = rng.permuted(np.tile(np.arange(self.n_keys), (B, 1)), axis=1)[:, :P]  # (B, P) distinct per row
        vals = rng.integers(self.n_values, size=(B, P))  # (B, P)
        x[:, 0:2 * P:2] = 2 + keys
        x[:, 1:2 * P:2] = 2 + self.n_keys + vals
        ask = rng.integers(P, size=(B, Q))  # (B, Q) which pair each query repeats
        pos = n - self.distance + np.argsort(rng.random((B, self.distance)), axis=1)[:, :Q]  # (B, Q) distinct
        rows = np.arange(B)[:, None]
        x[rows, pos] = 2 + np.take_along_axis(keys, ask, 1)
        y[rows, pos] = 2 + self.n_keys + np.take_along_axis(vals, ask, 1)
        return x, y


def shipped_text() -> str:
    """The course's small text for character-level language modelling (saattn_edu/data/tiny_corpus.txt)."""
    return resources.files("saattn_edu").joinpath("data/tiny_corpus.txt").read_text(encoding="utf-8")


class CharLM(Task):
    """Next-character prediction on a text (default: the shipped corpus); windows from the first 90% train."""

    name = "charlm"
    causal = True

    def __init__(self, seq_len: int = 128, text: str | None = None, split: str = "train"):
        super().__init__(seq_len)
        self.text = shipped_text() if text is None else str(text)
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
        self.split = split
        self.chars = sorted(set(self.text))
        self.vocab_size = len(self.chars)
        ids = np.array([self.chars.index(c) for c in self.text]) if self.text else np.zeros(0, int)
        cut = int(0.9 * len(ids))
        self.ids = ids[:cut] if split == "train" else ids[cut:]
        if len(self.ids) <= self.seq_len + 1:
            raise ValueError(f"seq_len must be < {len(self.ids) - 1} for this text's {split} split, got {seq_len}")

    def _params(self):
        return {"seq_len": self.seq_len, "split": self.split}

    def sample(self, batch_size, rng):
        starts = rng.integers(0, len(self.ids) - self.seq_len - 1, size=batch_size)  # (B,)
        windows = self.ids[starts[:, None] + np.arange(self.seq_len + 1)]  # (B, n + 1)
        return windows[:, :-1].copy(), windows[:, 1:].copy()

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


class Pooled(Task):
    """A fixed set of `size` examples of `task` drawn once from `seed` (a data set, as LRA's 96k ListOps examples);
    `sample` draws rows from it. For tasks whose generator is slow at long n (ListOps): generate once, train often."""

    def __init__(self, task: Task, size: int, seed: int = 0):
        super().__init__(task.seq_len)
        self.task, self.size, self.seed = task, check_int("size", size, minimum=1), seed
        self.name, self.causal, self.vocab_size = task.name, task.causal, task.vocab_size
        self.x, self.y = task.sample(self.size, np.random.default_rng(seed))  # (size, n) each

    def _params(self):
        return {"task": self.task, "size": self.size, "seed": self.seed}

    def sample(self, batch_size, rng):
        idx = rng.integers(self.size, size=batch_size)
        return self.x[idx], self.y[idx]

TASKS = {cls.name: cls for cls in (NeedleRetrieval, AssociativeRecall, MQAR, SelectiveCopy, CharLM)}  # + listops.py's


def make_task(name: str, **kwargs) -> Task:
    """A task by its short name: 'needle', 'recall', 'mqar', 'copy', 'listops' or 'charlm'."""
    if name not in TASKS:
        raise ValueError(f"name must be one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name](**kwargs)
