"""One NCHWc conv with a pinned algorithm and schedule, compiled natively (tests, benchmarks).

The graph-form module takes the NCHWc input (and residual) directly and returns the NCHWc output,
so nothing but the conv kernel runs: `compile_nchwc_conv(...)` gives a `CompiledModel` whose
inputs are "x" (and "r") and whose output is "y". `expected_nchwc` is the numpy oracle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FloatAttr, ModuleOp, StringAttr, f32
from xdsl.ir import Block, Region

from convir import reference
from convir.compiler import compile_lowered, lower
from convir.dialects import conv, make_context
from convir.dialects.shapes import f32_tensor
from convir.runtime import CompiledModel
from convir.target import Target
from lowering.algorithms.common import Schedule
from passes.graph_rewriting import conv_with, new_constant
from tests.onnx_cases import rand


@dataclass
class ConvCase:
    """A conv with its data: NCHW x [N, C, H, W], weight [O, C/G, KH, KW], optional bias."""

    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None = None
    residual: bool = False
    activation: str | None = None
    attributes: dict = field(default_factory=dict)  # strides, pads, dilations, group
    #: The activation's parameters (leaky_relu's slope, clip's bounds, hard_sigmoid's line).
    alpha: float | None = None
    beta: float | None = None

    def output_nchw(self) -> tuple[int, ...]:
        return reference.conv2d(self.x, self.weight, self.bias, **self.attributes).shape


def _conv_module(
    ctx: Context, case: ConvCase, block: int, algorithm: str | None, schedule: Schedule | None
) -> ModuleOp:
    n, c, h, w = case.x.shape
    out = case.output_nchw()
    x_type = f32_tensor((n, -(-c // block), h, w, block))
    y_type = f32_tensor((out[0], -(-out[1] // block), out[2], out[3], block))
    arg_types = [x_type] + ([y_type] if case.residual else [])
    body = Block(arg_types=arg_types)
    weight = new_constant(ctx, "w", case.weight)
    bias = new_constant(ctx, "b", case.bias) if case.bias is not None else None
    body.add_ops([weight] + ([bias] if bias else []))
    attributes = dict(case.attributes)
    plain = conv.Conv2DOp(
        body.args[0],
        weight.output,
        bias.output if bias else None,
        strides=attributes.get("strides", (1, 1)),
        pads=attributes.get("pads", (0, 0, 0, 0)),
        dilations=attributes.get("dilations", (1, 1)),
        group=attributes.get("group", 1),
        output_shape=y_type.get_shape(),
    )
    properties = {} if algorithm is None else {"algorithm": StringAttr(algorithm)}
    if schedule is not None:
        properties["schedule"] = schedule.to_attr()
    if case.activation is not None:
        properties["activation"] = StringAttr(case.activation)
    for name, value in (("alpha", case.alpha), ("beta", case.beta)):
        if value is not None:
            properties[name] = FloatAttr(value, f32)
    pinned = conv_with(
        plain, residual=body.args[1] if case.residual else None, properties=properties
    )
    body.add_op(pinned)
    body.add_op(func.ReturnOp(pinned.output))
    return main_module(body, arg_types, y_type)


def main_module(body: Block, arg_types: list, y_type) -> ModuleOp:
    """`body` (ending in its func.return) as `@main(x[, r]) -> y`, verified: the graph form the
    compile pipeline takes, with the ONNX names a `CompiledModel` is called by."""
    names = ["x", "r"][: len(arg_types)]
    main = func.FuncOp(
        "main",
        (arg_types, [y_type]),
        Region(body),
        arg_attrs=ArrayAttr([DictionaryAttr({"onnx.name": StringAttr(n)}) for n in names]),
        res_attrs=ArrayAttr([DictionaryAttr({"onnx.name": StringAttr("y")})]),
    )
    module = ModuleOp([main])
    module.verify()
    return module


def compile_nchwc_conv(
    case: ConvCase,
    block: int,
    algorithm: str,
    schedule: Schedule | None = None,
    *,
    target: Target | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> CompiledModel:
    """The conv of `case` on NCHWc at `block`, pinned to `algorithm` (and `schedule`)."""

    ctx = make_context()
    module = _conv_module(ctx, case, block, algorithm, schedule)
    lowered = lower(module, ctx=ctx, target=target, stop="llvm-ir", block=block)
    return compile_lowered(lowered, cache_dir=cache_dir)


def expected_nchwc(case: ConvCase, r_nchw: np.ndarray | None, block: int) -> np.ndarray:
    """The reference output (bias, residual, activation) packed to NCHWc at `block`."""
    y = reference.conv2d(case.x, case.weight, case.bias, **case.attributes)
    if r_nchw is not None:
        y = y + r_nchw
    if case.activation is not None:
        y = reference.activation(y, case.activation, case.alpha or 0.0, case.beta or 0.0)
    return reference.pack(y, block)


def logical_lanes(y: np.ndarray, channels: int) -> np.ndarray:
    """An NCHWc tensor back to NCHW (padded lanes dropped: their values are unspecified)."""
    return reference.unpack(y, channels)


#: Activations the tests fuse (convir.reference names).
ACTIVATIONS = [None, "relu", "sigmoid", "hard_swish"]

#: Every activation kind a conv's epilogue takes, with its parameters (alpha, beta), except
#: those undefined on part of the reals (sqrt, reciprocal, pow), whose NaN and Inf outputs no
#: tolerance can compare.
EPILOGUE_ACTIVATIONS = [
    (None, None, None),
    ("relu", None, None),
    ("leaky_relu", 0.1, None),
    ("clip", 0.0, 6.0),
    ("sigmoid", None, None),
    ("hard_sigmoid", 0.2, 0.5),
    ("hard_swish", None, None),
    ("tanh", None, None),
    ("identity", None, None),
    ("erf", None, None),
    ("gelu", None, None),
    ("gelu_tanh", None, None),
    ("mish", None, None),
    ("softplus", None, None),
]


def check_case(case: ConvCase, block: int, algorithm: str, schedule, cache_dir, seed: int):
    """Compile `case` pinned to `algorithm`; its logical output lanes match the reference."""
    compiled = compile_nchwc_conv(case, block, algorithm, schedule, cache_dir=cache_dir)
    out_channels = case.weight.shape[0]
    r = rand(*case.output_nchw(), seed=seed + 3) if case.residual else None
    feed = {"x": reference.pack(case.x, block)}
    if r is not None:
        feed["r"] = reference.pack(r, block)
    expected = logical_lanes(expected_nchwc(case, r, block), out_channels)
    for threads in (1, 2):
        compiled.threads = threads
        y = logical_lanes(compiled.run(feed)["y"], out_channels)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    return compiled


def scheduled_conv(case: ConvCase) -> conv.Conv2DOp:
    """The conv of `case` on NCHWc input and output at block 16, without algorithm or schedule
    (also when it has fewer than 16 input channels, which conv-convert-layout leaves NCHW)."""
    return next(
        op
        for op in _conv_module(make_context(), case, 16, None, None).walk()
        if isinstance(op, conv.Conv2DOp)
    )
