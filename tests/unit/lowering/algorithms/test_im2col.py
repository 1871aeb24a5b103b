"""`im2col` pinned on NCHWc convs (strides, dilations, asymmetric pads, ragged channels, fused
epilogues), compiled natively at blocks 4, 8 and 16 and compared with the numpy reference at 1
and 2 threads; its blocks and workspace against the L2 budget of its docstring."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convir.target import KIB, MIB, Target
from lowering.algorithms import im2col
from lowering.algorithms.conv_gemm import balanced_task_size
from lowering.algorithms.im2col import Im2colSchedule
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    ACTIVATIONS,
    ConvCase,
    check_case,
    compile_nchwc_conv,
    scheduled_conv,
)


@st.composite
def conv_cases(draw):
    seed = draw(st.integers(0, 1000))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 11))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 11))
    case = ConvCase(
        rand(n, c, h, w, seed=seed),
        rand(o, c, kh, kw, seed=seed + 1),
        rand(o, seed=seed + 2) if draw(st.booleans()) else None,
        residual=draw(st.booleans()),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        attributes=dict(
            strides=[draw(st.integers(1, 2)), draw(st.integers(1, 2))],
            pads=pads,
            dilations=[dh, dw],
        ),
    )
    mr, nr = draw(st.sampled_from([(6, 4), (8, 3), (4, 2), (24, 1), (1, 1), (5, 2)]))
    schedule = Im2colSchedule(
        mr, nr, block_pixels=mr * draw(st.integers(1, 4)), slots=draw(st.integers(1, 3))
    )
    return case, draw(st.sampled_from([4, 8, 16])), schedule, seed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=conv_cases())
def test_im2col_matches_reference(drawn, tmp_path_factory) -> None:
    case, block, schedule, seed = drawn
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, block, "im2col", schedule, cache_dir, seed)


def test_im2col_heuristic_schedule_on_a_stem(tmp_path_factory) -> None:
    """A 7×7 stride-2 stem (3 input channels: one partial block) with the heuristic schedule,
    whose workspace is exactly slots panels, as memory_report() shows."""
    case = ConvCase(
        rand(1, 3, 40, 40),
        rand(64, 3, 7, 7, seed=1),
        rand(64, seed=2),
        False,
        "relu",
        dict(strides=[2, 2], pads=[3, 3, 3, 3]),
    )
    target = Target.host()
    schedule = im2col.heuristic(scheduled_conv(case), target)
    blocks = -(-20 * 20 // schedule.block_pixels)  # 20×20 output pixels, one image
    assert schedule.slots == min(im2col.SLOTS_PER_CORE * target.cores, blocks)
    assert schedule.block_pixels % schedule.mr == 0
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    compiled = check_case(case, 16, "im2col", schedule, cache_dir, 0)
    (workspace,) = compiled.memory_report()["workspace_bytes"].values()
    depth = 1 * 49 * 4  # input blocks × taps × panel lanes (3 channels: 4, not X)
    assert workspace == schedule.slots * schedule.block_pixels * depth * 4


@pytest.mark.parametrize(
    ("shape", "kernel", "l2_bytes"),
    [
        ((1, 64, 56, 56, 64), 3, 1 * MIB),
        ((1, 512, 14, 14, 512), 3, 1 * MIB),
        ((2, 3, 224, 224, 64), 7, 512 * KIB),
        ((1, 256, 28, 28, 256), 3, 256 * KIB),
    ],
)
def test_workspace_stays_within_the_l2_budget(shape, kernel, l2_bytes) -> None:
    """panel_bytes <= L2 · L2_FRACTION whenever MIN_BLOCK_PIXELS fit."""
    n, c, h, w, o = shape
    case = ConvCase(rand(n, c, h, w), rand(o, c, kernel, kernel, seed=1))
    case.attributes = dict(pads=[kernel // 2] * 4)
    op = scheduled_conv(case)
    target = Target.host().with_(l2_bytes=l2_bytes, cores=2)
    schedule = im2col.heuristic(op, target)
    op.schedule = schedule.to_attr()
    panel_bytes = im2col.Im2colEmitter().workspace_bytes(op) // schedule.slots
    lanes = 16 if c >= 16 else 1 << (c - 1).bit_length()
    depth_bytes = 4 * -(-c // 16) * lanes * kernel * kernel
    assert panel_bytes == schedule.block_pixels * depth_bytes
    fewest = -(-im2col.MIN_BLOCK_PIXELS // schedule.mr) * schedule.mr
    assert panel_bytes <= max(l2_bytes * im2col.L2_FRACTION, fewest * depth_bytes)
    assert schedule.block_pixels >= min(fewest, h * w) // 2


def test_blocks_keep_a_floor_of_pixels_when_k_is_huge() -> None:
    """FCN-ResNet50's head (2048 channels, 3×3: 72 KiB per pixel) gets MIN_BLOCK_PIXELS per
    block at most halved by balancing, not the 2 pixels that fit half of a 512 KiB L2."""
    case = ConvCase(rand(1, 2048, 8, 8), rand(16, 2048, 3, 3, seed=1))
    case.attributes = dict(pads=[1, 1, 1, 1])
    target = Target.host().with_(l2_bytes=512 * KIB, cores=2)
    schedule = im2col.heuristic(scheduled_conv(case), target)
    assert schedule.block_pixels >= im2col.MIN_BLOCK_PIXELS // 2


@pytest.mark.parametrize(
    ("items", "most", "copies", "interleaved", "expected"),
    [
        (10, 4, 1, False, 3),  # 3 3 3 1: threads get 6 and 4 (4 per task: 4 4 2 -> 8 and 2)
        (9, 20, 1, False, 5),  # 5 4, not 9 alone on one thread
        (8, 8, 1, True, 4),
        (33, 4, 2, False, 4),
        (12, 12, 2, False, 12),  # one task per image already splits evenly
    ],
)
def test_balanced_task_size_spreads_items_over_threads(
    items, most, copies, interleaved, expected
) -> None:
    assert balanced_task_size(items, most, copies, 2, interleaved=interleaved) == expected


def test_candidates_offer_the_block_menu() -> None:
    case = ConvCase(rand(1, 64, 56, 56), rand(64, 64, 3, 3, seed=1))
    case.attributes = dict(pads=[1, 1, 1, 1])
    op = scheduled_conv(case)
    target = Target.host()
    base = im2col.heuristic(op, target)
    menu = im2col.candidates(op, target)
    assert menu[0] == base and len(set(menu)) == len(menu)
    assert all(s.block_pixels % s.mr == 0 for s in menu)
    same_tile = [s.block_pixels for s in menu if (s.mr, s.nr) == (base.mr, base.nr)]
    assert min(same_tile) < base.block_pixels < max(same_tile)


def test_block_pixels_must_be_a_multiple_of_mr(tmp_path) -> None:
    case = ConvCase(rand(1, 8, 5, 5), rand(8, 8, 3, 3))
    with pytest.raises(Exception, match=r"block_pixels 7 must be a multiple of mr 6"):
        compile_nchwc_conv(case, 16, "im2col", Im2colSchedule(6, 4, 7, 1), cache_dir=tmp_path)
