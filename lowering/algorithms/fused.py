"""`fused`: a `conv.fused` chain run as one tiled kernel (DESIGN §5, layer fusion).

Implemented chain type: `dw3x3_1x1` (depthwise 3×3, any stride and pads, then a 1×1 with stride
1: MobileNetV2's and ShuffleNetV2's pattern). The types `3x3_1x1` and `3x3_3x3` have no emitter
yet: `applicable` says no, and `conv-fuse-layers{mode=auto}` never forms them.

The output is tiled over `tile_rows` output rows × the full width × all output blocks. Per tile
(image n, rows [oh0, oh0 + rows)), the depthwise output rows the tile needs — the same rows, as
the 1×1 has stride 1 and no halo — are computed into a per-worker slice
`[1, C1/X, tile_rows, OW, X]` of the workspace, with the first conv's epilogue (bias,
activation) applied (`depthwise.emit_depthwise_tile`, storing into the slice); then the 1×1
reads that slice as its A operand and runs the GEMM microkernel with the second conv's epilogue
(bias, residual, activation) (`conv_gemm.ConvGemm.tile`, storing into the output). The
intermediate feature map never goes to memory: only one slice per worker is alive, sized by the
heuristic to half of L2.

Threads: as in im2col, the schedule's `slots` (default: the target's cores) are the
`scf.parallel` workers; worker s takes tiles s, s + slots, ... over all images, in its own slice
at workspace offset s · slice_bytes. workspace_bytes = slots · slice_bytes (`memory_report()`).

Schedule knobs: `tile_rows` (output rows per tile), `ow_block` (the depthwise register tile),
`mr` × `nr` (the 1×1's register tile), `slots`. Row tiles are balanced (`RowTiling`: sizes differ
by at most one). Not yet knobs: tiling the columns or the output blocks (a tile is always the
full width and every output block).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.dialects.fused import chain_type
from convir.target import Target
from lowering.algorithms import conv_gemm, depthwise
from lowering.algorithms.common import (
    ACCUMULATION_TOLERANCE,
    ConvBuffers,
    ConvGeometry,
    Schedule,
    epilogue_key,
    row_tile,
)
from lowering.algorithms.conv_gemm import ConvGemm
from lowering.algorithms.direct import guarded_width_tiles, tap_rows
from lowering.emit import (
    add,
    byte_memref,
    f32_memref,
    index,
    kernel_function,
    load,
    loop,
    mul,
    parallel,
    view,
)
from lowering.kernels import Packer
from lowering.microkernel import RowTiling, register_tile

NAME = "fused"
#: The chain types this module emits (`convir.dialects.fused.FUSION_TYPES` lists all).
EMITTED_TYPES = ("dw3x3_1x1",)
_ALIGNMENT = 64


@dataclass(frozen=True)
class FusedSchedule(Schedule):
    """Knobs of a fused chain: output rows per tile, the two register tiles, worker slots."""

    ALGORITHM: ClassVar[str] = NAME

    tile_rows: int = 4
    ow_block: int = 8
    mr: int = 6
    nr: int = 2
    slots: int = 1


SCHEDULE = FusedSchedule


def applicable(op: conv.FusedOp) -> bool:
    """A chain of a type this module emits, with constant weights and biases."""
    first, second = op.convs
    if chain_type(first, second) not in EMITTED_TYPES:
        return False
    parameters = [first.weight, second.weight, first.bias, second.bias]
    return all(
        isinstance(op.operand_of(value).owner, conv.ConstantOp)
        for value in parameters
        if value is not None
    )


def _geometries(op: conv.FusedOp) -> tuple[ConvGeometry, ConvGeometry]:
    first, second = op.convs
    kind = chain_type(first, second)
    if kind not in EMITTED_TYPES:
        raise ValueError(
            f"'{op.name}' chain type {kind} has no fused emitter yet; emitted: "
            f"{', '.join(EMITTED_TYPES)}"
        )
    return ConvGeometry.of(first), ConvGeometry.of(second)


def slice_bytes(g1: ConvGeometry, tile_rows: int) -> int:
    """Bytes of one worker's slice of the intermediate: tile_rows rows of every channel block."""
    assert g1.block is not None
    size = 4 * g1.output_blocks * tile_rows * g1.ow * g1.block
    return -(-size // _ALIGNMENT) * _ALIGNMENT


def tile_rows(g1: ConvGeometry, g2: ConvGeometry, target: Target) -> int:
    """The heuristic's rows per tile: as many as keep one slice within half of L2, at most
    enough to give every core one tile of a one-image batch (balanced, `RowTiling`). Every
    tile streams all of the 1×1's weights, so tiles are as few as that allows."""
    fit = max(1, target.l2_bytes // 2 // slice_bytes(g1, 1))
    spread = max(1, -(-g2.oh // target.cores) if g2.n == 1 else g2.oh)
    return RowTiling.of(g2.oh, min(fit, spread, g2.oh)).largest


def heuristic(op: conv.FusedOp, target: Target) -> FusedSchedule:
    """`tile_rows`; register tiles: those of the depthwise and microkernel heuristics."""
    g1, g2 = _geometries(op)
    rows = tile_rows(g1, g2, target)
    ow_block = row_tile(g1.ow, min(target.vector_registers - 2, 8))
    mr, nr = register_tile(target.vector_registers, g2.output_blocks)
    return FusedSchedule(rows, ow_block, mr, nr, target.cores)


def candidates(op: conv.FusedOp, target: Target) -> list[FusedSchedule]:
    """The heuristic, then tiles of 1, 2, 4 and 8 rows and half and double its rows."""
    base = heuristic(op, target)
    oh = _geometries(op)[1].oh
    rows = [1, 2, 4, 8, max(1, base.tile_rows // 2), base.tile_rows * 2]
    schedules = [base] + [replace(base, tile_rows=min(r, oh)) for r in rows]
    return list(dict.fromkeys(schedules))


def tolerance(schedule: FusedSchedule) -> float:
    """The same sums as the two convs run apart: `ACCUMULATION_TOLERANCE`."""
    return ACCUMULATION_TOLERANCE


def workspace_bytes(op: conv.FusedOp, schedule: FusedSchedule) -> int:
    """slots · slice_bytes (module doc)."""
    g1, g2 = _geometries(op)
    rows = RowTiling.of(g2.oh, min(schedule.tile_rows, g2.oh)).largest
    return schedule.slots * slice_bytes(g1, rows)


@dataclass(frozen=True)
class _Roles:
    """Operand indices of the fused op by what the kernel does with them."""

    input: int
    weight1: int
    bias1: int | None
    weight2: int
    bias2: int | None
    residual: int | None

    @staticmethod
    def of(op: conv.FusedOp) -> _Roles:
        first, second = op.convs
        args = list(op.body.block.args)

        def at(value: SSAValue | None) -> int | None:
            return None if value is None else args.index(value)

        return _Roles(
            args.index(first.input),
            args.index(first.weight),
            at(first.bias),
            args.index(second.weight),
            at(second.bias),
            at(second.residual),
        )


class FusedEmitter:
    """`KernelEmitter` of `conv.fused` with `algorithm = "fused"`."""

    def key(self, op: Operation) -> str:
        first, second = op.convs
        g1, g2 = _geometries(op)
        s = FusedSchedule.from_attr(op.schedule)
        return (
            f"fused_{chain_type(first, second)}_{g1.key()}_o{g2.o}_r{s.tile_rows}"
            f"t{s.ow_block}m{s.mr}x{s.nr}s{s.slots}_{epilogue_key(first)}_{epilogue_key(second)}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        g1, _ = _geometries(op)
        block = g1.block
        nr = FusedSchedule.from_attr(op.schedule).nr
        roles = _Roles.of(op)
        packers: dict[int, Packer] = {
            roles.weight1: lambda w: depthwise.pack_weight(w, block),
            roles.weight2: lambda w: conv_gemm.pack_weight(w, nr, block),
        }
        if roles.bias1 is not None:
            packers[roles.bias1] = lambda b: depthwise.pack_bias(b, block)
        if roles.bias2 is not None:
            packers[roles.bias2] = lambda b: conv_gemm.pack_bias(b, nr, block)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        return workspace_bytes(op, FusedSchedule.from_attr(op.schedule))

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        first, second = op.convs
        g1, g2 = _geometries(op)
        s = FusedSchedule.from_attr(op.schedule)
        roles = _Roles.of(op)
        tiles = RowTiling.of(g2.oh, min(s.tile_rows, g2.oh))
        full_gemm = ConvGemm(g2, s.mr, s.nr)
        block = g1.block
        assert block is not None
        shapes = {
            roles.input: g1.input_shape(),
            roles.weight1: (g1.input_blocks, g1.kh, g1.kw, block),
            roles.weight2: full_gemm.weight_shape(),
        }
        if roles.bias1 is not None:
            shapes[roles.bias1] = (g1.output_blocks, block)
        if roles.bias2 is not None:
            shapes[roles.bias2] = full_gemm.bias_shape()
        if roles.residual is not None:
            shapes[roles.residual] = g2.output_shape()
        arg_types = [f32_memref(shapes[i]) for i in range(len(op.operands))]
        arg_types += [f32_memref(g2.output_shape()), byte_memref(self.workspace_bytes(op))]
        slice_shape = (1, g1.output_blocks, tiles.largest, g1.ow, block)
        one_slice = slice_bytes(g1, tiles.largest)
        with kernel_function(module, name, arg_types) as args:
            operands, y, workspace = args[: len(op.operands)], args[-2], args[-1]

            def at(role: int | None) -> SSAValue | None:
                return None if role is None else operands[role]

            x = operands[roles.input]
            with parallel([(0, s.slots)]) as (slot,):
                rows = view(workspace, mul(slot, one_slice), f32_memref(slice_shape))
                first_buffers = ConvBuffers(x, operands[roles.weight1], at(roles.bias1), None, rows)
                second_buffers = ConvBuffers(
                    rows, operands[roles.weight2], at(roles.bias2), at(roles.residual), y
                )
                per_image = index(tiles.count)
                with loop(slot, g2.n * tiles.count, s.slots) as item:
                    n = arith.DivUIOp(item.iv, per_image).result
                    tile = arith.RemUIOp(item.iv, per_image).result

                    def run(oh0: SSAValue, count: int) -> None:
                        _depthwise_rows(g1, first, first_buffers, (n, oh0, count), s.ow_block)
                        _pointwise_rows(g2, second, second_buffers, (n, oh0, count), s)

                    tiles.dispatch(tile, run)


def _depthwise_rows(g1: ConvGeometry, op, buffers: ConvBuffers, rows, ow_block: int) -> None:
    """Depthwise output rows [oh0, oh0 + count) of image n, every channel block, into the
    slice (rows 0 .. count - 1), the first conv's epilogue applied."""
    n, oh0, count = rows
    with loop(0, g1.output_blocks) as cb, loop(0, count) as r:
        oh = add(oh0, r.iv)
        taps = tap_rows(g1, oh)
        guarded_width_tiles(
            g1,
            ow_block,
            lambda ow0, width, guarded: depthwise.emit_depthwise_tile(
                g1, op, buffers, (n, cb.iv, oh, ow0, taps, guarded), width, (index(0), r.iv)
            ),
        )


def _pointwise_rows(g2: ConvGeometry, op, buffers: ConvBuffers, rows, s: FusedSchedule) -> None:
    """The 1×1 over output rows [oh0, oh0 + count) of image n, reading its input from the
    slice, with the second conv's epilogue; stores into the output."""
    n, oh0, count = rows
    gemm = ConvGemm(replace(g2, h=count, oh=count), s.mr, s.nr)
    with loop(0, gemm.panels.count) as panel, loop(0, gemm.rows.count) as row_tile:

        def run(first_pixel: SSAValue, shape: tuple[int, int]) -> None:
            local = gemm.coordinates(first_pixel, shape[0])

            def a_at(outer: SSAValue, lane: int, r: int) -> SSAValue:
                return load(buffers.x, [0, outer, *local[r], lane])

            absolute = [(add(oh0, row), column) for row, column in local]
            gemm.tile(op, buffers, (n, panel.iv, absolute), shape[1], a_at)

        gemm.dispatch(panel.iv, row_tile.iv, run)
