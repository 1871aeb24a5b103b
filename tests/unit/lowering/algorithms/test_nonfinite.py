"""NaN and Inf weights and inputs with padding, in every conv algorithm, compiled natively.

The padding contributes nothing (not 0 · Inf = NaN), so every algorithm must give the reference's
NaN/Inf pattern (`convir.reference.conv2d`, checked against ONNX Runtime in
tests/unit/test_reference_kernels.py): direct on NCHW, on NCHWc and on an NCHW image read into
NCHWc (a stem), depthwise, gemm1x1, im2col and im2win, at blocks 1 and 16, at 1 and 2 threads.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convir import reference
from convir.compiler import compile
from tests.nonfinite import assert_same_nonfinite, with_nonfinite
from tests.onnx_cases import rand, single_node_model
from tests.unit.lowering.algorithms.nchwc_harness import (
    ConvCase,
    compile_nchwc_conv,
    expected_nchwc,
    logical_lanes,
)

#: (algorithm, layout): "nchwc" runs on an NCHWc input, "stem" reads an NCHW image with fewer
#: channels than the block and writes NCHWc, "nchw" is a grouped conv left in NCHW (groups of
#: fewer output channels than the block), both as conv-convert-layout places them.
VARIANTS = [
    ("direct", "nchwc"),
    ("direct", "stem"),
    ("direct", "nchw"),
    ("depthwise", "nchwc"),
    ("gemm1x1", "nchwc"),
    ("im2col", "nchwc"),
    ("im2win", "nchwc"),
]


@st.composite
def nonfinite_cases(draw):
    algorithm, layout = draw(st.sampled_from(VARIANTS))
    # At block 1 every conv is NCHWc: the NCHW layouts exist only beside a wider block.
    block = draw(st.sampled_from([1, 16])) if layout == "nchwc" else 16
    group = 1
    if algorithm == "depthwise":
        group = c = o = draw(st.integers(1, 20))
    elif layout == "stem":
        c, o = draw(st.integers(1, 4)), draw(st.integers(1, 20))
    elif layout == "nchw":
        group = 3  # 1 to 5 output channels per group: never whole blocks, so it stays NCHW
        c, o = 3 * draw(st.integers(1, 2)), 3 * draw(st.integers(1, 5))
    else:
        c, o = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    if algorithm == "gemm1x1":
        kh = kw = dh = dw = 1
        pads = [0, 0, 0, 0]
    else:
        kh = draw(st.integers(1, 4))
        # im2win does not apply to 1×1 kernels (gemm1x1 and direct run those).
        kw = draw(st.integers(2 if kh == 1 and algorithm == "im2win" else 1, 4))
        dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        pads = [draw(st.integers(0, 3)) for _ in range(4)]
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 14))
    seed = draw(st.integers(0, 1000))
    x = with_nonfinite(
        rand(draw(st.integers(1, 2)), c, h, w, seed=seed), draw(st.integers(0, 2)), seed
    )
    weight = rand(o, c // group, kh, kw, seed=seed + 1)
    weight = with_nonfinite(weight, draw(st.integers(1, 3)), seed + 1)
    bias = rand(o, seed=seed + 2) if draw(st.booleans()) else None
    strides = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    attributes = dict(strides=strides, pads=pads, dilations=[dh, dw], group=group)
    return algorithm, layout, block, ConvCase(x, weight, bias, attributes=attributes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=nonfinite_cases())
def test_padding_contributes_nothing_in_every_algorithm(drawn, tmp_path_factory) -> None:
    algorithm, layout, block, case = drawn
    cache_dir = tmp_path_factory.getbasetemp() / "cache"
    out_channels = case.weight.shape[0]
    if layout == "nchwc":
        compiled = compile_nchwc_conv(case, block, algorithm, cache_dir=cache_dir)
        feed = {"x": reference.pack(case.x, block)}
        expected = logical_lanes(expected_nchwc(case, None, block), out_channels)
    else:
        initializers = {"w": case.weight} | ({"b": case.bias} if case.bias is not None else {})
        model = single_node_model("Conv", {"x": case.x}, initializers, **case.attributes)
        compiled = compile(model, block=block, algorithms={"all": algorithm}, cache_dir=cache_dir)
        feed = {"x": case.x}
        expected = reference.conv2d(case.x, case.weight, case.bias, **case.attributes)
    for threads in (1, 2):
        compiled.threads = threads
        y = compiled.run(feed)["y"]
        actual = logical_lanes(y, out_channels) if layout == "nchwc" else y
        assert_same_nonfinite(actual, expected)
