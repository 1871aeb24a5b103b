"""`convert-arith-to-llvm`: arith ops on scalars and 1-D vectors to the llvm dialect."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import arith, llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    VectorType,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
)
from xdsl.utils.type import get_element_type_or_self

from lowering.to_llvm import llvm_extra
from lowering.to_llvm.conversion import (
    DialectConversion,
    RejectNonScalarTypes,
    call_overloaded,
    constant,
    convert_type,
    llvm_fastmath,
    llvm_value,
    replace_op,
    select,
    unsupported,
)

PASS_NAME = "convert-arith-to-llvm"

_INTEGER_BINARY: dict[type[Operation], type[Operation]] = {
    arith.AddiOp: llvm.AddOp,
    arith.SubiOp: llvm.SubOp,
    arith.MuliOp: llvm.MulOp,
    arith.ShLIOp: llvm.ShlOp,
    arith.DivSIOp: llvm.SDivOp,
    arith.DivUIOp: llvm.UDivOp,
    arith.RemSIOp: llvm.SRemOp,
    arith.RemUIOp: llvm.URemOp,
    arith.AndIOp: llvm.AndOp,
    arith.OrIOp: llvm.OrOp,
    arith.XOrIOp: llvm.XOrOp,
    arith.ShRSIOp: llvm.AShrOp,
    arith.ShRUIOp: llvm.LShrOp,
}

_FLOAT_BINARY: dict[type[Operation], type[Operation]] = {
    arith.AddfOp: llvm.FAddOp,
    arith.SubfOp: llvm.FSubOp,
    arith.MulfOp: llvm.FMulOp,
    arith.DivfOp: llvm.FDivOp,
    arith.MaxnumfOp: llvm.VectorFMaxOp,
    arith.MinnumfOp: llvm.VectorFMinOp,
}

# NaN-propagating float min/max and integer min/max have no llvm-dialect op in xDSL: intrinsics.
_INTRINSIC_BINARY: dict[type[Operation], str] = {
    arith.MaximumfOp: "llvm.maximum",
    arith.MinimumfOp: "llvm.minimum",
    arith.MaxSIOp: "llvm.smax",
    arith.MinSIOp: "llvm.smin",
    arith.MaxUIOp: "llvm.umax",
    arith.MinUIOp: "llvm.umin",
}

_CASTS: dict[type[Operation], type[Operation]] = {
    arith.ExtSIOp: llvm.SExtOp,
    arith.ExtUIOp: llvm.ZExtOp,
    arith.TruncIOp: llvm.TruncOp,
    arith.SIToFPOp: llvm.SIToFPOp,
    arith.UIToFPOp: llvm_extra.UIToFPOp,
    arith.FPToSIOp: llvm_extra.FPToSIOp,
    arith.FPToUIOp: llvm_extra.FPToUIOp,
    arith.ExtFOp: llvm.FPExtOp,
    arith.TruncFOp: llvm.FPTruncOp,
    arith.BitcastOp: llvm.BitcastOp,
}


def _bit_width(type_: Attribute) -> int:
    element = get_element_type_or_self(type_)
    if isinstance(element, IndexType):
        return 64
    assert isinstance(element, IntegerType)
    return element.width.data


class ConstantLowering(RewritePattern):
    """`arith.constant` (integer, index, float, dense vector) to `llvm.mlir.constant`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, arith.ConstantOp):
            return
        value = op.value
        type_ = convert_type(op.result.type)
        if isinstance(value, IntegerAttr):
            attr: Attribute = IntegerAttr(value.value.data, type_)
        elif isinstance(value, FloatAttr):
            attr = value
        elif isinstance(value, DenseIntOrFPElementsAttr) and isinstance(type_, VectorType):
            attr = DenseIntOrFPElementsAttr.from_list(type_, value.get_values())
        else:
            raise unsupported(PASS_NAME, op, f"constants of type {op.result.type} are not lowered")
        new = rewriter.insert(llvm.ConstantOp(attr, type_))
        replace_op(rewriter, op, [new.result])


class BinaryLowering(RewritePattern):
    """Integer and float binary ops to their llvm ops, keeping overflow and fast-math flags."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if type(op) in _INTEGER_BINARY:
            lhs, rhs = (llvm_value(v, rewriter) for v in op.operands)
            llvm_op = _INTEGER_BINARY[type(op)]
            flags = getattr(op, "overflow_flags", None)
            if flags is not None and issubclass(llvm_op, llvm.ArithmeticBinOpOverflow):
                overflow = llvm.OverflowAttr([llvm.OverflowFlag(f.value) for f in flags.data])
                new: Operation = llvm_op(lhs, rhs, overflow=overflow)
            else:
                new = llvm_op(lhs, rhs)
        elif isinstance(op, arith.FloatingPointLikeBinaryOperation) and type(op) in _FLOAT_BINARY:
            new = _FLOAT_BINARY[type(op)](op.lhs, op.rhs, llvm_fastmath(op.fastmath))
        elif type(op) in _INTRINSIC_BINARY:
            lhs, rhs = (llvm_value(v, rewriter) for v in op.operands)
            name = _INTRINSIC_BINARY[type(op)]
            flags = op.fastmath if isinstance(op, arith.FloatingPointLikeBinaryOperation) else None
            fastmath = llvm_fastmath(flags) if flags is not None else None
            result = call_overloaded(rewriter, name, [lhs, rhs], lhs.type, fastmath)
            replace_op(rewriter, op, [result])
            return
        elif isinstance(op, arith.NegfOp):
            new = llvm.FNegOp(op.operand, llvm_fastmath(op.fastmath))
        else:
            return
        rewriter.insert(new)
        replace_op(rewriter, op, new.results)


class RoundingDivisionLowering(RewritePattern):
    """`floordivsi`, `ceildivsi` and `ceildivui` from the truncating division and remainder."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, arith.FloorDivSIOp | arith.CeilDivSIOp | arith.CeilDivUIOp):
            return
        lhs, rhs = llvm_value(op.lhs, rewriter), llvm_value(op.rhs, rewriter)
        signed = not isinstance(op, arith.CeilDivUIOp)
        quotient_op = llvm.SDivOp(lhs, rhs) if signed else llvm.UDivOp(lhs, rhs)
        remainder_op = llvm.SRemOp(lhs, rhs) if signed else llvm.URemOp(lhs, rhs)
        quotient = rewriter.insert(quotient_op).res
        remainder = rewriter.insert(remainder_op).res
        zero = constant(rewriter, 0, lhs.type)
        one = constant(rewriter, 1, lhs.type)
        inexact = _icmp(rewriter, "ne", remainder, zero)
        if signed:
            # sdiv truncates: the floor of a positive exact quotient, the ceiling of a negative
            # one. When the division is inexact, the exact quotient is negative exactly when the
            # remainder (which takes the dividend's sign) and the divisor differ in sign.
            remainder_negative = _icmp(rewriter, "slt", remainder, zero)
            divisor_negative = _icmp(rewriter, "slt", rhs, zero)
            sign_relation = "ne" if isinstance(op, arith.FloorDivSIOp) else "eq"
            same_or_not = _icmp(rewriter, sign_relation, remainder_negative, divisor_negative)
            inexact = rewriter.insert(llvm.AndOp(inexact, same_or_not)).res
        if isinstance(op, arith.FloorDivSIOp):
            adjusted = rewriter.insert(llvm.SubOp(quotient, one)).res
        else:
            adjusted = rewriter.insert(llvm.AddOp(quotient, one)).res
        replace_op(rewriter, op, [select(rewriter, inexact, adjusted, quotient)])


def _icmp(rewriter: PatternRewriter, predicate: str, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
    flag = llvm.ICmpPredicateFlag(predicate)
    return rewriter.insert(llvm.ICmpOp(lhs, rhs, IntegerAttr(flag.to_int(), i64))).res


class CompareLowering(RewritePattern):
    """`cmpi` to `llvm.icmp`; `cmpf` to `llvm.fcmp` (a `vector<Nxi1>` mask on vectors)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, arith.CmpiOp):
            lhs, rhs = llvm_value(op.lhs, rewriter), llvm_value(op.rhs, rewriter)
            predicate = IntegerAttr(op.predicate.value.data, i64)
            replace_op(rewriter, op, [rewriter.insert(llvm.ICmpOp(lhs, rhs, predicate)).res])
        elif isinstance(op, arith.CmpfOp):
            # arith's and llvm's float predicates are numbered alike, from `false` to `true`.
            flag = llvm.FCmpPredicateFlag.from_int(op.predicate.value.data)
            if isinstance(op.lhs.type, VectorType):
                new: Operation = llvm_extra.VectorFCmpOp(op.lhs, op.rhs, flag)
            else:
                new = llvm.FCmpOp(op.lhs, op.rhs, flag)
            replace_op(rewriter, op, [rewriter.insert(new).results[0]])


class SelectLowering(RewritePattern):
    """`arith.select` to `llvm.select`, lane-wise when the condition is a vector comparison."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, arith.SelectOp):
            return
        cond = llvm_value(op.cond, rewriter)
        lhs, rhs = llvm_value(op.lhs, rewriter), llvm_value(op.rhs, rewriter)
        if isinstance(cond.type, VectorType) and cond.type.get_shape() != _lanes(lhs.type):
            raise unsupported(PASS_NAME, op, f"a {cond.type} mask cannot select {lhs.type}")
        replace_op(rewriter, op, [select(rewriter, cond, lhs, rhs)])


def _lanes(type_: Attribute) -> tuple[int, ...] | None:
    return type_.get_shape() if isinstance(type_, VectorType) else None


class CastLowering(RewritePattern):
    """Integer, float and index casts to `llvm.sext`/`zext`/`trunc`/`sitofp`/`fptosi`/..."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, arith.IndexCastOp):
            source = llvm_value(op.input, rewriter)
            target = convert_type(op.result.type)
            source_bits, target_bits = _bit_width(source.type), _bit_width(target)
            if source_bits == target_bits:
                replace_op(rewriter, op, [source])
                return
            cast_op = llvm.TruncOp if target_bits < source_bits else llvm.SExtOp
            new: Operation = cast_op(source, target)
        elif type(op) in _CASTS:
            if isinstance(get_element_type_or_self(op.operands[0].type), IndexType):
                raise unsupported(PASS_NAME, op, "index operands need arith.index_cast")
            new = _CASTS[type(op)](op.operands[0], op.results[0].type)
        else:
            return
        rewriter.insert(new)
        replace_op(rewriter, op, new.results)


@dataclass(frozen=True)
class ConvertArithToLLVMPass(DialectConversion):
    """Lower arith to the llvm dialect.

    Expects arith ops on `index`, signless integers, `f32`/`f64` and 1-D vectors of them (xDSL's
    vector `cmpf`/`cmpi` results typed `i1` included). Produces llvm ops: the integer and float
    ops one to one (overflow and fast-math flags kept), `maximumf`/`minimumf` (flags kept: with
    `nnan,nsz` they compile to a bare `vmaxps`) and the integer min/max as `llvm.maximum`/
    `minimum`/`smax`/... intrinsics, `floordivsi`/`ceildivsi`/
    `ceildivui` expanded, `index` as `i64`. Operands and results of other types stay behind
    `unrealized_conversion_cast`s; other dialects are untouched. Fails naming the op on an arith
    op it cannot lower.
    """

    name = "convert-arith-to-llvm"

    dialect = "arith"

    def patterns(self) -> list[RewritePattern]:
        return [
            RejectNonScalarTypes(PASS_NAME, "arith"),
            ConstantLowering(),
            BinaryLowering(),
            RoundingDivisionLowering(),
            CompareLowering(),
            SelectLowering(),
            CastLowering(),
        ]
