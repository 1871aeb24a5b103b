"""Kernel emitters: one loop-level `func.func` per distinct conv-dialect op.

`convert-conv-to-loops` turns every op of a graph-form function into a call of a kernel
function, emitted once per distinct `kernel_symbol`: the emitter's readable `key` followed by a
digest of everything an emitter can read of the op (`kernel_identity`), so two ops share a kernel
only if nothing that reaches the kernel's code differs between them. A kernel's arguments are,
in order: one `memref<shape x f32>` per tensor operand (the packed shape for operands a
`packers` entry rewrites at compile time), one for the result, and a `memref<workspace_bytes x
i8>` if `workspace_bytes(op) > 0`. Arguments never alias each other
(the memory planner guarantees it; the LLVM lowering marks them `noalias`), except that the same
read-only tensor may be passed twice.

`KernelEmitter` is the protocol every op emitter and every conv algorithm implements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from convir.dialects import conv

Packer = Callable[[np.ndarray], np.ndarray]


class KernelEmitter(Protocol):
    """How one kind of conv-dialect op becomes a loop-level kernel function."""

    def key(self, op: Operation) -> str:
        """A readable label of the kernel (valid symbol name): the first part of its symbol.
        It need not tell every two kernels apart; `kernel_identity` does."""
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


#: Attributes that place an op in its model (names, arena offsets, output slot) and never reach
#: its kernel's code: the only attributes left out of a kernel's identity. Every other attribute
#: and property, present or future, is in it, so a new field can cost at most a duplicate
#: kernel, never a kernel shared by ops that compute different things.
PLACEMENT_ATTRIBUTES = frozenset(
    {
        "convir.name",
        "onnx.name",
        "convir.arena_offset",
        "convir.workspace_offset",
        "convir.output",
        "convir.choice",
    }
)


def kernel_identity(op: Operation, vector_width: int) -> str:
    """A digest of everything an emitter can read of `op`: its name, properties and attributes
    (but `PLACEMENT_ATTRIBUTES`), the full types of its operands and results (logical shapes
    included), which operands are compile-time constants (those are repacked), the ops of its
    regions, and the vector width. Equal digests mean one kernel can serve both ops."""
    text = "\n".join([f"vector_width={vector_width}", *_description(op)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def kernel_symbol(emitter: KernelEmitter, op: Operation, vector_width: int) -> str:
    """The symbol of `op`'s kernel: `emitter.key(op)` made unique by `kernel_identity`."""
    return f"{emitter.key(op)}_{kernel_identity(op, vector_width)}"


def _description(op: Operation) -> Iterator[str]:
    yield op.name
    for name, attr in sorted(op.properties.items()):
        yield f"property {name} = {attr}"
    for name, attr in sorted(op.attributes.items()):
        if name not in PLACEMENT_ATTRIBUTES:
            yield f"attribute {name} = {attr}"
    for operand in op.operands:
        constant = isinstance(operand.owner, conv.ConstantOp)
        yield f"operand {operand.type}{' constant' if constant else ''}"
    for result in op.results:
        yield f"result {result.type}"
    for region in op.regions:
        yield "region"
        for block in region.blocks:
            yield f"block {', '.join(str(arg.type) for arg in block.args)}"
            for inner in block.ops:
                yield from _description(inner)
