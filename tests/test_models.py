"""Tiny transformer with per-layer patterns, the long-range tasks and the trainer (saattn_edu.models)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from saattn_edu import patterns as P
from saattn_edu.complexity import attention_flops
from saattn_edu.models import (IGNORE, AssociativeRecall, CharLM, NeedleRetrieval, SelectiveCopy, TinyTransformer,
                               make_task, shipped_text, train)
from saattn_edu.patterns.learned import KMeansRouting, TopKBlocks

torch.set_num_threads(1)


class PlainBlock(nn.Module):
    """A GPT-2 block written with nn.MultiheadAttention: the reference the model must match with Dense()."""

    def __init__(self, d, h):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.mha = nn.MultiheadAttention(d, h, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        y = self.ln1(x)
        x = x + self.mha(y, y, y, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


def plain_forward(model: TinyTransformer, tokens, causal: bool):
    """Copy the model's weights into PlainBlocks and run them: an independent dense transformer."""
    n = tokens.shape[1]
    mask = torch.ones(n, n).triu(1).bool() if causal else None  # True = not allowed (nn.MultiheadAttention)
    x = model.tok(tokens) + model.pos(torch.arange(n))
    for blk in model.blocks:
        plain = PlainBlock(model.d_model, model.n_heads)
        plain.ln1.load_state_dict(blk.ln1.state_dict()), plain.ln2.load_state_dict(blk.ln2.state_dict())
        plain.mlp.load_state_dict(blk.mlp.state_dict())
        plain.mha.in_proj_weight.data.copy_(blk.attn.qkv.weight), plain.mha.in_proj_bias.data.copy_(blk.attn.qkv.bias)
        plain.mha.out_proj.load_state_dict(blk.attn.proj.state_dict())
        x = plain(x, mask)
    return model.head(model.ln_f(x))


def randomized(model):
    """Larger random weights than the init, so a wrong head split or mask would show."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", ["torch", "gather"])
def test_dense_model_matches_plain_transformer(causal, backend):
    model = randomized(TinyTransformer(11, 24, layers=[P.Dense()] * 2, d_model=16, n_heads=4, causal=causal,
                                       backend=backend))
    tokens = torch.as_tensor(np.random.default_rng(0).integers(0, 11, (3, 24)))
    torch.testing.assert_close(model(tokens), plain_forward(model, tokens, causal), rtol=1e-4, atol=1e-4)


def test_sparse_paths_agree():
    layers = [P.SlidingWindow(5), P.Longformer(3, global_indices=(0,)), P.Strided(4, causal=False)]
    torch.manual_seed(0)
    ref = randomized(TinyTransformer(9, 20, layers=layers, d_model=16, n_heads=2, backend="torch"))
    other = TinyTransformer(9, 20, layers=layers, d_model=16, n_heads=2, backend="gather")
    other.load_state_dict(ref.state_dict())
    tokens = torch.as_tensor(np.random.default_rng(1).integers(0, 9, (2, 20)))
    torch.testing.assert_close(other(tokens), ref(tokens), rtol=1e-4, atol=1e-4)


def test_sparse_layer_ignores_pairs_outside_its_pattern():
    model = randomized(TinyTransformer(9, 16, layers=[P.SlidingWindow(3)], d_model=8, n_heads=2))
    tokens = torch.as_tensor(np.random.default_rng(2).integers(0, 9, (1, 16)))
    changed = tokens.clone()
    changed[0, 15] = (changed[0, 15] + 1) % 9  # one layer of |i - j| <= 1: only rows 14 and 15 may change
    diff = (model(tokens) - model(changed)).abs().sum(-1)[0]
    assert torch.all(diff[:14] == 0) and torch.all(diff[14:] > 0)


@pytest.mark.parametrize("backend,pattern", [
    ("torch", P.SlidingWindow(5)), ("gather", P.SlidingWindow(5)), ("auto", P.BigBird(4, 3, 1, 1, seed=0)),
    ("torch", TopKBlocks(block=4, k=2)), ("torch", TopKBlocks(block=4, k=2, causal=True)),
    ("torch", KMeansRouting(n_clusters=2, iters=2)), ("torch", P.LSHBuckets(n_buckets=4, chunk=4, seed=1)),
    ("torch", P.IndexerTopK(k=4, index_dim=4, seed=1)),
    pytest.param("triton", P.SlidingWindow(5), marks=pytest.mark.triton),
])
def test_gradients_flow_through_every_path(backend, pattern):
    if backend == "triton":
        pytest.importorskip("triton", reason="Triton is not installed (Linux x86-64 only)")
    causal = getattr(pattern, "causal", False)
    d = 32 if backend == "triton" else 16  # the kernel wants head dims of 16 or more
    model = TinyTransformer(7, 16, layers=[pattern, pattern], d_model=d, n_heads=2, backend=backend, causal=causal)
    dev = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"  # else: the interpreter on CPU
    model = model.to(dev)
    tokens = torch.as_tensor(np.random.default_rng(3).integers(0, 7, (2, 16)), device=dev)
    model(tokens).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if "pos" not in name:  # positions are all used; check the rest
            assert p.grad.abs().sum() > 0, name
    qkv = model.blocks[0].attn.qkv.weight.grad
    assert qkv[:d].abs().sum() > 0 and qkv[d:2 * d].abs().sum() > 0  # scores depend on q and k: both get gradient


def test_topk_mask_matches_library_selection():
    from saattn_edu.models import learned_mask

    q, k = torch.randn(2, 3, 18, 4), torch.randn(2, 3, 18, 4)
    for method in (TopKBlocks(block=4, k=2), TopKBlocks(block=5, k=3, causal=True)):
        mask = learned_mask(method, q, k)
        for b in range(2):
            for h in range(3):
                want = method.build(q[b, h].numpy(), k[b, h].numpy()).mask(18)
                assert np.array_equal(mask[b, h].numpy(), want)


def test_decoder_patterns_are_causal_and_maps_follow_them():
    model = TinyTransformer(9, 12, layers=[P.Dense(), P.SlidingWindow(4)], d_model=8, n_heads=2, causal=True)
    assert model.patterns[0] == P.Causal()
    tokens = torch.as_tensor(np.random.default_rng(4).integers(0, 9, (2, 12)))
    for layer, probs in zip(model.patterns, model.attention_maps(tokens)):
        assert probs.shape == (2, 2, 12, 12)
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, 2, 12))
        assert torch.all(probs[..., ~torch.as_tensor(layer.mask(12))] == 0)


def test_attention_flops_count_each_layer():
    layers = [P.SlidingWindow(5), P.Dense(), TopKBlocks(block=4, k=1)]
    model = TinyTransformer(9, 16, layers=layers, d_model=8, n_heads=2)
    model(torch.zeros(1, 16, dtype=torch.long))  # the learned layer counts its last selection: 1 block of 4 per row
    select = TopKBlocks(block=4, k=1).selection_cost(16, 4) * 2
    want = attention_flops(layers[0], 16, 8) + 4 * 16 * 16 * 8 + 4 * 16 * 4 * 8 + select
    assert model.attention_flops() == want


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="d_model"):
        TinyTransformer(9, 16, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="backend"):
        TinyTransformer(9, 16, backend="cuda")
    with pytest.raises(TypeError, match="pattern"):
        TinyTransformer(9, 16, layers=["window"])
    with pytest.raises(ValueError, match="causal"):
        TinyTransformer(9, 16, layers=[TopKBlocks(4, 1)], causal=True)
    with pytest.raises(ValueError, match="distance"):
        NeedleRetrieval(seq_len=32, distance=40)
    with pytest.raises(ValueError, match="name"):
        make_task("mnist")
    with pytest.raises(ValueError, match="tokens"):
        TinyTransformer(9, 16)(torch.zeros(1, 17, dtype=torch.long))


TASK_CASES = [NeedleRetrieval(64, (10, 40)), AssociativeRecall(64, (10, 40)), SelectiveCopy(64, 30), CharLM(64)]


@pytest.mark.parametrize("task", TASK_CASES, ids=lambda t: t.name)
def test_task_generators_are_deterministic(task):
    x1, y1 = task.batch(8, seed=5)
    x2, y2 = task.batch(8, seed=5)
    x3, _ = task.batch(8, seed=6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert x1.shape == y1.shape == (8, 64) and x1.dtype == torch.int64
    assert x1.min() >= 0 and x1.max() < task.vocab_size
    targets = y1[y1 != IGNORE]
    assert len(targets) > 0 and targets.min() >= 0 and targets.max() < task.vocab_size


def test_needle_sits_at_the_asked_distance():
    task = NeedleRetrieval(64, distance=(10, 20), n_values=4, n_filler=8)
    x, y = task.sample(200, np.random.default_rng(0))
    is_value = (x >= 2) & (x < 6)
    assert np.all(is_value.sum(1) == 1)  # one needle per example
    dist = 63 - is_value.argmax(1)
    assert dist.min() == 10 and dist.max() == 20
    assert np.array_equal(y[:, -1], x[np.arange(200), 63 - dist])


def test_recall_and_copy_answers_are_in_the_input():
    x, y = AssociativeRecall(40, (5, 30), n_keys=6, n_values=5).sample(50, np.random.default_rng(1))
    for row, t in zip(x, y[:, -1]):
        key_pos = np.flatnonzero(row[:-1] == row[-1])
        assert len(key_pos) == 1 and row[key_pos[0] + 1] == t  # the asked key appears once, its value follows
    x, y = SelectiveCopy(40, 20, n_data=3).sample(50, np.random.default_rng(2))
    for row, t in zip(x, y):
        assert np.array_equal(row[(row >= 2)], t[-3:]) and np.all(row[-3:] == 1)


def test_charlm_uses_the_shipped_text():
    text = shipped_text()
    task = CharLM(32)
    assert len(text) > 2000 and task.vocab_size == len(set(text))
    x, y = task.sample(4, np.random.default_rng(0))
    assert task.decode(x[0]) in text and np.array_equal(x[:, 1:], y[:, :-1])


def test_training_lowers_the_loss_and_is_seeded():
    task = NeedleRetrieval(32, distance=(4, 20), n_values=4, n_filler=4)

    def run():
        torch.manual_seed(0)
        model = TinyTransformer(task.vocab_size, 32, layers=[P.Dense(), P.SlidingWindow(9)], d_model=16, n_heads=2)
        return train(model, task, steps=40, batch_size=16, lr=1e-2, seed=3, eval_every=20, eval_examples=64,
                     progress=False)

    r1, r2 = run(), run()
    assert r1.loss == r2.loss and r1.accuracy == r2.accuracy
    assert np.mean(r1.loss[-5:]) < np.mean(r1.loss[:5]) - 0.1
    assert r1.eval_loss[-1] < math.log(task.vocab_size)
    assert r1.attention_flops > 0 and r1.flops_per_step > r1.attention_flops_per_step > 0 and r1.wall_time > 0


def test_exercise11_references_and_design_rules():
    from saattn_edu.grading import run_question
    from saattn_edu.grading.exercises import ex11

    qs = {q.name: q for q in ex11.QUESTIONS}
    def closed_form(layers, n, d_model):  # the solution notebook's answer
        reach = [min(w // 2, n - 1) for w in layers if w is not None]
        pairs = n * n * layers.count(None) + sum(n + 2 * (r * n - r * (r + 1) // 2) for r in reach)
        return 4 * d_model * pairs

    def receptive_field(windows, causal):  # not the grader's reference: calling that is refused since issue 16
        return sum((w - 1) if causal else w // 2 for w in windows)

    for name, answer in (("receptive_field", receptive_field), ("stack_attention_flops", closed_form)):
        assert run_question(qs[name], answer, seed=7).points == qs[name].max_points
    assert run_question(qs["stack_attention_flops"], ex11._ref_stack_flops, seed=7).status == "refused"  # num_pairs
    assert ex11._ref_stack_flops([None, 9, 9], 64, 32) == TinyTransformer(
        12, 64, [P.Dense(), P.SlidingWindow(9), P.SlidingWindow(9)], d_model=32, n_heads=2).attention_flops()
    assert 3 * (qs["q4"].reference() // 2) >= 60 > 3 * ((qs["q4"].reference() - 2) // 2)
    assert ex11.design_problem([P.Dense()] * 3).startswith("your layers cost")  # over budget: no training needed
    assert "3 layers" in ex11.design_problem([P.Dense()])
    assert "fixed pattern" in ex11.design_problem([TopKBlocks(4, 1)] * 3)
    assert ex11.design_problem([P.Dense(), P.SlidingWindow(5), P.SlidingWindow(5)]) is None
    verdict = ex11.TrainedDesign()(ex11.DESIGN, [P.Dense()] * 3)
    assert not verdict.ok and "budget" in verdict.lines[0]


@pytest.mark.slow
def test_exercise11_design_is_graded_by_training():
    from saattn_edu.grading.exercises import ex11

    assert ex11.TrainedDesign()(ex11.DESIGN, [P.Dense(), P.SlidingWindow(5), P.SlidingWindow(5)]).ok
    assert not ex11.TrainedDesign()(ex11.DESIGN, [P.SlidingWindow(9)] * 3).ok  # cannot reach the needle
