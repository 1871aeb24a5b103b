"""Tests of convir.reference against a naive direct convolution and against ONNX Runtime."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from convir import reference
from tests.nonfinite import assert_same_nonfinite, with_nonfinite

OPSET = 19
# onnx 1.23 stamps IR version 14 on new models; onnxruntime 1.31 reads at most 13.
IR_VERSION = 9
RNG = np.random.default_rng(20240611)


def random_array(*shape: int, scale: float = 1.0) -> np.ndarray:
    """Return a float32 standard-normal array of `shape` times `scale`."""
    return np.asarray(RNG.standard_normal(shape) * scale, dtype=np.float32)


def run_onnx_node(
    op_type: str, inputs: Sequence[np.ndarray], *, opset: int = OPSET, **attributes: Any
) -> np.ndarray:
    """Run one `op_type` node in ONNX Runtime with `inputs` as graph inputs; return its output."""
    names = [f"input{i}" for i in range(len(inputs))]
    graph_inputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
        for name, x in zip(names, inputs, strict=True)
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    node = helper.make_node(op_type, names, ["output"], **attributes)
    graph = helper.make_graph([node], op_type, graph_inputs, [output])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION
    )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # ONNX shape inference disagrees with the runtime on ceil_mode pools; silence its warning.
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, dict(zip(names, inputs, strict=True)))[0]


def assert_matches(actual: np.ndarray, expected: np.ndarray) -> None:
    """Assert float32 `actual` equals `expected` to 1e-5 of max(1, max |expected|)."""
    assert actual.dtype == np.float32
    assert actual.shape == expected.shape
    tolerance = 1e-5 * max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance)


def direct_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    group: int,
) -> np.ndarray:
    """Convolution by its definition: one explicit loop per index, float64 accumulation."""
    n_images, _, height, width = x.shape
    out_channels, group_channels, kernel_h, kernel_w = w.shape
    out_h = (height + pads[0] + pads[2] - dilations[0] * (kernel_h - 1) - 1) // strides[0] + 1
    out_w = (width + pads[1] + pads[3] - dilations[1] * (kernel_w - 1) - 1) // strides[1] + 1
    per_group = out_channels // group
    xs, ws = x.tolist(), w.tolist()
    y = np.zeros((n_images, out_channels, out_h, out_w))
    for n in range(n_images):
        for o in range(out_channels):
            first_channel = (o // per_group) * group_channels
            for oh in range(out_h):
                for ow in range(out_w):
                    total = 0.0 if b is None else float(b[o])
                    for c in range(group_channels):
                        for kh in range(kernel_h):
                            ih = oh * strides[0] - pads[0] + kh * dilations[0]
                            for kw in range(kernel_w):
                                iw = ow * strides[1] - pads[1] + kw * dilations[1]
                                if 0 <= ih < height and 0 <= iw < width:
                                    total += xs[n][first_channel + c][ih][iw] * ws[o][c][kh][kw]
                    y[n, o, oh, ow] = total
    return y


@st.composite
def tiny_channels(draw: st.DrawFn) -> tuple[int, int, int]:
    """(group, input channels, output channels) of a tiny grouped convolution."""
    group = draw(st.integers(1, 3))
    return group, group * draw(st.integers(1, 2)), group * draw(st.integers(1, 2))


@st.composite
def ort_nchwc_channels(draw: st.DrawFn) -> tuple[int, int, int]:
    """(group, input channels, output channels) that ONNX Runtime's NCHWc transformer takes on
    AVX-512 (block 16): 16 output channels and fewer than 16 or 16 input channels, or a
    depthwise conv of 16 channels."""
    if draw(st.booleans()):
        return 16, 16, 16
    return 1, draw(st.sampled_from([1, 2, 3, 16])), 16


@st.composite
def conv_problems(
    draw: st.DrawFn, channels: st.SearchStrategy[tuple[int, int, int]] | None = None
) -> dict[str, Any]:
    """Draw a tiny grouped, strided, dilated, asymmetrically padded convolution with output >= 1
    (channels from `channels`, by default `tiny_channels`)."""
    group, channels, out_channels = draw(channels or tiny_channels())
    kernel = [draw(st.integers(1, 5)) for _ in range(2)]
    strides = [draw(st.integers(1, 3)) for _ in range(2)]
    dilations = [draw(st.integers(1, 3)) for _ in range(2)]
    pads = [draw(st.integers(0, 3)) for _ in range(4)]
    sizes = []
    for axis in range(2):
        out_size = draw(st.integers(1, 4))
        extra = draw(st.integers(0, strides[axis] - 1))
        extent = dilations[axis] * (kernel[axis] - 1) + 1
        padding = pads[axis] + pads[axis + 2]
        sizes.append(max(1, (out_size - 1) * strides[axis] + extent - padding + extra))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_images = draw(st.integers(1, 2))
    return {
        "x": rng.standard_normal((n_images, channels, *sizes)).astype(np.float32),
        "w": rng.standard_normal((out_channels, channels // group, *kernel)).astype(np.float32),
        "b": rng.standard_normal(out_channels).astype(np.float32) if draw(st.booleans()) else None,
        "strides": strides,
        "pads": pads,
        "dilations": dilations,
        "group": group,
    }


@settings(max_examples=200, deadline=None)
@given(conv_problems())
def test_conv2d_matches_direct_loops(problem: dict[str, Any]) -> None:
    """conv2d agrees with the loop-by-loop definition of convolution."""
    expected = direct_conv2d(**problem)
    x, w, b = problem.pop("x"), problem.pop("w"), problem.pop("b")
    actual = reference.conv2d(x, w, b, **problem)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


CONV_CASES = [
    ((1, 3, 9, 9), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 4, 10, 11), (6, 4, 3, 3), {"strides": [2, 2], "pads": [0, 1, 2, 1]}),
    ((1, 3, 12, 12), (5, 3, 3, 3), {"dilations": [2, 3], "pads": [2, 3, 2, 1]}),
    ((1, 6, 8, 8), (9, 2, 3, 3), {"group": 3, "pads": [1, 0, 1, 2]}),
    ((1, 8, 9, 9), (8, 1, 3, 3), {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 8, 7, 7), (16, 1, 5, 5), {"group": 8, "pads": [2, 2, 2, 2], "dilations": [2, 1]}),
    ((1, 8, 9, 9), (4, 8, 1, 1), {"strides": [2, 2]}),
    ((1, 3, 20, 20), (8, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    ((1, 4, 7, 9), (3, 4, 1, 3), {"strides": [2, 1], "dilations": [1, 2], "pads": [0, 2, 1, 0]}),
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(("x_shape", "w_shape", "attributes"), CONV_CASES)
def test_conv2d_matches_onnx(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], attributes: dict[str, Any], with_bias: bool
) -> None:
    """conv2d matches ONNX Conv, including groups, depthwise, dilation and asymmetric pads."""
    x, w = random_array(*x_shape), random_array(*w_shape)
    inputs = [x, w, random_array(w_shape[0])] if with_bias else [x, w]
    expected = run_onnx_node("Conv", inputs, kernel_shape=list(w_shape[2:]), **attributes)
    assert_matches(reference.conv2d(*inputs, **attributes), expected)


def run_onnx_conv_with_constant_weights(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, **attributes: Any
) -> np.ndarray:
    """ONNX Runtime's Conv with w (and b) as initializers, fully optimised (ORT_ENABLE_ALL):
    its NCHWc kernels skip padded taps, as the ONNX definition does. (Unoptimised, with weights
    as inputs, it multiplies a zero-filled im2col buffer: 0 · Inf = NaN in the padding.)"""
    names = ["x", "w"] + (["b"] if b is not None else [])
    inits = [numpy_helper.from_array(w, "w")] + (
        [numpy_helper.from_array(b, "b")] if b is not None else []
    )
    node = helper.make_node("Conv", names, ["y"], **attributes)
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})[0]


@settings(max_examples=100, deadline=None)
@given(
    conv_problems(ort_nchwc_channels()),
    st.integers(0, 3),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_conv2d_nan_and_inf_match_onnxruntime(
    problem: dict[str, Any], input_specials: int, weight_specials: int, seed: int
) -> None:
    """With NaN and ±Inf in inputs and weights, conv2d gives ONNX Runtime's NaN/Inf pattern:
    padded taps form no product, so an Inf weight meeting only padding leaves no NaN.

    Only on the shapes ORT runs with its NCHWc kernels: its other paths (im2col on a zero-filled
    buffer) do form 0 · Inf in the padding, and so differ from one shape to the next."""
    x = with_nonfinite(problem.pop("x"), input_specials, seed)
    w = with_nonfinite(problem.pop("w"), weight_specials, seed + 1)
    b = problem.pop("b")
    expected = run_onnx_conv_with_constant_weights(x, w, b, **problem)
    assert_same_nonfinite(reference.conv2d(x, w, b, **problem), expected, rtol=1e-4, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(conv_problems(), st.integers(0, 3), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_conv2d_nan_and_inf_match_direct_loops(
    problem: dict[str, Any], input_specials: int, weight_specials: int, seed: int
) -> None:
    """The loop-by-loop definition (which skips taps outside the input) agrees on NaN/Inf."""
    problem["x"] = with_nonfinite(problem["x"], input_specials, seed)
    problem["w"] = with_nonfinite(problem["w"], weight_specials, seed + 1)
    expected = direct_conv2d(**problem).astype(np.float32)
    x, w, b = problem.pop("x"), problem.pop("w"), problem.pop("b")
    assert_same_nonfinite(reference.conv2d(x, w, b, **problem), expected, rtol=1e-4, atol=1e-5)


POOL_CASES = [
    ((1, 3, 12, 12), (3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 4, 4), (2, 2), {"strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": True}),
    ((1, 2, 7, 8), (3, 3), {"strides": [2, 2], "ceil_mode": True}),
    ((1, 2, 9, 9), (3, 2), {"strides": [2, 3], "pads": [0, 1, 2, 0], "ceil_mode": True}),
    ((1, 2, 11, 10), (2, 3), {"dilations": [2, 2], "strides": [3, 2], "pads": [1, 0, 1, 2]}),
    ((2, 3, 9, 9), (3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 2, 10, 11), (3, 3), {"dilations": [2, 3], "strides": [2, 1], "ceil_mode": True}),
    # the only window sees nothing but padding
    ((1, 2, 1, 1), (2, 1), {"dilations": [2, 1], "pads": [1, 0, 1, 0]}),
]


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("kind", reference.POOL_KINDS)
@pytest.mark.parametrize(("x_shape", "kernel", "attributes"), POOL_CASES)
def test_pool2d_matches_onnx(
    x_shape: tuple[int, ...],
    kernel: tuple[int, int],
    attributes: dict[str, Any],
    kind: str,
    count_include_pad: bool,
) -> None:
    """pool2d matches ONNX MaxPool/AveragePool, with ceil_mode and count_include_pad."""
    x = random_array(*x_shape)
    onnx_attributes = {**attributes, "kernel_shape": list(kernel)}
    if kind == "avg":
        onnx_attributes["count_include_pad"] = int(count_include_pad)
    op_type = "MaxPool" if kind == "max" else "AveragePool"
    expected = run_onnx_node(op_type, [x], **onnx_attributes)
    actual = reference.pool2d(
        x, kind=kind, kernel=kernel, count_include_pad=count_include_pad, **attributes
    )
    assert_matches(actual, expected)


@st.composite
def pool_problems(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a small pooling problem that ONNX Runtime accepts (every pad smaller than kernel)."""
    kernel = [draw(st.integers(1, 4)) for _ in range(2)]
    strides = [draw(st.integers(1, 3)) for _ in range(2)]
    dilations = [draw(st.integers(1, 2)) for _ in range(2)]
    pads = [draw(st.integers(0, kernel[axis % 2] - 1)) for axis in range(4)]
    sizes = []
    for axis in range(2):
        extent = dilations[axis] * (kernel[axis] - 1) + 1
        smallest = max(1, extent - pads[axis] - pads[axis + 2])
        sizes.append(draw(st.integers(smallest, smallest + 7)))
    return {
        "x_shape": (1, 2, *sizes),
        "kind": draw(st.sampled_from(reference.POOL_KINDS)),
        "kernel": kernel,
        "strides": strides,
        "pads": pads,
        "dilations": dilations,
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
    }


@settings(max_examples=400, deadline=None)
@given(pool_problems())
def test_pool2d_matches_onnx_on_random_problems(problem: dict[str, Any]) -> None:
    """pool2d matches ONNX Runtime over random kernels, strides, dilations, pads and modes."""
    x = random_array(*problem.pop("x_shape"))
    kind, count_include_pad = problem.pop("kind"), problem.pop("count_include_pad")
    kernel = tuple(problem.pop("kernel"))
    onnx_attributes = {
        **problem,
        "kernel_shape": list(kernel),
        "ceil_mode": int(problem["ceil_mode"]),
    }
    if kind == "avg":
        expected = run_onnx_node(
            "AveragePool", [x], count_include_pad=int(count_include_pad), **onnx_attributes
        )
    else:
        expected = run_onnx_node("MaxPool", [x], **onnx_attributes)
    actual = reference.pool2d(
        x, kind=kind, kernel=kernel, count_include_pad=count_include_pad, **problem
    )
    assert_matches(actual, expected)


@pytest.mark.parametrize(
    ("kind", "op_type"), [("max", "GlobalMaxPool"), ("avg", "GlobalAveragePool")]
)
def test_global_pool_matches_onnx(kind: str, op_type: str) -> None:
    """global_pool matches GlobalMaxPool and GlobalAveragePool."""
    x = random_array(2, 5, 7, 6)
    assert_matches(reference.global_pool(x, kind), run_onnx_node(op_type, [x]))


def test_batchnorm_matches_onnx() -> None:
    """batchnorm matches inference-mode BatchNormalization."""
    x, scale, bias, mean = (
        random_array(2, 5, 4, 3),
        random_array(5),
        random_array(5),
        random_array(5),
    )
    var = np.abs(random_array(5)) + 0.1
    expected = run_onnx_node("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-3)
    assert_matches(reference.batchnorm(x, scale, bias, mean, var, 1e-3), expected)


def scalar(value: float) -> np.ndarray:
    """Return `value` as a rank-0 float32 array (an ONNX scalar input)."""
    return np.array(value, dtype=np.float32)


# (kind, alpha, beta, ONNX op, extra ONNX inputs, ONNX attributes)
ACTIVATION_CASES = [
    ("relu", 0.0, 0.0, "Relu", [], {}),
    ("leaky_relu", 0.1, 0.0, "LeakyRelu", [], {"alpha": 0.1}),
    ("clip", -0.5, 0.7, "Clip", [scalar(-0.5), scalar(0.7)], {}),
    ("clip", 0.7, -0.5, "Clip", [scalar(0.7), scalar(-0.5)], {}),
    ("sigmoid", 0.0, 0.0, "Sigmoid", [], {}),
    ("hard_sigmoid", 0.3, 0.4, "HardSigmoid", [], {"alpha": 0.3, "beta": 0.4}),
    ("hard_swish", 0.0, 0.0, "HardSwish", [], {}),
    ("tanh", 0.0, 0.0, "Tanh", [], {}),
    ("identity", 0.0, 0.0, "Identity", [], {}),
]


# The math kinds: (kind, alpha, ONNX op, extra ONNX inputs, attributes, opset, positive inputs)
MATH_ACTIVATION_CASES = [
    ("erf", 0.0, "Erf", [], {}, OPSET, False),
    ("gelu", 0.0, "Gelu", [], {}, 20, False),
    ("gelu_tanh", 0.0, "Gelu", [], {"approximate": "tanh"}, 20, False),
    ("mish", 0.0, "Mish", [], {}, OPSET, False),
    ("softplus", 0.0, "Softplus", [], {}, OPSET, False),
    ("sqrt", 0.0, "Sqrt", [], {}, OPSET, True),
    ("reciprocal", 0.0, "Reciprocal", [], {}, OPSET, True),
    ("pow", 0.5, "Pow", [scalar(0.5)], {}, OPSET, True),
    ("pow", 3.0, "Pow", [scalar(3.0)], {}, OPSET, False),
]


def test_every_activation_has_an_onnx_case() -> None:
    """Each kind in ACTIVATIONS is covered by ACTIVATION_CASES or MATH_ACTIVATION_CASES."""
    kinds = {case[0] for case in ACTIVATION_CASES} | {case[0] for case in MATH_ACTIVATION_CASES}
    assert kinds == set(reference.ACTIVATIONS)


@pytest.mark.parametrize(
    ("kind", "alpha", "op_type", "extra_inputs", "attributes", "opset", "positive"),
    MATH_ACTIVATION_CASES,
)
def test_math_activation_matches_onnx(
    kind: str,
    alpha: float,
    op_type: str,
    extra_inputs: list[np.ndarray],
    attributes: dict[str, Any],
    opset: int,
    positive: bool,
) -> None:
    """The math kinds match their ONNX op, far out in the tails (near 0 for the positive ones)."""
    x = np.concatenate([random_array(3, 40, scale=4.0), [[-60.0, -9.0, 0.0, 9.0, 60.0] * 8]])
    x = (np.abs(x) + 1e-3 if positive else x).astype(np.float32)
    expected = run_onnx_node(op_type, [x, *extra_inputs], opset=opset, **attributes)
    assert_matches(reference.activation(x, kind, alpha), expected)


@pytest.mark.parametrize(
    ("kind", "alpha", "beta", "op_type", "extra_inputs", "attributes"), ACTIVATION_CASES
)
def test_activation_matches_onnx(
    kind: str,
    alpha: float,
    beta: float,
    op_type: str,
    extra_inputs: list[np.ndarray],
    attributes: dict[str, float],
) -> None:
    """activation matches the ONNX op of each kind, including far out in the tails."""
    x = np.concatenate([random_array(3, 40, scale=4.0), [[-200.0, -30.0, 0.0, 30.0, 200.0] * 8]])
    x = x.astype(np.float32)
    expected = run_onnx_node(op_type, [x, *extra_inputs], **attributes)
    assert_matches(reference.activation(x, kind, alpha, beta), expected)


BROADCAST_SHAPES = [
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((2, 3, 4, 5), (3, 1, 1)),
    ((1, 3, 1, 5), (2, 1, 4, 1)),
    ((2, 3, 4, 5), ()),
]


@pytest.mark.parametrize(("a_shape", "b_shape"), BROADCAST_SHAPES)
@pytest.mark.parametrize(
    ("kind", "op_type"),
    [
        ("add", "Add"),
        ("sub", "Sub"),
        ("mul", "Mul"),
        ("div", "Div"),
        ("max", "Max"),
        ("min", "Min"),
    ],
)
def test_binary_matches_onnx(
    kind: str, op_type: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...]
) -> None:
    """binary matches the ONNX elementwise ops under multidirectional broadcasting."""
    a = random_array(*a_shape)
    b = np.asarray(RNG.uniform(0.5, 2.0, b_shape) * RNG.choice([-1, 1], b_shape), np.float32)
    assert_matches(reference.binary(a, b, kind), run_onnx_node(op_type, [a, b]))


@pytest.mark.parametrize("slope_shape", [(1, 3, 4, 5), (3, 1, 1), (5,), ()])
def test_prelu_matches_onnx(slope_shape: tuple[int, ...]) -> None:
    """binary's prelu matches ONNX PRelu, the slope broadcast to the input (unidirectionally)."""
    x, slope = random_array(2, 3, 4, 5), random_array(*slope_shape)
    assert_matches(reference.binary(x, slope, "prelu"), run_onnx_node("PRelu", [x, slope]))


def test_binary_kinds_are_all_tested() -> None:
    """BINARY_KINDS lists exactly the kinds test_binary_matches_onnx and test_prelu_... cover."""
    assert set(reference.BINARY_KINDS) == {"add", "sub", "mul", "div", "max", "min", "prelu"}


@pytest.mark.parametrize("c_shape", [None, (), (7,), (5, 1), (5, 7)])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_matches_onnx(trans_a: bool, trans_b: bool, c_shape: tuple[int, ...] | None) -> None:
    """gemm matches ONNX Gemm with transposes, alpha, beta and a broadcast C."""
    a = random_array(*((6, 5) if trans_a else (5, 6)))
    b = random_array(*((7, 6) if trans_b else (6, 7)))
    inputs = [a, b] if c_shape is None else [a, b, random_array(*c_shape)]
    expected = run_onnx_node(
        "Gemm", inputs, alpha=0.5, beta=1.5, transA=int(trans_a), transB=int(trans_b)
    )
    actual = reference.gemm(*inputs, alpha=0.5, beta=1.5, trans_a=trans_a, trans_b=trans_b)
    assert_matches(actual, expected)


@pytest.mark.parametrize("axis", [-1, 0, 1, 3])
def test_softmax_matches_onnx(axis: int) -> None:
    """softmax matches opset-13 Softmax, also for logits that would overflow exp."""
    x = random_array(2, 3, 4, 5, scale=3.0)
    x[0, 0, 0, :] = [100.0, 95.0, -100.0, 0.0, 100.0]
    assert_matches(reference.softmax(x, axis), run_onnx_node("Softmax", [x], axis=axis))


LRN_ATTRIBUTES = {"alpha": 0.3, "beta": 0.75, "bias": 1.5}


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_matches_onnx(size: int) -> None:
    """lrn matches ONNX LRN (onnxruntime accepts only odd sizes)."""
    x = random_array(2, 7, 3, 4, scale=2.0)
    expected = run_onnx_node("LRN", [x], size=size, **LRN_ATTRIBUTES)
    assert_matches(reference.lrn(x, size=size, **LRN_ATTRIBUTES), expected)


@pytest.mark.parametrize("size", [2, 4, 6])
def test_lrn_even_sizes_follow_the_onnx_formula(size: int) -> None:
    """For even sizes the window reaches ceil((size-1)/2) channels forward, one more than back."""
    x = random_array(2, 7, 3, 4, scale=2.0)
    channels = x.shape[1]
    square_sum = np.zeros(x.shape)
    for c in range(channels):
        first = max(0, c - (size - 1) // 2)
        last = min(channels - 1, c + size // 2)
        square_sum[:, c] = np.sum(np.square(x[:, first : last + 1].astype(np.float64)), axis=1)
    alpha, beta, bias = LRN_ATTRIBUTES["alpha"], LRN_ATTRIBUTES["beta"], LRN_ATTRIBUTES["bias"]
    expected = x / (bias + alpha / size * square_sum) ** beta
    assert_matches(reference.lrn(x, size=size, **LRN_ATTRIBUTES), expected)


@pytest.mark.parametrize(
    ("pads", "value"),
    [
        ((0, 0, 1, 1, 0, 0, 1, 1), 0.0),
        ((0, 1, 2, 0, 1, 0, 0, 3), -2.5),
        ((0, 0, -1, 2, 0, 0, 1, -2), 1.0),
        ((1, 0, 0, -2, 0, -1, -1, 0), 0.0),
    ],
)
def test_pad_matches_onnx(pads: tuple[int, ...], value: float) -> None:
    """pad matches constant-mode ONNX Pad, where negative pads crop."""
    x = random_array(2, 3, 4, 5)
    expected = run_onnx_node("Pad", [x, np.array(pads, np.int64), scalar(value)], mode="constant")
    assert_matches(reference.pad(x, pads, value), expected)


def test_data_movement_matches_onnx() -> None:
    """concat, reshape, transpose and slice_axis match Concat, Reshape, Transpose and Slice."""
    x, y = random_array(2, 3, 4, 5), random_array(2, 2, 4, 5)
    assert_matches(reference.concat([x, y], 1), run_onnx_node("Concat", [x, y], axis=1))
    shape = np.array([2, -1, 5], np.int64)
    assert_matches(reference.reshape(x, [2, -1, 5]), run_onnx_node("Reshape", [x, shape]))
    perm = [0, 2, 3, 1]
    assert_matches(reference.transpose(x, perm), run_onnx_node("Transpose", [x], perm=perm))
    bounds = [np.array([value], np.int64) for value in (1, -1, 2)]
    assert_matches(reference.slice_axis(x, 2, 1, -1), run_onnx_node("Slice", [x, *bounds]))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((224, 7, 2, 3, 3, 1), 112),
        ((56, 3, 1, 1, 1, 1), 56),
        ((10, 3, 2, 0, 1, 1), 5),
        ((10, 3, 1, 2, 2, 3), 8),
        ((5, 5, 3, 0, 0, 1), 1),
    ],
)
def test_conv2d_output_size(args: tuple[int, ...], expected: int) -> None:
    """conv2d_output_size is floor((in + pads - dilated extent) / stride) + 1."""
    assert reference.conv2d_output_size(*args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((112, 3, 2, 1, 1, 1, False), 56),
        ((7, 3, 2, 0, 0, 1, False), 3),
        ((8, 3, 2, 0, 0, 1, False), 3),
        ((8, 3, 2, 0, 0, 1, True), 4),
        ((5, 3, 2, 0, 1, 1, True), 3),
        # ceil gives 3, but the third window would start in the bottom padding
        ((4, 2, 2, 0, 1, 1, True), 2),
        ((10, 3, 2, 0, 0, 3, True), 3),
    ],
)
def test_pool2d_output_size(args: tuple[int, ...], expected: int) -> None:
    """pool2d_output_size rounds down, or up with ceil_mode minus windows starting in padding."""
    assert reference.pool2d_output_size(*args) == expected


@pytest.mark.parametrize(
    "args",
    [
        (2, 3, 1, 0, 0, 1),
        (4, 3, 1, 0, 0, 2),
        (3, 3, 0, 0, 0, 1),
        (3, 0, 1, 0, 0, 1),
        (3, 1, 1, -1, 0, 1),
        (3, 1, 1, 0, 0, 0),
        (0, 1, 1, 1, 1, 1),
    ],
)
def test_output_size_helpers_reject_empty_or_invalid(args: tuple[int, ...]) -> None:
    """Both helpers raise ValueError when the output would be empty or a parameter is invalid."""
    with pytest.raises(ValueError):
        reference.conv2d_output_size(*args)
    for ceil_mode in (False, True):
        with pytest.raises(ValueError):
            reference.pool2d_output_size(*args, ceil_mode)


def test_unknown_kinds_raise_naming_the_kind_and_the_known_ones() -> None:
    """Unknown activation, binary and pool kinds raise ValueError listing the accepted kinds."""
    x = random_array(1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"'swish_fast'.*relu, leaky_relu, clip"):
        reference.activation(x, "swish_fast")
    with pytest.raises(ValueError, match=r"'pow'.*add, sub, mul, div, max, min"):
        reference.binary(x, x, "pow")
    with pytest.raises(ValueError, match=r"'lp'.*max, avg"):
        reference.pool2d(x, kind="lp", kernel=(2, 2))
    with pytest.raises(ValueError, match=r"'lp'.*max, avg"):
        reference.global_pool(x, "lp")


def test_shape_errors_raise() -> None:
    """conv2d rejects channels that do not fit the group; pad rejects a wrong number of pads."""
    with pytest.raises(ValueError, match="group=2"):
        reference.conv2d(random_array(1, 3, 4, 4), random_array(4, 1, 3, 3), group=2)
    with pytest.raises(ValueError, match="need 8 pads"):
        reference.pad(random_array(1, 3, 4, 4), (1, 1, 1, 1))
