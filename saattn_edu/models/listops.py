"""ListOps as the Long Range Arena generates it (Tay et al., 2020; the rules of Nangia & Bowman, 2018).

A sequence is one nested expression over the digits 0–9 with four operators, written in prefix form:

    [MAX 2 9 [MIN 4 7 ] 0 ]          -> 9
    [SM 3 [MED 1 5 8 2 ] 9 ]         -> (3 + int(median(1, 5, 8, 2)) + 9) % 10 = 5

The published rules (LRA's `lra_benchmarks/data/listops.py`), re-implemented here: the root has depth 1; a node
at depth < max_depth (10) is a digit with probability 0.75, else an operator drawn uniformly from MAX, MIN, MED
(`int(np.median(args))`) and SM (sum mod 10) with 2..max_args (10) arguments, each a node one level deeper; a node at
max_depth is a digit. The length is 2 per operator (its name and `]`) plus 1 per digit, as LRA's generator
counts it (no parentheses; our tokens are exactly those); a tree is kept only if its length lies strictly between
min_length and max_length (LRA: 500 and 2000, sequences padded to 2000; here min(n // 4, 500) and n - 1).
Ten classes.

Here the expression is left-padded so that it ends at position n - 2 and the last position holds a query token
whose target is the expression's value: the answer is read where every pattern of the course can put a query.
"""
from __future__ import annotations

import random

import numpy as np

from ..patterns.base import check_int
from .tasks import IGNORE, TASKS, Task

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
END = "]"
VALUE_P = 0.25  # probability that a node above max_depth is an operator (LRA: `r > VALUE_P` makes a digit)
PAD, QUERY = 0, 1
VOCAB = ("<pad>", "<query>") + tuple(str(v) for v in range(10)) + OPERATORS + (END,)
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}


def apply_operator(op: str, args) -> int:
    """The value of one operator node over its (already evaluated) digit arguments."""
    if op == "[MAX":
        return max(args)
    if op == "[MIN":
        return min(args)
    if op == "[MED":
        return int(np.median(args))  # LRA's rule: the mean of the two middle values, truncated
    if op == "[SM":
        return sum(args) % 10
    raise ValueError(f"op must be one of {OPERATORS}, got {op!r}")


def generate_tree(rng: random.Random, max_depth: int = 10, max_args: int = 10, depth: int = 1):
    """(tokens, value) of one random expression drawn by LRA's rules; tokens is a list of strings.

    `rng` is a `random.Random` (Python's generator: ~5× faster than NumPy's for one draw at a time).
    """
    if depth >= max_depth or rng.random() > VALUE_P:
        v = rng.randrange(10)
        return [str(v)], v
    op = OPERATORS[rng.randrange(len(OPERATORS))]
    tokens, args = [op], []
    for _ in range(rng.randint(2, max_args)):
        sub, v = generate_tree(rng, max_depth, max_args, depth + 1)
        tokens += sub
        args.append(v)
    return tokens + [END], apply_operator(op, args)


class ListOps(Task):
    """One LRA ListOps expression per sequence (left-padded), a query token last; 10 classes (digit tokens 2–11)."""

    name = "listops"
    vocab_size = len(VOCAB)

    def __init__(self, seq_len: int = 512, min_length: int | None = None, max_depth: int = 10, max_args: int = 10,
                 max_tries: int = 100_000):
        super().__init__(seq_len)
        self.max_depth = check_int("max_depth", max_depth, minimum=1)
        self.max_args = check_int("max_args", max_args, minimum=2)
        # LRA keeps 500 < length < 2000 at n = 2000: a quarter of n up to 2k tokens, then LRA's own 500 (trees longer
        # than ~4k tokens are rarer than 1 in 4000 under the depth-10 rule, so a longer floor could not be sampled)
        default = min(self.seq_len // 4, 500)
        self.min_length = check_int("min_length", default if min_length is None else min_length, minimum=0)
        if self.min_length >= self.seq_len - 1:
            raise ValueError(f"min_length must be < seq_len - 1 = {self.seq_len - 1}, got {self.min_length}")
        self.max_tries = check_int("max_tries", max_tries, minimum=1)

    def _params(self):
        return {"seq_len": self.seq_len, "min_length": self.min_length, "max_depth": self.max_depth,
                "max_args": self.max_args}

    def expression(self, rng: random.Random):
        """(tokens, value) of one tree with min_length < len(tokens) < seq_len (rejection sampling, as LRA)."""
        for _ in range(self.max_tries):
            tokens, value = generate_tree(rng, self.max_depth, self.max_args)
            if self.min_length < len(tokens) < self.seq_len:
                return tokens, value
        raise RuntimeError(f"no ListOps tree of length in ({self.min_length}, {self.seq_len}) after "
                           f"{self.max_tries} tries: lower min_length or raise max_depth / max_args")

    def sample(self, batch_size, rng):
        B, n = batch_size, self.seq_len
        x = np.full((B, n), PAD)
        y = np.full((B, n), IGNORE)
        x[:, -1] = QUERY
        py_rng = random.Random(int(rng.integers(2**63)))  # seeded from the NumPy generator: same seed, same batch
        for b in range(B):
            tokens, value = self.expression(py_rng)
            x[b, n - 1 - len(tokens):n - 1] = [TOKEN_ID[t] for t in tokens]
            y[b, -1] = TOKEN_ID[str(value)]
        return x, y

    @staticmethod
    def decode(ids) -> str:
        """The expression of one row of token ids, as text (padding and the query token dropped)."""
        return " ".join(VOCAB[int(i)] for i in ids if int(i) > QUERY)


TASKS[ListOps.name] = ListOps  # make_task("listops", ...)
