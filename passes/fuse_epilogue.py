"""`conv-fuse-epilogue`: move the elementwise ops that follow a conv into the conv's epilogue.

Expects graph-form IR, best after `conv-fold-constants` and `conv-fold-batchnorm`. A conv whose
result has exactly one use, and which has no `activation` yet, absorbs that use when it is
- a `conv.binary add` of the conv's result and a tensor of exactly the same type (either operand
  order), the conv having no `residual`: the tensor becomes the conv's `residual`;
- a `conv.binary add` of the conv's result and a constant that varies only along channels
  (shape [O, 1, 1], [1, O, 1, 1], [1], a scalar, ...), the conv having no `residual` and a
  constant bias or none: the constant is added into the bias (a new constant);
- a `conv.activation`: its kind, `alpha` and `beta` become the conv's.
The new conv is built where the absorbed op was, so every operand dominates it. Rewrites repeat
until none applies, so conv -> add -> relu (a ResNet block's end) becomes one conv with a
residual and a relu, matching the epilogue order (bias, residual, activation). The activation
is last, so `relu(conv) + x` is never turned into a residual.

`conv.activation` of kind `identity` computes nothing: it is removed wherever it is, rather than
stored on a conv, which also exposes the fusions behind it (conv -> identity -> relu).

Produces the same function with fewer ops; adds that broadcast a computed tensor, convs with
several users, and NCHWc convs (for the bias fold) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from passes.graph_rewriting import constant_value, conv_with, erase_dead_constants, new_constant


def epilogue_conv(value: SSAValue) -> conv.Conv2DOp | None:
    """The conv defining `value` if `value` has one use and the conv has no activation yet."""
    producer = value.owner
    if isinstance(producer, conv.Conv2DOp) and value.has_one_use() and producer.activation is None:
        return producer
    return None


def per_channel_values(array: np.ndarray, output_shape: tuple[int, ...]) -> np.ndarray | None:
    """`array` as a vector over the channels of an NCHW `output_shape` if adding it to such a
    tensor adds one value per channel, else None."""
    if len(output_shape) != 4 or array.ndim > 4:
        return None
    channels = output_shape[1]
    n, c, h, w = array.reshape((1,) * (4 - array.ndim) + array.shape).shape
    if (n, h, w) != (1, 1, 1) or c not in (1, channels):
        return None
    return np.broadcast_to(array.astype(np.float64).reshape(c), (channels,))


def fuse_add(op: conv.BinaryOp, ctx: Context, rewriter: PatternRewriter) -> bool:
    """Absorb the add `op` into the conv feeding it, as its residual or into its bias.

    Returns whether it did; when it did not, the IR is unchanged.
    """
    if op.kind.data != "add":
        return False
    for value, other in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
        producer = epilogue_conv(value)
        if producer is None or producer.residual is not None:
            continue
        if other.type == producer.output.type:
            fused = conv_with(producer, residual=other)
            rewriter.insert(fused, InsertPoint.before(op))
        else:
            fused = _conv_with_added_bias(producer, other, ctx, rewriter, InsertPoint.before(op))
            if fused is None:
                continue
        dead = [producer.bias, other]
        rewriter.replace_all_uses_with(op.output, fused.output)
        rewriter.erase(op)
        rewriter.erase(producer)
        erase_dead_constants(dead, rewriter)
        return True
    return False


def _conv_with_added_bias(
    producer: conv.Conv2DOp,
    addend: SSAValue,
    ctx: Context,
    rewriter: PatternRewriter,
    where: InsertPoint,
) -> conv.Conv2DOp | None:
    """Insert at `where` a copy of `producer` whose bias includes the per-channel constant
    `addend`, or return None (inserting nothing) when `addend` is not one."""
    array = constant_value(ctx, addend)
    addition = None if array is None else per_channel_values(array, tensor_shape(producer.output))
    bias = constant_value(ctx, producer.bias)
    if addition is None or (producer.bias is not None and bias is None):
        return None
    old_bias = 0.0 if bias is None else np.asarray(bias, dtype=np.float64)
    name = producer.output.name_hint or "conv"
    new_bias = new_constant(ctx, f"{name}.bias", old_bias + addition)
    fused = conv_with(producer, bias=new_bias.output)
    rewriter.insert([new_bias, fused], where)
    return fused


def fuse_activation(op: conv.ActivationOp, rewriter: PatternRewriter) -> bool:
    """Make `op` the activation of the conv feeding it, or remove it if it is an identity.

    Returns whether it did; when it did not, the IR is unchanged.
    """
    if op.kind.data == "identity":
        rewriter.replace_all_uses_with(op.output, op.input)
        rewriter.erase(op)
        return True
    producer = epilogue_conv(op.input)
    if producer is None:
        return False
    epilogue: dict[str, Attribute] = {"activation": op.kind}
    if op.alpha is not None:
        epilogue["alpha"] = op.alpha
    if op.beta is not None:
        epilogue["beta"] = op.beta
    fused = conv_with(producer, properties=epilogue)
    rewriter.insert(fused, InsertPoint.before(producer))
    rewriter.replace_all_uses_with(op.output, fused.output)
    rewriter.erase(op)
    rewriter.erase(producer)
    return True


@dataclass(frozen=True)
class FuseAdd(RewritePattern):
    """`fuse_add` as a rewrite pattern."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: conv.BinaryOp, rewriter: PatternRewriter) -> None:
        fuse_add(op, self.ctx, rewriter)


@dataclass(frozen=True)
class FuseActivation(RewritePattern):
    """`fuse_activation` as a rewrite pattern."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: conv.ActivationOp, rewriter: PatternRewriter) -> None:
        fuse_activation(op, rewriter)


def fuse_epilogues(module: ModuleOp, ctx: Context) -> None:
    """Fuse adds and activations into the convs of `module` (see the module docstring)."""
    patterns = GreedyRewritePatternApplier([FuseAdd(ctx), FuseActivation()])
    PatternRewriteWalker(patterns).rewrite_module(module)


@dataclass(frozen=True)
class FuseEpiloguePass(ModulePass):
    """Fuse residual adds, per-channel constant adds and activations into convs (see module doc)."""

    name = "conv-fuse-epilogue"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_epilogues(op, ctx)
