"""Every way an ONNX model can be refused: one clear error naming the node, op type and reason."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convir.dialects import make_context
from convir.importer.onnx import OnnxImportError, import_onnx
from tests.onnx_cases import rand, single_node_model


def _import(model: onnx.ModelProto, **kwargs) -> None:
    import_onnx(model, ctx=make_context(), **kwargs)


def test_unsupported_op_names_node_and_op() -> None:
    model = single_node_model("Hardmax", {"x": rand(1, 2)})
    with pytest.raises(
        OnnxImportError, match=r"node 'hardmax_0' \(Hardmax\): operator Hardmax is not supported"
    ):
        _import(model)


def test_conv1d_and_conv3d_are_refused() -> None:
    model = single_node_model("Conv", {"x": rand(1, 2, 9)}, {"w": rand(3, 2, 3)})
    with pytest.raises(OnnxImportError, match=r"\(Conv\): only 2-D convolutions .* rank 3"):
        _import(model)
    model = single_node_model("Conv", {"x": rand(1, 2, 5, 5, 5)}, {"w": rand(3, 2, 3, 3, 3)})
    with pytest.raises(OnnxImportError, match=r"\(Conv\): only 2-D convolutions .* rank 5"):
        _import(model)


def test_dynamic_non_batch_dimension_is_refused() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match="dynamic dimension 'H' at axis 2"):
        _import(model)


def test_dynamic_batch_is_fixed_at_import() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ctx = make_context()
    assert "tensor<1x3x4x4xf32>" in str(import_onnx(model, ctx=ctx))
    assert "tensor<5x3x4x4xf32>" in str(import_onnx(model, batch=5, ctx=ctx))


def test_non_float_input_is_refused() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match="graph input 'x' has type FLOAT16; only FLOAT"):
        _import(model)


def test_non_float_weight_used_as_data_is_refused() -> None:
    model = single_node_model("Add", {"x": rand(1, 3)}, {"c": np.ones(3, np.int32)})
    with pytest.raises(OnnxImportError, match=r"\(Add\): tensor 'c' of type int32 .* only float32"):
        _import(model)


@pytest.mark.parametrize("opset", [6, 22])
def test_opset_out_of_range(opset: int) -> None:
    model = single_node_model("Relu", {"x": rand(1, 3)}, opset=opset)
    with pytest.raises(OnnxImportError, match=f"opset {opset} is not supported; .* 7 to 21"):
        _import(model)


def test_unreadable_file(tmp_path) -> None:
    with pytest.raises(OnnxImportError, match=r"cannot read '.*missing\.onnx'"):
        import_onnx(tmp_path / "missing.onnx", ctx=make_context())


def test_malformed_protobuf(tmp_path) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\xff\xfe this is not a protobuf \x00\x01")
    with pytest.raises(OnnxImportError, match="is not an ONNX model"):
        import_onnx(path, ctx=make_context())


def test_foreign_domain_is_refused() -> None:
    model = single_node_model("Relu", {"x": rand(1, 3)})
    model.graph.node[0].domain = "com.microsoft"
    with pytest.raises(OnnxImportError, match=r"domain 'com\.microsoft' is not supported"):
        _import(model)


def test_runtime_shape_input_is_refused() -> None:
    model = single_node_model("Reshape", {"x": rand(1, 6), "s": rand(2)})
    with pytest.raises(OnnxImportError, match=r"\(Reshape\): shape \(input 1\) must be a constant"):
        _import(model)


def test_bad_reshape_names_node() -> None:
    model = single_node_model("Reshape", {"x": rand(1, 6)}, {"s": np.array([4, -1], np.int64)})
    with pytest.raises(OnnxImportError, match=r"\(Reshape\): cannot reshape \[1, 6\] to \[4, -1\]"):
        _import(model)


def test_shape_mismatch_is_reported_by_the_verifier_with_the_node() -> None:
    model = single_node_model("Conv", {"x": rand(1, 3, 8, 8)}, {"w": rand(4, 2, 3, 3)})
    with pytest.raises(OnnxImportError, match=r"\(Conv\): 'conv.conv2d' weight has 2 input"):
        _import(model)


def test_reflect_pad_and_training_modes_are_refused() -> None:
    pads = {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}
    model = single_node_model("Pad", {"x": rand(1, 1, 3, 3)}, pads, mode="reflect")
    with pytest.raises(OnnxImportError, match="pad mode 'reflect' is not supported"):
        _import(model)
    params = {n: np.ones(2, np.float32) for n in "sbmv"}
    model = single_node_model(
        "BatchNormalization", {"x": rand(1, 2, 3, 3)}, params, training_mode=1
    )
    with pytest.raises(OnnxImportError, match="training_mode=1 is not supported"):
        _import(model)


def test_unavailable_optional_output_is_refused_when_used() -> None:
    dropout = helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop", ratio=0.5)
    graph = helper.make_graph(
        [dropout],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("mask", TensorProto.BOOL, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    with pytest.raises(OnnxImportError, match=r"'mask' is output 1 of node 'drop' \(Dropout\)"):
        _import(model)


def test_input_not_produced_by_any_node() -> None:
    node = helper.make_node("Relu", ["ghost"], ["y"], name="r")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match="input 'ghost' is not produced"):
        _import(model)


def test_constant_subgraph_folds_to_no_ops() -> None:
    """Shape arithmetic on static shapes (Shape/Gather/Unsqueeze/Concat/Cast) leaves no op."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["nu"]),
        helper.make_node("Cast", ["nu"], ["nc"], to=TensorProto.INT64),
        helper.make_node("Concat", ["nc", "minus_one"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = import_onnx(model, ctx=make_context())
    names = [op.name for op in module.walk()]
    assert names.count("conv.reshape") == 1
    assert "conv.constant" not in names
