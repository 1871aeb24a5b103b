"""Which kernel rows and columns of a conv fall inside its input, per output row and width tile:
the padding-skipping geometry `direct`, `im2win` and `depthwise` share.

`tap_rows` gives the kernel rows an output row reads inside the input (rows of padding form no
product and are skipped), `guarded_width_tiles` cuts an output row into the width tiles whose
taps all fall inside (one unguarded loop) and the border tiles, and `tap_columns` the kernel
columns a border tile reads inside the input for some of its pixels. A dilated conv on a small
map (DeepLabV3's ASPP: 3×3, dilation 12, on 14×14) is all border tiles and reads one or two of
its three kernel rows and columns per output row and tile.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import arith
from xdsl.ir import SSAValue

from lowering.algorithms.common import ConvGeometry
from lowering.emit import Index, affine, index, loop


def tap_rows(g: ConvGeometry, oh: SSAValue) -> tuple[Index, Index]:
    """Kernel rows kh with 0 <= oh·stride - top + kh·dilation < H: [max(0, ⌈(top - oh·s)/d⌉),
    min(KH, ⌈(H + top - oh·s)/d⌉)). Rows of padding contribute nothing, so they are skipped."""
    top, bottom = g.pads[0], g.pads[2]
    if not top and not bottom:
        return 0, g.kh
    stride, dilation = g.strides[0], g.dilations[0]
    first: Index = 0
    last: Index = g.kh
    if top:
        before = affine([(oh, -stride)], top)  # top - oh·s
        first = arith.MaxSIOp(index(0), _ceil_div(before, dilation)).result
    if bottom:
        after = affine([(oh, -stride)], g.h + top)  # H + top - oh·s
        last = arith.MinSIOp(index(g.kh), _ceil_div(after, dilation)).result
    return first, last


def tap_columns(g: ConvGeometry, ow0: Index, width: int) -> tuple[Index, Index]:
    """Kernel columns kw that fall inside the input for some output column of the tile
    [ow0, ow0 + width): [max(0, ⌈(left - (ow0 + width - 1)·s)/d⌉), min(KW, ⌈(W + left -
    ow0·s)/d⌉)) (every kw outside reads only padding for the whole tile, so a border tile
    skips it; inside it a padded tap is still dropped per pixel). A dilated conv on a small
    map (DeepLabV3's ASPP: 3×3, dilation 12, on 14×14) reads one or two of its three kernel
    columns per tile."""
    left, right = g.pads[1], g.pads[3]
    if not left and not right:
        return 0, g.kw
    stride, dilation = g.strides[1], g.dilations[1]
    if isinstance(ow0, int):  # a tile at a known column: Python ints
        before, after = left - (ow0 + width - 1) * stride, g.w + left - ow0 * stride
        return max(0, -(-before // dilation)), min(g.kw, -(-after // dilation))
    first: Index = 0
    last: Index = g.kw
    if left:
        before = affine([(ow0, -stride)], left - (width - 1) * stride)
        first = arith.MaxSIOp(index(0), _ceil_div(before, dilation)).result
    if right:
        after = affine([(ow0, -stride)], g.w + left)  # W + left - ow0·s
        last = arith.MinSIOp(index(g.kw), _ceil_div(after, dilation)).result
    return first, last


def _ceil_div(value: SSAValue, divisor: int) -> SSAValue:
    if divisor == 1:
        return value
    return arith.CeilDivSIOp(value, index(divisor)).result


#: Border tiles emitted one by one (at constant columns) rather than in a loop, at most.
STATIC_BORDER_TILES = 4


def guarded_width_tiles(
    g: ConvGeometry, ow_block: int, emit: Callable[[Index, int, bool], None]
) -> None:
    """Cover output columns [0, OW) with tiles of `ow_block` and one narrower remainder tile:
    emit(first column, width, guarded). Tiles whose taps all fall inside the input run in one
    unguarded loop; the others (the left and right borders) are emitted one by one at their
    columns (a Python int) when there are at most STATIC_BORDER_TILES of them, so that each
    runs a constant range of kernel columns (`tap_columns`: a loop with run-time bounds there
    made DeepLabV3's atrous conv 1.6x slower), else they share one guarded loop body."""
    left = g.pads[1]
    stride, span = g.strides[1], (g.kw - 1) * g.dilations[1]
    # Output columns whose taps are all inside the input: [inside_first, inside_end).
    inside_first = -(-left // stride)
    inside_end = max(inside_first, (g.w - 1 + left - span) // stride + 1)
    full = g.ow // ow_block
    first = min(full, -(-inside_first // ow_block))
    end = max(first, min(full, (inside_end - ow_block) // ow_block + 1))
    border = first + full - end
    if 0 < border <= STATIC_BORDER_TILES:
        # Each at its known column: `tap_columns` then gives constant kernel-column bounds.
        for number in (*range(first), *range(end, full)):
            emit(number * ow_block, ow_block, True)
    elif border:
        with loop(0, border) as tile:
            # Border tile i: tile i on the left, tile end + (i - first) on the right.
            right = arith.CmpiOp(tile.iv, index(first), "sge").result
            number = arith.SelectOp(right, affine([(tile.iv, 1)], end - first), tile.iv).result
            emit(affine([(number, ow_block)]), ow_block, True)
    if end > first:
        with loop(first * ow_block, end * ow_block, ow_block) as tile:
            emit(tile.iv, ow_block, False)
    remainder = g.ow % ow_block
    if remainder:
        start = full * ow_block
        inside = inside_first <= start and start + remainder <= inside_end
        emit(start, remainder, not inside)
