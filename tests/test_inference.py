"""KV caches, GQA, decoding vs recomputation, memory math (saattn_edu.inference)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from saattn_edu import inference as I
from saattn_edu import patterns as P
from saattn_edu import reference as R

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: a second OpenMP thread only adds barrier waits (100x slower on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CFG = I.DecoderConfig(vocab_size=48, n_layer=2, n_head=4, n_kv_head=2, head_dim=8)


def _cache(kind, W=5, S=2, Hkv=2, d=3, B=1, max_tokens=64, dtype=torch.float64):
    return I.make_cache(kind, num_kv_heads=Hkv, head_dim=d, max_tokens=max_tokens, window=W, num_sinks=S,
                        batch=B, dtype=dtype)


def _tagged(pos, t, B=1, Hkv=2, d=3):
    """k whose every entry encodes its token position (and batch/head), so reads can be checked exactly."""
    p = torch.arange(pos, pos + t, dtype=torch.float64)[None, None, :, None]  # (1, 1, t, 1)
    tag = 1000 * torch.arange(B)[:, None, None, None] + 100 * torch.arange(Hkv)[None, :, None, None]
    return (p + tag + 0.1 * torch.arange(d)).expand(B, Hkv, t, d).clone()  # (B, Hkv, t, d)


def _expected_held(kind, next_pos, W, S):
    if kind == "full":
        return list(range(next_pos))
    if kind == "rolling":
        return list(range(max(0, next_pos - W), next_pos))
    return list(range(min(S, next_pos))) + list(range(max(S, next_pos - W), next_pos))


# ---- cache bookkeeping: write slots, read order -----------------------------------------------------------------
@given(kind=st.sampled_from(I.CACHE_KINDS), W=st.integers(1, 7), S=st.integers(0, 3),
       chunks=st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_cache_reads_back_held_tokens_in_order(kind, W, S, chunks):
    cache, pos = _cache(kind, W, S, B=2), 0
    for t in chunks:
        keys, values, key_pos = cache.update(_tagged(pos, t, B=2), -_tagged(pos, t, B=2), pos)
        assert key_pos.tolist() == _expected_held(kind, pos, W, S) + list(range(pos, pos + t))  # old + chunk
        assert torch.equal(keys, _tagged(0, pos + t, B=2)[:, :, key_pos])
        pos += t
        k, v, held = cache.read()
        assert held.tolist() == _expected_held(kind, pos, W, S) and len(cache) == len(held)
        assert torch.equal(k, _tagged(0, pos, B=2)[:, :, held]) and torch.equal(v, -k)


def test_rolling_slot_is_position_mod_window():
    cache = _cache("rolling", W=4)
    for p in range(11):
        cache.update(_tagged(p, 1), _tagged(p, 1))
    assert cache.k[0, 0, :, 0].tolist() == [8, 9, 10, 7]  # slot p % 4 holds the newest p with that residue
    assert cache.slot_of(cache.held_positions(11)).tolist() == [3, 0, 1, 2]  # read order: oldest first


def test_sink_cache_keeps_sinks_in_their_slots():
    cache = _cache("sinks", W=3, S=2)
    cache.update(_tagged(0, 9), _tagged(0, 9))
    assert cache.k[0, 0, :, 0].tolist() == [0, 1, 8, 6, 7]  # position p >= 2 sits in slot 2 + (p - 2) % 3
    cache.update(_tagged(9, 1), _tagged(9, 1))
    assert cache.k[0, 0, :, 0].tolist() == [0, 1, 8, 9, 7]  # 9 overwrites 6, the oldest recent token
    assert cache.read()[2].tolist() == [0, 1, 7, 8, 9]


@pytest.mark.parametrize("kind, pattern", [
    ("full", P.Causal()), ("rolling", P.SlidingWindow(5, causal=True)), ("sinks", P.AttentionSinks(2, 5))])
def test_cache_mask_is_the_patterns_rule(kind, pattern):
    cache = _cache(kind, W=5, S=2)
    assert cache.pattern == pattern
    n = 13
    cache.update(_tagged(0, 9), _tagged(0, 9))
    _, _, key_pos = cache.update(_tagged(9, 4), _tagged(9, 4))
    m = cache.mask(torch.arange(9, n), key_pos).numpy()  # (4, L)
    assert np.array_equal(m, pattern.mask(n)[9:, key_pos.numpy()])
    # every key the pattern allows for these queries is present in the cache read
    assert pattern.mask(n)[9:].sum() == m.sum()


# ---- GQA ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("H, Hkv", [(4, 4), (4, 2), (6, 3), (4, 1)])
def test_grouped_attention_matches_numpy_reference(H, Hkv):
    g = torch.Generator().manual_seed(H * 10 + Hkv)
    q = torch.randn(2, H, 7, 5, generator=g, dtype=torch.float64)
    k, v = (torch.randn(2, Hkv, 9, 5, generator=g, dtype=torch.float64) for _ in range(2))
    mask = torch.rand(7, 9, generator=g) < 0.6
    mask[3] = False  # a row with no allowed key gives 0, never NaN
    out = I.grouped_attention(q, k, v, mask)
    kr, vr = I.repeat_kv(k, H // Hkv), I.repeat_kv(v, H // Hkv)
    ref = R.dense_attention(q.numpy(), kr.numpy(), vr.numpy(), mask=mask.numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    assert torch.all(out[:, :, 3] == 0)
    for h in range(H):  # query head h reads KV head h // (H // Hkv)
        assert torch.equal(kr[:, h], k[:, I.kv_head_for(h, H, Hkv)])


def test_gqa_errors():
    with pytest.raises(ValueError, match="num_heads=6 must be a multiple of num_kv_heads=4"):
        I.group_size(6, 4)
    with pytest.raises(ValueError, match="q_head"):
        I.kv_head_for(8, 8, 2)
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        I.tiny_decoder(I.DecoderConfig(n_head=4, n_kv_head=3))
    q, k = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 5, 8)
    with pytest.raises(ValueError, match="mask must have shape"):
        I.grouped_attention(q, k, k, torch.ones(3, 4, dtype=torch.bool))


# ---- decoding == recomputation with the cache's pattern -------------------------------------------------------
CASES = [("full", dict(max_tokens=64), P.Causal()),
         ("rolling", dict(window=7), P.SlidingWindow(7, causal=True)),
         ("sinks", dict(num_sinks=3, window=7), P.AttentionSinks(3, 7))]


@pytest.fixture(scope="module")
def model32():
    return I.tiny_decoder(CFG, seed=1)


@pytest.fixture(scope="module")
def model64():
    return I.tiny_decoder(CFG, seed=1, dtype=torch.float64)


@pytest.mark.parametrize("kind, kwargs, pattern", CASES)
@pytest.mark.parametrize("chunk", [1, 4, 7, 32])
def test_decode_logits_equal_recomputation_fp32(model32, kind, kwargs, pattern, chunk):
    """fp32: equal up to rounding (the cache sums over fewer, zero-free terms than the masked n-long rows)."""
    prompt = I.random_tokens(2, 23, CFG.vocab_size, seed=chunk)
    tokens, logits = I.generate(model32, prompt, 17, model32.make_caches(kind, batch=2, **kwargs), chunk=chunk)
    assert tokens.shape == (2, 40) and logits.shape == (2, 40, CFG.vocab_size)
    ref = I.recompute_logits(model32, tokens, pattern)
    scale = ref.abs().max().item()
    assert (logits - ref).abs().max().item() <= 1e-5 * scale


@pytest.mark.parametrize("kind, kwargs, pattern", CASES)
def test_decode_logits_equal_recomputation_fp64(model64, kind, kwargs, pattern):
    prompt = I.random_tokens(1, 30, CFG.vocab_size, seed=3)
    tokens, logits = I.generate(model64, prompt, 10, model64.make_caches(kind, **kwargs), chunk=5)
    ref = I.recompute_logits(model64, tokens, pattern)
    torch.testing.assert_close(logits, ref, rtol=1e-12, atol=1e-12)


def test_equality_is_not_vacuous(model32):
    """Past the window, rolling-cache logits really differ from full causal attention (the test can fail)."""
    tokens = I.random_tokens(1, 30, CFG.vocab_size, seed=4)
    rolled = I.prefill(model32, tokens, model32.make_caches("rolling", window=7), chunk=6)
    causal = I.recompute_logits(model32, tokens, P.Causal())
    assert (rolled[:, :7] - causal[:, :7]).abs().max() < 1e-5  # inside the window they agree
    assert (rolled[:, 7:] - causal[:, 7:]).abs().max() > 1e-2
    sinks = I.prefill(model32, tokens, model32.make_caches("sinks", num_sinks=3, window=7), chunk=6)
    assert (sinks[:, 10:] - rolled[:, 10:]).abs().max() > 1e-2  # sinks change what the window alone gives


def test_chunked_prefill_equals_token_by_token(model32):
    tokens = I.random_tokens(1, 20, CFG.vocab_size, seed=5)
    one = I.prefill(model32, tokens, model32.make_caches("sinks", num_sinks=2, window=6), chunk=1)
    big = I.prefill(model32, tokens, model32.make_caches("sinks", num_sinks=2, window=6), chunk=20)
    assert (one - big).abs().max() < 1e-5


# ---- bad input ------------------------------------------------------------------------------------------------
def test_full_cache_past_capacity():
    cache = _cache("full", max_tokens=8)
    cache.update(_tagged(0, 6), _tagged(0, 6))
    with pytest.raises(ValueError, match=r"max_tokens=8.*positions 6\.\.8"):
        cache.update(_tagged(6, 3), _tagged(6, 3))
    assert cache.next_pos == 6  # a refused write leaves the cache as it was


def test_mismatched_heads_and_shapes():
    cache = _cache("rolling", Hkv=2)
    with pytest.raises(ValueError, match="4 heads but the cache was built with num_kv_heads=2"):
        cache.update(torch.zeros(1, 4, 1, 3), torch.zeros(1, 4, 1, 3))
    with pytest.raises(ValueError, match="k and v"):
        cache.update(torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match="head_dim=5"):
        cache.update(torch.zeros(1, 2, 1, 5), torch.zeros(1, 2, 1, 5))


@pytest.mark.parametrize("kind", I.CACHE_KINDS)
def test_positions_going_backwards_or_skipping(kind):
    cache = _cache(kind)
    cache.update(_tagged(0, 4), _tagged(0, 4), 0)
    with pytest.raises(ValueError, match="pos=2 goes backwards"):
        cache.update(_tagged(2, 1), _tagged(2, 1), 2)
    with pytest.raises(ValueError, match="pos=6 skips positions 4..5"):
        cache.update(_tagged(6, 1), _tagged(6, 1), 6)
    cache.reset()
    cache.update(_tagged(0, 1), _tagged(0, 1), 0)  # after reset a new sequence starts at 0


def test_constructor_and_factory_errors(model32):
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        I.RollingCache(0, 2, 8)
    with pytest.raises(TypeError, match="num_kv_heads must be an integer"):
        I.FullCache(8, 2.0, 8)
    with pytest.raises(ValueError, match="kind must be one of"):
        _cache("paged")
    with pytest.raises(ValueError, match="needs max_tokens"):
        I.make_cache("full", num_kv_heads=1, head_dim=4)
    with pytest.raises(ValueError, match="one cache per layer"):
        model32(torch.zeros(1, 1, dtype=torch.long), caches=model32.make_caches("rolling", window=4)[:1])
    with pytest.raises(ValueError, match="exactly one of"):
        model32(torch.zeros(1, 1, dtype=torch.long))


# ---- memory math -----------------------------------------------------------------------------------------------
def test_memory_formula_on_real_shapes():
    mistral = I.MODEL_SHAPES["mistral-7b"]
    assert I.kv_cache_bytes(32, 8, 128, 4096, "bf16") == 32 * 2 * 8 * 128 * 4096 * 2 == 512 * 2**20
    assert mistral.kv_bytes(I.cached_tokens("rolling", 10**6, mistral.window)) == 512 * 2**20  # any length
    assert mistral.bytes_per_token() == 128 * 1024  # 128 KiB per token
    llama2 = I.MODEL_SHAPES["llama-2-7b"]  # MHA: 4x the GQA cache of the same size of model
    assert llama2.kv_bytes(4096) == 4 * mistral.kv_bytes(4096) == 2 * 2**30
    assert I.cached_tokens("sinks", 100, window=64, num_sinks=4) == 68
    assert I.cached_tokens("sinks", 10, window=64, num_sinks=4) == 10
    with pytest.raises(ValueError, match="dtype must be one of"):
        I.kv_cache_bytes(1, 1, 1, 1, "fp12")
    with pytest.raises(ValueError, match="tokens must be >= 0"):
        I.kv_cache_bytes(1, 1, 1, -1)


@pytest.mark.parametrize("kind, kwargs, tokens", [
    ("full", dict(max_tokens=50), 50), ("rolling", dict(window=7), 7), ("sinks", dict(num_sinks=3, window=7), 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_measured_cache_bytes_match_formula(kind, kwargs, tokens, dtype):
    model = I.tiny_decoder(CFG, dtype=dtype)
    caches = model.make_caches(kind, batch=3, **kwargs)
    I.prefill(model, I.random_tokens(3, 40, CFG.vocab_size), caches, chunk=16)
    measured = sum(c.nbytes for c in caches)
    assert measured == I.kv_cache_bytes(CFG.n_layer, CFG.n_kv_head, CFG.head_dim, tokens, dtype, batch=3)


def test_measure_decode_rows(model32):
    rows = I.decode_benchmark(model32, [20, 40], steps=3, window=8, num_sinks=2, repeats=1)
    assert [(r["kind"], r["context"]) for r in rows] == [(k, n) for k in I.CACHE_KINDS for n in (20, 40)]
    by = {(r["kind"], r["context"]): r for r in rows}
    assert by["full", 40]["held_tokens"] == 43 and by["rolling", 40]["held_tokens"] == 8
    assert by["sinks", 20]["cache_bytes"] == by["sinks", 40]["cache_bytes"] < by["full", 40]["cache_bytes"]
    assert all(r["tokens_per_s"] > 0 for r in rows)
    through_model = I.measure_decode(model32, "sinks", 30, steps=2, window=8, num_sinks=2, repeats=1, fill="model")
    assert through_model["held_tokens"] == 10 and through_model["cache_bytes"] == by["sinks", 20]["cache_bytes"]
    with pytest.raises(ValueError, match="fill must be"):
        I.measure_decode(model32, "full", 10, fill="zeros")
