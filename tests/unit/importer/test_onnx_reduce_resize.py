"""ReduceMean/Max/Sum, Resize/Upsample, Expand and Where: the imported IR, run by the numpy
reference, matches onnxruntime across opsets and attributes; unsupported forms are refused with
the node named."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from convir import reference
from convir.dialects import conv, make_context
from convir.importer.onnx import OnnxImportError, import_onnx
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model


def imported_ops(model: onnx.ModelProto) -> list[str]:
    module = import_onnx(model, ctx=make_context())
    return [op.name for op in module.walk() if op.name.startswith("conv.")]


def check(model: onnx.ModelProto, inputs: dict[str, np.ndarray], rel: float = 1e-5) -> None:
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    (ours,) = reference.run(module, inputs, ctx=ctx).values()
    assert_close(ours, run_onnxruntime(model, inputs)[0], rel)


def reduce_model(op_type: str, x: np.ndarray, axes, keepdims: int, opset: int) -> onnx.ModelProto:
    """`op_type` over `axes` (None: the default) in the form of `opset`."""
    as_input = opset >= (13 if op_type == "ReduceSum" else 18)
    if axes is None:
        return single_node_model(op_type, {"x": x}, opset=opset, keepdims=keepdims)
    if as_input:
        axes_array = {"axes": np.array(axes, np.int64)}
        return single_node_model(op_type, {"x": x}, axes_array, opset=opset, keepdims=keepdims)
    return single_node_model(op_type, {"x": x}, opset=opset, keepdims=keepdims, axes=list(axes))


@settings(max_examples=40, deadline=None)
@given(
    op_type=st.sampled_from(["ReduceMean", "ReduceMax", "ReduceSum"]),
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
    keepdims=st.integers(0, 1),
    opset=st.sampled_from([11, 13, 17, 18, 21]),
)
def test_reductions_match_onnxruntime(op_type, shape, data, keepdims, opset) -> None:
    rank = len(shape)
    axes = data.draw(
        st.none() | st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique=True)
    )
    if axes is not None and len({a % rank for a in axes}) != len(axes):
        axes = sorted({a % rank for a in axes})
    x = rand(*shape, seed=len(shape))
    check(reduce_model(op_type, x, axes, keepdims, opset), {"x": x})


@pytest.mark.parametrize(("op_type", "pool"), [("ReduceMean", "avg"), ("ReduceMax", "max")])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_spatial_mean_and_max_are_global_pools(op_type: str, pool: str, keepdims: int) -> None:
    x = rand(1, 6, 5, 7)
    model = reduce_model(op_type, x, [-2, -1], keepdims, 17)
    ops = imported_ops(model)
    assert "conv.global_pool" in ops and "conv.reduce" not in ops
    assert ("conv.reshape" in ops) == (not keepdims)
    check(model, {"x": x})


def test_empty_axes_reduce_everything_or_nothing() -> None:
    x = rand(2, 3, 4)
    empty = {"axes": np.zeros(0, np.int64)}
    check(single_node_model("ReduceSum", {"x": x}, empty, opset=13, keepdims=0), {"x": x})
    model = single_node_model(
        "ReduceSum", {"x": x}, empty, opset=13, keepdims=1, noop_with_empty_axes=1
    )
    assert imported_ops(model) == []
    check(model, {"x": x})


def test_reductions_of_constants_fold() -> None:
    x = rand(2, 3)
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    data = numpy_helper.from_array(x, "c")
    nodes = [
        helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=1),
        helper.make_node("Add", ["x", "m"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [data, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    assert "conv.reduce" not in imported_ops(model)
    check(model, {"x": rand(2, 1)})


COORDINATES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
ROUNDINGS = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def resize_model(x, *, scales=None, sizes=None, opset=19, **attributes) -> onnx.ModelProto:
    initializers: dict[str, np.ndarray] = {}
    names = ["x", ""]
    if opset < 13:  # roi is a required input before opset 13
        initializers["roi"] = np.zeros(0, np.float32)
        names[1] = "roi"
    if scales is not None:
        initializers["scales"] = np.array(scales, np.float32)
        names.append("scales")
    else:
        if opset < 13:  # and so is scales, empty when sizes are given
            initializers["scales"] = np.zeros(0, np.float32)
        initializers["sizes"] = np.array(sizes, np.int64)
        names += ["scales" if opset < 13 else "", "sizes"]
    return single_node_model(
        "Resize", {"x": x}, initializers, input_names=names, opset=opset, **attributes
    )


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
    out=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    by_sizes=st.booleans(),
    mode=st.sampled_from(["nearest", "linear"]),
    coordinates=st.sampled_from(COORDINATES),
    rounding=st.sampled_from(ROUNDINGS),
    opset=st.sampled_from([11, 13, 18, 19]),
)
def test_resize_matches_onnxruntime(shape, out, by_sizes, mode, coordinates, rounding, opset):
    x = rand(*shape, seed=sum(shape))
    attributes = {"mode": mode, "coordinate_transformation_mode": coordinates}
    if mode == "nearest":
        attributes["nearest_mode"] = rounding
    if by_sizes:
        model = resize_model(x, sizes=[*shape[:2], *out], opset=opset, **attributes)
    else:
        scales = [1.0, 1.0, out[0] / shape[2], out[1] / shape[3]]
        model = resize_model(x, scales=scales, opset=opset, **attributes)
    check(model, {"x": x}, 1e-4)


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
def test_resize_keeps_the_aspect_ratio_when_asked(policy: str) -> None:
    x = rand(1, 2, 6, 4)
    model = resize_model(x, sizes=[9, 9], mode="linear", keep_aspect_ratio_policy=policy)
    model.graph.node[0].attribute.append(helper.make_attribute("axes", [2, 3]))
    check(model, {"x": x}, 1e-4)


def test_resize_of_axes_only_and_of_constant_scales_one_is_identity() -> None:
    x = rand(1, 2, 5, 5)
    model = resize_model(x, scales=[1.0, 1.0, 1.0, 1.0], mode="linear")
    assert imported_ops(model) == []
    model = resize_model(x, scales=[2.0, 3.0], mode="nearest")
    model.graph.node[0].attribute.append(helper.make_attribute("axes", [2, 3]))
    check(model, {"x": x})


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1.0, 1.0, 2.0, 3.0], [1.0, 1.0, 0.5, 0.6]])
def test_resize_10_and_upsample(mode: str, scales: list[float]) -> None:
    x = rand(1, 3, 5, 7)
    scale_array = {"scales": np.array(scales, np.float32)}
    check(single_node_model("Resize", {"x": x}, scale_array, opset=10, mode=mode), {"x": x}, 1e-4)
    if min(scales) >= 1:  # Upsample only enlarges
        model = single_node_model("Upsample", {"x": x}, scale_array, opset=9, mode=mode)
        check(model, {"x": x}, 1e-4)
        model = single_node_model("Upsample", {"x": x}, opset=7, mode=mode, scales=scales)
        check(model, {"x": x}, 1e-4)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            resize_model(rand(1, 2, 4, 4), scales=[1, 1, 2, 2], mode="cubic"),
            r"\(Resize\): mode 'cubic' is not supported",
        ),
        (
            resize_model(
                rand(1, 2, 4, 4),
                scales=[1, 1, 2, 2],
                coordinate_transformation_mode="tf_crop_and_resize",
            ),
            r"'tf_crop_and_resize' is not supported",
        ),
        (
            resize_model(rand(1, 2, 4, 4), scales=[1, 2, 2, 2]),
            r"scales \[1.0, 2.0, 2.0, 2.0\] must be 1 on batch and channels",
        ),
        (
            resize_model(rand(1, 2, 4, 4), sizes=[1, 3, 8, 8]),
            r"sizes \[1, 3, 8, 8\] resize the batch or channel axis",
        ),
        (
            resize_model(rand(2, 4, 4), scales=[1, 2, 2]),
            r"only images \(rank 4\) can be resized",
        ),
        (
            resize_model(rand(1, 2, 8, 8), scales=[1, 1, 0.5, 0.5], mode="linear", antialias=1),
            r"antialias=1\) is not supported",
        ),
    ],
)
def test_unsupported_resizes_are_refused(model: onnx.ModelProto, message: str) -> None:
    with pytest.raises(OnnxImportError, match=message):
        import_onnx(model, ctx=make_context())


@pytest.mark.parametrize(
    ("source", "target"),
    [((1, 3, 1, 1), (1, 3, 4, 5)), ((3, 1), (2, 3, 4)), ((2, 3), (2, 3)), ((1, 4), (3, 1))],
)
def test_expand_of_run_time_data(source, target) -> None:
    x = rand(*source)
    shape = {"shape": np.array(target, np.int64)}
    model = single_node_model("Expand", {"x": x}, shape)
    ops = imported_ops(model)
    assert ops in ([], ["conv.constant", "conv.binary"])
    check(model, {"x": x})


def test_expand_keeps_negative_zero_and_infinities() -> None:
    x = np.array([[-0.0, np.inf, -np.inf, 1.5]], np.float32)
    model = single_node_model("Expand", {"x": x}, {"shape": np.array([3, 4], np.int64)})
    ctx = make_context()
    (ours,) = reference.run(import_onnx(model, ctx=ctx), {"x": x}, ctx=ctx).values()
    np.testing.assert_array_equal(ours, np.broadcast_to(x, (3, 4)))
    assert np.signbit(ours[:, 0]).all()


def test_where_on_constants() -> None:
    x = rand(2, 3)
    everywhere = numpy_helper.from_array(np.ones((1, 3), bool), "c")
    y = numpy_helper.from_array(rand(2, 3, seed=1), "y")
    node = helper.make_node("Where", ["c", "x", "y"], ["out"], name="where_0")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [everywhere, y],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert imported_ops(model) == []
    check(model, {"x": x})
    mixed = numpy_helper.from_array(np.array([[True, False, True]]), "c")
    model.graph.initializer[0].CopyFrom(mixed)
    with pytest.raises(OnnxImportError, match=r"node 'where_0' \(Where\): a condition mixing"):
        import_onnx(model, ctx=make_context())


def test_resize_is_one_op_with_its_attributes() -> None:
    x = rand(1, 2, 4, 4)
    model = resize_model(
        x, scales=[1, 1, 2, 2], mode="nearest", coordinate_transformation_mode="asymmetric"
    )
    module = import_onnx(model, ctx=make_context())
    (op,) = [o for o in module.walk() if isinstance(o, conv.ResizeOp)]
    assert op.nearest_mode is not None and op.nearest_mode.data == "round_prefer_floor"
    assert [float(s) for s in op.scales.iter_values()] == [2.0, 2.0]
