"""`conv-fold-batchnorm`: remove every `conv.batchnorm` whose parameters are constants.

Expects graph-form IR (run `conv-fold-constants` first so that parameters computed from
constants are constants). With s = scale / sqrt(var + epsilon), inference batch normalisation is
the per-channel affine map x * s + (bias - mean * s), and each such batchnorm becomes either
- part of the conv feeding it, when that conv's result has no other use, its weight (and bias, if
  any) are constants and it has no `activation` and no `residual` yet: the conv gets the weight
  w * s[o] and the bias (b - mean) * s + bias_bn (b = 0 without a bias), as new constants; or
- a `conv.binary mul` by s and a `conv.binary add` of bias - mean * s, both constants of shape
  [C, 1, ..., 1] so that broadcasting applies them per channel (axis 1).
Coefficients are computed in float64 and stored as float32. A batchnorm with a parameter that is
not a constant (or whose blob was elided) is left alone. The function computes the same values;
every other attribute of a folded conv is kept, and constants left unused are erased.

`conv_with`, which copies a conv with other operands or properties, is shared with
`conv-fuse-epilogue`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from passes.graph_rewriting import constant_value, conv_with, erase_dead_constants, new_constant


def batchnorm_coefficients(
    op: conv.BatchNormOp, ctx: Context
) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, shift) in float64 with batchnorm(x) = x * s + shift along axis 1, or None when a
    parameter is not a constant."""
    params = [constant_value(ctx, value) for value in (op.scale, op.bias, op.mean, op.var)]
    if any(param is None for param in params):
        return None
    scale, bias, mean, var = (np.asarray(param, dtype=np.float64) for param in params)
    s = scale / np.sqrt(var + float(op.epsilon.value.data))
    return s, bias - mean * s


def fold_batchnorm_into_conv(op: conv.BatchNormOp, ctx: Context, rewriter: PatternRewriter) -> bool:
    """Fold `op` into the conv producing its input if that is legal (see the module docstring).

    Returns whether it folded; when it did not, the IR is unchanged.
    """
    producer = op.input.owner
    if not (
        isinstance(producer, conv.Conv2DOp)
        and producer.output.has_one_use()
        and producer.activation is None
        and producer.residual is None
        and len(tensor_shape(producer.output)) == 4  # NCHW: axis 1 is the weight's axis 0
    ):
        return False
    coefficients = batchnorm_coefficients(op, ctx)
    weight = constant_value(ctx, producer.weight)
    bias = constant_value(ctx, producer.bias)
    if coefficients is None or weight is None or (producer.bias is not None and bias is None):
        return False
    s, shift = coefficients
    conv_bias = np.zeros_like(s) if bias is None else np.asarray(bias, dtype=np.float64)
    name = producer.output.name_hint or "conv"
    new_weight = new_constant(ctx, f"{name}.weight", weight * s[:, None, None, None])
    new_bias = new_constant(ctx, f"{name}.bias", conv_bias * s + shift)
    folded = conv_with(producer, weight=new_weight.output, bias=new_bias.output)
    dead = [producer.weight, producer.bias, op.scale, op.bias, op.mean, op.var]
    rewriter.insert([new_weight, new_bias, folded], InsertPoint.before(producer))
    rewriter.replace_all_uses_with(op.output, folded.output)
    rewriter.erase(op)
    rewriter.erase(producer)
    erase_dead_constants(dead, rewriter)
    return True


def batchnorm_to_mul_add(op: conv.BatchNormOp, ctx: Context, rewriter: PatternRewriter) -> bool:
    """Replace `op` by a per-channel `conv.binary` mul and add if its parameters are constants.

    Returns whether it did; when it did not, the IR is unchanged.
    """
    coefficients = batchnorm_coefficients(op, ctx)
    if coefficients is None:
        return False
    s, shift = coefficients
    input_shape = tensor_shape(op.input)
    per_channel = (input_shape[1],) + (1,) * (len(input_shape) - 2)
    name = op.output.name_hint or "batchnorm"
    scale = new_constant(ctx, f"{name}.scale", s.reshape(per_channel))
    offset = new_constant(ctx, f"{name}.shift", shift.reshape(per_channel))
    mul = conv.BinaryOp(op.input, scale.output, "mul")
    add = conv.BinaryOp(mul.output, offset.output, "add")
    dead = [op.scale, op.bias, op.mean, op.var]
    rewriter.replace(op, [scale, offset, mul, add])
    erase_dead_constants(dead, rewriter)
    return True


@dataclass(frozen=True)
class FoldBatchNorm(RewritePattern):
    """Fold a batchnorm into its conv, else turn it into a per-channel mul and add."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: conv.BatchNormOp, rewriter: PatternRewriter) -> None:
        if not fold_batchnorm_into_conv(op, self.ctx, rewriter):
            batchnorm_to_mul_add(op, self.ctx, rewriter)


def fold_batchnorms(module: ModuleOp, ctx: Context) -> None:
    """Remove every batchnorm of `module` with constant parameters (see the module docstring)."""
    PatternRewriteWalker(FoldBatchNorm(ctx)).rewrite_module(module)


@dataclass(frozen=True)
class FoldBatchNormPass(ModulePass):
    """Fold batchnorms into convs or per-channel mul/add (see module doc)."""

    name = "conv-fold-batchnorm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fold_batchnorms(op, ctx)
