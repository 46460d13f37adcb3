"""The long-context tasks: MQAR, ListOps (LRA's rules), the pooled data set; answers checked independently."""
from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch

from saattn_edu.models import IGNORE, MQAR, ListOps, NeedleRetrieval, Pooled, SelectiveCopy, make_task
from saattn_edu.models.listops import OPERATORS, TOKEN_ID, VOCAB, apply_operator


def evaluate_prefix(text: str) -> int:
    """An evaluator written apart from the generator: a stack over the tokens, statistics.median for MED."""
    stack = []
    for tok in text.split():
        if tok in OPERATORS:
            stack.append([tok])
        elif tok == "]":
            op, *args = stack.pop()
            value = {"[MAX": max, "[MIN": min, "[SM": lambda a: sum(a) % 10,
                     "[MED": lambda a: int(statistics.median(a))}[op](args)
            if not stack:
                return value
            stack[-1].append(value)
        elif stack:
            stack[-1].append(int(tok))
        else:
            return int(tok)  # a bare digit
    raise ValueError(f"unbalanced expression {text!r}")


@pytest.mark.parametrize("task", [MQAR(128, 4, 4, 16, 16), ListOps(128), Pooled(ListOps(96), 20, seed=3)],
                         ids=lambda t: t.name)
def test_long_tasks_are_seeded_and_in_range(task):
    x1, y1 = task.batch(6, seed=5)
    x2, y2 = task.batch(6, seed=5)
    x3, _ = task.batch(6, seed=9)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert x1.shape == y1.shape == (6, task.seq_len) and x1.dtype == torch.int64
    assert x1.min() >= 0 and x1.max() < task.vocab_size
    targets = y1[y1 != IGNORE]
    assert len(targets) > 0 and targets.max() < task.vocab_size


def test_mqar_keys_are_unique_and_queries_name_their_values():
    task = MQAR(200, n_pairs=6, n_queries=5, n_keys=10, n_values=7, distance=80)
    x, y = task.sample(100, np.random.default_rng(0))
    for row, tgt in zip(x, y):
        keys, vals = row[0:12:2], row[1:12:2]
        assert len(set(keys.tolist())) == 6 and np.all((keys >= 2) & (keys < 12)) and np.all(vals >= 12)
        asked = np.flatnonzero(tgt != IGNORE)
        assert len(asked) == 5 and asked.min() >= 200 - 80  # the queries lie in the last `distance` tokens
        for p in asked:
            slot = int(np.flatnonzero(keys == row[p])[0])
            assert tgt[p] == vals[slot]
        assert np.all(np.delete(row[12:], asked - 12) == 0)  # filler elsewhere
    with pytest.raises(ValueError, match="distance"):
        MQAR(64, n_pairs=8, distance=60)


def test_listops_operators_follow_lra():
    assert apply_operator("[MED", [1, 5, 8, 2]) == 3 and apply_operator("[MED", [1, 5, 8]) == 5
    assert apply_operator("[SM", [9, 9, 3]) == 1 and apply_operator("[MAX", [2, 7]) == 7
    assert evaluate_prefix("[SM 3 [MED 1 5 8 2 ] 9 ]") == 5
    assert evaluate_prefix("[MAX 2 9 [MIN 4 7 ] 0 ]") == 9


def test_listops_answers_match_an_independent_evaluator():
    task = ListOps(64, min_length=4, max_depth=5, max_args=5)  # small trees: many, fast
    x, y = task.sample(300, np.random.default_rng(1))
    for row, tgt in zip(x, y):
        text = task.decode(row)
        n_tok = len(text.split())
        assert 4 < n_tok < 64 and np.all(row[: 63 - n_tok] == 0) and row[-1] == 1  # left-padded, query last
        assert tgt[-1] == TOKEN_ID[str(evaluate_prefix(text))] and np.all(tgt[:-1] == IGNORE)
    answers = y[:, -1] - TOKEN_ID["0"]
    assert len(set(answers.tolist())) >= 8  # all ten classes occur, about


def test_listops_lengths_and_operators_follow_the_rules():
    task = ListOps(1024)
    assert task.min_length == 256 and ListOps(16384).min_length == 500  # LRA's floor beyond 2k tokens
    x, _ = task.sample(12, np.random.default_rng(2))
    lengths = (x > 1).sum(1)
    assert lengths.min() > 256 and lengths.max() < 1024
    ops = np.isin(x, [TOKEN_ID[o] for o in OPERATORS])
    assert ops.sum() == (x == TOKEN_ID["]"]).sum()  # every operator closes
    counts = np.array([(x == TOKEN_ID[o]).sum() for o in OPERATORS])
    assert counts.min() > 0.6 * counts.mean()  # drawn uniformly
    assert len(VOCAB) == task.vocab_size == 17 and make_task("listops", seq_len=128).min_length == 32


def test_needle_and_copy_scale_to_long_sequences():
    x, y = NeedleRetrieval(2048, distance=(1024, 2000)).sample(16, np.random.default_rng(3))
    is_value = (x >= 2) & (x < 10)
    dist = 2047 - is_value.argmax(1)
    assert np.all(is_value.sum(1) == 1) and dist.min() >= 1024 and dist.max() <= 2000
    assert np.array_equal(y[:, -1], x[np.arange(16), 2047 - dist])
    x, y = SelectiveCopy(2048, distance=2040, n_data=8).sample(4, np.random.default_rng(4))
    for row, t in zip(x, y):
        assert np.array_equal(row[row >= 2], t[-8:])


def test_pooled_draws_only_its_examples():
    pool = Pooled(MQAR(64, 2, 2, 4, 4), size=5, seed=0)
    x, _ = pool.sample(40, np.random.default_rng(0))
    assert len({tuple(r) for r in x.tolist()}) <= 5
    assert {tuple(r) for r in x.tolist()} <= {tuple(r) for r in pool.x.tolist()}
