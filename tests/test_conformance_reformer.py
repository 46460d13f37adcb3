"""P.LSHBuckets / R.lsh_attention against Hugging Face's LSHSelfAttention (tiny random ReformerConfig, no downloads).

The probe: hashing is scale-invariant, so queries scaled by 1e-4 keep their buckets while every score becomes ~0;
with one-hot values (v = identity) HF's output row i is then count(i, j) / Σ_j count(i, j): the key set AND how
many times each key is listed. Rotations are HF's own draw (torch.manual_seed(hash_seed); torch.randn).
"""
import numpy as np
import pytest

from saattn_edu import patterns as P
from saattn_edu import reference as R

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from transformers import ReformerConfig  # noqa: E402
from transformers.models.reformer.modeling_reformer import LSHSelfAttention  # noqa: E402


def hf_layer(d, n_buckets, n_hashes, chunk, seed, causal, hidden):
    cfg = ReformerConfig(attn_layers=["lsh"], hidden_size=hidden, num_attention_heads=1, attention_head_size=d,
                         num_buckets=n_buckets, num_hashes=n_hashes, lsh_attn_chunk_length=chunk,
                         lsh_num_chunks_before=1, lsh_num_chunks_after=0, hash_seed=seed, is_decoder=causal,
                         lsh_attention_probs_dropout_prob=0.0, max_position_embeddings=4096)
    return LSHSelfAttention(cfg).eval()


def hf_rotations(d, n_buckets, n_hashes, seed):
    """The rotations HF draws: (heads=1, d, n_hashes, b/2) -> ours (n_hashes, d, b/2)."""
    torch.manual_seed(seed)
    return torch.randn(1, d, n_hashes, n_buckets // 2)[0].permute(1, 0, 2).numpy()


def hf_out(layer, x):
    with torch.no_grad():
        return layer(torch.from_numpy(x)[None]).hidden_states[0].numpy()


def self_only_rows(csr):
    return np.array([list(csr.row(i)) == [i] for i in range(csr.n)])


CASES = [  # (n, n_buckets, n_hashes, chunk, seed, causal)
    (64, 4, 1, 8, 0, False), (64, 8, 2, 8, 1, False), (96, 4, 3, 16, 2, True), (32, 2, 2, 16, 3, False),
    (48, 6, 4, 8, 4, True), (16, 4, 2, 16, 5, False),  # the last: one chunk, attended in full
]


@pytest.mark.parametrize("n,b,h,chunk,seed,causal", CASES)
def test_lsh_key_sets_and_counts_match_hf(n, b, h, chunk, seed, causal):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, n)).astype(np.float32)  # head size n, so values can be one-hot
    layer = hf_layer(n, b, h, chunk, seed, causal, hidden=2 * n)
    with torch.no_grad():  # qk = 1e-4·q (same buckets, scores ~0), v = identity
        layer.query_key.weight.copy_(torch.cat([torch.eye(n) * 1e-4, torch.zeros(n, n)], 1))
        layer.value.weight.copy_(torch.cat([torch.zeros(n, n), torch.eye(n)], 1))
    got = hf_out(layer, np.concatenate([q, np.eye(n, dtype=np.float32)], 1))  # (n, n)
    m = P.LSHBuckets(b, h, chunk, seed, causal=causal)
    csr, counts = m.key_counts(q, rotations=hf_rotations(n, b, h, seed))
    want = np.zeros((n, n))
    want[csr.row_ids(), csr.indices] = counts
    np.testing.assert_array_equal(got > 1e-3 / n, want > 0)  # the key sets
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), rtol=1e-2, atol=1e-4)  # multiplicities


@pytest.mark.parametrize("n,b,h,chunk,seed,causal", CASES)
def test_lsh_outputs_match_hf(n, b, h, chunk, seed, causal):
    d = 8
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    layer = hf_layer(d, b, h, chunk, seed, causal, hidden=16)
    got = hf_out(layer, x)
    with torch.no_grad():
        qk, v = (lin(torch.from_numpy(x)).numpy() for lin in (layer.query_key, layer.value))
    m = P.LSHBuckets(b, h, chunk, seed, causal=causal)
    rot = hf_rotations(d, b, h, seed)
    ours = R.lsh_attention(qk, v, m, rotations=rot)
    alone = self_only_rows(m.build(qk, rotations=rot))  # HF: every round's logsumexp is ≈ -1e5 there, and fp32
    np.testing.assert_allclose(ours[~alone], got[~alone], atol=2e-5)  # rounding at 1e5 leaves the merge ≈ 0.3 %
    np.testing.assert_allclose(ours[alone], got[alone], rtol=1e-2, atol=1e-4)  # off (row 0 of a decoder)
    if h > 1 and n > chunk:  # the set union is a different attention (the old docstring's claim was wrong)
        union = P.LSHBuckets(b, h, chunk, seed, causal=causal, merge="union")
        assert np.abs(R.lsh_attention(qk, v, union, rotations=rot) - got).max() > 1e-4


def test_teaching_variant_is_the_simple_rule():
    """Same bucket, own + previous chunk of each round alone, self kept, a set: every pair listed once."""
    q = np.random.default_rng(9).standard_normal((40, 6))
    m = P.LSHBuckets.teaching(4, 2, 8, seed=1)
    csr, counts = m.key_counts(q)
    assert (counts == 1).all() and all(i in csr.row(i) for i in range(40))
    qb, _ = m.select(q)
    rows = csr.row_ids()
    assert np.isin(qb[:, rows] == qb[:, csr.indices], True).any(0).all()  # some round shares the bucket
