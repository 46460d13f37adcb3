"""Torch paths (masked SDPA, gather with autograd, FlexAttention) and the `attention` dispatcher."""
import logging
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the accel paths need torch")

import saattn_edu as sa  # noqa: E402
from saattn_edu import patterns as P  # noqa: E402
from saattn_edu.accel import flex, gather_attention, masked_sdpa  # noqa: E402
from saattn_edu.reference import dense_attention  # noqa: E402

PATTERNS = [P.Causal(), P.SlidingWindow(9, causal=True), P.DilatedWindow(5, 2), P.GlobalTokens([0, 17]),
            P.Strided(6), P.BigBird(block=8, seed=1), P.RandomPattern(4, seed=2),
            P.BlockSparse(np.eye(6, dtype=bool), 8), P.Longformer(6, global_indices=(3,)), P.AttentionSinks(2, 5)]


def qkv(B=2, H=2, n=45, d=16, H_kv=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, h, n, d, generator=g, dtype=dtype) for h in (H, H_kv or H, H_kv or H)]


def dense_torch(q, k, v, mask):
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return torch.nan_to_num(torch.softmax(s.masked_fill(~mask, float("-inf")), -1), nan=0.0) @ v


@pytest.mark.parametrize("pattern", PATTERNS, ids=repr)
def test_masked_sdpa_and_gather_match_numpy_reference(pattern):
    q, k, v = qkv()
    ref = dense_attention(q.numpy(), k.numpy(), v.numpy(), mask=pattern.mask(45))
    for fn in (masked_sdpa, gather_attention):
        np.testing.assert_allclose(fn(q, k, v, pattern).numpy(), ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("pattern", [P.SlidingWindow(7, causal=True), P.BigBird(block=8, seed=1)], ids=repr)
def test_gather_gradients_match_dense_autograd(pattern):
    q, k, v = (t.requires_grad_() for t in qkv(H=4, H_kv=2))
    do = torch.randn_like(q)
    g1 = torch.autograd.grad(gather_attention(q, k, v, pattern), (q, k, v), do)
    rep = [t.repeat_interleave(2, 1) for t in (k, v)]  # GQA by hand for the dense path
    g2 = torch.autograd.grad(dense_torch(q, *rep, torch.as_tensor(pattern.mask(45))), (q, k, v), do)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_empty_rows_are_zero_not_nan():
    pattern = P.BlockSparse(np.array([[True, False], [False, False]]), 8)
    q, k, v = qkv(n=16)
    for fn in (masked_sdpa, gather_attention):
        out = fn(q, k, v, pattern)
        assert torch.isfinite(out).all() and torch.all(out[..., 8:, :] == 0)


def test_flex_on_cpu_matches_dense():
    pattern, n = P.SlidingWindow(16, causal=True), 128
    q, k, v = qkv(B=1, H=2, n=n, d=16, dtype=torch.float32)
    ref = dense_torch(q.double(), k.double(), v.double(), torch.as_tensor(pattern.mask(n)))
    out = flex(q, k, v, pattern)
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-5
    assert flex(q, k, v, pattern) is not None  # second call reuses the compiled function and BlockMask


def test_dispatch_numpy_torch_gather_and_auto(caplog):
    pattern = P.SlidingWindow(9, causal=True)
    q, k, v = qkv()
    ref = dense_attention(q.numpy(), k.numpy(), v.numpy(), mask=pattern.mask(45))
    out, used = sa.attention(q.numpy(), k.numpy(), v.numpy(), pattern, return_backend=True)
    assert used == "numpy" and isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-10)
    for backend in ("numpy", "torch", "gather"):
        np.testing.assert_allclose(sa.attention(q, k, v, pattern, backend=backend).numpy(), ref, rtol=1e-9,
                                   atol=1e-10)
    with caplog.at_level(logging.INFO, logger="saattn_edu.api"):
        _, used = sa.attention(q, k, v, pattern, return_backend=True)
    assert used == "torch" and "backend='torch'" in caplog.text


def test_auto_prefers_gather_for_long_cpu_training():
    from saattn_edu.api import choose_backend

    q = torch.zeros(1, 1, 4096, 8, requires_grad=True)
    assert choose_backend(q, P.Causal()) == "gather"
    assert choose_backend(q.detach(), P.Causal()) == "flex"


def test_dispatch_errors_name_the_value():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="'cuda-magic'"):
        sa.attention(q, k, v, P.Causal(), backend="cuda-magic")
    with pytest.raises(TypeError, match="numpy"):
        sa.attention(q.numpy(), k.numpy(), v.numpy(), P.Causal(), backend="gather")
    with pytest.raises(ValueError, match="multiple"):
        masked_sdpa(q, k[:, :1].repeat(1, 3, 1, 1), v[:, :1].repeat(1, 3, 1, 1), P.Causal())
