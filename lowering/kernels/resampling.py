"""Kernels of `conv.reduce` (mean, max or sum over any axes) and `conv.resize` (nearest or
bilinear resampling of H and W).

Both take NCHW or NCHWc tensors. A reduction that keeps the innermost axis (the X lanes of a
block, or W) is vectorised along it, each lane an independent reduction; one over the innermost
axis accumulates in a vector and a scalar for the tail, folded at the end. A resize maps every
output row and column to input coordinates with the float32 operations of
`convir.reference.resize_source_coordinates`, in the same order, so it picks the same nearest
pixels; on NCHWc each output pixel is one vector of X lanes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.dialects import arith, math, memref
from xdsl.dialects.builtin import IndexType, f32, i64
from xdsl.ir import SSAValue

from convir import reference
from convir.dialects import conv
from convir.dialects.shapes import is_blocked, tensor_shape, volume
from lowering.emit import Index, f32_constant, loop
from lowering.kernels.common import (
    OpKernel,
    Width,
    along_row,
    constant,
    float_op,
    ints_tag,
    is_threaded,
    iterate,
    kernel_shape,
    load,
    multiply_add,
    number_tag,
    reduce_lanes,
    shape_tag,
    store,
    vector_split,
    widen,
)

Element = Callable[[list[Index], Width], SSAValue]
"""The value(s) at a point of the reduced box, `width` lanes along its last axis."""


def _ints(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


class ReduceKernel(OpKernel):
    """`conv.reduce`: mean, max or sum over `axes`, exactly as `convir.reference.reduce` up to
    float32 summation. Keys like `reduce_mean_a1_keep_1x64x7x7`.

    A max starts from the box's first element, so it never invents a value.
    """

    def key(self, op: conv.ReduceOp) -> str:
        axes = _ints(op.axes.iter_values())
        keep = "_keep" if op.keepdims is not None else ""
        shape = shape_tag(tensor_shape(op.input))
        return f"reduce_{op.kind.data}_a{'x'.join(map(str, axes))}{keep}_{shape}"

    def body(self, op: conv.ReduceOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape = kernel_shape(op.input)
        axes = _ints(op.axes.iter_values())
        kind = op.kind.data
        combine = "max" if kind == "max" else "add"
        kept = [d for d in range(len(shape)) if d not in axes]
        box = [shape[d] for d in axes]
        keepdims = op.keepdims is not None
        scale = 1.0 / volume(box) if kind == "mean" else None

        def source_point(outer: Sequence[Index], inner: Sequence[Index]) -> list[Index]:
            point: list[Index] = [0] * len(shape)
            for axis, iv in zip(kept, outer, strict=True):
                point[axis] = iv
            for axis, iv in zip(axes, inner, strict=True):
                point[axis] = iv
            return point

        def result_point(outer: Sequence[Index]) -> list[Index]:
            if not keepdims:
                return list(outer) or [0]
            point: list[Index] = [0] * len(shape)
            for axis, iv in zip(kept, outer, strict=True):
                point[axis] = iv
            return point

        def finish(total: SSAValue, width: Width) -> SSAValue:
            if scale is None:
                return total
            return arith.MulfOp(total, constant(scale, width)).result

        threaded = is_threaded(volume(shape))
        last = len(shape) - 1
        if last in axes:
            # The innermost axis is reduced: a vector (and tail) accumulator per output element.
            with iterate([shape[d] for d in kept], threaded) as outer:
                element: Element = lambda inner, width: load(  # noqa: E731
                    source, source_point(outer, inner), width
                )
                first = load(source, source_point(outer, [0] * len(axes)), None)
                init = first if kind == "max" else constant(0.0, None)
                total = _reduce_box(box, element, combine, init, vector_width)
                store(finish(total, None), result, result_point(outer))
            return

        # The innermost axis is kept: vectorise along it, each lane its own reduction.
        with iterate([shape[d] for d in kept[:-1]], threaded) as outer:

            def lanes(column: Index, width: Width) -> None:
                point = [*outer, column]
                first = load(source, source_point(point, [0] * len(axes)), width)
                init = first if kind == "max" else constant(0.0, width)
                total = _accumulate(
                    box,
                    lambda inner: load(source, source_point(point, inner), width),
                    combine,
                    [init],
                )[0]
                store(finish(total, width), result, result_point(point))

            along_row(0, shape[last], vector_width, lanes)


def _accumulate(
    extents: Sequence[int],
    value: Callable[[list[Index]], SSAValue],
    kind: str,
    accumulators: list[SSAValue],
    inner: Callable[[list[Index], list[SSAValue]], list[SSAValue]] | None = None,
) -> list[SSAValue]:
    """Loops over the box `extents` carrying `accumulators`; at each point, `inner(ivs, carried)`
    (default: combine the one accumulator with `value(ivs)` by `kind`) gives the new values."""

    def step(ivs: list[Index], carried: list[SSAValue]) -> list[SSAValue]:
        if inner is not None:
            return inner(ivs, carried)
        return [float_op(kind, carried[0], value(ivs))]

    if not extents:
        return step([], accumulators)
    if extents[0] == 1:
        return _accumulate(
            extents[1:], value, kind, accumulators, lambda ivs, c: step([0, *ivs], c)
        )
    with loop(0, extents[0], carry=accumulators) as outer:
        outer.yield_(
            *_accumulate(
                extents[1:],
                value,
                kind,
                list(outer.carried),
                lambda ivs, c, iv=outer.iv: step([iv, *ivs], c),
            )
        )
    return list(outer.results)


def _reduce_box(
    extents: Sequence[int], element: Element, kind: str, init: SSAValue, vector_width: int
) -> SSAValue:
    """`init` (an f32) combined by `kind` with every element of the box `extents`, the last
    axis read in vectors of `vector_width` (then a scalar tail) into a vector accumulator."""
    length = extents[-1]
    main = vector_split(length, vector_width)
    accumulators = [widen(init, vector_width), init] if main else [init]

    def row(ivs: list[Index], carried: list[SSAValue]) -> list[SSAValue]:
        updated = []
        segments = [(0, main, vector_width, vector_width)] if main else []
        segments.append((main, length, 1, None))
        for (lower, upper, step, lanes), acc in zip(segments, carried, strict=True):
            if upper <= lower:
                updated.append(acc)
                continue
            with loop(lower, upper, step, carry=[acc]) as columns:
                value = element([*ivs, columns.iv], lanes)
                columns.yield_(float_op(kind, columns.carried[0], value))
            updated.append(columns.results[0])
        return updated

    totals = _accumulate(extents[:-1], lambda _: init, kind, accumulators, row)
    if main:
        return float_op(kind, reduce_lanes(totals[0], kind), totals[1])
    return totals[0]


class ResizeKernel(OpKernel):
    """`conv.resize`: nearest or bilinear resampling of H and W, as `convir.reference.resize`.

    Threaded over images, channels (blocks) and output rows; each output row computes its input
    row(s) once, each output pixel its input column(s). Coordinates of Python-int positions are
    folded at compile time by the reference's own functions. Keys like
    `resize_linear_pytorch_half_pixel_s2x2_1x8x28x28x8_to_56x56`.
    """

    def key(self, op: conv.ResizeOp) -> str:
        scales = "x".join(number_tag(s) for s in op.scales.iter_values())
        parts = [f"resize_{op.mode.data}", op.coordinate_transformation_mode.data]
        if op.nearest_mode is not None:
            parts.append(op.nearest_mode.data)
        out_hw = ints_tag(tensor_shape(op.output)[2:4])
        parts.append(f"s{scales}_{shape_tag(tensor_shape(op.input))}_to_{out_hw}")
        return "_".join(parts)

    def body(self, op: conv.ResizeOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape, out_shape = tensor_shape(op.input), tensor_shape(op.output)
        blocked = is_blocked(shape)
        lanes: Width = shape[4] if blocked else None
        n, channels = shape[:2]
        maps = [
            _AxisMap(out_shape[2 + axis], shape[2 + axis], float(scale), op)
            for axis, scale in enumerate(op.scales.iter_values())
        ]
        linear = op.mode.data == "linear"
        columns = _column_tables(maps[1], linear)
        cost = (12 if linear else 4) * (1 if blocked else 4)
        threaded = is_threaded(volume(out_shape) * cost)
        with iterate([n, channels, out_shape[2]], threaded) as (batch, channel, out_row):

            def pixel(row: Index, column: Index) -> list[Index]:
                return [batch, channel, row, column, *([0] if blocked else [])]

            def column_table(table: int, out_column: SSAValue) -> SSAValue:
                return load(columns[table], [out_column], None)

            if not linear:
                row = maps[0].nearest(out_row)
                with loop(0, out_shape[3]) as out_column:
                    column = _to_index(column_table(0, out_column.iv))
                    value = load(source, pixel(row, column), lanes)
                    store(value, result, pixel(out_row, out_column.iv))
                return
            top, bottom, dy = maps[0].linear(out_row)
            dy = widen(dy, lanes)
            with loop(0, out_shape[3]) as out_column:
                left, right = (_to_index(column_table(t, out_column.iv)) for t in (0, 1))
                dx = widen(column_table(2, out_column.iv), lanes)

                def interpolated(row: Index) -> SSAValue:
                    a = load(source, pixel(row, left), lanes)
                    return _lerp(a, load(source, pixel(row, right), lanes), dx)

                upper, lower = interpolated(top), interpolated(bottom)
                store(_lerp(upper, lower, dy), result, pixel(out_row, out_column.iv))


def _column_tables(columns: _AxisMap, linear: bool) -> list[SSAValue]:
    """Stack tables of what each output column reads, filled once before the pixel loops (which
    would otherwise redo a division and roundings per pixel and channel block): the input column
    (nearest), or the left and right input columns and the right one's weight (linear). Indices
    are stored as f32, exact below 2**24."""
    count = 3 if linear else 1
    tables = [memref.AllocaOp.get(f32, 64, [columns.out_size]).memref for _ in range(count)]
    with loop(0, columns.out_size) as out_column:
        if linear:
            left, right, weight = columns.linear(out_column.iv)
            values = [_to_float(left), _to_float(right), weight]
        else:
            values = [_to_float(columns.nearest(out_column.iv))]
        for table, value in zip(tables, values, strict=True):
            store(value, table, [out_column.iv])
    return tables


def _lerp(a: SSAValue, b: SSAValue, weight: SSAValue) -> SSAValue:
    """a + weight * (b - a), any width."""
    return multiply_add(weight, arith.SubfOp(b, a).result, a)


class _AxisMap:
    """Output position -> input position(s) along one spatial axis of a `conv.resize`."""

    def __init__(self, out_size: int, in_size: int, scale: float, op: conv.ResizeOp) -> None:
        self.out_size, self.in_size, self.scale = out_size, in_size, np.float32(scale)
        self.coordinate_mode = op.coordinate_transformation_mode.data
        self.nearest_mode = op.nearest_mode.data if op.nearest_mode is not None else ""

    def coordinate(self, position: SSAValue) -> SSAValue:
        """The input coordinate (f32) of output `position`, as the reference computes it."""
        x = arith.SIToFPOp(arith.IndexCastOp(position, i64).result, f32).result
        half = f32_constant(0.5)
        scale = f32_constant(float(self.scale))
        match self.coordinate_mode:
            case "asymmetric":
                return arith.DivfOp(x, scale).result
            case "tf_half_pixel_for_nn":
                return arith.DivfOp(arith.AddfOp(x, half), scale).result
            case "align_corners" | "pytorch_half_pixel" if self.out_size == 1:
                return f32_constant(0.0)
            case "align_corners":
                stretched = arith.MulfOp(x, f32_constant(float(np.float32(self.in_size - 1))))
                return arith.DivfOp(stretched, f32_constant(float(self.out_size - 1))).result
        shifted = arith.DivfOp(arith.AddfOp(x, half), scale).result
        if self.coordinate_mode == "half_pixel_symmetric":
            offset = reference.resize_symmetric_offset(self.out_size, self.in_size, self.scale)
            shifted = arith.AddfOp(f32_constant(float(offset)), shifted).result
        return arith.SubfOp(shifted, half).result

    def _constant_coordinate(self, position: int) -> np.float32:
        coordinates = reference.resize_source_coordinates(
            self.out_size, self.in_size, float(self.scale), self.coordinate_mode
        )
        return coordinates[position]

    def nearest(self, position: Index) -> Index:
        """The input index output `position` copies."""
        if isinstance(position, int):
            coordinate = np.array([self._constant_coordinate(position)], np.float32)
            chosen = reference.resize_nearest_indices(coordinate, self.in_size, self.nearest_mode)
            return int(chosen[0])
        x = self.coordinate(position)
        match self.nearest_mode:
            case "floor":
                chosen = math.FloorOp(x).result
            case "ceil":
                chosen = math.CeilOp(x).result
            case _:
                floor = math.FloorOp(x).result
                fraction = arith.SubfOp(x, floor).result
                predicate = "ogt" if self.nearest_mode == "round_prefer_floor" else "oge"
                up = arith.CmpfOp(fraction, f32_constant(0.5), predicate).result
                step = arith.SelectOp(up, f32_constant(1.0), f32_constant(0.0)).result
                chosen = arith.AddfOp(floor, step).result
        return _to_index(self._clamp(chosen))

    def linear(self, position: Index) -> tuple[Index, Index, SSAValue]:
        """The two input indices around output `position` and the weight of the second."""
        if isinstance(position, int):
            coordinate = min(max(float(self._constant_coordinate(position)), 0.0), self.in_size - 1)
            low = int(np.floor(coordinate))
            weight = np.float32(coordinate) - np.float32(low)
            return low, min(low + 1, self.in_size - 1), f32_constant(float(weight))
        clamped = self._clamp(self.coordinate(position))
        low = math.FloorOp(clamped).result
        weight = arith.SubfOp(clamped, low).result
        high = arith.MinimumfOp(
            arith.AddfOp(low, f32_constant(1.0)).result, f32_constant(float(self.in_size - 1))
        ).result
        return _to_index(low), _to_index(high), weight

    def _clamp(self, value: SSAValue) -> SSAValue:
        lowest = arith.MaximumfOp(value, f32_constant(0.0)).result
        return arith.MinimumfOp(lowest, f32_constant(float(self.in_size - 1))).result


def _to_float(value: Index) -> SSAValue:
    """An `index` as an f32."""
    if isinstance(value, int):
        return f32_constant(float(value))
    return arith.SIToFPOp(arith.IndexCastOp(value, i64).result, f32).result


def _to_index(value: SSAValue) -> SSAValue:
    """A non-negative integral f32 as an `index`."""
    return arith.IndexCastOp(arith.FPToSIOp(value, i64).result, IndexType()).result
