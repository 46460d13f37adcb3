"""A learned selection (a CSR) wrapped as a Pattern runs on every path, the block-sparse kernel included."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from saattn_edu import patterns as P
from saattn_edu import reference as R


def _random_csr(rng, n, p=0.2):
    mask = rng.random((n, n)) < p
    mask[rng.integers(n)] = False  # an empty row
    return P.CSR.from_mask(mask), mask


@given(n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), block=st.integers(1, 9))
def test_views_equal_the_listed_pairs(n, seed, block):
    csr, mask = _random_csr(np.random.default_rng(seed), n)
    p = P.Listed(csr)
    assert np.array_equal(p.mask(n), mask)
    assert p.num_pairs(n) == mask.sum()
    ref = np.zeros((-(-n // block),) * 2, dtype=bool)
    for i, j in zip(*np.nonzero(mask)):
        ref[i // block, j // block] = True
    assert np.array_equal(p.block_layout(n, block), ref)


def test_torch_rule_and_flex_mask_agree():
    torch = pytest.importorskip("torch")
    from torch.nn.attention.flex_attention import create_mask

    csr, mask = _random_csr(np.random.default_rng(1), 50)
    p = P.Listed(csr)
    got = create_mask(p.mask_mod_for(50), None, None, 50, 50, device="cpu")[0, 0].numpy()
    assert np.array_equal(got, mask)
    i, j = torch.arange(50)[:, None], torch.arange(50)[None, :]
    assert np.array_equal(p.allowed(i, j, 50).numpy(), mask)


def test_lsh_selection_runs_on_the_numpy_and_kernel_paths():
    torch = pytest.importorskip("torch")
    pytest.importorskip("triton", reason="Triton is not installed (Linux x86-64 only)")
    import saattn_edu as sa

    rng = np.random.default_rng(0)
    n, d = 96, 16
    q, k, v = rng.standard_normal((3, n, d)).astype(np.float32)
    p = P.Listed(P.LSHBuckets(n_buckets=4, chunk=16, seed=3).build(q, k))
    ref = R.dense_attention(q, k, v, mask=p.mask(n))
    np.testing.assert_allclose(R.sparse_attention(q, k, v, p), ref, rtol=1e-5, atol=1e-5)
    dev = "cuda" if torch.cuda.is_available() else "cpu"  # without a GPU the kernel runs in the interpreter
    qt, kt, vt = (torch.from_numpy(x)[None, None].to(dev) for x in (q, k, v))
    out = sa.attention(qt, kt, vt, p, backend="triton")[0, 0].cpu().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(TypeError, match="csr"):
        P.Listed(np.zeros((3, 3), dtype=bool))
    p = P.Listed(P.CSR.from_mask(np.eye(4, dtype=bool)))
    with pytest.raises(ValueError, match="n must be 4"):
        p.mask(5)


@pytest.mark.parametrize("backend", ["torch", "gather", "flex"])
def test_a_bare_learned_csr_runs_on_every_torch_path(backend):
    """What LSHBuckets.build returns (a CSR, not wrapped) goes straight to sa.attention; compiled Flex included."""
    torch = pytest.importorskip("torch")
    import saattn_edu as sa

    rng = np.random.default_rng(np.random.SeedSequence().entropy)
    n, d = 128, 16
    q, k, v = rng.standard_normal((3, n, d)).astype(np.float32)
    csr = P.LSHBuckets(n_buckets=4, chunk=16, seed=int(rng.integers(2**31))).build(q, k)
    ref = R.dense_attention(q, k, v, mask=P.Listed(csr).mask(n))
    qt, kt, vt = (torch.from_numpy(x)[None, None] for x in (q, k, v))
    out = sa.attention(qt, kt, vt, csr, backend=backend)[0, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_attention_names_a_wrong_pattern_argument():
    import saattn_edu as sa

    q = np.ones((4, 2), dtype=np.float32) * np.arange(4, dtype=np.float32)[:, None]
    with pytest.raises(TypeError, match="pattern must be"):
        sa.attention(q, q, q, np.eye(4, dtype=bool))
