"""Kernels of the ops that only move data: concat, slice, transpose, pad, pack, unpack,
interleave.

Each is one or a few `emit_map` copies or fills over boxes of the output; the access functions
say where each box reads from. Rows are vectorised when both sides are contiguous along the
innermost axis (all but transposes that move the last axis, and the NCHW <-> NCHWc changes).
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from lowering.kernels.access import Access, emit_map
from lowering.kernels.common import (
    OpKernel,
    Width,
    constant,
    kernel_shape,
    number_tag,
    shape_tag,
)


def _copy(values: list[SSAValue], width: Width) -> SSAValue:
    return values[0]


def _fill(value: float, space: Sequence[int], out: Access, vector_width: int) -> None:
    """Store `value` at every point of `space` through `out`."""
    if min(space, default=1) > 0:
        emit_map(space, out, [], lambda _, width: constant(value, width), vector_width)


class ConcatKernel(OpKernel):
    """`conv.concat`: one copy per input into its slab; keys like `concat_a1_1x64x8x8_1x32x8x8`."""

    def key(self, op: conv.ConcatOp) -> str:
        shapes = "_".join(shape_tag(tensor_shape(v)) for v in op.inputs)
        return f"concat_a{op.axis.value.data}_{shapes}"

    def body(self, op: conv.ConcatOp, args: list[SSAValue], vector_width: int) -> None:
        *sources, result = args
        axis, offset = op.axis.value.data, 0
        for source, value in zip(sources, op.inputs, strict=True):
            shape = tensor_shape(value)
            offsets = [offset if d == axis else 0 for d in range(len(shape))]
            emit_map(
                shape,
                Access.identity(result, len(shape), offsets),
                [Access.identity(source, len(shape))],
                _copy,
                vector_width,
            )
            offset += shape[axis]


class SliceKernel(OpKernel):
    """`conv.slice`: a copy from an offset box; keys like `slice_a1_0to32_1x64x28x28`."""

    def key(self, op: conv.SliceOp) -> str:
        axis, start, end = op.axis.value.data, op.start.value.data, op.end.value.data
        return f"slice_a{axis}_{start}to{end}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.SliceOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape = tensor_shape(op.output)
        axis, start = op.axis.value.data, op.start.value.data
        offsets = [start if d == axis else 0 for d in range(len(shape))]
        emit_map(
            shape,
            Access.identity(result, len(shape)),
            [Access.identity(source, len(shape), offsets)],
            _copy,
            vector_width,
        )


class TransposeKernel(OpKernel):
    """`conv.transpose`, iterating in output order; keys like `transpose_p0x2x1x3_1x3x4x5`."""

    def key(self, op: conv.TransposeOp) -> str:
        perm = "x".join(str(int(p)) for p in op.perm.iter_values())
        return f"transpose_p{perm}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.TransposeOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        perm = [int(p) for p in op.perm.iter_values()] or [0]
        shape = kernel_shape(op.output)
        # Input axis perm[i] moves with output axis i.
        axes = [perm.index(d) for d in range(len(perm))]
        emit_map(
            shape,
            Access.identity(result, len(shape)),
            [Access.following(source, axes)],
            _copy,
            vector_width,
        )


class PadKernel(OpKernel):
    """`conv.pad` with a constant (negative pads crop): the kept box is copied, the rest filled.

    The filled part is split into at most two boxes per axis (before and after the kept range
    of that axis, within the kept range of the axes before it), so every output element is
    written once. Keys like `pad_0x0x1x1x0x0x1x1_v0_1x3x8x8`.
    """

    def key(self, op: conv.PadOp) -> str:
        pads = "x".join(str(int(p)).replace("-", "m") for p in op.pads.iter_values())
        value = number_tag(op.value.value.data)
        return f"pad_{pads}_v{value}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.PadOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape, out_shape = kernel_shape(op.input), kernel_shape(op.output)
        rank = len(shape)
        pads = [int(p) for p in op.pads.iter_values()] or [0, 0]
        begins, ends = pads[:rank], pads[rank:]
        kept = [
            size + min(b, 0) + min(e, 0) for size, b, e in zip(shape, begins, ends, strict=True)
        ]
        value = float(op.value.value.data)
        if min(kept, default=1) <= 0:
            _fill(value, out_shape, Access.identity(result, rank), vector_width)
            return
        starts = [max(b, 0) for b in begins]
        emit_map(
            kept,
            Access.identity(result, rank, starts),
            [Access.identity(source, rank, [max(-b, 0) for b in begins])],
            _copy,
            vector_width,
        )
        for axis in range(rank):
            # Axes before `axis` span their kept range, axes after it the whole output.
            for low, high in ((0, starts[axis]), (starts[axis] + kept[axis], out_shape[axis])):
                space = [*kept[:axis], high - low, *out_shape[axis + 1 :]]
                offsets = [*starts[:axis], low, *[0] * (rank - axis - 1)]
                _fill(value, space, Access.identity(result, rank, offsets), vector_width)


class PackKernel(OpKernel):
    """`conv.pack` NCHW -> NCHWc, zero-filling the channels past C; keys like `pack_c8_1x3x8x8`."""

    def key(self, op: conv.PackOp) -> str:
        return f"pack_c{op.block.value.data}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.PackOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        n, channels, height, width = tensor_shape(op.input)
        block = op.block.value.data
        full, rest = divmod(channels, block)
        # Iteration space [N, blocks, H, W, lanes]; the input channel is block * c + lane.
        terms = (((0, 1),), ((1, block), (4, 1)), ((2, 1),), ((3, 1),))
        for first, blocks, lanes in ((0, full, block), (full, 1, rest)):
            if blocks == 0 or lanes == 0:
                continue
            emit_map(
                [n, blocks, height, width, lanes],
                Access.identity(result, 5, [0, first, 0, 0, 0]),
                [Access(source, terms, (0, first * block, 0, 0))],
                _copy,
                vector_width,
            )
        if rest:
            padding = Access.identity(result, 5, [0, full, 0, 0, rest])
            _fill(0.0, [n, 1, height, width, block - rest], padding, vector_width)


class UnpackKernel(OpKernel):
    """`conv.unpack` NCHWc -> NCHW, dropping padded channels; keys like `unpack_c3_1x1x8x8x8`."""

    def key(self, op: conv.UnpackOp) -> str:
        channels = tensor_shape(op.output)[1]
        return f"unpack_c{channels}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.UnpackOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        n, _, height, width, block = tensor_shape(op.input)
        channels = tensor_shape(op.output)[1]
        full, rest = divmod(channels, block)
        # Iteration space [N, blocks, lanes, H, W]: W innermost, so the stores are contiguous.
        out_terms = (((0, 1),), ((1, block), (2, 1)), ((3, 1),), ((4, 1),))
        for first, blocks, lanes in ((0, full, block), (full, 1, rest)):
            if blocks == 0 or lanes == 0:
                continue
            emit_map(
                [n, blocks, lanes, height, width],
                Access(result, out_terms, (0, first * block, 0, 0)),
                [Access.following(source, [0, 1, 3, 4, 2], [0, first, 0, 0, 0])],
                _copy,
                vector_width,
            )


class InterleaveKernel(OpKernel):
    """`conv.interleave`: one strided copy per phase into its output rows and columns.

    On NCHWc the innermost axis is the lane, so each copy moves whole vectors; on NCHW the
    stores along a row are strided (scalar). Keys like `interleave_s2x2_1x2x16x16x16`.
    """

    def key(self, op: conv.InterleaveOp) -> str:
        strides = "x".join(str(int(s)) for s in op.strides.iter_values())
        return f"interleave_s{strides}_{shape_tag(tensor_shape(op.output))}"

    def body(self, op: conv.InterleaveOp, args: list[SSAValue], vector_width: int) -> None:
        *phases, result = args
        shape = tensor_shape(op.output)
        rank = len(shape)
        stride_h, stride_w = (int(v) for v in op.strides.iter_values())
        lanes = tuple(((d, 1),) for d in range(4, rank))
        terms = (((0, 1),), ((1, 1),), ((2, stride_h),), ((3, stride_w),), *lanes)
        phases_w = min(stride_w, shape[3])
        for index, (phase, value) in enumerate(zip(phases, op.inputs, strict=True)):
            first_h, first_w = divmod(index, phases_w)
            out = Access(result, terms, (0, 0, first_h, first_w, *[0] * (rank - 4)))
            emit_map(tensor_shape(value), out, [Access.identity(phase, rank)], _copy, vector_width)
