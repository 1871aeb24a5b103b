"""`convert-cf-to-llvm`: unstructured control flow to `llvm.br` and `llvm.cond_br`."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import cf, func, llvm
from xdsl.dialects.builtin import ModuleOp, VectorType
from xdsl.ir import Operation
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
)

from lowering.to_llvm.conversion import (
    DialectConversion,
    llvm_value,
    unsupported,
    walk_ops,
)
from lowering.to_llvm.func_to_llvm import convert_block_arguments

PASS_NAME = "convert-cf-to-llvm"


class BranchLowering(RewritePattern):
    """`cf.br`/`cf.cond_br` to `llvm.br`/`llvm.cond_br` with operands in their LLVM types."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, cf.BranchOp):
            args = [llvm_value(arg, rewriter) for arg in op.arguments]
            rewriter.replace(op, llvm.BrOp(op.successor, *args), [])
        elif isinstance(op, cf.ConditionalBranchOp):
            cond = llvm_value(op.cond, rewriter)
            if isinstance(cond.type, VectorType):
                raise unsupported(PASS_NAME, op, "the condition is a vector comparison")
            then_args = [llvm_value(arg, rewriter) for arg in op.then_arguments]
            else_args = [llvm_value(arg, rewriter) for arg in op.else_arguments]
            branch = llvm.CondBrOp(cond, op.then_block, then_args, op.else_block, else_args)
            rewriter.replace(op, branch, [])


@dataclass(frozen=True)
class ConvertCfToLLVMPass(DialectConversion):
    """Lower cf branches to the llvm dialect.

    Expects `cf.br` and `cf.cond_br` (as `convert-scf-to-cf` emits them) inside `func.func` or
    `llvm.func`. Produces `llvm.br`/`llvm.cond_br`; the arguments of every non-entry block get
    their LLVM types (`index` as `i64`, memrefs as `!llvm.ptr`), with casts handing the old
    types to not-yet-converted users. Entry blocks belong to the function signature and are
    left to `convert-func-to-llvm`. Fails naming the op on other cf ops (`cf.switch`,
    `cf.assert`).
    """

    name = "convert-cf-to-llvm"

    dialect = "cf"

    def patterns(self) -> list[RewritePattern]:
        return [BranchLowering()]

    def prepare(self, module: ModuleOp) -> None:
        for function in walk_ops(module):
            if isinstance(function, func.FuncOp | llvm.FuncOp):
                for block in list(function.body.blocks)[1:]:
                    convert_block_arguments(block)
