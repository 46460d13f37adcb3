"""Quantized KV storage: keys and values kept as int8 or fp8 codes with scales, dequantized on read.

A window already bounds how many tokens a cache holds; quantization shrinks each token. Both multiply:

    bytes per token = layers × 2 × kv_heads × head_dim × (bits / 8)  +  the scales

Three formats, all symmetric (no zero point: keys and values are centred near 0):
- ``"int8"``: one scale per (token, head) = absmax / 127, codes round(x / scale) in [-127, 127];
- ``"int8-g32"`` (any ``int8-gN``): one scale per group of N channels of a (token, head) — an outlier channel then
  costs precision only in its own group (KIVI and KVQuant's motivation);
- ``"fp8"``: float8 e4m3 codes with one scale per (token, head) = absmax / 448 (e4m3's largest finite value);
- ``"bf16"`` / ``"fp16"``: plain 16-bit storage, no scales (the baseline a serving stack starts from).

`QuantizedBuffer` stands where a cache's (B, H, slots, d) tensor stood: ``buf[:, :, slots] = x`` quantizes and
stores, ``buf[:, :, slots]`` dequantizes. Scales are float32 (a 1-byte code with a 4-byte scale per 128 channels
adds 3 %).
"""
from __future__ import annotations

import re

import torch

INT8_MAX = 127.0
FP8_E4M3_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
SCALE_BYTES = 4  # float32 scales
_FORMAT = re.compile(r"^(int8|fp8)(?:-g(\d+))?$|^(bf16|fp16)$")
_HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def parse_format(quant: str, head_dim: int) -> tuple[str, int]:
    """(kind, channels per scale) from a format name: 'int8', 'int8-g32', 'fp8', 'bf16' or 'fp16'."""
    match = _FORMAT.match(quant) if isinstance(quant, str) else None
    if match is None:
        raise ValueError(f"quant must be 'int8', 'int8-gN' (N channels per scale), 'fp8', 'bf16' or 'fp16', "
                         f"got {quant!r}")
    if match.group(3):
        return match.group(3), head_dim
    kind, group = match.group(1), int(match.group(2) or head_dim)
    if group < 1 or head_dim % group:
        raise ValueError(f"quant={quant!r}: the group size {group} must divide head_dim={head_dim}")
    if kind == "fp8" and not hasattr(torch, "float8_e4m3fn"):
        raise ValueError(f"quant={quant!r} needs torch.float8_e4m3fn (torch >= 2.1); this torch has none")
    return kind, group


def _grouped(x, group: int):
    """(..., d) -> (..., d // group, group): one row per scale."""
    return x.reshape(*x.shape[:-1], x.shape[-1] // group, group)


def quantize(x, kind: str, group: int):
    """(codes shaped like x, scales (..., d // group) float32) for x (..., d); 16-bit kinds have no scales."""
    if kind in _HALF:
        return x.to(_HALF[kind]), x.new_empty((*x.shape[:-1], 0), dtype=torch.float32)
    top = INT8_MAX if kind == "int8" else FP8_E4M3_MAX
    g = _grouped(x.float(), group)
    absmax = g.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(absmax > 0, absmax / top, torch.ones_like(absmax))  # an all-zero group keeps scale 1
    scaled = g / scale
    if kind == "int8":
        codes = scaled.round().clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    else:
        codes = scaled.clamp_(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn)
    return codes.reshape(x.shape), scale.squeeze(-1)


def dequantize(codes, scales, group: int, dtype=torch.float32):
    """x ≈ codes × scale, in `dtype`."""
    if codes.dtype in _HALF.values():
        return codes.to(dtype)
    g = _grouped(codes.to(torch.float32), group)
    return (g * scales.unsqueeze(-1)).reshape(codes.shape).to(dtype)


def quantize_roundtrip(x, quant: str):
    """x quantized then dequantized (same shape and dtype): the error a cache in format `quant` adds."""
    kind, group = parse_format(quant, x.shape[-1])
    codes, scales = quantize(x, kind, group)
    return dequantize(codes, scales, group, x.dtype)


class QuantizedBuffer:
    """A (B, H, slots, d) store of codes + scales that reads and writes like a tensor on its first three axes."""

    def __init__(self, shape: tuple, quant: str, dtype=torch.float32):
        *lead, d = shape
        self.kind, self.group = parse_format(quant, d)
        self.quant, self.shape, self.dtype = quant, tuple(shape), dtype
        code_dtype = {"int8": torch.int8, "fp8": getattr(torch, "float8_e4m3fn", None), **_HALF}[self.kind]
        self.codes = torch.zeros(self.shape, dtype=code_dtype)
        num_scales = 0 if self.kind in _HALF else d // self.group
        self.scales = torch.ones((*lead, num_scales), dtype=torch.float32)

    def __getitem__(self, index):
        return dequantize(self.codes[index], self.scales[index], self.group, self.dtype)

    def __setitem__(self, index, value):
        codes, scales = quantize(value, self.kind, self.group)
        self.codes[index] = codes
        self.scales[index] = scales

    @property
    def nbytes(self) -> int:
        """Bytes really allocated: codes plus scales."""
        return self.codes.untyped_storage().nbytes() + self.scales.untyped_storage().nbytes()

    def __repr__(self) -> str:
        return f"QuantizedBuffer(shape={self.shape}, quant={self.quant!r})"


def buffer_nbytes(buf) -> int:
    """Bytes of a cache buffer, plain tensor or QuantizedBuffer."""
    if isinstance(buf, QuantizedBuffer):
        return buf.nbytes
    return buf.untyped_storage().nbytes()


def make_buffer(shape: tuple, dtype, quant: str | None):
    """A cache's K or V store: a plain tensor, or a QuantizedBuffer when `quant` names a format."""
    if quant is None:
        return torch.zeros(shape, dtype=dtype)
    return QuantizedBuffer(shape, quant, dtype)


def bytes_per_vector(quant: str, head_dim: int) -> int:
    """Bytes of one (token, head) vector of K or V in format `quant`: codes plus float32 scales."""
    kind, group = parse_format(quant, head_dim)
    if kind in _HALF:
        return 2 * head_dim
    return head_dim + SCALE_BYTES * (head_dim // group)  # 1-byte codes + float32 scales


def bytes_per_element(quant: str | None, head_dim: int, dtype_bytes: int = 2) -> float:
    """Average bytes per cached K or V element, scales included (quant=None: the plain dtype's bytes)."""
    if quant is None:
        return float(dtype_bytes)
    return bytes_per_vector(quant, head_dim) / head_dim
