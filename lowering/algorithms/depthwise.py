"""`depthwise`: NCHWc depthwise convolution (group = C = O), vectorised across channels.

Each output vector y[n, cb, oh, ow, 0:X] is a sum over (kh, kw) of input vectors times weight
vectors of the same X channels, so no lane ever needs another lane's data and the padded lanes of
the last block compute harmless values nothing reads. Weights are repacked at compile time to
[C/X, KH, KW, X] (zero-padded) and bias to [C/X, X]. The register tile is `ow_block` output
pixels of one channel block; the epilogue (residual, activation) is applied in registers. Padding
is never copied, as in `direct` (whose border handling this shares): each output row runs only
the kernel rows inside the input, interior width tiles run unguarded, and border tiles clamp
their loads and mask their FMAs outside the input, so a padded tap forms no product (an Inf or
NaN weight there gives what ONNX Runtime gives, not 0 · Inf = NaN). No workspace. Threads split
(image, channel block, output row). Any kernel size, stride, dilation and padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from convir.target import Target
from lowering.algorithms.border_tiles import guarded_width_tiles, tap_rows
from lowering.algorithms.common import (
    ACCUMULATION_TOLERANCE,
    ConvGeometry,
    Schedule,
    conv_kernel,
    epilogue_key,
    has_constant_parameters,
    row_tile,
    store_blocked,
)
from lowering.algorithms.direct import column_inside, input_column
from lowering.emit import (
    Index,
    add,
    affine,
    index,
    load_vector,
    loop,
    parallel,
    splat,
)
from lowering.kernels import Packer
from lowering.microkernel import fma_where, lane_mask

NAME = "depthwise"


@dataclass(frozen=True)
class DepthwiseSchedule(Schedule):
    """Knobs of the depthwise algorithm: output pixels per register tile."""

    ALGORITHM: ClassVar[str] = NAME

    ow_block: int = 8


SCHEDULE = DepthwiseSchedule


def applicable(op: conv.Conv2DOp) -> bool:
    """NCHWc input, one input and one output channel per group, constant weights and bias."""
    shape = tensor_shape(op.input)
    if len(shape) != 5:
        return False
    g = ConvGeometry.of(op)
    return g.group == g.c == g.o and has_constant_parameters(op)


def heuristic(op: conv.Conv2DOp, target: Target) -> DepthwiseSchedule:
    """As many output pixels as fit in registers beside one weight and one input vector."""
    ow = ConvGeometry.of(op).ow
    return DepthwiseSchedule(row_tile(ow, min(target.vector_registers - 2, 8)))


def candidates(op: conv.Conv2DOp, target: Target) -> list[DepthwiseSchedule]:
    """The search space: the heuristic first, then rows of about 4, 6, 12 and 14 pixels that fit
    in the registers beside one weight and one input vector."""
    ow = ConvGeometry.of(op).ow
    most = target.vector_registers - 2
    schedules = [heuristic(op, target)]
    schedules += [DepthwiseSchedule(row_tile(ow, min(most, cap))) for cap in (4, 6, 12, 14)]
    return list(dict.fromkeys(schedules))


def tolerance(schedule: DepthwiseSchedule) -> float:
    """Largest relative error a tuner accepts from this schedule (`ACCUMULATION_TOLERANCE`)."""
    return ACCUMULATION_TOLERANCE


def pack_weight(weight: np.ndarray, block: int) -> np.ndarray:
    """[C, 1, KH, KW] -> [C/X, KH, KW, X], channels zero-padded."""
    c, _, kh, kw = weight.shape
    blocks = -(-c // block)
    padded = np.zeros((blocks * block, kh, kw), np.float32)
    padded[:c] = weight[:, 0]
    return np.ascontiguousarray(padded.reshape(blocks, block, kh, kw).transpose(0, 2, 3, 1))


def pack_bias(bias: np.ndarray, block: int) -> np.ndarray:
    """[C] -> [C/X, X], zero-padded."""
    blocks = -(-bias.shape[0] // block)
    padded = np.zeros(blocks * block, np.float32)
    padded[: bias.shape[0]] = bias
    return padded.reshape(blocks, block)


class DepthwiseEmitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "depthwise"`."""

    def key(self, op: Operation) -> str:
        g = ConvGeometry.of(op)
        s = DepthwiseSchedule.from_attr(op.schedule)
        return f"conv_depthwise_{g.key()}_t{s.ow_block}_{epilogue_key(op)}"

    def packers(self, op: Operation) -> dict[int, Packer]:
        block = _geometry(op).block
        packers: dict[int, Packer] = {1: lambda w: pack_weight(w, block)}
        if op.bias is not None:
            packers[2] = lambda b: pack_bias(b, block)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        return 0  # padding is handled in the loops, not by a padded copy

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        g = _geometry(op)
        s = DepthwiseSchedule.from_attr(op.schedule)
        blocks, block = g.input_blocks, g.block
        weight_shape = (blocks, g.kh, g.kw, block)
        with (
            conv_kernel(module, name, op, g, weight_shape, (blocks, block), 0) as buffers,
            parallel([(0, g.n), (0, blocks), (0, g.oh)]) as (n, cb, oh),
        ):
            rows = tap_rows(g, oh)
            guarded_width_tiles(
                g,
                s.ow_block,
                lambda ow0, width, guarded: emit_depthwise_tile(
                    g, op, buffers, (n, cb, oh, ow0, rows, guarded), width
                ),
            )


def _geometry(op: conv.Conv2DOp) -> ConvGeometry:
    g = ConvGeometry.of(op)
    if not g.blocked_input or not g.group == g.c == g.o:
        raise ValueError(f"'{op.name}' depthwise needs an NCHWc input and group = C = O")
    return g


def emit_depthwise_tile(
    g: ConvGeometry,
    op,
    buffers,
    position,
    ow_block: int,
    output_at: tuple[Index, Index] | None = None,
) -> None:
    """`ow_block` output vectors of channel block `cb`: accumulate over the kernel rows `rows`
    inside the input and every kernel column (masked outside the input when `guarded`), then
    store, at (image, row) `output_at` of `buffers.y` (default: (n, oh); layer fusion stores
    into a slice of rows)."""
    x, weight, bias, residual, y, _ = buffers
    n, cb, oh, ow0, rows, guarded = position
    out_n, out_row = output_at or (n, oh)
    block = g.block
    initial = [
        load_vector(bias, [cb, 0], block) if bias is not None else splat(0.0, block)
        for _ in range(ow_block)
    ]
    with loop(*rows, carry=initial) as kh_loop:
        row = affine([(oh, g.strides[0]), (kh_loop.iv, g.dilations[0])], -g.pads[0])
        with loop(0, g.kw, carry=kh_loop.carried) as kw_loop:
            accs = list(kw_loop.carried)
            wv = load_vector(weight, [cb, kh_loop.iv, kw_loop.iv, 0], block)
            for r in range(ow_block):
                col = input_column(g, ow0, kw_loop.iv, r)
                inside = column_inside(g, col, guarded)
                mask = None
                if inside is not None:  # a clamped load whose product the mask drops
                    col = arith.SelectOp(inside, col, index(0)).result
                    mask = lane_mask(inside, block)
                value = load_vector(x, [n, cb, row, col, 0], block)
                accs[r] = fma_where(mask, value, wv, accs[r])
            kw_loop.yield_(*accs)
        kh_loop.yield_(*kw_loop.results)
    for r in range(ow_block):
        store_blocked(op, kh_loop.results[r], residual, y, [out_n, cb, out_row, add(ow0, r)])
