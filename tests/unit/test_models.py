"""Tests of convir.models: ONNX validity, torchvision parity, determinism, onnxruntime execution."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from convir import models

SIZE = 64
BATCH = 2

# torchvision's published parameter counts (1000 classes, 224x224 input).
TORCHVISION_PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2": 2_278_604,
    "vgg16": 138_357_544,
    "squeezenet1_1": 1_235_496,
}

# Operator counts that follow from torchvision's definition of each architecture.
OP_COUNTS = {
    "resnet18": {"Conv": 20, "BatchNormalization": 20, "Add": 8, "Relu": 17, "Gemm": 1},
    "resnet50": {"Conv": 53, "BatchNormalization": 53, "Add": 16, "Relu": 49, "Gemm": 1},
    "mobilenet_v2": {"Conv": 52, "BatchNormalization": 52, "Clip": 35, "Add": 10, "Gemm": 1},
    "shufflenet_v2": {"Conv": 56, "Split": 13, "Concat": 16, "Transpose": 16, "Reshape": 32},
    "vgg16": {"Conv": 13, "Relu": 15, "MaxPool": 5, "Gemm": 3, "Dropout": 2},
    "squeezenet1_1": {"Conv": 26, "Relu": 26, "MaxPool": 3, "Concat": 8, "Dropout": 1},
}


def parameter_count(model: onnx.ModelProto) -> int:
    """Count what torch calls parameters: float initializers except BN running statistics.

    Scalars are left out too: they are Clip's ReLU6 bounds, constants rather than parameters.
    """
    return sum(
        int(np.prod(tensor.dims))
        for tensor in model.graph.initializer
        if tensor.data_type == onnx.TensorProto.FLOAT
        and tensor.dims
        and not tensor.name.endswith((".running_mean", ".running_var"))
    )


def run(model: onnx.ModelProto, batch: int, size: int) -> np.ndarray:
    """Run `model` in onnxruntime on a seeded random input and return "output"."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(1).standard_normal((batch, 3, size, size), dtype=np.float32)
    (output,) = session.run(["output"], {"input": image})
    return output


@pytest.fixture(scope="module", params=list(models.MODELS))
def built(request: pytest.FixtureRequest) -> tuple[str, onnx.ModelProto]:
    """Each model once, at the small test size, shared by the tests of this module."""
    return request.param, models.build(request.param, batch=BATCH, size=SIZE)


def test_passes_full_onnx_check(built: tuple[str, onnx.ModelProto]) -> None:
    onnx.checker.check_model(built[1], full_check=True)


def test_interface(built: tuple[str, onnx.ModelProto]) -> None:
    model = built[1]
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert graph_input.name == "input"
    assert graph_output.name == "output"
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == [BATCH, 3, SIZE, SIZE]
    assert [d.dim_value for d in graph_output.type.tensor_type.shape.dim] == [BATCH, 1000]


def test_names_are_unique_and_torch_like(built: tuple[str, onnx.ModelProto]) -> None:
    graph = built[1].graph
    node_names = [node.name for node in graph.node]
    assert all(node_names)
    assert len(set(node_names)) == len(node_names)
    initializer_names = [tensor.name for tensor in graph.initializer]
    assert len(set(initializer_names)) == len(initializer_names)
    for node in graph.node:
        if node.op_type == "Conv":
            assert node.input[1] == f"{node.name}.weight"


def test_parameter_count_matches_torchvision(built: tuple[str, onnx.ModelProto]) -> None:
    name, model = built
    expected = TORCHVISION_PARAMETERS[name]
    if name == "vgg16":
        # The first Gemm sees 512 x (size/32)^2 features rather than torchvision's 512 x 7 x 7.
        expected -= 4096 * 512 * (7 * 7 - (SIZE // 32) ** 2)
    assert parameter_count(model) == expected


def test_op_counts_match_torchvision(built: tuple[str, onnx.ModelProto]) -> None:
    name, model = built
    counts = Counter(node.op_type for node in model.graph.node)
    assert {op: counts[op] for op in OP_COUNTS[name]} == OP_COUNTS[name]


def test_runs_in_onnxruntime_with_sane_outputs(built: tuple[str, onnx.ModelProto]) -> None:
    output = run(built[1], BATCH, SIZE)
    assert output.shape == (BATCH, 1000)
    assert np.isfinite(output).all()
    assert 1e-3 < np.abs(output).max() < 1e4


def test_seed_decides_the_weights(built: tuple[str, onnx.ModelProto]) -> None:
    name, model = built
    again = models.build(name, batch=BATCH, size=SIZE)
    other = models.build(name, seed=1, batch=BATCH, size=SIZE)
    assert model.graph.initializer == again.graph.initializer
    pairs = zip(model.graph.initializer, other.graph.initializer, strict=True)
    for tensor, other_tensor in pairs:
        assert tensor.name == other_tensor.name
        random = tensor.data_type == onnx.TensorProto.FLOAT and tensor.dims
        assert (tensor.raw_data != other_tensor.raw_data) == bool(random), tensor.name


def test_resnet50_strides_on_the_3x3_conv() -> None:
    strides = {
        node.name: attribute.ints
        for node in models.resnet50(size=32).graph.node
        for attribute in node.attribute
        if node.op_type == "Conv" and attribute.name == "strides"
    }
    assert strides["layer2.0.conv1"] == [1, 1]
    assert strides["layer2.0.conv2"] == [2, 2]
    assert strides["layer2.0.downsample.0"] == [2, 2]


def test_full_size_and_custom_classes() -> None:
    model = models.build("squeezenet1_1", size=224, num_classes=10)
    onnx.checker.check_model(model, full_check=True)
    output = run(model, 1, 224)
    assert output.shape == (1, 10)
    assert np.isfinite(output).all()


def test_vgg16_rejects_inputs_too_small_for_its_pools() -> None:
    with pytest.raises(ValueError, match="vgg16 needs size >= 32"):
        models.vgg16(size=16)


def test_build_rejects_unknown_model() -> None:
    with pytest.raises(ValueError, match="'nope'") as error:
        models.build("nope")
    assert all(name in str(error.value) for name in models.MODELS)
