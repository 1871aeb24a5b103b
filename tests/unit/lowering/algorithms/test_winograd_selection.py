"""Winograd's accuracy guard and selection: the expected error per m, `winograd-tolerance` in
conv-select-algorithm, conv-tile, `convir.compile` and the command line, and the measured rule
that makes selection pick winograd (no kernel is compiled here)."""

from __future__ import annotations

import math

import pytest
from xdsl.utils.exceptions import PassFailedException

from convir.dialects import make_context
from convir.target import Target
from lowering.algorithms import winograd
from lowering.algorithms.winograd_error import (
    DEFAULT_TOLERANCE,
    MEASURED_DEPTH,
    MEASURED_ERROR,
    accurate_ms,
    expected_error,
    parse_tolerance,
)
from passes.conv_overrides import WINOGRAD_TOLERANCE
from passes.select_algorithm import SelectAlgorithmPass, choose_algorithm, select_algorithms
from passes.tile import TilePass, tile_convs
from tests.unit.passes.conv_ir import conv_module, only_conv

AVX2 = Target.preset("x86-avx2").with_(cores=2)


def test_the_pass_default_is_the_documented_default() -> None:
    assert parse_tolerance(WINOGRAD_TOLERANCE) == DEFAULT_TOLERANCE == 1e-4


@pytest.mark.parametrize(
    ("tolerance", "ms"),
    [(1e-4, (2, 4, 6)), (3e-5, (2, 4, 6)), (1e-5, (2, 4)), (1e-6, (2,)), (5e-7, ()), (0, ())],
)
def test_the_tolerance_admits_the_m_measured_within_it(tolerance: float, ms: tuple) -> None:
    """Within the measured depths an m's expected error is its measured maximum."""
    for channels in (3, 64, 512):
        assert accurate_ms(channels * 9, tolerance) == ms


def test_deeper_convs_than_measured_expect_more_error() -> None:
    assert expected_error(4, MEASURED_DEPTH) == MEASURED_ERROR[4]
    assert math.isclose(expected_error(4, 4 * MEASURED_DEPTH), 2 * MEASURED_ERROR[4])
    # F(6,3)'s 2.2e-5 reaches the default tolerance at 4608 · (1e-4 / 2.2e-5)² ≈ 95 000 deep
    assert accurate_ms(2048 * 9, DEFAULT_TOLERANCE) == (2, 4, 6)
    assert accurate_ms(16384 * 9, DEFAULT_TOLERANCE) == (2, 4)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "", None, -0.5])
def test_bad_tolerances_are_one_clear_error(value) -> None:
    with pytest.raises(ValueError, match=r"expected a finite number >= 0 .* got"):
        parse_tolerance(value)


def big_conv(c: int = 64, o: int = 64, hw: int = 56, **kwargs):
    return only_conv(conv_module(c, o, pad=1, block=8, hw=hw, **kwargs))


def test_selection_picks_winograd_on_measured_shapes_only() -> None:
    """3×3 stride 1 with >= 64 input and output channels on NCHWc (the rule), not below 64
    channels (unmeasured), not strided, not on NCHW."""
    assert choose_algorithm(big_conv(), AVX2) == "winograd"
    assert choose_algorithm(big_conv(512, 512, hw=7), AVX2) == "winograd"
    assert choose_algorithm(big_conv(32, 64), AVX2) != "winograd"
    assert choose_algorithm(big_conv(64, 32), AVX2) != "winograd"
    assert choose_algorithm(big_conv(stride=2), AVX2) != "winograd"
    assert choose_algorithm(only_conv(conv_module(64, 64, pad=1, hw=56)), AVX2) != "winograd"


def test_no_accurate_m_means_no_winograd() -> None:
    op = big_conv()
    assert choose_algorithm(op, AVX2, winograd_tolerance=1e-6) == "winograd"
    assert choose_algorithm(op, AVX2, winograd_tolerance=5e-7) != "winograd"
    assert choose_algorithm(op, AVX2, winograd_tolerance=0.0) != "winograd"


def test_the_tile_heuristic_takes_only_accurate_ms() -> None:
    """64 channels at 56×56: m = 4 by default, m = 2 when only F(2,3) is accurate enough."""
    op = big_conv()
    assert winograd.heuristic(op, AVX2).m == 4
    assert winograd.heuristic(op, AVX2, 1e-6).m == 2
    # no m is accurate enough: a conv pinned to winograd by hand gets the most accurate one
    assert winograd.heuristic(op, AVX2, 0.0).m == 2


def test_large_images_take_f6_where_it_is_accurate_enough() -> None:
    """From LARGE_IMAGE_TILES tiles of 4×4 (112×112 and 224×224 outputs measured faster at
    m = 6), unless the tolerance excludes F(6,3)'s 2.2e-5."""
    large = big_conv(64, 64, hw=112)
    assert winograd.heuristic(large, AVX2).m == 6
    assert winograd.heuristic(large, AVX2, 1e-5).m == 4
    assert winograd.heuristic(big_conv(64, 64, hw=56), AVX2).m == 4


def _selected_and_tiled(module, tolerance: float, tiles=None):
    select_algorithms(module, AVX2, winograd_tolerance=tolerance)
    tile_convs(module, AVX2, tiles, winograd_tolerance=tolerance)
    op = only_conv(module)
    return op.algorithm.data, winograd.WinogradSchedule.from_attr(op.schedule).m


def test_passes_take_the_tolerance_and_a_pinned_m_is_kept() -> None:
    module = conv_module(64, 64, pad=1, block=8, hw=56)
    assert _selected_and_tiled(module.clone(), DEFAULT_TOLERANCE) == ("winograd", 4)
    assert _selected_and_tiled(module.clone(), 1e-6) == ("winograd", 2)
    pinned = module.clone()
    select_algorithms(pinned, AVX2, {"conv_0": "winograd"}, winograd_tolerance=0.0)
    tile_convs(pinned, AVX2, {"conv_0": {"m": 6}}, winograd_tolerance=1e-6)
    assert winograd.WinogradSchedule.from_attr(only_conv(pinned).schedule).m == 6


def test_pass_options_parse_the_tolerance() -> None:
    ctx = make_context()
    module = conv_module(64, 64, pad=1, block=8, hw=56)
    SelectAlgorithmPass(target="x86-avx2", winograd_tolerance="1e-6").apply(ctx, module)
    TilePass(target="x86-avx2", winograd_tolerance="1e-6").apply(ctx, module)
    assert winograd.WinogradSchedule.from_attr(only_conv(module).schedule).m == 2
    for bad in (SelectAlgorithmPass(winograd_tolerance="x"), TilePass(winograd_tolerance=-1)):
        with pytest.raises(PassFailedException, match=r"option winograd-tolerance: expected"):
            bad.apply(ctx, conv_module(64, 64, pad=1, block=8, hw=56))


def test_compile_rejects_a_bad_tolerance() -> None:
    from convir.compiler import lower

    with pytest.raises(ValueError, match=r"winograd_tolerance: expected a finite number"):
        lower(conv_module(64, 64, pad=1, block=8, hw=8), stop="selected", winograd_tolerance=-1)
