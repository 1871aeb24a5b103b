"""The register tiles of `im2win` (its module doc, **Kernel** and **Input chunks**): per block of
output rows, flat tiles of `ow_block` pixels × `oc_blocks` output blocks over the window when
every weight is finite, else row by row with masked border tiles; accumulators in registers
over the chunk's input blocks × kw × kh × lanes, the epilogue applied at the last chunk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xdsl.dialects import arith
from xdsl.ir import SSAValue

from lowering.algorithms import border_tiles
from lowering.algorithms.common import ConvBuffers, store_blocked
from lowering.emit import (
    Index,
    add,
    affine,
    broadcast,
    f32_constant,
    if_else,
    index,
    load,
    load_vector,
    loop,
    splat,
    store_vector,
)
from lowering.microkernel import fma_where, lane_mask

if TYPE_CHECKING:
    from lowering.algorithms.im2win import Im2winBlocking


def chunk_size(b: Im2winBlocking, chunk: SSAValue | None) -> Index:
    """Input blocks of `chunk` (all of them without chunks; the last chunk may be short)."""
    if chunk is None:
        return b.g.input_blocks
    left = affine([(chunk, -b.chunk_blocks)], b.g.input_blocks)
    return arith.MinSIOp(index(b.chunk_blocks), left).result


@dataclass(frozen=True)
class Tile:
    """Where one register tile is: image, group, output-channel block group, the block's first
    output row; its pixels as (row within the block, output column); the kernel rows [first,
    last) it runs; whether its FMAs are masked outside the input columns; the input chunk
    (None: no chunks)."""

    n: SSAValue
    grp: SSAValue
    bg: SSAValue
    first_row: SSAValue
    pixels: list[tuple[Index, Index]]
    kernel_rows: tuple[Index, Index]
    masked: bool
    chunk: SSAValue | None = None


def emit_rows(b: Im2winBlocking, op, buffers: ConvBuffers, window: SSAValue, block) -> None:
    """The block's tiles: flat tiles over its rows when every weight is finite (then the
    window's zeros stand for the padding), else row by row with masked border tiles. Decided
    at run time from the packed flag row, as in im2col: the kernel does not depend on the
    weights' values."""
    flag = load(buffers.weight, [0, 0, b.depth, 0])
    finite = arith.CmpfOp(flag, f32_constant(0.0), "one").result
    if_else(
        finite,
        lambda: _emit_flat(b, op, buffers, window, block),
        lambda: _emit_row_by_row(b, op, buffers, window, block),
    )


def _emit_flat(b: Im2winBlocking, op, buffers: ConvBuffers, window: SSAValue, block) -> None:
    """Every output-channel group × flat tile of the block: its rows × OW output pixels, in
    row-major order, cut into tiles of `ow_block` pixels that may span rows, and one narrower
    remainder tile. The pixel count is static: every block but an image's last has
    block_rows rows, the last has the rest (two variants)."""
    n, first_row, rows, chunk = block
    last_rows = b.g.oh - (b.blocks_per_image - 1) * b.block_rows

    def tiles(count: int) -> None:
        with loop(0, b.g.group) as grp, loop(0, _block_groups(b)) as bg:
            total = count * b.g.ow
            width = min(b.s.ow_block, total)
            full = total // width
            at = (n, grp.iv, bg.iv, first_row, chunk)
            with loop(0, full * width, width) as tile:
                _emit_flat_tile(b, op, buffers, window, at, tile.iv, width)
            if total % width:
                _emit_flat_tile(b, op, buffers, window, at, full * width, total % width)

    if last_rows == b.block_rows:
        tiles(b.block_rows)
    else:
        last = arith.CmpiOp(rows, index(b.block_rows), "eq").result
        if_else(last, lambda: tiles(b.block_rows), lambda: tiles(last_rows))


def _emit_flat_tile(
    b: Im2winBlocking, op, buffers: ConvBuffers, window: SSAValue, at, first: Index, width: int
) -> None:
    """Flat tile of pixels [first, first + width) of the block (row-major): each pixel's row
    and column, and the kernel rows that any of them reads (the others' rows there are
    padding: zeros in the window)."""
    n, grp, bg, first_row, chunk = at
    ow = b.g.ow
    pixels: list[tuple[Index, Index]] = []
    for p in range(width):
        if isinstance(first, int):
            pixels.append(divmod(first + p, ow))
        else:
            q = add(first, p)
            pixels.append((arith.DivUIOp(q, index(ow)).result, arith.RemUIOp(q, index(ow)).result))
    top_row = add(first_row, pixels[0][0])
    bottom_row = add(first_row, pixels[-1][0])
    # Later rows start and end lower in the kernel (`border_tiles.tap_rows`): the union of the
    # pixels' kernel rows is [the last pixel's first, the first pixel's last).
    kernel_rows = (
        border_tiles.tap_rows(b.g, bottom_row)[0],
        border_tiles.tap_rows(b.g, top_row)[1],
    )
    tile = Tile(n, grp, bg, first_row, pixels, kernel_rows, False, chunk)
    _emit_tile_body(b, op, buffers, window, tile)


def _block_groups(b: Im2winBlocking) -> int:
    return -(-b.out_blocks // b.s.oc_blocks)


def _emit_row_by_row(b: Im2winBlocking, op, buffers: ConvBuffers, window: SSAValue, block) -> None:
    """Every output row of the block × output-channel group × width tile, the kernel rows of
    each output row only; border tiles mask the FMAs of padded columns (some weight is not
    finite, so 0 · weight must not be formed there)."""
    g, s = b.g, b.s
    n, first_row, rows, chunk = block
    with (
        loop(0, g.group) as grp,
        loop(0, _block_groups(b)) as bg,
        loop(0, rows) as r,
    ):
        kernel_rows = border_tiles.tap_rows(g, add(first_row, r.iv))

        def emit(ow0: Index, width: int, guarded: bool) -> None:
            pixels = [(r.iv, add(ow0, p)) for p in range(width)]
            tile = Tile(n, grp.iv, bg.iv, first_row, pixels, kernel_rows, guarded, chunk)
            _emit_tile_body(b, op, buffers, window, tile)

        border_tiles.guarded_width_tiles(g, s.ow_block, emit)


def _output_blocks(b: Im2winBlocking, bg: SSAValue) -> list[SSAValue]:
    """The output blocks (within the group) of block group `bg`; past the last block they are
    clamped to it (its tile is then computed and stored twice, identically)."""
    oc_blocks = b.s.oc_blocks
    blocks = [affine([(bg, oc_blocks)], j) for j in range(oc_blocks)]
    if b.out_blocks % oc_blocks:
        last = index(b.out_blocks - 1)
        blocks = [arith.MinSIOp(block, last).result for block in blocks]
    return blocks


def _emit_tile_body(
    b: Im2winBlocking, op, buffers: ConvBuffers, window: SSAValue, at: Tile
) -> None:
    """Accumulate one pixels × oc_blocks tile over input blocks × kw × kh × lanes from the
    window (FMAs of padded columns masked when `at.masked`), then the epilogue and the stores.
    With chunks, the accumulators start from the partial sums in y but on the first chunk,
    and only the last chunk's stores apply the epilogue."""
    g = b.g
    x = g.block
    grp = at.grp
    width = len(at.pixels)
    weight, bias, residual, y = buffers.weight, buffers.bias, buffers.residual, buffers.y
    blocks = _output_blocks(b, at.bg)
    group_blocks = -(-g.cg // x)  # whole blocks when group > 1 (applicable)
    full, partial = divmod(g.cg, x)
    outputs = [
        [at.n, affine([(grp, b.out_blocks), (ob, 1)]), add(at.first_row, r), index(ow)]
        for ob in blocks
        for r, ow in at.pixels
    ]
    accs = [
        load_vector(bias, [grp, blocks[j], 0], x) if bias is not None else splat(0.0, x)
        for j in range(len(blocks))
        for _ in range(width)
    ]
    if at.chunk is not None:
        first = arith.CmpiOp(at.chunk, index(0), "eq").result
        accs = [
            arith.SelectOp(first, acc, load_vector(y, [*out, 0], x)).result
            for acc, out in zip(accs, outputs, strict=True)
        ]
        full, partial = chunk_size(b, at.chunk), 0  # whole blocks (`chunk_blocks`)
    (sw, dw), left = (g.strides[1], g.dilations[1]), g.pads[1]
    rows = [index(r) for r, _ in at.pixels]

    def accumulate(accs: list[SSAValue], block: Index, lanes: int) -> list[SSAValue]:
        cb = affine([(grp, group_blocks), (block, 1)]) if g.group > 1 else index(block)
        if at.chunk is not None:  # the window holds the chunk's blocks, the weights all
            block = affine([(at.chunk, b.chunk_blocks), (block, 1)])
        with loop(0, g.kw, carry=accs) as kw_loop:
            columns = [affine([(ow, sw), (kw_loop.iv, dw)]) for _, ow in at.pixels]
            masks = [None] * width
            if at.masked:
                masks = [
                    lane_mask(arith.CmpiOp(add(c, -left), index(g.w), "ult").result, x)
                    for c in columns
                ]
            with loop(*at.kernel_rows, carry=kw_loop.carried) as kh_loop:
                tile_accs = list(kh_loop.carried)
                row = affine([(block, g.kw * g.kh * x), (kw_loop.iv, g.kh * x), (kh_loop.iv, x)])
                for lane in range(lanes):
                    weights = [
                        load_vector(weight, [grp, ob, add(row, lane), 0], x) for ob in blocks
                    ]
                    for p, column in enumerate(columns):
                        value = load(window, [cb, rows[p], column, kh_loop.iv, lane])
                        pixel = broadcast(value, x)
                        for j, wv in enumerate(weights):
                            k = j * width + p
                            tile_accs[k] = fma_where(masks[p], pixel, wv, tile_accs[k])
                kh_loop.yield_(*tile_accs)
            kw_loop.yield_(*kh_loop.results)
        return list(kw_loop.results)

    if full:
        with loop(0, full, carry=accs) as block_loop:
            block_loop.yield_(*accumulate(list(block_loop.carried), block_loop.iv, x))
        accs = list(block_loop.results)
    if partial:
        accs = accumulate(accs, full, partial)

    def store_final() -> None:
        for acc, out in zip(accs, outputs, strict=True):
            store_blocked(op, acc, residual, y, out)

    if at.chunk is None:
        store_final()
        return

    def store_partial() -> None:
        for acc, out in zip(accs, outputs, strict=True):
            store_vector(acc, y, [*out, 0])

    last = arith.CmpiOp(at.chunk, index(b.chunks - 1), "eq").result
    if_else(last, store_final, store_partial)
