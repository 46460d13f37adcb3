"""The descriptor (TMA) forward kernel of block_sparse_hopper.py against the pointer kernel and dense attention.

On a Hopper GPU `_forward` runs it for plain-order passes; without one the same @triton.jit code runs in Triton's
interpreter (descriptor loads included), so these tests check its math on CPU at small sizes, with fresh inputs:
ragged ends (n not a multiple of the tiles), fully masked rows (zeros and lse -inf, never NaN), GQA, and a NaN key
that only some queries may see.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the Triton kernel needs torch")
pytest.importorskip("triton", reason="Triton is not installed (Linux x86-64 only): kernel tests skipped")

from saattn_edu import patterns as P  # noqa: E402
from saattn_edu.accel import block_sparse_flash as bsf  # noqa: E402
from saattn_edu.accel import block_sparse_hopper as hop  # noqa: E402

pytestmark = pytest.mark.triton
DEV = "cuda" if torch.cuda.is_available() else "cpu"
if DEV == "cuda" and torch.cuda.get_device_capability()[0] < 9:
    pytest.skip("descriptor loads need sm_90 or newer on a GPU", allow_module_level=True)


def _layout_with_empty_rows(rng, n, block):
    nb = -(-n // block)
    layout = rng.random((nb, nb)) < 0.4
    layout[rng.choice(nb, 2, replace=False)] = False  # two query blocks see nothing
    return P.BlockSparse(layout, block)


def _run(pattern, n, H=2, H_kv=1, D=16, seed=0, tiles=(32, 16, 4, 1)):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, H, n, D, generator=g) * 2
    k, v = (torch.randn(1, H_kv, n, D, generator=g) for _ in range(2))
    q, k, v = (t.to(DEV) for t in (q, k, v))
    ps = bsf.Pass.plain(pattern, n)
    o, lse = hop.forward_tma(q, k, v, ps.plan(tiles[0], tiles[1], q.device), 1 / math.sqrt(D), tiles)
    return q, k, v, o, lse


def _dense(q, k, v, mask):
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1).double(), v.repeat_interleave(g, 1).double()
    s = (q.double() @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, -1)
    return torch.nan_to_num(torch.softmax(s, -1), nan=0.0) @ v, lse


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", ["causal", "sliding", "layout", "gqa"])
def test_descriptor_forward_matches_dense(kind, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(70, 130)) | 1  # odd: never a multiple of the tiles
    pattern = {"causal": P.Causal(), "sliding": P.SlidingWindow(int(rng.integers(10, 40)), causal=True),
               "layout": _layout_with_empty_rows(rng, n, int(rng.choice([12, 20, 24]))),
               "gqa": P.Longformer(16, global_indices=[0, 3])}[kind]
    q, k, v, o, lse = _run(pattern, n, H=4 if kind == "gqa" else 2, H_kv=2 if kind == "gqa" else 1, seed=seed)
    mask = torch.as_tensor(pattern.mask(n), device=q.device)
    ref, ref_lse = _dense(q, k, v, mask)
    assert torch.isfinite(o).all()
    assert torch.allclose(o.double(), ref, rtol=1e-4, atol=1e-5)
    empty = ~mask.any(-1)
    assert torch.isneginf(lse[..., empty]).all()
    assert torch.allclose(lse[..., ~empty].double() / bsf.LOG2E, ref_lse[..., ~empty], rtol=1e-4, atol=1e-5)


def test_descriptor_forward_never_reads_a_hidden_nan_key():
    n = 90
    pattern = P.SlidingWindow(12, causal=True)
    q, k, v, _, _ = _run(pattern, n)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 50] = float("nan")  # a key seen by queries 50..61 only (values: as the pointer kernel, p = 0 times v)
    ps = bsf.Pass.plain(pattern, n)
    o, _ = hop.forward_tma(q, k2, v2, ps.plan(32, 16, q.device), 0.25, (32, 16, 4, 1))
    bad = ~torch.isfinite(o).all(-1)[0, 0]
    assert bad[50:62].all() and not bad[:50].any() and not bad[62:].any()


def test_descriptors_only_where_they_apply():
    q = torch.zeros(1, 1, 8, 16)
    assert not hop.use_descriptors(q, 1)  # a CPU tensor: the pointer kernel (interpreter) serves
