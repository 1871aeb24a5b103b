"""The conv layers `convir bench layers` measures, read off the built-in models themselves.

A layer table written by hand drifts from the models it claims to describe; this one is derived:
each model of `convir.models` (224×224, batch 1) is imported and run through convir's own graph
passes up to epilogue fusion (stage "fused" of `convir.compiler.lower`), so every `conv.conv2d`
found there is a conv exactly as the compiled model runs it: BatchNorm folded into its bias, its
activation (ReLU, ReLU6 as clip [0, 6]) fused. Identical convs of one model are listed once,
named after their first occurrence (torch's names, e.g. `resnet50.layer1.0.conv1`), with how
many times the model runs them (`count`).

`--models` also takes paths of ONNX files (ending in `.onnx`): their convs are listed the same
way, at the shapes the file declares, named `<file stem>.<value name>`.

A residual add that the model fuses into a conv (ResNet's last conv of a block, MobileNetV2's
projection) is left out of the workload: onnxruntime cannot fuse it into a lone conv (the other
addend would arrive in NCHW), and timing it on one side only would be unfair. It costs one load
and one add per output element on top of the conv.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from convir.bench import BenchError
from convir.dialects import conv
from convir.dialects.shapes import tensor_shape

#: The models `convir bench layers` covers by default (DESIGN's usual suspects).
DEFAULT_LAYER_MODELS = ("resnet50", "resnet18", "vgg16", "mobilenet_v2")
IMAGE_SIZE = 224


@dataclass(frozen=True)
class ConvLayer:
    """One distinct conv of a model, NCHW, batch 1, with its fused epilogue."""

    model: str
    name: str
    count: int
    channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    group: int
    bias: bool
    activation: str | None
    alpha: float | None
    beta: float | None

    @property
    def output_hw(self) -> tuple[int, int]:
        """Output height and width."""
        sizes = []
        for axis, size in enumerate((self.height, self.width)):
            span = size + self.pads[axis] + self.pads[axis + 2]
            span -= self.dilations[axis] * (self.kernel[axis] - 1) + 1
            sizes.append(span // self.strides[axis] + 1)
        return sizes[0], sizes[1]

    @property
    def flop(self) -> int:
        """2 × multiply-adds of the convolution (bias and activation not counted)."""
        oh, ow = self.output_hw
        macs = self.out_channels * oh * ow * (self.channels // self.group) * math.prod(self.kernel)
        return 2 * macs

    @property
    def kind(self) -> str:
        """ "1x1", "3x3", "dw3x3" (depthwise), ... : the groups the summary averages over."""
        size = f"{self.kernel[0]}x{self.kernel[1]}"
        depthwise = self.group > 1 and self.group == self.channels == self.out_channels
        return f"dw{size}" if depthwise else size

    @property
    def shape(self) -> str:
        """A compact description: `64x56x56->256 k1x1 s1 p0`, `g32` when grouped."""
        text = (
            f"{self.channels}x{self.height}x{self.width}->{self.out_channels} "
            f"k{self.kernel[0]}x{self.kernel[1]} s{self.strides[0]} p{self.pads[0]}"
        )
        return text + (f" g{self.group}" if self.group > 1 else "")

    def to_json(self) -> dict[str, object]:
        """The layer as plain data (with its output size, flop and kind)."""
        data = asdict(self)
        data.update(output_hw=list(self.output_hw), flop=self.flop, kind=self.kind)
        return data


def model_layers(model: str) -> list[ConvLayer]:
    """The distinct convs of `model` as its compiled form runs them (module doc): a built-in
    model, or an ONNX file named by its path (ending in `.onnx`, at the shapes it declares;
    its layers are named after the file's stem)."""
    from convir.bench.models import is_model_file, model_label
    from convir.compiler import lower
    from convir.models import MODELS, build

    if is_model_file(model):
        try:
            fused = lower(model, stop="fused").module
        except (OSError, ValueError) as error:
            raise BenchError(f"{model}: cannot import the model: {error}") from None
        model = model_label(model)
    elif model not in MODELS:
        raise BenchError(
            f"unknown model '{model}'; built-in models: {', '.join(MODELS)}, or an .onnx path"
        )
    else:
        fused = lower(build(model, size=IMAGE_SIZE), stop="fused").module
    layers: dict[tuple, ConvLayer] = {}
    counts: dict[tuple, int] = {}
    for op in fused.walk():
        if not isinstance(op, conv.Conv2DOp):
            continue
        layer = _layer_of(model, op)
        key = _key(layer)
        layers.setdefault(key, layer)
        counts[key] = counts.get(key, 0) + 1
    return [_with_count(layer, counts[key]) for key, layer in layers.items()]


def _layer_of(model: str, op: conv.Conv2DOp) -> ConvLayer:
    """The ConvLayer of a fused NCHW `conv.conv2d`."""
    _, c, h, w = tensor_shape(op.input)
    o, _, kh, kw = tensor_shape(op.weight)

    def ints(attr) -> tuple[int, ...]:
        return tuple(int(v) for v in attr.get_values())

    def number(attr) -> float | None:
        return None if attr is None else float(attr.value.data)

    return ConvLayer(
        model=model,
        name=f"{model}.{op.output.name_hint or 'conv'}",
        count=1,
        channels=c,
        height=h,
        width=w,
        out_channels=o,
        kernel=(kh, kw),
        strides=ints(op.strides),
        pads=ints(op.pads),
        dilations=ints(op.dilations),
        group=op.group.value.data,
        bias=op.bias is not None,
        activation=None if op.activation is None else op.activation.data,
        alpha=number(op.alpha),
        beta=number(op.beta),
    )


def _key(layer: ConvLayer) -> tuple:
    fields = asdict(layer)
    return tuple(value for name, value in fields.items() if name not in ("name", "count"))


def _with_count(layer: ConvLayer, count: int) -> ConvLayer:
    return ConvLayer(**{**asdict(layer), "count": count})


def select_layers(models: Sequence[str], substring: str | None = None) -> list[ConvLayer]:
    """The distinct layers of `models` whose name contains `substring` (all if None)."""
    chosen = [
        layer
        for model in models
        for layer in model_layers(model)
        if substring is None or substring in layer.name
    ]
    if not chosen:
        raise BenchError(
            f"--layers '{substring}' matches no layer of {', '.join(models)} "
            f"(names look like '{models[0]}.<torch name>', e.g. 'layer1.0.conv1', 'features.3')"
        )
    return chosen
