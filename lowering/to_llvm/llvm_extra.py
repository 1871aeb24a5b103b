"""LLVM dialect operations that xDSL 0.74 lacks or restricts to scalars, under MLIR's names.

xDSL's `llvm` dialect has no `llvm.extractelement`, `llvm.fptosi`, `llvm.fptoui` or
`llvm.uitofp`, and its `llvm.fcmp` and `llvm.select` verify only scalar operands. The classes
below fill those gaps with MLIR's names and syntax; `lowering.to_llvm.translate` turns them into
LLVM IR. `LLVM_EXTRA_OPS` lists the ones whose names xDSL does not already own, so that a
context can load them (`Context.load_op`) and parse their printed form; the vector `llvm.fcmp`
and `llvm.select` print as MLIR does but parse back as xDSL's scalar-only classes.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import (
    I1,
    AnyFloatConstr,
    IntegerAttr,
    IntegerType,
    VectorType,
    i1,
    i64,
)
from xdsl.dialects.llvm import FCmpPredicateFlag, GenericCastOp
from xdsl.ir import Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure


@irdl_op_definition
class ExtractElementOp(IRDLOperation):
    """`%e = llvm.extractelement %v[%i : i64] : vector<Nxf32>`: element `i` of a 1-D vector."""

    name = "llvm.extractelement"

    ELEMENT: ClassVar = VarConstraint("ELEMENT", base(IntegerType) | AnyFloatConstr)

    vector = operand_def(VectorType.constr(ELEMENT))
    position = operand_def(IntegerType)
    res = result_def(ELEMENT)

    traits = traits_def(Pure())

    assembly_format = "$vector `[` $position `:` type($position) `]` attr-dict `:` type($vector)"

    def __init__(self, vector: SSAValue | Operation, position: SSAValue | Operation):
        vector_type = SSAValue.get(vector).type
        assert isinstance(vector_type, VectorType)
        super().__init__(operands=[vector, position], result_types=[vector_type.element_type])


@irdl_op_definition
class FPToSIOp(GenericCastOp):
    """`llvm.fptosi`: float (or vector of floats) to signed integer, rounding toward zero."""

    name = "llvm.fptosi"


@irdl_op_definition
class FPToUIOp(GenericCastOp):
    """`llvm.fptoui`: float (or vector of floats) to unsigned integer, rounding toward zero."""

    name = "llvm.fptoui"


@irdl_op_definition
class UIToFPOp(GenericCastOp):
    """`llvm.uitofp`: unsigned integer (or vector of them) to float."""

    name = "llvm.uitofp"


@irdl_op_definition
class VectorFCmpOp(IRDLOperation):
    """`%m = llvm.fcmp "olt" %a, %b : vector<Nxf32>`: lane-wise comparison to `vector<Nxi1>`."""

    name = "llvm.fcmp"

    T: ClassVar = VarConstraint("T", VectorType.constr(AnyFloatConstr))

    lhs = operand_def(T)
    rhs = operand_def(T)
    res = result_def(VectorType.constr(I1))
    predicate = prop_def(IntegerAttr[IntegerType])

    traits = traits_def(Pure())

    def __init__(
        self, lhs: SSAValue | Operation, rhs: SSAValue | Operation, predicate: FCmpPredicateFlag
    ):
        lhs_type = SSAValue.get(lhs).type
        assert isinstance(lhs_type, VectorType)
        super().__init__(
            operands=[lhs, rhs],
            result_types=[VectorType(i1, lhs_type.get_shape())],
            properties={"predicate": IntegerAttr(predicate.to_int(), i64)},
        )

    @property
    def flag(self) -> FCmpPredicateFlag:
        return FCmpPredicateFlag.from_int(self.predicate.value.data)

    def print(self, printer: Printer) -> None:
        printer.print_string(f' "{self.flag}" ')
        printer.print_ssa_value(self.lhs)
        printer.print_string(", ")
        printer.print_ssa_value(self.rhs)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)

    @classmethod
    def parse(cls, parser: Parser) -> VectorFCmpOp:
        flag = FCmpPredicateFlag(parser.parse_str_literal())
        lhs = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        rhs = parser.parse_unresolved_operand()
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        operand_type = parser.parse_type()
        lhs_value, rhs_value = parser.resolve_operands([lhs, rhs], 2 * [operand_type], parser.pos)
        op = cls(lhs_value, rhs_value, flag)
        op.attributes |= attributes
        return op


@irdl_op_definition
class VectorSelectOp(IRDLOperation):
    """`llvm.select %m, %a, %b : vector<Nxi1>, vector<NxT>`: lane-wise choice by a mask."""

    name = "llvm.select"

    T: ClassVar = VarConstraint("T", base(VectorType))

    cond = operand_def(VectorType.constr(I1))
    lhs = operand_def(T)
    rhs = operand_def(T)
    res = result_def(T)

    traits = traits_def(Pure())

    assembly_format = "$cond `,` $lhs `,` $rhs attr-dict `:` type($cond) `,` type($res)"

    def __init__(
        self,
        cond: SSAValue | Operation,
        lhs: SSAValue | Operation,
        rhs: SSAValue | Operation,
    ):
        super().__init__(operands=[cond, lhs, rhs], result_types=[SSAValue.get(lhs).type])


LLVM_EXTRA_OPS: tuple[type[IRDLOperation], ...] = (ExtractElementOp, FPToSIOp, FPToUIOp, UIToFPOp)
"""The extension ops whose names xDSL's `llvm` dialect does not define (safe to `load_op`)."""
