"""The kernel of `winograd`: one conv's plan (tiles, blocks, panel groups, buffer shapes) and
the loop-level IR of its work items: input transforms into the GEMM panels, the α² GEMMs on the
microkernel, output transforms with the fused epilogue. What is computed, in which layouts and
why is the module doc of `lowering.algorithms.winograd`; the schedule, its heuristic and the
emitter's interface live there too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from convir.dialects import conv
from lowering.algorithms.common import ConvBuffers, ConvGeometry, conv_kernel, store_blocked
from lowering.algorithms.winograd_transforms import Matrix, cook_toom
from lowering.emit import (
    Index,
    add,
    affine,
    f32_memref,
    fma,
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
from lowering.microkernel import Operands, PanelTiling, accumulate, blocked_depth

if TYPE_CHECKING:
    from lowering.algorithms.winograd import WinogradSchedule


@dataclass(frozen=True)
class Plan:
    """One conv's tiles, blocks and buffers under a winograd schedule."""

    g: ConvGeometry
    s: WinogradSchedule

    @property
    def block(self) -> int:
        assert self.g.block is not None
        return self.g.block

    @property
    def alpha(self) -> int:
        return self.s.m + 2

    @property
    def tile_grid(self) -> tuple[int, int]:
        return -(-self.g.oh // self.s.m), -(-self.g.ow // self.s.m)

    @property
    def tiles_per_image(self) -> int:
        return self.tile_grid[0] * self.tile_grid[1]

    @property
    def total_tiles(self) -> int:
        return self.g.n * self.tiles_per_image

    @property
    def block_tiles(self) -> int:
        """Tiles per block, never more than the conv's tiles rounded up to MR."""
        return min(self.s.block_tiles, -(-self.total_tiles // self.s.mr) * self.s.mr)

    @property
    def blocks(self) -> int:
        return -(-self.total_tiles // self.block_tiles)

    @property
    def panels(self) -> PanelTiling:
        return PanelTiling(self.g.output_blocks, self.s.nr)

    @property
    def group_panels(self) -> int:
        """Weight panels per panel group."""
        return -(-self.panels.count // min(self.s.panel_groups, self.panels.count))

    @property
    def panel_groups(self) -> int:
        """Non-empty panel groups (at most the schedule's)."""
        return -(-self.panels.count // self.group_panels)

    @property
    def items(self) -> int:
        """Work items: (block, panel group) pairs, block-major."""
        return self.blocks * self.panel_groups

    def v_shape(self) -> tuple[int, ...]:
        mr = self.s.mr
        return (self.alpha**2, self.block_tiles // mr, self.g.input_blocks, mr, self.block)

    def m_shape(self) -> tuple[int, ...]:
        return (self.block_tiles, self.panels.count * self.s.nr, self.alpha**2, self.block)

    def tile_bytes(self) -> int:
        """Workspace bytes per tile of a block: its V and M rows."""
        lanes = (self.g.input_blocks + self.panels.count * self.s.nr) * self.block
        return 4 * self.alpha**2 * lanes

    def input_tile_bytes(self) -> int:
        """Bytes of one tile's V rows (what a panel group repeats)."""
        return 4 * self.alpha**2 * self.g.input_blocks * self.block

    def transformed_weight_bytes(self) -> int:
        """Bytes of U, which every block reads once."""
        return 4 * self.alpha**2 * self.g.c * self.g.o

    def border_shape(self) -> tuple[int, ...]:
        return (self.s.m, self.s.m, self.block)

    def slot_bytes(self) -> int:
        return self.block_tiles * self.tile_bytes() + 4 * self.s.m**2 * self.block

    def weight_shape(self) -> tuple[int, ...]:
        return (self.alpha**2, self.panels.count, self.g.c, self.s.nr * self.block)


def emit_winograd(op: conv.Conv2DOp, plan: Plan, module: ModuleOp, name: str) -> None:
    """Append the kernel function `name` computing `op` under `plan` to `module`."""
    g = plan.g
    bias_shape = (g.output_blocks, plan.block)
    workspace_bytes = plan.s.slots * plan.slot_bytes()
    with (
        conv_kernel(
            module, name, op, g, plan.weight_shape(), bias_shape, workspace_bytes
        ) as buffers,
        parallel([(0, plan.s.slots)]) as (slot,),
    ):
        workspace = _Workspace.of(plan, buffers.workspace, slot)
        with loop(slot, plan.items, plan.s.slots) as item:
            groups = index(plan.panel_groups)
            block = arith.DivUIOp(item.iv, groups).result
            group = arith.RemUIOp(item.iv, groups).result
            _emit_item(op, plan, buffers, workspace, (block, group))


class _Workspace(NamedTuple):
    """One worker's buffers: the A panels V, the GEMM results M, a border tile's outputs."""

    v: SSAValue
    products: SSAValue
    border: SSAValue

    @staticmethod
    def of(plan: Plan, workspace: SSAValue | None, slot: SSAValue) -> _Workspace:
        assert workspace is not None
        offset: SSAValue = mul(slot, plan.slot_bytes())
        views = []
        for shape in (plan.v_shape(), plan.m_shape(), plan.border_shape()):
            views.append(view(workspace, offset, f32_memref(shape)))
            offset = add(offset, 4 * int(np.prod(shape)))
        return _Workspace(*views)


def _emit_item(
    op: conv.Conv2DOp,
    plan: Plan,
    buffers: ConvBuffers,
    workspace: _Workspace,
    item: tuple[SSAValue, SSAValue],
) -> None:
    """Block `block` × panel group `group`: input transforms into V, the α² GEMMs of the
    group's panels into M, output transforms of the group's output blocks."""
    block, group = item
    v, products = workspace.v, workspace.products
    mr = plan.s.mr
    first = mul(block, plan.block_tiles)
    remaining = arith.SubiOp(index(plan.total_tiles), first).result
    count = arith.MinSIOp(index(plan.block_tiles), remaining).result
    row_tiles = arith.DivUIOp(add(count, mr - 1), index(mr)).result
    panels = _group_range(plan, group, plan.group_panels, plan.panels.count)
    out_blocks = _group_range(plan, group, plan.group_panels * plan.s.nr, plan.g.output_blocks)
    with loop(0, count) as tile:
        _input_transform(plan, buffers.x, v, add(first, tile.iv), tile.iv)
    with loop(count, mul(row_tiles, mr)) as tile:
        _zero_rows(plan, v, tile.iv)
    with (
        loop(0, plan.alpha**2) as position,
        loop(*panels) as panel,
        loop(0, row_tiles) as row_tile,
    ):
        plan.panels.dispatch(
            panel.iv,
            lambda vectors, _: _gemm_tile(
                plan, buffers.weight, (v, products), (position.iv, panel.iv, row_tile.iv), vectors
            ),
        )
    with loop(0, count) as tile, loop(*out_blocks) as out_block:
        tile_position = (add(first, tile.iv), tile.iv, out_block.iv)
        _output_transform(op, plan, buffers, workspace, tile_position)


def _group_range(plan: Plan, group: SSAValue, size: int, total: int) -> tuple[Index, Index]:
    """[group·size, min((group + 1)·size, total)): the panels or output blocks of a group."""
    if plan.panel_groups == 1:
        return 0, total
    first = mul(group, size)
    return first, arith.MinSIOp(add(first, size), index(total)).result


def _tile_origin(plan: Plan, tile: SSAValue) -> tuple[SSAValue, SSAValue, SSAValue]:
    """(image, first output row, first output column) of tile `tile` (numbered over images)."""
    per_image = index(plan.tiles_per_image)
    n = arith.DivUIOp(tile, per_image).result
    within = arith.RemUIOp(tile, per_image).result
    columns = index(plan.tile_grid[1])
    th = arith.DivUIOp(within, columns).result
    tw = arith.RemUIOp(within, columns).result
    return n, mul(th, plan.s.m), mul(tw, plan.s.m)


def _input_transform(plan: Plan, x: SSAValue, v: SSAValue, tile: SSAValue, local: SSAValue) -> None:
    """V rows of tile `tile` (row `local` of the block): Bᵀ d B per input block."""
    g = plan.g
    alpha = plan.alpha
    n, oh0, ow0 = _tile_origin(plan, tile)
    ih0, iw0 = add(oh0, -g.pads[0]), add(ow0, -g.pads[1])
    mr = index(plan.s.mr)
    row_tile, row = arith.DivUIOp(local, mr).result, arith.RemUIOp(local, mr).result
    bt = cook_toom(plan.s.m).bt

    def transform(checked: bool) -> None:
        with loop(0, g.input_blocks) as cb:
            d = _load_input_tile(plan, x, (n, cb.iv), (ih0, iw0), checked)
            for (i, j), value in _grid(_sandwich(bt, d)):
                store_vector(value, v, [i * alpha + j, row_tile, cb.iv, row, 0])

    spans = (g.h - alpha + 1, g.w - alpha + 1)
    if not g.needs_padding and g.oh % plan.s.m == 0 and g.ow % plan.s.m == 0:
        transform(checked=False)
    elif min(spans) <= 0:
        transform(checked=True)
    else:
        interior = arith.AndIOp(_below(ih0, spans[0]), _below(iw0, spans[1])).result
        if_else(interior, lambda: transform(False), lambda: transform(True))


def _load_input_tile(
    plan: Plan, x: SSAValue, planes: tuple[SSAValue, SSAValue], origin, checked: bool
) -> list[list[SSAValue]]:
    """The α × α input vectors from `origin`; with `checked`, zero outside the input."""
    g, alpha, width = plan.g, plan.alpha, plan.block
    ih = [add(origin[0], i) for i in range(alpha)]
    iw = [add(origin[1], j) for j in range(alpha)]
    if not checked:
        return [[load_vector(x, [*planes, h, w, 0], width) for w in iw] for h in ih]
    row_inside = [_below(h, g.h) for h in ih]
    column_inside = [_below(w, g.w) for w in iw]
    safe_rows, safe_columns = _clamped(row_inside, ih), _clamped(column_inside, iw)
    zero = splat(0.0, width)
    tile = []
    for row_ok, h in zip(row_inside, safe_rows, strict=True):
        values = []
        for column_ok, w in zip(column_inside, safe_columns, strict=True):
            inside = arith.AndIOp(row_ok, column_ok).result
            loaded = load_vector(x, [*planes, h, w, 0], width)
            values.append(arith.SelectOp(inside, loaded, zero).result)
        tile.append(values)
    return tile


def _clamped(inside: list[SSAValue], indices: list[SSAValue]) -> list[SSAValue]:
    """Each index where `inside`, else 0 (a load address that stays in bounds)."""
    zero = index(0)
    return [arith.SelectOp(ok, i, zero).result for ok, i in zip(inside, indices, strict=True)]


def _zero_rows(plan: Plan, v: SSAValue, local: SSAValue) -> None:
    """Zero V row `local` (past the last tile of the conv) so the GEMM reads no garbage."""
    mr = index(plan.s.mr)
    row_tile, row = arith.DivUIOp(local, mr).result, arith.RemUIOp(local, mr).result
    zero = splat(0.0, plan.block)
    with loop(0, plan.alpha**2) as position, loop(0, plan.g.input_blocks) as cb:
        store_vector(zero, v, [position.iv, row_tile, cb.iv, row, 0])


def _gemm_tile(
    plan: Plan,
    weight: SSAValue,
    workspace: tuple[SSAValue, SSAValue],
    position: tuple[SSAValue, SSAValue, SSAValue],
    vectors: int,
) -> None:
    """M rows of one row tile × `vectors` output blocks of one panel, at position ξ."""
    v, products = workspace
    xi, panel, row_tile = position
    width, nr = plan.block, plan.s.nr

    def a_at(outer: SSAValue, lane: int, r: int) -> SSAValue:
        return load(v, [xi, row_tile, outer, r, lane])

    def b_at(row: SSAValue, j: int) -> SSAValue:
        return load_vector(weight, [xi, panel, row, j * width], width)

    depth = blocked_depth(plan.g.c, width)
    zero = [splat(0.0, width)] * vectors
    result = accumulate((plan.s.mr, vectors), depth, Operands(a_at, b_at), zero)
    for r, accs in enumerate(result):
        for j, acc in enumerate(accs):
            indices = [affine([(row_tile, plan.s.mr)], r), affine([(panel, nr)], j), xi, 0]
            store_vector(acc, products, indices)


def _output_transform(
    op: conv.Conv2DOp,
    plan: Plan,
    buffers: ConvBuffers,
    workspace: _Workspace,
    position: tuple[SSAValue, SSAValue, SSAValue],
) -> None:
    """Aᵀ M A of one (tile, output block), bias, residual, activation, NCHWc stores."""
    products, border = workspace.products, workspace.border
    tile, local, out_block = position
    g, m, alpha, width = plan.g, plan.s.m, plan.alpha, plan.block
    n, oh0, ow0 = _tile_origin(plan, tile)
    tile_products = [
        [load_vector(products, [local, out_block, i * alpha + j, 0], width) for j in range(alpha)]
        for i in range(alpha)
    ]
    outputs = _sandwich(cook_toom(m).at, tile_products)
    if buffers.bias is not None:
        bias = load_vector(buffers.bias, [out_block, 0], width)
        outputs = [[arith.AddfOp(value, bias).result for value in row] for row in outputs]

    def store_whole() -> None:
        for (i, j), value in _grid(outputs):
            indices = [n, out_block, add(oh0, i), add(ow0, j)]
            store_blocked(op, value, buffers.residual, buffers.y, indices)

    def store_inside() -> None:
        # A border tile goes through the worker's m × m scratch, so one loop over the pixels
        # inside the output carries the epilogue instead of m² guarded copies of it.
        for (i, j), value in _grid(outputs):
            store_vector(value, border, [i, j, 0])
        rows = arith.MinSIOp(index(m), arith.SubiOp(index(g.oh), oh0).result).result
        columns = arith.MinSIOp(index(m), arith.SubiOp(index(g.ow), ow0).result).result
        with loop(0, rows) as i, loop(0, columns) as j:
            value = load_vector(border, [i.iv, j.iv, 0], width)
            indices = [n, out_block, add(oh0, i.iv), add(ow0, j.iv)]
            store_blocked(op, value, buffers.residual, buffers.y, indices)

    if g.oh % m == 0 and g.ow % m == 0:
        store_whole()
    elif g.oh < m or g.ow < m:
        store_inside()
    else:
        whole = arith.AndIOp(_below(oh0, g.oh - m + 1), _below(ow0, g.ow - m + 1)).result
        if_else(whole, store_whole, store_inside)


def _sandwich(left: Matrix, tile: list[list[SSAValue]]) -> list[list[SSAValue]]:
    """left · tile · leftᵀ on a grid of vectors: columns first, then rows."""
    width = tile[0][0].type.get_shape()[0]
    constants: dict[Fraction, SSAValue] = {}

    def constant(value: Fraction) -> SSAValue:
        if value not in constants:
            constants[value] = splat(float(value), width)
        return constants[value]

    columns = [_apply(left, [row[j] for row in tile], constant) for j in range(len(tile[0]))]
    half = [[column[i] for column in columns] for i in range(len(left))]
    return [_apply(left, row, constant) for row in half]


def _apply(
    matrix: Matrix, vectors: Sequence[SSAValue], constant: Callable[[Fraction], SSAValue]
) -> list[SSAValue]:
    """matrix · vectors (one output vector per row)."""
    return [_combine(row, vectors, constant) for row in matrix]


def _combine(
    coefficients: Sequence[Fraction],
    vectors: Sequence[SSAValue],
    constant: Callable[[Fraction], SSAValue],
) -> SSAValue:
    """sum c·v over the nonzero coefficients: adds and subtractions for ±1, FMAs with the splat
    `constant(c)` otherwise; a +1 term first, so no term needs a separate multiply when one
    exists."""
    terms = sorted(
        ((c, v) for c, v in zip(coefficients, vectors, strict=True) if c != 0),
        key=lambda term: term[0] != 1,
    )
    if not terms:
        return constant(Fraction(0))
    first, value = terms[0]
    acc = value if first == 1 else arith.MulfOp(constant(first), value).result
    for c, value in terms[1:]:
        if c == 1:
            acc = arith.AddfOp(acc, value).result
        elif c == -1:
            acc = arith.SubfOp(acc, value).result
        else:
            acc = fma(constant(c), value, acc)
    return acc


def _grid(rows: list[list[SSAValue]]):
    """((i, j), value) over a grid of vectors."""
    return (((i, j), value) for i, row in enumerate(rows) for j, value in enumerate(row))


def _below(value: SSAValue, bound: int) -> SSAValue:
    """0 <= value < bound, as one unsigned comparison (a negative index is a huge unsigned)."""
    return arith.CmpiOp(value, index(bound), "ult").result
