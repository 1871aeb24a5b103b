"""A chain of two NCHWc convs (the first's result feeding only the second), compiled natively
with layer fusion on (tests of `lowering.algorithms.fused`, benchmarks).

`chain_module` builds the graph-form module: inputs "x" (NCHWc) and optionally "r" (the second
conv's residual), output "y"; `expected_chain` is the numpy oracle in NCHW.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Block

from convir import reference
from convir.compiler import compile_lowered, lower, lower_to_llvm_ir
from convir.dialects import conv, make_context
from convir.dialects.shapes import f32_tensor
from convir.runtime import CompiledModel
from convir.target import Target
from lowering.algorithms.common import Schedule
from passes.graph_rewriting import conv_with, new_constant
from passes.plan_memory import PlanMemoryPass
from tests.unit.lowering.algorithms.nchwc_harness import main_module


@dataclass
class ChainConv:
    """One conv of a chain: weight [O, C/G, KH, KW], optional bias, epilogue, attributes."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    activation: str | None = None
    attributes: dict = field(default_factory=dict)  # strides, pads, dilations, group


@dataclass
class ChainCase:
    """x [N, C, H, W] -> first -> second (+ residual "r" when `residual`)."""

    x: np.ndarray
    first: ChainConv
    second: ChainConv
    residual: bool = False

    def intermediate_nchw(self) -> np.ndarray:
        return _apply(self.x, self.first, None)

    def output_shape(self) -> tuple[int, ...]:
        return _apply(self.intermediate_nchw(), self.second, None).shape


def _apply(x: np.ndarray, layer: ChainConv, residual: np.ndarray | None) -> np.ndarray:
    y = reference.conv2d(x, layer.weight, layer.bias, **layer.attributes)
    if residual is not None:
        y = y + residual
    if layer.activation is not None:
        y = reference.activation(y, layer.activation, 0.0, 0.0)
    return y


def expected_chain(case: ChainCase, r: np.ndarray | None) -> np.ndarray:
    """The chain's output in NCHW, computed conv by conv with numpy."""
    return _apply(case.intermediate_nchw(), case.second, r)


def _blocked(shape: tuple[int, ...], block: int):
    n, c, h, w = shape
    return f32_tensor((n, -(-c // block), h, w, block))


def chain_module(ctx: Context, case: ChainCase, block: int) -> ModuleOp:
    """The graph-form module of `case` on NCHWc at `block` (module doc)."""
    x_type = _blocked(case.x.shape, block)
    mid_type = _blocked(case.intermediate_nchw().shape, block)
    y_type = _blocked(case.output_shape(), block)
    arg_types = [x_type] + ([y_type] if case.residual else [])
    body = Block(arg_types=arg_types)
    value = body.args[0]
    for i, (layer, out_type) in enumerate(((case.first, mid_type), (case.second, y_type))):
        weight = new_constant(ctx, f"w{i}", layer.weight)
        bias = new_constant(ctx, f"b{i}", layer.bias) if layer.bias is not None else None
        body.add_ops([weight] + ([bias] if bias else []))
        attributes = layer.attributes
        plain = conv.Conv2DOp(
            value,
            weight.output,
            bias.output if bias else None,
            strides=attributes.get("strides", (1, 1)),
            pads=attributes.get("pads", (0, 0, 0, 0)),
            dilations=attributes.get("dilations", (1, 1)),
            group=attributes.get("group", 1),
            output_shape=out_type.get_shape(),
        )
        properties = {}
        if layer.activation is not None:
            properties["activation"] = StringAttr(layer.activation)
        residual = body.args[1] if case.residual and i == 1 else None
        op = conv_with(plain, residual=residual, properties=properties)
        plain.drop_all_references()  # else it counts as a second use of its input
        body.add_op(op)
        value = op.output
    body.add_op(func.ReturnOp(value))
    return main_module(body, arg_types, y_type)


def compile_chain(
    case: ChainCase,
    block: int,
    fusion: str = "all",
    *,
    schedule: Schedule | None = None,
    target: Target | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[CompiledModel, int]:
    """The chain compiled with layer fusion `fusion` (every `conv.fused` pinned to `schedule`
    when given); and how many `conv.fused` the planned module has."""
    ctx = make_context()
    module = chain_module(ctx, case, block)
    planned = lower(module, ctx=ctx, target=target, stop="planned", block=block, fusion=fusion)
    fused = [op for op in planned.module.walk() if isinstance(op, conv.FusedOp)]
    if schedule is not None and fused:
        for op in fused:
            op.schedule = schedule.to_attr()
        PlanMemoryPass().apply(ctx, planned.module)  # the workspace follows the schedule
    return compile_lowered(lower_to_llvm_ir(planned), cache_dir=cache_dir), len(fused)
