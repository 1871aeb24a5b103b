"""`gemm1x1` pinned on NCHWc 1×1 convs (any stride, ragged channels, fused epilogues, the depth
whole or in chunks), compiled natively at blocks 4, 8 and 16 and compared with the numpy
reference at 1 and 2 threads."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.utils.exceptions import PassFailedException

from convir.target import Target
from lowering.algorithms import gemm1x1
from lowering.algorithms.gemm1x1 import WHOLE_DEPTH, Gemm1x1Schedule
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    ACTIVATIONS,
    ConvCase,
    check_case,
    compile_nchwc_conv,
    scheduled_conv,
)


@st.composite
def pointwise_cases(draw):
    seed = draw(st.integers(0, 1000))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    case = ConvCase(
        rand(n, c, h, w, seed=seed),
        rand(o, c, 1, 1, seed=seed + 1),
        rand(o, seed=seed + 2) if draw(st.booleans()) else None,
        residual=draw(st.booleans()),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        attributes=dict(strides=[draw(st.integers(1, 2)), draw(st.integers(1, 2))]),
    )
    schedule = Gemm1x1Schedule(
        *draw(st.sampled_from([(6, 4), (8, 3), (4, 2), (24, 1), (1, 1), (5, 2)])),
        task_tiles=draw(st.integers(1, 4)),
        task_panels=draw(st.integers(1, 3)),
        chunk_blocks=draw(st.sampled_from([1, 2, 3, WHOLE_DEPTH])),
    )
    return case, draw(st.sampled_from([4, 8, 16])), schedule, seed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=pointwise_cases())
def test_gemm1x1_matches_reference(drawn, tmp_path_factory) -> None:
    case, block, schedule, seed = drawn
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, block, "gemm1x1", schedule, cache_dir, seed)


@pytest.mark.parametrize(
    ("shape", "strides"),
    [((1, 64, 14, 14, 48), [1, 1]), ((2, 36, 9, 7, 20), [2, 2]), ((1, 16, 7, 7, 160), [1, 1])],
)
def test_gemm1x1_heuristic_schedule_matches_reference(shape, strides, tmp_path_factory) -> None:
    n, c, h, w, o = shape
    case = ConvCase(
        rand(n, c, h, w),
        rand(o, c, 1, 1, seed=1),
        rand(o, seed=2),
        True,
        "relu",
        dict(strides=strides),
    )
    target = Target.host()
    op = scheduled_conv(case)
    schedule = gemm1x1.heuristic(op, target)
    assert schedule.mr * schedule.nr + schedule.nr + 1 <= target.vector_registers
    check_case(case, 16, "gemm1x1", schedule, tmp_path_factory.getbasetemp() / "cache", 0)


def test_heuristic_splits_panels_when_pixels_are_few() -> None:
    case = ConvCase(rand(1, 64, 7, 7), rand(512, 64, 1, 1, seed=1))
    target = Target.host().with_(cores=2)
    schedule = gemm1x1.heuristic(scheduled_conv(case), target)
    panels = -(-512 // 16 // schedule.nr)
    tasks = -(-panels // schedule.task_panels)
    assert tasks >= 2 and tasks % 2 == 0


def test_gemm1x1_applies_only_to_unpadded_1x1() -> None:
    pointwise = scheduled_conv(ConvCase(rand(1, 8, 5, 5), rand(8, 8, 1, 1)))
    padded = scheduled_conv(
        ConvCase(rand(1, 8, 5, 5), rand(8, 8, 1, 1), attributes=dict(pads=[1, 1, 1, 1]))
    )
    spatial = scheduled_conv(ConvCase(rand(1, 8, 5, 5), rand(8, 8, 3, 3)))
    assert gemm1x1.applicable(pointwise)
    assert not gemm1x1.applicable(padded) and not gemm1x1.applicable(spatial)


def test_pinning_gemm1x1_on_a_3x3_conv_names_the_op(tmp_path) -> None:
    case = ConvCase(rand(1, 8, 5, 5), rand(8, 8, 3, 3))
    with pytest.raises(
        PassFailedException, match=r"algorithm 'gemm1x1' \(pinned in the IR\) does not apply"
    ):
        compile_nchwc_conv(case, 16, "gemm1x1", cache_dir=tmp_path)


@pytest.mark.parametrize("chunk_blocks", [1, 3, 5])
def test_depth_chunks_sum_partial_sums_and_apply_the_epilogue_once(
    chunk_blocks, tmp_path_factory
) -> None:
    # 100 channels at block 8: 12 full blocks in chunks (the last one shorter at 5) and a
    # partial block of 4 lanes in the last chunk; residual and sigmoid only after it.
    case = ConvCase(
        rand(1, 100, 5, 6), rand(20, 100, 1, 1, seed=1), rand(20, seed=2), True, "sigmoid"
    )
    schedule = Gemm1x1Schedule(3, 2, task_tiles=2, task_panels=1, chunk_blocks=chunk_blocks)
    check_case(case, 8, "gemm1x1", schedule, tmp_path_factory.getbasetemp() / "cache", 0)


def test_heuristic_chunks_the_depth_only_when_a_weight_panel_and_the_input_leave_cache() -> None:
    target = Target.host().with_(vector_registers=16, l1d_bytes=32 * 1024, l2_bytes=1 << 20)

    def schedule(c: int, hw: int) -> Gemm1x1Schedule:
        return gemm1x1.heuristic(
            scheduled_conv(ConvCase(rand(1, c, hw, hw), rand(64, c, 1, 1))), target
        )

    # Block 16, NR = 2 (the 6 x 2 tile of a deep 1x1 on 16 registers): a panel row is 32
    # floats, so 32 KiB holds 256 depth rows = 16 blocks; the 80 blocks make 5 chunks of 16.
    # The input 1280 x 16 x 16 (1.25 MiB) is larger than L2.
    deep = schedule(1280, 16)
    assert (deep.mr, deep.nr) == (6, 2)
    assert deep.chunk_blocks == 16
    # A panel of 64 channels fits in L1; 1280 channels of 14 x 14 pixels (0.96 MiB) fit in L2.
    assert schedule(64, 16).chunk_blocks == WHOLE_DEPTH
    assert schedule(1280, 14).chunk_blocks == WHOLE_DEPTH
