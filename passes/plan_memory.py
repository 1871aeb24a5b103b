"""`conv-plan-memory`: place every intermediate tensor and kernel workspace in one arena.

Expects a graph-form function whose convs carry an `algorithm` (run `conv-select-algorithm`
first). Produces, as discardable attributes:
- `convir.arena_offset = <bytes>` on each op whose result lives in the arena,
- `convir.workspace_offset = <bytes>` on each op whose kernel needs scratch memory,
- `convir.output = <index>` on each op that writes a graph output directly (no copy),
- `convir.arena_bytes = <bytes>` on the function.
The IR is otherwise unchanged. `conv.reshape` allocates nothing: its result aliases its operand.

Offsets come from a liveness-based first-fit allocator over the op order: a buffer lives from
the op that defines it to its last use (through reshape aliases); a workspace lives during its op
only. Two buffers overlap in memory only if their lifetimes do not, so no kernel ever reads and
writes the same bytes (the lowering marks kernel arguments `noalias`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape, volume

ALIGNMENT = 64


@dataclass(frozen=True)
class Interval:
    """A block of the arena and the op indices during which it is in use."""

    offset: int
    size: int
    first: int
    last: int


def first_fit(requests: list[tuple[int, int, int]]) -> tuple[list[int], int]:
    """Offsets for (size, first, last) requests in order; returns (offsets, arena bytes).

    Each request gets the lowest aligned offset where it overlaps no earlier request whose
    lifetime [first, last] intersects its own.
    """
    placed: list[Interval] = []
    offsets = []
    for size, first, last in requests:
        busy = sorted(
            (p for p in placed if p.first <= last and first <= p.last), key=lambda p: p.offset
        )
        offset = 0
        for block in busy:
            if offset + size <= block.offset:
                break
            offset = max(offset, _align(block.offset + block.size))
        placed.append(Interval(offset, size, first, last))
        offsets.append(offset)
    arena = max((p.offset + p.size for p in placed), default=0)
    return offsets, _align(arena)


def _align(value: int) -> int:
    return -(-value // ALIGNMENT) * ALIGNMENT


def plan_memory(function: func.FuncOp) -> int:
    """Annotate `function` with arena placements (see the module docstring); return arena bytes."""
    from lowering.conv_to_loops import emitter_for

    ops = [op for op in function.body.block.ops if not isinstance(op, func.ReturnOp)]
    position = {op: i for i, op in enumerate(ops)}
    returned = function.body.block.last_op
    assert isinstance(returned, func.ReturnOp)
    direct_outputs = _direct_outputs(returned)

    root: dict[SSAValue, SSAValue] = {}  # reshape results alias their operand's storage
    last_use: dict[SSAValue, int] = {}
    for op in ops:
        for operand in op.operands:
            storage = root.get(operand, operand)
            last_use[storage] = position[op]
        if isinstance(op, conv.ReshapeOp):
            root[op.output] = root.get(op.input, op.input)
    for value in returned.operands:
        last_use[root.get(value, value)] = len(ops)

    requests: list[tuple[int, int, int]] = []
    owners: list[tuple[Operation, str]] = []
    for op in ops:
        if isinstance(op, conv.ConstantOp | conv.ReshapeOp):
            continue
        result = op.results[0]
        if result in direct_outputs:
            op.attributes["convir.output"] = IntegerAttr(direct_outputs[result], i64)
        else:
            size = 4 * volume(tensor_shape(result))
            requests.append((size, position[op], last_use.get(result, position[op])))
            owners.append((op, "convir.arena_offset"))
        workspace = emitter_for(op).workspace_bytes(op)
        if workspace:
            requests.append((workspace, position[op], position[op]))
            owners.append((op, "convir.workspace_offset"))
    offsets, arena_bytes = first_fit(requests)
    for (op, name), offset in zip(owners, offsets, strict=True):
        op.attributes[name] = IntegerAttr(offset, i64)
    function.attributes["convir.arena_bytes"] = IntegerAttr(arena_bytes, i64)
    return arena_bytes


def _direct_outputs(returned: func.ReturnOp) -> dict[SSAValue, int]:
    """Returned values a kernel can write straight into the caller's output buffer."""
    outputs: dict[SSAValue, int] = {}
    for i, value in enumerate(returned.operands):
        producer = value.owner
        computed = isinstance(producer, Operation) and not isinstance(
            producer, conv.ConstantOp | conv.ReshapeOp
        )
        if computed and value not in outputs:
            outputs[value] = i
    return outputs


@dataclass(frozen=True)
class PlanMemoryPass(ModulePass):
    """Assign arena offsets to intermediates and workspaces of every function (see module doc)."""

    name = "conv-plan-memory"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in op.ops:
            if isinstance(function, func.FuncOp) and function.body.blocks:
                plan_memory(function)
