"""`conv-lower-conv-transpose` and `conv.conv_transpose`: the phase decomposition computes what
the numpy reference (itself checked against onnxruntime) computes, for random shapes, strides,
pads, output paddings, dilations and groups."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from xdsl.utils.exceptions import PassFailedException

from convir import reference
from convir.dialects import conv, make_context
from convir.importer.onnx import import_onnx
from passes.lower_conv_transpose import lower_conv_transposes, plan_axis

ort = pytest.importorskip("onnxruntime")


def conv_transpose_model(
    x_shape, w: np.ndarray, b: np.ndarray | None, weight_input: bool = False, **attrs
) -> onnx.ModelProto:
    """One ConvTranspose node; the weight an initializer (or a graph input)."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    initializers = [] if weight_input else [numpy_helper.from_array(w, "w")]
    if weight_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
    names = ["x", "w"]
    if b is not None:
        initializers.append(numpy_helper.from_array(b, "b"))
        names.append("b")
    node = helper.make_node("ConvTranspose", names, ["y"], name="up", **attrs)
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", inputs, [output], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})[0]


@st.composite
def conv_transpose_cases(draw):
    """(x, w, b, attributes) of a valid ConvTranspose that onnxruntime accepts."""
    group = draw(st.integers(1, 3))
    channels = group * draw(st.integers(1, 3))
    group_outputs = draw(st.integers(1, 3))
    kernel = draw(st.tuples(st.integers(1, 5), st.integers(1, 5)))
    strides = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    dilations = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    size = draw(st.tuples(st.integers(1, 6), st.integers(1, 6)))
    # onnxruntime requires output_padding < stride.
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in strides)
    full = [
        s * (n - 1) + e + d * (k - 1) + 1
        for s, n, e, d, k in zip(strides, size, output_padding, dilations, kernel, strict=True)
    ]
    begins = [draw(st.integers(0, f - 1)) for f in full]
    ends = [draw(st.integers(0, f - 1 - b)) for f, b in zip(full, begins, strict=True)]
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((draw(st.integers(1, 2)), channels, *size)).astype(np.float32)
    w = rng.standard_normal((channels, group_outputs, *kernel)).astype(np.float32)
    b = rng.standard_normal(group * group_outputs).astype(np.float32)
    attrs = dict(
        strides=list(strides),
        dilations=list(dilations),
        pads=[*begins, *ends],
        output_padding=list(output_padding),
        group=group,
    )
    return x, w, b if draw(st.booleans()) else None, attrs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_transpose_cases())
def test_phase_convs_match_the_reference(case) -> None:
    x, w, b, attrs = case
    ctx = make_context()
    module = import_onnx(conv_transpose_model(x.shape, w, b, **attrs), ctx=ctx)
    expected = reference.run(module, {"x": x}, ctx=ctx)["y"]
    lower_conv_transposes(module, ctx)
    module.verify()
    assert not any(isinstance(op, conv.ConvTransposeOp) for op in module.walk())
    lowered = reference.run(module, {"x": x}, ctx=ctx)["y"]
    np.testing.assert_allclose(lowered, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_transpose_cases())
def test_reference_matches_onnxruntime(case) -> None:
    x, w, b, attrs = case
    expected = run_ort(conv_transpose_model(x.shape, w, b, **attrs), x)
    actual = reference.conv_transpose2d(
        x,
        w,
        b,
        strides=attrs["strides"],
        pads=attrs["pads"],
        dilations=attrs["dilations"],
        output_padding=attrs["output_padding"],
        group=attrs["group"],
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "attrs",
    [
        dict(strides=[2, 2], auto_pad="SAME_UPPER"),
        dict(strides=[2, 3], auto_pad="SAME_LOWER"),
        dict(strides=[2, 2], output_shape=[8, 7]),
        dict(strides=[3, 2], output_shape=[9, 8], auto_pad="SAME_UPPER"),
        dict(strides=[2, 2], auto_pad="VALID"),
        dict(strides=[1, 1], auto_pad="SAME_UPPER"),
        dict(strides=[3, 2], output_shape=[12, 10]),
        dict(strides=[3, 2], output_shape=[11, 9], auto_pad="SAME_UPPER"),
    ],
)
def test_importer_resolves_pads_as_onnxruntime(attrs) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    model = conv_transpose_model(x.shape, w, None, **attrs)
    ctx = make_context()
    actual = reference.run(import_onnx(model, ctx=ctx), {"x": x}, ctx=ctx)["y"]
    np.testing.assert_allclose(actual, run_ort(model, x), rtol=1e-5, atol=1e-5)


def test_plan_axis_of_the_usual_upsampling() -> None:
    """4-tap stride-2 pad-1 (2x upsampling of 5 rows): two 2-tap phases over 6 phase rows; the
    even phase's first row and the odd phase's last are cropped by the interleave (offset 1)."""
    plan = plan_axis(size=5, kernel=4, stride=2, dilation=1, pad_begin=1, output_size=10)
    assert (plan.rows, plan.offset) == (6, 1)
    even, odd = plan.phases
    assert even is not None and odd is not None
    assert (even.taps, even.pad_begin, even.pad_end, even.dilation) == ((2, 0), 1, 1, 1)
    assert (odd.taps, odd.pad_begin, odd.pad_end, odd.dilation) == ((3, 1), 1, 1, 1)


def test_phase_without_taps_is_the_bias() -> None:
    """Dilation 2 with stride 2: odd output rows get no tap, only the bias."""
    plan = plan_axis(size=3, kernel=3, stride=2, dilation=2, pad_begin=0, output_size=9)
    assert plan.phases[1] is None
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    b = np.full(1, 0.5, np.float32)
    ctx = make_context()
    module = import_onnx(
        conv_transpose_model(x.shape, w, b, strides=[2, 2], dilations=[2, 2]), ctx=ctx
    )
    lower_conv_transposes(module, ctx)
    y = reference.run(module, {"x": x}, ctx=ctx)["y"]
    np.testing.assert_array_equal(y[0, 0, 1::2], 0.5)


def test_computed_weight_is_refused_naming_the_node() -> None:
    x_shape, w = (1, 2, 4, 4), np.ones((2, 1, 3, 3), np.float32)
    ctx = make_context()
    module = import_onnx(conv_transpose_model(x_shape, w, None, weight_input=True), ctx=ctx)
    with pytest.raises(PassFailedException, match=r"node 'up'.*only constant weights"):
        lower_conv_transposes(module, ctx)
