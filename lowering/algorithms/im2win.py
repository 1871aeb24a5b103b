"""`im2win`: image-to-window transform on NCHWc, then register-blocked broadcast + FMA over it.

After Lu et al., "Im2win: Memory Efficient Convolution on SIMD Architectures" (HPEC 2022). For
each output row, the KH input rows it reads are interleaved column by column, so that the window
of every output pixel is one contiguous run and the next pixel's window starts stride·KH·X
further on. On NCHWc the window tensor of one block of `block_rows` output rows is

    win[cb, r, w, kh, 0:X] = x[n, cb, (oh0 + r)·sh - top + kh·dh, w - left, 0:X]

with w over the window columns [0, W_win), W_win = (OW - 1)·sw + (KW - 1)·dw + 1 (the input
columns the output row reads, padding included): zeros in the padding columns and in the
kernel rows that fall in the top or bottom padding. Per output pixel and input block, the taps
(kw, kh) at dilation 1 are one contiguous run of KW·KH·X floats: the X lanes of a tap are one
cache line at X = 16 (two at X = 8), and the KH rows of one column are adjacent, which is the
layout's point (one stream instead of KH). The layout keeps NCHWc's block axis outermost, as
[N, C/X, OH, W_in, KH, X] of DESIGN §5, cut to one block of rows per worker: the image axis
and OH are the block loop.

**Kernel.** The output pixels of a block (its rows × OW, row-major) are cut into flat tiles
of `ow_block` pixels, which may span rows (a 7-wide map is not left with a 2-pixel tile per
row, whose few accumulators leave the FMA pipes idle on latency), and the output channels into
groups of `oc_blocks` blocks of X; a tile's ow_block × oc_blocks accumulators stay in registers
over input blocks × kw × kh × lanes: per step, oc_blocks weight vectors (weights repacked at
compile time to [G, OB, CB·KW·KH·X_in + 1, X_out], rows in the order the loop reads them, then
a row flagging whether every weight is finite) and, per pixel, one broadcast scalar from the
window and oc_blocks FMAs. Bias initialises the accumulators; residual and activation are
applied in registers before the one store per vector (`store_blocked`). Padded taps form no
product where that matters: with finite weights (the flag row, read at run time: the kernel
does not depend on the weights' values) the window's zero columns and zero padding rows
contribute exactly nothing, so the flat tiles run unmasked over them, skipping only the
kernel rows that none of their pixels reads. Otherwise (an Inf or NaN weight, whose product
with a padded zero ONNX Runtime never forms) the block runs row by row as `direct` does:
kernel rows outside the input skipped per output row (`border_tiles.tap_rows`), interior width
tiles unmasked, the left/right border tiles (`border_tiles.guarded_width_tiles`) masking their FMAs
per pixel and kw (`fma_where`, which spills on AVX2). Only the logical lanes of a partial
last input block are read.

**Input chunks.** A block's window holds `in_blocks` input blocks at a time (a chunk; all of
them when the conv is grouped or its channels are not whole blocks): per chunk, the window is
filled with the chunk's blocks and every tile accumulates over them, starting from bias (first
chunk) or from the partial sums it stored in y (the others); only the last chunk's stores add
the residual and apply the activation. A chunk's window row is CB/in_blocks times smaller, so
the same L2 share holds that many more output rows, and each block of rows re-reads the
weights (9 MiB at 512→512 3×3: more than L2) correspondingly less often; the partial sums cost
one vector load and store per accumulator and chunk. The heuristic takes as many blocks as
keep the weights one register tile reads over a chunk (oc_blocks · KH·KW·X² floats per block)
within L2 · CHUNK_WEIGHT_FRACTION, evened out over the chunks that makes.

**Block size.** One block's window must stay in L2 while every output-channel group sweeps it:

    window_bytes = 4 · chunk·X · W_win · KH · block_rows  <=  L2 · L2_FRACTION

so block_rows = floor(L2 · L2_FRACTION / row_bytes), at least 1, at most OH; the heuristic then
shrinks it (by at most half) to spread the blocks of all images most evenly over the workers
(`conv_gemm.balanced_task_size`). `candidates` offers block_rows × {1/4, 1/2, 1, 2}, a single
row, one row of one-block chunks (the smallest workspace), no chunks, and other register
tiles.

**Threads and workspace.** As in `im2col`: the kernel's `scf.parallel` runs `slots` workers
(default: the target's cores); worker s takes blocks s, s + slots, ... (image-major) and builds
them in its own window at workspace offset s·window_bytes. workspace_bytes = slots ·
window_bytes: about KH/sh times the input rows a block reads, KW times below an im2col column
buffer of the same pixels.

Any kernel size but 1×1 (no window to gather: `applicable`), stride, dilation and asymmetric
padding; NCHWc input and output; group 1, or groups of whole input and output blocks
(depthwise convs have their own algorithm).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.target import Target
from lowering.algorithms import direct
from lowering.algorithms.common import (
    ACCUMULATION_TOLERANCE,
    ConvGeometry,
    Schedule,
    conv_kernel,
    epilogue_key,
    has_constant_parameters,
)
from lowering.algorithms.conv_gemm import balanced_task_size
from lowering.algorithms.im2win_tiles import chunk_size, emit_rows
from lowering.emit import (
    add,
    affine,
    f32_memref,
    if_else,
    index,
    load_vector,
    loop,
    mul,
    parallel,
    splat,
    store_vector,
    view,
)
from lowering.kernels import Packer

NAME = "im2win"

#: The share of L2 one block's window may take (module doc).
L2_FRACTION = 0.5

#: The share of L2 the weights one register tile reads over one input chunk may take (module
#: doc): 1/8 makes chunks of 14 blocks of 8 channels for 3×3 kernels and 2 output blocks on a
#: 512 KiB L2. Measured on znver3 (1 thread, CPU time, ResNet-50's 3×3 layers, chunks of 3, 8,
#: 16 blocks and none): 16 and 8 blocks ahead of 3 (weights in L1: partial sums too often)
#: and of none (every block of rows re-reads all weights) on the 256- and 512-channel layers
#: (512→512 s2 @14: 79 / 77 / 71 / 70 GFLOP/s), alike on the others.
CHUNK_WEIGHT_FRACTION = 1 / 8

#: Block-size multipliers offered to the search, as im2col's.
BLOCK_MENU = (0.25, 0.5, 1.0, 2.0)

#: Pixels per register tile at most. On AVX2 (16 registers, 2 output blocks) 6 pixels make 12
#: accumulators: two FMA pipes of latency 4 need 8 chains in flight, and each weight vector
#: loaded (from L2 for deep layers) feeds 6 FMAs instead of direct's 4 (56 = 14 × 4: its
#: tiles take a divisor of OW, im2win's flat tiles need none). Measured on znver3 (1 thread,
#: CPU time, loaded machine; report /work/notes/im2winspeed.md): 6×2 ahead of 4×2 on 5 of
#: the 7 ResNet-50 3×3 layers, 12×1 (one broadcast per FMA) 25 % behind.
MAX_PIXELS = 6

#: Register tiles (ow_block, oc_blocks) offered to the search besides the heuristic's.
TILE_MENU = ((4, 2), (6, 2), (3, 3), (2, 4), (8, 1))


@dataclass(frozen=True)
class Im2winSchedule(Schedule):
    """Knobs of im2win: the ow_block × oc_blocks register tile, output rows per block (one
    window), worker slots (each with its own window in the workspace), and input blocks per
    chunk (`in_blocks`, clamped to the conv's; module doc)."""

    ALGORITHM: ClassVar[str] = NAME

    ow_block: int = 5
    oc_blocks: int = 2
    block_rows: int = 4
    slots: int = 1
    in_blocks: int = 4096


SCHEDULE = Im2winSchedule


def applicable(op: conv.Conv2DOp) -> bool:
    """NCHWc input, constant weights and bias, a kernel larger than 1×1, and group 1 or groups
    of whole X-channel blocks on both sides (any stride, dilation, pads).

    A 1×1 kernel has no window to gather: its window would be a copy of the input rows it
    reads (strided ones at stride 2), which gemm1x1 and direct read in place, with the same
    broadcast + FMA kernel. So `--algorithm im2win` / `all=im2win` leave 1×1 convs to the
    other algorithms."""
    g = ConvGeometry.of(op)
    if not g.blocked_input or not has_constant_parameters(op) or (g.kh, g.kw) == (1, 1):
        return False
    return g.group == 1 or (g.cg % g.block == 0 and g.og % g.block == 0)


def measured_faster(op: conv.Conv2DOp, target: Target) -> bool:
    """Whether selection should prefer im2win to direct and im2col: 3×3 convs with group 1 on
    NCHWc, on targets with 16 vector registers (AVX2), where it was measured faster.

    Measured on AMD EPYC znver3 (AVX2, 512 KiB L2), 1 thread, median thread CPU time of 7
    interleaved samples (`examples/benchmarks/im2win_vs.py --models resnet50,vgg16`, load
    average 5–7; report /work/notes/im2winspeed.md): im2win beat the better of direct and
    im2col on all 15 distinct 3×3 layers of ResNet-50 and VGG-16, by 1.07× (VGG-16
    features.2) to 1.70× (features.19), geomean 1.29×. Winograd, which selection puts first
    where it applies (3×3 stride 1, ≥ 64 channels), was faster than im2win on every layer it
    takes (im2win/winograd time 0.37–0.91), so im2win runs the stride-2 3×3 convs (ResNet-50
    layer2.0/3.0/4.0.conv2: 1.24×, 1.25×, 1.41× over the better of direct and im2col) and
    3×3 convs winograd refuses. Not measured on AVX-512 (32 registers), nor for other kernel
    sizes.
    """
    g = ConvGeometry.of(op)
    return (
        (g.kh, g.kw) == (3, 3) and g.group == 1 and target.vector_registers == 16 and applicable(op)
    )


def heuristic(op: conv.Conv2DOp, target: Target) -> Im2winSchedule:
    """The direct algorithm's channel tile (the same broadcast + FMA shape) with as many
    pixels as the registers hold beside it, at most `MAX_PIXELS` (flat tiles need no divisor
    of OW); block rows from L2 (module doc), one slot per core."""
    g = _geometry(op)
    oc_blocks = direct.heuristic(op, target).oc_blocks
    pixels = min((target.vector_registers - oc_blocks - 1) // oc_blocks, MAX_PIXELS)
    chunk_weight_bytes = 4 * oc_blocks * g.kh * g.kw * g.block * g.block
    most = max(1, int(target.l2_bytes * CHUNK_WEIGHT_FRACTION) // chunk_weight_bytes)
    chunks = -(-g.input_blocks // most)
    in_blocks = -(-g.input_blocks // chunks)  # chunks of equal size (16 blocks: 8 + 8, not 14 + 2)
    schedule = Im2winSchedule(max(1, pixels), oc_blocks, 1, target.cores, in_blocks)
    row_bytes = Im2winBlocking(g, schedule, 1).window_bytes()
    most = int(target.l2_bytes * L2_FRACTION) // row_bytes
    rows = balanced_task_size(g.oh, most, g.n, target.cores, interleaved=True)
    return replace(schedule, block_rows=rows)


def tolerance(schedule: Im2winSchedule) -> float:
    """Largest relative error a tuner accepts from this schedule (`ACCUMULATION_TOLERANCE`)."""
    return ACCUMULATION_TOLERANCE


def candidates(op: conv.Conv2DOp, target: Target) -> list[Im2winSchedule]:
    """The search space, the heuristic's schedule first: its block rows times BLOCK_MENU, one
    row per block, one row of one-block chunks (the smallest window), no chunks, and the
    register tiles of TILE_MENU that fit the register file."""
    g = _geometry(op)
    base = heuristic(op, target)
    schedules = [base] + [
        replace(base, block_rows=min(g.oh, max(1, round(base.block_rows * factor))))
        for factor in BLOCK_MENU
    ]
    schedules.append(replace(base, block_rows=1))
    schedules.append(replace(base, block_rows=1, in_blocks=1))
    schedules.append(replace(base, in_blocks=Im2winSchedule.in_blocks))
    blocks = -(-g.og // g.block)
    for ow_block, oc_blocks in TILE_MENU:
        if ow_block * oc_blocks + oc_blocks + 1 <= target.vector_registers and oc_blocks <= blocks:
            schedules.append(replace(base, ow_block=ow_block, oc_blocks=oc_blocks))
    return list(dict.fromkeys(schedules))


def _geometry(op: conv.Conv2DOp) -> ConvGeometry:
    g = ConvGeometry.of(op)
    if not g.blocked_input:
        raise ValueError(f"'{op.name}' im2win needs an NCHWc input")
    if g.group > 1 and (g.cg % g.block or g.og % g.block):
        raise ValueError(
            f"'{op.name}' im2win: groups of {g.cg} input and {g.og} output channels are not "
            f"whole blocks of {g.block}"
        )
    return g


def window_columns(g: ConvGeometry) -> int:
    """W_win: the input columns (padding included) one output row reads."""
    return (g.ow - 1) * g.strides[1] + (g.kw - 1) * g.dilations[1] + 1


def _row_bytes(g: ConvGeometry) -> int:
    """Bytes of the window of one output row: every input block, column and kernel row."""
    return 4 * g.input_blocks * window_columns(g) * g.kh * g.block


def pack_weight(weight: np.ndarray, group: int, block: int) -> np.ndarray:
    """[O, C/G, KH, KW] -> [G, OB, CB·KW·KH·X_in + 1, X_out]: per output block, one row of X_out
    weights per (input block, kw, kh, input lane), the order the kernel reads them (the window's
    order: kw outer, kh inner), then a row saying whether every weight is finite (module doc)."""
    blocked = direct.pack_weight_blocked(weight, group, block).transpose(0, 1, 2, 4, 3, 5, 6)
    g, ob = blocked.shape[:2]
    rows = blocked.reshape(g, ob, -1, block)
    finite = np.full((g, ob, 1, block), float(np.isfinite(weight).all()), np.float32)
    return np.ascontiguousarray(np.concatenate([rows, finite], axis=2))


def _depth(g: ConvGeometry) -> int:
    """Weight rows per output block before the finite flag: CB·KW·KH·X (padded lanes too)."""
    return -(-g.cg // g.block) * g.kw * g.kh * g.block


@dataclass(frozen=True)
class Im2winBlocking:
    """One conv's geometry with its schedule, the rows per block clamped to OH."""

    g: ConvGeometry
    s: Im2winSchedule
    block_rows: int

    @staticmethod
    def of(op: conv.Conv2DOp) -> Im2winBlocking:
        g = _geometry(op)
        s = Im2winSchedule.from_attr(op.schedule)
        return Im2winBlocking(g, s, min(s.block_rows, g.oh))

    @property
    def chunk_blocks(self) -> int:
        """Input blocks per chunk: `in_blocks`, or all when the conv is grouped or has a
        partial input block (chunks are for deep group-1 convs; module doc)."""
        g = self.g
        if g.group > 1 or g.cg % g.block:
            return g.input_blocks
        return min(self.s.in_blocks, g.input_blocks)

    @property
    def depth(self) -> int:
        """Weight rows per output block before the finite flag (`_depth`)."""
        return _depth(self.g)

    @property
    def chunks(self) -> int:
        return -(-self.g.input_blocks // self.chunk_blocks)

    @property
    def blocks_per_image(self) -> int:
        return -(-self.g.oh // self.block_rows)

    @property
    def out_blocks(self) -> int:
        """Output-channel blocks per group."""
        return -(-self.g.og // self.g.block)

    def window_shape(self) -> tuple[int, ...]:
        g = self.g
        return (self.chunk_blocks, self.block_rows, window_columns(g), g.kh, g.block)

    def window_bytes(self) -> int:
        g = self.g
        return 4 * self.chunk_blocks * self.block_rows * window_columns(g) * g.kh * g.block


class Im2winEmitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "im2win"`."""

    def key(self, op: Operation) -> str:
        b = Im2winBlocking.of(op)
        s = b.s
        return (
            f"conv_im2win_{b.g.key()}_t{s.ow_block}x{s.oc_blocks}_r{b.block_rows}s{s.slots}"
            f"c{b.chunk_blocks}_"
            f"{epilogue_key(op)}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        g = _geometry(op)
        packers: dict[int, Packer] = {1: lambda w: pack_weight(w, g.group, g.block)}
        if op.bias is not None:
            packers[2] = lambda b: direct.pack_bias(b, g.group, g.block)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        blocking = Im2winBlocking.of(op)
        return blocking.s.slots * blocking.window_bytes()

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        b = Im2winBlocking.of(op)
        g, x = b.g, b.g.block
        weight_shape = (g.group, b.out_blocks, _depth(g) + 1, x)
        bias_shape = (g.group, b.out_blocks, x)
        items = g.n * b.blocks_per_image
        with (
            conv_kernel(
                module, name, op, g, weight_shape, bias_shape, self.workspace_bytes(op)
            ) as buffers,
            parallel([(0, b.s.slots)]) as (slot,),
        ):
            window_type = f32_memref(b.window_shape())
            window = view(buffers.workspace, mul(slot, b.window_bytes()), window_type)
            with loop(slot, items, b.s.slots) as item:
                per_image = index(b.blocks_per_image)
                n = arith.DivUIOp(item.iv, per_image).result
                first_row = affine([(arith.RemUIOp(item.iv, per_image).result, b.block_rows)])
                rows = arith.MinSIOp(index(b.block_rows), affine([(first_row, -1)], g.oh)).result
                if b.chunks == 1:
                    _fill_window(b, buffers.x, window, n, first_row, rows, None)
                    emit_rows(b, op, buffers, window, (n, first_row, rows, None))
                else:
                    with loop(0, b.chunks) as chunk:
                        _fill_window(b, buffers.x, window, n, first_row, rows, chunk.iv)
                        emit_rows(b, op, buffers, window, (n, first_row, rows, chunk.iv))


def _fill_window(
    b: Im2winBlocking,
    x: SSAValue,
    window: SSAValue,
    n: SSAValue,
    first_row: SSAValue,
    rows: SSAValue,
    chunk: SSAValue | None,
) -> None:
    """The window of output rows [first_row, first_row + rows): per input block, row and kernel
    row, the input row's X-lane vectors copied whole, zeros in the padding columns, and whole
    rows of zeros where the kernel row falls in the top or bottom padding (the flat tiles read
    them; the row-by-row tiles skip them with `border_tiles.tap_rows`). With chunks, the input
    blocks of `chunk` only."""
    g = b.g
    top, left = g.pads[0], g.pads[1]
    columns = window_columns(g)
    zero = splat(0.0, g.block)
    copied_end = min(columns, left + g.w)  # window columns [left, copied_end) are input columns

    def fill(cb: SSAValue, r: SSAValue, kh: SSAValue, start: int, end: int, source) -> None:
        if end > start:
            with loop(start, end) as column:
                store_vector(source(column.iv), window, [cb, r, column.iv, kh, 0])

    count = chunk_size(b, chunk)
    with loop(0, count) as cb, loop(0, rows) as r, loop(0, g.kh) as kh:
        source = cb.iv if chunk is None else affine([(chunk, b.chunk_blocks), (cb.iv, 1)])
        sh, dh = g.strides[0], g.dilations[0]
        ih = affine([(first_row, sh), (r.iv, sh), (kh.iv, dh)], -top)

        def copy_row() -> None:
            fill(cb.iv, r.iv, kh.iv, 0, min(left, columns), lambda _: zero)
            fill(
                cb.iv,
                r.iv,
                kh.iv,
                left,
                copied_end,
                lambda w: load_vector(x, [n, source, ih, add(w, -left), 0], g.block),
            )
            fill(cb.iv, r.iv, kh.iv, max(copied_end, left), columns, lambda _: zero)

        if top or g.pads[2]:
            if_else(
                arith.CmpiOp(ih, index(g.h), "ult").result,
                copy_row,
                lambda: fill(cb.iv, r.iv, kh.iv, 0, columns, lambda _: zero),
            )
        else:  # every row an output row reads is inside the input
            copy_row()
