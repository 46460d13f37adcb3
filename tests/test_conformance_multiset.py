"""R.multiset_attention: a softmax over a key list with repeats equals dense attention over explicitly repeated keys."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saattn_edu import patterns as P
from saattn_edu import reference as R


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), d=st.integers(1, 6), seed=st.integers(0, 2**31 - 1), max_count=st.integers(1, 4))
def test_counts_equal_repeated_keys(n, d, seed, max_count):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
    mask = rng.random((n, n)) < 0.5
    csr = P.CSR.from_mask(mask)
    counts = rng.integers(1, max_count + 1, csr.nnz)
    out = R.multiset_attention(q, k, v, csr, counts)
    for i in range(n):  # row i by brute force: every key written out count times
        keys = np.repeat(csr.row(i), counts[csr.indptr[i] : csr.indptr[i + 1]])
        if len(keys) == 0:
            np.testing.assert_array_equal(out[i], 0)  # a row with no key: zeros, never NaN
            continue
        s = k[keys] @ q[i] / np.sqrt(d)
        p = np.exp(s - s.max())
        np.testing.assert_allclose(out[i], (p / p.sum()) @ v[keys], atol=1e-12)


def test_all_ones_is_sparse_attention_and_batches_work():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 3, 40, 8)) for _ in range(3))
    p = P.BigBird(block=4, random_blocks=1, seed=2)
    csr = p.neighbors(40)
    np.testing.assert_allclose(R.multiset_attention(q, k, v, csr, np.ones(csr.nnz)), R.sparse_attention(q, k, v, p),
                               atol=1e-12)


def test_bad_counts_are_named():
    q = np.ones((4, 2))
    csr = P.Causal().neighbors(4)
    with pytest.raises(ValueError, match="counts"):
        R.multiset_attention(q, q, q, csr, np.ones(3))
    with pytest.raises(ValueError, match="counts"):
        R.multiset_attention(q, q, q, csr, np.zeros(csr.nnz))
