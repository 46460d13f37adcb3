"""Ring attention: the NumPy schedule, the torch merge and block kernels, and real 2- and 4-process gloo runs.

The distributed cases run in two spawned jobs (world size 2 and 4, one per module), each computing every case and
returning outputs and gradients; the tests compare them with dense attention (NumPy reference for outputs, torch
autograd for gradients) at fp32 ≤ 1e-5.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from saattn_edu import patterns as P
from saattn_edu import reference as R
from saattn_edu.distributed import launch, schedule
from saattn_edu.distributed.blockwise import block_backward, block_forward, merge_partials
from saattn_edu.distributed.ring import resolve_pattern, ring_attention, ring_attention_full, shard, unshard

TOL = 1e-5
H, D = 2, 8


# ----------------------------------------------------------------------------------------------------------------
# Schedule (NumPy, no processes)
# ----------------------------------------------------------------------------------------------------------------
@given(W=st.integers(1, 6), chunks=st.integers(1, 5), layout=st.sampled_from(schedule.LAYOUTS))
def test_shard_positions_partition_the_sequence(W, chunks, layout):
    n = chunks * schedule.split_multiple(W, layout)
    pos = [schedule.shard_positions(n, W, r, layout) for r in range(W)]
    assert all(len(p) == n // W and np.all(np.diff(p) > 0) for p in pos)
    assert np.array_equal(np.sort(np.concatenate(pos)), np.arange(n))


def test_zigzag_balances_causal_work():
    n, W = 64, 4
    work = {lay: [int(P.Causal().mask(n)[schedule.shard_positions(n, W, r, lay)].sum()) for r in range(W)]
            for lay in ("contiguous", "zigzag")}
    assert max(work["contiguous"]) / min(work["contiguous"]) > 5
    assert max(work["zigzag"]) == min(work["zigzag"])


@pytest.mark.parametrize("n, W, layout", [(250, 4, "contiguous"), (100, 8, "zigzag"), (10, 3, "striped")])
def test_uneven_split_is_rejected_with_a_fix(n, W, layout):
    with pytest.raises(ValueError, match=rf"n={n}.*world_size={W}.*pad"):
        schedule.shard_positions(n, W, 0, layout)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="layout"):
        schedule.shard_positions(8, 2, 0, "diagonal")
    with pytest.raises(ValueError, match="rank"):
        schedule.shard_positions(8, 2, 2)
    with pytest.raises(TypeError, match="causal"):
        resolve_pattern(None, causal=1)
    with pytest.raises(TypeError, match="pattern"):
        resolve_pattern("window", causal=False)


def _band_layout(nb=6):
    """A block layout with a band, block column 0 and one empty block row (its queries see nothing)."""
    layout = np.eye(nb, dtype=bool) | np.eye(nb, k=1, dtype=bool)
    layout[:, 0] = True
    layout[3] = False
    return layout


PATTERNS = [P.Dense(), P.Causal(), P.SlidingWindow(9), P.SlidingWindow(12, causal=True), P.DilatedWindow(5, 3),
            P.AttentionSinks(2, 8), P.BlockSparse(_band_layout(8), 8),  # n = 64 below: 8 blocks of 8
            P.BigBird(block=8, window_blocks=3, global_blocks=1, random_blocks=1, seed=2)]


@pytest.mark.parametrize("pattern", PATTERNS, ids=repr)
@pytest.mark.parametrize("layout", schedule.LAYOUTS)
@pytest.mark.parametrize("W", [2, 4, 8])
def test_needed_blocks_and_plan_cover_every_allowed_pair(pattern, layout, W):
    n = 64
    need = schedule.needed_blocks(pattern, n, W, layout)
    owner, mask = schedule.owner_of(n, W, layout), pattern.mask(n)
    brute = np.zeros((W, W), bool)
    rows, cols = np.nonzero(mask)
    brute[owner[rows], owner[cols]] = True
    assert np.array_equal(need, brute)
    plan = schedule.plan_ring(pattern, n, W, layout)
    covered = {(r, h) for step in schedule.simulate_ring(plan) for r, h in enumerate(step["holds"])}
    assert {(r, s) for r, s in zip(*np.nonzero(need))} <= covered
    assert plan.hops <= W - 1


@pytest.mark.parametrize("W", [2, 4, 8])
def test_window_needs_only_neighbour_hops(W):
    n = 16 * W
    assert schedule.plan_ring(P.Dense(), n, W).hops == W - 1
    assert schedule.plan_ring(P.SlidingWindow(8, causal=True), n, W).steps() == [(+1, 1)]
    assert schedule.plan_ring(P.SlidingWindow(8), n, W).hops == min(2, W - 1)
    comm = schedule.communication(schedule.plan_ring(P.SlidingWindow(8), n, W), block_bytes=100)
    assert comm["bytes_per_rank"] == 200 * min(2, W - 1) and comm["dense_bytes_per_rank"] == 200 * (W - 1)


def test_simulation_passes_blocks_one_rank_per_step():
    steps = schedule.simulate_ring(schedule.plan_ring(None, 32, 4))
    assert [list(s["holds"]) for s in steps] == [[0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1], [1, 2, 3, 0]]
    assert all(s["compute"].all() for s in steps)


# ----------------------------------------------------------------------------------------------------------------
# Torch merge and block kernels (single process)
# ----------------------------------------------------------------------------------------------------------------
def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_torch_merge_matches_numpy_merge_and_keeps_empty_rows_zero():
    out_a, out_b = _rand(3, 5, 4, seed=1), _rand(3, 5, 4, seed=2)
    lse_a, lse_b = _rand(3, 5, seed=3), _rand(3, 5, seed=4)
    lse_a[0, 1] = lse_b[0, 1] = float("-inf")  # a row that saw no key on either side
    lse_b[1, 2] = float("-inf")  # a row that saw keys only on side a
    out_a[0, 1] = out_b[0, 1] = out_b[1, 2] = 0
    got = merge_partials(out_a, lse_a, out_b, lse_b)
    want = R.merge_partials(out_a.numpy(), lse_a.numpy(), out_b.numpy(), lse_b.numpy())
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-12)
    assert torch.isfinite(got[0]).all() and got[1][0, 1] == float("-inf")
    with pytest.raises(ValueError, match="matching shapes"):
        merge_partials(out_a, lse_a, out_b[:2], lse_b)


def test_torch_merge_is_differentiable():
    args = [_rand(2, 3, 4, seed=s).requires_grad_() for s in (1, 2)]
    args += [_rand(2, 3, seed=s).requires_grad_() for s in (3, 4)]
    assert torch.autograd.gradcheck(lambda oa, ob, la, lb: merge_partials(oa, la, ob, lb), args)


def _block_case(pattern, n=48, seed=0):
    q, k, v = (_rand(1, H, n, D, seed=seed + s).float() for s in range(3))
    return q, k, v, np.arange(n), pattern


@pytest.mark.parametrize("pattern", [P.Dense(), P.Causal(), P.SlidingWindow(7)], ids=repr)
def test_two_key_halves_merge_to_dense_attention(pattern):
    q, k, v, pos, pattern = _block_case(pattern)
    n, h, scale = len(pos), len(pos) // 2, D**-0.5
    a = block_forward(q, k[..., :h, :], v[..., :h, :], pos, pos[:h], pattern, n, n, scale)
    b = block_forward(q, k[..., h:, :], v[..., h:, :], pos, pos[h:], pattern, n, n, scale)
    out, lse = merge_partials(*a, *b)
    ref, ref_lse = R.flash_attention(q.numpy(), k.numpy(), v.numpy(), mask=pattern.mask(n), return_lse=True)
    np.testing.assert_allclose(out.numpy(), ref, atol=TOL)
    np.testing.assert_allclose(lse.numpy(), ref_lse, atol=TOL)


def test_block_backward_matches_autograd():
    q, k, v, pos, pattern = _block_case(P.SlidingWindow(11, causal=True), seed=5)
    n, scale, g = len(pos), D**-0.5, _rand(1, H, len(pos), D, seed=9).float()
    out, lse = block_forward(q, k, v, pos, pos, pattern, n, n, scale)
    grads = block_backward(q, k, v, out, lse, g, pos, pos, pattern, n, n, scale)
    want = _dense_grads(q, k, v, g, pattern)
    for got, w in zip(grads, want):
        torch.testing.assert_close(got, w, atol=TOL, rtol=0)


def _dense_grads(q, k, v, g, pattern):
    """Autograd of plain torch dense attention (the gradient ground truth)."""
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    mask = torch.as_tensor(pattern.mask(q.shape[-2]))
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    p = torch.softmax(s.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0)  # empty rows: 0, not NaN
    (p @ v * g).sum().backward()
    return q.grad, k.grad, v.grad


def test_ring_attention_needs_a_process_group_message():
    x = torch.zeros(1, 1, 4, 2)
    with pytest.raises(RuntimeError, match="spawn or torchrun"):
        ring_attention(x, x, x)


# ----------------------------------------------------------------------------------------------------------------
# Real runs: one spawned job per world size runs every case and returns outputs and gradients
# ----------------------------------------------------------------------------------------------------------------
N = 96  # multiple of 2·W for W = 2 and 4 (zigzag); small enough for 2 cores
CASES = {
    "dense": (None, False, "contiguous"),
    "causal-contiguous": (None, True, "contiguous"),
    "causal-zigzag": (None, True, "zigzag"),
    "causal-striped": (None, True, "striped"),
    "window": (P.SlidingWindow(21), False, "contiguous"),
    "window-causal-zigzag": (P.SlidingWindow(17), True, "zigzag"),
    "dilated-striped": (P.DilatedWindow(7, 3), False, "striped"),
    "sinks": (P.AttentionSinks(4, 12), False, "contiguous"),
    "block-sparse": (P.BlockSparse(_band_layout(), 16), False, "contiguous"),  # N = 96 = 6 blocks of 16
    "bigbird-striped": (P.BigBird(block=8, window_blocks=3, global_blocks=1, random_blocks=1, seed=2), False,
                        "striped"),
}


def _inputs(n=N, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, H, n, D, generator=gen) for _ in range(4)]  # q, k, v, upstream gradient


def _run_cases(rank, W):
    """Worker (every rank): local out and grads of each case, plus stats and a padded full-output run."""
    results = {}
    q, k, v, g = _inputs()
    for name, (pattern, causal, layout) in CASES.items():
        local = [shard(t, W, rank, layout).requires_grad_() for t in (q, k, v)]
        stats = {}
        out = ring_attention(*local, pattern, causal=causal, layout=layout, stats=stats)
        (out * shard(g, W, rank, layout)).sum().backward()
        results[name] = [out.detach().numpy()] + [t.grad.numpy() for t in local] + [stats]
    qp, kp, vp, _ = _inputs(n=N - 5, seed=1)
    results["padded"] = ring_attention_full(qp, kp, vp, causal=True, layout="zigzag", pad=True).numpy()
    return results


@pytest.fixture(scope="module", params=[2, 4], ids=lambda w: f"W{w}")
def ring_run(request):
    W = request.param
    return W, launch.spawn(_run_cases, W, timeout_s=60, join_timeout_s=240)


@pytest.mark.parametrize("case", list(CASES))
def test_ring_matches_dense_forward_and_backward(ring_run, case):
    W, results = ring_run
    pattern, causal, layout = CASES[case]
    full = resolve_pattern(pattern, causal)
    q, k, v, g = _inputs()
    got = [unshard([torch.as_tensor(res[case][i]) for res in results], layout) for i in range(4)]
    ref = R.dense_attention(q.numpy(), k.numpy(), v.numpy(), mask=full.mask(N))
    np.testing.assert_allclose(got[0].numpy(), ref, atol=TOL, rtol=0)
    for got_grad, want in zip(got[1:], _dense_grads(q, k, v, g, full)):
        torch.testing.assert_close(got_grad, want, atol=TOL, rtol=0)


def test_sparse_ring_sends_less(ring_run):
    W, results = ring_run
    stats = {case: results[0][case][4] for case in ("dense", "window", "causal-contiguous")}
    assert stats["dense"]["hops"] == W - 1
    assert stats["window"]["hops"] == min(2, W - 1)
    assert stats["window"]["bytes_sent"] <= stats["dense"]["bytes_sent"]
    skipped = sum(res["causal-contiguous"][4].get("blocks_skipped", 0) for res in results)
    assert skipped == W * (W - 1) // 2  # contiguous causal: rank r never needs the blocks of later ranks


def test_padded_uneven_length_matches_dense(ring_run):
    _, results = ring_run
    q, k, v, _ = _inputs(n=N - 5, seed=1)
    ref = R.dense_attention(q.numpy(), k.numpy(), v.numpy(), mask=P.Causal().mask(N - 5))
    for res in results:  # every rank got the full output
        np.testing.assert_allclose(res["padded"], ref, atol=TOL, rtol=0)


def _fail_on_rank_one(rank, W):
    """Rank 1 raises while rank 0 waits for a message from it."""
    import torch.distributed as dist

    if rank == 1:
        raise ValueError("rank one exploded on purpose")
    buf = torch.zeros(4)
    dist.recv(buf, src=1)
    return "unreachable"


def test_a_rank_failure_surfaces_as_an_error_without_hanging():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"(?s)rank 1 of 2 failed.*exploded on purpose"):
        launch.spawn(_fail_on_rank_one, 2, timeout_s=20, join_timeout_s=60)
    assert time.monotonic() - start < 60


def test_cli_parses_and_rejects_bad_input():
    with pytest.raises(ValueError, match="pattern"):
        launch.parse_pattern("window:zero")
    assert launch.parse_pattern("window:64") == P.SlidingWindow(64)
    assert launch.parse_pattern("bigbird:32") == P.BigBird(block=32)
    with pytest.raises(ValueError, match="n=100"):
        launch.main(["--world-size", "8", "--n", "100", "--causal"])
    with pytest.raises(ValueError, match="world_size"):
        launch.spawn(_fail_on_rank_one, 0)


def _crash_or_stall(rank, W, mode):
    """Rank 1 dies without a word (crash) or never sends (stall); rank 0 waits for a message from it."""
    import os

    import torch.distributed as dist

    if rank == 1:
        if mode == "crash":
            os._exit(3)
        time.sleep(30)
        return "late"
    buf = torch.zeros(4)
    dist.recv(buf, src=1)
    return "unreachable"


def test_a_crashed_rank_surfaces_as_an_error():
    with pytest.raises(RuntimeError, match=r"rank 1 exited with code 3|rank 0 of 2 failed"):
        launch.spawn(_crash_or_stall, 2, ("crash",), timeout_s=20, join_timeout_s=60)


def test_a_stalled_peer_times_out_instead_of_hanging():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="rank 0 of 2 failed"):
        launch.spawn(_crash_or_stall, 2, ("stall",), timeout_s=3, join_timeout_s=60)
    assert time.monotonic() - start < 25


# ----------------------------------------------------------------------------------------------------------------
# The same ring with the Triton block-sparse kernel in every step (Triton's interpreter on CPU)
# ----------------------------------------------------------------------------------------------------------------
TRITON_CASES = ("causal-zigzag", "window", "sinks", "block-sparse")


def _run_triton_cases(rank, W):
    q, k, v, g = _inputs()
    results = {}
    for name in TRITON_CASES:
        pattern, causal, layout = CASES[name]
        local = [shard(t, W, rank, layout).requires_grad_() for t in (q, k, v)]
        out = ring_attention(*local, pattern, causal=causal, layout=layout, kernel="triton")
        (out * shard(g, W, rank, layout)).sum().backward()
        results[name] = [out.detach().numpy()] + [t.grad.numpy() for t in local]
    return results


@pytest.mark.triton
def test_ring_on_the_triton_kernel_matches_dense():
    pytest.importorskip("triton")  # an optional extra (Linux x86-64): elsewhere the torch steps serve
    results = launch.spawn(_run_triton_cases, 2, timeout_s=240, join_timeout_s=600)
    q, k, v, g = _inputs()
    for case in TRITON_CASES:
        pattern, causal, layout = CASES[case]
        full = resolve_pattern(pattern, causal)
        got = [unshard([torch.as_tensor(res[case][i]) for res in results], layout) for i in range(4)]
        ref = R.dense_attention(q.numpy(), k.numpy(), v.numpy(), mask=full.mask(N))
        np.testing.assert_allclose(got[0].numpy(), ref, atol=TOL, rtol=0, err_msg=case)
        for got_grad, want in zip(got[1:], _dense_grads(q, k, v, g, full)):
            torch.testing.assert_close(got_grad, want, atol=TOL, rtol=0, msg=case)


def test_unknown_ring_kernel_is_named():
    from saattn_edu.distributed.ring import _resolve_kernel

    with pytest.raises(ValueError, match="kernel"):
        _resolve_kernel("cuda", torch.zeros(1))
