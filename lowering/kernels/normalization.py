"""Kernels of the normalisation ops: `conv.batchnorm`, `conv.softmax`, `conv.lrn`,
`conv.layer_norm`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from xdsl.dialects import arith, math, memref
from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape, volume
from lowering.emit import Index, add, index, loop
from lowering.kernels.access import Access, emit_map
from lowering.kernels.common import (
    OpKernel,
    Width,
    along_row,
    constant,
    float_op,
    is_threaded,
    iterate,
    load,
    multiply_add,
    number_tag,
    reduce_rows,
    shape_tag,
    span,
    store,
    widen,
    window_runs,
)

_EXP_COST = 20
"""Scalar operations an exp or a pow costs, relative to an add (for the threading decision)."""


class BatchNormKernel(OpKernel):
    """`conv.batchnorm`: y = x * s + t per channel; keys like `batchnorm_1x64x56x56_eps1em05`.

    s = scale / sqrt(var + eps) and t = bias - mean * s are computed first, for every channel, into
    two stack buffers; the main loop is then one fma per element with s and t broadcast along
    the axes after the channel (or loaded as vectors when the channel axis is the innermost).
    """

    def key(self, op: conv.BatchNormOp) -> str:
        epsilon = number_tag(op.epsilon.value.data)
        return f"batchnorm_{shape_tag(tensor_shape(op.input))}_eps{epsilon}"

    def body(self, op: conv.BatchNormOp, args: list[SSAValue], vector_width: int) -> None:
        source, scale, bias, mean, var, result = args
        shape = tensor_shape(op.input)
        channels = shape[1]
        epsilon = float(op.epsilon.value.data)
        factor = memref.AllocaOp.get(f32, 64, [channels]).memref
        shift = memref.AllocaOp.get(f32, 64, [channels]).memref

        # Once per channel: scalar code is as good as vectors here.
        with loop(0, channels) as channel:
            c = [channel.iv]
            variance = arith.AddfOp(load(var, c, None), constant(epsilon, None)).result
            s = arith.DivfOp(load(scale, c, None), math.SqrtOp(variance).result).result
            t = arith.SubfOp(load(bias, c, None), arith.MulfOp(load(mean, c, None), s)).result
            store(s, factor, c)
            store(t, shift, c)
        emit_map(
            shape,
            Access.identity(result, len(shape)),
            [
                Access.identity(source, len(shape)),
                Access.following(factor, [1]),
                Access.following(shift, [1]),
            ],
            lambda values, width: multiply_add(values[0], values[1], values[2]),
            vector_width,
            2,
        )


class SoftmaxKernel(OpKernel):
    """`conv.softmax` along one axis, numerically stable: max, exp(x - max) and sum, scale.

    On the innermost axis each row is reduced with vector accumulators; on another axis the
    innermost axis is vectorised and every lane is an independent softmax. Keys like
    `softmax_a1_1x1000`.
    """

    def key(self, op: conv.SoftmaxOp) -> str:
        return f"softmax_a{op.axis.value.data}_{shape_tag(tensor_shape(op.input))}"

    def body(self, op: conv.SoftmaxOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape = list(tensor_shape(op.input))
        axis = op.axis.value.data
        threaded = is_threaded(volume(shape) * _EXP_COST)
        if axis == len(shape) - 1:
            with iterate(shape[:-1], threaded) as outer:
                self._row(source, result, outer, shape[-1], vector_width)
            return
        others = [d for i, d in enumerate(shape[:-1]) if i != axis]
        with iterate(others, threaded) as ivs:

            def point(position: Index, column: Index) -> list[Index]:
                return [*ivs[:axis], position, *ivs[axis:], column]

            def lanes(column: Index, width: Width) -> None:
                self._across(source, result, point, column, shape[axis], width)

            along_row(0, shape[-1], vector_width, lanes)

    @staticmethod
    def _row(
        source: SSAValue, result: SSAValue, outer: list[Index], length: int, width: int
    ) -> None:
        """Softmax of the contiguous row `outer` (the axis is the innermost one)."""

        def at(column: Index) -> list[Index]:
            return [*outer, column]

        first = load(source, at(0), None)
        peak = reduce_rows(1, length, width, lambda _, c, w: load(source, at(c), w), "max", first)

        def exponential(_: Index, column: SSAValue, w: Width) -> SSAValue:
            value = math.ExpOp(arith.SubfOp(load(source, at(column), w), widen(peak, w))).result
            store(value, result, at(column))
            return value

        total = reduce_rows(1, length, width, exponential, "add", constant(0.0, None))
        inverse = arith.DivfOp(constant(1.0, None), total).result

        def normalise(column: Index, w: Width) -> None:
            store(
                arith.MulfOp(load(result, at(column), w), widen(inverse, w)).result,
                result,
                at(column),
            )

        along_row(0, length, width, normalise)

    @staticmethod
    def _across(
        source: SSAValue,
        result: SSAValue,
        point: Callable[[Index, Index], list[Index]],
        column: Index,
        extent: int,
        width: Width,
    ) -> None:
        """Softmax along a non-innermost axis of `extent`, for the lanes starting at `column`."""
        first = load(source, point(0, column), width)
        with loop(1, extent, carry=[first]) as peak:
            peak.yield_(
                float_op("max", peak.carried[0], load(source, point(peak.iv, column), width))
            )
        with loop(0, extent, carry=[constant(0.0, width)]) as total:
            shifted = arith.SubfOp(load(source, point(total.iv, column), width), peak.results[0])
            value = math.ExpOp(shifted.result).result
            store(value, result, point(total.iv, column))
            total.yield_(arith.AddfOp(total.carried[0], value).result)
        inverse = arith.DivfOp(constant(1.0, width), total.results[0]).result
        with loop(0, extent) as position:
            scaled = arith.MulfOp(load(result, point(position.iv, column), width), inverse)
            store(scaled.result, result, point(position.iv, column))


class LRNKernel(OpKernel):
    """`conv.lrn` across channels (ONNX LRN): y = x * (bias + alpha / size * sum x²)^-beta.

    Channels split into runs with the same in-bounds window (see `window_runs`), so the window is
    unrolled with static bounds; W is vectorised. beta = 0.75, 0.5 and 1 avoid `powf`. Keys like
    `lrn_s5_a0p0001_b0p75_k1_1x64x56x56`.
    """

    def key(self, op: conv.LRNOp) -> str:
        params = (op.alpha, op.beta, op.bias)
        alpha, beta, bias = (number_tag(p.value.data) for p in params)
        size, shape = op.size.value.data, shape_tag(tensor_shape(op.input))
        return f"lrn_s{size}_a{alpha}_b{beta}_k{bias}_{shape}"

    def body(self, op: conv.LRNOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        n, channels, height, width = tensor_shape(op.input)
        size = op.size.value.data
        window = _ChannelWindow(
            (size - 1) // 2,
            float(op.alpha.value.data) / size,
            float(op.beta.value.data),
            float(op.bias.value.data),
        )
        pads = (window.before, size - 1 - window.before)
        runs = window_runs(channels, channels, size, 1, pads, 1)
        threaded = is_threaded(n * channels * height * width * (size + _EXP_COST))
        with iterate([n, height], threaded) as (batch, row):
            for run in runs:
                with span(run.start, run.stop) as channel:
                    emit = partial(window.emit, source, result, (batch, channel, row), run.taps)
                    along_row(0, width, vector_width, emit)


@dataclass(frozen=True)
class _ChannelWindow:
    """LRN's window over channels [c - before, c - before + size) and its constants."""

    before: int
    scale: float  # alpha / size
    beta: float
    bias: float

    def emit(
        self,
        source: SSAValue,
        result: SSAValue,
        position: tuple[Index, Index, Index],
        taps: tuple[int, ...],
        column: Index,
        width: Width,
    ) -> None:
        """Normalise the element(s) at (batch, channel, row, column) reading channel `taps`."""
        batch, channel, row = position

        def at(tap: int) -> list[Index]:
            return [batch, add(channel, tap - self.before), row, column]

        squares = constant(0.0, width)
        for tap in taps:
            x = load(source, at(tap), width)
            squares = multiply_add(x, x, squares)
        base = multiply_add(squares, constant(self.scale, width), constant(self.bias, width))
        x = load(source, at(self.before), width)
        store(_divide_by_power(x, base, self.beta, width), result, at(self.before))


def _divide_by_power(x: SSAValue, base: SSAValue, beta: float, width: Width) -> SSAValue:
    """x / base**beta, without `powf` for the common exponents."""
    if beta == 1.0:
        return arith.DivfOp(x, base).result
    if beta == 0.5:
        return arith.MulfOp(x, math.RsqrtOp(base).result).result
    if beta == 0.75:
        inverse_root = math.RsqrtOp(base).result
        factor = arith.MulfOp(inverse_root, math.SqrtOp(inverse_root).result).result
        return arith.MulfOp(x, factor).result
    power = math.PowFOp(base, constant(-beta, width)).result
    return arith.MulfOp(x, power).result


class LayerNormKernel(OpKernel):
    """`conv.layer_norm`: per slice over the axes from `axis`, the mean and the variance by two
    vectorised reductions (two passes, so no cancellation), then one fused scale-and-shift pass.

    Slices run in parallel when the work is large. Keys like `layer_norm_a3_eps1em06_1x56x56x96`.
    """

    def key(self, op: conv.LayerNormOp) -> str:
        epsilon = number_tag(op.epsilon.value.data)
        shape = shape_tag(tensor_shape(op.input))
        return f"layer_norm_a{op.axis.value.data}_eps{epsilon}_{shape}"

    def body(self, op: conv.LayerNormOp, args: list[SSAValue], vector_width: int) -> None:
        source, scale, bias, result = args
        shape = tensor_shape(op.input)
        axis = op.axis.value.data
        rows_shape, length = shape[axis:-1], shape[-1]
        rows, count = volume(rows_shape), volume(shape[axis:])
        epsilon = float(op.epsilon.value.data)
        with iterate(shape[:axis], is_threaded(volume(shape) * 8)) as outer:

            def at(row: Index, column: Index) -> list[Index]:
                return [*outer, *_unflatten(row, rows_shape), column]

            def value(row: Index, column: Index, width: Width) -> SSAValue:
                return load(source, at(row, column), width)

            zero = constant(0.0, None)
            total = reduce_rows(rows, length, vector_width, value, "add", zero)
            mean = arith.DivfOp(total, constant(float(count), None)).result

            def squared(row: Index, column: Index, width: Width) -> SSAValue:
                centred = arith.SubfOp(value(row, column, width), widen(mean, width)).result
                return arith.MulfOp(centred, centred).result

            squares = reduce_rows(rows, length, vector_width, squared, "add", zero)
            variance = multiply_add(squares, constant(1.0 / count, None), constant(epsilon, None))
            inverse_deviation = math.RsqrtOp(variance).result
            with span(0, rows) as row:

                def normalise(column: Index, width: Width) -> None:
                    parameter_at = [*_unflatten(row, rows_shape), column]
                    centred = arith.SubfOp(value(row, column, width), widen(mean, width)).result
                    factor = arith.MulfOp(
                        load(scale, parameter_at, width), widen(inverse_deviation, width)
                    ).result
                    shifted = multiply_add(centred, factor, load(bias, parameter_at, width))
                    store(shifted, result, at(row, column))

                along_row(0, length, vector_width, normalise)


def _unflatten(flat: Index, shape: tuple[int, ...]) -> list[Index]:
    """The row-major indices into `shape` of the flat position `flat` (nothing for rank 0)."""
    indices: list[Index] = []
    for axis in reversed(range(len(shape))):
        extent = shape[axis]
        if isinstance(flat, int):
            indices.insert(0, flat % extent)
            flat //= extent
        elif axis == 0:
            indices.insert(0, flat)
        else:
            indices.insert(0, arith.RemUIOp(flat, index(extent)).result)
            flat = arith.DivUIOp(flat, index(extent)).result
    return indices
