"""The llvm dialect to LLVM IR text: xDSL's translator, extended.

xDSL's `convert_module` handles most llvm-dialect ops but not those of
`lowering.to_llvm.llvm_extra` (`llvm.extractelement`, `llvm.fptosi`/`fptoui`/`uitofp`, vector
`llvm.fcmp` and `llvm.select`). It also ignores function linkage, drops the fast-math flags of
intrinsics (and refuses them on `llvm.call_intrinsic`), emits fast-math flags in set order
(which varies from one Python process to the next), and declares `llvm.intr.exp`/`sqrt`/`pow`/
`maxnum`/... without their type suffix, so a module using one of them on two types (f32 and
vector<8xf32>) fails to translate.

This module declares globals and functions with xDSL's helpers (which turn `llvm.noalias`
argument attributes into `noalias`), gives defined functions their linkage, and converts bodies
op by op: the ops named above here, every other op by xDSL's `convert_op`.
"""

from __future__ import annotations

import llvmlite.ir as ir

# Private helpers of xDSL's translator, reused rather than copied (xDSL is pinned to 0.74.*).
from xdsl.backend.llvm.convert import _convert_global, _declare_func
from xdsl.backend.llvm.convert_op import (
    _BINARY_INTRINSIC_MAP,
    _UNARY_INTRINSIC_MAP,
    convert_op,
    declare_intrinsic,
)
from xdsl.backend.llvm.convert_type import convert_type
from xdsl.dialects import llvm
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Block, Operation, SSAValue

from convir.target import Target
from lowering.to_llvm.llvm_extra import (
    ExtractElementOp,
    FPToSIOp,
    FPToUIOp,
    UIToFPOp,
    VectorFCmpOp,
    VectorSelectOp,
)

ValueMap = dict[SSAValue, ir.Value]

_CASTS: dict[type[Operation], str] = {FPToSIOp: "fptosi", FPToUIOp: "fptoui", UIToFPOp: "uitofp"}
_FLOAT_BINARY: dict[type[Operation], str] = {
    llvm.FAddOp: "fadd",
    llvm.FSubOp: "fsub",
    llvm.FMulOp: "fmul",
    llvm.FDivOp: "fdiv",
    llvm.FRemOp: "frem",
}
_REDUCTIONS: dict[type[Operation], str] = {
    llvm.VectorReduceFAddOp: "llvm.vector.reduce.fadd",
    llvm.VectorReduceFMulOp: "llvm.vector.reduce.fmul",
}
_INTRINSICS: dict[type[Operation], str] = {
    **_UNARY_INTRINSIC_MAP,
    **_BINARY_INTRINSIC_MAP,
    llvm.FMAOp: "llvm.fma",
}
_LINKAGES = {"internal", "private", "linkonce_odr", "weak_odr"}


def _flags(op: Operation) -> list[str]:
    fastmath = op.properties.get("fastmathFlags")
    assert fastmath is None or isinstance(fastmath, llvm.FastMathAttr)
    return sorted(flag.value for flag in fastmath.data) if fastmath is not None else []


def _convert_extended_op(
    op: Operation, builder: ir.IRBuilder, values: ValueMap, blocks: dict[Block, ir.Block]
) -> None:
    operands = [values[operand] for operand in op.operands]
    if isinstance(op, ExtractElementOp):
        result = builder.extract_element(*operands)
    elif type(op) in _CASTS:
        result = getattr(builder, _CASTS[type(op)])(operands[0], convert_type(op.results[0].type))
    elif isinstance(op, VectorFCmpOp):
        result = builder.fcmp_ordered(op.flag.value.lstrip("_"), *operands)
    elif isinstance(op, VectorSelectOp):
        result = builder.select(*operands)
    elif type(op) in _FLOAT_BINARY:
        result = getattr(builder, _FLOAT_BINARY[type(op)])(*operands, flags=_flags(op))
    elif isinstance(op, llvm.FNegOp):
        result = builder.fneg(operands[0], flags=_flags(op))
    elif type(op) in _INTRINSICS:
        signature = ir.FunctionType(operands[0].type, [operand.type for operand in operands])
        name = _INTRINSICS[type(op)]
        intrinsic = declare_intrinsic(builder.module, name, operands[0].type, signature)
        result = builder.call(intrinsic, operands, fastmath=_flags(op))
    elif isinstance(op, llvm.CallIntrinsicOp) and _flags(op):
        result_type = convert_type(op.ress.type) if op.ress is not None else ir.VoidType()
        signature = ir.FunctionType(result_type, [operand.type for operand in operands])
        name = op.intrin.data
        if name in builder.module.globals:
            intrinsic = builder.module.globals[name]
        else:
            intrinsic = ir.Function(builder.module, signature, name=name)
        call = builder.call(intrinsic, operands, fastmath=_flags(op))
        if op.ress is not None:
            values[op.ress] = call
        return
    elif type(op) in _REDUCTIONS:
        start, vector = operands
        signature = ir.FunctionType(start.type, [start.type, vector.type])
        intrinsic = declare_intrinsic(builder.module, _REDUCTIONS[type(op)], vector.type, signature)
        result = builder.call(intrinsic, operands, fastmath=_flags(op))
    else:
        try:
            convert_op(op, builder, values, blocks)
        except NotImplementedError as error:
            message = f"translate_to_llvm_ir: cannot translate '{op.name}': {error}"
            raise ValueError(message) from None
        return
    values[op.results[0]] = result


def _convert_body(op: llvm.FuncOp, function: ir.Function) -> None:
    blocks = {block: function.append_basic_block(block.name_hint or "") for block in op.body.blocks}
    values: ValueMap = dict(zip(op.body.blocks.first.args, function.args, strict=True))
    # Block arguments become phis, filled in by the branches that reach them.
    for block in list(op.body.blocks)[1:]:
        builder = ir.IRBuilder(blocks[block])
        for arg in block.args:
            values[arg] = builder.phi(convert_type(arg.type))
    for block in op.body.blocks:
        builder = ir.IRBuilder(blocks[block])
        if blocks[block].instructions:
            builder.position_after(blocks[block].instructions[-1])
        for body_op in block.ops:
            _convert_extended_op(body_op, builder, values, blocks)


def to_llvmlite_module(
    module: ModuleOp, *, target_triple: str | None = None, data_layout: str = ""
) -> ir.Module:
    """The llvmlite module of an llvm-dialect module (see the module docstring).

    The triple is `target_triple`, else the module's `llvm.target_triple`, else the host's.
    """
    llvm_module = ir.Module()
    module_triple = module.attributes.get("llvm.target_triple")
    if target_triple is None and isinstance(module_triple, StringAttr):
        target_triple = module_triple.data
    llvm_module.triple = target_triple or Target.host().triple
    if data_layout:
        llvm_module.data_layout = data_layout
    functions: list[llvm.FuncOp] = []
    for op in module.ops:
        if isinstance(op, llvm.GlobalOp):
            _convert_global(op, llvm_module)
        elif isinstance(op, llvm.FuncOp):
            functions.append(op)
        else:
            raise ValueError(f"translate_to_llvm_ir: '{op.name}' is not an llvm-dialect module op")
    for op in functions:
        _declare_func(op, llvm_module)
        function = llvm_module.get_global(op.sym_name.data)
        if op.body.blocks and op.linkage.linkage.data in _LINKAGES:
            function.linkage = op.linkage.linkage.data
    for op in functions:
        if op.body.blocks:
            _convert_body(op, llvm_module.get_global(op.sym_name.data))
    return llvm_module


def translate_to_llvm_ir(
    module: ModuleOp, *, target_triple: str | None = None, data_layout: str = ""
) -> str:
    """LLVM IR text of an llvm-dialect module (as `lower_to_llvm` leaves it)."""
    return str(to_llvmlite_module(module, target_triple=target_triple, data_layout=data_layout))
