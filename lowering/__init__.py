"""Lowering: conv dialect -> loops -> llvm dialect -> machine code (DESIGN §1, §5, §6).

`LOWERING_PASSES` maps each pass name to a factory returning its class, as `xDSLOptMain` expects.
The factories import their pass on first use, so `import lowering.jit` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xdsl.passes import ModulePass


def _lazy(module: str, name: str) -> Callable[[], type[ModulePass]]:
    def factory() -> type[ModulePass]:
        return getattr(importlib.import_module(module), name)

    return factory


LOWERING_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "convert-conv-to-loops": _lazy("lowering.conv_to_loops", "ConvertConvToLoopsPass"),
    "convert-parallel-to-pool": _lazy("lowering.parallel_to_pool", "ConvertParallelToPoolPass"),
    "convert-arith-to-llvm": _lazy("lowering.to_llvm", "ConvertArithToLLVMPass"),
    "convert-math-to-llvm": _lazy("lowering.to_llvm", "ConvertMathToLLVMPass"),
    "convert-vector-to-llvm": _lazy("lowering.to_llvm", "ConvertVectorToLLVMPass"),
    "convert-memref-to-llvm": _lazy("lowering.to_llvm", "ConvertMemRefToLLVMPass"),
    "convert-func-to-llvm": _lazy("lowering.to_llvm", "ConvertFuncToLLVMPass"),
    "convert-cf-to-llvm": _lazy("lowering.to_llvm", "ConvertCfToLLVMPass"),
}
