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

**m.** The heuristic sizes the blocks of each m ∈ HEURISTIC_MS, picks the m with the least
estimated work per channel pair, α² · (rows + MACS_PER_WEIGHT_FLOAT · blocks): the products of
the rows the GEMMs compute (the tiles rounded up to MR: m = 4 at 7×7 has 4 tiles in a row tile
of 6), plus the transformed weights each block reads from beyond L2, in multiply-adds of the
same time; then splits panels. Large images take m = 4 (64 channels at 56×56, 2 workers:
36 · (198 + 24 · 9) vs 16 · (786 + 24 · 22)); small images with many channels, whose U is MBs,
take m = 2 (512 at 7×7, 2 workers: 16 · (18 + 24 · 2) vs 36 · (6 + 24 · 1)). The m is chosen
before the panel split on purpose: on 256×14×14 the split makes m = 4 one block, but m = 4
with two panel groups measured slower than m = 2 with tile blocks in 3 runs of 4 (1 thread,
thread CPU time, Zen 4, load 8-10: 1.57 vs 1.27 ms, 1.60 vs 1.26, 1.47 vs 1.19; once 1.01 vs
1.12). MACS_PER_WEIGHT_FLOAT is fitted to the 512-channel layers at 1 thread (same conditions,
two panel groups each): 512×14×14 m = 2 5.97 ms vs m = 4 7.10 ms, 512×7×7 m = 2 1.90 ms vs
m = 4 2.83 ms (ORT 2.82); with 8 (the DRAM bandwidth alone) the 2-worker 512×7×7 took m = 4.
F(6,3) joins the choice only on images of at least LARGE_IMAGE_TILES tiles
of 4 × 4: its transforms cost more per output (64 products of 8 × 8 tiles) and its blocks are
smaller, which the estimate leaves out. Measured (`examples/benchmarks/winograd_selection.py`,
1 thread, CPU ms, AVX2 Zen 3): at 224×224 (3136 tiles of 4) m = 6 31.5 ms vs m = 4 35.8, at
112×112 (784) 21.4 vs 26.2 and 13.7 vs 16.0, but at 56×56 (196) 1.34 vs 1.20 and at 28×28
1.79 vs 1.34.
**Accuracy**: the heuristic considers only the m whose expected error on the conv is within the
tolerance it is given (`winograd-tolerance` of `conv-tile`; the measured table and the rule are
`winograd_error`'s module doc); when none is, the most accurate m, F(2,3) (a conv pinned to
winograd by hand, since selection never picks it then).

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

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from convir.dialects import conv
from convir.target import Target
from lowering.algorithms.common import (
    ConvGeometry,
    Schedule,
    epilogue_key,
)
from lowering.algorithms.conv_gemm import (
    applicable_blocked_dense,
    balanced_task_size,
    checked_geometry,
)
from lowering.algorithms.winograd_error import DEFAULT_TOLERANCE, accurate_ms
from lowering.algorithms.winograd_kernel import Plan, emit_winograd
from lowering.algorithms.winograd_transforms import POINTS, Matrix, cook_toom
from lowering.kernels import Packer
from lowering.microkernel import (
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

#: Multiply-adds one core does in the time it reads one float of transformed weights from
#: beyond L2 while it also computes: what a block's read of U costs next to its products,
#: fitted to the 512-channel layers (module doc, m; DRAM bandwidth alone would give ≈ 8).
MACS_PER_WEIGHT_FLOAT = 24

#: Selection prefers winograd from this many input and output channels (`faster_than_gemm`).
MIN_SELECTED_CHANNELS = 64

#: The output tile sizes the heuristic chooses among, and F(6,3) on large images (module doc, m).
HEURISTIC_MS = (2, 4)
LARGE_IMAGE_MS = (2, 4, 6)

#: Tiles of 4 × 4 per image from which the heuristic considers m = 6 (module doc, m): between
#: the 196 of a 56×56 output, where m = 6 measured slower, and the 784 of 112×112, faster.
LARGE_IMAGE_TILES = 400


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


def heuristic_ms(op: conv.Conv2DOp, tolerance: float = DEFAULT_TOLERANCE) -> tuple[int, ...]:
    """The m the heuristic considers for `op`, HEURISTIC_MS or on large images LARGE_IMAGE_MS,
    whose expected error on `op` is within `tolerance` (module doc)."""
    g = ConvGeometry.of(op)
    large = -(-g.oh // 4) * -(-g.ow // 4) >= LARGE_IMAGE_TILES
    allowed = accurate_ms(g.c * 9, tolerance)
    return tuple(m for m in (LARGE_IMAGE_MS if large else HEURISTIC_MS) if m in allowed)


def faster_than_gemm(op: conv.Conv2DOp, tolerance: float | None = None) -> bool:
    """Whether selection prefers winograd for `op` (an applicable conv): some m is within
    `tolerance` and the conv has at least MIN_SELECTED_CHANNELS input and output channels,
    where every m measured faster than direct and im2col (the rule and its table:
    `passes.select_algorithm`'s module doc)."""
    ms = heuristic_ms(op, DEFAULT_TOLERANCE if tolerance is None else tolerance)
    if not ms:
        return False
    g = ConvGeometry.of(op)
    return g.c >= MIN_SELECTED_CHANNELS and g.o >= MIN_SELECTED_CHANNELS


def multiplies(g: ConvGeometry, m: int) -> int:
    """Transformed-domain products per (input, output) channel pair of one image: tiles · α²."""
    return -(-g.oh // m) * -(-g.ow // m) * (m + 2) ** 2


def estimated_work(g: ConvGeometry, schedule: WinogradSchedule) -> int:
    """Multiply-add equivalents per (input, output) channel pair: the products, α² per tile
    the GEMMs compute (the tiles rounded up to MR: a partial row tile costs a whole one), and
    the transformed weights every block reads, α² floats each worth MACS_PER_WEIGHT_FLOAT
    (module doc, m)."""
    plan = Plan(g, schedule)
    computed_tiles = -(-plan.total_tiles // schedule.mr) * schedule.mr
    return plan.alpha**2 * (computed_tiles + MACS_PER_WEIGHT_FLOAT * plan.blocks)


def heuristic(
    op: conv.Conv2DOp, target: Target, tolerance: float = DEFAULT_TOLERANCE
) -> WinogradSchedule:
    """Register tile from the microkernel's rule, block size from the traffic rule, m with the
    least estimated work among those within `tolerance`, then panel groups where the weights
    dwarf the tiles (module doc, m: why m is chosen before the panel split)."""
    g = _checked(op)
    mr, nr = register_tile(target.vector_registers, g.output_blocks)
    ms = heuristic_ms(op, tolerance) or (min(POINTS),)
    sized = [_sized(g, WinogradSchedule(m, mr, nr, mr, target.cores), target) for m in ms]
    best = min(sized, key=lambda schedule: estimated_work(g, schedule))
    return _split_panels(g, best, target)


def _sized(g: ConvGeometry, schedule: WinogradSchedule, target: Target) -> WinogradSchedule:
    """`schedule` with block_tiles from the traffic rule of the module doc (one panel group)."""
    plan = Plan(g, replace(schedule, panel_groups=1))
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
    plan = Plan(g, replace(schedule, panel_groups=1))
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
        row_tiles = -(-Plan(g, sized).total_tiles // sized.mr)
        for factor in BLOCK_MENU:
            per_block = min(row_tiles, max(1, round(sized.block_tiles // sized.mr * factor)))
            schedules.append(replace(sized, block_tiles=per_block * sized.mr))
    if base.slots > 1:
        schedules.append(_sized(g, base, target))
        schedules.append(replace(base, panel_groups=base.slots))
    mr, nr = (8, 3) if target.vector_registers >= 32 else (6, 2)
    schedules.append(replace(base, mr=mr, nr=nr, block_tiles=-(-base.block_tiles // mr) * mr))
    return list(dict.fromkeys(schedules))


#: Largest max |y - y64| / max |y64| a tuner accepts from F(m×m, 3×3), per m: about 5–15×
#: the largest error measured over the 3×3 stride-1 layers of ResNet-18/50 and VGG-16 (module
#: doc, m: 7.1e-7, 5.5e-6, 2.2e-5), and never above the 1e-4 every model is checked to.
TOLERANCE_BY_M = {2: 1e-5, 4: 5e-5, 6: 1e-4}


def tolerance(schedule: WinogradSchedule) -> float:
    """Largest relative error a tuner accepts from this schedule (`TOLERANCE_BY_M`)."""
    return TOLERANCE_BY_M[schedule.m]


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
        plan = _plan(op)
        return plan.s.slots * plan.slot_bytes()

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        emit_winograd(op, _plan(op), module, name)


def _plan(op: conv.Conv2DOp) -> Plan:
    return Plan(_checked(op), _schedule(op))
