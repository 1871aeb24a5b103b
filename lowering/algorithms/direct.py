"""`direct`: convolution as a register-blocked loop nest, vectorised over output channels.

Works on NCHW or NCHWc tensors, with weights repacked at compile time to [G, OB, C/G, KH, KW, W]:
for each group, the O/G output channels are cut into OB blocks of W lanes (W = vector width, the
last block zero-padded; on NCHWc W is the block X, and a block never straddles two groups). The
microkernel keeps an `ow_block` × `oc_blocks` tile of accumulators in vector registers: per (c, kh,
kw) it loads `oc_blocks` weight vectors and, for each of `ow_block` output pixels, broadcasts one
input value and issues `oc_blocks` FMAs. Only logical input channels are read, so padded NCHWc lanes
never matter. Bias initialises the accumulators; residual and activation are applied to the tile in
registers before it is stored (on NCHWc one vector store per pixel and block, on NCHW one scalar
store per lane). Padding is never copied: each output row runs only the kernel rows that fall inside
the input (`border_tiles.tap_rows`), and the width tiles whose taps all fall inside run unguarded in
one loop, while the border tiles (left and right, and a remainder) run (one by one at known columns,
or in one loop when there are many: `border_tiles.guarded_width_tiles`) only the kernel columns
inside the input for some pixel of the tile (`border_tiles.tap_columns`) and whose loads are clamped
and FMAs masked outside the input: a padded tap forms no product, so an Inf or NaN weight there
gives what ONNX Runtime gives, not 0 · Inf = NaN. No workspace.

An NCHW input with an NCHWc output (a stem conv on a 3-channel image, left unpacked by
conv-convert-layout) is read plane by plane with the NCHWc loop order.

Threads split the (image, group, channel-block group, output row) space with `scf.parallel`.
Any stride, dilation, padding, group count and channel count is supported on NCHW; on NCHWc,
groups must hold whole blocks of output channels (depthwise convs have their own algorithm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.target import Target
from lowering.algorithms.border_tiles import guarded_width_tiles, tap_columns, tap_rows
from lowering.algorithms.common import (
    ACCUMULATION_TOLERANCE,
    ConvGeometry,
    Schedule,
    conv_kernel,
    epilogue_key,
    float_of,
    has_constant_parameters,
    row_tile,
    store_blocked,
)
from lowering.emit import (
    Index,
    add,
    affine,
    broadcast,
    extract,
    f32_constant,
    if_,
    index,
    insert,
    load,
    load_vector,
    loop,
    parallel,
    splat,
    store,
)
from lowering.kernels import Packer
from lowering.kernels.elementwise import apply_activation
from lowering.microkernel import fma_where, lane_mask

NAME = "direct"


@dataclass(frozen=True)
class DirectSchedule(Schedule):
    """Knobs of the direct algorithm: vector width, output-width × channel-block register tile."""

    ALGORITHM: ClassVar[str] = NAME

    vector_width: int = 8
    ow_block: int = 6
    oc_blocks: int = 2


SCHEDULE = DirectSchedule


def applicable(op: conv.Conv2DOp) -> bool:
    """The direct algorithm needs constant weights (and bias), which it repacks at compile time,
    and on NCHWc groups of whole blocks of output channels."""
    g = ConvGeometry.of(op)
    whole_blocks = g.block is None or g.group == 1 or g.og % g.block == 0
    return whole_blocks and has_constant_parameters(op)


#: Output pixels per register tile at most. Measured on Zen 4 (AVX-512, 1 thread, ResNet-50 and
#: VGG-16 convs): with 4 channel blocks, 4–5 pixels per row reach 104–114 GFLOP/s where 7–8 pixels
#: drop to 62–98 (LLVM spills or the tile's input rows leave L1) and 2 pixels to 68.
MAX_OW_BLOCK = 5
#: Output-channel blocks per register tile at most: 4 blocks share each broadcast input value
#: (ONNX Runtime's NCHWc kernel shape), so one load feeds 4 FMAs.
MAX_OC_BLOCKS = 4


def heuristic(op: conv.Conv2DOp, target: Target) -> DirectSchedule:
    """The widest channel tile (4, 2 or 1 blocks) that leaves room for at least 4 pixels of
    accumulators, then up to `MAX_OW_BLOCK` pixels (a divisor of OW when one is close):
    ow_block × oc_blocks accumulators + oc_blocks weight vectors + 1 broadcast ≤ registers.

    On NCHWc the vector width is the block X, whatever the target's width.
    """
    g = ConvGeometry.of(op)
    vector_width = g.block or target.vector_width
    blocks = -(-g.og // vector_width)
    oc_blocks = 1
    for candidate in (MAX_OC_BLOCKS, 2):
        if candidate <= blocks and (target.vector_registers - candidate - 1) // candidate >= 4:
            oc_blocks = candidate
            break
    budget = (target.vector_registers - oc_blocks - 1) // oc_blocks
    return DirectSchedule(vector_width, row_tile(g.ow, min(budget, MAX_OW_BLOCK)), oc_blocks)


def candidates(op: conv.Conv2DOp, target: Target) -> list[DirectSchedule]:
    """The search space: the heuristic first, then for each channel tile of 4, 2 and 1 blocks
    (as many as the conv has) the widest, a narrow (3) and a wide (MAX_OW_BLOCK + 2) pixel row
    that fit in the registers beside the tile's weight vectors and one broadcast."""
    base = heuristic(op, target)
    g = ConvGeometry.of(op)
    blocks = -(-g.og // base.vector_width)
    schedules = [base]
    for oc_blocks in (base.oc_blocks, *(n for n in (MAX_OC_BLOCKS, 2, 1) if n <= blocks)):
        budget = (target.vector_registers - oc_blocks - 1) // oc_blocks
        for cap in (MAX_OW_BLOCK, 3, MAX_OW_BLOCK + 2):
            ow_block = row_tile(g.ow, min(budget, cap))
            schedules.append(DirectSchedule(base.vector_width, ow_block, oc_blocks))
    return list(dict.fromkeys(schedules))


def tolerance(schedule: DirectSchedule) -> float:
    """Largest relative error a tuner accepts from this schedule (`ACCUMULATION_TOLERANCE`)."""
    return ACCUMULATION_TOLERANCE


def streams_weights_from_l2(op: conv.Conv2DOp, target: Target) -> bool:
    """Whether the weights one register tile runs over (C/G · KH · KW · oc_blocks vectors, read
    once per width tile) fit in half of L2, so the direct loop re-reads them at L2 speed.

    Measured on Zen 4 (1 MiB L2, `convir bench layers --models resnet50 --algorithm direct|im2col`):
    where they fit (ResNet-50's 7×7 stem: 37 KiB; 3×3 with 64 or 128 input channels: 144 and
    288 KiB) direct beats im2col by 2–5 % and the stem by 17 %; at 256 and 512 input channels
    (576 KiB, 1.1 MiB) im2col wins by up to 17 %.
    """
    g = ConvGeometry.of(op)
    s = heuristic(op, target)
    return 4 * g.cg * g.kh * g.kw * s.oc_blocks * s.vector_width <= target.l2_bytes // 2


#: The share of a dilated conv's multiply-adds that fall on padding from which selection puts
#: direct first (`skips_much_padding`).
PADDED_SHARE_FOR_DIRECT = 0.15


def padded_share(g: ConvGeometry) -> float:
    """The share of the conv's (output pixel, tap) pairs whose tap falls in the padding."""
    live = 1.0
    for axis in (0, 1):
        size, out = (g.h, g.w)[axis], (g.oh, g.ow)[axis]
        taps, stride = (g.kh, g.kw)[axis], g.strides[axis]
        dilation, before = g.dilations[axis], g.pads[axis]
        inside = sum(
            0 <= o * stride - before + k * dilation < size for o in range(out) for k in range(taps)
        )
        live *= inside / (out * taps)
    return 1.0 - live


def skips_much_padding(op: conv.Conv2DOp) -> bool:
    """Whether selection should put direct before im2win and im2col: a dilated conv with at least
    PADDED_SHARE_FOR_DIRECT of its multiply-adds on padding. Direct skips padded kernel rows
    (`border_tiles.tap_rows`) and, in border tiles, columns (`border_tiles.tap_columns`); im2win's
    window and im2col's panel hold the padding, and their FMAs run over it.

    Measured on znver3 (AVX2), 1 thread, thread CPU time under load 8-9 (noisy, +-30 %;
    `examples/benchmarks/conv_variants_cpu.py /work/tv/<model>.onnx conv2 im2win direct
    im2col`, torchvision exports): DeepLabV3's ASPP 960×14×14→256, 3×3, dilation 12 (82 %
    padding): direct 12-21 ms, im2win 20-35, im2col ~39; FCN-ResNet50's 512×28×28→512 dilation
    4 (18 %): direct 73, im2win 112, im2col 108; its dilation-2 convs (10 %), where im2win
    stays first: 256 channels 16 (im2win) vs 19 (direct), 512 channels 88 vs 91.
    """
    g = ConvGeometry.of(op)
    dilated = g.dilations != (1, 1)
    return dilated and padded_share(g) >= PADDED_SHARE_FOR_DIRECT and applicable(op)


def _schedule(op: conv.Conv2DOp, g: ConvGeometry) -> DirectSchedule:
    schedule = DirectSchedule.from_attr(op.schedule)
    if g.block is not None and schedule.vector_width != g.block:
        raise ValueError(
            f"'{op.name}' direct schedule: vector_width {schedule.vector_width} must equal the "
            f"NCHWc block {g.block}"
        )
    if g.block is not None and g.group > 1 and g.og % g.block:
        raise ValueError(
            f"'{op.name}' direct on NCHWc: {g.og} output channels per group are not whole blocks "
            f"of {g.block} (leave the conv in NCHW)"
        )
    return schedule


def pack_weight(weight: np.ndarray, group: int, width: int) -> np.ndarray:
    """[O, C/G, KH, KW] -> [G, OB, C/G, KH, KW, width], output channels zero-padded per group."""
    o, cg, kh, kw = weight.shape
    og = o // group
    blocks = -(-og // width)
    padded = np.zeros((group, blocks * width, cg, kh, kw), np.float32)
    padded[:, :og] = weight.reshape(group, og, cg, kh, kw)
    return np.ascontiguousarray(
        padded.reshape(group, blocks, width, cg, kh, kw).transpose(0, 1, 3, 4, 5, 2)
    )


def pack_weight_blocked(weight: np.ndarray, group: int, block: int) -> np.ndarray:
    """[O, C/G, KH, KW] -> [G, OB, CB, KH, KW, X_in, X_out] for NCHWc: per output block, per input
    block and tap, an X_in × X_out matrix whose rows are the weight vectors of the block's input
    lanes, in the order the kernel reads them. Both channel counts zero-padded per group."""
    o, cg, kh, kw = weight.shape
    og = o // group
    out_blocks, in_blocks = -(-og // block), -(-cg // block)
    padded = np.zeros((group, out_blocks * block, in_blocks * block, kh, kw), np.float32)
    padded[:, :og, :cg] = weight.reshape(group, og, cg, kh, kw)
    blocked = padded.reshape(group, out_blocks, block, in_blocks, block, kh, kw)
    return np.ascontiguousarray(blocked.transpose(0, 1, 3, 5, 6, 4, 2))


def pack_bias(bias: np.ndarray, group: int, width: int) -> np.ndarray:
    """[O] -> [G, OB, width], zero-padded per group."""
    og = bias.shape[0] // group
    blocks = -(-og // width)
    padded = np.zeros((group, blocks * width), np.float32)
    padded[:, :og] = bias.reshape(group, og)
    return padded.reshape(group, blocks, width)


class DirectEmitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "direct"`."""

    def key(self, op: Operation) -> str:
        g = ConvGeometry.of(op)
        s = _schedule(op, g)
        return (
            f"conv_direct_{g.key()}_w{s.vector_width}t{s.ow_block}x{s.oc_blocks}_{epilogue_key(op)}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        g = ConvGeometry.of(op)
        width = _schedule(op, g).vector_width
        pack = pack_weight if g.block is None else pack_weight_blocked
        packers: dict[int, Packer] = {1: lambda w: pack(w, g.group, width)}
        if op.bias is not None:
            packers[2] = lambda b: pack_bias(b, g.group, width)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        return 0  # padding is handled in the loops, not by a padded copy

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        g = ConvGeometry.of(op)
        s = _schedule(op, g)
        wb = s.vector_width
        blocks = -(-g.og // wb)
        if g.block is None:
            weight_shape = (g.group, blocks, g.cg, g.kh, g.kw, wb)
        else:
            weight_shape = (g.group, blocks, -(-g.cg // wb), g.kh, g.kw, wb, wb)
        bias_shape = (g.group, blocks, wb)
        with conv_kernel(module, name, op, g, weight_shape, bias_shape, 0) as buffers:
            _emit_tiles(_Tiling(g, s, blocks), op, buffers)


@dataclass(frozen=True)
class _Tiling:
    """A conv's geometry with its schedule and the number of W-lane output blocks per group."""

    g: ConvGeometry
    s: DirectSchedule
    blocks: int


def _emit_tiles(t: _Tiling, op, buffers) -> None:
    """The threaded loop over output rows and channel-block groups, then the width tiles."""
    g, s = t.g, t.s
    block_groups = -(-t.blocks // s.oc_blocks)
    with parallel([(0, g.n), (0, g.group), (0, block_groups), (0, g.oh)]) as (n, grp, bg, oh):
        emit_tile = _emit_tile if g.block is None else _emit_blocked_tile
        rows = tap_rows(g, oh)
        guarded_width_tiles(
            g,
            s.ow_block,
            lambda ow0, width, guarded: emit_tile(
                t, op, buffers, _Position(n, grp, bg, oh, ow0, rows, guarded), width
            ),
        )


@dataclass(frozen=True)
class _Position:
    """Where a register tile is: image, group, channel-block group, output row, first output
    column; the range [first, last) of kernel rows that fall inside the input for this output
    row, and whether the tile's columns may fall outside it (then each load is guarded)."""

    n: SSAValue
    grp: SSAValue
    bg: SSAValue
    oh: SSAValue
    ow0: Index
    rows: tuple[Index, Index]
    guarded: bool


def _output_blocks(t: _Tiling, bg: SSAValue) -> list[SSAValue]:
    """The output-channel blocks (within the group) of block group `bg`.

    The last block group may run past the channel blocks: those are clamped to the last block
    (its tile is then computed and stored twice, identically).
    """
    blocks = [affine([(bg, t.s.oc_blocks)], j) for j in range(t.s.oc_blocks)]
    if t.blocks % t.s.oc_blocks:
        last = index(t.blocks - 1)
        blocks = [arith.MinSIOp(b, last).result for b in blocks]
    return blocks


def _initial_tile(t: _Tiling, bias, grp, blocks, ow_block: int) -> list[SSAValue]:
    wb = t.s.vector_width
    return [
        load_vector(bias, [grp, blocks[j], 0], wb) if bias is not None else splat(0.0, wb)
        for j in range(t.s.oc_blocks)
        for _ in range(ow_block)
    ]


def input_column(g: ConvGeometry, ow0: Index, kw: SSAValue, pixel: int) -> SSAValue:
    """The input column of output column ow0 + pixel at kernel column kw (may be outside)."""
    return affine([(ow0, g.strides[1]), (kw, g.dilations[1])], pixel * g.strides[1] - g.pads[1])


def column_inside(g: ConvGeometry, column: SSAValue, guarded: bool) -> SSAValue | None:
    """In a guarded tile, whether input column `column` is inside [0, W) (else None)."""
    if not guarded:
        return None
    return arith.CmpiOp(column, index(g.w), "ult").result  # also false when < 0


def _input_value(x: SSAValue, indices: list, column: int, inside: SSAValue | None) -> SSAValue:
    """x[indices], with indices[column] clamped into the input when `inside` may be false: the
    value loaded there is a stand-in whose product `fma_where` drops, since the padding
    contributes nothing (0 · an Inf weight would be NaN)."""
    if inside is None:
        return load(x, indices)
    safe = list(indices)
    safe[column] = arith.SelectOp(inside, indices[column], index(0)).result
    return load(x, safe)


def _mask(inside: SSAValue | None, width: int) -> SSAValue | None:
    """The lane mask of a column test, or None where every column is inside."""
    return None if inside is None else lane_mask(inside, width)


def _emit_tile(t: _Tiling, op, buffers, at: _Position, ow_block: int) -> None:
    """NCHW: accumulate one ow_block × oc_blocks tile over (c, kh, kw), epilogue, store."""
    x, weight, bias, residual, y, _ = buffers
    n, grp = at.n, at.grp
    g, s = t.g, t.s
    wb = s.vector_width
    blocks = _output_blocks(t, at.bg)
    kernel_columns = tap_columns(g, at.ow0, ow_block) if at.guarded else (0, g.kw)
    with loop(0, g.cg, carry=_initial_tile(t, bias, grp, blocks, ow_block)) as c_loop:
        channel = affine([(grp, g.cg), (c_loop.iv, 1)])
        with loop(*at.rows, carry=c_loop.carried) as kh_loop:
            row = affine([(at.oh, g.strides[0]), (kh_loop.iv, g.dilations[0])], -g.pads[0])
            with loop(*kernel_columns, carry=kh_loop.carried) as kw_loop:
                accs = list(kw_loop.carried)
                weights = [
                    load_vector(weight, [grp, b, c_loop.iv, kh_loop.iv, kw_loop.iv, 0], wb)
                    for b in blocks
                ]
                for r in range(ow_block):
                    col = input_column(g, at.ow0, kw_loop.iv, r)
                    inside = column_inside(g, col, at.guarded)
                    value = _input_value(x, [n, channel, row, col], 3, inside)
                    pixel, mask = broadcast(value, wb), _mask(inside, wb)
                    for j, wv in enumerate(weights):
                        acc = accs[j * ow_block + r]
                        accs[j * ow_block + r] = fma_where(mask, pixel, wv, acc)
                kw_loop.yield_(*accs)
            kh_loop.yield_(*kw_loop.results)
        c_loop.yield_(*kh_loop.results)
    for j in range(s.oc_blocks):
        for r in range(ow_block):
            acc = c_loop.results[j * ow_block + r]
            position = (n, grp, blocks[j], at.oh, add(at.ow0, r))
            _store_nchw_tile(t, op, acc, residual, y, position)


def _emit_blocked_tile(t: _Tiling, op, buffers, at: _Position, ow_block: int) -> None:
    """NCHWc: accumulate one ow_block × oc_blocks tile over input blocks, epilogue, store.

    Loop order input block -> kh -> kw -> lane (unrolled): the X lanes of one input pixel are
    one cache line, and the weights are read sequentially. Only the logical lanes of a partial
    last input block are read, so its padded lanes never matter. An NCHW input (`nchw_input`,
    a few-channel stem) is read as X-channel blocks the same way, lane `l` from plane `l`.
    """
    x, weight, bias, residual, y, _ = buffers
    n, grp = at.n, at.grp
    g, s = t.g, t.s
    wb = s.vector_width
    blocks = _output_blocks(t, at.bg)
    group_blocks = -(-g.cg // wb)
    full, partial = divmod(g.cg, wb)
    accs = _initial_tile(t, bias, grp, blocks, ow_block)
    kernel_columns = tap_columns(g, at.ow0, ow_block) if at.guarded else (0, g.kw)

    def accumulate(accs: list[SSAValue], block: Index, lanes: int) -> list[SSAValue]:
        in_block = affine([(grp, group_blocks), (block, 1)])

        def input_value(
            row: SSAValue, col: SSAValue, lane: int, inside: SSAValue | None
        ) -> SSAValue:
            if g.nchw_input:  # channel `lane` of input block `block`, read from an NCHW plane
                channel = affine([(grp, g.cg), (block, wb)], lane)
                return _input_value(x, [n, channel, row, col], 3, inside)
            return _input_value(x, [n, in_block, row, col, lane], 3, inside)

        with loop(*at.rows, carry=accs) as kh_loop:
            row = affine([(at.oh, g.strides[0]), (kh_loop.iv, g.dilations[0])], -g.pads[0])
            with loop(*kernel_columns, carry=kh_loop.carried) as kw_loop:
                tile = list(kw_loop.carried)
                cols = [input_column(g, at.ow0, kw_loop.iv, r) for r in range(ow_block)]
                insides = [column_inside(g, col, at.guarded) for col in cols]
                masks = [_mask(inside, wb) for inside in insides]
                for lane in range(lanes):
                    weights = [
                        load_vector(weight, [grp, b, block, kh_loop.iv, kw_loop.iv, lane, 0], wb)
                        for b in blocks
                    ]
                    for r, col in enumerate(cols):
                        pixel = broadcast(input_value(row, col, lane, insides[r]), wb)
                        for j, wv in enumerate(weights):
                            acc = tile[j * ow_block + r]
                            tile[j * ow_block + r] = fma_where(masks[r], pixel, wv, acc)
                kw_loop.yield_(*tile)
            kh_loop.yield_(*kw_loop.results)
        return list(kh_loop.results)

    if full:
        with loop(0, full, carry=accs) as block_loop:
            block_loop.yield_(*accumulate(list(block_loop.carried), block_loop.iv, wb))
        accs = list(block_loop.results)
    if partial:
        accs = accumulate(accs, full, partial)
    for j in range(s.oc_blocks):
        out_block = affine([(grp, g.og // wb), (blocks[j], 1)])
        for r in range(ow_block):
            position = [n, out_block, at.oh, add(at.ow0, r)]
            store_blocked(op, accs[j * ow_block + r], residual, y, position)


def _store_nchw_tile(t: _Tiling, op, acc, residual, y, position) -> None:
    """Residual, activation, and the per-lane store of one accumulator (W output channels)."""
    n, grp, block, oh, ow = position
    g, wb = t.g, t.s.vector_width
    base = affine([(grp, g.og), (block, wb)])
    channels = [add(base, lane) for lane in range(wb)]
    # Lane `lane` holds channel `base + lane` of this group; lanes past the group's end are padding.
    lane_ok = [
        arith.CmpiOp(affine([(block, wb)], lane), index(g.og), "ult").result for lane in range(wb)
    ]
    exact = g.og % wb == 0
    if residual is not None:
        added = splat(0.0, wb)
        for lane in range(wb):
            value = _guarded_load(
                residual, [n, channels[lane], oh, ow], None if exact else lane_ok[lane]
            )
            added = insert(value, added, lane)
        acc = arith.AddfOp(acc, added).result
    if op.activation is not None:
        acc = apply_activation(acc, op.activation.data, float_of(op.alpha), float_of(op.beta), wb)
    for lane in range(wb):
        value = extract(acc, lane)
        if exact:
            store(value, y, [n, channels[lane], oh, ow])
        else:
            with if_(lane_ok[lane]):
                store(value, y, [n, channels[lane], oh, ow])


def _guarded_load(ref: SSAValue, indices, ok: SSAValue | None) -> SSAValue:
    """ref[indices], or 0 when `ok` is false (the index would be out of bounds)."""
    if ok is None:
        return load(ref, indices)
    # Clamp the channel index into bounds, then select: a branch-free guarded load.
    safe = list(indices)
    safe[1] = arith.SelectOp(ok, indices[1], index(0)).result
    return arith.SelectOp(ok, load(ref, safe), f32_constant(0.0)).result
