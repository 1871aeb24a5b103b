"""ConvTranspose end to end: ONNX's own node-test cases and hand-picked decoder shapes, imported,
lowered through conv-lower-conv-transpose and compiled natively.

ONNX's node tests feed the weight as a graph input, which the native path refuses (see
tests/onnx_backend/test_backend.py); here the same cases run with the weight made an initializer
and are compared with ONNX's stored expected outputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper, version_converter

import convir
from convir import reference
from convir.dialects import conv, make_context
from convir.importer.onnx import import_onnx
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model


def _node_cases() -> dict[str, tuple[onnx.ModelProto, dict[str, np.ndarray], np.ndarray]]:
    """ONNX's 2-D ConvTranspose node tests, weight moved into the initializers, at opset 21."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cases = [c for c in collect_testcases(None) if c.name.startswith("test_convtranspose")]
    result = {}
    for case in cases:
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        if len(model.graph.input[0].type.tensor_type.shape.dim) != 4:
            continue  # the 1-D and 3-D cases: only 2-D transposed convs are supported
        (inputs, outputs) = case.data_sets[0]
        weight = model.graph.input[1]
        model.graph.initializer.append(numpy_helper.from_array(inputs[1], weight.name))
        model.graph.input.remove(weight)
        model = version_converter.convert_version(model, 21)
        result[case.name] = (model, {model.graph.input[0].name: inputs[0]}, outputs[0])
    return result


NODE_CASES = _node_cases()


def test_every_2d_node_case_is_collected() -> None:
    expected = {"pad", "pads", "dilations", "output_shape", "autopad_same", "kernel_shape"}
    assert {f"test_convtranspose_{name}" for name in expected} <= set(NODE_CASES)
    assert "test_convtranspose_group_2" in NODE_CASES


@pytest.mark.parametrize("name", sorted(NODE_CASES))
def test_node_case_imports_as_onnx_defines_it(name: str) -> None:
    model, feed, expected = NODE_CASES[name]
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    (actual,) = reference.run(module, feed, ctx=ctx).values()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convir-cache")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NODE_CASES))
def test_node_case_natively(name: str, cache_dir: Path) -> None:
    model, feed, expected = NODE_CASES[name]
    (actual,) = convir.compile(model, cache_dir=cache_dir).run(feed).values()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def _case(x_shape, w_shape, **attrs) -> tuple[onnx.ModelProto, np.ndarray]:
    group = attrs.get("group", 1)
    initializers = {"w": rand(*w_shape, seed=1), "b": rand(w_shape[1] * group, seed=2)}
    model = single_node_model("ConvTranspose", {"x": rand(*x_shape)}, initializers, **attrs)
    return model, rand(*x_shape, seed=3)


def test_learned_upsampling_natively(cache_dir: Path) -> None:
    """The common case, fast enough to run always: 4x4 stride 2 pad 1, NCHWc phases."""
    model, x = _case((1, 16, 6, 6), (16, 8, 4, 4), strides=[2, 2], pads=[1, 1, 1, 1])
    compiled = convir.compile(model, cache_dir=cache_dir)
    assert_close(compiled.run({"x": x})["y"], run_onnxruntime(model, {"x": x})[0])


DECODER_CASES = {
    # a group whose channels do not fill NCHWc blocks: NCHW phase convs and interleave
    "grouped_nchw": ((1, 6, 5, 5), (6, 2, 3, 3), dict(strides=[2, 2], group=3)),
    # whole blocks per group: NCHWc, output_padding
    "grouped_nchwc": (
        (2, 32, 7, 7),
        (32, 4, 3, 3),
        dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], group=4),
    ),
    # uneven strides, dilation along W, asymmetric pads, a 3-channel (NCHW-read) input
    "uneven": (
        (1, 3, 5, 6),
        (3, 2, 3, 3),
        dict(strides=[2, 3], pads=[1, 0, 0, 2], output_padding=[1, 2], dilations=[1, 2]),
    ),
    # dilation sharing a factor with the stride: bias-only phases packed at compile time
    "bias_only_phases": ((1, 16, 4, 4), (16, 16, 3, 3), dict(strides=[2, 2], dilations=[2, 2])),
    # pads beyond the kernel's reach: phase inputs cropped by conv.pad
    "cropping": ((1, 8, 6, 6), (8, 8, 2, 2), dict(strides=[3, 3], pads=[4, 2, 3, 5])),
    # stride 1: one phase, no interleave
    "stride_one": ((1, 16, 6, 6), (16, 16, 3, 3), dict(pads=[1, 1, 1, 1])),
    # kernel = stride (FCN-style), batch 2
    "kernel_equals_stride": ((2, 16, 5, 5), (16, 16, 2, 2), dict(strides=[2, 2])),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DECODER_CASES))
def test_decoder_case_natively(name: str, cache_dir: Path) -> None:
    x_shape, w_shape, attrs = DECODER_CASES[name]
    model, x = _case(x_shape, w_shape, **attrs)
    compiled = convir.compile(model, cache_dir=cache_dir)
    expected = run_onnxruntime(model, {"x": x})[0]
    for threads in (1, 2):
        compiled.threads = threads
        assert_close(compiled.run({"x": x})["y"], expected)


def test_cropping_case_really_crops() -> None:
    """The `cropping` case above exercises the conv.pad path (guards the case list)."""
    from passes.lower_conv_transpose import lower_conv_transposes

    x_shape, w_shape, attrs = DECODER_CASES["cropping"]
    model, _ = _case(x_shape, w_shape, **attrs)
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    lower_conv_transposes(module, ctx)
    assert any(isinstance(op, conv.PadOp) for op in module.walk())


def test_fixture_is_a_real_convtranspose_export() -> None:
    path = Path(__file__).parent.parent / "data" / "torch_decoder_mini_opset17.onnx"
    kinds = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert kinds.count("ConvTranspose") == 4
