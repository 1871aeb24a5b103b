"""Convolutions on NCHWc (direct and depthwise), with fused epilogues, at blocks 4, 8 and 16,
compiled natively and compared with the numpy reference.

Blocks other than the host's vector width are emulated: the IR uses vectors of the block's
width, which LLVM legalises for this machine, so every block must give the same results.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from convir import reference
from convir.compiler import compile, lower
from tests.onnx_cases import rand

ACTIVATIONS = [None, "Relu", "Sigmoid", "HardSwish"]


def conv_block_model(x, weight, bias, residual: bool, activation: str | None, **attributes):
    """Conv (+ Add of a second input) (+ activation): what conv-fuse-epilogue turns into one op."""
    o = weight.shape[0]
    y_shape = list(reference.conv2d(x, weight, bias, **attributes).shape)
    inits = [numpy_helper.from_array(weight, "w")]
    conv_inputs = ["x", "w"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        conv_inputs.append("b")
    nodes = [helper.make_node("Conv", conv_inputs, ["c"], name="conv", **attributes)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))]
    last = "c"
    if residual:
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, y_shape))
        nodes.append(helper.make_node("Add", [last, "r"], ["s"], name="add"))
        last = "s"
    if activation is not None:
        nodes.append(helper.make_node(activation, [last], ["a"], name="act"))
        last = "a"
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "conv_block",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        inits,
    )
    assert o == y_shape[1]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def expected_output(x, weight, bias, r, activation, **attributes) -> np.ndarray:
    y = reference.conv2d(x, weight, bias, **attributes)
    if r is not None:
        y = y + r
    kinds = {"Relu": "relu", "Sigmoid": "sigmoid", "HardSwish": "hard_swish"}
    return y if activation is None else reference.activation(y, kinds[activation])


@st.composite
def nchwc_cases(draw):
    block = draw(st.sampled_from([4, 8, 16]))
    kind = draw(st.sampled_from(["dense", "dense", "depthwise", "grouped"]))
    if kind == "depthwise":
        group = c = o = draw(st.integers(1, 40))
    elif kind == "grouped":
        group = 2
        c, o = 2 * block * draw(st.integers(1, 2)), 2 * block
    else:
        group, c, o = 1, draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 11))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 11))
    return dict(
        block=block,
        n=draw(st.integers(1, 2)),
        c=c,
        o=o,
        group=group,
        hw=(h, w),
        kernel=(kh, kw),
        strides=[sh, sw],
        pads=pads,
        dilations=[dh, dw],
        bias=draw(st.booleans()),
        residual=draw(st.booleans()),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        seed=draw(st.integers(0, 1000)),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=nchwc_cases())
def test_nchwc_conv_with_epilogue_matches_reference(case, tmp_path_factory) -> None:
    seed = case["seed"]
    x = rand(case["n"], case["c"], *case["hw"], seed=seed)
    weight = rand(case["o"], case["c"] // case["group"], *case["kernel"], seed=seed + 1)
    bias = rand(case["o"], seed=seed + 2) if case["bias"] else None
    attributes = dict(
        strides=case["strides"],
        pads=case["pads"],
        dilations=case["dilations"],
        group=case["group"],
    )
    model = conv_block_model(x, weight, bias, case["residual"], case["activation"], **attributes)
    expected_shape = reference.conv2d(x, weight, bias, **attributes).shape
    r = rand(*expected_shape, seed=seed + 3) if case["residual"] else None
    expected = expected_output(x, weight, bias, r, case["activation"], **attributes)
    compiled = compile(
        model, block=case["block"], cache_dir=tmp_path_factory.getbasetemp() / "cache"
    )
    feed = {"x": x} | ({"r": r} if r is not None else {})
    for threads in (1, 2):
        compiled.threads = threads
        np.testing.assert_allclose(compiled.run(feed)["y"], expected, rtol=1e-4, atol=1e-5)


def test_epilogue_is_fused_into_one_nchwc_conv() -> None:
    x, weight, bias = rand(1, 5, 6, 6), rand(12, 5, 3, 3), rand(12)
    model = conv_block_model(x, weight, bias, True, "Relu", pads=[1, 1, 1, 1])
    onnx.checker.check_model(model)
    module = lower(model, stop="scheduled", block=8).module
    names = [op.name for op in module.walk() if op.name.startswith("conv.")]
    assert names.count("conv.conv2d") == 1
    assert "conv.binary" not in names and "conv.activation" not in names
    conv_op = next(op for op in module.walk() if op.name == "conv.conv2d")
    assert conv_op.residual is not None and conv_op.activation.data == "relu"
    assert len(conv_op.output.type.get_shape()) == 5


@pytest.mark.parametrize("block", [4, 8, 16])
def test_a_stem_reads_its_nchw_image_without_a_pack(block: int, tmp_path_factory) -> None:
    # 3 input channels < block: the conv reads NCHW and writes NCHWc (conv-convert-layout's
    # reads_nchw_input); a 7x7 stride-2 stem with padding, 20 output channels (a partial block).
    x, weight, bias = rand(2, 3, 17, 19, seed=5), rand(20, 3, 7, 7, seed=6), rand(20, seed=7)
    attributes = dict(strides=[2, 2], pads=[3, 2, 3, 1])
    model = conv_block_model(x, weight, bias, False, "Relu", **attributes)
    module = lower(model, stop="scheduled", block=block).module
    names = [op.name for op in module.walk() if op.name.startswith("conv.")]
    assert "conv.pack" not in names
    stem = next(op for op in module.walk() if op.name == "conv.conv2d")
    assert len(stem.input.type.get_shape()) == 4 and len(stem.output.type.get_shape()) == 5
    assert stem.algorithm.data == "direct"
    compiled = compile(model, block=block, cache_dir=tmp_path_factory.getbasetemp() / "cache")
    expected = expected_output(x, weight, bias, None, "Relu", **attributes)
    for threads in (1, 2):
        compiled.threads = threads
        np.testing.assert_allclose(compiled.run({"x": x})["y"], expected, rtol=1e-4, atol=1e-5)
