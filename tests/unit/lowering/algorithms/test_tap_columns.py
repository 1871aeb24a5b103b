"""Border tiles of `direct` and `im2win` run only the kernel columns inside the input for some of
their pixels (`border_tiles.tap_columns`): the range against brute force, and atrous convs on small
maps (every tile a border tile, most taps padding: DeepLabV3's ASPP) against the reference, with
finite weights and with an Inf weight on a tap that is padding for part of the tiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convir import reference
from lowering.algorithms.border_tiles import tap_columns
from lowering.algorithms.common import ConvGeometry
from lowering.algorithms.direct import DirectSchedule
from lowering.algorithms.im2win import Im2winSchedule
from tests.nonfinite import assert_same_nonfinite
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    ACTIVATIONS,
    ConvCase,
    check_case,
    compile_nchwc_conv,
    logical_lanes,
)


def _geometry(w: int, kw: int, stride: int, dilation: int, left: int, right: int):
    ow = (w + left + right - dilation * (kw - 1) - 1) // stride + 1
    return ConvGeometry(
        1, 8, 1, w, 8, 1, 1, kw, 1, ow, (1, stride), (0, left, 0, right), (1, dilation), 8, False
    )


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(1, 20),
    kw=st.integers(1, 5),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 13),
    left=st.integers(0, 30),
    right=st.integers(0, 30),
    data=st.data(),
)
def test_tap_columns_span_the_live_columns(w, kw, stride, dilation, left, right, data):
    g = _geometry(w, kw, stride, dilation, left, right)
    if g.ow < 1:
        return
    ow0 = data.draw(st.integers(0, g.ow - 1))
    width = data.draw(st.integers(1, g.ow - ow0))
    live = [
        k
        for k in range(kw)
        for p in range(ow0, ow0 + width)
        if 0 <= p * stride - left + k * dilation < w
    ]
    first, last = tap_columns(g, ow0, width)
    # Every live column is in the range; the range is their hull, exact when the input is
    # wider than a stride's worth of dilated taps (then no column inside it is dead).
    assert all(first <= k < last for k in live)
    if w >= stride * dilation:
        assert (first, last) == (min(live), max(live) + 1) if live else last <= first


def test_tap_columns_of_the_deeplabv3_atrous_conv() -> None:
    # 3x3, dilation 12, pad 12, on 14 columns: the left tile needs kw 1..2, the right 0..1.
    g = _geometry(14, 3, 1, 12, 12, 12)
    assert [tap_columns(g, ow0, 5) for ow0 in (0, 5)] == [(1, 3), (1, 2)]
    assert tap_columns(g, 10, 4) == (0, 2)


@st.composite
def atrous_cases(draw):
    seed = draw(st.integers(0, 1000))
    block = draw(st.sampled_from([4, 8]))
    c, o = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    dh, dw = draw(st.integers(1, 8)), draw(st.integers(2, 8))
    pads = [
        draw(st.integers(0, dh * (kh - 1))),
        draw(st.integers(0, dw * (kw - 1))),
        draw(st.integers(0, dh * (kh - 1))),
        draw(st.integers(0, dw * (kw - 1))),
    ]
    # At least one output pixel; the dilated kernel may be wider than the map.
    lowest_h = max(1, dh * (kh - 1) + 1 - pads[0] - pads[2])
    lowest_w = max(1, dw * (kw - 1) + 1 - pads[1] - pads[3])
    h = draw(st.integers(lowest_h, max(lowest_h, 9)))
    w = draw(st.integers(lowest_w, max(lowest_w, 15)))
    case = ConvCase(
        rand(1, c, h, w, seed=seed),
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
    ow_block, oc_blocks = draw(st.integers(1, 6)), draw(st.integers(1, 2))
    if draw(st.booleans()):
        schedule = Im2winSchedule(ow_block, oc_blocks, draw(st.integers(1, 3)), 2)
        return case, block, "im2win", schedule, seed
    return case, block, "direct", DirectSchedule(block, ow_block, oc_blocks), seed


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=atrous_cases())
def test_atrous_convs_match_reference(drawn, tmp_path_factory) -> None:
    case, block, algorithm, schedule, seed = drawn
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    check_case(case, block, algorithm, schedule, cache_dir, seed)


@pytest.mark.parametrize("algorithm", ["direct", "im2win"])
def test_an_inf_weight_on_a_partly_padded_column(algorithm, tmp_path_factory) -> None:
    """Kernel column 0 (dilation 6, pad 6 on 13 columns) is padding for output columns 0..5 and
    live for the rest: the tiles that run it mask it where it is padding, and the outputs that
    read it are Inf (as in the reference), the others finite."""
    weight = rand(8, 5, 3, 3, seed=1)
    weight[:, :, 1, 0] = np.inf
    case = ConvCase(rand(1, 5, 7, 13), weight, attributes=dict(pads=[6, 6, 6, 6], dilations=[6, 6]))
    schedule = DirectSchedule(8, 4, 1) if algorithm == "direct" else Im2winSchedule(4, 1, 2, 2)
    compiled = compile_nchwc_conv(
        case, 8, algorithm, schedule, cache_dir=tmp_path_factory.getbasetemp() / "cache"
    )
    expected = reference.conv2d(case.x, case.weight, None, **case.attributes)
    assert np.isfinite(expected[..., :6]).all() and not np.isfinite(expected[..., 6:]).any()
    for threads in (1, 2):
        compiled.threads = threads
        y = logical_lanes(compiled.run({"x": reference.pack(case.x, 8)})["y"], 8)
        assert_same_nonfinite(y, expected)
