"""`conv-concat-in-place`: let a concat's producers write straight into its buffer.

Expects graph-form IR (any layout; run it just before `conv-plan-memory`). Produces the same IR
with the unit attribute `convir.in_place` on every `conv.concat` whose copy can be skipped: each
input then lives inside the concat's result, at the byte offset of its slice, so the op that
computes the input writes it there and the concat itself does nothing. `conv-plan-memory` gives
such inputs their offsets inside the concat's storage; `convert-conv-to-loops` emits no call.

A slice along `axis` is one contiguous run of the result only when every dimension before the
axis is 1: channels of a batch-1 tensor, NCHW or NCHWc (`[1, C/X, H, W, X]`: the concat's inputs
are already whole blocks, `conv-convert-layout` keeps any other concat in NCHW, where the slice is
contiguous too). A value has a single place in memory, so concats that share an input are taken
together: they go in place only if, ordered by length, each one's inputs are a prefix of the
next one's (DenseNet's chain: every layer's concat repeats the previous inputs and appends one),
and then all of them share the longest one's buffer with nothing copied. Everything else keeps
its copy: a leading dimension other than 1, an input that is a function argument, a constant, a
reshape or concat result (already placed elsewhere), an input repeated within one concat, a
value the function returns (written to the caller's buffer), and concats that share inputs in
any other pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, UnitAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape

IN_PLACE = "convir.in_place"


def is_in_place(op: Operation) -> bool:
    """Whether `op` is a concat whose inputs were placed inside its result (no copy)."""
    return isinstance(op, conv.ConcatOp) and IN_PLACE in op.attributes


def concat_in_place(function: func.FuncOp) -> int:
    """Mark the concats of `function` that can skip their copy (module doc); return how many."""
    block = function.body.block
    returned = set(block.last_op.operands) if isinstance(block.last_op, func.ReturnOp) else set()
    concats = [
        op
        for op in block.ops
        if isinstance(op, conv.ConcatOp)
        and prod(tensor_shape(op.output)[: op.axis.value.data]) == 1
        and op.output not in returned
    ]
    marked = 0
    for group in _sharing_inputs(concats):
        if _placeable(group, returned):
            for op in group:
                op.attributes[IN_PLACE] = UnitAttr()
            marked += len(group)
    return marked


def _sharing_inputs(concats: list[conv.ConcatOp]) -> list[list[conv.ConcatOp]]:
    """`concats` split into groups, two concats in one group when a chain of shared inputs
    links them; groups and their members in op order."""
    group_of: dict[SSAValue, int] = {}
    groups: list[list[conv.ConcatOp]] = []
    for op in concats:
        joined = sorted({group_of[v] for v in op.inputs if v in group_of})
        target = joined[0] if joined else len(groups)
        if not joined:
            groups.append([])
        for other in joined[1:]:
            groups[target].extend(groups[other])
            for member in groups[other]:
                group_of.update(dict.fromkeys(member.inputs, target))
            groups[other] = []
        groups[target].append(op)
        group_of.update(dict.fromkeys(op.inputs, target))
    return [group for group in groups if group]


def _placeable(group: list[conv.ConcatOp], returned: set[SSAValue]) -> bool:
    """Whether every input of `group` can take one fixed slice of the longest concat's buffer."""
    longest = max(group, key=lambda op: len(op.inputs))
    inputs = list(longest.inputs)
    if len(set(inputs)) != len(inputs):
        return False
    if any(list(op.inputs) != inputs[: len(op.inputs)] for op in group):
        return False
    return all(_computed_in_arena(value, returned) for value in inputs)


def _computed_in_arena(value: SSAValue, returned: set[SSAValue]) -> bool:
    """Whether `value` is computed by a kernel into storage the planner is free to place."""
    producer = value.owner
    return (
        isinstance(producer, Operation)
        and not isinstance(producer, conv.ConstantOp | conv.ReshapeOp | conv.ConcatOp)
        and value not in returned
    )


@dataclass(frozen=True)
class ConcatInPlacePass(ModulePass):
    """Mark concats whose inputs can be written into their result (see the module doc)."""

    name = "conv-concat-in-place"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in op.ops:
            if isinstance(function, func.FuncOp) and function.body.blocks:
                concat_in_place(function)
