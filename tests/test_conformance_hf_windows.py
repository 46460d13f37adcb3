"""Windows against Hugging Face (tiny random configs, no downloads): Mistral's sliding window (mask and decode
cache) and Longformer (key sets, outputs, and the layer with separate global projections)."""
import warnings

import numpy as np
import pytest

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.patterns import conventions as C

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from transformers import LongformerConfig, MistralConfig, MistralModel  # noqa: E402
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention  # noqa: E402

from saattn_edu.inference.kv_cache import RollingCache  # noqa: E402
from saattn_edu.models import SparseSelfAttention  # noqa: E402


# ---- Mistral ---------------------------------------------------------------------------------------------------------
def tiny_mistral(window):
    cfg = MistralConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=1, sliding_window=window,
                        max_position_embeddings=256)
    cfg._attn_implementation = "eager"  # eager returns the attention probabilities
    torch.manual_seed(window)
    return MistralModel(cfg).eval()


@pytest.mark.parametrize("window", [2, 4, 7])  # W=1: HF's decode keeps and attends to every past token
def test_mistral_sliding_window_mask_and_decode_cache(window):
    n, prompt = 20, 6
    model = tiny_mistral(window)
    ids = torch.randint(0, 50, (1, n), generator=torch.Generator().manual_seed(window))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HF renames past_key_values -> cache across versions
        full = model(ids, output_attentions=True)
        pattern = C.hf_sliding_window(window)  # Mistral's sliding_window=W: W keys, itself included
        np.testing.assert_array_equal(full.attentions[0][0].numpy() > 0, np.broadcast_to(pattern.mask(n), (2, n, n)))
        out = model(ids[:, :prompt], use_cache=True)
        cache, ours = out.past_key_values, RollingCache(window, num_kv_heads=1, head_dim=8)
        for t in range(n):
            _, _, key_pos = ours.update(torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8), t)
            seen = key_pos[ours.mask(torch.tensor([t]), key_pos)[0]]  # the keys our rolling cache serves
            np.testing.assert_array_equal(np.sort(np.asarray(seen)), pattern.neighbors(n).row(t))
            if t < prompt:
                continue
            step = model(ids[:, t : t + 1], past_key_values=cache, use_cache=True, output_attentions=True)
            cache = step.past_key_values
            probs = step.attentions[0][0, :, 0].numpy()  # (heads, cached keys): the new token's weights
            assert (probs > 0).sum(-1).tolist() == [min(window, t + 1)] * 2  # W keys: the last W-1 and itself
            assert (probs[:, -min(window, t + 1):] > 0).all()  # (HF trims its cache to W-1 past tokens for W > 1)
            np.testing.assert_allclose(step.last_hidden_state[0, 0], full.last_hidden_state[0, t], atol=1e-5)


# ---- Longformer ------------------------------------------------------------------------------------------------------
def hf_longformer(n_hidden, window, heads=1):
    cfg = LongformerConfig(hidden_size=n_hidden, num_attention_heads=heads, attention_window=[window],
                           attention_probs_dropout_prob=0.0)
    return LongformerSelfAttention(cfg, layer_id=0).eval()


def run_hf(layer, x, global_idx):
    n = x.shape[1]
    mask = torch.zeros(1, n)
    mask[0, list(global_idx)] = 10000.0  # LongformerModel's encoding: 0 local, > 0 global
    is_global = mask > 0
    with torch.no_grad():
        return layer(x, attention_mask=mask, is_index_masked=mask < 0, is_index_global_attn=is_global,
                     is_global_attn=bool(is_global.any()))[0]


@pytest.mark.parametrize("n,window,glob", [(32, 8, (0, 13)), (48, 16, (47,)), (24, 4, ())])
def test_longformer_key_sets_match_hf(n, window, glob):
    """q = k = 0 (local and global projections), v = identity: row i is 1/|keys| on exactly its keys, once each."""
    layer = hf_longformer(n, window)
    with torch.no_grad():
        for lin in (layer.query, layer.key, layer.query_global, layer.key_global):
            lin.weight.zero_()
            lin.bias.zero_()
        for lin in (layer.value, layer.value_global):
            lin.weight.copy_(torch.eye(n))
            lin.bias.zero_()
    got = run_hf(layer, torch.eye(n)[None], glob)[0].numpy()  # (n, n)
    mask = C.hf_longformer(window, glob).mask(n)
    np.testing.assert_allclose(got, mask / mask.sum(1, keepdims=True), atol=1e-6)


def layer_pair(n_hidden, heads, window, glob, separate):
    """HF's LongformerSelfAttention and our SparseSelfAttention with the same weights (our out-proj = identity)."""
    torch.manual_seed(0)
    hf = hf_longformer(n_hidden, window, heads)
    ours = SparseSelfAttention(n_hidden, heads, P.Longformer(window, glob), backend="torch",
                               global_projections=separate)
    with torch.no_grad():
        ours.qkv.weight.copy_(torch.cat([hf.query.weight, hf.key.weight, hf.value.weight]))
        ours.qkv.bias.copy_(torch.cat([hf.query.bias, hf.key.bias, hf.value.bias]))
        if separate:
            ours.qkv_global.weight.copy_(torch.cat([hf.query_global.weight, hf.key_global.weight,
                                                    hf.value_global.weight]))
            ours.qkv_global.bias.copy_(torch.cat([hf.query_global.bias, hf.key_global.bias, hf.value_global.bias]))
        else:  # HF with its global projections set equal to the local ones: the plain pattern
            for a, b in ((hf.query_global, hf.query), (hf.key_global, hf.key), (hf.value_global, hf.value)):
                a.load_state_dict(b.state_dict())
        ours.proj.weight.copy_(torch.eye(n_hidden))
        ours.proj.bias.zero_()
    return hf, ours


@pytest.mark.parametrize("separate", [True, False], ids=["global_projections", "shared_projections"])
def test_longformer_layer_outputs_match_hf(separate):
    n, d, heads, window, glob = 64, 16, 2, 16, (0, 5, 40)
    hf, ours = layer_pair(d, heads, window, glob, separate)
    x = torch.randn(1, n, d, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        np.testing.assert_allclose(ours(x).numpy(), run_hf(hf, x, glob).numpy(), atol=2e-5)
        if not separate:  # and then it is R.sparse_attention over P.Longformer
            q, k, v = (t.double().numpy() for t in ours.heads(x))
            ref = R.sparse_attention(q, k, v, P.Longformer(window, glob))  # (1, H, n, dh)
            np.testing.assert_allclose(ours(x).numpy(), ref.transpose(0, 2, 1, 3).reshape(1, n, d), atol=2e-5)


def test_global_projections_change_only_global_rows_and_validate():
    _, ours = layer_pair(16, 2, 8, (3,), True)
    _, plain = layer_pair(16, 2, 8, (3,), False)
    with torch.no_grad():
        plain.qkv_global = None
        plain.load_state_dict(ours.state_dict(), strict=False)
        x = torch.randn(1, 24, 16, generator=torch.Generator().manual_seed(1))
        diff = (ours(x) - plain(x)).abs().amax(-1)[0]
    assert diff[3] > 1e-3 and torch.all(diff[torch.arange(24) != 3] < 1e-6)
    probs = ours.probs(x)
    assert torch.allclose(probs.sum(-1), torch.ones(1, 2, 24))
    with pytest.raises(ValueError, match="global_projections"):
        SparseSelfAttention(16, 2, P.SlidingWindow(5), global_projections=True)
