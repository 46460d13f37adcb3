"""A catalogue of plausible wrong answers for every graded function: each must lose points on every seed.

MUTANTS[question_id] = {mutant name: make(ns) -> function}, where ns holds the solution notebook's functions.
Most mutants are the solution with one mistake in front of or behind it (an argument off by one, the output
transposed, cast, reversed, NaN where a guard is missing, the input changed in place); the rest are written out.
"""
from __future__ import annotations

import math
import types

import numpy as np

NOTEBOOK = {"ex01": "01_patterns", "ex02": "02_local_attention", "ex03": "03_global_tokens", "ex04": "04_bigbird",
            "ex05": "05_sparse_transformer", "ex06": "06_blocks", "ex07": "07_flash", "ex10": "10_learned_sparsity",
            "ex11": "11_hybrid_design", "ex12": "12_kv_cache", "ex13": "13_ring_merge"}


# ---- mutation operators ------------------------------------------------------------------------------------------
def post(f, g):
    """f's output passed through g."""
    return lambda **kw: g(f(**kw))


def pre(f, **change):
    """f called with some arguments changed: change[name](kwargs) -> new value."""
    return lambda **kw: f(**{**kw, **{k: fn(kw) for k, fn in change.items()}})


def helper(f, **helpers):
    """f with the functions it calls by name replaced (a wrong helper inside a right function)."""
    return types.FunctionType(f.__code__, {**f.__globals__, **helpers}, f.__name__, f.__defaults__, f.__closure__)


def mutates(f, name):
    """f's answer, and its input `name` scribbled on afterwards."""
    def g(**kw):
        out = f(**kw)
        x = kw[name]
        if isinstance(x, np.ndarray) and x.size:
            x.flat[0] = x.flat[0] + 1 if x.dtype != np.bool_ else not x.flat[0]
        return out
    return g


def nan_rows(x):
    """NaN on the rows that are all zero: the missing `where l > 0` guard."""
    x = np.array(x, dtype=float)
    x[np.all(x == 0, axis=-1)] = np.nan
    return x


def value(v):
    return lambda ns: v


# ---- written-out mutants -----------------------------------------------------------------------------------------
def _int8_no_scale(x):
    return np.clip(np.round(x), -127, 127).astype(x.dtype)


def _int8_with(x, absmax, top):
    scale = np.where(absmax > 0, absmax / top, 1).astype(x.dtype)
    return (np.clip(np.round(x / scale), -top, top) * scale).astype(x.dtype)


def _int8_tensor_scale(x):
    return _int8_with(x, np.abs(x).max(), 127)


def _int8_by_128(x):
    return _int8_with(x, np.abs(x).max(axis=-1, keepdims=True), 128)


class _NumpyFloorRound:
    """numpy, except that round() truncates toward -inf: the codes land one step low half the time."""

    def __getattr__(self, name):
        return np.floor if name == "round" else getattr(np, name)


def _sliding_full_window(n, window, causal=False):
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    return ((d >= 0) & (d < window)) if causal else np.abs(d) <= window


def _dilated_true_division(n, window, dilation, causal=False):
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    steps = d / dilation  # no grid test: every offset whose quotient is in range
    return ((steps >= 0) & (steps < window)) if causal else np.abs(steps) <= window // 2


def _csr_column_major(mask):
    rows, cols = np.nonzero(mask.T)
    return np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64), rows


def _gather_no_max(q, k, v, indptr, indices):
    out = np.zeros((len(q), v.shape[1]), dtype=q.dtype)
    for i in range(len(q)):
        idx = indices[indptr[i]:indptr[i + 1]]
        if len(idx):
            p = np.exp(k[idx] @ q[i] / math.sqrt(q.shape[1]))
            out[i] = p @ v[idx] / p.sum()
    return out


def _random_blocks_unseeded(nb, window_blocks, global_blocks, random_blocks, seed):
    rng = np.random.default_rng()  # the seed is ignored
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)
        table[bi, :len(pick)] = pick
    return table


def _random_blocks_fixed(nb, window_blocks, global_blocks, random_blocks, seed):
    """Deterministic and not random: the candidates farthest away."""
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        pick = cand[np.argsort(-np.abs(cand - bi), kind="stable")][:random_blocks]
        table[bi, :len(pick)] = pick
    return table


def _random_blocks_replace(nb, window_blocks, global_blocks, random_blocks, seed):
    rng = np.random.default_rng(seed)
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        if len(cand):
            pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=True)
            table[bi, :len(pick)] = pick
    return table


def _random_blocks_seed0(nb, window_blocks, global_blocks, random_blocks, seed):
    rng = np.random.default_rng(0)  # a seed, but always the same one
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)
        table[bi, :len(pick)] = pick
    return table


def _random_blocks_in_window(nb, window_blocks, global_blocks, random_blocks, seed):
    rng = np.random.default_rng(seed)
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(global_blocks, nb):
        cand = bj[bj != bi]  # only the diagonal excluded: window blocks may be drawn
        pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)
        table[bi, :len(pick)] = pick
    return table


def _random_blocks_global_rows(nb, window_blocks, global_blocks, random_blocks, seed):
    rng = np.random.default_rng(seed)
    table = np.full((nb, random_blocks), -1, dtype=np.int64)
    bj = np.arange(global_blocks, nb)
    for bi in range(nb):
        cand = bj[np.abs(bj - bi) > window_blocks // 2]
        pick = rng.choice(cand, size=min(random_blocks, len(cand)), replace=False)
        table[bi, :len(pick)] = pick
    return table


def _hops_unreached_zero(ns):
    return post(ns.hop_distances, lambda d: np.where(d < 0, 0, d))


def _softmax_no_rescale(x, block):
    m, s = np.full(x.shape[0], -np.inf), np.zeros(x.shape[0])
    for j0 in range(0, x.shape[1], block):
        xb = x[:, j0:j0 + block]
        m = np.maximum(m, xb.max(axis=1))
        ms = np.where(np.isneginf(m), 0.0, m)
        s = s + np.exp(xb - ms[:, None]).sum(axis=1)  # the old sum is never rescaled
    ms = np.where(np.isneginf(m), 0.0, m)
    return np.exp(x - ms[:, None]) / np.where(s > 0, s, 1.0)[:, None]


def _softmax_no_max(x, block):
    with np.errstate(all="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=1, keepdims=True)


def _tile_l_not_rescaled(acc, m, l, s, v):
    m_new = np.maximum(m, s.max(axis=-1))
    ms = np.where(np.isneginf(m_new), 0.0, m_new)
    alpha = np.exp(m - ms)
    p = np.exp(s - ms[:, None])
    return alpha[:, None] * acc + p @ v, m_new, l + p.sum(axis=-1)


def _tile_nan_guard(acc, m, l, s, v):
    with np.errstate(invalid="ignore"):
        m_new = np.maximum(m, s.max(axis=-1))
        alpha = np.exp(m - m_new)
        p = np.exp(s - m_new[:, None])
        return alpha[:, None] * acc + p @ v, m_new, alpha * l + p.sum(axis=-1)


def _tile_acc_not_rescaled(acc, m, l, s, v):
    m_new = np.maximum(m, s.max(axis=-1))
    ms = np.where(np.isneginf(m_new), 0.0, m_new)
    alpha = np.exp(m - ms)
    p = np.exp(s - ms[:, None])
    return acc + p @ v, m_new, alpha * l + p.sum(axis=-1)


def _flash_full_rows(q, k, v, block_q, block_k):
    """Right values, untiled over keys: each query block's softmax over its full row of n scores."""
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))
    for i0 in range(0, q.shape[0], block_q):
        s = q[i0:i0 + block_q] @ k.T / math.sqrt(q.shape[1])  # (block_q, n_k)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        out[i0:i0 + block_q] = (p @ v) / p.sum(axis=1, keepdims=True)
    return out


def _flash_dense(q, k, v, block_q, block_k):
    s = q @ k.T / math.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return ((p @ v) / p.sum(axis=1, keepdims=True)).astype(np.result_type(q, v))


def _flash_drop_ragged(ns):
    def f(q, k, v, block_q, block_k):
        n_k = (k.shape[0] // block_k) * block_k or k.shape[0]
        return ns.flash_forward(q=q, k=k[:n_k], v=v[:n_k], block_q=block_q, block_k=block_k)
    return f


def _bsf_masked_after(q, k, v, layout, block):
    """Computes every tile and masks afterwards: NaN from tiles it should have skipped."""
    n = q.shape[0]
    mask = np.repeat(np.repeat(layout, block, 0), block, 1)[:n, :n]
    s = np.where(mask, q @ k.T / math.sqrt(q.shape[1]), -np.inf)
    m = s.max(axis=1, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)
    p = np.exp(s - m)
    tot = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return (p @ v) / np.where(tot > 0, tot, 1.0)


def _topk_padded_mean(q, k, block, top, causal=False):
    """Mean-pools over whole blocks, padding zeros included."""
    n, d = q.shape
    nb = -(-n // block)
    pad = lambda x: np.concatenate([x, np.zeros((nb * block - n, d))]).reshape(nb, block, d).mean(1)  # noqa: E731
    s = pad(q) @ pad(k).T
    idx = np.arange(nb)
    if causal:
        s[idx[None, :] > idx[:, None]] = -np.inf
    s[idx, idx] = np.inf
    order = np.argsort(-s, axis=1)[:, :top]
    layout = np.zeros((nb, nb), dtype=bool)
    np.put_along_axis(layout, order, np.take_along_axis(s, order, axis=1) > -np.inf, axis=1)
    return layout


def _mass_no_max(q, k, indptr, indices):
    with np.errstate(all="ignore"):
        p = np.exp(q @ k.T / math.sqrt(q.shape[1]))
        p = p / p.sum(axis=1, keepdims=True)
    return np.array([p[i, indices[indptr[i]:indptr[i + 1]]].sum() for i in range(len(q))])


def _read_order_slots(next_pos, window):
    return np.arange(min(next_pos, window), dtype=np.int64)  # the held slots, in slot order


def _read_order_newest_first(next_pos, window):
    return (np.arange(max(0, next_pos - window), next_pos) % window)[::-1].copy()


def _holds_wrong_way(world_size, step):
    return (np.arange(world_size) + step) % world_size


def _merge_no_guard(out_a, lse_a, out_b, lse_b):
    with np.errstate(invalid="ignore"):
        m = np.maximum(lse_a, lse_b)
        wa, wb = np.exp(lse_a - m), np.exp(lse_b - m)
        return (wa[..., None] * out_a + wb[..., None] * out_b) / (wa + wb)[..., None], m + np.log(wa + wb)


def _merge_no_max(out_a, lse_a, out_b, lse_b):
    with np.errstate(all="ignore"):
        wa, wb = np.exp(lse_a), np.exp(lse_b)
        tot = wa + wb
        return (wa[..., None] * out_a + wb[..., None] * out_b) / np.where(tot > 0, tot, 1)[..., None], np.log(tot)


def _merge_average(out_a, lse_a, out_b, lse_b):
    return (out_a + out_b) / 2, np.maximum(lse_a, lse_b)


def _ring_local_positions(ns):
    def partial_local(q, k, v, q_pos, k_pos, causal):
        return ns.partial_attention(q, k, v, q_pos - q_pos[0], k_pos - k_pos[0], causal)
    return helper(ns.ring_attention_sim, partial_attention=partial_local)


# ---- the catalogue -----------------------------------------------------------------------------------------------
def _w(delta):
    return {"window": lambda kw: kw["window"] + delta}


MUTANTS = {
    "ex01.sliding_window_mask": {
        "window, not window // 2, each side": lambda ns: _sliding_full_window,
        "causal window one too long": lambda ns: pre(ns.sliding_window_mask, **_w(1)),
        "transposed (keys look at later queries)": lambda ns: post(ns.sliding_window_mask, np.transpose),
        "an int mask": lambda ns: post(ns.sliding_window_mask, lambda m: m.astype(np.int64)),
    },
    "ex01.dilated_window_mask": {
        "dilation ignored": lambda ns: pre(ns.dilated_window_mask, dilation=lambda kw: 1),
        "true division, no grid test": lambda ns: _dilated_true_division,
        "window off by one": lambda ns: pre(ns.dilated_window_mask, **_w(1)),
        "transposed": lambda ns: post(ns.dilated_window_mask, np.transpose),
    },
    "ex01.global_tokens_mask": {
        "global rows only": lambda ns: lambda n, indices: np.repeat(
            np.isin(np.arange(n), indices)[:, None], n, axis=1),
        "global columns only": lambda ns: lambda n, indices: np.repeat(
            np.isin(np.arange(n), indices)[None, :], n, axis=0),
        "rows and columns, but the diagonal too": lambda ns: post(ns.global_tokens_mask,
                                                                  lambda m: m | np.eye(len(m), dtype=bool)),
        "an int mask": lambda ns: post(ns.global_tokens_mask, lambda m: m.astype(np.int64)),
    },
    "ex01.mask_to_csr": {
        "indptr without its leading 0": lambda ns: post(ns.mask_to_csr, lambda c: (c[0][1:], c[1])),
        "indices column by column": lambda ns: _csr_column_major,
        "float indices": lambda ns: post(ns.mask_to_csr, lambda c: (c[0], c[1].astype(float))),
        "the input mask changed in place": lambda ns: mutates(ns.mask_to_csr, "mask"),
    },
    "ex01.sliding_window_num_pairs": {
        "reach not clipped at n - 1": lambda ns: lambda n, window, causal=False: (
            n + (window - 1) * n - (window - 1) * window // 2 if causal
            else n + 2 * ((window // 2) * n - (window // 2) * (window // 2 + 1) // 2)),
        "window off by one": lambda ns: pre(ns.sliding_window_num_pairs, **_w(1)),
        "n · window": lambda ns: lambda n, window, causal=False: n * window,
        "a float": lambda ns: post(ns.sliding_window_num_pairs, float),
    },
    "ex01.q6": {"off by one": value(25), "n · 3": value(36), "one side only": value(18)},
    "ex02.window_neighbors": {
        "rows in descending order": lambda ns: post(ns.window_neighbors, lambda c: (
            c[0], np.concatenate([c[1][a:b][::-1] for a, b in zip(c[0][:-1], c[0][1:])]).astype(np.int64))),
        "window off by one": lambda ns: pre(ns.window_neighbors, **_w(1)),
        "dilation ignored": lambda ns: pre(ns.window_neighbors, dilation=lambda kw: 1),
        "indptr without its leading 0": lambda ns: post(ns.window_neighbors, lambda c: (c[0][1:], c[1])),
    },
    "ex02.sparse_attention": {
        "float64 out for float32 in": lambda ns: post(ns.sparse_attention, lambda o: o.astype(np.float64)),
        "NaN on rows with no keys": lambda ns: post(ns.sparse_attention, nan_rows),
        "no max subtracted": lambda ns: _gather_no_max,
        "no 1/sqrt(d) scale": lambda ns: pre(ns.sparse_attention, q=lambda kw: kw["q"] * math.sqrt(kw["q"].shape[1])),
        "the input q changed in place": lambda ns: mutates(ns.sparse_attention, "q"),
    },
    "ex02.linear_time": {
        "wrong values": lambda ns: lambda q, k, v, indptr, indices: np.zeros_like(q),
        "not attempted": lambda ns: lambda **kw: (_ for _ in ()).throw(NotImplementedError()),
        "a dense (n, n) softmax": lambda ns: _dense_csr_attention,
    },
    "ex03.longformer_mask": {
        "window, not window // 2": lambda ns: pre(ns.longformer_mask, window=lambda kw: 2 * kw["window"] + 1),
        "dilation ignored": lambda ns: pre(ns.longformer_mask, dilation=lambda kw: 1),
        "global rows only": lambda ns: lambda n, window, global_indices, dilation=1: (
            ns.longformer_mask(n, window, [], dilation) | np.isin(np.arange(n), global_indices)[:, None]),
        "an int mask": lambda ns: post(ns.longformer_mask, lambda m: m.astype(np.int64)),
    },
    "ex03.two_hop_reachable": {
        "no residual": lambda ns: lambda mask: (mask.astype(np.int64) @ mask.astype(np.int64)) > 0,
        "one hop": lambda ns: lambda mask: mask | np.eye(len(mask), dtype=bool),
        "transposed": lambda ns: post(ns.two_hop_reachable, np.transpose),
    },
    "ex03.longformer_num_pairs": {
        "overlap counted twice": lambda ns: lambda n, window, global_indices: int(
            ns.longformer_num_pairs(n, window, []) + 2 * n * len(set(global_indices))),
        "window off by one": lambda ns: pre(ns.longformer_num_pairs, window=lambda kw: kw["window"] + 2),
        "duplicate globals counted": lambda ns: lambda n, window, global_indices: ns.longformer_num_pairs(
            n, window, list(global_indices) + list(global_indices)[:1]) + (1 if len(global_indices) else 0),
        "a float": lambda ns: post(ns.longformer_num_pairs, float),
    },
    "ex03.q4": {"floor, not ceiling": value(24), "window 9 per layer": value(11), "99 / 8 rounded": value(12)},
    "ex04.bigbird_block_layout": {
        "random table ignored": lambda ns: pre(ns.bigbird_block_layout,
                                               random_table=lambda kw: np.full_like(kw["random_table"], -1)),
        "transposed": lambda ns: post(ns.bigbird_block_layout, np.transpose),
        "window off by one": lambda ns: pre(ns.bigbird_block_layout,
                                            window_blocks=lambda kw: kw["window_blocks"] + 2),
        "one global block too many": lambda ns: pre(ns.bigbird_block_layout,
                                                    global_blocks=lambda kw: kw["global_blocks"] + 1),
    },
    "ex04.random_blocks_seeded": {
        "seed ignored (unseeded rng)": lambda ns: _random_blocks_unseeded,
        "deterministic: the farthest candidates": lambda ns: _random_blocks_fixed,
        "always seed 0": lambda ns: _random_blocks_seed0,
    },
    "ex04.random_blocks": {
        "with replacement": lambda ns: _random_blocks_replace,
        "the window's own blocks drawn": lambda ns: _random_blocks_in_window,
        "global rows drawn too": lambda ns: _random_blocks_global_rows,
    },
    "ex04.hop_distances": {
        "0 where never reached": _hops_unreached_zero,
        "transposed": lambda ns: post(ns.hop_distances, np.transpose),
        "one hop too many": lambda ns: post(ns.hop_distances, lambda d: np.where(d > 0, d + 1, d)),
        "floats": lambda ns: post(ns.hop_distances, lambda d: d.astype(float)),
    },
    "ex04.diameter": {
        "-1 ignored": lambda ns: lambda adj: int(ns.hop_distances(adj).max()),
        "off by one": lambda ns: post(ns.diameter, lambda x: x + 1 if x >= 0 else x),
        "a float": lambda ns: post(ns.diameter, float),
    },
    "ex04.q5": {"no globals": value(6 * 64), "blocks, not tokens": value(8), "one window block": value(6 * 64 + 64)},
}


def _dense_csr_attention(q, k, v, indptr, indices):
    n = len(q)
    mask = np.zeros((n, n), dtype=bool)
    mask[np.repeat(np.arange(n), np.diff(indptr)), indices] = True
    s = np.where(mask, q @ k.T / math.sqrt(q.shape[1]), -np.inf)
    m = s.max(axis=1, keepdims=True)
    p = np.exp(s - np.where(np.isfinite(m), m, 0))
    tot = p.sum(axis=1, keepdims=True)
    return (p @ v) / np.where(tot > 0, tot, 1)





# ---- written-out mutants, exercises 05 to 13 ---------------------------------------------------------------------
def _best_stride_last_tie(ns):
    def f(n):
        pairs = [ns.strided_num_pairs(n, s) for s in range(1, n + 1)]
        return int(n - np.argmin(pairs[::-1]))
    return f


def _layout_floor(mask, block):
    nb = mask.shape[0] // block or 1
    m = mask[:nb * block, :nb * block]
    return m.reshape(nb, block, nb, block).any(axis=(1, 3))


def _wasted_full_tiles(ns):
    def f(mask, block):
        layout = ns.block_layout(mask, block)
        computed = int(layout.sum()) * block * block
        return 1.0 - int(mask.sum()) / computed if computed else 0.0
    return f


def _wasted_no_guard(ns):
    def f(mask, block):
        return ns.wasted_fraction(mask, block) if mask.any() else float("nan")
    return f


def _best_block_mean(timings):
    return min(timings, key=lambda b: (float(np.mean(timings[b])), b))


def _best_block_last_tie(timings):
    return min(timings, key=lambda b: (min(timings[b]), -b))


def _topk_no_diagonal(q, k, block, top, causal=False):
    n = len(q)
    nb = -(-n // block)
    qm = np.stack([q[b * block:(b + 1) * block].mean(0) for b in range(nb)])
    km = np.stack([k[b * block:(b + 1) * block].mean(0) for b in range(nb)])
    s = qm @ km.T
    idx = np.arange(nb)
    if causal:
        s[idx[None, :] > idx[:, None]] = -np.inf
    order = np.argsort(-s, axis=1)[:, :top]
    layout = np.zeros((nb, nb), dtype=bool)
    np.put_along_axis(layout, order, np.take_along_axis(s, order, axis=1) > -np.inf, axis=1)
    return layout


def _chunk_no_bucket(buckets, chunk):
    n = len(buckets)
    order = np.lexsort((np.arange(n), buckets))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    c = rank // chunk
    return (c[:, None] == c[None, :]) | (c[:, None] == c[None, :] + 1)


def _gqa_interleaved(q, k, v, mask):
    H, Hkv = q.shape[0], k.shape[0]
    out = np.zeros(q.shape[:2] + (v.shape[-1],))
    for h in range(H):
        kh, vh = k[h % Hkv], v[h % Hkv]
        s = np.where(mask, q[h] @ kh.T / math.sqrt(q.shape[-1]), -np.inf)
        m = s.max(axis=-1, keepdims=True)
        p = np.exp(s - np.where(np.isneginf(m), 0, m))
        tot = p.sum(axis=-1, keepdims=True)
        out[h] = (p @ vh) / np.where(tot > 0, tot, 1)
    return out


def _write_no_wrap(buffer, keys, pos):
    out = buffer.copy()
    W = len(buffer)
    for t in range(len(keys)):
        if pos + t < W:
            out[pos + t] = keys[t]
    return out


def _write_in_place(buffer, keys, pos):
    W = len(buffer)
    for t in range(len(keys)):
        buffer[(pos + t) % W] = keys[t]
    return buffer


def _write_first_w(buffer, keys, pos):
    out = buffer.copy()
    W = len(buffer)
    for t in range(min(W, len(keys))):  # keeps the first W tokens of a long chunk
        out[(pos + t) % W] = keys[t]
    return out


def _decode_read_first(ns):
    def f(q, k, v, window, slope):
        Hkv, n, d = k.shape
        kbuf, vbuf = np.zeros((Hkv, window, d)), np.zeros((Hkv, window, d))
        out = np.zeros(q.shape)
        for p in range(n):
            slots = ns.rolling_read_order(p, window)  # read before writing token p: it never sees itself
            if len(slots):
                bias = -slope * np.arange(len(slots), 0, -1)
                out[:, p:p + 1] = ns.gqa_attention(q[:, p:p + 1], kbuf[:, slots], vbuf[:, slots],
                                                   np.ones((1, len(slots)), dtype=bool), bias[None, :])
            kbuf[:, p % window], vbuf[:, p % window] = k[:, p], v[:, p]
        return out
    return f


MUTANTS.update({
    "ex05.strided_mask": {
        "transposed": lambda ns: post(ns.strided_mask, np.transpose),
        "causal ignored": lambda ns: pre(ns.strided_mask, causal=lambda kw: not kw["causal"]),
        "stride off by one": lambda ns: pre(ns.strided_mask, stride=lambda kw: kw["stride"] + 1),
    },
    "ex05.fixed_mask": {
        "c off by one": lambda ns: pre(ns.fixed_mask, c=lambda kw: kw["c"] + 1),
        "transposed": lambda ns: post(ns.fixed_mask, np.transpose),
        "causal ignored": lambda ns: pre(ns.fixed_mask, causal=lambda kw: not kw["causal"]),
    },
    "ex05.strided_heads": {
        "heads swapped": lambda ns: post(ns.strided_heads, lambda h: (h[1], h[0])),
        "transposed": lambda ns: post(ns.strided_heads, lambda h: (h[0].T, h[1].T)),
        "stride off by one": lambda ns: pre(ns.strided_heads, stride=lambda kw: kw["stride"] + 1),
    },
    "ex05.compose": {
        "order swapped": lambda ns: lambda outer, inner: ns.compose(inner, outer),
        "an int matrix": lambda ns: lambda outer, inner: outer.astype(np.int64) @ inner.astype(np.int64),
        "union, not composition": lambda ns: lambda outer, inner: outer | inner,
    },
    "ex05.strided_num_pairs": {
        "off by one": lambda ns: post(ns.strided_num_pairs, lambda x: x + 1),
        "stride off by one": lambda ns: pre(ns.strided_num_pairs, stride=lambda kw: kw["stride"] + 1),
        "a float": lambda ns: post(ns.strided_num_pairs, float),
    },
    "ex05.best_stride": {
        "the largest on ties": _best_stride_last_tie,
        "off by one": lambda ns: post(ns.best_stride, lambda s: s + 1),
        "round(sqrt(n))": lambda ns: lambda n: max(1, round(math.sqrt(n))),
    },
    "ex06.block_layout": {
        "floor(n / block) blocks": lambda ns: _layout_floor,
        "transposed": lambda ns: post(ns.block_layout, np.transpose),
        "an int layout": lambda ns: post(ns.block_layout, lambda x: x.astype(np.int64)),
    },
    "ex06.wasted_fraction": {
        "edge tiles counted whole": _wasted_full_tiles,
        "the used fraction": lambda ns: post(ns.wasted_fraction, lambda x: 1.0 - x),
        "NaN when nothing is computed": _wasted_no_guard,
    },
    "ex06.best_block_size": {
        "mean, not fastest repeat": lambda ns: _best_block_mean,
        "the larger on ties": lambda ns: _best_block_last_tie,
        "the time, not the block": lambda ns: lambda timings: min(min(t) for t in timings.values()),
    },
    "ex06.residue_order": {
        "token order": lambda ns: lambda n, stride: np.arange(n),
        "reversed": lambda ns: post(ns.residue_order, lambda x: x[::-1].copy()),
        "floats": lambda ns: post(ns.residue_order, lambda x: x.astype(float)),
    },
    "ex06.q5": {"dense": value(256), "the band only": value(31), "off by one": value(137)},
    "ex07.online_softmax": {
        "old sum never rescaled": lambda ns: _softmax_no_rescale,
        "no max subtracted": lambda ns: _softmax_no_max,
        "NaN on fully masked rows": lambda ns: post(ns.online_softmax, nan_rows),
    },
    "ex07.tile_update": {
        "l not rescaled": lambda ns: _tile_l_not_rescaled,
        "acc not rescaled": lambda ns: _tile_acc_not_rescaled,
        "no guard for m = -inf": lambda ns: _tile_nan_guard,
    },
    "ex07.flash_forward": {
        "float64 out for float32 in": lambda ns: post(ns.flash_forward, lambda o: o.astype(np.float64)),
        "the last ragged key block dropped": _flash_drop_ragged,
        "no 1/sqrt(d) scale": lambda ns: pre(ns.flash_forward, q=lambda kw: kw["q"] * math.sqrt(kw["q"].shape[1])),
        "the input q changed in place": lambda ns: mutates(ns.flash_forward, "q"),
    },
    "ex07.flash_memory": {
        "untiled over keys: full rows per query block": lambda ns: _flash_full_rows,
        "dense": lambda ns: _flash_dense,
        "wrong values": lambda ns: post(ns.flash_forward, lambda o: o * 0.5),
    },
    "ex07.block_sparse_flash": {
        "every tile computed, masked afterwards": lambda ns: _bsf_masked_after,
        "layout transposed": lambda ns: pre(ns.block_sparse_flash, layout=lambda kw: kw["layout"].T.copy()),
        "NaN on rows with no key": lambda ns: post(ns.block_sparse_flash, nan_rows),
    },
    "ex10.lsh_buckets": {
        "argmin": lambda ns: lambda x, rotations: np.concatenate([x @ rotations, -(x @ rotations)], 1).argmin(1),
        "halves swapped": lambda ns: lambda x, rotations: np.concatenate([-(x @ rotations), x @ rotations],
                                                                         1).argmax(1),
        "no negative half": lambda ns: lambda x, rotations: (x @ rotations).argmax(1),
    },
    "ex10.lsh_chunk_mask": {
        "same bucket not required": lambda ns: _chunk_no_bucket,
        "no previous chunk": lambda ns: lambda buckets, chunk: ns.lsh_chunk_mask(buckets, chunk) & (
            (np.argsort(np.lexsort((np.arange(len(buckets)), buckets)))[:, None] // chunk)
            == (np.argsort(np.lexsort((np.arange(len(buckets)), buckets)))[None, :] // chunk)),
        "transposed": lambda ns: post(ns.lsh_chunk_mask, np.transpose),
    },
    "ex10.topk_block_layout": {
        "padding zeros averaged into the last block": lambda ns: _topk_padded_mean,
        "diagonal not forced": lambda ns: _topk_no_diagonal,
        "causal ignored": lambda ns: pre(ns.topk_block_layout, causal=lambda kw: False),
        "top off by one": lambda ns: pre(ns.topk_block_layout, top=lambda kw: kw["top"] + 1),
    },
    "ex10.captured_mass": {
        "no max subtracted": lambda ns: _mass_no_max,
        "no 1/sqrt(d) scale": lambda ns: pre(ns.captured_mass, q=lambda kw: kw["q"] * math.sqrt(kw["q"].shape[1])),
        "NaN on empty rows": lambda ns: post(ns.captured_mass, lambda x: np.where(x == 0, np.nan, x)),
    },
    "ex10.q5": {"no first-chunk exception": value(8 * 32 * 64), "one chunk only": value(256 * 32),
                "off by one": value(32 * 32 + 7 * 32 * 64 + 1)},
    "ex11.receptive_field": {
        "causal and non-causal swapped": lambda ns: pre(ns.receptive_field, causal=lambda kw: not kw["causal"]),
        "window, not reach": lambda ns: lambda windows, causal=False: sum(windows),
        "a float": lambda ns: post(ns.receptive_field, float),
    },
    "ex11.stack_attention_flops": {
        "reach not clipped": lambda ns: lambda layers, n, d_model: sum(
            4 * d_model * (n * n if w is None else n + 2 * ((w // 2) * n - (w // 2) * (w // 2 + 1) // 2))
            for w in layers),
        "2 · pairs · d": lambda ns: post(ns.stack_attention_flops, lambda x: x // 2),
        "n · w pairs": lambda ns: lambda layers, n, d_model: sum(4 * d_model * n * (n if w is None else min(w, n))
                                                                 for w in layers),
    },
    "ex11.hybrid_design": {
        "over the budget": lambda ns: _design("dense3"),
        "two layers": lambda ns: _design("two"),
        "all sliding windows": lambda ns: _design("sliding"),
        "the dense layer on top (trains, misses the bar)": lambda ns: _design("dense last"),
    },
    "ex11.q4": {"one too few": value(40), "w // 2 = 20": value(20), "a float": value(41.0)},
    "ex11.q5": {"inverted": value(1 / 0.3740), "dense only": value(1.0), "two thirds": value(2 / 3)},
    "ex12.rolling_write": {
        "no wrap-around": lambda ns: _write_no_wrap,
        "the buffer written in place": lambda ns: _write_in_place,
        "a long chunk keeps its first W": lambda ns: _write_first_w,
        "slot off by one": lambda ns: pre(ns.rolling_write, pos=lambda kw: kw["pos"] + 1),
    },
    "ex12.rolling_read_order": {
        "slot order, not oldest first": lambda ns: _read_order_slots,
        "newest first": lambda ns: _read_order_newest_first,
        "positions, not slots": lambda ns: lambda next_pos, window: np.arange(max(0, next_pos - window), next_pos),
    },
    "ex12.gqa_attention": {
        "head h reads KV head h % Hkv": lambda ns: _gqa_interleaved,
        "NaN on rows with no key": lambda ns: post(ns.gqa_attention, nan_rows),
        "mask ignored": lambda ns: pre(ns.gqa_attention, mask=lambda kw: np.ones_like(kw["mask"])),
    },
    "ex12.kv_cache_bytes": {
        "K only": lambda ns: post(ns.kv_cache_bytes, lambda x: x // 2),
        "a float": lambda ns: post(ns.kv_cache_bytes, float),
        "one layer": lambda ns: pre(ns.kv_cache_bytes, layers=lambda kw: 1),
    },
    "ex12.decode_with_rolling_cache": {
        "a wrong rolling_read_order": lambda ns: helper(ns.decode_with_rolling_cache,
                                                        rolling_read_order=_read_order_slots),
        "read before write": _decode_read_first,
        "window off by one": lambda ns: pre(ns.decode_with_rolling_cache, window=lambda kw: kw["window"] + 1),
        "recency bias ignored": lambda ns: pre(ns.decode_with_rolling_cache, slope=lambda kw: 0.0),
    },
    "ex12.q6": {"GB, not GiB": value(80 * 2 * 8 * 128 * 131072 * 2 / 1e9), "K only": value(20.0),
                "float32": value(80.0)},
    "ex13.merge_partials": {
        "no guard for rows empty on both sides": lambda ns: _merge_no_guard,
        "no max subtracted": lambda ns: _merge_no_max,
        "plain average": lambda ns: _merge_average,
    },
    "ex13.ring_holds": {
        "wrong direction": lambda ns: _holds_wrong_way,
        "no wrap-around": lambda ns: lambda world_size, step: np.arange(world_size) - step,
        "step off by one": lambda ns: pre(ns.ring_holds, step=lambda kw: kw["step"] + 1),
    },
    "ex13.ring_attention_sim": {
        "ring turning the wrong way": lambda ns: helper(ns.ring_attention_sim, ring_holds=_holds_wrong_way),
        "local positions for the causal mask": _ring_local_positions,
        "own block only": lambda ns: helper(ns.ring_attention_sim,
                                            ring_holds=lambda world_size, step: np.arange(world_size)),
    },
    "ex13.q4": {"one way only": value(1), "all ranks": value(7), "none": value(0)},
})


def _design(kind):
    from saattn_edu import patterns as P

    return {"dense3": [P.Dense()] * 3, "two": [P.Dense(), P.SlidingWindow(5)],
            "sliding": [P.SlidingWindow(9)] * 3,
            "dense last": [P.SlidingWindow(5), P.SlidingWindow(5), P.Dense()]}[kind]


# ---- free-text questions: answered means a few sentences, as a string -------------------------------------------
for _qid in ("ex01.text_q7", "ex06.text_q6", "ex07.text_q6", "ex10.text_q6", "ex11.text_q6", "ex12.text_q7",
             "ex13.text_q5"):
    MUTANTS[_qid] = {"left empty": value(""), "a few words": value("because of the softmax"),
                     "a number, not words": value(42)}


# ---- ★ challenge tasks ------------------------------------------------------------------------------------------
def _csr_rows_reversed(c):
    indptr, indices = c
    return indptr, np.concatenate([indices[a:b][::-1] for a, b in zip(indptr[:-1], indptr[1:])]).astype(np.int64)


def _union_with_repeats(indptr_a, indices_a, indptr_b, indices_b):
    n = len(indptr_a) - 1
    rows = np.concatenate([np.repeat(np.arange(n), np.diff(indptr_a)), np.repeat(np.arange(n), np.diff(indptr_b))])
    key = np.sort(rows * n + np.concatenate([indices_a, indices_b]))  # repeats kept
    return np.searchsorted(key, np.arange(n + 1) * n).astype(np.int64), (key % n).astype(np.int64)


def _union_concatenated(indptr_a, indices_a, indptr_b, indices_b):
    return np.asarray(indptr_a) + np.asarray(indptr_b), np.concatenate([indices_a, indices_b])


def _sinks_repeated(n, num_sinks, window):
    i = np.arange(n)
    lo = np.maximum(0, i - window + 1)
    n_sink = np.minimum(num_sinks, i + 1)  # sinks counted even when the window already holds them
    count = n_sink + i - lo + 1
    indptr = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    row = np.repeat(i, count)
    k = np.arange(indptr[-1]) - indptr[row]
    return indptr, np.where(k < n_sink[row], k, lo[row] + k - n_sink[row]).astype(np.int64)


def _zigzag_contiguous(n, world_size):
    return np.arange(n).reshape(world_size, -1)


def _zigzag_shifted(n, world_size):
    chunks = np.arange(n).reshape(2 * world_size, -1)
    return np.concatenate([chunks[:world_size], chunks[world_size:]], axis=1)


MUTANTS.update({
    "ex01.star_union_neighbors": {
        "repeats kept": lambda ns: _union_with_repeats,
        "lists concatenated, not merged": lambda ns: _union_concatenated,
        "rows in descending order": lambda ns: post(ns.union_neighbors, _csr_rows_reversed),
        "the first list only": lambda ns: lambda indptr_a, indices_a, indptr_b, indices_b: (
            np.asarray(indptr_a, dtype=np.int64), np.asarray(indices_a, dtype=np.int64)),
    },
    "ex02.star_sink_neighbors": {
        "sinks repeated inside the window": lambda ns: _sinks_repeated,
        "window one too long": lambda ns: pre(ns.sink_neighbors, window=lambda kw: kw["window"] + 1),
        "no sinks": lambda ns: pre(ns.sink_neighbors, num_sinks=lambda kw: 0),
        "rows in descending order": lambda ns: post(ns.sink_neighbors, _csr_rows_reversed),
    },
    "ex05.star_fixed_csr": {
        "c off by one": lambda ns: pre(ns.fixed_csr, c=lambda kw: max(1, kw["c"] - 1) if kw["c"] > 1 else 2),
        "stride off by one": lambda ns: pre(ns.fixed_csr, stride=lambda kw: kw["stride"] + 1),
        "rows in descending order": lambda ns: post(ns.fixed_csr, _csr_rows_reversed),
    },
    "ex12.star_int8_roundtrip": {
        "no scale": lambda ns: _int8_no_scale,
        "floor instead of round": lambda ns: helper(ns.int8_roundtrip, np=_NumpyFloorRound()),
        "one scale for the whole block": lambda ns: _int8_tensor_scale,
        "divides by 128": lambda ns: _int8_by_128,
    },
    "ex13.star_zigzag_positions": {
        "contiguous split": lambda ns: _zigzag_contiguous,
        "chunks r and W + r": lambda ns: _zigzag_shifted,
        "transposed": lambda ns: post(ns.zigzag_positions, lambda x: x.T.copy()),
    },
})


# ---- ★ challenge tasks, exercises 03 to 11 -------------------------------------------------------------------------
def _csr_of_keys(key, n):
    key = np.asarray(key, dtype=np.int64)
    return np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * n).astype(np.int64), key % n


def _longformer_rows_only(n, window, global_indices):
    g = np.unique(np.asarray(global_indices, dtype=np.int64))
    h = min(window // 2, max(n - 1, 0))
    i = np.arange(n, dtype=np.int64)
    j = i[:, None] + np.arange(-h, h + 1)[None, :]
    band = (i[:, None] * n + j)[(j >= 0) & (j < n)]
    key = np.sort(np.concatenate([band, (g[:, None] * n + i[None, :]).ravel()]))  # global columns forgotten
    return _csr_of_keys(key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key, n)


def _longformer_with_repeats(n, window, global_indices):
    g = np.unique(np.asarray(global_indices, dtype=np.int64))
    h = min(window // 2, max(n - 1, 0))
    i = np.arange(n, dtype=np.int64)
    j = i[:, None] + np.arange(-h, h + 1)[None, :]
    band = (i[:, None] * n + j)[(j >= 0) & (j < n)]
    parts = [band, (i[:, None] * n + g[None, :]).ravel(), (g[:, None] * n + i[None, :]).ravel()]
    return _csr_of_keys(np.sort(np.concatenate(parts), kind="stable"), n)  # overlaps kept twice


def _blocks_with_replacement(nb, window_blocks, global_blocks, random_blocks, seed):
    rng = np.random.default_rng(seed)
    g, rows = global_blocks, np.arange(nb)
    lo, hi = np.clip(rows - window_blocks // 2, g, nb), np.clip(rows + window_blocks // 2 + 1, g, nb)
    count = np.where(rows < g, 0, (nb - g) - (hi - lo))
    x = np.floor(rng.random((nb, random_blocks)) * count[:, None]).astype(np.int64)  # repeats possible
    left = (lo - g)[:, None]
    blocks = np.where(x < left, g + x, hi[:, None] + x - left)
    keep = np.arange(random_blocks)[None, :] < np.minimum(count, random_blocks)[:, None]
    return np.where(keep, blocks, -1)


def _blocks_nearest(nb, window_blocks, global_blocks, random_blocks, seed):
    """The first candidates right of the window (left when they run out): valid, never random."""
    rows, g, r = np.arange(nb), global_blocks, random_blocks
    hi = np.clip(rows + window_blocks // 2 + 1, g, nb)
    lo = np.clip(rows - window_blocks // 2, g, nb)
    cand = np.concatenate([hi[:, None] + np.arange(r), lo[:, None] - 1 - np.arange(r)], axis=1)  # (nb, 2r)
    ok = (cand >= g) & (cand < nb) & ((cand >= hi[:, None]) | (cand < lo[:, None]))
    order = np.argsort(~ok, axis=1, kind="stable")[:, :r]
    out = np.where(np.take_along_axis(ok, order, 1), np.take_along_axis(cand, order, 1), -1)
    out[:g] = -1
    return out


def _layout_by_position(indptr, indices, block):
    n = len(indptr) - 1
    nb = -(-n // block)
    layout = np.zeros((nb, nb), dtype=bool)
    layout[np.minimum(np.arange(len(indices)), n - 1) // block, np.asarray(indices) // block] = True
    return layout


def _layout_by_indptr(indptr, indices, block):
    """Each row's first key only (the row starts index the keys): later keys of a row are lost."""
    n = len(indptr) - 1
    nb = -(-n // block)
    layout = np.zeros((nb, nb), dtype=bool)
    rows = np.flatnonzero(np.diff(indptr))
    layout[rows // block, np.asarray(indices)[indptr[rows]] // block] = True
    return layout


def _causal_tiles(q, k, v, block_q, block_k, keep):
    """The causal tiled pass with keep(rows, cols, r, c) -> (r, c) bool deciding each tile's entries."""
    scale = 1.0 / math.sqrt(q.shape[1])
    out = np.zeros((q.shape[0], v.shape[1]), dtype=np.result_type(q, v))
    for i0 in range(0, q.shape[0], block_q):
        qi = q[i0:i0 + block_q] * scale
        rows = np.arange(i0, i0 + len(qi))
        acc, m, l = np.zeros((len(qi), v.shape[1])), np.full(len(qi), -np.inf), np.zeros(len(qi))
        for j0 in range(0, q.shape[0], block_k):
            cols = np.arange(j0, min(j0 + block_k, k.shape[0]))
            ok = keep(rows, cols)
            if not ok.any():
                continue
            s = np.where(ok, qi @ k[j0:j0 + block_k].T, -np.inf)
            m_new = np.maximum(m, s.max(axis=1))
            m_safe = np.where(np.isneginf(m_new), 0.0, m_new)
            alpha, p = np.exp(m - m_safe), np.exp(s - m_safe[:, None])
            acc, m, l = alpha[:, None] * acc + p @ v[j0:j0 + block_k], m_new, alpha * l + p.sum(axis=1)
        out[i0:i0 + block_q] = acc / np.where(l > 0, l, 1.0)[:, None]
    return out


def _causal_local_mask(q, k, v, block_q, block_k):
    def keep(rows, cols):
        if cols[0] > rows[-1]:
            return np.zeros((len(rows), len(cols)), dtype=bool)
        return (cols - cols[0])[None, :] <= (rows - rows[0])[:, None]  # positions inside the tile
    return _causal_tiles(q, k, v, block_q, block_k, keep)


def _causal_no_mask(q, k, v, block_q, block_k):
    return _causal_tiles(q, k, v, block_q, block_k,
                         lambda rows, cols: np.full((len(rows), len(cols)), cols[0] <= rows[-1]))


def _causal_skips_diagonal_tile(q, k, v, block_q, block_k):
    return _causal_tiles(q, k, v, block_q, block_k, lambda rows, cols: np.full(
        (len(rows), len(cols)), cols[-1] <= rows[0]) & (cols[None, :] <= rows[:, None]))


def _bucket_pairs(buckets):
    b = np.asarray(buckets)
    n = len(b)
    rows, cols = np.nonzero(b[:, None] == b[None, :]) if n <= 5000 else (None, None)
    if rows is None:  # the huge case: per bucket, which is what a learner's loop would do
        order = np.argsort(b, kind="stable")
        _, first, size = np.unique(b[order], return_index=True, return_counts=True)
        members = [order[f:f + c] for f, c in zip(first, size)]
        rows = np.concatenate([np.repeat(m, len(m)) for m in members])
        cols = np.concatenate([np.tile(m, len(m)) for m in members])
    return rows.astype(np.int64), cols.astype(np.int64), n


def _csr_from(rows, cols, n):
    key = np.sort(rows * n + cols)
    return _csr_of_keys(key, n)


def _bucket_without_self(buckets):
    rows, cols, n = _bucket_pairs(buckets)
    return _csr_from(rows[rows != cols], cols[rows != cols], n)


def _bucket_causal(buckets):
    rows, cols, n = _bucket_pairs(buckets)
    return _csr_from(rows[cols <= rows], cols[cols <= rows], n)


def _bucket_rows_sorted(buckets):
    """Row r holds the keys of the r-th token in bucket order (the sorted order never mapped back)."""
    b = np.asarray(buckets)
    indptr, indices = _csr_from(*_bucket_pairs(b))
    order = np.argsort(b, kind="stable")
    rows = [indices[indptr[i]:indptr[i + 1]] for i in order]
    return np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64), np.concatenate(rows)


def _reach_summed(layers, n):
    reach = np.zeros(n, dtype=bool)
    reach[:min(n, 1 + sum((w - 1) * d for w, d in layers))] = True
    return reach


MUTANTS.update({
    "ex03.star_longformer_neighbors": {
        "global columns forgotten": lambda ns: _longformer_rows_only,
        "overlaps kept twice": lambda ns: _longformer_with_repeats,
        "window reaching `window` each side": lambda ns: pre(ns.longformer_neighbors,
                                                             window=lambda kw: 2 * kw["window"] + 2),
        "rows in descending order": lambda ns: post(ns.longformer_neighbors, _csr_rows_reversed),
    },
    "ex04.star_random_blocks_vectorised": {
        "the row-by-row loop of exercise 2": lambda ns: ns.random_blocks,
        "drawn with replacement": lambda ns: _blocks_with_replacement,
        "the nearest candidates": lambda ns: _blocks_nearest,
        "the seed ignored": lambda ns: pre(ns.random_blocks_vectorised, seed=lambda kw: None),
        "window ignored": lambda ns: pre(ns.random_blocks_vectorised, window_blocks=lambda kw: 1),
    },
    "ex06.star_csr_block_layout": {
        "transposed": lambda ns: post(ns.csr_block_layout, lambda x: x.T.copy()),
        "floor(n / block) blocks": lambda ns: lambda indptr, indices, block: ns.csr_block_layout(
            indptr, indices, block)[:(len(indptr) - 1) // block, :(len(indptr) - 1) // block],
        "entry position taken for the query": lambda ns: _layout_by_position,
        "row starts taken for the queries": lambda ns: _layout_by_indptr,
    },
    "ex07.star_causal_flash": {
        "diagonal excluded": lambda ns: lambda q, k, v, block_q, block_k: _causal_tiles(
            q, k, v, block_q, block_k, lambda rows, cols: cols[None, :] < rows[:, None]),
        "mask from in-tile offsets": lambda ns: _causal_local_mask,
        "no mask in the diagonal tiles": lambda ns: _causal_no_mask,
        "the diagonal tile skipped": lambda ns: _causal_skips_diagonal_tile,
    },
    "ex10.star_bucket_neighbors": {
        "itself left out": lambda ns: _bucket_without_self,
        "causal: earlier keys only": lambda ns: _bucket_causal,
        "rows in bucket order, not token order": lambda ns: _bucket_rows_sorted,
        "rows in descending order": lambda ns: post(ns.bucket_neighbors, _csr_rows_reversed),
    },
    "ex11.star_stack_reach": {
        "a sum of reaches (no holes)": lambda ns: _reach_summed,
        "dilation ignored": lambda ns: lambda layers, n: ns.stack_reach([(w, 1) for w, _ in layers], n),
        "windows one step too long": lambda ns: lambda layers, n: ns.stack_reach([(w + 1, d) for w, d in layers], n),
        "only the widest layer": lambda ns: lambda layers, n: ns.stack_reach(
            [max(layers, key=lambda wd: (wd[0] - 1) * wd[1])], n),
    },
})

