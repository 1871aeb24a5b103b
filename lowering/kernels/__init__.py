"""Kernel emitters: one loop-level `func.func` per distinct conv-dialect op.

`convert-conv-to-loops` turns every op of a graph-form function into a call of a kernel
function, emitted once per distinct `key` (same op, shapes and attributes ⇒ same kernel). A
kernel's arguments are, in order: one `memref<shape x f32>` per tensor operand (the packed shape
for operands a `packers` entry rewrites at compile time), one for the result, and a
`memref<workspace_bytes x i8>` if `workspace_bytes(op) > 0`. Arguments never alias each other
(the memory planner guarantees it; the LLVM lowering marks them `noalias`), except that the same
read-only tensor may be passed twice.

`KernelEmitter` is the protocol every op emitter and every conv algorithm implements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

Packer = Callable[[np.ndarray], np.ndarray]


class KernelEmitter(Protocol):
    """How one kind of conv-dialect op becomes a loop-level kernel function."""

    def key(self, op: Operation) -> str:
        """A readable identifier, equal for ops that can share one kernel (valid symbol name)."""
        ...

    def packers(self, op: Operation) -> dict[int, Packer]:
        """Compile-time repacking of constant operands, by operand index (may be empty)."""
        ...

    def workspace_bytes(self, op: Operation) -> int:
        """Scratch memory the kernel needs, in bytes (0 for none)."""
        ...

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        """Append `func.func private @name(...)` computing `op` to `module`."""
        ...
