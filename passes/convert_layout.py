"""`conv-convert-layout{block=X}`: move convolutions and what follows them to NCHWc.

Expects graph-form IR on NCHW tensors. Produces the same graph where every convertible conv, and
every layout-agnostic op downstream of one, works on `[N, ceil(C/X), H, W, X]` tensors: X
channels (one SIMD vector) contiguous, so kernels load whole vectors. Invariants: function
signatures, results and every op that needs NCHW stay as they were; `conv.pack` is inserted once
per NCHW value a converted op reads, `conv.unpack` once per converted value an NCHW op (or the
function's return) reads, and a `conv.pack` of a `conv.unpack` (or the reverse) cancels.

What converts (`X` = block):
- `conv.conv2d` with group 1, depthwise (group = C = O) or whole blocks per group
  (C/group and O/group multiples of X). Weights and bias keep their logical shapes (kernels
  repack them at compile time); padded input lanes are never read, so their values do not matter.
  A group-1 conv with fewer input channels than X whose input has no NCHWc twin (the 3-channel
  stem) keeps its NCHW input and writes NCHWc (`reads_nchw_input`): no pack of the image.
- `conv.pool`, `conv.global_pool`, `conv.activation` whose input is already NCHWc.
- `conv.interleave` whose phases are all NCHWc or constants (a transposed conv's phases).
- `conv.binary` between an NCHWc operand and either another NCHWc operand or a constant that is
  per-channel (`[C, 1, 1]`, `[1, C, 1, 1]`: repacked here to `[1, C/X, 1, 1, X]`) or a scalar.
- `conv.resize`, and `conv.reduce` with `keepdims` over axes other than the channels, whose
  input is already NCHWc.
- `conv.concat` on channels of NCHWc operands, all but the last a whole number of blocks
  (otherwise channels would have to move across lanes: the concat stays NCHW).

Channel counts that are not multiples of X are padded; padded lanes hold unspecified values and
nothing reads them (convs loop over logical input channels, unpack drops them, concat refuses to
move them). The option `block` defaults to the target's vector width in floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, DenseResourceAttr, ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from convir import reference
from convir.dialects import conv
from convir.dialects.shapes import blocked_shape, f32_tensor, tensor_shape, volume
from convir.target import Target
from passes.graph_rewriting import constant_value, new_constant


def convertible_conv(op: conv.Conv2DOp, block: int) -> bool:
    """Whether the NCHWc kernels handle this conv's grouping at block `block`."""
    if len(tensor_shape(op.input)) != 4 or len(tensor_shape(op.output)) != 4:
        return False
    channels, outputs = tensor_shape(op.input)[1], tensor_shape(op.weight)[0]
    group = op.group.value.data
    if group == 1 or group == channels == outputs:
        return True
    return (channels // group) % block == 0 and (outputs // group) % block == 0


def reduction_keeps_channels(op: conv.ReduceOp) -> bool:
    """Whether a `conv.reduce` of an image reads the same on NCHWc: it keeps its dimensions and
    leaves the channel axis alone, so every lane of a block is reduced on its own."""
    rank = len(tensor_shape(op.input))
    return rank == 4 and op.keepdims is not None and 1 not in op.axes.iter_values()


def reads_nchw_input(channels: int, group: int, block: int) -> bool:
    """Whether a convertible conv keeps its NCHW input and only writes NCHWc: group 1 and fewer
    input channels than one block (the 3-channel stem of an image model). Packing would spread
    C < X channels over X-lane vectors, X/C times the bytes, for the conv to read back one lane
    at a time; the conv reads the NCHW planes directly instead (ONNX Runtime does the same)."""
    return group == 1 and channels < block


class _LayoutConverter:
    """One walk over a graph block, keeping the NCHWc twin of every NCHW value it has made."""

    def __init__(self, ctx: Context, block: int) -> None:
        self.ctx = ctx
        self.block = block
        self.twins: dict[SSAValue, SSAValue] = {}
        self.converted: list[tuple[Operation, Operation]] = []

    def run(self, body: Block) -> None:
        for op in list(body.ops):
            if isinstance(op, conv.PackOp) and op.block.value.data == self.block:
                self._cancel_pack(op)
            elif isinstance(op, conv.UnpackOp) and tensor_shape(op.input)[4] == self.block:
                self.twins.setdefault(op.output, op.input)
            else:
                new = self._convert(op)
                if new is not None:
                    new.results[0].name_hint = op.results[0].name_hint
                    Rewriter.insert_op(new, InsertPoint.before(op))
                    self.twins[op.results[0]] = new.results[0]
                    self.converted.append((op, new))
        for old, new in self.converted:
            if old.results[0].uses:
                channels = tensor_shape(old.results[0])[1]
                unpack = conv.UnpackOp(new.results[0], channels)
                Rewriter.insert_op(unpack, InsertPoint.after(new))
                old.results[0].replace_all_uses_with(unpack.output)
        for old, _ in reversed(self.converted):
            Rewriter.erase_op(old)
        for op in reversed(list(body.ops)):
            if isinstance(op, conv.PackOp | conv.UnpackOp) and not op.output.uses:
                Rewriter.erase_op(op)

    def _cancel_pack(self, op: conv.PackOp) -> None:
        twin = self.twins.get(op.input)
        if twin is not None and twin.type == op.output.type:
            op.output.replace_all_uses_with(twin)
        else:
            self.twins.setdefault(op.input, op.output)

    def _packed(self, value: SSAValue) -> SSAValue:
        """The NCHWc twin of `value`, packing it right after its definition if there is none."""
        twin = self.twins.get(value)
        if twin is None:
            pack = conv.PackOp(value, self.block)
            owner = value.owner
            if isinstance(owner, Block):
                Rewriter.insert_op(pack, InsertPoint.at_start(owner))
            else:
                Rewriter.insert_op(pack, InsertPoint.after(owner))
            twin = self.twins[value] = pack.output
        return twin

    def _convert(self, op: Operation) -> Operation | None:
        """The NCHWc version of `op`, not yet inserted, or None when `op` stays NCHW."""
        if isinstance(op, conv.Conv2DOp):
            if not convertible_conv(op, self.block):
                return None
            channels = tensor_shape(op.input)[1]
            keep = op.input not in self.twins and reads_nchw_input(
                channels, op.group.value.data, self.block
            )
            operands = [op.input if keep else self._packed(op.input), op.weight]
            operands += [op.bias] if op.bias is not None else []
            operands += [self._packed(op.residual)] if op.residual is not None else []
            return self._rebuilt(op, operands)
        if isinstance(op, conv.PoolOp | conv.GlobalPoolOp | conv.ActivationOp):
            twin = self.twins.get(op.input)
            return None if twin is None else self._rebuilt(op, [twin])
        if isinstance(op, conv.BinaryOp):
            return self._convert_binary(op)
        if isinstance(op, conv.ConcatOp):
            return self._convert_concat(op)
        if isinstance(op, conv.ResizeOp) or (
            isinstance(op, conv.ReduceOp) and reduction_keeps_channels(op)
        ):
            twin = self.twins.get(op.input)
            return None if twin is None else self._rebuilt(op, [twin])
        if isinstance(op, conv.InterleaveOp):
            return self._convert_interleave(op)
        return None

    def _convert_interleave(self, op: conv.InterleaveOp) -> Operation | None:
        """NCHWc when every phase is NCHWc already or a constant (a phase no tap reaches: it is
        packed here, at compile time, rather than by a `conv.pack` at run time)."""
        if not any(value in self.twins for value in op.inputs):
            return None
        phases = []
        for value in op.inputs:
            twin = self.twins.get(value)
            if twin is None:
                array = constant_value(self.ctx, value)
                if array is None:
                    return None
                owner = value.owner
                assert isinstance(owner, conv.ConstantOp)
                packed = reference.pack(np.asarray(array, np.float32), self.block)
                constant = new_constant(self.ctx, f"{_handle(owner)}_nchwc", packed)
                Rewriter.insert_op(constant, InsertPoint.after(owner))
                twin = constant.output
            phases.append(twin)
        return self._rebuilt(op, phases)

    def _convert_binary(self, op: conv.BinaryOp) -> Operation | None:
        shape = tensor_shape(op.output)
        if len(shape) != 4 or not any(v in self.twins for v in op.operands):
            return None
        operands = []
        for value in op.operands:
            twin = self.twins.get(value)
            if twin is None or tensor_shape(value)[1] != shape[1]:
                twin = self._per_channel_constant(value, shape[1])
            if twin is None:
                return None
            operands.append(twin)
        return self._rebuilt(op, operands)

    def _per_channel_constant(self, value: SSAValue, channels: int) -> SSAValue | None:
        """A constant broadcast per channel (or a scalar) as an operand of NCHWc ops, or None."""
        owner = value.owner
        if not isinstance(owner, conv.ConstantOp):
            return None
        shape = tensor_shape(value)
        if volume(shape) == 1:
            return value
        if len(shape) > 4 or (1,) * (4 - len(shape)) + tuple(shape) != (1, channels, 1, 1):
            return None
        array = constant_value(self.ctx, value)
        if array is None:  # printed without its blob: it cannot be repacked, the op stays NCHW
            return None
        array = array.reshape(1, channels, 1, 1)
        packed = reference.pack(np.asarray(array, np.float32), self.block)
        constant = new_constant(self.ctx, f"{_handle(owner)}_nchwc", packed)
        Rewriter.insert_op(constant, InsertPoint.after(owner))
        return constant.output

    def _convert_concat(self, op: conv.ConcatOp) -> Operation | None:
        if op.axis.value.data != 1 or len(tensor_shape(op.output)) != 4:
            return None
        twins = [self.twins.get(v) for v in op.inputs]
        if any(t is None for t in twins):
            return None
        if any(tensor_shape(v)[1] % self.block for v in list(op.inputs)[:-1]):
            return None
        blocks = sum(tensor_shape(t)[1] for t in twins)
        n, _, h, w = tensor_shape(op.output)
        return type(op).create(
            operands=twins,
            result_types=[f32_tensor((n, blocks, h, w, self.block))],
            properties=dict(op.properties),
            attributes=dict(op.attributes),
        )

    def _rebuilt(self, op: Operation, operands: list[SSAValue]) -> Operation:
        """`op` on NCHWc operands: same properties, result blocked."""
        return type(op).create(
            operands=operands,
            result_types=[f32_tensor(blocked_shape(tensor_shape(op.results[0]), self.block))],
            properties=dict(op.properties),
            attributes=dict(op.attributes),
        )


def _handle(op: conv.ConstantOp) -> str:
    value = op.value
    if isinstance(value, DenseResourceAttr):
        return value.resource_handle.data
    assert isinstance(value, DenseIntOrFPElementsAttr)
    return "constant"


def convert_layout(ctx: Context, module: ModuleOp, block: int) -> None:
    """Convert every function of `module` to NCHWc with `block` channels per vector."""
    if block < 1:
        raise PassFailedException(f"conv-convert-layout: option block must be >= 1, got {block}")
    for op in module.walk():
        if isinstance(op, func.FuncOp) and op.body.blocks:
            _LayoutConverter(ctx, block).run(op.body.block)


@dataclass(frozen=True)
class ConvertLayoutPass(ModulePass):
    """NCHW -> NCHWc for convs and the layout-agnostic ops after them (see module doc).

    Options: `block` (channels per NCHWc block; 0 = the target's vector width) and `target`
    (`host` or a preset name of `convir.target`, used for the default block).
    """

    name = "conv-convert-layout"

    block: int = 0
    target: str = "host"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        block = self.block
        if block == 0:
            try:
                target = Target.host() if self.target == "host" else Target.preset(self.target)
            except ValueError as error:
                raise PassFailedException(f"conv-convert-layout: option target: {error}") from None
            block = target.vector_width
        convert_layout(ctx, op, block)
