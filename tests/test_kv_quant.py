"""Quantized KV caches (saattn_edu.inference.quantized): error bounds, plumbing, bytes, errors."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from saattn_edu import inference as I
from saattn_edu.inference import quantized as Qz

FORMATS = ["int8", "int8-g4", "fp8", "bf16"]


def _randn(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), d=st.sampled_from([4, 8, 16]), scale=st.floats(1e-3, 1e3))
def test_int8_error_is_at_most_half_a_step(seed, d, scale):
    x = _randn(3, 5, d, seed=seed, scale=scale)
    step = x.abs().amax(-1, keepdim=True) / 127  # one scale per vector
    err = (Qz.quantize_roundtrip(x, "int8") - x).abs()
    assert bool((err <= step / 2 * (1 + 1e-5) + 1e-12).all())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), scale=st.floats(1e-3, 1e3))
def test_fp8_error_is_relative(seed, scale):
    x = _randn(4, 16, seed=seed, scale=scale)
    unit = x.abs().amax(-1, keepdim=True) / 448  # the value code 1.0 stands for
    err = (Qz.quantize_roundtrip(x, "fp8") - x).abs()
    # e4m3: 3 mantissa bits (relative error <= 2^-4) down to its subnormals (absolute 2^-10 in code units)
    assert bool((err <= torch.maximum(x.abs() / 16, unit * 2**-9) * (1 + 1e-5)).all())


def test_groups_confine_an_outlier_channel():
    x = _randn(64, 32, seed=1)
    x[:, 3] *= 100  # one outlier channel, as keys often have
    per_token = (Qz.quantize_roundtrip(x, "int8") - x).abs()
    grouped = (Qz.quantize_roundtrip(x, "int8-g8") - x).abs()
    others = [c for c in range(32) if c >= 8]  # channels outside the outlier's group
    assert grouped[:, others].mean() < per_token[:, others].mean() / 20


def test_zero_vectors_stay_zero_and_finite():
    x = torch.zeros(2, 8)
    x[1] = _randn(8, seed=2)
    for fmt in FORMATS:
        y = Qz.quantize_roundtrip(x, fmt)
        assert torch.isfinite(y).all() and bool((y[0] == 0).all()), fmt


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["full", "rolling", "sinks"])
def test_cache_reads_back_the_quantized_tokens(kind, fmt):
    cache = I.make_cache(kind, num_kv_heads=2, head_dim=8, max_tokens=40, window=6, num_sinks=2, quant=fmt)
    k, v = _randn(1, 2, 30, 8, seed=3), _randn(1, 2, 30, 8, seed=4)
    for pos in range(0, 30, 7):  # chunked prefill, then the read is checked against the round trip
        cache.update(k[:, :, pos:pos + 7], v[:, :, pos:pos + 7], pos)
    keys, values, key_pos = cache.read()
    torch.testing.assert_close(keys, Qz.quantize_roundtrip(k[:, :, key_pos], fmt))
    torch.testing.assert_close(values, Qz.quantize_roundtrip(v[:, :, key_pos], fmt))
    assert not torch.equal(keys, k[:, :, key_pos]), "quantization changed nothing: the test would be vacuous"


@pytest.mark.parametrize("fmt", FORMATS + [None])
def test_measured_bytes_match_the_formula(fmt):
    cache = I.make_cache("sinks", num_kv_heads=4, head_dim=16, window=24, num_sinks=4, quant=fmt)
    formula = I.kv_cache_bytes(layers=1, kv_heads=4, head_dim=16, tokens=28, dtype="fp32", quant=fmt)
    assert cache.nbytes == formula


def test_int8_cache_is_about_a_quarter_of_fp32():
    full = I.kv_cache_bytes(32, 8, 128, 4096, dtype="fp32")
    int8 = I.kv_cache_bytes(32, 8, 128, 4096, quant="int8")
    assert int8 / full == pytest.approx((128 + 4) / (4 * 128))


def test_decode_with_a_quantized_cache_stays_close():
    cfg = I.DecoderConfig(vocab_size=48, n_layer=2, n_head=4, n_kv_head=2, head_dim=8)
    model = I.tiny_decoder(cfg, seed=0)
    tokens = I.random_tokens(1, 40, cfg.vocab_size, seed=5)
    exact = I.recompute_logits(model, tokens, I.make_cache("rolling", num_kv_heads=2, head_dim=8, window=8).pattern)
    for fmt, tol in (("int8", 0.05), ("fp8", 0.2)):
        caches = model.make_caches("rolling", window=8, quant=fmt)
        with torch.no_grad():
            logits = torch.cat([model(tokens[:, t:t + 1], t, caches) for t in range(40)], dim=1)
        err = (logits - exact).abs().max().item()
        assert 0 < err < tol * exact.abs().max().item(), (fmt, err)


@pytest.mark.parametrize("bad", ["int4", "int8-g3", "fp16-g2", 8, "int8-g0"])
def test_bad_formats_are_named(bad):
    with pytest.raises(ValueError, match="quant"):
        I.make_cache("rolling", num_kv_heads=1, head_dim=8, window=4, quant=bad)


def test_quantize_keeps_shapes_and_dtypes():
    x = _randn(2, 3, 5, 16, seed=6).to(torch.float64)
    codes, scales = Qz.quantize(x, "int8", 4)
    assert codes.dtype == torch.int8 and codes.shape == x.shape and scales.shape == (2, 3, 5, 4)
    assert Qz.quantize_roundtrip(x, "int8-g4").dtype == torch.float64
    assert np.isfinite(scales.numpy()).all()


def test_exercise_12_star_reference_is_the_library_format():
    from saattn_edu.grading.exercises.ex12 import _ref_int8_roundtrip

    rng = np.random.default_rng(7)
    x = (rng.standard_normal((33, 64)) * rng.uniform(0.1, 5, size=(33, 1))).astype(np.float32)
    x[3] = 0
    x[:, 5] *= 40
    want = Qz.quantize_roundtrip(torch.from_numpy(x), "int8").numpy()
    np.testing.assert_allclose(_ref_int8_roundtrip(x), want, rtol=1e-6, atol=1e-7)
