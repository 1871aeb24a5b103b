"""Produce the committed ONNX fixtures in ``tests/data/`` (run by hand, never by the tests).

This script is the record of how the real-export fixtures were made. The tests only read the
committed ``.onnx`` / ``.npz`` files; they never import this module, and torch is *not* a project
dependency.

Usage (from the repository root)::

    pip install torch==2.13.0          # CPU build; only needed for the torch_* fixtures
    python tests/data/export_models.py               # regenerate everything, then verify
    python tests/data/export_models.py --skip-torch  # only the hand-built zoo_style_* fixtures
    python tests/data/export_models.py --verify-only # re-check the committed files

Fixtures
--------
``torch_resnet_mini_opset17.onnx``
    Tiny ResNet (stem 7x7/2 conv + BN + ReLU + 3x3/2 max pool, two BasicBlocks, the second with a
    stride-2 1x1-conv+BN downsample, adaptive avg pool, flatten, Linear), exported with the
    TorchScript exporter (``dynamo=False``) at opset 17 with default settings, so BN is folded into
    the convolutions.
``torch_resnet_mini_bn_opset17.onnx``
    The same network and weights exported with ``do_constant_folding=False``: the
    ``BatchNormalization`` nodes survive instead of being folded into the convolutions.
``torch_mobilenet_mini_opset17.onnx``
    Tiny MobileNetV2/V3-like net: depthwise convs, ReLU6 (``Clip``), inverted residual ``Add``,
    squeeze-excitation blocks (global pool, 1x1 conv, ReLU, 1x1 conv, HardSigmoid/Sigmoid, ``Mul``),
    HardSwish, flatten, Linear. TorchScript exporter, opset 17.
``torch_squeeze_opset9.onnx``
    Tiny SqueezeNet-like net exported at opset 9 with ``keep_initializers_as_inputs=True``
    (initializers are also graph inputs, as in the old model zoo): max pools with
    ``ceil_mode=True``, fire-module ``Concat``, a standalone ``BatchNormalization``, Dropout
    (removed by the exporter in eval mode), ``x.view(x.size(0), -1)`` (a
    Shape/Gather/Unsqueeze/Concat/Reshape subgraph), Linear and Softmax. There is deliberately no
    ``nn.LocalResponseNorm``: torch has no ONNX symbolic for LRN, so it would be traced into a
    decomposition (rank-5 Reshapes, opset-2 ``Pad``, a 3-D ``AveragePool``, Pow/Div) that real
    models do not carry; a genuine ``LRN`` op is covered by the ``zoo_style_*`` fixtures. torch
    2.13 replaces every ``x.size(...)`` by a Constant when the input shape is static, so this one
    is exported with a dynamic batch axis (``dynamic_axes``) to keep the shape subgraph, and the
    symbolic batch dim of the graph input/output is then pinned to 1 (:func:`pin_batch_dim`) --
    the nodes are exactly as exported.
``zoo_style_opset9.onnx`` / ``zoo_style_opset7.onnx``
    Built by hand with ``onnx.helper`` (no torch) in the style of the caffe2-converted model zoo:
    IR version 3, every initializer also listed in ``graph.input``, ``Pad`` with a ``pads``
    attribute before a ``MaxPool``, a conv bias produced by ``ConstantOfShape`` (opset 9 only; the
    opset-7 file uses a ``Constant`` node since ConstantOfShape does not exist there),
    ``BatchNormalization`` (opset 7 with ``spatial=1``; opset 9 without), ``LRN``, a three-input
    ``Sum``, ``AveragePool`` with ``count_include_pad=1``, ``Squeeze``/``Unsqueeze`` with ``axes``
    attributes, ``Flatten``, ``Gemm`` with ``transB=1``, ``Dropout`` with ``ratio`` and an unused
    mask output, ``Reshape`` whose shape comes from a ``Constant`` node, and a ``Softmax(axis=1)``
    applied to a rank-3 tensor, so the opset < 13 "coerce to 2-D" semantics matter (the softmax is
    over all 32 trailing elements, not over axis 1 alone).

For every fixture ``<name>.onnx`` the script also writes ``<name>.npz`` with arrays ``input`` (a
deterministic float32 input) and ``output`` (onnxruntime's output for it), so tests can compare
against a stored reference even where onnxruntime is absent or behaves differently.
"""

from __future__ import annotations

import argparse
import collections
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DATA_DIR = Path(__file__).resolve().parent
SEED = 0

# Ops each fixture must contain (checked after export; guards against exporter drift).
EXPECTED_OPS: dict[str, set[str]] = {
    "torch_resnet_mini_opset17": {
        *("Conv", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm"),
    },
    "torch_resnet_mini_bn_opset17": {
        *("Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "GlobalAveragePool"),
        *("Flatten", "Gemm"),
    },
    "torch_mobilenet_mini_opset17": {
        *("Conv", "Clip", "Add", "GlobalAveragePool", "Relu", "HardSigmoid", "Sigmoid", "Mul"),
        *("HardSwish", "Flatten", "Gemm"),
    },
    "torch_squeeze_opset9": {
        *("Conv", "Relu", "MaxPool", "Concat", "BatchNormalization", "Shape", "Gather"),
        *("Unsqueeze", "Reshape", "Gemm", "Softmax"),
    },
    "zoo_style_opset9": {
        *("Pad", "ConstantOfShape", "Constant", "Conv", "BatchNormalization", "Relu", "LRN"),
        *("MaxPool", "Sum", "AveragePool", "GlobalAveragePool", "Squeeze", "Unsqueeze"),
        *("Sigmoid", "Mul", "Flatten", "Gemm", "Dropout", "Reshape", "Softmax"),
    },
    "zoo_style_opset7": {
        *("Pad", "Constant", "Conv", "BatchNormalization", "Relu", "LRN", "MaxPool", "Sum"),
        *("AveragePool", "GlobalAveragePool", "Squeeze", "Unsqueeze", "Sigmoid", "Mul"),
        *("Flatten", "Gemm", "Dropout", "Reshape", "Softmax"),
    },
}

INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "torch_resnet_mini_opset17": (1, 3, 64, 64),
    "torch_resnet_mini_bn_opset17": (1, 3, 64, 64),
    "torch_mobilenet_mini_opset17": (1, 3, 32, 32),
    "torch_squeeze_opset9": (1, 3, 32, 32),
    "zoo_style_opset9": (1, 3, 32, 32),
    "zoo_style_opset7": (1, 3, 32, 32),
}


def fixture_input(name: str) -> np.ndarray:
    """The deterministic input stored in ``<name>.npz`` (independent of torch)."""
    rng = np.random.default_rng(hash_name(name))
    return rng.standard_normal(INPUT_SHAPES[name]).astype(np.float32)


def hash_name(name: str) -> int:
    # Python's hash() is salted per process; use a stable one.
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) % (2**31 - 1)
    return h


# --------------------------------------------------------------------------------------------
# torch networks (torch imported lazily so --skip-torch works without it)
# --------------------------------------------------------------------------------------------


def build_torch_models():
    import torch
    from torch import nn

    def randomize_bn(model: nn.Module) -> None:
        """Give every BatchNorm non-trivial affine parameters and running statistics."""
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNetMini(nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = BasicBlock(16, 16)
            self.layer2 = BasicBlock(16, 32, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(32, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer2(self.layer1(x))
            x = torch.flatten(self.avgpool(x), 1)
            return self.fc(x)

    class SqueezeExcite(nn.Module):
        def __init__(self, ch: int, squeeze: int, gate: nn.Module) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(ch, squeeze, 1)
            self.relu = nn.ReLU(inplace=True)
            self.fc2 = nn.Conv2d(squeeze, ch, 1)
            self.gate = gate

        def forward(self, x):
            s = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))
            return x * s

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand, act: type[nn.Module], gate: nn.Module):
            super().__init__()
            hidden = cin * expand
            self.use_res = stride == 1 and cin == cout
            self.block = nn.Sequential(
                nn.Conv2d(cin, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                act(),
                nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
                act(),
                SqueezeExcite(hidden, max(hidden // 4, 4), gate),
                nn.Conv2d(hidden, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )

        def forward(self, x):
            y = self.block(x)
            return x + y if self.use_res else y

    class MobileNetMini(nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True)
            )
            self.block1 = InvertedResidual(16, 16, 1, 2, nn.ReLU6, nn.Hardsigmoid())
            self.block2 = InvertedResidual(16, 24, 2, 2, nn.Hardswish, nn.Sigmoid())
            self.head = nn.Sequential(
                nn.Conv2d(24, 48, 1, bias=False), nn.BatchNorm2d(48), nn.Hardswish()
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(48, num_classes)

        def forward(self, x):
            x = self.head(self.block2(self.block1(self.stem(x))))
            return self.classifier(torch.flatten(self.pool(x), 1))

    class Fire(nn.Module):
        def __init__(self, cin: int, squeeze: int, expand: int) -> None:
            super().__init__()
            self.squeeze = nn.Conv2d(cin, squeeze, 1)
            self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
            self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            x = self.relu(self.squeeze(x))
            return torch.cat([self.relu(self.expand1x1(x)), self.relu(self.expand3x3(x))], 1)

    class SqueezeMini(nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 2)
            self.relu = nn.ReLU(inplace=True)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.fire1 = Fire(16, 8, 16)
            self.bn = nn.BatchNorm2d(32)  # after Concat, so the exporter cannot fold it
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.fire2 = Fire(32, 8, 16)
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(32 * 3 * 3, num_classes)
            self.softmax = nn.Softmax(dim=1)

        def forward(self, x):
            x = self.pool1(self.relu(self.conv1(x)))
            x = self.pool2(self.relu(self.bn(self.fire1(x))))
            x = self.fire2(x)
            x = x.view(x.size(0), -1)
            return self.softmax(self.fc(self.dropout(x)))

    torch.manual_seed(SEED)
    resnet = ResNetMini()
    randomize_bn(resnet)
    torch.manual_seed(SEED + 1)
    mobilenet = MobileNetMini()
    randomize_bn(mobilenet)
    torch.manual_seed(SEED + 2)
    squeeze = SqueezeMini()
    randomize_bn(squeeze)
    return {
        "resnet": resnet.eval(),
        "mobilenet": mobilenet.eval(),
        "squeeze": squeeze.eval(),
    }


def export_torch_fixtures() -> dict[str, np.ndarray]:
    """Export the torch_* fixtures; return torch's own outputs for cross-checking."""
    import torch

    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    print(f"torch {torch.__version__}")
    models = build_torch_models()
    # (fixture name, model, export kwargs). Exported the way users do, with the TorchScript
    # exporter (dynamo=False), which is what most models in the wild were produced by.
    plan = [
        ("torch_resnet_mini_opset17", models["resnet"], {"opset_version": 17}),
        (
            "torch_resnet_mini_bn_opset17",
            models["resnet"],
            {"opset_version": 17, "do_constant_folding": False},
        ),
        ("torch_mobilenet_mini_opset17", models["mobilenet"], {"opset_version": 17}),
        (
            "torch_squeeze_opset9",
            models["squeeze"],
            {
                "opset_version": 9,
                "keep_initializers_as_inputs": True,
                # With a fully static input, torch 2.13's ONNX shape inference turns every
                # x.size(0) into a Constant (even with do_constant_folding=False); a dynamic
                # batch axis is the only way to keep the Shape/Gather/... subgraphs.
                "dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}},
            },
        ),
    ]
    torch_outputs = {}
    for name, model, kwargs in plan:
        x = torch.from_numpy(fixture_input(name))
        path = DATA_DIR / f"{name}.onnx"
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamo=False,
            **kwargs,
        )
        if "dynamic_axes" in kwargs:
            pin_batch_dim(path)
        with torch.no_grad():
            torch_outputs[name] = model(x).numpy()
    torch_outputs.update(export_decoder_mini())
    return torch_outputs


def pin_batch_dim(path: Path) -> None:
    """Replace the symbolic batch dimension of the graph inputs/outputs by 1 (in place).

    The result looks like an old static-shape export that still carries shape subgraphs: the
    nodes are untouched, only the declared input/output types change.
    """
    model = onnx.load(str(path))
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].dim_param == "batch":
            dims[0].Clear()
            dims[0].dim_value = 1
    onnx.save(model, str(path))


# --------------------------------------------------------------------------------------------
# hand-built model-zoo-style fixtures (no torch)
# --------------------------------------------------------------------------------------------


def build_zoo_style(opset: int) -> onnx.ModelProto:
    """A small caffe2-model-zoo-style network at opset 7 or 9, IR version 3."""
    assert opset in (7, 9)
    rng = np.random.default_rng(SEED + opset)
    inits: list[onnx.TensorProto] = []

    def weight(name: str, shape: tuple[int, ...], fan_in: int | None = None) -> str:
        scale = np.sqrt(2.0 / fan_in) if fan_in else 1.0
        arr = (rng.standard_normal(shape) * scale).astype(np.float32)
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def uniform(name: str, shape: tuple[int, ...], lo: float, hi: float) -> str:
        arr = rng.uniform(lo, hi, shape).astype(np.float32)
        inits.append(numpy_helper.from_array(arr, name))
        return name

    nodes: list[onnx.NodeProto] = []

    def node(op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], **attrs))

    # conv1: explicit Pad (pads attribute, opset < 11) + Conv whose zero bias is computed.
    node(
        "Pad", ["data_0"], ["conv1_pad"], mode="constant", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.0
    )
    weight("conv1_w_0", (8, 3, 3, 3), fan_in=27)
    if opset >= 9:
        node(
            "Constant",
            [],
            ["conv1_b_shape"],
            value=numpy_helper.from_array(np.array([8], np.int64), "conv1_b_shape_value"),
        )
        node(
            "ConstantOfShape",
            ["conv1_b_shape"],
            ["conv1_b_0"],
            value=numpy_helper.from_array(np.zeros(1, np.float32), "conv1_b_fill"),
        )
    else:  # ConstantOfShape does not exist before opset 9
        node(
            "Constant",
            [],
            ["conv1_b_0"],
            value=numpy_helper.from_array(np.zeros(8, np.float32), "conv1_b_value"),
        )
    node(
        "Conv",
        ["conv1_pad", "conv1_w_0", "conv1_b_0"],
        ["conv1_1"],
        kernel_shape=[3, 3],
        strides=[1, 1],
        pads=[0, 0, 0, 0],
    )  # [1,8,32,32]

    # BatchNormalization: opset 7 carries spatial=1, opset 9 has no spatial attribute.
    bn_inputs = [
        "conv1_1",
        uniform("bn1_scale_0", (8,), 0.5, 1.5),
        uniform("bn1_b_0", (8,), -0.2, 0.2),
        uniform("bn1_mean_0", (8,), -0.2, 0.2),
        uniform("bn1_var_0", (8,), 0.5, 1.5),
    ]
    bn_attrs: dict = {"epsilon": 1e-5}
    if opset == 7:
        bn_attrs["spatial"] = 1
    node("BatchNormalization", bn_inputs, ["bn1_1"], **bn_attrs)
    node("Relu", ["bn1_1"], ["relu1_1"])
    node("LRN", ["relu1_1"], ["norm1_1"], size=5, alpha=1e-4, beta=0.75, bias=1.0)

    # Asymmetric explicit padding feeding an unpadded MaxPool: 33x33 -> 16x16.
    node("Pad", ["norm1_1"], ["pool1_pad"], mode="constant", pads=[0, 0, 0, 0, 0, 0, 1, 1])
    node("MaxPool", ["pool1_pad"], ["pool1_1"], kernel_shape=[3, 3], strides=[2, 2])

    # Two conv branches summed with the identity: Sum of three tensors.
    weight("conv2a_w_0", (8, 8, 1, 1), fan_in=8)
    weight("conv2a_b_0", (8,), fan_in=64)
    node("Conv", ["pool1_1", "conv2a_w_0", "conv2a_b_0"], ["conv2a_1"], kernel_shape=[1, 1])
    node("Relu", ["conv2a_1"], ["conv2a_2"])
    weight("conv2b_w_0", (8, 8, 3, 3), fan_in=72)
    weight("conv2b_b_0", (8,), fan_in=64)
    node(
        "Conv",
        ["pool1_1", "conv2b_w_0", "conv2b_b_0"],
        ["conv2b_1"],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    node("Relu", ["conv2b_1"], ["conv2b_2"])
    node("Sum", ["conv2a_2", "conv2b_2", "pool1_1"], ["sum2_1"])

    # AveragePool counting the padding: 16x16 -> 8x8.
    node(
        "AveragePool",
        ["sum2_1"],
        ["pool2_1"],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        count_include_pad=1,
    )

    # Channel gate with attribute-style Squeeze/Unsqueeze (axes attribute, opset < 13).
    node("GlobalAveragePool", ["pool2_1"], ["gap_1"])  # [1,8,1,1]
    node("Squeeze", ["gap_1"], ["gap_sq_1"], axes=[2, 3])  # [1,8]
    node("Sigmoid", ["gap_sq_1"], ["gate_1"])
    node("Unsqueeze", ["gate_1"], ["gate_2"], axes=[2, 3])  # [1,8,1,1]
    node("Mul", ["pool2_1", "gate_2"], ["gated_1"])

    node("Flatten", ["gated_1"], ["flatten_1"], axis=1)  # [1,512]
    weight("fc1_w_0", (32, 512), fan_in=512)
    weight("fc1_b_0", (32,), fan_in=512)
    node("Gemm", ["flatten_1", "fc1_w_0", "fc1_b_0"], ["fc1_1"], transB=1)
    node("Relu", ["fc1_1"], ["fc1_2"])
    node("Dropout", ["fc1_2"], ["drop1_1", "drop1_mask_1"], ratio=0.5)  # mask unused
    weight("fc2_w_0", (32, 32), fan_in=32)
    weight("fc2_b_0", (32,), fan_in=32)
    node("Gemm", ["drop1_1", "fc2_w_0", "fc2_b_0"], ["fc2_1"], alpha=1.0, beta=1.0, transB=1)

    # Reshape with a Constant shape, then Softmax(axis=1) on a rank-3 tensor: with opset < 13
    # semantics the input is coerced to [1, 32] and normalised over all 32 elements.
    shape = np.array([1, 4, 8], np.int64)
    if opset >= 9:
        node(
            "Constant",
            [],
            ["reshape_shape"],
            value=numpy_helper.from_array(shape, "reshape_shape_value"),
        )
    else:  # Constant-1 only produces float tensors, so the int64 shape is an initializer
        inits.append(numpy_helper.from_array(shape, "reshape_shape"))
    node("Reshape", ["fc2_1", "reshape_shape"], ["fc2_2"])
    node("Softmax", ["fc2_2"], ["prob_1"], axis=1)

    data_in = helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [1, 3, 32, 32])
    # Model-zoo style: every initializer is also declared as a graph input.
    init_inputs = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    out = helper.make_tensor_value_info("prob_1", TensorProto.FLOAT, [1, 4, 8])
    graph = helper.make_graph(
        nodes, f"zoo_style_opset{opset}", [data_in, *init_inputs], [out], initializer=inits
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="convir-tests-export_models",
        producer_version="1",
    )
    model.ir_version = 3
    return model


def write_zoo_fixtures() -> None:
    for opset in (9, 7):
        model = build_zoo_style(opset)
        onnx.save(model, str(DATA_DIR / f"zoo_style_opset{opset}.onnx"))


# --------------------------------------------------------------------------------------------
# reductions and resampling (issue 12): torch nets with ReduceMean/Max/Sum, Resize/Upsample,
# Expand; their own names, shapes and export so the fixtures above stay as they were made
# --------------------------------------------------------------------------------------------

RESAMPLE_FIXTURES = {
    "torch_resample_mini_opset17": 17,
    "torch_resample_mini_opset18": 18,
    "torch_upsample_mini_opset9": 9,
}
EXPECTED_OPS.update(
    {
        "torch_resample_mini_opset17": {
            *("Conv", "Relu", "Resize", "ReduceMean", "ReduceMax", "ReduceSum", "Expand"),
            *("Sigmoid", "Mul", "Add"),
        },
        "torch_resample_mini_opset18": {
            *("Conv", "Relu", "Resize", "ReduceMean", "ReduceMax", "ReduceSum", "Expand"),
            *("Sigmoid", "Mul", "Add"),
        },
        "torch_upsample_mini_opset9": {"Conv", "Relu", "Upsample", "ReduceMean", "Add", "Gemm"},
    }
)
INPUT_SHAPES.update({name: (1, 3, 32, 32) for name in RESAMPLE_FIXTURES})


def build_resample_models():
    """The networks of the resample fixtures: a small segmentation-style head (upsampling by
    sizes and by scales, bilinear with and without align_corners, nearest; means, maxes and sums
    over space, channels and one axis; an expanded gate) and an opset-9 Upsample classifier."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ResampleMini(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
            )
            self.down = nn.Sequential(nn.Conv2d(16, 24, 3, 2, 1), nn.ReLU())
            self.head = nn.Conv2d(24, 16, 1)
            self.gate = nn.Conv2d(16, 16, 1)
            self.classifier = nn.Conv2d(16, 5, 1)

        def forward(self, x):
            skip = self.stem(x)  # 16x16
            deep = self.down(skip)  # 8x8
            up = F.interpolate(
                self.head(deep), size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            near = F.interpolate(deep[:, :16], scale_factor=2.0, mode="nearest")
            gate = torch.sigmoid(self.gate(skip.mean((2, 3), keepdim=True)))
            y = (up + near) * gate.expand(-1, -1, 16, 16)
            y = y + skip.amax(dim=1, keepdim=True) + 0.1 * skip.sum(dim=3, keepdim=True)
            y = self.classifier(torch.relu(y))
            return F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=True)

    class UpsampleMini(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
            self.up = nn.Conv2d(8, 8, 3, 1, 1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            deep = self.down(x)
            y = F.interpolate(self.up(deep), scale_factor=2.0, mode="nearest")
            y = torch.relu(y + F.interpolate(deep, scale_factor=2.0, mode="nearest"))
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(SEED + 3)
    resample = ResampleMini()
    for m in resample.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    torch.manual_seed(SEED + 4)
    upsample = UpsampleMini()
    return {"resample": resample.eval(), "upsample": upsample.eval()}


def export_resample_fixtures(names: list[str]) -> dict[str, np.ndarray]:
    """Export the resample fixtures among `names` with the TorchScript exporter; return torch's
    outputs for cross-checking."""
    import torch

    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    models = build_resample_models()
    torch_outputs = {}
    for name, opset in RESAMPLE_FIXTURES.items():
        if name not in names:
            continue
        model = models["upsample" if opset < 10 else "resample"]
        x = torch.from_numpy(fixture_input(name))
        torch.onnx.export(
            model,
            (x,),
            str(DATA_DIR / f"{name}.onnx"),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamo=False,
        )
        with torch.no_grad():
            torch_outputs[name] = model(x).numpy()
    return torch_outputs


# ConvTranspose (issue 12): a tiny encoder-decoder, in one block so other fixtures merge cleanly.
# Regenerate only this fixture with:
#   python -c "import sys; sys.path.insert(0, 'tests/data'); import export_models as e;
#              e.verify(['torch_decoder_mini_opset17'], e.export_decoder_mini(), True)"
# --------------------------------------------------------------------------------------------

EXPECTED_OPS["torch_decoder_mini_opset17"] = {
    *("Conv", "ConvTranspose", "BatchNormalization", "Relu", "Add"),
}
INPUT_SHAPES["torch_decoder_mini_opset17"] = (1, 3, 32, 32)


def export_decoder_mini() -> dict[str, np.ndarray]:
    """Export ``torch_decoder_mini_opset17``: two stride-2 convs down (32 -> 8), then up through
    every kind of ``nn.ConvTranspose2d`` a decoder uses: 4x4/2 pad 1 (the learned 2x upsampling,
    with BN + ReLU and a U-Net skip ``Add``), 3x3/2 pad 1 output_padding 1 with groups=2, 2x2/2
    (kernel = stride, FCN-style), and a 3x3/1 dilation-2 one without bias. BN after a transposed
    conv stays a ``BatchNormalization`` node (the exporter folds BN into Conv only). TorchScript
    exporter, opset 17; returns torch's output for cross-checking."""
    import torch
    from torch import nn

    class DecoderMini(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
            self.down2 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
            self.up1 = nn.ConvTranspose2d(32, 16, 4, 2, 1)
            self.up1_bn = nn.BatchNorm2d(16)
            self.up2 = nn.ConvTranspose2d(16, 8, 3, 2, 1, output_padding=1, groups=2)
            self.up3 = nn.ConvTranspose2d(8, 4, 2, 2)
            self.head = nn.ConvTranspose2d(4, 2, 3, 1, 2, dilation=2, bias=False)

        def forward(self, x):
            skip = self.down1(x)
            y = torch.relu(self.up1_bn(self.up1(self.down2(skip)))) + skip
            y = torch.relu(self.up2(y))
            return self.head(torch.relu(self.up3(y)))

    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    torch.manual_seed(SEED + 3)
    model = DecoderMini()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    model.eval()
    name = "torch_decoder_mini_opset17"
    x = torch.from_numpy(fixture_input(name))
    torch.onnx.export(
        model,
        (x,),
        str(DATA_DIR / f"{name}.onnx"),
        input_names=["input"],
        output_names=["output"],
        dynamo=False,
        opset_version=17,
    )
    with torch.no_grad():
        return {name: model(x).numpy()}


# --------------------------------------------------------------------------------------------
# verification + reference outputs
# --------------------------------------------------------------------------------------------


def verify(names: list[str], torch_outputs: dict[str, np.ndarray], write_npz: bool) -> None:
    import onnxruntime as ort

    for name in names:
        path = DATA_DIR / f"{name}.onnx"
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        hist = collections.Counter(n.op_type for n in model.graph.node)
        missing = EXPECTED_OPS[name] - set(hist)
        assert not missing, f"{name}: expected ops missing: {sorted(missing)}"

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # silence "initializer appears in graph inputs" warnings
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = sess.get_inputs()
        assert len(feeds) == 1, f"{name}: ORT should need only the data input"
        x = fixture_input(name)
        (y,) = sess.run(None, {feeds[0].name: x})
        assert np.all(np.isfinite(y)), f"{name}: non-finite output"
        if name in torch_outputs:
            np.testing.assert_allclose(y, torch_outputs[name], rtol=1e-4, atol=1e-5)
        if write_npz:
            np.savez(DATA_DIR / f"{name}.npz", input=x, output=y)
        else:
            ref = np.load(DATA_DIR / f"{name}.npz")
            np.testing.assert_array_equal(ref["input"], x)
            np.testing.assert_allclose(y, ref["output"], rtol=1e-5, atol=1e-6)

        opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        init_names = {t.name for t in model.graph.initializer}
        n_init_inputs = sum(i.name in init_names for i in model.graph.input)
        print(
            f"\n{name}.onnx: {path.stat().st_size} bytes, ir_version {model.ir_version}, "
            f"opsets {opsets}, producer {model.producer_name} {model.producer_version}"
        )
        print(
            f"  inputs {len(model.graph.input)} ({n_init_inputs} are initializers), "
            f"initializers {len(init_names)}, input {list(x.shape)} -> output {list(y.shape)}"
        )
        print("  ops: " + ", ".join(f"{op} {n}" for op, n in sorted(hist.items())))


# --------------------------------------------------------------------------------------------
# Math-op fixtures (issue 12): GELU, ConvNeXt block with LayerNorm, PReLU/Mish/Softplus/Pow.
# Exported by `export_math_fixtures` only (the older fixtures above stay as they were made).
# --------------------------------------------------------------------------------------------

MATH_EXPECTED_OPS: dict[str, set[str]] = {
    "torch_gelu_block_opset17": {"Conv", "Erf", "Div", "Tanh", "Mul", "Gemm"},
    "torch_convnext_block_opset17": {
        *("Conv", "Transpose", "LayerNormalization", "MatMul", "Erf", "Mul", "Add"),
    },
    "torch_convnext_block_opset13": {
        *("Conv", "Transpose", "ReduceMean", "Sub", "Pow", "Sqrt", "Div", "MatMul", "Erf"),
    },
    "torch_prelu_mish_opset18": {
        *("Conv", "PRelu", "Softplus", "Tanh", "Sqrt", "Reciprocal", "Pow", "Gemm"),
    },
}
EXPECTED_OPS.update(MATH_EXPECTED_OPS)
INPUT_SHAPES.update(
    {
        "torch_gelu_block_opset17": (1, 3, 24, 24),
        "torch_convnext_block_opset17": (1, 3, 32, 32),
        "torch_convnext_block_opset13": (1, 3, 32, 32),
        "torch_prelu_mish_opset18": (1, 3, 20, 20),
    }
)


def build_math_models():
    import torch
    from torch import nn

    class GeluBlock(nn.Module):
        """conv-BN-GELU (exact, decomposed at opset 17), conv-GELU (tanh), pool, Linear."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.bn = nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 24, 3, stride=2, padding=1)
            self.gelu = nn.GELU()
            self.gelu_tanh = nn.GELU(approximate="tanh")
            self.fc = nn.Linear(24, 10)

        def forward(self, x):
            x = self.gelu(self.bn(self.conv1(x)))
            x = self.gelu_tanh(self.conv2(x))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class ChannelsLastNorm(nn.Module):
        """ConvNeXt's LayerNorm over channels of an NCHW tensor: permute, LayerNorm, permute."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(channels, eps=1e-6)

        def forward(self, x):
            return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class ConvNeXtBlock(nn.Module):
        """dw7x7, permute, LayerNorm, Linear, GELU, Linear, layer scale, permute, residual."""

        def __init__(self, dim: int) -> None:
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1 = nn.Linear(dim, 4 * dim)
            self.act = nn.GELU()
            self.pwconv2 = nn.Linear(4 * dim, dim)
            self.gamma = nn.Parameter(torch.rand(dim) + 0.5)

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
            return x + (self.gamma * y).permute(0, 3, 1, 2)

    class ConvNeXtMini(nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 32, 4, stride=4)
            self.stem_norm = ChannelsLastNorm(32)
            self.block = ConvNeXtBlock(32)
            self.head_norm = ChannelsLastNorm(32)
            self.fc = nn.Linear(32, num_classes)

        def forward(self, x):
            x = self.block(self.stem_norm(self.stem(x)))
            x = self.head_norm(nn.functional.adaptive_avg_pool2d(x, 1))
            return self.fc(torch.flatten(x, 1))

    class PReluMish(nn.Module):
        """PReLU (per channel and shared), Mish (decomposed by torch even at opset 18), Softplus,
        then sqrt, reciprocal and powers."""

        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.prelu1 = nn.PReLU(16, init=0.1)
            self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.prelu2 = nn.PReLU(1, init=0.3)
            self.conv3 = nn.Conv2d(16, 24, 1)
            self.mish = nn.Mish()
            self.conv4 = nn.Conv2d(24, 24, 3, stride=2, padding=1)
            self.softplus = nn.Softplus()
            self.fc = nn.Linear(24, num_classes)

        def forward(self, x):
            x = self.prelu2(self.conv2(self.prelu1(self.conv1(x))))
            x = self.softplus(self.conv4(self.mish(self.conv3(x))))
            x = torch.reciprocal(torch.sqrt(x + 1.0)) + 0.1 * x.pow(2) + x.pow(0.5)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    torch.manual_seed(SEED + 10)
    gelu = GeluBlock()
    with torch.no_grad():
        gelu.bn.running_mean.uniform_(-0.5, 0.5)
        gelu.bn.running_var.uniform_(0.5, 2.0)
        gelu.bn.weight.uniform_(0.5, 1.5)
    torch.manual_seed(SEED + 11)
    convnext = ConvNeXtMini()
    with torch.no_grad():
        for norm in (convnext.stem_norm.norm, convnext.block.norm, convnext.head_norm.norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    torch.manual_seed(SEED + 12)
    prelu = PReluMish()
    with torch.no_grad():
        prelu.prelu1.weight.uniform_(-0.5, 0.5)
    return {"gelu": gelu.eval(), "convnext": convnext.eval(), "prelu": prelu.eval()}


def export_math_fixtures() -> dict[str, np.ndarray]:
    """Export the math-op fixtures; return torch's own outputs for cross-checking.

    The ConvNeXt block is exported twice: at opset 17 LayerNorm is one `LayerNormalization`
    node, at opset 13 the exporter decomposes it into ReduceMean/Sub/Pow/Sqrt/Div (the pattern
    older exports carry). GELU is decomposed into Div/Erf/Add/Mul at both opsets.
    """
    import torch

    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    models = build_math_models()
    plan = [
        ("torch_gelu_block_opset17", models["gelu"], 17),
        ("torch_convnext_block_opset17", models["convnext"], 17),
        ("torch_convnext_block_opset13", models["convnext"], 13),
        ("torch_prelu_mish_opset18", models["prelu"], 18),
    ]
    torch_outputs = {}
    for name, model, opset in plan:
        x = torch.from_numpy(fixture_input(name))
        torch.onnx.export(
            model,
            (x,),
            str(DATA_DIR / f"{name}.onnx"),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamo=False,
        )
        with torch.no_grad():
            torch_outputs[name] = model(x).numpy()
    return torch_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-torch", action="store_true", help="only the zoo_style_* fixtures")
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="do not regenerate; check the committed files against their .npz",
    )
    parser.add_argument(
        "--math-only", action="store_true", help="only the math-op fixtures (GELU, ConvNeXt ...)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="export and verify only these fixtures"
    )
    args = parser.parse_args()

    torch_names = [n for n in EXPECTED_OPS if n.startswith("torch_")]
    zoo_names = [n for n in EXPECTED_OPS if n.startswith("zoo_")]
    names = zoo_names if args.skip_torch else torch_names + zoo_names
    if args.math_only:
        names = list(MATH_EXPECTED_OPS)
    if args.only:
        names = [n for n in names if n in args.only]
    torch_outputs: dict[str, np.ndarray] = {}
    if not args.verify_only:
        if args.math_only:
            torch_outputs = export_math_fixtures()
        else:
            if any(n in names and n not in RESAMPLE_FIXTURES for n in torch_names):
                torch_outputs = export_torch_fixtures() | export_math_fixtures()
            torch_outputs |= export_resample_fixtures(names)
            if any(n in names for n in zoo_names):
                write_zoo_fixtures()
    verify(names, torch_outputs, write_npz=not args.verify_only)


if __name__ == "__main__":
    main()
