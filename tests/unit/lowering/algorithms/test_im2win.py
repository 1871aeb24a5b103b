"""`im2win` pinned on NCHWc convs (strides, dilations, asymmetric pads, ragged channels, groups,
fused epilogues), compiled natively at blocks 4, 8 and 16 and compared with the numpy reference
at 1 and 2 threads; its window blocks and workspace against the L2 budget of its docstring."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convir import reference
from convir.target import KIB, MIB, Target
from lowering.algorithms import im2win
from lowering.algorithms.im2win import Im2winSchedule
from tests.nonfinite import assert_same_nonfinite
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    ACTIVATIONS,
    ConvCase,
    check_case,
    compile_nchwc_conv,
    logical_lanes,
    scheduled_conv,
)


@st.composite
def conv_cases(draw, groups: bool = False):
    seed = draw(st.integers(0, 1000))
    block = draw(st.sampled_from([4, 8, 16]))
    if groups:
        group = draw(st.integers(2, 3))
        c = group * block * draw(st.integers(1, 2))
        o = group * block * draw(st.integers(1, 2))
    else:
        group, c, o = 1, draw(st.integers(1, 40)), draw(st.integers(1, 40))
    n = draw(st.integers(1, 2))
    kh = draw(st.integers(1, 4))
    kw = draw(st.integers(2 if kh == 1 else 1, 4))  # 1×1 is not im2win's (applicable)
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 11))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 13))
    case = ConvCase(
        rand(n, c, h, w, seed=seed),
        rand(o, c // group, kh, kw, seed=seed + 1),
        rand(o, seed=seed + 2) if draw(st.booleans()) else None,
        residual=draw(st.booleans()),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        attributes=dict(
            strides=[draw(st.integers(1, 3)), draw(st.integers(1, 2))],
            pads=pads,
            dilations=[dh, dw],
            group=group,
        ),
    )
    schedule = Im2winSchedule(
        ow_block=draw(st.integers(1, 6)),
        oc_blocks=draw(st.integers(1, 3)),
        block_rows=draw(st.integers(1, 4)),
        slots=draw(st.integers(1, 3)),
        in_blocks=draw(st.sampled_from([1, 2, 3, 4096])),
    )
    return case, block, schedule, seed


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=conv_cases())
def test_im2win_matches_reference(drawn, tmp_path_factory) -> None:
    case, block, schedule, seed = drawn
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, block, "im2win", schedule, cache_dir, seed)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=conv_cases(groups=True))
def test_grouped_im2win_matches_reference(drawn, tmp_path_factory) -> None:
    case, block, schedule, seed = drawn
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, block, "im2win", schedule, cache_dir, seed)


def test_grouped_conv_of_whole_blocks(tmp_path_factory) -> None:
    """Two groups of 16 input and 16 output channels at block 8, stride 2, asymmetric pads."""
    case = ConvCase(
        rand(1, 32, 9, 10),
        rand(32, 16, 3, 3, seed=1),
        rand(32, seed=2),
        True,
        "relu",
        dict(strides=[2, 1], pads=[1, 0, 2, 1], group=2),
    )
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, 8, "im2win", Im2winSchedule(3, 2, 2, 2), cache_dir, 0)


@pytest.mark.parametrize("finite", [True, False])
def test_border_tiles_with_and_without_finite_weights(finite: bool, tmp_path_factory) -> None:
    """An Inf weight on tap (0, 0): the pixels of the top row and left column, where that tap
    falls in the padding, stay finite as in the reference; with finite weights the border tiles
    run unmasked over the window's zero columns and match all the same."""
    weight = rand(16, 8, 3, 3, seed=1)
    if not finite:
        weight[:, :, 0, 0] = np.inf
    case = ConvCase(rand(1, 8, 6, 11), weight, attributes=dict(pads=[1, 2, 1, 1]))
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    compiled = compile_nchwc_conv(
        case, 8, "im2win", Im2winSchedule(3, 2, 2, 2), cache_dir=cache_dir
    )
    expected = reference.conv2d(case.x, case.weight, None, **case.attributes)
    assert np.isfinite(expected).all() == finite
    for threads in (1, 2):
        compiled.threads = threads
        y = logical_lanes(compiled.run({"x": reference.pack(case.x, 8)})["y"], 16)
        assert_same_nonfinite(y, expected)


def test_heuristic_schedule_on_a_stem(tmp_path_factory) -> None:
    """A 7×7 stride-2 stem (3 input channels: one partial block) with the heuristic schedule,
    whose workspace is exactly slots windows, as memory_report() shows."""
    case = ConvCase(
        rand(1, 3, 40, 40),
        rand(64, 3, 7, 7, seed=1),
        rand(64, seed=2),
        False,
        "relu",
        dict(strides=[2, 2], pads=[3, 3, 3, 3]),
    )
    target = Target.host()
    schedule = im2win.heuristic(scheduled_conv(case), target)
    assert schedule.slots == target.cores
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    compiled = check_case(case, 16, "im2win", schedule, cache_dir, 0)
    (workspace,) = compiled.memory_report()["workspace_bytes"].values()
    columns = (20 - 1) * 2 + 6 + 1  # (OW - 1)·stride + KW
    assert workspace == schedule.slots * schedule.block_rows * 4 * 1 * columns * 7 * 16


@pytest.mark.parametrize(
    ("shape", "kernel", "l2_bytes"),
    [
        ((1, 64, 56, 56, 64), 3, 1 * MIB),
        ((1, 512, 14, 14, 512), 3, 512 * KIB),
        ((2, 3, 224, 224, 64), 7, 512 * KIB),
        ((1, 256, 28, 28, 256), 3, 256 * KIB),
    ],
)
def test_window_stays_within_the_l2_budget(shape, kernel, l2_bytes) -> None:
    """window_bytes <= L2 · L2_FRACTION whenever one row fits, and it is KH·W_win per row of
    one input chunk."""
    n, c, h, w, o = shape
    case = ConvCase(rand(n, c, h, w), rand(o, c, kernel, kernel, seed=1))
    case.attributes = dict(pads=[kernel // 2] * 4)
    op = scheduled_conv(case)
    target = Target.host().with_(l2_bytes=l2_bytes, cores=2)
    schedule = im2win.heuristic(op, target)
    op.schedule = schedule.to_attr()
    window_bytes = im2win.Im2winEmitter().workspace_bytes(op) // schedule.slots
    blocks = -(-c // 16) if c % 16 else min(schedule.in_blocks, c // 16)  # one input chunk
    row_bytes = 4 * blocks * 16 * (w + 2 * (kernel // 2)) * kernel
    assert window_bytes == schedule.block_rows * row_bytes
    assert window_bytes <= max(l2_bytes * im2win.L2_FRACTION, row_bytes)


def test_candidates_start_with_the_heuristic_and_offer_the_block_menu_and_one_row() -> None:
    case = ConvCase(rand(1, 64, 56, 56), rand(64, 64, 3, 3, seed=1))
    case.attributes = dict(pads=[1, 1, 1, 1])
    op = scheduled_conv(case)
    target = Target.host()
    base = im2win.heuristic(op, target)
    menu = im2win.candidates(op, target)
    assert menu[0] == base and len(set(menu)) == len(menu)
    assert min(s.block_rows for s in menu) == 1
    assert max(s.block_rows for s in menu) > base.block_rows
    registers = target.vector_registers
    assert all(s.ow_block * s.oc_blocks + s.oc_blocks + 1 <= registers for s in menu)


def test_not_applicable_to_groups_of_partial_blocks() -> None:
    case = ConvCase(rand(1, 24, 5, 5), rand(24, 12, 3, 3, seed=1), attributes=dict(group=2))
    assert not im2win.applicable(scheduled_conv(case))  # block 16: 12 channels per group


def test_not_applicable_to_1x1_kernels() -> None:
    """A 1×1 conv has no window to gather (gemm1x1 and direct read its rows in place)."""
    for strides in ([1, 1], [2, 2]):
        case = ConvCase(rand(1, 16, 6, 6), rand(16, 16, 1, 1, seed=1))
        case.attributes = dict(strides=strides)
        assert not im2win.applicable(scheduled_conv(case))
    assert im2win.applicable(scheduled_conv(ConvCase(rand(1, 16, 6, 6), rand(16, 16, 1, 3))))


@pytest.mark.parametrize(
    ("block", "dilations", "schedule"),
    [
        (8, [1, 1], Im2winSchedule(6, 2, 2, 2)),  # tiles of 6 over rows of 4: most span two
        (4, [2, 2], Im2winSchedule(11, 1, 3, 1)),  # one tile wider than a block's pixels
        (8, [1, 2], Im2winSchedule(5, 3, 1, 3)),  # one row per block, 3 block groups of 2
        (4, [1, 1], Im2winSchedule(6, 2, 2, 2, 2)),  # chunks of 2 input blocks: 2, 1
    ],
)
def test_flat_tiles_span_rows_and_padding(block, dilations, schedule, tmp_path_factory) -> None:
    """Flat tiles whose pixels lie on several output rows, some of them reading kernel rows in
    the top or bottom padding (zeros in the window) and others not, stride 2 down, a last
    block shorter than the others, 12 input channels (a partial block at 8), 20 outputs."""
    case = ConvCase(
        rand(2, 12, 9, 5),
        rand(20, 12, 3, 3, seed=1),
        rand(20, seed=2),
        True,
        "relu",
        dict(strides=[2, 1], pads=[2, 1, 1, 0], dilations=dilations),
    )
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, block, "im2win", schedule, cache_dir, 0)


def test_heuristic_tile_fills_the_registers() -> None:
    """6 pixels × 2 output blocks on AVX2 (12 accumulators, 2 weights, 1 broadcast), whatever
    OW divides into: 56 and 7 (ResNet-50's maps) alike."""
    for hw in (56, 7):
        case = ConvCase(rand(1, 64, hw, hw), rand(64, 64, 3, 3, seed=1))
        case.attributes = dict(pads=[1, 1, 1, 1])
        schedule = im2win.heuristic(scheduled_conv(case), Target.host().with_(vector_registers=16))
        assert (schedule.ow_block, schedule.oc_blocks) == (6, 2)
