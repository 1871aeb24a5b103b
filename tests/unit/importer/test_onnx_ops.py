"""Every supported ONNX operator: import one-node models, run the IR with the numpy reference,
compare with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from convir import reference
from convir.dialects import make_context
from convir.importer.onnx import import_onnx
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model

X = rand(1, 4, 9, 11)
W = rand(6, 4, 3, 3, seed=1)
BIAS = rand(6, seed=2)

# (id, op_type, graph inputs, initializers, attributes, opset)
CASES = [
    ("conv", "Conv", {"x": X}, {"w": W, "b": BIAS}, {"pads": [1, 1, 1, 1]}, 17),
    ("conv_stride_asym", "Conv", {"x": X}, {"w": W}, {"strides": [2, 3], "pads": [0, 1, 2, 0]}, 17),
    ("conv_dilated", "Conv", {"x": X}, {"w": W}, {"dilations": [2, 2], "pads": [2, 1, 2, 1]}, 11),
    ("conv_group", "Conv", {"x": X}, {"w": rand(6, 2, 3, 3)}, {"group": 2}, 17),
    ("conv_depthwise", "Conv", {"x": X}, {"w": rand(4, 1, 3, 3)}, {"group": 4, "pads": [1] * 4}, 9),
    (
        "conv_same_upper",
        "Conv",
        {"x": X},
        {"w": W},
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        17,
    ),
    ("conv_same_lower", "Conv", {"x": X}, {"w": rand(6, 4, 4, 4)}, {"auto_pad": "SAME_LOWER"}, 17),
    ("conv_valid", "Conv", {"x": X}, {"w": W}, {"auto_pad": "VALID"}, 7),
    ("relu", "Relu", {"x": X}, {}, {}, 14),
    ("leaky_relu", "LeakyRelu", {"x": X}, {}, {"alpha": 0.2}, 16),
    ("sigmoid", "Sigmoid", {"x": X}, {}, {}, 13),
    ("hard_sigmoid", "HardSigmoid", {"x": X}, {}, {"alpha": 0.3, "beta": 0.4}, 17),
    ("hard_swish", "HardSwish", {"x": X}, {}, {}, 14),
    ("tanh", "Tanh", {"x": X}, {}, {}, 13),
    ("clip_attr", "Clip", {"x": X}, {}, {"min": -0.5, "max": 0.7}, 9),
    ("add_bcast", "Add", {"x": X}, {"c": rand(4, 1, 1)}, {}, 14),
    ("sub", "Sub", {"x": X}, {"c": rand(11)}, {}, 14),
    ("mul", "Mul", {"x": X, "z": rand(1, 4, 9, 11, seed=3)}, {}, {}, 14),
    ("div", "Div", {"x": X}, {"c": np.full((1,), 2.5, np.float32)}, {}, 14),
    ("sum3", "Sum", {"x": X, "z": rand(1, 4, 9, 11, seed=3)}, {"c": rand(1, 4, 1, 1)}, {}, 13),
    ("maxpool", "MaxPool", {"x": X}, {}, {"kernel_shape": [3, 3], "strides": [2, 2]}, 12),
    (
        "maxpool_ceil_pad",
        "MaxPool",
        {"x": X},
        {},
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 1], "ceil_mode": 1},
        12,
    ),
    ("maxpool_dilated", "MaxPool", {"x": X}, {}, {"kernel_shape": [2, 2], "dilations": [2, 2]}, 12),
    (
        "avgpool_excl",
        "AveragePool",
        {"x": X},
        {},
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        11,
    ),
    (
        "avgpool_incl",
        "AveragePool",
        {"x": X},
        {},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        11,
    ),
    (
        "avgpool_ceil",
        "AveragePool",
        {"x": X},
        {},
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
        19,
    ),
    (
        "avgpool_same",
        "AveragePool",
        {"x": X},
        {},
        {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
        11,
    ),
    ("global_avg", "GlobalAveragePool", {"x": X}, {}, {}, 13),
    ("global_max", "GlobalMaxPool", {"x": X}, {}, {}, 13),
    ("lrn", "LRN", {"x": X}, {}, {"size": 3, "alpha": 1e-3, "beta": 0.75, "bias": 2.0}, 13),
    ("softmax13", "Softmax", {"x": X}, {}, {"axis": 1}, 13),
    ("softmax9_coerce", "Softmax", {"x": X}, {}, {"axis": 1}, 9),
    ("flatten", "Flatten", {"x": X}, {}, {"axis": 2}, 13),
    ("transpose", "Transpose", {"x": X}, {}, {"perm": [0, 2, 3, 1]}, 13),
    ("identity", "Identity", {"x": X}, {}, {}, 16),
    ("dropout", "Dropout", {"x": X}, {}, {}, 13),
    ("dropout7", "Dropout", {"x": X}, {}, {"ratio": 0.3}, 7),
    (
        "gemm",
        "Gemm",
        {"a": rand(3, 5)},
        {"b": rand(4, 5), "c": rand(4)},
        {"transB": 1, "alpha": 0.5, "beta": 2.0},
        13,
    ),
    ("gemm_trans_a", "Gemm", {"a": rand(5, 3)}, {"b": rand(5, 4)}, {"transA": 1}, 13),
    ("matmul", "MatMul", {"a": rand(3, 5)}, {"b": rand(5, 4)}, {}, 13),
    ("concat", "Concat", {"x": X, "z": rand(1, 2, 9, 11)}, {}, {"axis": 1}, 13),
    ("concat_neg_axis", "Concat", {"x": X, "z": rand(1, 4, 9, 2)}, {}, {"axis": -1}, 13),
    (
        "batchnorm15",
        "BatchNormalization",
        {"x": X},
        {"s": rand(4), "bb": rand(4, seed=5), "m": rand(4, seed=6), "v": np.abs(rand(4)) + 0.5},
        {"epsilon": 1e-3},
        15,
    ),
]


@pytest.mark.parametrize(
    ("op_type", "inputs", "initializers", "attributes", "opset"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_operator_matches_onnxruntime(op_type, inputs, initializers, attributes, opset) -> None:
    model = single_node_model(op_type, inputs, initializers, opset=opset, **attributes)
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    ours = reference.run(module, inputs, ctx=ctx)["y"]
    assert_close(ours, run_onnxruntime(model, inputs)[0])


def _case(model_inputs, initializers, input_names, op_type, opset, **attributes):
    return single_node_model(
        op_type, model_inputs, initializers, opset=opset, input_names=input_names, **attributes
    )


OPTIONAL_INPUT_CASES = [
    # Clip from opset 11 takes min/max as inputs, either of which may be omitted.
    (
        "clip11_min_max",
        "Clip",
        ["x", "lo", "hi"],
        {"lo": np.float32(-0.3), "hi": np.float32(0.4)},
        {},
        13,
    ),
    ("clip11_max_only", "Clip", ["x", "", "hi"], {"hi": np.float32(0.4)}, {}, 13),
    ("pad11", "Pad", ["x", "pads"], {"pads": np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64)}, {}, 13),
    (
        "pad11_value",
        "Pad",
        ["x", "pads", "v"],
        {"pads": np.array([0, 1, 0, 0, 0, 0, 0, 1], np.int64), "v": np.float32(1.5)},
        {},
        13,
    ),
    (
        "pad18_axes",
        "Pad",
        ["x", "pads", "", "axes"],
        {"pads": np.array([1, 2, 0, 1], np.int64), "axes": np.array([2, 3], np.int64)},
        {},
        18,
    ),
    ("pad2_attr", "Pad", ["x"], {}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "value": 0.5}, 9),
    ("reshape", "Reshape", ["x", "s"], {"s": np.array([0, -1, 11], np.int64)}, {}, 13),
    ("squeeze13", "Squeeze", ["x", "axes"], {"axes": np.array([0], np.int64)}, {}, 13),
    ("unsqueeze13", "Unsqueeze", ["x", "axes"], {"axes": np.array([-1, 0], np.int64)}, {}, 13),
    ("squeeze9", "Squeeze", ["x"], {}, {"axes": [0]}, 9),
    ("unsqueeze9", "Unsqueeze", ["x"], {}, {"axes": [2]}, 9),
    (
        "slice13",
        "Slice",
        ["x", "st", "en", "ax"],
        {
            "st": np.array([1, 2], np.int64),
            "en": np.array([3, 100], np.int64),
            "ax": np.array([1, -1], np.int64),
        },
        {},
        13,
    ),
    ("slice9_attr", "Slice", ["x"], {}, {"starts": [0, 1], "ends": [2, -1], "axes": [1, 2]}, 9),
    (
        "batchnorm7_spatial",
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        {"s": rand(4), "b": rand(4, seed=5), "m": rand(4, seed=6), "v": np.abs(rand(4)) + 0.5},
        {"spatial": 1},
        7,
    ),
    (
        "batchnorm9",
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        {"s": rand(4), "b": rand(4, seed=5), "m": rand(4, seed=6), "v": np.abs(rand(4)) + 0.5},
        {},
        9,
    ),
    ("gemm_c_omitted", "Gemm", ["x2", "w2", ""], {"w2": rand(11, 3)}, {}, 13),
]


@pytest.mark.parametrize(
    ("op_type", "input_names", "initializers", "attributes", "opset"),
    [pytest.param(*case[1:], id=case[0]) for case in OPTIONAL_INPUT_CASES],
)
def test_operator_versions_match_onnxruntime(op_type, input_names, initializers, attributes, opset):
    inputs = {"x2": rand(2, 11)} if input_names[0] == "x2" else {"x": X}
    model = _case(inputs, initializers, input_names, op_type, opset, **attributes)
    ctx = make_context()
    ours = reference.run(import_onnx(model, ctx=ctx), inputs, ctx=ctx)["y"]
    assert_close(ours, run_onnxruntime(model, inputs)[0])


def test_split_into_slices_matches_onnxruntime() -> None:
    inputs = {"x": X}
    for opset, names, inits, attrs in [
        (13, ["x", "sizes"], {"sizes": np.array([1, 3], np.int64)}, {"axis": 1}),
        (11, ["x"], {}, {"axis": 1, "split": [3, 1]}),
        (18, ["x"], {}, {"axis": 1, "num_outputs": 2}),
    ]:
        model = single_node_model(
            "Split", inputs, inits, opset=opset, input_names=names, outputs=["y", "z"], **attrs
        )
        ctx = make_context()
        ours = reference.run(import_onnx(model, ctx=ctx), inputs, ctx=ctx)
        theirs = run_onnxruntime(model, inputs)
        assert_close(ours["y"], theirs[0])
        assert_close(ours["z"], theirs[1])
