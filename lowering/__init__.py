"""Lowering: conv dialect -> loops -> llvm dialect -> machine code (DESIGN §1, §5, §6).

`LOWERING_PASSES` maps each pass name to a factory returning its class, as `xDSLOptMain` expects.
"""

from collections.abc import Callable

from xdsl.passes import ModulePass

LOWERING_PASSES: dict[str, Callable[[], type[ModulePass]]] = {}
