"""Loop-level IR (scf/arith/math/vector/memref/func) to the llvm dialect and LLVM IR text.

xDSL 0.74 translates the llvm dialect to LLVM IR but cannot reach it from the loop level; the
passes here do, one dialect per pass, under MLIR's names. `lower_to_llvm` runs them in order and
`translate_to_llvm_ir` prints the result as LLVM IR.

Memrefs are static-shaped and lower to bare `!llvm.ptr` values (`addressing`): every load and
store is one `getelementptr inbounds` with the linearised index, never ptrtoint/inttoptr, so
LLVM's alias analysis sees every address. Memref arguments of functions become pointer
arguments marked `noalias`: convir guarantees that the memref arguments of a function it emits
never overlap one another; code that passes overlapping buffers would be miscompiled.
"""

from __future__ import annotations

from collections.abc import Iterator

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, SymbolRefAttr, UnrealizedConversionCastOp
from xdsl.passes import ModulePass
from xdsl.transforms.convert_scf_to_cf import ConvertScfToCf
from xdsl.transforms.reconcile_unrealized_casts import reconcile_unrealized_casts

from lowering.stage_times import stage
from lowering.to_llvm.arith_to_llvm import ConvertArithToLLVMPass
from lowering.to_llvm.cf_to_llvm import ConvertCfToLLVMPass
from lowering.to_llvm.conversion import convert_dialects, walk_ops
from lowering.to_llvm.func_to_llvm import ConvertFuncToLLVMPass
from lowering.to_llvm.math_to_llvm import ConvertMathToLLVMPass
from lowering.to_llvm.memref_to_llvm import ConvertMemRefToLLVMPass
from lowering.to_llvm.translate import translate_to_llvm_ir
from lowering.to_llvm.vector_to_llvm import ConvertVectorToLLVMPass

__all__ = [
    "LLVM_LOWERING_PASSES",
    "ConvertArithToLLVMPass",
    "ConvertCfToLLVMPass",
    "ConvertFuncToLLVMPass",
    "ConvertMathToLLVMPass",
    "ConvertMemRefToLLVMPass",
    "ConvertVectorToLLVMPass",
    "lower_functions_to_llvm_ir",
    "lower_to_llvm",
    "translate_to_llvm_ir",
]

LLVM_LOWERING_PASSES: tuple[type[ModulePass], ...] = (
    ConvertScfToCf,
    ConvertVectorToLLVMPass,
    ConvertMathToLLVMPass,
    ConvertArithToLLVMPass,
    ConvertMemRefToLLVMPass,
    ConvertFuncToLLVMPass,
    ConvertCfToLLVMPass,
)
"""The conversions of `lower_to_llvm`, in order; `reconcile-unrealized-casts` follows them."""
_DIALECT_CONVERSIONS = LLVM_LOWERING_PASSES[1:]


def lower_to_llvm(module: ModuleOp, *, verify: bool = True) -> None:
    """Lower a loop-level module to the llvm dialect in place.

    Runs `convert-scf-to-cf`, the vector, math, arith, memref, func and cf conversions (as one
    walk: `conversion.convert_dialects`; the same result as running them one after the other)
    and `reconcile-unrealized-casts`, then checks that only llvm-dialect ops remain and, with
    `verify`, verifies the module. Raises a `DiagnosticException` from the pass that meets an op
    it cannot lower, or a `ValueError` naming the first op no pass lowered.
    """
    ConvertScfToCf().apply(Context(), module)
    convert_dialects(module, [pass_class() for pass_class in _DIALECT_CONVERSIONS])
    reconcile_unrealized_casts(module, warn_on_failure=False)
    remaining = [op for op in walk_ops(module) if op is not module]
    for op in remaining:
        if not op.name.startswith("llvm.") and not isinstance(op, UnrealizedConversionCastOp):
            raise ValueError(f"lower_to_llvm: '{op.name}' has no lowering to the llvm dialect")
    for op in remaining:
        if isinstance(op, UnrealizedConversionCastOp):
            types = f"{op.inputs.types[0]} to {op.outputs.types[0]}"
            raise ValueError(f"lower_to_llvm: a cast from {types} remained after lowering: {op}")
    if verify:
        module.verify()


def lower_functions_to_llvm_ir(
    module: ModuleOp, *, target_triple: str | None = None
) -> Iterator[str]:
    """LLVM IR texts of a loop-level module, one per function definition, to be linked.

    Each function is detached from `module` and lowered and translated on its own, beside
    declarations of the functions it refers to, so that only one function at a time exists in
    the (verbose) llvm dialect: the peak memory of lowering a whole model is that of its loop-level
    module, not of its llvm-dialect form. Every definition is made public so that the parts link;
    `lowering.codegen.link_ir` restores internal linkage. `module` is left with its declarations
    only.

    The llvm-dialect form is not verified by xDSL (a fifth of the lowering's time for ResNet-18):
    LLVM verifies every part it parses (`lowering.codegen`), and the unit tests verify what each
    conversion produces through `lower_to_llvm`.
    """
    signatures = {
        op.sym_name.data: op.function_type for op in module.ops if isinstance(op, func.FuncOp)
    }
    others = [op for op in module.ops if not isinstance(op, func.FuncOp)]
    if others:
        raise ValueError(f"lower_functions_to_llvm_ir: '{others[0].name}' is not a function")
    for function in [op for op in module.ops if isinstance(op, func.FuncOp) and op.body.blocks]:
        function.detach()
        function.sym_visibility = None
        name = function.sym_name.data
        declarations = [
            func.FuncOp.external(
                callee, signatures[callee].inputs.data, signatures[callee].outputs.data
            )
            for callee in sorted(_referenced_symbols(function) - {name})
            if callee in signatures
        ]
        part = ModuleOp([*declarations, function])
        with stage("lower to llvm dialect"):
            lower_to_llvm(part, verify=False)
        with stage("translate to LLVM IR"):
            text = translate_to_llvm_ir(part, target_triple=target_triple)
        yield text


def _referenced_symbols(function: func.FuncOp) -> set[str]:
    names = set()
    for op in walk_ops(function):
        for attr in (*op.properties.values(), *op.attributes.values()):
            if isinstance(attr, SymbolRefAttr):
                names.add(attr.root_reference.data)
    return names
