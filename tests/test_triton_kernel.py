"""The Triton block-sparse kernel (forward + backward) against float64 autograd of dense masked attention.

Without a GPU the kernels run in Triton's interpreter (~9 ms per tile iteration): sizes stay small (n <= 320,
tiles of 64, B·H <= 4). Every pattern family of the course is checked on fresh random inputs.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the Triton kernel needs torch")
pytest.importorskip("triton", reason="Triton is not installed (Linux x86-64 only): kernel tests skipped")

from saattn_edu import patterns as P  # noqa: E402
from saattn_edu.accel import block_sparse_flash as bsf  # noqa: E402
from saattn_edu.accel.permute import permutation, strided_flash  # noqa: E402

pytestmark = pytest.mark.triton
DEV = "cuda" if torch.cuda.is_available() else "cpu"
TOL = 1e-4  # fp32 relative error (CPU interpreter: exact fp32 dots)


def dense_torch(q, k, v, mask):
    """Dense masked softmax attention with autograd; fully masked rows give 0."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    p = torch.softmax(s.masked_fill(~mask, float("-inf")), -1)
    return torch.nan_to_num(p, nan=0.0) @ v


def rel(a, b):
    return float((a.detach().double() - b.detach().double()).norm() / b.double().norm().clamp_min(1e-30))


def check(fn, pattern, n, B=1, H=2, H_kv=1, D=64, dtype=torch.float32, tol=TOL, seed=0):
    """Forward and dq, dk, dv of fn(q, k, v) vs float64 dense autograd; returns the output."""
    g = torch.Generator().manual_seed(seed)
    mk = lambda h: torch.randn(B, h, n, D, generator=g, dtype=torch.float64)  # noqa: E731
    q, k, v, do = mk(H), mk(H_kv), mk(H_kv), mk(H)
    leaves = [t.to(DEV, dtype).requires_grad_() for t in (q, k, v)]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, leaves, do.to(DEV, dtype))
    ref_leaves = [t.requires_grad_() for t in (q, k, v)]
    ref = dense_torch(*ref_leaves, torch.as_tensor(pattern.mask(n)))
    ref_grads = torch.autograd.grad(ref, ref_leaves, do)
    assert out.dtype == dtype and out.shape == (B, H, n, D)
    assert rel(out.cpu(), ref) <= tol, ("out", rel(out.cpu(), ref))
    for name, a, b in zip("qkv", grads, ref_grads):
        assert torch.isfinite(a).all()
        assert rel(a.cpu(), b) <= tol, (f"d{name}", rel(a.cpu(), b))
    return out


def _bigbird_layout():
    return np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)  # last row block empty


FAMILIES = {  # tiles of 64: n = 128 is two full tiles; 150 / 200 end inside a tile
    "dense": (P.Dense(), 150),
    "causal": (P.Causal(), 128),
    "sliding_causal": (P.SlidingWindow(40, causal=True), 150),
    "sliding": (P.SlidingWindow(33), 128),
    "dilated": (P.DilatedWindow(8, 3, causal=True), 128),
    "global": (P.GlobalTokens([0, 70, 127]), 128),
    "strided": (P.Strided(16), 128),
    "fixed": (P.Fixed(32, 4), 128),
    "random": (P.RandomPattern(5, seed=1), 150),
    "block_sparse": (P.BlockSparse(_bigbird_layout(), 50), 200),
    "bigbird": (P.BigBird(block=32, window_blocks=3, global_blocks=1, random_blocks=2, seed=3), 128),
    "longformer": (P.Longformer(32, global_indices=(0, 5)), 128),
    "sinks": (P.AttentionSinks(4, 32), 128),
    "local2d": (P.Local2D(8, 16, 2), 128),
    "axial2d": (P.Axial2D(8, 16), 128),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_forward_and_gradients(name):
    pattern, n = FAMILIES[name]
    check(lambda q, k, v: bsf.block_sparse_flash(q, k, v, pattern), pattern, n, H=1)


def test_empty_rows_give_zero_and_finite_gradients():
    pattern, n = FAMILIES["block_sparse"]
    out = check(lambda q, k, v: bsf.block_sparse_flash(q, k, v, pattern), pattern, n, H=1)
    assert torch.all(out[..., 150:, :] == 0)


@pytest.mark.parametrize("pattern,n", [(P.Strided(8), 100), (P.Strided(8, causal=False), 70)])
def test_strided_permuted_path_matches_dense(pattern, n):
    check(lambda q, k, v: strided_flash(q, k, v, pattern), pattern, n, H=2, H_kv=1)


@pytest.mark.slow
@pytest.mark.parametrize("pattern,n", [(P.Strided(32, causal=False), 256), (P.Strided(64), 320)])
def test_strided_permuted_path_larger(pattern, n):
    check(lambda q, k, v: strided_flash(q, k, v, pattern), pattern, n)


def test_batch_heads_gqa_head_dim_128():
    pattern = P.SlidingWindow(70, causal=True)
    check(lambda q, k, v: bsf.block_sparse_flash(q, k, v, pattern), pattern, 100, B=2, H=2, H_kv=1, D=128)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precisions(dtype):
    pattern = P.Causal()
    check(lambda q, k, v: bsf.block_sparse_flash(q, k, v, pattern), pattern, 128, H=1, dtype=dtype, tol=1e-2)


def test_scale_argument():
    pattern, n = P.Causal(), 64
    q, k, v = (torch.randn(1, 1, n, 64, device=DEV) for _ in range(3))
    out = bsf.block_sparse_flash(q, k, v, pattern, scale=0.05)
    ref = dense_torch(q.cpu().double() * (0.05 * 8), k.cpu().double(), v.cpu().double(),
                      torch.as_tensor(pattern.mask(n)))  # dense_torch divides by sqrt(64) = 8
    assert rel(out.cpu(), ref) <= TOL


def test_plan_matches_block_layout_and_marks_full_tiles():
    from saattn_edu.accel.block_plan import build_plan, pattern_rule

    pattern, n = P.SlidingWindow(100, causal=True), 300
    plan = build_plan(pattern_rule(pattern, n), n, 64, 64, "cpu")
    layout = pattern.block_layout(n, 64)
    assert plan.n_active == int(layout.sum()) and plan.n_tiles == layout.size
    mask = pattern.mask(n)
    rows = plan.rows
    for t in range(layout.shape[0]):
        full = rows.full_idx[rows.full_ptr[t]:rows.full_ptr[t + 1]].tolist()
        part = rows.part_idx[rows.part_ptr[t]:rows.part_ptr[t + 1]].tolist()
        assert sorted(full + part) == np.flatnonzero(layout[t]).tolist()
        for j in full:  # full tiles lie inside the sequence and allow every pair
            assert mask[t * 64:(t + 1) * 64, j * 64:(j + 1) * 64].all() and (t + 1) * 64 <= n and (j + 1) * 64 <= n
    assert plan.masks.shape[1:] == (64, 64)


def test_permutation_groups_residues():
    assert permutation(7, 3).tolist() == [0, 3, 6, 1, 4, 2, 5]


def test_bad_inputs_raise_naming_the_problem():
    q = torch.randn(1, 2, 64, 64)
    with pytest.raises(ValueError, match="D must be"):
        bsf.block_sparse_flash(torch.randn(1, 1, 64, 48), torch.randn(1, 1, 64, 48), torch.randn(1, 1, 64, 48),
                               P.Causal())
    with pytest.raises(ValueError, match="H_kv"):
        bsf.block_sparse_flash(q, torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64), P.Causal())
    with pytest.raises(TypeError, match="float16"):
        bsf.block_sparse_flash(q.double(), q.double(), q.double(), P.Causal())
    with pytest.raises(ValueError, match="stride"):
        strided_flash(q, q, q, P.Causal())


def test_api_triton_backend_dispatches_strided_to_the_permuted_path():
    import saattn_edu as sa

    q = torch.randn(2, 100, 64, device=DEV)  # (H, n, d): the dispatcher adds the batch axis
    for pattern in (P.Strided(8), P.SlidingWindow(20, causal=True)):
        out = sa.attention(q, q, q, pattern, backend="triton")
        ref = sa.attention(q, q, q, pattern, backend="torch")
        assert out.shape == q.shape and rel(out.cpu(), ref.cpu()) <= TOL


@pytest.mark.parametrize("bwd", [(32, 64, 64, 32, 4, 1), (64, 32, 32, 64, 4, 1)])
def test_backward_with_different_dkdv_and_dq_tiles(monkeypatch, bwd):
    """dK/dV and dQ programs may use different tile shapes (and plans); gradients stay exact."""
    monkeypatch.setitem(bsf.CONFIGS["cpu" if DEV == "cpu" else 64], "bwd", bwd)  # D = 64 below
    pattern = P.Longformer(24, global_indices=(0, 3))  # full, partial and global tiles, n ends inside a tile
    check(lambda q, k, v: bsf.block_sparse_flash(q, k, v, pattern), pattern, 150, H=2, H_kv=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="with a GPU, CPU tensors are an input error (no interpreter)")
def test_cpu_tensors_on_a_gpu_machine_name_the_problem():
    x = torch.randn(1, 1, 64, 64)
    with pytest.raises(ValueError, match="CUDA tensors"):
        bsf.block_sparse_flash(x, x, x, P.Causal())
