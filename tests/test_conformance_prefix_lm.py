"""P.PrefixLM: attention-gym's prefix LM (`kv_idx <= q_idx or kv_idx < prefix_length`), every view and path."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import saattn_edu as sa
from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.patterns.base import layout_from_csr


def gym_prefix_lm(prefix, n):
    """attention-gym `generate_prefix_lm_mask(prefix_length)`, re-derived pair by pair."""
    return np.array([[kv <= q or kv < prefix for kv in range(n)] for q in range(n)], dtype=bool).reshape(n, n)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 70), prefix=st.integers(0, 90), block=st.integers(1, 20))
def test_every_view_matches_the_rule(n, prefix, block):
    p = P.PrefixLM(prefix)
    want = gym_prefix_lm(prefix, n)
    np.testing.assert_array_equal(p.mask(n), want)
    csr = p.neighbors(n)
    np.testing.assert_array_equal(csr.to_mask(n), want)
    assert all((np.diff(csr.row(i)) > 0).all() for i in range(n))  # rows ascending
    assert p.num_pairs(n) == int(want.sum()) == csr.nnz
    if n:
        np.testing.assert_array_equal(p.block_layout(n, block), layout_from_csr(P.CSR.from_mask(want), block))


def test_not_causal_or_global_tokens():
    """Causal() | GlobalTokens(prefix) also lets the prompt rows read the answer: a prefix row sees only the prefix."""
    n, prefix = 12, 4
    wrong = (P.Causal() | P.GlobalTokens(range(prefix))).mask(n)
    right = P.PrefixLM(prefix).mask(n)
    assert (wrong & ~right).any() and not right[:prefix, prefix:].any()


def test_neighbors_is_linear_in_nnz():
    csr = P.PrefixLM(3000).neighbors(4000)  # nnz ≈ 9.0e6 + 3.5e6: built without any n×n array
    assert csr.nnz == P.PrefixLM(3000).num_pairs(4000)
    np.testing.assert_array_equal(csr.row(10), np.arange(3000))
    np.testing.assert_array_equal(csr.row(3999), np.arange(4000))


def test_bad_prefix_is_a_named_error():
    with pytest.raises(ValueError, match="prefix.*-1"):
        P.PrefixLM(-1)
    with pytest.raises(TypeError, match="prefix"):
        P.PrefixLM(2.5)


def rand_qkv(rng, shape):
    return [rng.standard_normal(shape) for _ in range(3)]


@pytest.mark.parametrize("n,prefix", [(45, 17), (40, 0), (30, 64)])
def test_numpy_torch_gather_paths_match_dense(n, prefix):
    torch = pytest.importorskip("torch")
    p = P.PrefixLM(prefix)
    q, k, v = rand_qkv(np.random.default_rng(n + prefix), (2, 2, n, 16))
    ref = R.dense_attention(q, k, v, mask=p.mask(n))
    np.testing.assert_allclose(R.sparse_attention(q, k, v, p), ref, atol=1e-10)
    np.testing.assert_allclose(sa.attention(q, k, v, p, backend="numpy"), ref, atol=1e-10)
    for backend in ("torch", "gather"):
        out = sa.attention(*(torch.from_numpy(x) for x in (q, k, v)), p, backend=backend)
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)


def test_flex_mask_mod_and_block_mask_match_dense():
    """The pattern's mask_mod through FlexAttention (eager here: compiling costs ~60 s on 2 CPU cores; the
    compiled `accel.flex` path evaluates the same mask_mod)."""
    torch = pytest.importorskip("torch")
    flex_attention = pytest.importorskip("torch.nn.attention.flex_attention")
    n, p = 128, P.PrefixLM(50)
    block_mask = flex_attention.create_block_mask(p.mask_mod, None, None, n, n, device="cpu", BLOCK_SIZE=32)
    dense_blocks = block_mask.to_dense()[0, 0].numpy().astype(bool)  # (nb, nb) blocks Flex will visit
    np.testing.assert_array_equal(dense_blocks, p.block_layout(n, 32))
    q, k, v = (torch.from_numpy(x) for x in rand_qkv(np.random.default_rng(1), (1, 2, n, 16)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager Flex warns that it is not compiled
        out = flex_attention.flex_attention(q, k, v, block_mask=block_mask)
    np.testing.assert_allclose(out.numpy(), R.dense_attention(q.numpy(), k.numpy(), v.numpy(), mask=p.mask(n)),
                               atol=1e-10)


@pytest.mark.triton
def test_triton_kernel_forward_and_gradients_in_the_interpreter():
    torch = pytest.importorskip("torch")
    pytest.importorskip("triton")
    from saattn_edu.accel import block_sparse_flash as bsf

    n, p = 150, P.PrefixLM(70)  # 150 ends inside a tile; the prefix ends inside one too
    g = torch.Generator().manual_seed(0)
    q, k, v, do = (torch.randn(1, 1, n, 64, generator=g, dtype=torch.float64) for _ in range(4))
    leaves = [t.float().requires_grad_() for t in (q, k, v)]
    out = bsf.block_sparse_flash(*leaves, p)
    grads = torch.autograd.grad(out, leaves, do.float())
    ref_leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    s = ref_leaves[0] @ ref_leaves[1].transpose(-1, -2) / math.sqrt(64)
    ref = torch.softmax(s.masked_fill(~torch.as_tensor(p.mask(n)), float("-inf")), -1) @ ref_leaves[2]
    ref_grads = torch.autograd.grad(ref, ref_leaves, do)
    for a, b in zip([out, *grads], [ref, *ref_grads]):
        assert float((a.detach().double() - b.detach()).norm() / b.detach().norm()) < 1e-4
