"""conv-select-algorithm: the heuristic's preferences, the fallback through them, overrides."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from xdsl.dialects.builtin import StringAttr
from xdsl.utils.exceptions import PassFailedException

from convir.target import Target
from passes.select_algorithm import choose_algorithm, preferred_algorithms, select_algorithms
from tests.unit.passes.conv_ir import conv_module, only_conv

AVX2 = Target.preset("x86-avx2")
AVX512 = Target.preset("x86-avx512")
#: This machine's L2 (the preset has Sapphire Rapids' 1.25 MiB).
ZEN4 = AVX512.with_(l2_bytes=1 << 20)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # depthwise 3x3 on NCHWc (its direct tile's weights are tiny: direct before im2col)
        (dict(c=32, o=32, group=32, pad=1, block=16), ["depthwise", "direct", "im2col"]),
        # 1x1, group 1, no padding, NCHWc: a GEMM; stride 2 too (kernel 1 is not "strided")
        (dict(c=32, o=64, kernel=1, block=16), ["gemm1x1", "direct", "im2col"]),
        (dict(c=32, o=64, kernel=1, stride=2, block=16), ["gemm1x1", "direct", "im2col"]),
        # 1x1 but padded, or on NCHW: no gemm1x1
        (dict(c=32, o=64, kernel=1, pad=1, block=16), ["direct", "im2col"]),
        (dict(c=32, o=64, kernel=1), ["direct", "im2col"]),
        # the 3-channel 7x7 stride-2 stem, 3x3 on 64 and 128 channels: the weights of a 4-block
        # direct tile (37, 144, 288 KiB) fit in half of the 1 MiB L2: direct first
        (dict(c=3, o=64, kernel=7, stride=2, pad=3, block=16, hw=32), ["direct", "im2col"]),
        (dict(c=64, o=64, stride=2, pad=1, block=16), ["direct", "im2col"]),
        # 3x3 stride 1 with >= 64 channels in and out on NCHWc: winograd first (measured rule)
        (dict(c=128, o=128, pad=1, block=16), ["winograd", "direct", "im2col"]),
        # 3x3 on 256 channels (576 KiB) and 512 (1.1 MiB) do not: im2col first
        (dict(c=256, o=256, pad=1, block=16), ["winograd", "im2col", "direct"]),
        (dict(c=32, o=32, pad=1, block=16), ["direct", "im2col"]),
        (dict(c=512, o=512, stride=2, pad=1, block=16, hw=14), ["im2col", "direct"]),
    ],
)
def test_preferences_follow_the_documented_heuristic(shape: dict, expected: list[str]) -> None:
    assert preferred_algorithms(only_conv(conv_module(**shape)), ZEN4) == expected


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (dict(c=64, o=64, pad=1, block=8), ["im2win", "direct", "im2col"]),
        (dict(c=512, o=64, pad=1, block=8, hw=14), ["im2win", "im2col", "direct"]),
        # not 3x3, not group 1, or NCHW: as on AVX-512
        (dict(c=512, o=64, kernel=5, pad=2, block=8, hw=14), ["im2col", "direct"]),
        (dict(c=64, o=64, group=2, pad=1, block=8), ["direct", "im2col"]),
        (dict(c=64, o=64, pad=1), ["direct", "im2col"]),
    ],
)
def test_on_avx2_im2win_leads_for_3x3_convs(shape: dict, expected: list[str]) -> None:
    """im2win.measured_faster: 3x3, group 1, NCHWc, 16 vector registers (with Winograd, which
    goes first where it applies, ruled out by a zero tolerance)."""
    op = only_conv(conv_module(**shape))
    target = AVX2.with_(l2_bytes=512 << 10)
    assert preferred_algorithms(op, target, winograd_tolerance=0.0) == expected
    assert "im2win" not in preferred_algorithms(op, ZEN4)


def test_on_nchw_direct_is_chosen_because_im2col_does_not_apply() -> None:
    op = only_conv(conv_module(c=12, o=32, pad=1))
    assert choose_algorithm(op, AVX512) == "direct"


def fake_algorithms(*names: str, inapplicable: tuple[str, ...] = ()) -> dict:
    return {
        name: SimpleNamespace(applicable=lambda op, name=name: name not in inapplicable)
        for name in names
    }


def test_the_first_preference_that_exists_and_applies_wins() -> None:
    stem = only_conv(conv_module(c=3, o=16, kernel=7, stride=2, pad=3, block=16, hw=32))
    everything = ("depthwise", "direct", "gemm1x1", "im2col")
    assert choose_algorithm(stem, AVX512, fake_algorithms(*everything)) == "direct"
    # direct not applicable, or not built: fall back to im2col
    without_direct = fake_algorithms(*everything, inapplicable=("direct",))
    assert choose_algorithm(stem, AVX512, without_direct) == "im2col"
    assert choose_algorithm(stem, AVX512, fake_algorithms("depthwise", "im2col")) == "im2col"
    pointwise = only_conv(conv_module(c=32, o=64, kernel=1, block=16))
    assert choose_algorithm(pointwise, AVX512, fake_algorithms(*everything)) == "gemm1x1"
    without_gemm = fake_algorithms(*everything, inapplicable=("gemm1x1",))
    assert choose_algorithm(pointwise, AVX512, without_gemm) == "direct"


def test_an_algorithm_outside_the_preferences_is_the_last_resort() -> None:
    op = only_conv(conv_module(c=32, o=32, pad=1, block=16))
    algorithms = fake_algorithms("direct", "winograd", inapplicable=("direct",))
    assert choose_algorithm(op, AVX512, algorithms) == "winograd"


def test_no_applicable_algorithm_is_an_error_naming_the_conv() -> None:
    op = only_conv(conv_module(c=32, o=32, block=16, constant_weight=False))
    op.attributes["convir.name"] = StringAttr("conv_7")
    with pytest.raises(PassFailedException, match=r"no algorithm applies to conv_7 \('conv"):
        choose_algorithm(op, AVX512)


def test_real_algorithms_on_the_five_kinds_of_conv() -> None:
    depthwise = only_conv(conv_module(c=32, o=32, group=32, pad=1, block=16))
    pointwise = only_conv(conv_module(c=32, o=64, kernel=1, block=16))
    unstrided = only_conv(conv_module(c=64, o=64, pad=1, block=16))
    narrow = only_conv(conv_module(c=64, o=64, stride=2, pad=1, block=16))
    wide = only_conv(conv_module(c=512, o=64, stride=2, pad=1, block=16))
    grouped = only_conv(conv_module(c=64, o=64, group=2, pad=1, block=16))
    assert choose_algorithm(depthwise, AVX512) == "depthwise"
    assert choose_algorithm(pointwise, AVX512) == "gemm1x1"
    assert choose_algorithm(unstrided, AVX512) == "winograd"
    assert choose_algorithm(narrow, AVX512) == "direct"
    assert choose_algorithm(wide, AVX512) == "im2col"
    assert choose_algorithm(grouped, AVX512) == "direct"


def test_select_sets_only_the_algorithm_and_names_the_conv() -> None:
    module = conv_module(c=512, o=64, stride=2, pad=1, block=16)
    select_algorithms(module, AVX512)
    op = only_conv(module)
    assert op.algorithm == StringAttr("im2col") and op.schedule is None
    assert op.attributes["convir.name"] == StringAttr("conv_0")


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ('algorithm = "fft", ', r"conv_0 \('conv.conv2d'\): algorithm 'fft' \(pinned"),
        ('algorithm = "depthwise", ', r"'depthwise' \(pinned in the IR\) does not apply"),
    ],
)
def test_a_bad_pinned_algorithm_is_an_error(attributes: str, message: str) -> None:
    module = conv_module(c=64, o=64, pad=1, block=16, attributes=attributes)
    with pytest.raises(PassFailedException, match=message):
        select_algorithms(module, AVX512)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"conv_0": "direct", "/a/Conv": "direct"},
            "'/a/Conv=direct': names the same conv as 'conv_0=direct'",
        ),
        ({"conv_1": "direct"}, "no conv is named 'conv_1'; expected conv_0 or a conv's onnx"),
        ({"all": "nosuch"}, "algorithm 'all=nosuch': unknown algorithm 'nosuch'"),
    ],
)
def test_bad_overrides_are_errors(overrides: dict, message: str) -> None:
    module = conv_module(c=64, o=64, pad=1, block=16, attributes='onnx.name = "/a/Conv", ')
    with pytest.raises(PassFailedException, match=message):
        select_algorithms(module, AVX512, overrides)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # DeepLabV3's ASPP: 3x3, dilation 12, pad 12 on 14x14: 82 % of the taps on padding
        (dict(c=960, o=256, pad=12, dilation=12, block=8, hw=14), ["direct", "im2win", "im2col"]),
        # FCN's dilation 4 at 28x28 (18 %): direct first; dilation 2 (10 %): im2win stays first
        (dict(c=512, o=512, pad=4, dilation=4, block=8, hw=28), ["direct", "im2win", "im2col"]),
        (dict(c=512, o=512, pad=2, dilation=2, block=8, hw=28), ["im2win", "im2col", "direct"]),
        # not dilated, however much padding: the usual order
        (dict(c=64, o=64, pad=1, block=8, hw=3), ["im2win", "direct", "im2col"]),
    ],
)
def test_dilated_convs_mostly_on_padding_take_direct_first(shape: dict, expected: list[str]):
    """direct.skips_much_padding: direct skips padded kernel rows and columns."""
    op = only_conv(conv_module(**shape))
    target = AVX2.with_(l2_bytes=512 << 10)
    assert preferred_algorithms(op, target, winograd_tolerance=0.0) == expected
    if expected[0] == "direct":  # on every target
        assert preferred_algorithms(op, ZEN4, winograd_tolerance=0.0) == ["direct", "im2col"]
