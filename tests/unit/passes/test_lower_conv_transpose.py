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
    x_shape,
    w: np.ndarray,
    b: np.ndarray | None,
    weight_input: bool = False,
    epilogue: tuple[str, ...] = (),
    **attrs,
) -> onnx.ModelProto:
    """One ConvTranspose node; the weight an initializer (or a graph input); `epilogue` names
    nodes applied after it in order ("bn", "relu", "leaky_relu", "sigmoid")."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    initializers = [] if weight_input else [numpy_helper.from_array(w, "w")]
    if weight_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
    names = ["x", "w"]
    if b is not None:
        initializers.append(numpy_helper.from_array(b, "b"))
        names.append("b")
    nodes = [helper.make_node("ConvTranspose", names, ["y0"], name="up", **attrs)]
    channels = w.shape[1] * attrs.get("group", 1)
    rng = np.random.default_rng(7)
    for i, kind in enumerate(epilogue, start=1):
        source, target = f"y{i - 1}", f"y{i}"
        if kind == "bn":
            params = [rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)]
            params += [rng.standard_normal(channels), rng.uniform(0.5, 1.5, channels)]
            bn_names = [f"bn_{p}" for p in ("scale", "bias", "mean", "var")]
            for p, p_name in zip(params, bn_names, strict=True):
                initializers.append(numpy_helper.from_array(p.astype(np.float32), p_name))
            nodes.append(helper.make_node("BatchNormalization", [source, *bn_names], [target]))
        else:
            op_type = {"relu": "Relu", "leaky_relu": "LeakyRelu", "sigmoid": "Sigmoid"}[kind]
            nodes.append(helper.make_node(op_type, [source], [target]))
    nodes[-1].output[0] = "y"
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [output], initializers)
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


EPILOGUES = [(), ("bn",), ("relu",), ("bn", "relu"), ("bn", "leaky_relu"), ("sigmoid", "relu")]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_transpose_cases(), epilogue=st.sampled_from(EPILOGUES))
def test_phase_convs_match_the_reference(case, epilogue) -> None:
    x, w, b, attrs = case
    ctx = make_context()
    model = conv_transpose_model(x.shape, w, b, epilogue=epilogue, **attrs)
    module = import_onnx(model, ctx=ctx)
    expected = reference.run(module, {"x": x}, ctx=ctx)["y"]
    lower_conv_transposes(module, ctx)
    module.verify()
    kinds = {type(op) for op in module.walk()}
    assert conv.ConvTransposeOp not in kinds and conv.BatchNormOp not in kinds
    # The batchnorm is folded; the first activation after it reads the phase convs (where
    # conv-fuse-epilogue fuses it); a second one stays after the interleave.
    activations = [op for op in module.walk() if isinstance(op, conv.ActivationOp)]
    on_phases = [op for op in activations if isinstance(op.input.owner, conv.Conv2DOp)]
    assert len(activations) - len(on_phases) == (
        1 if len(epilogue) == 2 and "bn" not in epilogue else 0
    )
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
    """4-tap stride-2 pad-1 (2x upsampling of 5 rows): two 2-tap phases of exactly 5 rows each;
    even output rows use taps 3 and 1 with the pad before, odd rows taps 2 and 0 with it after."""
    even, odd = plan_axis(size=5, kernel=4, stride=2, dilation=1, pad_begin=1, output_size=10)
    assert (even.rows, even.taps, even.pad_begin, even.pad_end) == (5, (3, 1), 1, 0)
    assert (odd.rows, odd.taps, odd.pad_begin, odd.pad_end) == (5, (2, 0), 0, 1)
    assert even.dilation == odd.dilation == 1


def test_plan_axis_of_an_odd_kernel_computes_no_extra_row() -> None:
    """3-tap stride-2 pad-1 output_padding-1 on 7 rows (-> 14): 7 rows per phase, not 8."""
    phases = plan_axis(size=7, kernel=3, stride=2, dilation=1, pad_begin=1, output_size=14)
    assert [(p.rows, p.taps) for p in phases] == [(7, (1,)), (7, (2, 0))]


def test_phase_without_taps_is_the_bias() -> None:
    """Dilation 2 with stride 2: odd output rows get no tap, only the bias."""
    phases = plan_axis(size=3, kernel=3, stride=2, dilation=2, pad_begin=0, output_size=9)
    assert phases[1].taps == () and phases[1].rows == 4
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
