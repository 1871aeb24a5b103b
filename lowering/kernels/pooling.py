"""Kernels of `conv.pool` (max/avg windows, ONNX semantics) and `conv.global_pool`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import DenseArrayBase
from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from lowering.emit import Index, affine
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
    count_include_pad; never the part of a ceil_mode window past the end padding). With stride
    1 along W the interior columns are vectorised. Keys like `pool_max_k3s2p1_1x64x112x112`.
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
        n, channels, height, width = tensor_shape(op.input)
        _, _, out_h, out_w = tensor_shape(op.output)
        window = _Window.of(op)
        rows, columns = window.runs(0, out_h, height), window.runs(1, out_w, width)
        lanes = vector_width if window.strides[1] == 1 else 1
        work = n * channels * out_h * out_w * window.kernel[0] * window.kernel[1]
        with iterate([n, channels], is_threaded(work)) as plane:
            for row_run in rows:
                with span(row_run.start, row_run.stop) as out_row:
                    for column_run in columns:
                        emit = partial(
                            window.emit, source, result, plane, out_row, (row_run, column_run)
                        )
                        along_row(column_run.start, column_run.stop - column_run.start, lanes, emit)


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
        plane: Sequence[Index],
        out_row: Index,
        runs: tuple[WindowRun, WindowRun],
        out_column: Index,
        width: Width,
    ) -> None:
        """Pool the window(s) of output (`out_row`, `out_column`: `width` lanes) into `result`."""
        row_run, column_run = runs
        in_row = _position(out_row, self.strides[0], -self.pads[0])
        in_column = _position(out_column, self.strides[1], -self.pads[1])
        values = [
            load(
                source,
                [
                    *plane,
                    _position(in_row, 1, kh * self.dilations[0]),
                    _position(in_column, 1, kw * self.dilations[1]),
                ],
                width,
            )
            for kh in row_run.taps
            for kw in column_run.taps
        ]
        store(self._combine(values, runs, width), result, [*plane, out_row, out_column])

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
    """`conv.global_pool`: max or mean of each H×W plane; keys like `global_pool_avg_1x1024x7x7`.

    Each plane is reduced with a vector accumulator along W and a scalar one for the tail.
    """

    def key(self, op: conv.GlobalPoolOp) -> str:
        return f"global_pool_{op.kind.data}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.GlobalPoolOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        n, channels, height, width = tensor_shape(op.input)
        kind = op.kind.data
        with iterate([n, channels], is_threaded(n * channels * height * width)) as plane:
            init = load(source, [*plane, 0, 0], None) if kind == "max" else constant(0.0, None)
            total = reduce_rows(
                height,
                width,
                vector_width,
                lambda row, column, w: load(source, [*plane, row, column], w),
                "max" if kind == "max" else "add",
                init,
            )
            if kind == "avg":
                total = arith.MulfOp(total, constant(1.0 / (height * width), None)).result
            store(total, result, [*plane, 0, 0])
