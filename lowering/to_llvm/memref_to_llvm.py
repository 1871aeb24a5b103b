"""`convert-memref-to-llvm`: static-shaped memrefs to bare pointers and inbounds GEPs.

See `lowering.to_llvm.addressing` for the memref model: a memref is an `!llvm.ptr` to its first
element and every access is one `getelementptr inbounds` with the linearised index.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.dialects import func, llvm, memref
from xdsl.dialects.builtin import DYNAMIC_INDEX, IntegerAttr, MemRefType, i8, i64
from xdsl.ir import Block, Operation
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
)
from xdsl.rewriter import InsertPoint

from lowering.to_llvm.addressing import (
    element_pointer,
    element_type,
    offset_pointer,
    static_strides,
)
from lowering.to_llvm.conversion import (
    DialectConversion,
    llvm_value,
    replace_op,
    unsupported,
)

PASS_NAME = "convert-memref-to-llvm"
_DEFAULT_ALLOCA_ALIGNMENT = 32
"""Bytes; the alignment of a `vector<8xf32>`, so scratch buffers suit AVX2 loads and stores."""


class LoadStoreLowering(RewritePattern):
    """`memref.load`/`memref.store` to `llvm.load`/`llvm.store` through an inbounds GEP."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, memref.LoadOp):
            pointer = element_pointer(rewriter, op.memref, op.indices, PASS_NAME, op)
            assert isinstance(op.memref.type, MemRefType)
            load = rewriter.insert(llvm.LoadOp(pointer, element_type(op.memref.type)))
            replace_op(rewriter, op, [load.dereferenced_value])
        elif isinstance(op, memref.StoreOp):
            pointer = element_pointer(rewriter, op.memref, op.indices, PASS_NAME, op)
            rewriter.insert(llvm.StoreOp(llvm_value(op.value, rewriter), pointer))
            rewriter.erase(op)


class ViewLowering(RewritePattern):
    """`memref.view %buf[%bytes][]` to `getelementptr inbounds i8, %buf[%bytes]`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, memref.ViewOp):
            return
        if op.sizes:
            raise unsupported(PASS_NAME, op, f"{op.result.type} has a dynamic shape")
        static_strides(op.result.type, PASS_NAME, op)
        base = llvm_value(op.source, rewriter)
        pointer = offset_pointer(rewriter, base, i8, [op.byte_shift], [1])
        replace_op(rewriter, op, [pointer])


class SubviewLowering(RewritePattern):
    """`memref.subview` with static strides to a GEP to its first element; the result type
    keeps the strides the accesses use."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, memref.SubviewOp):
            return
        source_type = op.source.type
        source_strides = static_strides(source_type, PASS_NAME, op)
        static_strides(op.result.type, PASS_NAME, op)
        if op.strides or op.sizes:
            raise unsupported(PASS_NAME, op, "only static sizes and strides are lowered")
        assert isinstance(source_type, MemRefType)
        dynamic_offsets = iter(op.offsets)
        offsets = [
            next(dynamic_offsets) if offset == DYNAMIC_INDEX else offset
            for offset in op.static_offsets.get_values()
        ]
        base = llvm_value(op.source, rewriter)
        pointer = offset_pointer(rewriter, base, element_type(source_type), offsets, source_strides)
        replace_op(rewriter, op, [pointer])


class AllocaLowering(RewritePattern):
    """Static `memref.alloca` to an `llvm.alloca` in the entry block of its function (hoisted
    out of loops: a fresh alloca's contents are undefined, so reusing one buffer is sound)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, memref.AllocaOp):
            return
        memref_type = op.memref.type
        if op.dynamic_sizes or op.symbol_operands:
            raise unsupported(PASS_NAME, op, "only static allocas are lowered")
        static_strides(memref_type, PASS_NAME, op)
        assert isinstance(memref_type, MemRefType)
        alignment = (
            op.alignment.value.data if op.alignment is not None else _DEFAULT_ALLOCA_ALIGNMENT
        )
        entry = _entry_block(op)
        if entry is None:
            raise unsupported(PASS_NAME, op, "an alloca must sit inside a function")
        count = llvm.ConstantOp(IntegerAttr(prod(memref_type.get_shape()), i64), i64)
        alloca = llvm.AllocaOp(count, element_type(memref_type), alignment=alignment)
        rewriter.insert(count, InsertPoint.at_start(entry))
        rewriter.insert(alloca, InsertPoint.after(count))
        replace_op(rewriter, op, [alloca.res])


def _entry_block(op: Operation) -> Block | None:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, func.FuncOp | llvm.FuncOp):
        parent = parent.parent_op()
    if parent is None:
        return None
    return parent.body.blocks.first


@dataclass(frozen=True)
class ConvertMemRefToLLVMPass(DialectConversion):
    """Lower memref accesses and views to bare pointers.

    Expects static-shaped memrefs with identity or static strided layouts: `memref.load`,
    `memref.store`, `memref.view` (byte offset into a `memref<Nxi8>`, static result shape),
    static `memref.alloca`, and `memref.subview` with static sizes and strides. Produces
    `llvm.load`/`llvm.store` through one `getelementptr inbounds` each, GEPs for views and
    subviews, and `llvm.alloca` hoisted to the function's entry block; memref values become
    `!llvm.ptr` behind `unrealized_conversion_cast`s. Never emits ptrtoint/inttoptr. Function
    signatures are left to `convert-func-to-llvm`. Fails naming the op on any other memref op.
    """

    name = "convert-memref-to-llvm"

    dialect = "memref"

    def patterns(self) -> list[RewritePattern]:
        return [LoadStoreLowering(), ViewLowering(), SubviewLowering(), AllocaLowering()]
