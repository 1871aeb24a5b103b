"""The conv workloads of a model: what the tuner measures and the database is keyed by.

A `Workload` is one conv as a compiled model runs it after layout conversion: batch, channels,
input size, output channels, kernel, strides, pads, dilations, group, the NCHWc block (and
whether the conv reads an NCHW image, as a few-channel stem does), and its fused epilogue kind
(bias, activation with its parameters). Its `key` is a readable string of all of that, stable
across runs and models, so identical convs of one model, or of two models, are tuned once. The
thread count is not part of it: the database keys records by (target, threads, workload key,
convir version).

A fused residual add is left out of the workload (a lone conv measured by `convir.bench.
conv_harness` has no second input): it adds one load and one add per output element to every
candidate alike, which does not change their ranking.

`workload_of(op)` reads the workload of a `conv.conv2d` on NCHWc tensors (None for a conv that
is still NCHW, which no tuned record covers); `model_workloads(model)` lists the distinct ones of
a model with the convs that share each.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import onnx

from convir.bench.workloads import ConvLayer
from convir.dialects import conv
from convir.target import Target


@dataclass(frozen=True)
class Workload:
    """One distinct conv (module doc). `nchw_input`: the conv reads an NCHW image and writes
    NCHWc (`passes.convert_layout.reads_nchw_input`)."""

    batch: int
    channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    group: int
    block: int
    nchw_input: bool
    bias: bool
    activation: str | None
    alpha: float | None
    beta: float | None

    @property
    def key(self) -> str:
        """A stable, readable key: `n1c64h56w56o64k3x3s1x1p1_1_1_1d1x1g1x8_b_relu`."""
        shape = (
            f"n{self.batch}c{self.channels}h{self.height}w{self.width}o{self.out_channels}"
            f"k{self.kernel[0]}x{self.kernel[1]}s{self.strides[0]}x{self.strides[1]}"
            f"p{'_'.join(map(str, self.pads))}d{self.dilations[0]}x{self.dilations[1]}"
            f"g{self.group}x{self.block}{'nchw' if self.nchw_input else ''}"
        )
        epilogue = ["b" if self.bias else "", self.activation or ""]
        if self.alpha is not None or self.beta is not None:
            epilogue.append(f"{self.alpha}_{self.beta}")
        return "_".join([shape, *(part for part in epilogue if part)])

    @property
    def flop(self) -> int:
        """2 × multiply-adds of the convolution."""
        return self.batch * self.layer("flop").flop

    def layer(self, name: str) -> ConvLayer:
        """The workload as a `convir.bench` layer (batch 1), which `conv_harness` compiles."""
        return ConvLayer(
            model="tune",
            name=name,
            count=1,
            channels=self.channels,
            height=self.height,
            width=self.width,
            out_channels=self.out_channels,
            kernel=self.kernel,
            strides=self.strides,
            pads=self.pads,
            dilations=self.dilations,
            group=self.group,
            bias=self.bias,
            activation=self.activation,
            alpha=self.alpha,
            beta=self.beta,
        )

    @property
    def shape(self) -> str:
        """A compact description: `64x56x56->256 k1x1 s1 p0`, `g32` when grouped."""
        return self.layer("shape").shape

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict) -> Workload:
        values = dict(data)
        for name in ("kernel", "strides", "pads", "dilations"):
            values[name] = tuple(values[name])
        return Workload(**values)


def workload_of(op: conv.Conv2DOp) -> Workload | None:
    """The workload of a conv on NCHWc output (module doc); None for an NCHW conv."""
    from lowering.algorithms.common import ConvGeometry, float_of

    g = ConvGeometry.of(op)
    if g.block is None:
        return None
    return Workload(
        batch=g.n,
        channels=g.c,
        height=g.h,
        width=g.w,
        out_channels=g.o,
        kernel=(g.kh, g.kw),
        strides=g.strides,
        pads=g.pads,
        dilations=g.dilations,
        group=g.group,
        block=g.block,
        nchw_input=g.nchw_input,
        bias=op.bias is not None,
        activation=None if op.activation is None else op.activation.data,
        alpha=None if op.alpha is None else float_of(op.alpha),
        beta=None if op.beta is None else float_of(op.beta),
    )


@dataclass
class ModelWorkload:
    """A distinct workload of a model, the convs (`convir.name`s) that run it, and one of those
    convs in the model's NCHWc IR (the search space is computed on it)."""

    workload: Workload
    convs: list[str]
    op: conv.Conv2DOp

    @property
    def count(self) -> int:
        return len(self.convs)


def load_model(model: str | os.PathLike[str] | onnx.ModelProto) -> onnx.ModelProto | str:
    """A built-in model's name (`convir.models.MODELS`, built at 224×224) or an ONNX file."""
    from convir.models import MODELS, build

    if isinstance(model, str) and model in MODELS:
        return build(model)
    return model  # type: ignore[return-value]


def model_workloads(
    model: str | os.PathLike[str] | onnx.ModelProto,
    target: Target,
    block: int | None = None,
) -> list[ModelWorkload]:
    """The distinct workloads of `model` (a built-in name, a path or a ModelProto) as it is
    compiled for `target`, in the order their first conv runs."""
    from convir.compiler import lower
    from convir.dialects.conv_names import conv_name, name_convs

    nchwc = lower(load_model(model), target=target, stop="nchwc", block=block).module
    found: dict[str, ModelWorkload] = {}
    for op in name_convs(nchwc):
        workload = workload_of(op)
        if workload is None:
            continue
        entry = found.setdefault(workload.key, ModelWorkload(workload, [], op))
        entry.convs.append(conv_name(op) or "?")
    return list(found.values())
