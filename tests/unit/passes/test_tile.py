"""conv-tile: heuristic knobs filled around pinned ones, validated, per target."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, StringAttr, i64
from xdsl.utils.exceptions import PassFailedException

from convir.target import Target
from lowering.algorithms.direct import DirectSchedule
from passes.tile import tile_conv, tile_convs
from tests.unit.passes.conv_ir import conv_module, only_conv

AVX2 = Target.preset("x86-avx2")
AVX512 = Target.preset("x86-avx512")


def schedule_of(op) -> dict[str, int]:
    return {knob: value.value.data for knob, value in op.schedule.data.items()}


def test_every_knob_is_filled_in_the_schedule_class_order() -> None:
    op = only_conv(conv_module(c=16, o=32, pad=1, attributes='algorithm = "direct", '))
    tile_conv(op, AVX2)
    assert list(schedule_of(op)) == ["vector_width", "ow_block", "oc_blocks"]
    assert schedule_of(op)["vector_width"] == 8
    DirectSchedule.from_attr(op.schedule)


def test_the_heuristic_reads_the_target() -> None:
    schedules = []
    for target in (AVX2, AVX512):
        op = only_conv(conv_module(c=16, o=32, pad=1, attributes='algorithm = "direct", '))
        tile_conv(op, target)
        schedules.append(schedule_of(op)["vector_width"])
    assert schedules == [8, 16]


def test_pinned_knobs_are_kept_and_option_knobs_win() -> None:
    attributes = 'algorithm = "direct", schedule = {ow_block = 3 : i64}, '
    op = only_conv(conv_module(c=16, o=32, pad=1, attributes=attributes))
    tile_conv(op, AVX2)
    assert schedule_of(op)["ow_block"] == 3
    tile_conv(op, AVX2, {"ow_block": 5, "oc_blocks": 1})
    assert schedule_of(op) == {"vector_width": 8, "ow_block": 5, "oc_blocks": 1}


def test_a_conv_without_algorithm_is_left_alone() -> None:
    module = conv_module(c=16, o=32, pad=1)
    tile_convs(module, AVX2)
    op = only_conv(module)
    assert op.schedule is None and op.algorithm is None
    assert op.attributes["convir.name"] == StringAttr("conv_0")


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"unroll": 2}, r"conv_0 \('conv.conv2d'\): direct schedule: unknown or non-integer knob"),
        ({"ow_block": 0}, "knobs must be >= 1"),
    ],
)
def test_a_bad_pinned_schedule_is_an_error_naming_the_conv(schedule, message) -> None:
    op = only_conv(conv_module(c=16, o=32, attributes='algorithm = "direct", '))
    op.attributes["convir.name"] = StringAttr("conv_0")
    op.schedule = DictionaryAttr({k: IntegerAttr(v, i64) for k, v in schedule.items()})
    with pytest.raises(PassFailedException, match=message):
        tile_conv(op, AVX2)


def test_an_unknown_algorithm_is_an_error() -> None:
    module = conv_module(c=16, o=32, attributes='algorithm = "fft", ')
    with pytest.raises(PassFailedException, match="algorithm 'fft' is unknown; expected"):
        tile_convs(module, AVX2)
