"""`winograd` pinned on NCHWc 3×3 stride-1 convs (ragged H, W and channels, asymmetric pads,
batches, fused epilogues), compiled natively for each m and compared with the numpy reference at
1 and 2 threads within m's tolerance; its schedule rules, workspace and errors. The property
tests compile a kernel per example (5-15 s each here), so they are marked slow; the fixed cases
below them cover every m, the checked and unchecked tile paths and threads in seconds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convir import reference
from convir.target import KIB, Target
from lowering.algorithms import winograd
from lowering.algorithms.winograd import WinogradSchedule
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    EPILOGUE_ACTIVATIONS,
    ConvCase,
    compile_nchwc_conv,
    expected_nchwc,
    logical_lanes,
    scheduled_conv,
)

#: Max |y - reference| / max(1, max |reference|) allowed per m: F(6,3) rounds most (module doc
#: of `winograd_transforms`; errors seen on these sizes: ~4e-7, 2e-6, 1e-5).
TOLERANCE = {2: 1e-5, 4: 5e-5, 6: 3e-4}


def check_winograd(case: ConvCase, block: int, schedule: WinogradSchedule, cache_dir, seed: int):
    """Compile `case` pinned to winograd; at 1 and 2 threads its logical output lanes match the
    reference within the tolerance of the schedule's m."""
    compiled = compile_nchwc_conv(case, block, "winograd", schedule, cache_dir=cache_dir)
    out_channels = case.weight.shape[0]
    r = rand(*case.output_nchw(), seed=seed + 3) if case.residual else None
    feed = {"x": reference.pack(case.x, block)}
    if r is not None:
        feed["r"] = reference.pack(r, block)
    expected = logical_lanes(expected_nchwc(case, r, block), out_channels)
    # Winograd's error is relative to the conv's output, before a saturating activation (tanh,
    # sigmoid, erf) shrinks the values but not the error near 0, where their slope is ~1.
    before_activation = expected_nchwc(replace(case, activation=None), r, block)
    scale = max(1.0, float(np.abs(logical_lanes(before_activation, out_channels)).max()))
    for threads in (1, 2):
        compiled.threads = threads
        y = logical_lanes(compiled.run(feed)["y"], out_channels)
        np.testing.assert_allclose(y, expected, rtol=0, atol=TOLERANCE[schedule.m] * scale)
    return compiled


@st.composite
def winograd_cases(draw, m: int):
    seed = draw(st.integers(0, 1000))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 80)), draw(st.integers(1, 80))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    sizes = [
        draw(st.integers(max(1, 3 - pads[axis] - pads[axis + 2]), 40).filter(lambda s: s % m))
        for axis in (0, 1)
    ]
    activation, alpha, beta = draw(st.sampled_from(EPILOGUE_ACTIVATIONS))
    case = ConvCase(
        rand(n, c, *sizes, seed=seed),
        rand(o, c, 3, 3, seed=seed + 1),
        rand(o, seed=seed + 2) if draw(st.booleans()) else None,
        residual=draw(st.booleans()),
        activation=activation,
        attributes=dict(pads=pads),
        alpha=alpha,
        beta=beta,
    )
    # Register tiles of both R = 16 and R = 32 targets, odd ones, but not 24 × 1, whose
    # unrolled kernel alone takes as long to compile as the rest of the example.
    mr, nr = draw(st.sampled_from([(6, 4), (8, 3), (2, 4), (4, 2), (1, 1), (5, 2)]))
    schedule = WinogradSchedule(
        m,
        mr,
        nr,
        block_tiles=mr * draw(st.integers(1, 4)),
        slots=draw(st.integers(1, 3)),
        panel_groups=draw(st.integers(1, 3)),
    )
    return case, draw(st.sampled_from([4, 8, 16])), schedule, seed


def _property_test(m: int):
    @pytest.mark.slow
    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(drawn=winograd_cases(m))
    def test(drawn, tmp_path_factory) -> None:
        case, block, schedule, seed = drawn
        cache_dir = tmp_path_factory.getbasetemp() / "cache"
        check_winograd(case, block, schedule, cache_dir, seed)

    test.__doc__ = f"F({m}x{m}, 3x3) matches the reference on random convs."
    return test


test_f2_matches_reference = _property_test(2)
test_f4_matches_reference = _property_test(4)
test_f6_matches_reference = _property_test(6)


@pytest.mark.slow
@pytest.mark.parametrize(("index", "epilogue"), list(enumerate(EPILOGUE_ACTIVATIONS)))
def test_every_epilogue_kind(index, epilogue, tmp_path_factory) -> None:
    """Each activation kind once, with and without bias and residual in turn, on ragged sizes
    and asymmetric pads; m cycles through 2, 4, 6 (the property tests draw the rest)."""
    activation, alpha, beta = epilogue
    m = (2, 4, 6)[index % 3]
    case = ConvCase(
        rand(2, 13, 2 * m + 1, 3 * m - 1, seed=index),
        rand(21, 13, 3, 3, seed=index + 1),
        rand(21, seed=index + 2) if index % 2 else None,
        residual=index % 4 < 2,
        activation=activation,
        attributes=dict(pads=[1, 0, 2, 1]),
        alpha=alpha,
        beta=beta,
    )
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_winograd(case, 8, WinogradSchedule(m, 6, 2, 12, 2), cache_dir, index)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_whole_tiles_without_padding_take_the_unchecked_path(m, tmp_path_factory) -> None:
    """OH and OW multiples of m and no pads: every tile is interior (no bounds checks emitted),
    with the heuristic's schedule otherwise."""
    size = 2 * m + 2
    case = ConvCase(rand(1, 24, size, size), rand(40, 24, 3, 3, seed=1), rand(40, seed=2))
    schedule = winograd.heuristic(scheduled_conv(case), Target.host())
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_winograd(case, 16, WinogradSchedule(m, *_knobs(schedule)), cache_dir, 0)


def test_panel_groups_split_the_weights_between_workers(tmp_path_factory) -> None:
    """5 panels of one output block in 3 groups (2, 2, 1) over 2 slots; border tiles, a
    residual, and tiles of one block shared by every group."""
    case = ConvCase(rand(2, 24, 7, 6), rand(72, 24, 3, 3, seed=1), rand(72, seed=2), True, "relu")
    case.attributes = dict(pads=[2, 1, 0, 1])
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_winograd(case, 16, WinogradSchedule(2, 4, 1, 48, 2, 3), cache_dir, 0)


def _knobs(schedule: WinogradSchedule) -> tuple[int, int, int, int]:
    return schedule.mr, schedule.nr, schedule.block_tiles, schedule.slots


def test_workspace_is_slots_blocks_in_memory_report(tmp_path_factory) -> None:
    case = ConvCase(rand(1, 20, 9, 9), rand(36, 20, 3, 3, seed=1), None, True, "relu")
    case.attributes = dict(pads=[1, 0, 2, 1])
    schedule = WinogradSchedule(4, 6, 4, 12, 2)
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    compiled = check_winograd(case, 16, schedule, cache_dir, 0)
    (workspace,) = compiled.memory_report()["workspace_bytes"].values()
    # 10×8 outputs: 3×2 tiles of 4, so a block of 12 is cut to the 6 tiles there are (one MR).
    # Per worker: V and M rows (input blocks · X + panels · NR · X lanes at α² positions) of
    # each tile, and one m × m tile of output vectors.
    alpha2, lanes = 36, 2 * 16 + 1 * 4 * 16
    assert workspace == 2 * (6 * 4 * alpha2 * lanes + 4 * 4 * 4 * 16)


@pytest.mark.parametrize(
    ("shape", "l2_bytes"),
    [
        ((1, 64, 56, 56, 64), 512 * KIB),
        ((1, 256, 14, 14, 256), 512 * KIB),
        ((1, 512, 7, 7, 512), 1024 * KIB),
        ((2, 3, 30, 30, 20), 256 * KIB),
        ((1, 64, 224, 224, 64), 512 * KIB),
    ],
)
def test_heuristic_blocks(shape, l2_bytes) -> None:
    """block_tiles is a multiple of MR, at least one register tile, leaves every worker a
    block, and is within the L2 budget or else within the worker's share of L3 (module doc)."""
    n, c, h, w, o = shape
    case = ConvCase(rand(n, c, h, w), rand(o, c, 3, 3, seed=1), attributes=dict(pads=[1] * 4))
    op = scheduled_conv(case)
    target = Target.host().with_(l2_bytes=l2_bytes, cores=2)
    schedule = winograd.heuristic(op, target)
    assert schedule.m in winograd.LARGE_IMAGE_MS and schedule.slots == 2
    assert schedule.block_tiles % schedule.mr == 0 and schedule.block_tiles >= schedule.mr
    op.schedule = schedule.to_attr()
    tiles = n * -(-h // schedule.m) * -(-w // schedule.m)
    row_tiles = -(-tiles // schedule.mr)
    if schedule.panel_groups == 1:
        assert schedule.block_tiles // schedule.mr <= -(-row_tiles // 2)
    else:  # one block of every tile, its panels split between the workers
        assert (schedule.block_tiles // schedule.mr, schedule.panel_groups) == (row_tiles, 2)
    block_bytes = winograd.WinogradEmitter().workspace_bytes(op) // schedule.slots
    l3_share = target.l3_bytes * winograd.L3_FRACTION / 2
    assert block_bytes <= max(l2_bytes * winograd.L2_FRACTION, l3_share)


def test_heuristic_m_weighs_products_against_weight_reads() -> None:
    """m = 4 on a large image (fewer products), m = 2 on a 2×2 output (one tile either way)
    and on 512 channels at 7×7 and 14×14, where the 36 transformed 512×512 weights of m = 4
    (37.7 MB) cost more than its fewer products save, with one worker and two (module doc,
    m)."""
    pads = dict(pads=[1] * 4)
    big = scheduled_conv(ConvCase(rand(1, 8, 56, 56), rand(8, 8, 3, 3), attributes=pads))
    tiny = scheduled_conv(ConvCase(rand(1, 8, 4, 4), rand(8, 8, 3, 3)))
    deep = scheduled_conv(ConvCase(rand(1, 512, 7, 7), rand(512, 512, 3, 3), attributes=pads))
    wide = scheduled_conv(ConvCase(rand(1, 512, 14, 14), rand(512, 512, 3, 3), attributes=pads))
    for cores in (1, 2):
        target = Target.host().with_(cores=cores)
        ms = [winograd.heuristic(op, target).m for op in (big, tiny, deep, wide)]
        assert ms == [4, 2, 2, 2], cores
    # ... and the 512-channel conv splits its 16.8 MB of U between the workers, not its tiles.
    target = Target.host().with_(cores=2)
    assert winograd.heuristic(deep, target).panel_groups == 2
    assert winograd.heuristic(big, target).panel_groups == 1


def test_candidates_offer_every_m_and_the_block_menu() -> None:
    case = ConvCase(rand(1, 64, 28, 28), rand(64, 64, 3, 3, seed=1), attributes=dict(pads=[1] * 4))
    op = scheduled_conv(case)
    target = Target.host()
    menu = winograd.candidates(op, target)
    assert menu[0] == winograd.heuristic(op, target) and len(set(menu)) == len(menu)
    assert {s.m for s in menu} == {2, 4, 6}
    assert all(s.block_tiles % s.mr == 0 for s in menu)
    assert len({s.block_tiles for s in menu if s.m == 4}) >= 3


def test_applies_to_3x3_stride_1_dense_convs_only() -> None:
    def op(kernel=3, strides=(1, 1), dilations=(1, 1), group=1):
        case = ConvCase(rand(1, 8, 9, 9), rand(8, 8 // group, kernel, kernel))
        case.attributes = dict(strides=list(strides), dilations=list(dilations), group=group)
        return scheduled_conv(case)

    assert winograd.applicable(op())
    assert not winograd.applicable(op(kernel=5))
    assert not winograd.applicable(op(strides=(2, 1)))
    assert not winograd.applicable(op(dilations=(2, 2)))
    assert not winograd.applicable(op(group=2))


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (WinogradSchedule(3, 6, 4, 12, 1), r"m 3 is not supported; expected one of 2, 4, 6"),
        (WinogradSchedule(4, 6, 4, 10, 1), r"block_tiles 10 must be a multiple of mr 6"),
    ],
)
def test_bad_schedules_are_errors(schedule, message, tmp_path) -> None:
    case = ConvCase(rand(1, 8, 5, 5), rand(8, 8, 3, 3))
    with pytest.raises(Exception, match=message):
        compile_nchwc_conv(case, 16, "winograd", schedule, cache_dir=tmp_path)


def test_pinned_by_name_with_a_pinned_m() -> None:
    """`--algorithm conv_0=winograd --tile conv_0:m=6`: the pinned m is kept, the other knobs
    come from the heuristic, and the printed IR shows them."""
    from convir.compiler import lower
    from convir.dialects import make_context, module_to_text
    from tests.unit.lowering.algorithms.nchwc_harness import _conv_module

    ctx = make_context()
    case = ConvCase(rand(1, 32, 20, 20), rand(32, 32, 3, 3), attributes=dict(pads=[1] * 4))
    module = _conv_module(ctx, case, 16, None, None)
    scheduled = lower(
        module,
        ctx=ctx,
        stop="scheduled",
        block=16,
        algorithms={"conv_0": "winograd"},
        tiles={"conv_0": {"m": 6}},
    ).module
    (op,) = [op for op in scheduled.walk() if op.name == "conv.conv2d"]
    schedule = WinogradSchedule.from_attr(op.schedule)
    assert op.algorithm.data == "winograd" and schedule.m == 6
    assert schedule.block_tiles % schedule.mr == 0
    assert 'algorithm = "winograd"' in module_to_text(scheduled, ctx)
