"""`convert-vector-to-llvm`: 1-D vector ops to the llvm dialect.

Vector loads and stores address memory like memref accesses (one `getelementptr inbounds`, see
`lowering.to_llvm.addressing`) and assume only the element's alignment (4 bytes for f32), so
they may start anywhere in a buffer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import llvm, vector
from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    VectorType,
    i32,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
)

from lowering.to_llvm.addressing import element_bytes, element_pointer, static_strides
from lowering.to_llvm.conversion import (
    DialectConversion,
    call_intrinsic,
    call_overloaded,
    constant,
    convert_type,
    intrinsic_suffix,
    llvm_value,
    replace_op,
    splat,
    unsupported,
)
from lowering.to_llvm.llvm_extra import ExtractElementOp

PASS_NAME = "convert-vector-to-llvm"

CombiningKind = vector.CombiningKindFlag

# Each kind: the reduction intrinsic, and how a given accumulator joins its result.
_FLOAT_REDUCTIONS: dict[CombiningKind, tuple[str, type[Operation] | str]] = {
    CombiningKind.MAXIMUMF: ("llvm.vector.reduce.fmaximum", "llvm.maximum"),
    CombiningKind.MINIMUMF: ("llvm.vector.reduce.fminimum", "llvm.minimum"),
    CombiningKind.MAXNUMF: ("llvm.vector.reduce.fmax", llvm.VectorFMaxOp),
    CombiningKind.MINNUMF: ("llvm.vector.reduce.fmin", llvm.VectorFMinOp),
}
_INTEGER_REDUCTIONS: dict[CombiningKind, tuple[str, type[Operation] | str]] = {
    CombiningKind.ADD: ("llvm.vector.reduce.add", llvm.AddOp),
    CombiningKind.MUL: ("llvm.vector.reduce.mul", llvm.MulOp),
    CombiningKind.AND: ("llvm.vector.reduce.and", llvm.AndOp),
    CombiningKind.OR: ("llvm.vector.reduce.or", llvm.OrOp),
    CombiningKind.XOR: ("llvm.vector.reduce.xor", llvm.XOrOp),
    CombiningKind.MAXSI: ("llvm.vector.reduce.smax", "llvm.smax"),
    CombiningKind.MINSI: ("llvm.vector.reduce.smin", "llvm.smin"),
    CombiningKind.MAXUI: ("llvm.vector.reduce.umax", "llvm.umax"),
    CombiningKind.MINUI: ("llvm.vector.reduce.umin", "llvm.umin"),
}


def _one_dimensional(type_: Attribute, op: Operation) -> VectorType:
    if not isinstance(type_, VectorType) or type_.get_num_dims() != 1:
        raise unsupported(PASS_NAME, op, f"only 1-D vectors are lowered, got {type_}")
    if type_.get_num_scalable_dims():
        raise unsupported(PASS_NAME, op, f"scalable vectors are not lowered, got {type_}")
    return type_


def _lane(rewriter: PatternRewriter, position: int | SSAValue) -> SSAValue:
    if isinstance(position, int):
        return constant(rewriter, position, i64)
    return llvm_value(position, rewriter)


def _vector_pointer(
    rewriter: PatternRewriter, op: Operation, memref: SSAValue, indices: Sequence[SSAValue]
) -> SSAValue:
    """The address of the first lane; the lanes must be consecutive in memory."""
    strides = static_strides(memref.type, PASS_NAME, op)
    if strides and strides[-1] != 1:
        raise unsupported(PASS_NAME, op, f"the innermost dimension of {memref.type} is strided")
    return element_pointer(rewriter, memref, indices, PASS_NAME, op)


class LoadStoreLowering(RewritePattern):
    """`vector.load`/`store` and `maskedload`/`maskedstore` on memrefs to `llvm.load`/`store`
    and the `llvm.masked.load`/`store` intrinsics, aligned to one element."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, vector.LoadOp | vector.MaskedLoadOp):
            vector_type = _one_dimensional(convert_type(op.result.type), op)
            pointer = _vector_pointer(rewriter, op, op.base, op.indices)
            alignment = element_bytes(vector_type.element_type)
            if isinstance(op, vector.LoadOp):
                load = llvm.LoadOp(pointer, vector_type, alignment=alignment)
                replace_op(rewriter, op, [rewriter.insert(load).dereferenced_value])
                return
            mask = llvm_value(op.mask, rewriter)
            name = f"llvm.masked.load.{intrinsic_suffix(vector_type)}.p0"
            pass_thru = llvm_value(op.pass_thru, rewriter)
            args = [pointer, constant(rewriter, alignment, i32), mask, pass_thru]
            loaded = call_intrinsic(rewriter, name, args, vector_type)
            assert loaded is not None
            replace_op(rewriter, op, [loaded])
        elif isinstance(op, vector.StoreOp | vector.MaskedStoreOp):
            stored = op.vector if isinstance(op, vector.StoreOp) else op.value_to_store
            value = llvm_value(stored, rewriter)
            vector_type = _one_dimensional(value.type, op)
            pointer = _vector_pointer(rewriter, op, op.base, op.indices)
            alignment = element_bytes(vector_type.element_type)
            if isinstance(op, vector.StoreOp):
                rewriter.insert(llvm.StoreOp(value, pointer, alignment=alignment))
            else:
                mask = llvm_value(op.mask, rewriter)
                name = f"llvm.masked.store.{intrinsic_suffix(vector_type)}.p0"
                args = [value, pointer, constant(rewriter, alignment, i32), mask]
                call_intrinsic(rewriter, name, args, None)
            rewriter.erase(op)


class ElementLowering(RewritePattern):
    """`vector.broadcast`, `extract`, `insert`, `shuffle`, `fma`, `bitcast` and `create_mask`
    on 1-D vectors to `insertelement`/`extractelement`/`shufflevector`/`llvm.intr.fma`/..."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, vector.BroadcastOp):
            result_type = _one_dimensional(convert_type(op.vector.type), op)
            source = llvm_value(op.source, rewriter)
            if source.type == result_type:
                result = source
            elif isinstance(source.type, VectorType):
                if source.type.get_shape() != (1,):
                    raise unsupported(PASS_NAME, op, f"cannot broadcast {source.type}")
                zeros = DenseArrayBase.from_list(i32, [0] * result_type.get_shape()[0])
                shuffle = llvm.ShuffleVectorOp(source, source, zeros, result_type)
                result = rewriter.insert(shuffle).res
            else:
                result = splat(rewriter, source, result_type)
        elif isinstance(op, vector.ExtractOp | vector.InsertOp):
            source_type = op.vector.type if isinstance(op, vector.ExtractOp) else op.dest.type
            _one_dimensional(source_type, op)
            positions = op.get_mixed_position()
            if len(positions) != 1:
                raise unsupported(PASS_NAME, op, "expected a single position")
            lane = _lane(rewriter, positions[0])
            if isinstance(op, vector.ExtractOp):
                source = llvm_value(op.vector, rewriter)
                result = rewriter.insert(ExtractElementOp(source, lane)).res
            else:
                value, dest = llvm_value(op.source, rewriter), llvm_value(op.dest, rewriter)
                result = rewriter.insert(llvm.InsertElementOp(dest, value, lane)).res
        elif isinstance(op, vector.ShuffleOp):
            result_type = _one_dimensional(convert_type(op.result.type), op)
            v1, v2 = llvm_value(op.v1, rewriter), llvm_value(op.v2, rewriter)
            _one_dimensional(v1.type, op)
            mask = DenseArrayBase.from_list(i32, op.mask.get_values())
            result = rewriter.insert(llvm.ShuffleVectorOp(v1, v2, mask, result_type)).res
        elif isinstance(op, vector.FMAOp):
            _one_dimensional(op.res.type, op)
            result = rewriter.insert(llvm.FMAOp(op.lhs, op.rhs, op.acc)).res
        elif isinstance(op, vector.BitcastOp):
            result_type = _one_dimensional(convert_type(op.result.type), op)
            source = llvm_value(op.source, rewriter)
            result = rewriter.insert(llvm.BitcastOp(source, result_type)).result
        elif isinstance(op, vector.CreateMaskOp):
            result = _create_mask(rewriter, op)
        else:
            return
        replace_op(rewriter, op, [result])


def _create_mask(rewriter: PatternRewriter, op: vector.CreateMaskOp) -> SSAValue:
    """Lanes `[0, bound)` set: `<0, 1, ..., N-1> slt splat(bound)`."""
    mask_type = _one_dimensional(op.mask_vector.type, op)
    lanes = mask_type.get_shape()[0]
    index_type = VectorType(i64, [lanes])
    lane_numbers = DenseIntOrFPElementsAttr.from_list(index_type, list(range(lanes)))
    numbers = rewriter.insert(llvm.ConstantOp(lane_numbers, index_type)).result
    bound = splat(rewriter, llvm_value(op.mask_dim_sizes[0], rewriter), index_type)
    predicate = IntegerAttr(llvm.ICmpPredicateFlag.SLT.to_int(), i64)
    return rewriter.insert(llvm.ICmpOp(numbers, bound, predicate)).res


class ReductionLowering(RewritePattern):
    """`vector.reduction` to the `llvm.vector.reduce.*` intrinsics, combined with the accumulator
    if there is one. Float `add`/`mul` are sequential (`((acc + v0) + v1) + ...`) unless the
    op's fast-math flags allow reassociation; the translator passes those flags on to LLVM."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, vector.ReductionOp):
            return
        lanes = llvm_value(op.vector, rewriter)
        vector_type = _one_dimensional(lanes.type, op)
        element = vector_type.element_type
        kind = op.kind.data
        acc = llvm_value(op.acc, rewriter) if op.acc is not None else None
        if isinstance(element, AnyFloat) and kind in (CombiningKind.ADD, CombiningKind.MUL):
            identity = -0.0 if kind == CombiningKind.ADD else 1.0
            start = acc if acc is not None else constant(rewriter, identity, element)
            reduce_op = (
                llvm.VectorReduceFAddOp if kind == CombiningKind.ADD else llvm.VectorReduceFMulOp
            )
            flags = llvm.FastMathAttr(op.fastmath.data)
            result = rewriter.insert(reduce_op(start, lanes, flags)).res
            replace_op(rewriter, op, [result])
            return
        table = _FLOAT_REDUCTIONS if isinstance(element, AnyFloat) else _INTEGER_REDUCTIONS
        if kind not in table:
            raise unsupported(PASS_NAME, op, f"no '{kind}' reduction of {vector_type}")
        reduce_name, combine = table[kind]
        name = f"{reduce_name}.{intrinsic_suffix(vector_type)}"
        flags = llvm.FastMathAttr(op.fastmath.data) if isinstance(element, AnyFloat) else None
        result = call_intrinsic(rewriter, name, [lanes], element, flags)
        assert result is not None
        if acc is not None:
            if isinstance(combine, str):
                result = call_overloaded(rewriter, combine, [acc, result], element, flags)
            else:
                result = rewriter.insert(combine(acc, result)).results[0]
        replace_op(rewriter, op, [result])


@dataclass(frozen=True)
class ConvertVectorToLLVMPass(DialectConversion):
    """Lower 1-D vector ops to the llvm dialect.

    Expects 1-D fixed-width vectors of any length: `vector.load`/`store`/`maskedload`/
    `maskedstore` on static-shaped memrefs, `broadcast` (scalar, `vector<1xT>` or same type),
    `extract`/`insert` at one static or dynamic position, `shuffle`, `fma`, `bitcast`,
    `create_mask` and `reduction` (float add/mul/maximumf/minimumf/maxnumf/minnumf, integer
    add/mul/and/or/xor/min/max, with or without accumulator). Produces llvm ops and intrinsics;
    memory accesses use one `getelementptr inbounds` and element alignment. Memref operands
    become `!llvm.ptr` behind casts; other dialects are untouched. Fails naming the op on any
    other vector op or on n-D vectors.
    """

    name = "convert-vector-to-llvm"

    dialect = "vector"

    def patterns(self) -> list[RewritePattern]:
        return [LoadStoreLowering(), ElementLowering(), ReductionLowering()]
