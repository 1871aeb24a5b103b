"""`convert-func-to-llvm`: functions, calls and returns to the llvm dialect.

Memref arguments become `!llvm.ptr` arguments marked `llvm.noalias`. This relies on a convir
guarantee: the memref arguments of a function it emits never overlap one another (each is a
distinct tensor, weight block or scratch region). A function called with overlapping buffers
would be miscompiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import func, llvm
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    MemRefType,
    UnitAttr,
    UnrealizedConversionCastOp,
    i64,
)
from xdsl.dialects.llvm import LLVMType
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
)
from xdsl.rewriter import InsertPoint, Rewriter

from lowering.to_llvm.addressing import static_strides
from lowering.to_llvm.conversion import (
    DialectConversion,
    convert_type,
    is_scalar_or_vector,
    llvm_value,
    replace_op,
    unsupported,
)

PASS_NAME = "convert-func-to-llvm"


def convert_block_arguments(block: Block) -> None:
    """Give `block`'s arguments their LLVM types; a cast at the top of the block hands the old
    type to the users that still expect it."""
    for arg in block.args:
        target = convert_type(arg.type)
        if target == arg.type:
            continue
        old_type = arg.type
        new_arg = Rewriter.replace_value_with_new_type(arg, target)
        cast = UnrealizedConversionCastOp.get([new_arg], [old_type])
        Rewriter.insert_op(cast, InsertPoint.at_start(block))
        new_arg.replace_uses_with_if(cast.results[0], lambda use, c=cast: use.operation is not c)


def _result_type(types: Sequence[Attribute]) -> Attribute:
    """The LLVM return type of a function with results `types`: void, the one result, or a
    struct of several (as MLIR's func-to-llvm packs them)."""
    if not types:
        return llvm.LLVMVoidType()
    if len(types) == 1:
        return convert_type(types[0])
    return llvm.LLVMStructType.from_type_list([convert_type(t) for t in types])


def _argument_attributes(op: func.FuncOp) -> ArrayAttr[DictionaryAttr] | None:
    inputs = op.function_type.inputs.data
    given = op.arg_attrs.data if op.arg_attrs is not None else [DictionaryAttr({})] * len(inputs)
    merged = [
        DictionaryAttr({**attrs.data, "llvm.noalias": UnitAttr()})
        if isinstance(type_, MemRefType)
        else attrs
        for type_, attrs in zip(inputs, given, strict=True)
    ]
    if all(not attrs.data for attrs in merged):
        return None
    return ArrayAttr(merged)


def _check_signature(op: func.FuncOp) -> None:
    for type_ in (*op.function_type.inputs.data, *op.function_type.outputs.data):
        if isinstance(type_, MemRefType):
            static_strides(type_, PASS_NAME, op)
        elif not is_scalar_or_vector(type_) and not isinstance(type_, LLVMType):
            raise unsupported(PASS_NAME, op, f"@{op.sym_name.data} takes or returns {type_}")


class FuncLowering(RewritePattern):
    """`func.func` to `llvm.func`: converted signature, `noalias` memref pointers, private
    definitions with internal linkage, declarations external."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, func.FuncOp):
            return
        _check_signature(op)
        inputs = [convert_type(t) for t in op.function_type.inputs.data]
        output = _result_type(op.function_type.outputs.data)
        is_declaration = not op.body.blocks
        private = op.sym_visibility is not None and op.sym_visibility.data == "private"
        linkage = "internal" if private and not is_declaration else "external"
        arg_attrs = _argument_attributes(op)
        body = rewriter.move_region_contents_to_new_regions(op.body)
        if body.blocks:
            convert_block_arguments(body.blocks.first)
        new = llvm.FuncOp(
            op.sym_name,
            llvm.LLVMFunctionType(inputs, output),
            linkage=llvm.LinkageAttr(linkage),
            body=body,
            other_props={"arg_attrs": arg_attrs} if arg_attrs is not None else None,
        )
        rewriter.replace(op, new, [])


class CallLowering(RewritePattern):
    """`func.call` to `llvm.call` with converted operands and result."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, func.CallOp):
            return
        output = _result_type(op.result_types)
        args = [llvm_value(arg, rewriter) for arg in op.arguments]
        return_type = None if isinstance(output, llvm.LLVMVoidType) else output
        call = rewriter.insert(llvm.CallOp(op.callee, *args, return_type=return_type))
        if call.returned is None or len(op.results) == 1:
            replace_op(rewriter, op, [call.returned] if call.returned is not None else [])
            return
        assert isinstance(output, llvm.LLVMStructType)
        fields = [
            rewriter.insert(
                llvm.ExtractValueOp(DenseArrayBase.from_list(i64, [k]), call.returned, type_)
            ).res
            for k, type_ in enumerate(output.types.data)
        ]
        replace_op(rewriter, op, fields)


class ReturnLowering(RewritePattern):
    """`func.return` to `llvm.return`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, func.ReturnOp):
            return
        values: list[SSAValue] = [llvm_value(v, rewriter) for v in op.arguments]
        if len(values) > 1:
            struct_type = llvm.LLVMStructType.from_type_list([v.type for v in values])
            packed = rewriter.insert(llvm.UndefOp(struct_type)).res
            for k, value in enumerate(values):
                position = DenseArrayBase.from_list(i64, [k])
                packed = rewriter.insert(llvm.InsertValueOp(position, packed, value)).res
            values = [packed]
        rewriter.replace(op, llvm.ReturnOp(values[0] if values else None), [])


@dataclass(frozen=True)
class ConvertFuncToLLVMPass(DialectConversion):
    """Lower func to the llvm dialect.

    Expects `func.func` (public or private, definitions or declarations), `func.call` and
    `func.return`, on `index`, integer, float, 1-D vector, static-shaped memref and LLVM types.
    Produces `llvm.func` with converted signatures (`index` as `i64`, memrefs as `!llvm.ptr`
    carrying `llvm.noalias`, see the module docstring; several results packed in an
    `!llvm.struct`), private definitions with internal linkage, `llvm.call` and `llvm.return`.
    Entry-block arguments get their LLVM types and casts hand the old types to users not yet
    converted. Symbol names, argument order and other dialects are unchanged. Fails naming the
    function on other argument or result types.
    """

    name = "convert-func-to-llvm"

    dialect = "func"

    def patterns(self) -> list[RewritePattern]:
        return [FuncLowering(), CallLowering(), ReturnLowering()]
