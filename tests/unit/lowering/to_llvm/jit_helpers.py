"""Helpers of the to-llvm tests: parse loop-level MLIR, lower it, compile it with llvmlite's MCJIT
and call it through ctypes with numpy arrays."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, builtin, cf, func, math, memref, scf, vector
from xdsl.dialects import llvm as llvm_dialect
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir

_initialized = False


def _initialize() -> None:
    global _initialized
    if not _initialized:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        for library in ("libm.so.6",):
            llvm.load_library_permanently(library)
        _initialized = True


def loop_context() -> Context:
    """A context with the dialects of loop-level IR."""
    ctx = Context()
    for dialect in (
        builtin.Builtin,
        func.Func,
        arith.Arith,
        scf.Scf,
        cf.Cf,
        memref.MemRef,
        vector.Vector,
        math.Math,
        llvm_dialect.LLVM,
    ):
        ctx.load_dialect(dialect)
    return ctx


def parse(text: str) -> ModuleOp:
    return Parser(loop_context(), text).parse_module()


def lowered_ir(text: str) -> str:
    """The LLVM IR text of a loop-level module."""
    module = parse(text)
    lower_to_llvm(module)
    return translate_to_llvm_ir(module)


def host_machine() -> llvm.TargetMachine:
    """A fresh O3 target machine for the host CPU (MCJIT takes ownership of it)."""
    _initialize()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
    )


def optimized(ir_text: str) -> tuple[llvm.ModuleRef, llvm.TargetMachine]:
    """The parsed, verified and O3-optimised module with its target machine."""
    machine = host_machine()
    module = llvm.parse_assembly(ir_text)
    module.verify()
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)
    return module, machine


def assembly(text: str) -> str:
    """The host assembly of a loop-level module after O3."""
    module, machine = optimized(lowered_ir(text))
    return machine.emit_assembly(module)


_CTYPES = {
    "ptr": ctypes.c_void_p,
    "f32": ctypes.c_float,
    "f64": ctypes.c_double,
    "i1": ctypes.c_bool,
    "i32": ctypes.c_int32,
    "i64": ctypes.c_int64,
    "index": ctypes.c_int64,
    "void": None,
}


@dataclass
class Kernels:
    """The compiled functions of one module; the engine lives as long as this object."""

    engine: llvm.ExecutionEngine
    ir: str

    def function(self, name: str, result: str, *arguments: str) -> Any:
        address = self.engine.get_function_address(name)
        assert address, f"no function @{name}"
        signature = ctypes.CFUNCTYPE(_CTYPES[result], *(_CTYPES[a] for a in arguments))
        return signature(address)


def compile_kernels(text: str) -> Kernels:
    """Lower, translate, optimise and JIT a loop-level module."""
    ir_text = lowered_ir(text)
    module, machine = optimized(ir_text)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    return Kernels(engine, ir_text)


def pointer(array: np.ndarray) -> int:
    """The address of a contiguous numpy array, as a memref argument."""
    assert array.flags.c_contiguous
    return array.ctypes.data
