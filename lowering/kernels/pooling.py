"""Kernels of `conv.pool` (max/avg windows, ONNX semantics) and `conv.global_pool`.

Both take NCHW or NCHWc ([N, C/X, H, W, X]) inputs. On NCHWc every pixel is one
`vector<X x f32>` (the X channels of a block), so the loops are those of NCHW with the lanes
moved from W to the channels; padded lanes are pooled like the others and never mixed into a
logical channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import DenseArrayBase
from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.shapes import is_blocked, tensor_shape, volume
from lowering.emit import Index, affine, loop
from lowering.kernels.common import (
    OpKernel,
    Width,
    WindowRun,
    along_row,
    constant,
    float_op,
    ints_tag,
    is_threaded,
    iterate,
    load,
    reduce_rows,
    shape_tag,
    span,
    store,
    window_runs,
)

_LOWEST_F32 = float(np.finfo(np.float32).min)

Pixel = Callable[[Index, Index], list[Index]]
"""The memref indices of (row, column) in the plane being pooled: [n, c, row, column] in NCHW,
[n, block, row, column, 0] (the first of X lanes) in NCHWc."""


def _pixel(plane: list[Index], blocked: bool) -> Pixel:
    """How `plane`'s pixels are indexed in an NCHW (or, `blocked`, NCHWc) memref."""
    lanes = [0] if blocked else []
    return lambda row, column: [*plane, row, column, *lanes]


def _ints(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.iter_values())


def _position(output: Index, stride: int, offset: int) -> Index:
    """output * stride + offset, folded when `output` is a Python int."""
    if isinstance(output, int):
        return output * stride + offset
    return affine([(output, stride)], offset)


class PoolKernel(OpKernel):
    """`conv.pool`: max or average over KH×KW windows, exactly as `convir.reference.pool2d`.

    Output rows and columns are split into runs whose windows have the same in-bounds taps
    (`window_runs`): the interior is one loop with every tap unrolled and unchecked, each border
    row or column is its own straight-line code with only its valid taps. An average therefore
    divides by a compile-time count (taps inside the input, or inside the padded input with
    count_include_pad; never the part of a ceil_mode window past the end padding). In NCHW, with
    stride 1 along W the interior columns are vectorised; in NCHWc every output pixel is one
    vector of the X lanes, whatever the stride. Keys like `pool_max_k3s2p1_1x64x112x112`
    (`..._1x8x112x112x8` in NCHWc).
    """

    def key(self, op: conv.PoolOp) -> str:
        kernel, strides = _ints(op.kernel), _ints(op.strides)
        pads, dilations = _ints(op.pads), _ints(op.dilations)
        parts = [f"pool_{op.kind.data}_k{ints_tag(kernel)}s{ints_tag(strides)}p{ints_tag(pads)}"]
        if dilations != (1, 1):
            parts.append(f"d{ints_tag(dilations)}")
        if op.ceil_mode is not None:
            parts.append("ceil")
        if op.count_include_pad is not None and op.kind.data == "avg":
            parts.append("cip")
        parts.append(shape_tag(tensor_shape(op.input)))
        return "_".join(parts)

    def body(self, op: conv.PoolOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape = tensor_shape(op.input)
        n, channels, height, width = shape[:4]
        out_h, out_w = tensor_shape(op.output)[2:4]
        blocked = is_blocked(shape)
        window = _Window.of(op)
        rows, columns = window.runs(0, out_h, height), window.runs(1, out_w, width)
        lanes = vector_width if window.strides[1] == 1 else 1
        work = volume(tensor_shape(op.output)) * window.kernel[0] * window.kernel[1]
        with iterate([n, channels], is_threaded(work)) as plane:
            pixel = _pixel(plane, blocked)
            for row_run in rows:
                with span(row_run.start, row_run.stop) as out_row:
                    for column_run in columns:
                        emit = partial(
                            window.emit, source, result, pixel, out_row, (row_run, column_run)
                        )
                        if blocked:
                            with span(column_run.start, column_run.stop) as out_column:
                                emit(out_column, shape[4])
                        else:
                            length = column_run.stop - column_run.start
                            along_row(column_run.start, length, lanes, emit)


@dataclass(frozen=True)
class _Window:
    """The static parameters of a pooling window."""

    kind: str
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[int, ...]
    dilations: tuple[int, ...]
    count_include_pad: bool

    @staticmethod
    def of(op: conv.PoolOp) -> _Window:
        return _Window(
            op.kind.data,
            _ints(op.kernel),
            _ints(op.strides),
            _ints(op.pads),
            _ints(op.dilations),
            op.count_include_pad is not None,
        )

    def runs(self, axis: int, outputs: int, size: int) -> list[WindowRun]:
        """The runs of outputs with equal taps along spatial `axis` (0: rows, 1: columns)."""
        pads = (self.pads[axis], self.pads[axis + 2])
        stride, dilation = self.strides[axis], self.dilations[axis]
        return window_runs(outputs, size, self.kernel[axis], stride, pads, dilation)

    def emit(
        self,
        source: SSAValue,
        result: SSAValue,
        pixel: Pixel,
        out_row: Index,
        runs: tuple[WindowRun, WindowRun],
        out_column: Index,
        width: Width,
    ) -> None:
        """Pool the window(s) of output (`out_row`, `out_column`) into `result`: `width` lanes
        from there along the last axis (W in NCHW, the channels of a block in NCHWc)."""
        row_run, column_run = runs
        in_row = _position(out_row, self.strides[0], -self.pads[0])
        in_column = _position(out_column, self.strides[1], -self.pads[1])
        values = [
            load(
                source,
                pixel(
                    _position(in_row, 1, kh * self.dilations[0]),
                    _position(in_column, 1, kw * self.dilations[1]),
                ),
                width,
            )
            for kh in row_run.taps
            for kw in column_run.taps
        ]
        store(self._combine(values, runs, width), result, pixel(out_row, out_column))

    def _combine(
        self, values: list[SSAValue], runs: tuple[WindowRun, WindowRun], width: Width
    ) -> SSAValue:
        """The max, or the average over the counted positions, of a window's `values`."""
        if not values:
            return constant(_LOWEST_F32 if self.kind == "max" else 0.0, width)
        total = values[0]
        for value in values[1:]:
            total = float_op("max" if self.kind == "max" else "add", total, value)
        if self.kind == "max":
            return total
        padded_count = runs[0].padded_taps * runs[1].padded_taps
        count = padded_count if self.count_include_pad else len(values)
        return arith.MulfOp(total, constant(1.0 / count, width)).result


class GlobalPoolKernel(OpKernel):
    """`conv.global_pool`: max or mean of each H×W plane; keys like `global_pool_avg_1x1024x7x7`
    (`global_pool_avg_1x128x7x7x8` in NCHWc).

    An NCHW plane is reduced with a vector accumulator along W and a scalar one for the tail; an
    NCHWc plane with one `vector<X x f32>` accumulator over its pixels, which stays a vector.
    """

    def key(self, op: conv.GlobalPoolOp) -> str:
        return f"global_pool_{op.kind.data}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.GlobalPoolOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape = tensor_shape(op.input)
        n, channels, height, width = shape[:4]
        kind = op.kind.data
        combine = "max" if kind == "max" else "add"
        blocked = is_blocked(shape)
        lanes: Width = shape[4] if blocked else None
        with iterate([n, channels], is_threaded(volume(shape))) as plane:
            pixel = _pixel(plane, blocked)
            init = load(source, pixel(0, 0), lanes) if kind == "max" else constant(0.0, lanes)
            if blocked:
                total = _reduce_pixels(
                    height,
                    width,
                    lambda row, column: load(source, pixel(row, column), lanes),
                    combine,
                    init,
                )
            else:
                total = reduce_rows(
                    height,
                    width,
                    vector_width,
                    lambda row, column, w: load(source, pixel(row, column), w),
                    combine,
                    init,
                )
            if kind == "avg":
                total = arith.MulfOp(total, constant(1.0 / (height * width), lanes)).result
            store(total, result, pixel(0, 0))


def _reduce_pixels(
    height: int,
    width: int,
    value: Callable[[Index, Index], SSAValue],
    kind: str,
    init: SSAValue,
) -> SSAValue:
    """`init` combined (`kind` "add" or "max") with `value(row, column)` over a height × width
    plane, lane by lane: the accumulator has the type of `init` and the values."""
    with loop(0, height, carry=[init]) as rows:
        with loop(0, width, carry=rows.carried) as columns:
            columns.yield_(float_op(kind, columns.carried[0], value(rows.iv, columns.iv)))
        rows.yield_(columns.results[0])
    return rows.results[0]
