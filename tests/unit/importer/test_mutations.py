"""Random mutations of small valid models (issue 13): convir either refuses a mutant with its own
exception (`OnnxImportError`, naming the node or tensor) or compiles it natively and computes what
onnxruntime computes, whenever onnxruntime accepts the mutant; no other exception, no crash.

Mutants are attributes out of range, shapes that disagree, dangling names, wrong element types,
tensors defined twice and damaged tensor data. Weights are a function of their shape only, and the
compiled code goes to a cache kept between runs, so a mutant met before loads without lowering.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import convir
from convir.importer.onnx import OnnxImportError
from tests.onnx_cases import assert_close

Draw = Callable[[st.SearchStrategy], object]


def _weight(shape: list[int], dtype: type = np.float32) -> np.ndarray:
    """Deterministic values for a tensor of `shape`, so that equal mutants share cache entries."""
    rng = np.random.default_rng(len(shape) * 1000 + int(np.prod(shape)))
    return (rng.standard_normal(shape) * 0.5).astype(dtype)


def _tensor(name: str, shape: list[int]) -> TensorProto:
    return numpy_helper.from_array(_weight(shape), name)


def _model(nodes, inputs, initializers, constants=None) -> onnx.ModelProto:
    """A graph of `nodes` with float inputs and weights of the given shapes, output 'y';
    `constants` are initializers given by value (the int64 shape of a Reshape, say)."""
    stored = [_tensor(n, s) for n, s in initializers.items()]
    stored += [numpy_helper.from_array(a, n) for n, a in (constants or {}).items()]
    graph = helper.make_graph(
        nodes,
        "mutant",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        stored,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def conv_relu_pool() -> onnx.ModelProto:
    """x -> Conv 3x3 (bias, pads 1) -> Relu -> MaxPool 2x2/2 -> y."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    return _model(nodes, {"x": [1, 3, 6, 6]}, {"w": [4, 3, 3, 3], "b": [4]})


def depthwise_residual() -> onnx.ModelProto:
    """x -> depthwise Conv 3x3 (group 4, strides 1, pads 1) -> Add x -> AveragePool 3x3 -> y."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "w"], ["c"], name="dw", group=4, pads=[1, 1, 1, 1], strides=[1, 1]
        ),
        helper.make_node("Add", ["c", "x"], ["s"], name="add"),
        helper.make_node("AveragePool", ["s"], ["y"], name="avg", kernel_shape=[3, 3]),
    ]
    return _model(nodes, {"x": [1, 4, 5, 5]}, {"w": [4, 1, 3, 3]})


def classifier() -> onnx.ModelProto:
    """x -> Conv 1x1 -> GlobalAveragePool -> Flatten -> Gemm (transB) -> y."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="pw", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], name="fc", transB=1),
    ]
    return _model(nodes, {"x": [1, 2, 4, 4]}, {"w": [5, 2, 1, 1], "fc": [3, 5], "fb": [3]})


def normalised_concat() -> onnx.ModelProto:
    """x -> Conv 3x3 (pads 1) -> BatchNormalization -> Concat with x -> Reshape [1, -1] ->
    Softmax -> y."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"], name="bn"
        ),
        helper.make_node("Concat", ["n", "x"], ["j"], name="cat", axis=1),
        helper.make_node("Reshape", ["j", "shape"], ["r"], name="flat"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=-1),
    ]
    weights = {"w": [2, 2, 3, 3], "scale": [2], "shift": [2], "mean": [2]}
    variance = np.array([0.5, 2.0], np.float32)
    shape = np.array([1, -1], np.int64)
    return _model(nodes, {"x": [1, 2, 4, 4]}, weights, {"var": variance, "shape": shape})


BASES = [conv_relu_pool, depthwise_residual, classifier, normalised_concat]
WINDOW_ATTRIBUTES = ["strides", "dilations", "pads", "kernel_shape", "group", "auto_pad", "axis"]
SMALL_INTS = st.lists(st.integers(-1, 4), min_size=0, max_size=5)


def mutate_attribute(model: onnx.ModelProto, draw: Draw) -> None:
    node = draw(st.sampled_from(list(model.graph.node)))
    name = draw(st.sampled_from(WINDOW_ATTRIBUTES))
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    if draw(st.booleans()):  # else the attribute is only removed
        if name in ("group", "axis"):
            value = draw(st.integers(-2, 5))
        elif name == "auto_pad":
            value = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "ODD"]))
        else:  # often of the right length, so that some mutants stay valid
            count = 4 if name == "pads" else 2
            value = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count) | SMALL_INTS)
        kind = onnx.AttributeProto.INTS if isinstance(value, list) else None
        node.attribute.append(helper.make_attribute(name, value, attr_type=kind))


def mutate_initializer_shape(model: onnx.ModelProto, draw: Draw) -> None:
    index = draw(st.integers(0, len(model.graph.initializer) - 1))
    old = model.graph.initializer[index]
    shape = draw(st.lists(st.integers(1, 5), min_size=0, max_size=5))
    model.graph.initializer[index].CopyFrom(_tensor(old.name, shape))


def mutate_input_shape(model: onnx.ModelProto, draw: Draw) -> None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = draw(st.lists(st.integers(0, 7), min_size=1, max_size=5))
    del dims[:]
    for size in shape:
        dims.add().dim_value = size


def mutate_dangling_name(model: onnx.ModelProto, draw: Draw) -> None:
    if draw(st.booleans()):
        model.graph.output[0].name = "nowhere"
        return
    node = draw(st.sampled_from(list(model.graph.node)))
    node.input[draw(st.integers(0, len(node.input) - 1))] = "nowhere"


def mutate_element_type(model: onnx.ModelProto, draw: Draw) -> None:
    dtype = draw(st.sampled_from([np.float64, np.float16, np.int32, np.int64, np.bool_]))
    if draw(st.booleans()):
        tensor_type = model.graph.input[0].type.tensor_type
        tensor_type.elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return
    index = draw(st.integers(0, len(model.graph.initializer) - 1))
    old = model.graph.initializer[index]
    array = _weight(list(old.dims)).astype(dtype)
    model.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, old.name))


def mutate_redefinition(model: onnx.ModelProto, draw: Draw) -> None:
    node = draw(st.sampled_from(list(model.graph.node)))
    names = [
        "x",
        *(n.output[0] for n in model.graph.node),
        *(t.name for t in model.graph.initializer),
    ]
    node.output[0] = draw(st.sampled_from([n for n in names if n != node.output[0]]))


def mutate_raw_data(model: onnx.ModelProto, draw: Draw) -> None:
    tensor = model.graph.initializer[draw(st.integers(0, len(model.graph.initializer) - 1))]
    change = draw(st.sampled_from([-8, -4, -1, 1, 4, 16]))
    tensor.raw_data = tensor.raw_data[:change] if change < 0 else tensor.raw_data + bytes(change)


MUTATIONS = [
    mutate_attribute,
    mutate_initializer_shape,
    mutate_input_shape,
    mutate_dangling_name,
    mutate_element_type,
    mutate_redefinition,
    mutate_raw_data,
]


def _onnxruntime(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """onnxruntime's outputs, or None when it refuses the model or the inputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return session.run(None, feed)
    except Exception:  # onnxruntime's exception classes are not importable in a stable place
        return None


@pytest.fixture(scope="module")
def cache_dir(request, tmp_path_factory) -> str:
    """A cache kept between runs (in pytest's cache directory), so known mutants load; a
    fresh one when pytest runs without its cache (`-p no:cacheprovider`)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return str(tmp_path_factory.mktemp("convir-mutants"))
    return str(cache.mkdir("convir-mutants"))


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_models_are_refused_or_match_onnxruntime(data, cache_dir) -> None:
    model = data.draw(st.sampled_from(BASES), label="base")()
    for mutation in data.draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2)):
        mutation(model, data.draw)
    try:
        compiled = convir.compile(model, threads=1, cache_dir=cache_dir)
    except OnnxImportError:
        return
    feed = {spec.name: _weight(list(spec.shape)) for spec in compiled.inputs}
    ours = compiled.run(feed)
    theirs = _onnxruntime(model, feed)
    if theirs is None:
        return
    for value, expected in zip(ours.values(), theirs, strict=True):
        assert_close(value, expected)
