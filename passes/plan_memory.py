"""`conv-plan-memory`: place every intermediate tensor and kernel workspace in one arena.

Expects a graph-form function whose convs carry an `algorithm` (run `conv-select-algorithm`
first). Produces, as discardable attributes:
- `convir.arena_offset = <bytes>` on each op whose result lives in the arena,
- `convir.workspace_offset = <bytes>` on each op whose kernel needs scratch memory,
- `convir.output = <index>` on each op that writes a graph output directly (no copy),
- `convir.arena_bytes = <bytes>` on the function.
The IR is otherwise unchanged. `conv.reshape` allocates nothing: its result aliases its operand.
Nor does a concat marked `convir.in_place` (`conv-concat-in-place`): each input is placed at its
slice of the concat's result, and concats that share inputs share one buffer; the offset written
on each op is where its own result starts.

Offsets come from a liveness-based first-fit allocator over the op order: a buffer lives from
the first op that writes any value placed in it to the last op that reads one; a workspace lives
during its op only. Two buffers overlap in memory only if their lifetimes do not, so no kernel
ever reads and writes the same bytes (the lowering marks kernel arguments `noalias`; values that
share a buffer take disjoint byte ranges of it, so a kernel reading one and writing another
still touches no byte twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape, volume
from passes.concat_in_place import is_in_place

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
    storage = _shared_storage(ops, set(returned.operands))

    # A buffer lives until the last op that reads or writes any value placed in it.
    last_use: dict[SSAValue, int] = {}
    for op in ops:
        for value in (*op.operands, *op.results):
            last_use[storage.root(value)] = position[op]
    for value in returned.operands:
        last_use[storage.root(value)] = len(ops)

    requests: list[tuple[int, int, int]] = []
    owners: list[tuple[Operation, str, int]] = []
    placed: dict[SSAValue, int] = {}  # storage root -> index of its request
    for op in ops:
        if isinstance(op, conv.ConstantOp | conv.ReshapeOp):
            continue
        result = op.results[0]
        if result in direct_outputs:
            op.attributes["convir.output"] = IntegerAttr(direct_outputs[result], i64)
        else:
            root = storage.root(result)
            if root not in placed:
                placed[root] = len(requests)
                requests.append((storage.size(root), position[op], last_use[root]))
            owners.append((op, "convir.arena_offset", placed[root]))
        workspace = 0 if is_in_place(op) else emitter_for(op).workspace_bytes(op)
        if workspace:
            owners.append((op, "convir.workspace_offset", len(requests)))
            requests.append((workspace, position[op], position[op]))
    offsets, arena_bytes = first_fit(requests)
    for op, name, request in owners:
        within = storage.offset(op.results[0]) if name == "convir.arena_offset" else 0
        op.attributes[name] = IntegerAttr(offsets[request] + within, i64)
    function.attributes["convir.arena_bytes"] = IntegerAttr(arena_bytes, i64)
    return arena_bytes


class _SharedStorage:
    """Values that share one buffer, each at a fixed byte offset in it: a reshape's result and
    its operand (offset 0), an in-place concat's inputs and its result (each input at its
    slice). A weighted union-find: `root(v)` names the buffer, `offset(v)` is v's place in it."""

    def __init__(self) -> None:
        self.parent: dict[SSAValue, tuple[SSAValue, int]] = {}  # value -> (parent, offset in it)
        self._low: dict[SSAValue, int] = {}  # root -> lowest member offset (may be negative)
        self._high: dict[SSAValue, int] = {}  # root -> end of the highest member

    def _find(self, value: SSAValue) -> tuple[SSAValue, int]:
        offset = 0
        while value in self.parent:
            value, step = self.parent[value]
            offset += step
        return value, offset

    def root(self, value: SSAValue) -> SSAValue:
        return self._find(value)[0]

    def offset(self, value: SSAValue) -> int:
        """Bytes from the start of `value`'s buffer to `value`."""
        root, offset = self._find(value)
        return offset - self._low.get(root, 0)

    def size(self, root: SSAValue) -> int:
        return self._high.get(root, _bytes(root)) - self._low.get(root, 0)

    def join(self, whole: SSAValue, part: SSAValue, offset: int, op: Operation) -> None:
        """Place `part` at byte `offset` of `whole`; `op` (which asks for it) is named if the
        two already share a buffer at another offset."""
        whole_root, whole_offset = self._find(whole)
        part_root, part_offset = self._find(part)
        wanted = whole_offset + offset
        if part_root == whole_root:
            if part_offset != wanted:
                raise PassFailedException(
                    f"'{op.name}' places an operand at byte {offset} of its result, but another "
                    "op already gave it a different place; remove convir.in_place"
                )
            return
        low = min(self._low.get(whole_root, 0), wanted - part_offset + self._low.get(part_root, 0))
        high = max(
            self._high.get(whole_root, _bytes(whole_root)),
            wanted - part_offset + self._high.get(part_root, _bytes(part_root)),
        )
        self.parent[part_root] = (whole_root, wanted - part_offset)
        self._low.pop(part_root, None)
        self._high.pop(part_root, None)
        self._low[whole_root], self._high[whole_root] = low, high


def _shared_storage(ops: list[Operation], returned: set[SSAValue]) -> _SharedStorage:
    """Which values share a buffer; a concat marked in place must have only operands computed
    into the arena (not returned: those are written to the caller's buffer) and no returned
    result."""
    storage = _SharedStorage()
    for op in ops:
        if isinstance(op, conv.ReshapeOp):
            storage.join(op.input, op.output, 0, op)
        elif is_in_place(op):
            offset = 0
            for value in (*op.operands, *op.results):
                if not _computed(value) or value in returned:
                    raise PassFailedException(
                        f"'{op.name}' is marked convir.in_place but an operand or its result is "
                        "not an arena value computed by a kernel; remove convir.in_place"
                    )
            for value in op.operands:
                storage.join(op.results[0], value, offset, op)
                offset += _bytes(value)
    return storage


def _bytes(value: SSAValue) -> int:
    return 4 * volume(tensor_shape(value))


def _computed(value: SSAValue) -> bool:
    producer = value.owner
    return isinstance(producer, Operation) and not isinstance(
        producer, conv.ConstantOp | conv.ReshapeOp
    )


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
