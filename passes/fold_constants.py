"""`conv-fold-constants`: evaluate at compile time every conv op whose operands are all constants.

Expects graph-form IR. Every conv-dialect op other than `conv.constant` whose operands are all
`conv.constant` results (with their data at hand) is evaluated with `convir.reference.evaluate`
and replaced by a `conv.constant dense_resource<...>` whose blob goes into the context's resource
store under a fresh handle named after the op's result (its SSA name, else the op's name). Folding
repeats until nothing more folds, so chains of constant ops collapse to one constant; constants
left without users by a fold are erased. Produces the same function with fewer ops; ops of other
dialects, ops with any non-constant operand, ops without a numpy reference, and constants whose
blobs were elided from the input are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from convir.reference import evaluate
from passes.graph_rewriting import constant_value, erase_dead_constants, new_constant


def fold_constant_op(op: Operation, ctx: Context, rewriter: PatternRewriter) -> bool:
    """Replace `op` by the constant it computes if all its operands are constants.

    Returns whether `op` was folded; when it was not, the IR is unchanged.
    """
    foldable = (
        op.dialect_name() == "conv"
        and not isinstance(op, conv.ConstantOp)
        and len(op.operands) > 0
        and len(op.results) == 1
        and not op.regions
    )
    if not foldable:
        return False
    operands = list(op.operands)
    args = [arg for operand in operands if (arg := constant_value(ctx, operand)) is not None]
    if len(args) != len(operands):
        return False
    try:
        array = evaluate(op, args)
    except ValueError:  # no numpy reference for this op
        return False
    result = op.results[0]
    if array.shape != tensor_shape(result):
        return False
    folded = new_constant(ctx, result.name_hint or op.name.removeprefix("conv."), array)
    if folded.output.type != result.type:  # `resource_attr` stores a rank-0 array as [1]
        return False
    rewriter.replace(op, folded)
    erase_dead_constants(operands, rewriter)
    return True


@dataclass(frozen=True)
class FoldConstantOp(RewritePattern):
    """`fold_constant_op` as a rewrite pattern over any op."""

    ctx: Context

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        fold_constant_op(op, self.ctx, rewriter)


def fold_constants(module: ModuleOp, ctx: Context) -> None:
    """Fold every constant conv op of `module` to a fixpoint (see the module docstring)."""
    PatternRewriteWalker(FoldConstantOp(ctx)).rewrite_module(module)


@dataclass(frozen=True)
class FoldConstantsPass(ModulePass):
    """Replace conv ops of constant operands by the constants they compute (see module doc)."""

    name = "conv-fold-constants"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fold_constants(op, ctx)
