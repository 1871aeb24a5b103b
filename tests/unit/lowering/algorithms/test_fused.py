"""`fused` (layer fusion) on dw3x3 + 1x1 chains: ragged channels, sizes, strides and pads of the
depthwise conv, epilogues on both convs and a residual on the second, compiled natively with
`conv-fuse-layers{mode=all}` and compared with numpy conv by conv at 1 and 2 threads."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convir import reference
from convir.dialects import conv, make_context
from convir.target import Target
from lowering.algorithms import fused
from lowering.algorithms.fused import FusedSchedule
from passes.fuse_layers import fuse_layers
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.fused_harness import (
    ChainCase,
    ChainConv,
    chain_module,
    compile_chain,
    expected_chain,
)

ACTIVATIONS = [None, "relu", "hard_swish"]


@st.composite
def dw_pw_cases(draw):
    seed = draw(st.integers(0, 1000))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 30)), draw(st.integers(1, 30))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    stride = draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    assume(h + pads[0] + pads[2] >= 3 and w + pads[1] + pads[3] >= 3)
    first = ChainConv(
        rand(c, 1, 3, 3, seed=seed + 1),
        rand(c, seed=seed + 2) if draw(st.booleans()) else None,
        draw(st.sampled_from(ACTIVATIONS)),
        dict(group=c, strides=[stride, stride], pads=pads),
    )
    second = ChainConv(
        rand(o, c, 1, 1, seed=seed + 3),
        rand(o, seed=seed + 4) if draw(st.booleans()) else None,
        draw(st.sampled_from(ACTIVATIONS)),
    )
    case = ChainCase(rand(n, c, h, w, seed=seed), first, second, residual=draw(st.booleans()))
    schedule = FusedSchedule(
        tile_rows=draw(st.integers(1, 5)),
        ow_block=draw(st.integers(1, 8)),
        mr=draw(st.sampled_from([1, 3, 6, 14])),
        nr=draw(st.integers(1, 3)),
        slots=draw(st.integers(1, 3)),
    )
    return case, draw(st.sampled_from([4, 8])), schedule, seed


def _check(case: ChainCase, block: int, schedule, cache_dir, seed: int) -> None:
    compiled, count = compile_chain(case, block, "all", schedule=schedule, cache_dir=cache_dir)
    assert count == 1
    out_channels = case.second.weight.shape[0]
    r = rand(*case.output_shape(), seed=seed + 5) if case.residual else None
    feed = {"x": reference.pack(case.x, block)}
    if r is not None:
        feed["r"] = reference.pack(r, block)
    expected = expected_chain(case, r)
    for threads in (1, 2):
        compiled.threads = threads
        y = reference.unpack(compiled.run(feed)["y"], out_channels)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=dw_pw_cases())
def test_fused_dw_pw_matches_reference(drawn, tmp_path_factory) -> None:
    case, block, schedule, seed = drawn
    _check(case, block, schedule, tmp_path_factory.getbasetemp() / "cache", seed)


def test_fused_heuristic_schedule_matches_reference(tmp_path_factory) -> None:
    c, o = 24, 20
    case = ChainCase(
        rand(1, c, 14, 14),
        ChainConv(rand(c, 1, 3, 3, seed=1), rand(c, seed=2), "relu", dict(group=c, pads=[1] * 4)),
        ChainConv(rand(o, c, 1, 1, seed=3), rand(o, seed=4)),
        residual=True,
    )
    _check(case, 8, None, tmp_path_factory.getbasetemp() / "cache", 0)


def test_reference_runs_the_fused_region() -> None:
    c, o = 5, 7
    case = ChainCase(
        rand(1, c, 6, 5),
        ChainConv(rand(c, 1, 3, 3, seed=1), None, "relu", dict(group=c, strides=[2, 2])),
        ChainConv(rand(o, c, 1, 1, seed=3), rand(o, seed=4), "relu"),
    )
    ctx = make_context()
    module = chain_module(ctx, case, 4)
    assert fuse_layers(module, Target.preset("x86-avx2"), "all") == 1
    assert any(isinstance(op, conv.FusedOp) for op in module.walk())
    y = reference.run(module, {"x": reference.pack(case.x, 4)}, ctx=ctx)["y"]
    np.testing.assert_allclose(reference.unpack(y, o), expected_chain(case, None), atol=1e-5)


def test_workspace_is_one_slice_per_slot() -> None:
    c, o = 32, 16
    case = ChainCase(
        rand(1, c, 112, 112),
        ChainConv(rand(c, 1, 3, 3, seed=1), None, None, dict(group=c, pads=[1] * 4)),
        ChainConv(rand(o, c, 1, 1, seed=3)),
    )
    module = chain_module(make_context(), case, 8)
    target = Target.preset("x86-avx2").with_(l2_bytes=512 * 1024, cores=2)
    fuse_layers(module, target, "all")
    op = next(op for op in module.walk() if isinstance(op, conv.FusedOp))
    schedule = fused.heuristic(op, target)
    row_bytes = 4 * 4 * 112 * 8  # 4 channel blocks of 8 lanes, 112 columns
    assert schedule.tile_rows * row_bytes <= target.l2_bytes // 2
    assert fused.workspace_bytes(op, schedule) == 2 * schedule.tile_rows * row_bytes
