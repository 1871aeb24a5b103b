"""`gemm1x1`: a 1×1 convolution on NCHWc as a GEMM straight on the data, no column buffer.

M = output pixels of an image, K = input channels, N = output channels (`conv_gemm`). A 1×1 conv
without padding reads input pixel (oh·SH, ow·SW) for output pixel (oh, ow), and NCHWc already
lays out each input block as [pixel, lane]: the microkernel broadcasts A's scalars from the input
in place. Register tiles run over the flattened OH·OW pixels, across output rows (stride 1 or
not), in balanced tiles (`microkernel.RowTiling`), so there is no per-row remainder. Weights are
packed at compile time into B panels of NR output blocks; bias initialises the accumulators and
the epilogue runs on the tile in registers.

Threads: `scf.parallel` over (image, pixel-tile range, panel group) tasks. A task sweeps its
`task_tiles` row tiles once per panel of its `task_panels`, so its slice of the input
(task_tiles·MR·C·4 bytes) is read from memory once and then from L2, and each weight panel is
read once per task. The heuristic sizes the pixel range to half the L2, splits panels only when
there are too few pixel ranges for the cores (7×7 layers), and shrinks tasks (by at most half)
to load the threads most evenly under the static split (`conv_gemm.balanced_task_size`).

Register tile: `microkernel.register_tile`'s, except with 16 vector registers (AVX2) and a depth
of at least `DEEP_DEPTH` input channels, where it is 6 × 2 (`SMALL_REGISTER_FILE_TILES`): 12
accumulators hide the FMA latency better over a long depth loop than 2 × 4's 8, and each weight
vector feeds 6 FMAs. Measured by `convir tune` (thread CPU time, 1 thread, this 2-core AVX2
machine under load ~7) on the 29 1×1 convs of ResNet-18/50 and MobileNetV2: 6 × 2 over 2 × 4 at
the same task size was 1.05–1.48× faster on 17 of the 19 with depth ≥ 128 (0.87 and 0.89 the two
others), and 0.70–0.99× on 9 of the 10 shallower ones.

**Depth chunks.** A task runs that sweep once per chunk of `chunk_blocks` input blocks
(`ConvGemm.depth_chunks`: partial sums kept in the output), so that the chunk of a weight
panel (chunk_blocks·X × NR·X floats) stays in L1 while the row tiles sweep it and the pixel
range is sized by the chunk, not by all of C. The heuristic chunks when one weight panel is
larger than `L1_FRACTION` of L1 *and* the input one image's GEMM reads (output pixels × C
floats) is larger than L2; the chunk is then the most input blocks whose panel chunk fits in
`L1_FRACTION` of L1. When that input fits in L2 (ResNet-50's 14×14 and 7×7 layers) the
whole-depth sweep streams the weight panel from L2 and saves the chunks' partial-sum traffic.

Measured first on znver3 (AVX2, 32 KiB L1, 512 KiB L2, NR·X = 32: chunks of 16 blocks = 128
channels), 1 thread, median thread CPU time, load ~7 (`examples/benchmarks/conv_variants_cpu.py
MODEL SUBSTR gemm1x1 gemm1x1:chunk_blocks=1048576`): FCN-ResNet50's 2048→512 at 28×28 19.9 vs
25.4 ms, DeepLabV3's 1280→256 and 960→256 at 14×14 1.57 vs 1.89 and 1.18 vs 1.32 ms (all three
read more than L2, so the rule still chunks them). Then on Zen 4 (AVX-512, 32 KiB L1, 1 MiB L2,
6 × 4 tile, NR·X = 64), ResNet-50, same script, load 7-10, ms CPU for chunks of 4 blocks (the
former rule, L1_FRACTION 0.5) / 8 blocks (L1_FRACTION 1: 128 channels, onnxruntime MLAS's
input-channel batch, whose filter chunk is the same 32 KiB) / whole depth:

    layer                       4      8      whole
    256×56×56→64               1.139  1.183  1.273
    256×56×56→128              2.114  2.039  2.189
    512×28×28→256              2.296  2.209  2.322
    1024×14×14→256             1.203  1.113  1.092
    1024×14×14→512             2.331  2.249  2.190
    2048×7×7→512               1.160  1.084  1.031
    1024×14×14→2048 s2 (2 runs) 3.200  2.904  2.585 / 2.938  2.478  2.149

(Noise ±5-10 % at that load; 4 blocks lost on all but the first.) L1_FRACTION 1 doubles the
chunk on AVX2 too (6 × 2 tile: 64 blocks = 512 channels); that was not re-measured, for lack
of an AVX2 machine: the tuner's candidates keep half the chunk (and double, and the whole
depth, and the L1 chunk where the L2 rule skips it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.target import Target
from lowering.algorithms.common import (
    ACCUMULATION_TOLERANCE,
    ConvGeometry,
    Schedule,
    conv_kernel,
    epilogue_key,
)
from lowering.algorithms.conv_gemm import (
    ConvGemm,
    DepthChunk,
    applicable_blocked_dense,
    balanced_task_size,
    checked_geometry,
    pack_bias,
    pack_weight,
)
from lowering.emit import affine, index, load, loop, parallel
from lowering.kernels import Packer
from lowering.microkernel import SMALL_REGISTER_FILE_TILES, register_tile

NAME = "gemm1x1"

#: The depth (input channels) from which a 16-register target takes the 6 × 2 tile (module doc).
DEEP_DEPTH = 128

#: `chunk_blocks` of a sweep over the whole depth: more input blocks than any conv has.
WHOLE_DEPTH = 1 << 20

#: The share of L1 the chunk of one weight panel may take (module doc, Depth chunks).
L1_FRACTION = 1.0


@dataclass(frozen=True)
class Gemm1x1Schedule(Schedule):
    """Knobs of gemm1x1: the MR × NR register tile and the size of one thread task."""

    ALGORITHM: ClassVar[str] = NAME

    mr: int = 6
    nr: int = 4
    task_tiles: int = 64
    task_panels: int = 64
    chunk_blocks: int = WHOLE_DEPTH


SCHEDULE = Gemm1x1Schedule


def applicable(op: conv.Conv2DOp) -> bool:
    """1×1 kernel, no padding, group 1, NCHWc, constant weights (any stride)."""
    if not applicable_blocked_dense(op):
        return False
    g = ConvGeometry.of(op)
    return g.kh == g.kw == 1 and not g.needs_padding


def heuristic(op: conv.Conv2DOp, target: Target) -> Gemm1x1Schedule:
    """The register tile of `microkernel.register_tile` and tasks sized as the module doc says."""
    g = _geometry(op)
    mr, nr = register_tile(target.vector_registers, g.output_blocks)
    deep_tile = SMALL_REGISTER_FILE_TILES[0]
    if target.vector_registers < 32 and g.c >= DEEP_DEPTH and g.output_blocks >= deep_tile[1]:
        mr, nr = deep_tile
    gemm = ConvGemm(g, mr, nr)
    tiles, panels = gemm.rows.count, gemm.panels.count
    chunk = WHOLE_DEPTH
    # The input pixels one image's GEMM reads, all C channels (module doc, Depth chunks).
    if 4 * g.oh * g.ow * g.c > target.l2_bytes:
        chunk = chunk_blocks(g.input_blocks, nr * gemm.block, gemm.block, target)
    tile_bytes = 4 * mr * min(chunk, g.input_blocks) * gemm.block
    most = target.l2_bytes // 2 // tile_bytes
    if g.n * -(-tiles // max(1, min(most, tiles))) >= 2 * target.cores:
        task_tiles = balanced_task_size(tiles, most, g.n, target.cores)
        return Gemm1x1Schedule(mr, nr, task_tiles, panels, chunk)
    # Too few pixel ranges for the cores: every range is one task per group of panels.
    ranges = -(-tiles // max(1, min(most, tiles)))
    groups = min(panels, -(-2 * target.cores // (g.n * ranges)))
    task_panels = balanced_task_size(panels, -(-panels // groups), g.n * ranges, target.cores)
    return Gemm1x1Schedule(mr, nr, -(-tiles // ranges), task_panels, chunk)


def chunk_blocks(blocks: int, columns: int, block: int, target: Target) -> int:
    """Input blocks per depth chunk of a weight panel of `blocks` input blocks (of `block`
    lanes) × `columns` floats: WHOLE_DEPTH when the panel fits in L1_FRACTION of L1, else the
    most blocks whose chunk of the panel does (at least 1), spread evenly over the chunks.
    (The heuristic asks only when the input is larger than L2: module doc, Depth chunks.)"""
    fit = int(target.l1d_bytes * L1_FRACTION) // (4 * block * columns)
    if blocks <= fit:
        return WHOLE_DEPTH
    fit = max(1, fit)
    chunks = -(-blocks // fit)
    return -(-blocks // chunks)


def candidates(op: conv.Conv2DOp, target: Target) -> list[Gemm1x1Schedule]:
    """The search space around the heuristic: other register tiles, half and double tasks."""
    base = heuristic(op, target)
    tiles = [(base.mr, base.nr), (8, 3), (24, 1), (4, 2)]
    if target.vector_registers < 32:
        tiles = [(base.mr, base.nr), *SMALL_REGISTER_FILE_TILES]
    schedules = [replace(base, mr=mr, nr=nr) for mr, nr in tiles]
    schedules += [replace(base, task_tiles=max(1, base.task_tiles // 2))]
    schedules += [replace(base, task_tiles=base.task_tiles * 2)]
    g = _geometry(op)
    l1_chunk = chunk_blocks(g.input_blocks, base.nr * g.block, g.block, target)
    if l1_chunk != WHOLE_DEPTH:
        # Either side of the L2 rule, and half and double the L1 chunk (module doc).
        chunks = [l1_chunk, max(1, l1_chunk // 2), l1_chunk * 2, WHOLE_DEPTH]
        schedules += [replace(base, chunk_blocks=chunk) for chunk in chunks]
    return list(dict.fromkeys(schedules))


def tolerance(schedule: Gemm1x1Schedule) -> float:
    """Largest relative error a tuner accepts from this schedule (`ACCUMULATION_TOLERANCE`)."""
    return ACCUMULATION_TOLERANCE


def _geometry(op: conv.Conv2DOp) -> ConvGeometry:
    g = checked_geometry(op, NAME)
    if g.kh != 1 or g.kw != 1 or g.needs_padding:
        raise ValueError(
            f"'{op.name}' gemm1x1 needs a 1x1 kernel without padding, got {g.kh}x{g.kw} "
            f"pads {list(g.pads)}"
        )
    return g


class Gemm1x1Emitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "gemm1x1"`."""

    def key(self, op: Operation) -> str:
        g = _geometry(op)
        s = Gemm1x1Schedule.from_attr(op.schedule)
        return (
            f"conv_gemm1x1_{g.key()}_t{s.mr}x{s.nr}_"
            f"task{s.task_tiles}x{s.task_panels}c{min(s.chunk_blocks, g.input_blocks)}_"
            f"{epilogue_key(op)}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        block = _geometry(op).block
        nr = Gemm1x1Schedule.from_attr(op.schedule).nr
        packers: dict[int, Packer] = {1: lambda w: pack_weight(w, nr, block)}
        if op.bias is not None:
            packers[2] = lambda b: pack_bias(b, nr, block)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        return 0

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        g = _geometry(op)
        s = Gemm1x1Schedule.from_attr(op.schedule)
        gemm = ConvGemm(g, s.mr, s.nr)
        tiles, panels = gemm.rows.count, gemm.panels.count
        task_tiles, task_panels = min(s.task_tiles, tiles), min(s.task_panels, panels)
        ranges, groups = -(-tiles // task_tiles), -(-panels // task_panels)
        with (
            conv_kernel(module, name, op, g, gemm.weight_shape(), gemm.bias_shape(), 0) as buffers,
            parallel([(0, g.n), (0, ranges), (0, groups)]) as (n, task_range, group),
        ):
            first_panel = affine([(group, task_panels)])
            first_tile = affine([(task_range, task_tiles)])
            last_panel = _bounded(affine([(group, task_panels)], task_panels), panels)
            last_tile = _bounded(affine([(task_range, task_tiles)], task_tiles), tiles)

            def sweep(chunk: DepthChunk) -> None:
                with (
                    loop(first_panel, last_panel) as panel,
                    loop(first_tile, last_tile) as row_tile,
                ):
                    gemm.dispatch(
                        panel.iv,
                        row_tile.iv,
                        lambda first, shape: _tile(
                            op, gemm, buffers, (n, panel.iv, first), shape, chunk
                        ),
                    )

            gemm.depth_chunks(s.chunk_blocks, sweep)


def _bounded(value: SSAValue, bound: int) -> SSAValue:
    return arith.MinSIOp(value, index(bound)).result


def _tile(op, gemm: ConvGemm, buffers, position, shape: tuple[int, int], chunk: DepthChunk) -> None:
    """One register tile whose A rows are input pixels (oh·SH, ow·SW), read in place."""
    n, panel, first_pixel = position
    coordinates = gemm.coordinates(first_pixel, shape[0])
    sh, sw = gemm.g.strides
    rows = [(affine([(oh, sh)]), affine([(ow, sw)])) for oh, ow in coordinates]

    def a_at(outer: SSAValue, lane: int, r: int) -> SSAValue:
        return load(buffers.x, [n, outer, *rows[r], lane])

    gemm.tile(op, buffers, (n, panel, coordinates), shape[1], a_at, chunk=chunk)
