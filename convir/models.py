"""Standard CNNs built directly as ONNX models, for testing and benchmarking the compiler.

Each builder returns an `onnx.ModelProto` shaped like torchvision's model exported to ONNX in eval
mode without batch-norm folding: Conv → BatchNormalization → Relu, with torch-like node and
initializer names (`layer1.0.conv1`, `layer1.0.conv1.weight`). Weights are random but scaled so that
activations stay in a sane range through the whole network, which keeps numerical comparisons
against onnxruntime meaningful. No torch and no downloads are needed.
"""

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
IR_VERSION = 8
BN_EPSILON = 1e-5
# Random BN statistics do not renormalise, so scale compounds with depth. A "linear" BN, one with
# no activation after it (a residual branch's last BN, a linear bottleneck, a depthwise conv feeding
# a 1x1 conv), has its gamma scaled down to stop the activations growing through the network.
LINEAR_GAMMA_SCALE = 0.5

Activation = Literal["relu", "relu6"]


class GraphBuilder:
    """Accumulates the nodes and initializers of one ONNX graph, with weights from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self._node_names: set[str] = set()

    def fresh(self, name: str) -> str:
        """Return `name`, or `name_1`, `name_2`, ... if a node already has it (as torch export)."""
        candidate, suffix = name, 0
        while candidate in self._node_names:
            suffix += 1
            candidate = f"{name}_{suffix}"
        self._node_names.add(candidate)
        return candidate

    def add(
        self,
        op_type: str,
        inputs: list[str],
        name: str,
        *,
        output: str | None = None,
        **attrs: object,
    ) -> str:
        """Append a single-output node and return its output tensor (named after the node)."""
        name = self.fresh(name)
        output = output or name
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))
        return output

    def split(self, x: str, sizes: str, name: str) -> tuple[str, str]:
        """Append a two-way `Split` along channels with `sizes` an int64 initializer."""
        name = self.fresh(name)
        outputs = [f"{name}.0", f"{name}.1"]
        self.nodes.append(helper.make_node("Split", [x, sizes], outputs, name=name, axis=1))
        return outputs[0], outputs[1]

    def constant(self, name: str, array: np.ndarray) -> str:
        """Register `array` as initializer `name`; a second call with the same name reuses it."""
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(array, name)
        return name

    def int64(self, name: str, values: list[int]) -> str:
        """Register a 1-D int64 initializer (shapes, split sizes)."""
        return self.constant(name, np.array(values, dtype=np.int64))

    def normal(self, name: str, shape: tuple[int, ...], std: float) -> str:
        """Register a float32 initializer drawn from N(0, std²)."""
        return self.constant(
            name, self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        )

    def uniform(self, name: str, shape: tuple[int, ...], low: float, high: float) -> str:
        """Register a float32 initializer drawn from U(low, high)."""
        return self.constant(name, self.rng.uniform(low, high, shape).astype(np.float32))

    def he_normal(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        """Register a He-normal weight: N(0, 2 / fan_in), which preserves scale through ReLU."""
        return self.normal(name, shape, float(np.sqrt(2.0 / fan_in)))

    def model(self, name: str, input_shape: list[int], output_shape: list[int]) -> onnx.ModelProto:
        """Wrap the accumulated graph, from tensor "input" to tensor "output", as a model."""
        float32 = onnx.TensorProto.FLOAT
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", float32, input_shape)],
            [helper.make_tensor_value_info("output", float32, output_shape)],
            initializer=list(self.initializers.values()),
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="convir.models",
        )


def _window(kernel: int, stride: int, pad: int) -> dict[str, list[int]]:
    """Conv/pool attributes of a square window with the same stride and padding on each side."""
    return {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [pad] * 4}


def conv(
    g: GraphBuilder,
    x: str,
    name: str,
    cin: int,
    cout: int,
    kernel: int,
    *,
    stride: int = 1,
    pad: int | None = None,
    group: int = 1,
    bias: bool = False,
) -> str:
    """Append a square Conv (padding `kernel // 2` unless given) with He-normal weights."""
    pad = kernel // 2 if pad is None else pad
    fan_in = cin // group * kernel * kernel
    inputs = [x, g.he_normal(f"{name}.weight", (cout, cin // group, kernel, kernel), fan_in)]
    if bias:
        inputs.append(g.normal(f"{name}.bias", (cout,), 0.01))
    return g.add("Conv", inputs, name, **_window(kernel, stride, pad), group=group)


def batch_norm(g: GraphBuilder, x: str, name: str, channels: int, linear: bool = False) -> str:
    """Append an inference-mode BatchNormalization with random, well-conditioned statistics."""
    shape = (channels,)
    gamma_scale = LINEAR_GAMMA_SCALE if linear else 1.0
    inputs = [
        x,
        g.uniform(f"{name}.weight", shape, 0.5 * gamma_scale, 1.5 * gamma_scale),
        g.normal(f"{name}.bias", shape, 0.1),
        g.normal(f"{name}.running_mean", shape, 0.1),
        g.uniform(f"{name}.running_var", shape, 0.5, 1.5),
    ]
    return g.add("BatchNormalization", inputs, name, epsilon=BN_EPSILON)


def activation(g: GraphBuilder, x: str, name: str, kind: Activation) -> str:
    """Append Relu, or ReLU6 as Clip(0, 6) with shared constant bounds."""
    if kind == "relu":
        return g.add("Relu", [x], name)
    low = g.constant("relu6.min", np.array(0.0, dtype=np.float32))
    high = g.constant("relu6.max", np.array(6.0, dtype=np.float32))
    return g.add("Clip", [x, low, high], name)


def conv_bn(
    g: GraphBuilder,
    x: str,
    conv_name: str,
    bn_name: str,
    cin: int,
    cout: int,
    kernel: int,
    *,
    stride: int = 1,
    group: int = 1,
    linear: bool = False,
) -> str:
    """Append a bias-free Conv and a BatchNormalization (`linear`: no activation follows)."""
    x = conv(g, x, conv_name, cin, cout, kernel, stride=stride, group=group)
    return batch_norm(g, x, bn_name, cout, linear)


def conv_bn_act(
    g: GraphBuilder,
    x: str,
    prefix: str,
    cin: int,
    cout: int,
    kernel: int,
    *,
    stride: int = 1,
    group: int = 1,
    act: Activation = "relu",
) -> str:
    """Append torch's `Sequential(Conv2d, BatchNorm2d, act)`, named `prefix.0/.1/.2`."""
    x = conv_bn(g, x, f"{prefix}.0", f"{prefix}.1", cin, cout, kernel, stride=stride, group=group)
    return activation(g, x, f"{prefix}.2", act)


def max_pool(g: GraphBuilder, x: str, name: str, kernel: int, stride: int, pad: int = 0) -> str:
    """Append a square MaxPool (floor mode)."""
    return g.add("MaxPool", [x], name, **_window(kernel, stride, pad))


def gemm(g: GraphBuilder, x: str, name: str, cin: int, cout: int, output: str | None = None) -> str:
    """Append torch's Linear as Gemm(transB=1) with He-normal weight and small bias."""
    weight = g.he_normal(f"{name}.weight", (cout, cin), cin)
    bias = g.normal(f"{name}.bias", (cout,), 0.01)
    return g.add("Gemm", [x, weight, bias], name, output=output, transB=1)


def classifier_head(g: GraphBuilder, x: str, fc_name: str, cin: int, num_classes: int) -> str:
    """Append GlobalAveragePool, Flatten and the final Gemm producing tensor "output"."""
    x = g.add("GlobalAveragePool", [x], "avgpool")
    x = g.add("Flatten", [x], "flatten", axis=1)
    return gemm(g, x, fc_name, cin, num_classes, output="output")


def _residual_add(
    g: GraphBuilder, x: str, out: str, prefix: str, cin: int, cout: int, stride: int
) -> str:
    """Add the (downsampled if needed) shortcut `x` to the block output, then Relu."""
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = conv_bn(
            g, x, f"{prefix}.downsample.0", f"{prefix}.downsample.1", cin, cout, 1, stride=stride
        )
    out = g.add("Add", [out, shortcut], f"{prefix}.add")
    return g.add("Relu", [out], f"{prefix}.relu")


def _basic_block(g: GraphBuilder, x: str, prefix: str, cin: int, planes: int, stride: int) -> str:
    """ResNet BasicBlock: two 3x3 convs, stride on the first."""
    out = conv_bn(g, x, f"{prefix}.conv1", f"{prefix}.bn1", cin, planes, 3, stride=stride)
    out = g.add("Relu", [out], f"{prefix}.relu")
    out = conv_bn(g, out, f"{prefix}.conv2", f"{prefix}.bn2", planes, planes, 3, linear=True)
    return _residual_add(g, x, out, prefix, cin, planes, stride)


def _bottleneck(g: GraphBuilder, x: str, prefix: str, cin: int, planes: int, stride: int) -> str:
    """ResNet v1.5 Bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand x4."""
    out = conv_bn(g, x, f"{prefix}.conv1", f"{prefix}.bn1", cin, planes, 1)
    out = g.add("Relu", [out], f"{prefix}.relu")
    out = conv_bn(g, out, f"{prefix}.conv2", f"{prefix}.bn2", planes, planes, 3, stride=stride)
    out = g.add("Relu", [out], f"{prefix}.relu")
    out = conv_bn(g, out, f"{prefix}.conv3", f"{prefix}.bn3", planes, planes * 4, 1, linear=True)
    return _residual_add(g, x, out, prefix, cin, planes * 4, stride)


def _resnet(
    name: str,
    blocks_per_layer: tuple[int, int, int, int],
    bottleneck: bool,
    seed: int,
    batch: int,
    size: int,
    num_classes: int,
) -> onnx.ModelProto:
    """Build a torchvision ResNet from its block counts and block type."""
    g = GraphBuilder(seed)
    x = conv_bn(g, "input", "conv1", "bn1", 3, 64, 7, stride=2)
    x = g.add("Relu", [x], "relu")
    x = max_pool(g, x, "maxpool", 3, 2, pad=1)
    block, expansion = (_bottleneck, 4) if bottleneck else (_basic_block, 1)
    cin = 64
    for layer, blocks in enumerate(blocks_per_layer):
        planes = 64 * 2**layer
        for index in range(blocks):
            stride = 2 if layer > 0 and index == 0 else 1
            x = block(g, x, f"layer{layer + 1}.{index}", cin, planes, stride)
            cin = planes * expansion
    classifier_head(g, x, "fc", cin, num_classes)
    return g.model(name, [batch, 3, size, size], [batch, num_classes])


def resnet18(
    *, seed: int = 0, batch: int = 1, size: int = 224, num_classes: int = 1000
) -> onnx.ModelProto:
    """ResNet-18 (BasicBlocks 2-2-2-2), 11.7 M parameters."""
    return _resnet("resnet18", (2, 2, 2, 2), False, seed, batch, size, num_classes)


def resnet50(
    *, seed: int = 0, batch: int = 1, size: int = 224, num_classes: int = 1000
) -> onnx.ModelProto:
    """ResNet-50 v1.5 (Bottlenecks 3-4-6-3, stride on the 3x3 conv), 25.6 M parameters."""
    return _resnet("resnet50", (3, 4, 6, 3), True, seed, batch, size, num_classes)


# (expansion t, output channels c, repeats n, first stride s), as torchvision.
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _inverted_residual(
    g: GraphBuilder, x: str, prefix: str, cin: int, cout: int, stride: int, expansion: int
) -> str:
    """MobileNetV2 block: 1x1 expand (unless t=1), 3x3 depthwise, linear 1x1 project, skip."""
    hidden, layers = cin * expansion, f"{prefix}.conv"
    out, index = x, 0
    if expansion != 1:
        out = conv_bn_act(g, out, f"{layers}.0", cin, hidden, 1, act="relu6")
        index = 1
    depthwise = f"{layers}.{index}"
    out = conv_bn_act(
        g, out, depthwise, hidden, hidden, 3, stride=stride, group=hidden, act="relu6"
    )
    project, project_bn = f"{layers}.{index + 1}", f"{layers}.{index + 2}"
    out = conv_bn(g, out, project, project_bn, hidden, cout, 1, linear=True)
    if stride == 1 and cin == cout:
        out = g.add("Add", [x, out], f"{prefix}.add")
    return out


def mobilenet_v2(
    *, seed: int = 0, batch: int = 1, size: int = 224, num_classes: int = 1000
) -> onnx.ModelProto:
    """MobileNetV2 (width 1.0): inverted residuals with depthwise convs and ReLU6, 3.5 M params."""
    g = GraphBuilder(seed)
    x = conv_bn_act(g, "input", "features.0", 3, 32, 3, stride=2, act="relu6")
    cin, index = 32, 1
    for expansion, cout, repeats, first_stride in MOBILENET_V2_SETTINGS:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = _inverted_residual(g, x, f"features.{index}", cin, cout, stride, expansion)
            cin, index = cout, index + 1
    x = conv_bn_act(g, x, f"features.{index}", cin, 1280, 1, act="relu6")
    classifier_head(g, x, "classifier.1", 1280, num_classes)
    return g.model("mobilenet_v2", [batch, 3, size, size], [batch, num_classes])


class _ShuffleStage(NamedTuple):
    """A ShuffleNet stage's output channels and the names of its int64 initializers."""

    channels: int
    split: str
    grouped_shape: str
    flat_shape: str


def _halved(extent: int) -> int:
    """Output extent of a 3x3, stride-2, pad-1 window (conv or max pool)."""
    return (extent - 1) // 2 + 1


def _shuffle_unit(g: GraphBuilder, x: str, prefix: str, cin: int, stage: _ShuffleStage) -> str:
    """ShuffleNetV2 unit: split, or two branches, then concat and channel shuffle.

    The first unit of a stage, the one whose input width differs from the stage's, downsamples:
    both branches see the whole input, with stride 2 on their depthwise convs.
    """
    half = stage.channels // 2
    stride = 1 if cin == stage.channels else 2
    if stride == 1:
        left, right = g.split(x, stage.split, f"{prefix}.split")
        right_cin = half
    else:
        b1 = f"{prefix}.branch1"
        left = conv_bn(g, x, f"{b1}.0", f"{b1}.1", cin, cin, 3, stride=2, group=cin, linear=True)
        left = conv_bn(g, left, f"{b1}.2", f"{b1}.3", cin, half, 1)
        left = g.add("Relu", [left], f"{b1}.4")
        right, right_cin = x, cin
    b2 = f"{prefix}.branch2"
    right = conv_bn(g, right, f"{b2}.0", f"{b2}.1", right_cin, half, 1)
    right = g.add("Relu", [right], f"{b2}.2")
    depthwise = {"stride": stride, "group": half, "linear": True}
    right = conv_bn(g, right, f"{b2}.3", f"{b2}.4", half, half, 3, **depthwise)
    right = conv_bn(g, right, f"{b2}.5", f"{b2}.6", half, half, 1)
    right = g.add("Relu", [right], f"{b2}.7")
    out = g.add("Concat", [left, right], f"{prefix}.concat", axis=1)
    out = g.add("Reshape", [out, stage.grouped_shape], f"{prefix}.shuffle.reshape")
    out = g.add("Transpose", [out], f"{prefix}.shuffle.transpose", perm=[0, 2, 1, 3, 4])
    return g.add("Reshape", [out, stage.flat_shape], f"{prefix}.shuffle.flatten")


def shufflenet_v2(
    *, seed: int = 0, batch: int = 1, size: int = 224, num_classes: int = 1000
) -> onnx.ModelProto:
    """ShuffleNetV2 x1.0 (stages 116-232-464 with 4-8-4 units, conv5 1024), 2.3 M parameters."""
    g = GraphBuilder(seed)
    x = conv_bn_act(g, "input", "conv1", 3, 24, 3, stride=2)
    x = max_pool(g, x, "maxpool", 3, 2, pad=1)
    extent, cin = _halved(_halved(size)), 24
    for number, (repeats, cout) in enumerate(zip((4, 8, 4), (116, 232, 464), strict=True), 2):
        extent, half, name = _halved(extent), cout // 2, f"stage{number}"
        stage = _ShuffleStage(
            cout,
            g.int64(f"{name}.split", [half, half]),
            g.int64(f"{name}.shuffle_shape", [batch, 2, half, extent, extent]),
            g.int64(f"{name}.unshuffle_shape", [batch, cout, extent, extent]),
        )
        for index in range(repeats):
            x = _shuffle_unit(g, x, f"{name}.{index}", cin, stage)
            cin = cout
    x = conv_bn_act(g, x, "conv5", cin, 1024, 1)
    classifier_head(g, x, "fc", 1024, num_classes)
    return g.model("shufflenet_v2", [batch, 3, size, size], [batch, num_classes])


# Output channels of the 3x3 convs of each block, each block ending in a 2x2 max pool.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16(
    *, seed: int = 0, batch: int = 1, size: int = 224, num_classes: int = 1000
) -> onnx.ModelProto:
    """VGG-16 without BN; the first Gemm takes 512·(size/32)² features (138.4 M params at 224)."""
    if size < 32:
        raise ValueError(f"vgg16 needs size >= 32 to survive its five 2x2 max pools, got {size}")
    g = GraphBuilder(seed)
    x, cin, index = "input", 3, 0
    for block in VGG16_BLOCKS:
        for cout in block:
            x = conv(g, x, f"features.{index}", cin, cout, 3, bias=True)
            x = g.add("Relu", [x], f"features.{index + 1}")
            cin, index = cout, index + 2
        x = max_pool(g, x, f"features.{index}", 2, 2)
        index += 1
    x = g.add("Flatten", [x], "flatten", axis=1)
    x = gemm(g, x, "classifier.0", 512 * (size // 32) ** 2, 4096)
    x = g.add("Relu", [x], "classifier.1")
    x = g.add("Dropout", [x], "classifier.2")
    x = gemm(g, x, "classifier.3", 4096, 4096)
    x = g.add("Relu", [x], "classifier.4")
    x = g.add("Dropout", [x], "classifier.5")
    gemm(g, x, "classifier.6", 4096, num_classes, output="output")
    return g.model("vgg16", [batch, 3, size, size], [batch, num_classes])


# squeezenet1_1's features after the stem: "M" is a 3x3/2 ceil-mode max pool, a number the
# squeeze width of a Fire module (whose two expand convs are each 4x as wide).
SQUEEZENET1_1_FEATURES = ("M", 16, 16, "M", 32, 32, "M", 48, 48, 64, 64)


def _fire(g: GraphBuilder, x: str, prefix: str, cin: int, squeeze: int) -> str:
    """SqueezeNet Fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""
    expand = 4 * squeeze
    x = conv(g, x, f"{prefix}.squeeze", cin, squeeze, 1, bias=True)
    x = g.add("Relu", [x], f"{prefix}.squeeze_activation")
    branches = []
    for kernel in (1, 3):
        name = f"{prefix}.expand{kernel}x{kernel}"
        branch = conv(g, x, name, squeeze, expand, kernel, bias=True)
        branches.append(g.add("Relu", [branch], f"{name}_activation"))
    return g.add("Concat", branches, f"{prefix}.concat", axis=1)


def squeezenet1_1(
    *, seed: int = 0, batch: int = 1, size: int = 224, num_classes: int = 1000
) -> onnx.ModelProto:
    """SqueezeNet 1.1: Fire modules and a 1x1 conv classifier, 1.2 M parameters."""
    g = GraphBuilder(seed)
    x = conv(g, "input", "features.0", 3, 64, 3, stride=2, pad=0, bias=True)
    x, cin = g.add("Relu", [x], "features.1"), 64
    for index, layer in enumerate(SQUEEZENET1_1_FEATURES, 2):
        name = f"features.{index}"
        if layer == "M":
            x = g.add("MaxPool", [x], name, **_window(3, 2, 0), ceil_mode=1)
        else:
            x, cin = _fire(g, x, name, cin, layer), 8 * layer
    x = g.add("Dropout", [x], "classifier.0")
    x = conv(g, x, "classifier.1", 512, num_classes, 1, bias=True)
    x = g.add("Relu", [x], "classifier.2")
    x = g.add("GlobalAveragePool", [x], "classifier.3")
    g.add("Flatten", [x], "flatten", output="output", axis=1)
    return g.model("squeezenet1_1", [batch, 3, size, size], [batch, num_classes])


MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "shufflenet_v2": shufflenet_v2,
    "vgg16": vgg16,
    "squeezenet1_1": squeezenet1_1,
}


def build(name: str, **kwargs: int) -> onnx.ModelProto:
    """Build the model called `name` (a key of `MODELS`) with the builder's keyword arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
