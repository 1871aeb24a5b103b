"""`im2col`: im2col + GEMM on NCHWc, blocked along the output pixels (oh·OW + ow) of an image.

The GEMM is the one of `conv_gemm` (M = output pixels, K = input blocks × taps × X lanes,
N = output channels). For each block of `block_pixels` output pixels, the im2col writes the
block's A panel straight in the layout the microkernel reads, `[tiles, CB·KH·KW, MR, X]`: per
register tile, per (input block, tap), the MR input vectors the tile's pixels see at that tap,
copied whole from the NCHWc input or zero where the tap falls in the padding (fused pack: no
padded copy of the input, no separate column buffer). The microkernel then runs the panel
against every packed weight panel (bias first, epilogue in registers, as in gemm1x1). A padded
tap must contribute nothing, not 0 · w (NaN for an Inf or NaN weight), so a register tile with a
pixel whose window reaches into the padding runs the microkernel masked: per (pixel, tap) the
FMAs of padded taps keep the old accumulator (an FMA and a blend). Only when some weight is not
finite, though (a flag packed with the weights, `conv_gemm.pack_weight`): with finite weights
the panel's zeros contribute exactly nothing, and the masked microkernel, up to ~20 % slower on
a 7×7 layer whose tiles are nearly all border tiles, never runs. Interior tiles (decided at run
time by the same test as the panel's unchecked copy) always run unmasked. Any
stride, dilation and asymmetric padding; channel counts need not be multiples of X (padded
lanes are copied into the panel but never read).

**Block size.** The panel of one block must stay in L2 while every weight panel sweeps it:

    panel_bytes = 4 · CB·L·KH·KW · block_pixels  <=  L2 / 2

with L = X lanes per input block as stored (padded lanes included; with C < X only the next
power of two >= C, `panel_lanes`), so block_pixels = MR · floor(L2 / 2 / (4·K·MR)), at
least one register tile, at most the image. The other half of L2 is for the weight panel
streaming through and the output. But a block never has fewer than `MIN_BLOCK_PIXELS` pixels
(rounded up to MR) while the image has them, even when its panel then spills to L3: every block
streams all the weights once, so with a huge K (FCN-ResNet50's head, 2048 channels × 3×3: K =
18432, 72 KiB per pixel) the L2 rule gave 2-pixel blocks and the conv read its 37 MB of weights
392 times (12 GFLOP/s, 1 thread, AVX2; 32-pixel blocks: 38; ONNX Runtime: 76 — closing the rest
needs the depth blocked too). The heuristic then shrinks blocks (by at most half) to
spread the pixels most evenly over `slots` workers (`balanced_task_size`), and `candidates`
offers the menu block_pixels × {1/4, 1/2, 1, 2} (and other register tiles) as the search space.

**Threads and workspace.** The thread count is a run-time value, but the workspace must be
sized at compile time, so the schedule has `slots` (default: SLOTS_PER_CORE per core of the
target, at most one per block): the kernel's `scf.parallel` runs over `slots` workers, worker s
handles blocks s, s + slots, ... (over all images) with its own panel at workspace offset
s·panel_bytes. Threads claim slots one at a time (`lowering.thread_pool`), so with several slots
per core a thread that another process keeps off its CPU holds back at most one slot's blocks:
the others take the rest. Threads split blocks, never the rows of one block. workspace_bytes =
slots · panel_bytes, which `memory_report()` shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.target import Target
from lowering.algorithms.common import (
    ACCUMULATION_TOLERANCE,
    ConvBuffers,
    Schedule,
    conv_kernel,
    epilogue_key,
)
from lowering.algorithms.conv_gemm import (
    ConvGemm,
    applicable_blocked_dense,
    balanced_task_size,
    checked_geometry,
    pack_bias,
    pack_weight,
)
from lowering.emit import (
    add,
    affine,
    f32_memref,
    if_else,
    index,
    load,
    load_vector,
    loop,
    mul,
    parallel,
    splat,
    store_vector,
    view,
)
from lowering.kernels import Packer
from lowering.microkernel import SMALL_REGISTER_FILE_TILES, register_tile

NAME = "im2col"

#: The share of L2 one block's A panel may take (module doc).
L2_FRACTION = 0.5

#: The fewest output pixels per block, whatever the panel's size (module doc).
MIN_BLOCK_PIXELS = 32

#: Worker slots per core: a late thread holds back 1/(SLOTS_PER_CORE · cores) of the blocks.
SLOTS_PER_CORE = 4

#: Block-size multipliers offered to the search (MegEngine's "menu").
BLOCK_MENU = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Im2colSchedule(Schedule):
    """Knobs of im2col: the MR × NR register tile, output pixels per block (a multiple of MR),
    and worker slots (each with its own panel in the workspace)."""

    ALGORITHM: ClassVar[str] = NAME

    mr: int = 6
    nr: int = 4
    block_pixels: int = 96
    slots: int = 1


SCHEDULE = Im2colSchedule


def applicable(op: conv.Conv2DOp) -> bool:
    """NCHWc input, group 1, constant weights and bias (any kernel, stride, dilation, pads)."""
    return applicable_blocked_dense(op)


def heuristic(op: conv.Conv2DOp, target: Target) -> Im2colSchedule:
    """Register tile from the microkernel's rule, block size from L2 (module doc)."""
    g = checked_geometry(op, NAME)
    gemm = ConvGemm(g, *register_tile(target.vector_registers, g.output_blocks))
    tiles = gemm.rows.count
    budget = int(target.l2_bytes * L2_FRACTION)
    most = max(budget // (_pixel_bytes(gemm) * gemm.mr), -(-MIN_BLOCK_PIXELS // gemm.mr))
    tiles_per_block = balanced_task_size(tiles, most, g.n, target.cores, interleaved=True)
    blocks = g.n * -(-tiles // tiles_per_block)
    slots = max(1, min(SLOTS_PER_CORE * target.cores, blocks))
    return Im2colSchedule(gemm.mr, gemm.nr, tiles_per_block * gemm.mr, slots)


def candidates(op: conv.Conv2DOp, target: Target) -> list[Im2colSchedule]:
    """The search space: the heuristic's block size times BLOCK_MENU, and other register
    tiles at the heuristic's block size."""
    base = heuristic(op, target)
    tiles = _gemm(op, base.mr, base.nr).rows.count
    schedules = []
    for factor in BLOCK_MENU:
        tiles_per_block = min(tiles, max(1, round(base.block_pixels // base.mr * factor)))
        schedules.append(replace(base, block_pixels=tiles_per_block * base.mr))
    other_tiles = ((8, 3), (24, 1), (4, 2))
    if target.vector_registers < 32:
        other_tiles = SMALL_REGISTER_FILE_TILES
    for mr, nr in other_tiles:
        block = max(1, base.block_pixels // mr) * mr
        schedules.append(replace(base, mr=mr, nr=nr, block_pixels=block))
    return list(dict.fromkeys([base, *schedules]))


def tolerance(schedule: Im2colSchedule) -> float:
    """Largest relative error a tuner accepts from this schedule (`ACCUMULATION_TOLERANCE`)."""
    return ACCUMULATION_TOLERANCE


def _gemm(op: conv.Conv2DOp, mr: int, nr: int) -> ConvGemm:
    return ConvGemm(checked_geometry(op, NAME), mr, nr)


def panel_lanes(gemm: ConvGemm) -> int:
    """Lanes per (input block, tap, pixel) in the A panel: X, or with fewer than X input
    channels (a stem's 3) the next power of two, so the copy moves 16 bytes, not 64."""
    return min(gemm.block, 1 << (gemm.g.c - 1).bit_length())


def _pixel_bytes(gemm: ConvGemm) -> int:
    """Bytes of one output pixel's column in a panel (K with padded lanes)."""
    return 4 * gemm.depth_blocks * panel_lanes(gemm)


def _schedule(op: conv.Conv2DOp) -> Im2colSchedule:
    schedule = Im2colSchedule.from_attr(op.schedule)
    if schedule.block_pixels % schedule.mr:
        raise ValueError(
            f"'{op.name}' im2col schedule: block_pixels {schedule.block_pixels} must be a "
            f"multiple of mr {schedule.mr}"
        )
    return schedule


@dataclass(frozen=True)
class _Blocking:
    """One conv's GEMM with its blocks: `tiles_per_block` row tiles per block."""

    gemm: ConvGemm
    tiles_per_block: int
    slots: int

    @staticmethod
    def of(op: conv.Conv2DOp) -> _Blocking:
        s = _schedule(op)
        gemm = _gemm(op, s.mr, s.nr)
        return _Blocking(gemm, min(s.block_pixels // s.mr, gemm.rows.count), s.slots)

    @property
    def blocks_per_image(self) -> int:
        return -(-self.gemm.rows.count // self.tiles_per_block)

    def panel_shape(self) -> tuple[int, int, int, int]:
        gemm = self.gemm
        return (self.tiles_per_block, gemm.depth_blocks, gemm.mr, panel_lanes(gemm))

    def panel_bytes(self) -> int:
        return self.tiles_per_block * self.gemm.mr * _pixel_bytes(self.gemm)


class Im2colEmitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "im2col"`."""

    def key(self, op: Operation) -> str:
        g = checked_geometry(op, NAME)
        s = _schedule(op)
        return (
            f"conv_im2col_{g.key()}_t{s.mr}x{s.nr}_b{s.block_pixels}s{s.slots}_{epilogue_key(op)}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        block = checked_geometry(op, NAME).block
        nr = _schedule(op).nr
        packers: dict[int, Packer] = {1: lambda w: pack_weight(w, nr, block)}
        if op.bias is not None:
            packers[2] = lambda b: pack_bias(b, nr, block)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        blocking = _Blocking.of(op)
        return blocking.slots * blocking.panel_bytes()

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        blocking = _Blocking.of(op)
        gemm, g = blocking.gemm, blocking.gemm.g
        items = g.n * blocking.blocks_per_image
        with (
            conv_kernel(
                module,
                name,
                op,
                g,
                gemm.weight_shape(),
                gemm.bias_shape(),
                self.workspace_bytes(op),
            ) as buffers,
            parallel([(0, blocking.slots)]) as (slot,),
        ):
            panel_type = f32_memref(blocking.panel_shape())
            panel = view(buffers.workspace, mul(slot, blocking.panel_bytes()), panel_type)
            with loop(slot, items, blocking.slots) as item:
                _emit_block(op, blocking, buffers, panel, item.iv)


def _emit_block(
    op: conv.Conv2DOp, blocking: _Blocking, buffers: ConvBuffers, panel: SSAValue, item
) -> None:
    """Block `item` (image-major): fill its panel, then every weight panel × row tile."""
    gemm = blocking.gemm
    per_image = index(blocking.blocks_per_image)
    n = arith.DivUIOp(item, per_image).result
    first_tile = affine([(arith.RemUIOp(item, per_image).result, blocking.tiles_per_block)])
    end_tile = arith.MinSIOp(
        add(first_tile, blocking.tiles_per_block), index(gemm.rows.count)
    ).result
    with loop(first_tile, end_tile) as row_tile:
        local = arith.SubiOp(row_tile.iv, first_tile).result
        gemm.rows.dispatch(
            row_tile.iv,
            lambda first, rows: _fill(gemm, buffers.x, panel, (n, local, first), rows),
        )
    finite = gemm.weights_finite(buffers.weight)
    with loop(0, gemm.panels.count) as weight_panel, loop(first_tile, end_tile) as row_tile:
        local = arith.SubiOp(row_tile.iv, first_tile).result

        def run(first: SSAValue, shape: tuple[int, int]) -> None:
            def a_at(outer: SSAValue, lane: int, r: int) -> SSAValue:
                return load(panel, [local, outer, r, lane])

            coordinates = gemm.coordinates(first, shape[0])
            position = (n, weight_panel.iv, coordinates)
            origins = _origins(gemm, coordinates)

            def tile(masked: bool) -> None:
                inside = (lambda outer, r: _tap_inside(gemm, origins[r], outer)) if masked else None
                gemm.tile(op, buffers, position, shape[1], a_at, inside)

            def border_tile(border: bool) -> None:
                if not border:
                    tile(False)
                    return
                # With finite weights the panel's zeros contribute exactly nothing.
                if_else(finite, lambda: tile(False), lambda: tile(True))

            _by_border(gemm, origins, border_tile)

        gemm.dispatch(weight_panel.iv, row_tile.iv, run)


def _origins(gemm: ConvGemm, coordinates) -> list[tuple[SSAValue, SSAValue]]:
    """The input position (row, column) of tap (0, 0) of each pixel of a tile (may be outside)."""
    (sh, sw), (top, left) = gemm.g.strides, gemm.g.pads[:2]
    return [(affine([(oh, sh)], -top), affine([(ow, sw)], -left)) for oh, ow in coordinates]


def _by_border(gemm: ConvGemm, origins, emit: Callable[[bool], None]) -> None:
    """emit(border): True for a tile some of whose taps fall in the padding (decided at run
    time, unless every tile or none is such a tile)."""
    g = gemm.g
    spans = (g.h - (g.kh - 1) * g.dilations[0], g.w - (g.kw - 1) * g.dilations[1])
    if not g.needs_padding or min(spans) <= 0:
        emit(g.needs_padding)
        return
    inside = [_below(v, span) for origin in origins for v, span in zip(origin, spans, strict=True)]
    interior = inside[0]
    for flag in inside[1:]:
        interior = arith.AndIOp(interior, flag).result
    if_else(interior, lambda: emit(False), lambda: emit(True))


def _tap_inside(gemm: ConvGemm, origin: tuple[SSAValue, SSAValue], outer: SSAValue) -> SSAValue:
    """Whether the tap of outer depth index `outer` (input block · taps + tap) of the pixel whose
    tap (0, 0) is at `origin` falls inside the input."""
    g = gemm.g
    tap = arith.RemUIOp(outer, index(gemm.taps)).result
    kh, kw = arith.DivUIOp(tap, index(g.kw)).result, arith.RemUIOp(tap, index(g.kw)).result
    ih = add(origin[0], mul(kh, g.dilations[0]))
    iw = add(origin[1], mul(kw, g.dilations[1]))
    return arith.AndIOp(_below(ih, g.h), _below(iw, g.w)).result


def _fill(gemm: ConvGemm, x: SSAValue, panel: SSAValue, position, rows: int) -> None:
    """The A panel of one row tile: per (input block, kh, kw), the input vector each of its
    `rows` pixels sees there, or zeros in the padding (the GEMM masks their products). Tiles
    whose every tap is inside the input (most of them) take a copy without bounds checks."""
    n, local, first_pixel = position
    origins = _origins(gemm, gemm.coordinates(first_pixel, rows))
    _by_border(
        gemm, origins, lambda border: _copy_taps(gemm, x, panel, (n, local, origins), border)
    )


def _copy_taps(gemm: ConvGemm, x: SSAValue, panel: SSAValue, position, checked: bool) -> None:
    """Copy the input vectors of every tap of the tile's pixels (whose top-left input positions
    are `origins`) into the panel; `checked` zeroes taps outside the input."""
    n, local, origins = position
    g = gemm.g
    dh, dw = g.dilations
    lanes = panel_lanes(gemm)
    zero = splat(0.0, lanes)
    with loop(0, g.input_blocks) as cb, loop(0, g.kh) as kh, loop(0, g.kw) as kw:
        depth_block = affine([(cb.iv, gemm.taps), (kh.iv, g.kw), (kw.iv, 1)])
        for r, (ih0, iw0) in enumerate(origins):
            ih, iw = add(ih0, mul(kh.iv, dh)), add(iw0, mul(kw.iv, dw))
            if not checked:
                value = load_vector(x, [n, cb.iv, ih, iw, 0], lanes)
            else:
                inside = arith.AndIOp(_below(ih, g.h), _below(iw, g.w)).result
                clamped = [arith.SelectOp(inside, v, index(0)).result for v in (ih, iw)]
                loaded = load_vector(x, [n, cb.iv, *clamped, 0], lanes)
                value = arith.SelectOp(inside, loaded, zero).result
            store_vector(value, panel, [local, depth_block, r, 0])


def _below(value: SSAValue, bound: int) -> SSAValue:
    """0 <= value < bound, as one unsigned comparison (a negative index is a huge unsigned)."""
    return arith.CmpiOp(value, index(bound), "ult").result
