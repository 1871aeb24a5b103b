"""`winograd`: F(m×m, 3×3) Winograd convolution on NCHWc, m ∈ {2, 4, 6}, one block of tiles at a
time.

Y = Aᵀ [U ⊙ V] A per output tile of m × m pixels, with U = G g Gᵀ (weights, α × α, α = m + 2) and
V = Bᵀ d B (the α × α input tile d whose top-left input pixel is (th·m - top, tw·m - left)); the
matrices come from `winograd_transforms` (Cook–Toom, exact). Summed over input channels, for each
of the α² transformed positions ξ the products form a GEMM M_ξ[tiles, O] = V_ξ[tiles, C] ·
U_ξ[C, O]: α² GEMMs on the shared microkernel (K = C, the depth order of NCHWc lanes).

- **Weights** are transformed at compile time in float64 and packed as the microkernel's B
  panels per ξ: `[α², P, C, NR·X]` (`pack_winograd_weight`); bias as `[OB, X]`.
- **Input transform**, per tile and input block: the α² input vectors (X channel lanes each) are
  loaded straight from the NCHWc input, Bᵀ d B is computed on whole vectors (adds for ±1
  coefficients, FMAs with splat constants otherwise; Bᵀ is exact in fp32) and the α² results are
  stored into the A panels of the α² GEMMs, `V[α², block_tiles / MR, CB, MR, X]`: the layout the
  microkernel reads, no repack. Tiles whose input window lies inside the image load without
  checks; border tiles (padding, H or W not multiples of m) load with per-row and per-column
  bounds (zero outside), so there is no padded copy of the input.
- **GEMMs**: for each ξ, each weight panel and each row tile of MR tiles, the microkernel from
  zero; the tile is stored to `M[block_tiles, P·NR, α², X]`, so one (tile, output block) has its
  α² vectors together for the output transform.
- **Output transform** Aᵀ M A on whole vectors, then bias, residual and activation in registers
  (`store_blocked`), stored NCHWc. A border tile (H or W not a multiple of m) writes its m × m
  vectors to the worker's scratch and one loop over the pixels inside the output applies the
  epilogue and stores them (one copy of the epilogue in the code instead of m² guarded ones).

Tiles are numbered over all images (image-major, then tile rows, then tile columns), so a block
may straddle two images and only the very last block of the conv is partial (its rows past the
end are zero in V and never stored).

**Block size.** Every block reads all of U (4·α²·C·O bytes) once, so larger blocks amortise the
weights; but a block's V and M rows, tile_bytes = 4·α²·(CB·X + P·NR·X) per tile, stay in L2 only
while

    block_bytes = block_tiles · tile_bytes  <=  L2 · L2_FRACTION.

The heuristic estimates the bytes each choice moves from beyond L2 and takes the smaller:

- blocks sized to L2, block_tiles = MR · floor(L2 · L2_FRACTION / (tile_bytes · MR)):
  ceil(tiles / block_tiles) · |U|;
- the largest blocks that stay in a worker's share of L3 (L3 · L3_FRACTION / cores), at most
  one block per worker (ceil(tiles / slots), rounded up to MR): blocks · |U| plus, when such a
  block spills from L2, 2 · tiles · tile_bytes (V and M written and read back through L3).

With small images and many channels (14×14 and 7×7 layers, where U is MBs) that is one block per
worker; with large images and few channels, blocks of L2 size. The result is then shrunk by at
most half to spread the blocks evenly over the `slots` workers (`balanced_task_size`).
`candidates` offers m ∈ {2, 4, 6} × that block size × BLOCK_MENU and a second register tile
(the search space). Measured (1 thread, AVX2 Zen 3, R = 16, MR × NR = 2 × 4): 256×14×14 -> 256
at m = 4 runs 3.9 ms with blocks of 2 tiles (L2-sized) and 1.6-2.0 ms with one block per worker.

**m.** The heuristic picks the m ∈ HEURISTIC_MS with the least estimated work per channel
pair, α² · (tiles + MACS_PER_WEIGHT_FLOAT · blocks): the products, plus the transformed weights
each block reads from memory, in multiply-adds of the same time. Large images take m = 4
(64 channels at 56×56: 36 · (196 + 8 · 14) vs 16 · (784 + 8 · 28)); small images with many
channels, whose U is MBs read by every block, take m = 2 (512 at 7×7: 16 · (16 + 8 · 2) vs
36 · (4 + 8 · 2)).
F(6,3) is used only when pinned (`--tile conv_N:m=6`) or chosen by a search: its fp32 error
is ~4× F(4,3)'s and ~36× a direct conv's. Over the 3×3 stride-1 layers of ResNet-18/50 and
VGG-16 with He-normal weights, max |y - y64| / max |y64| is 6.0e-7 for an fp32 GEMM and 7.1e-7,
5.5e-6, 2.2e-5 for m = 2, 4, 6 (`examples/benchmarks/winograd_accuracy.py`).

**Threads and workspace.** As in im2col: `slots` workers in an `scf.parallel`; the work items
are (block, panel group) pairs, block-major, and worker s runs items s, s + slots, ... with its
own V, M and border scratch at workspace offset s·slot_bytes; workspace_bytes = slots ·
slot_bytes, which `memory_report()` shows. With `panel_groups` = 1 workers split the tiles, and
each reads all of U. Where U dwarfs the tiles (512 channels at 7×7: 16.8 MB of U for 16 tiles),
the heuristic instead makes one block of all tiles and `slots` panel groups: each item
transforms the block's input again (cheap: few tiles) but reads only its share of U, so U is
read once per conv whatever the thread count. The rule: U >= PANEL_SPLIT_RATIO · all tiles'
V and M bytes, measured (1 thread, thread CPU time, AVX2 Zen 3, load ~12): 512×7×7 -> 512 at
m = 2, 3.7 ms with 2 panel groups vs 4.7 ms with tiles split over 2 slots (ORT 3.7 ms); but
128×28×28 -> 128 at m = 4 (U 2.4 MB, tiles 7 MB), 1.7 ms with panel groups vs 1.2 ms with
blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import ClassVar, NamedTuple

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.target import Target
from lowering.algorithms.common import (
    ConvBuffers,
    ConvGeometry,
    Schedule,
    conv_kernel,
    epilogue_key,
    store_blocked,
)
from lowering.algorithms.conv_gemm import (
    applicable_blocked_dense,
    balanced_task_size,
    checked_geometry,
)
from lowering.algorithms.winograd_transforms import POINTS, Matrix, cook_toom
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
from lowering.kernels import Packer
from lowering.microkernel import (
    Operands,
    PanelTiling,
    accumulate,
    blocked_depth,
    pack_b,
    register_tile,
)

NAME = "winograd"

#: The share of L2 one block's V and M may take (module doc).
L2_FRACTION = 0.5

#: The share of L3 the blocks of all workers may take when they spill from L2 (module doc).
L3_FRACTION = 0.5

#: Panel groups replace tile blocks when U is this many times the V and M of all tiles.
PANEL_SPLIT_RATIO = 4

#: Block-size multipliers offered to the search.
BLOCK_MENU = (0.5, 1.0, 2.0, 4.0)

#: Multiply-adds one core does while it reads one float of transformed weights from memory
#: (≈ 49 GMAC/s at the FMA peak over ≈ 6 Gfloat/s of DRAM bandwidth): what a block's read of
#: U costs next to its products (module doc, m).
MACS_PER_WEIGHT_FLOAT = 8

#: The output tile sizes the heuristic chooses among (F(6,3) only when pinned or searched).
HEURISTIC_MS = (2, 4)


@dataclass(frozen=True)
class WinogradSchedule(Schedule):
    """Knobs of winograd: output tile m (2, 4 or 6), the MR × NR register tile of the α² GEMMs,
    tiles per block (a multiple of MR), worker slots (each with its own block workspace) and
    panel groups (the weight panels split into this many parts, one work item each)."""

    ALGORITHM: ClassVar[str] = NAME

    m: int = 4
    mr: int = 6
    nr: int = 4
    block_tiles: int = 24
    slots: int = 1
    panel_groups: int = 1


SCHEDULE = WinogradSchedule


def applicable(op: conv.Conv2DOp) -> bool:
    """3×3, stride 1, dilation 1, group 1 convs on NCHWc with constant weights (any pads)."""
    if not applicable_blocked_dense(op):
        return False
    g = ConvGeometry.of(op)
    return (g.kh, g.kw) == (3, 3) and g.strides == (1, 1) and g.dilations == (1, 1)


def multiplies(g: ConvGeometry, m: int) -> int:
    """Transformed-domain products per (input, output) channel pair of one image: tiles · α²."""
    return -(-g.oh // m) * -(-g.ow // m) * (m + 2) ** 2


def estimated_work(g: ConvGeometry, schedule: WinogradSchedule) -> int:
    """Multiply-add equivalents per (input, output) channel pair: the products, α² per tile,
    and the transformed weights every block reads, α² floats each worth
    MACS_PER_WEIGHT_FLOAT (module doc, m)."""
    plan = _Plan(g, schedule)
    return plan.alpha**2 * (plan.total_tiles + MACS_PER_WEIGHT_FLOAT * plan.blocks)


def heuristic(op: conv.Conv2DOp, target: Target) -> WinogradSchedule:
    """Register tile from the microkernel's rule, block size from the traffic rule, m with the
    least estimated work, then panel groups where the weights dwarf the tiles (module doc)."""
    g = _checked(op)
    mr, nr = register_tile(target.vector_registers, g.output_blocks)
    sized = [_sized(g, WinogradSchedule(m, mr, nr, mr, target.cores), target) for m in HEURISTIC_MS]
    best = min(sized, key=lambda schedule: estimated_work(g, schedule))
    return _split_panels(g, best, target)


def _sized(g: ConvGeometry, schedule: WinogradSchedule, target: Target) -> WinogradSchedule:
    """`schedule` with block_tiles from the traffic rule of the module doc (one panel group)."""
    plan = _Plan(g, replace(schedule, panel_groups=1))
    mr, slots = schedule.mr, schedule.slots
    row_tiles = -(-plan.total_tiles // mr)
    per_worker = -(-row_tiles // slots)
    budget = int(target.l2_bytes * L2_FRACTION)
    in_l2 = max(1, min(per_worker, budget // (plan.tile_bytes() * mr)))
    in_l3 = max(1, min(per_worker, _l3_share(target) // (plan.tile_bytes() * mr)))

    def traffic_bytes(per_block: int) -> int:
        weights = -(-row_tiles // per_block) * plan.transformed_weight_bytes()
        spilled = per_block * mr * plan.tile_bytes() > budget
        return weights + (2 * plan.total_tiles * plan.tile_bytes() if spilled else 0)

    most = min((in_l2, in_l3), key=traffic_bytes)
    per_block = balanced_task_size(row_tiles, most, 1, slots, interleaved=True)
    return replace(schedule, block_tiles=per_block * mr, panel_groups=1)


def _split_panels(g: ConvGeometry, schedule: WinogradSchedule, target: Target) -> WinogradSchedule:
    """`schedule` with one block of all tiles and `slots` panel groups when U is at least
    PANEL_SPLIT_RATIO times all tiles' V and M (and they fit a worker's L3 share)."""
    plan = _Plan(g, replace(schedule, panel_groups=1))
    all_tiles = -(-plan.total_tiles // schedule.mr) * schedule.mr
    all_bytes = all_tiles * plan.tile_bytes()
    if (
        schedule.slots == 1
        or plan.panels.count == 1
        or plan.transformed_weight_bytes() < PANEL_SPLIT_RATIO * all_bytes
        or all_bytes > _l3_share(target)
    ):
        return schedule
    return replace(schedule, block_tiles=all_tiles, panel_groups=schedule.slots)


def _l3_share(target: Target) -> int:
    return int(target.l3_bytes * L3_FRACTION) // target.cores


def candidates(op: conv.Conv2DOp, target: Target) -> list[WinogradSchedule]:
    """The search space: every m with its block from the traffic rule times BLOCK_MENU, tile
    blocks and panel groups, and a second register tile (8 × 3 with 32 vector registers, else
    6 × 2) at the heuristic's block size (module doc)."""
    g = _checked(op)
    base = heuristic(op, target)
    schedules = [base]
    for m in sorted(POINTS):
        sized = _sized(g, replace(base, m=m), target)
        row_tiles = -(-_Plan(g, sized).total_tiles // sized.mr)
        for factor in BLOCK_MENU:
            per_block = min(row_tiles, max(1, round(sized.block_tiles // sized.mr * factor)))
            schedules.append(replace(sized, block_tiles=per_block * sized.mr))
    if base.slots > 1:
        schedules.append(_sized(g, base, target))
        schedules.append(replace(base, panel_groups=base.slots))
    mr, nr = (8, 3) if target.vector_registers >= 32 else (6, 2)
    schedules.append(replace(base, mr=mr, nr=nr, block_tiles=-(-base.block_tiles // mr) * mr))
    return list(dict.fromkeys(schedules))


def _checked(op: conv.Conv2DOp) -> ConvGeometry:
    g = checked_geometry(op, NAME)
    if (g.kh, g.kw, *g.strides, *g.dilations) != (3, 3, 1, 1, 1, 1):
        raise ValueError(
            f"'{op.name}' winograd needs a 3×3 kernel, stride 1 and dilation 1 (got "
            f"{g.kh}×{g.kw}, strides {g.strides}, dilations {g.dilations})"
        )
    return g


def _schedule(op: conv.Conv2DOp) -> WinogradSchedule:
    schedule = WinogradSchedule.from_attr(op.schedule)
    if schedule.m not in POINTS:
        raise ValueError(
            f"'{op.name}' winograd schedule: m {schedule.m} is not supported; expected one of "
            f"{', '.join(map(str, sorted(POINTS)))}"
        )
    if schedule.block_tiles % schedule.mr:
        raise ValueError(
            f"'{op.name}' winograd schedule: block_tiles {schedule.block_tiles} must be a "
            f"multiple of mr {schedule.mr}"
        )
    return schedule


def pack_winograd_weight(weight: np.ndarray, m: int, nr: int, block: int) -> np.ndarray:
    """[O, C, 3, 3] -> U = G g Gᵀ (float64, then fp32) as B panels [α², P, C, NR·X]."""
    o, c = weight.shape[:2]
    transform = _floats(cook_toom(m).g)
    u = np.einsum("ak,ockl,bl->aboc", transform, weight.astype(np.float64), transform)
    u = u.reshape(-1, o, c).astype(np.float32)
    return np.stack([pack_b(np.ascontiguousarray(position.T), nr, block) for position in u])


def pack_winograd_bias(bias: np.ndarray, block: int) -> np.ndarray:
    """[O] -> [OB, X], zero past O (the output transform adds it per output vector)."""
    blocks = -(-bias.shape[0] // block)
    padded = np.zeros(blocks * block, np.float32)
    padded[: bias.shape[0]] = bias
    return padded.reshape(blocks, block)


def _floats(matrix: Matrix) -> np.ndarray:
    return np.array([[float(v) for v in row] for row in matrix], np.float64)


@dataclass(frozen=True)
class _Plan:
    """One conv's tiles, blocks and buffers under a schedule."""

    g: ConvGeometry
    s: WinogradSchedule

    @staticmethod
    def of(op: conv.Conv2DOp) -> _Plan:
        return _Plan(_checked(op), _schedule(op))

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


class WinogradEmitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "winograd"`."""

    def key(self, op: Operation) -> str:
        g = _checked(op)
        s = _schedule(op)
        return (
            f"conv_winograd_{g.key()}_m{s.m}t{s.mr}x{s.nr}_b{s.block_tiles}s{s.slots}"
            f"g{s.panel_groups}_"
            f"{epilogue_key(op)}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        block = _checked(op).block
        s = _schedule(op)
        packers: dict[int, Packer] = {1: lambda w: pack_winograd_weight(w, s.m, s.nr, block)}
        if op.bias is not None:
            packers[2] = lambda b: pack_winograd_bias(b, block)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        plan = _Plan.of(op)
        return plan.s.slots * plan.slot_bytes()

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        plan = _Plan.of(op)
        g = plan.g
        bias_shape = (g.output_blocks, plan.block)
        with (
            conv_kernel(
                module,
                name,
                op,
                g,
                plan.weight_shape(),
                bias_shape,
                self.workspace_bytes(op),
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
    def of(plan: _Plan, workspace: SSAValue | None, slot: SSAValue) -> _Workspace:
        assert workspace is not None
        offset: SSAValue = mul(slot, plan.slot_bytes())
        views = []
        for shape in (plan.v_shape(), plan.m_shape(), plan.border_shape()):
            views.append(view(workspace, offset, f32_memref(shape)))
            offset = add(offset, 4 * int(np.prod(shape)))
        return _Workspace(*views)


def _emit_item(
    op: conv.Conv2DOp,
    plan: _Plan,
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


def _group_range(plan: _Plan, group: SSAValue, size: int, total: int) -> tuple[Index, Index]:
    """[group·size, min((group + 1)·size, total)): the panels or output blocks of a group."""
    if plan.panel_groups == 1:
        return 0, total
    first = mul(group, size)
    return first, arith.MinSIOp(add(first, size), index(total)).result


def _tile_origin(plan: _Plan, tile: SSAValue) -> tuple[SSAValue, SSAValue, SSAValue]:
    """(image, first output row, first output column) of tile `tile` (numbered over images)."""
    per_image = index(plan.tiles_per_image)
    n = arith.DivUIOp(tile, per_image).result
    within = arith.RemUIOp(tile, per_image).result
    columns = index(plan.tile_grid[1])
    th = arith.DivUIOp(within, columns).result
    tw = arith.RemUIOp(within, columns).result
    return n, mul(th, plan.s.m), mul(tw, plan.s.m)


def _input_transform(
    plan: _Plan, x: SSAValue, v: SSAValue, tile: SSAValue, local: SSAValue
) -> None:
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
    plan: _Plan, x: SSAValue, planes: tuple[SSAValue, SSAValue], origin, checked: bool
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


def _zero_rows(plan: _Plan, v: SSAValue, local: SSAValue) -> None:
    """Zero V row `local` (past the last tile of the conv) so the GEMM reads no garbage."""
    mr = index(plan.s.mr)
    row_tile, row = arith.DivUIOp(local, mr).result, arith.RemUIOp(local, mr).result
    zero = splat(0.0, plan.block)
    with loop(0, plan.alpha**2) as position, loop(0, plan.g.input_blocks) as cb:
        store_vector(zero, v, [position.iv, row_tile, cb.iv, row, 0])


def _gemm_tile(
    plan: _Plan,
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
    plan: _Plan,
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
