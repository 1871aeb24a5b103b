"""The register-blocked GEMM microkernel shared by the GEMM-based conv algorithms (DESIGN §5).

C[M, N] = A[M, K] · B[K, N] is computed one register tile at a time: `rows` (at most MR) rows
of C by `vectors` (at most NR) vectors of W lanes. The rows × vectors accumulators stay in
vector registers for the whole depth (K) loop: per depth step the kernel loads the NR vectors
of B's row once, and for each tile row broadcasts one scalar of A and issues NR FMAs. The
caller gives the initial accumulators (zero, or a conv's bias) and gets the finished tile back
in registers, so an epilogue (residual, activation) runs before the one store per vector.

**Register tile.** Accumulators, the B vectors of one depth step and one broadcast must fit
the register file: MR·NR + NR + 1 <= R, and `register_tile(R, vectors)` takes the largest MR
the rule allows for an NR chosen from the output's vector count (NR = 4 when it divides
evenly, else 3, else 4 with a narrower last panel; fewer vectors than that: all of them), with
one more cap measured on LLVM 22 / Zen 4 (AVX-512, R = 32): on a 16-lane unrolled depth block
the machine scheduler hoists the broadcasts above the FMAs and then spills when NR = 2 tiles are
taller than 4 rows, or NR = 3 taller than 8 (12 × 2: 477 spill instructions, 33-69 GFLOP/s),
whereas NR = 1 folds the broadcast into the FMA (`{1to16}`) and needs no register for it. Plain
GEMMs, 1 thread, GFLOP/s (peak ≈ 117: 32 flop/cycle at ~3.66 GHz, measured):

    M×N×K          6×4  8×3  4×2  24×1  28×1  12×2  14×2
    3136×64×256    112  113  110   114   112    62    33
    3136×256×64    107  107   94   106   101    38    16
    196×256×1024   114  111  108   113   113    69    47

So R = 32 gives 6 × 4, 8 × 3, 4 × 2 or 24 × 1 (all 29 registers or fewer, ~95 % of peak).

**Depth.** K is walked as `DepthRange`s: an `scf.for` over an outer index whose body unrolls
`lanes` depth steps (a conv walks input-channel blocks × taps outside and the X lanes of a
block inside, so a partial last channel block is a second range with fewer lanes and the
padded lanes of NCHWc data are never read). The operands are closures (`Operands`): A's scalar
is asked for by (outer index, lane, tile row), in whatever layout the caller keeps A; B's
vector by (depth row, vector), the row counting only real depth steps (`DepthRange.row`), so
packed B has exactly K rows even when A's layout has padded lanes.

**Edges.** Ragged M: `RowTiling` cuts M rows into tiles whose sizes differ by at most one
(49 rows at MR 14: 13, 12, 12, 12) instead of full tiles plus a narrow remainder, so at most two
tile heights exist and both keep many independent accumulators. Ragged N: `PanelTiling`, panels
of NR vectors and a narrower last one; a partial last vector is stored masked (`store_row`), or
whole where the caller owns padded lanes (NCHWc).

**Padding.** A conv's padded taps must form no product (0 · Inf is NaN): with
`Operands.inside`, each tile row's FMAs at an outer depth index are masked by whether that row's
tap is real (`fma_where`; one mask per row and outer index, shared by its lanes and vectors).

**Packed layouts** (numpy packers, used at compile time for B and by tests for A):
- B panels `[P, K, NR·W]` (`pack_b`): panel p holds columns [p·NR·W, (p+1)·NR·W), one row of
  NR vectors per depth step, zero past N: the depth loop streams one panel sequentially.
- A panels `[T, ceil(K/W), MR, W]` (`pack_a`): tile t's rows for depth block kb are one MR × W
  block, rows of a lower tile left unused. This is what im2col writes, and it is NCHWc order,
  so a 1×1 conv reads its input in place with the same access pattern.

`emit_gemm` builds a plain GEMM from these pieces (the tests' oracle is numpy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from xdsl.dialects import arith, vector
from xdsl.dialects.builtin import ModuleOp, VectorType, i1
from xdsl.ir import SSAValue

from lowering.emit import (
    Index,
    add,
    affine,
    broadcast,
    f32_memref,
    fma,
    if_else,
    index,
    kernel_function,
    load,
    load_vector,
    loop,
    parallel,
    splat,
    store_vector,
)

ScalarAt = Callable[[SSAValue, int, int], SSAValue]
"""A's scalar at (outer depth index, lane, tile row)."""

VectorAt = Callable[[SSAValue, int], SSAValue]
"""B's vector at (depth row, vector of the tile)."""


RowInside = Callable[[SSAValue, int], SSAValue]
"""Whether A's row at (outer depth index, tile row) is real (i1), not a conv's padding."""


class Operands(NamedTuple):
    """Where the microkernel reads A's scalars and B's vectors; `inside`, when given, says
    which (outer depth index, tile row) hold real data: the others form no product at all."""

    a: ScalarAt
    b: VectorAt
    inside: RowInside | None = None


def lane_mask(condition: SSAValue, width: int) -> SSAValue:
    """An i1 condition as a `vector<width x i1>` mask (a k register on AVX-512)."""
    return vector.BroadcastOp(condition, VectorType(i1, [width])).vector


def fma_where(mask: SSAValue | None, a: SSAValue, b: SSAValue, acc: SSAValue) -> SSAValue:
    """a * b + acc in the lanes of `mask`, acc unchanged elsewhere (no mask: everywhere).

    Padding must contribute nothing, not 0 · b, which is NaN for an Inf or NaN b; selecting the
    old accumulator drops the product (on AVX-512 LLVM emits the FMA and a vblendmps).
    """
    product = fma(a, b, acc)
    return product if mask is None else arith.SelectOp(mask, product, acc).result


@dataclass(frozen=True)
class DepthRange:
    """Outer depth indices [first, first + count), each unrolling `lanes` depth steps; step
    `lane` of outer index `outer` is depth row `outer · lanes + row_offset + lane` of packed
    B. `first` may be a run-time index (a chunk of a longer range, `chunk`)."""

    first: Index
    count: int
    lanes: int
    row_offset: int = 0

    def row(self, outer: SSAValue, lane: int) -> SSAValue:
        """The depth row of step `lane` of outer index `outer`."""
        return affine([(outer, self.lanes)], self.row_offset + lane)

    def chunk(self, first: Index, count: int) -> DepthRange:
        """Outer indices [first, first + count) of this range (same depth rows)."""
        return DepthRange(first, count, self.lanes, self.row_offset)


#: The tallest tile LLVM keeps in registers per NR (measured on R = 32, module doc).
_MEASURED_MR_CAP = {1: 24, 2: 4, 3: 8}


#: Register tiles a search tries besides `register_tile`'s with 16 vector registers (AVX2):
#: 6 × 2 and 3 × 3 fill 15 and 13 registers with accumulators, B vectors and a broadcast.
SMALL_REGISTER_FILE_TILES = ((6, 2), (3, 3))


def register_tile(vector_registers: int, vectors: int) -> tuple[int, int]:
    """(MR, NR) for a register file of `vector_registers` and C `vectors` wide (module doc)."""
    nr = vectors if vectors < 4 else 3 if vectors % 4 and vectors % 3 == 0 else 4
    nr = max(1, min(nr, (vector_registers - 2) // 2))
    mr = (vector_registers - nr - 1) // nr
    return max(1, min(mr, _MEASURED_MR_CAP.get(nr, mr))), nr


def blocked_depth(depth: int, width: int, taps: int = 1) -> list[DepthRange]:
    """Depth `depth` in blocks of `width` lanes, each block repeated for `taps` taps (a conv's
    kernel positions): outer index = block·taps + tap. Full blocks loop; a partial block follows
    with fewer lanes."""
    full, partial = divmod(depth, width)
    ranges = [DepthRange(0, full * taps, width)] if full else []
    if partial:
        # Its rows follow the full blocks' full·taps·width rows: offset = that - first·partial.
        ranges.append(DepthRange(full * taps, taps, partial, full * taps * (width - partial)))
    return ranges


def accumulate(
    shape: tuple[int, int],
    depth: Sequence[DepthRange],
    operands: Operands,
    initial: Sequence[SSAValue] | Sequence[Sequence[SSAValue]],
) -> list[list[SSAValue]]:
    """The rows × vectors tile `tile[r][j]` after the whole depth, starting from `initial[j]`
    in every row, or from `initial[r][j]` (a partial sum per row, when the depth is summed in
    chunks)."""
    rows, vectors = shape
    if initial and isinstance(initial[0], SSAValue):
        assert len(initial) == vectors
        tile = [list(initial) for _ in range(rows)]
    else:
        assert len(initial) == rows and all(len(row) == vectors for row in initial)
        tile = [list(row) for row in initial]
    for part in depth:
        if part.count == 1:
            tile = _depth_steps(tile, index(part.first), part, operands)
            continue
        with loop(part.first, add(part.first, part.count), carry=_flat(tile)) as outer:
            stepped = _depth_steps(_rows(outer.carried, vectors), outer.iv, part, operands)
            outer.yield_(*_flat(stepped))
        tile = _rows(outer.results, vectors)
    return tile


def _depth_steps(
    tile: list[list[SSAValue]], outer: SSAValue, part: DepthRange, operands: Operands
) -> list[list[SSAValue]]:
    """One outer step of `part`: per lane, NR B vectors once, then per row a broadcast and NR
    FMAs (rank-1 updates), masked per row when `operands.inside` is given."""
    tile = [list(row) for row in tile]
    width = tile[0][0].type.get_shape()[0]
    masks: list[SSAValue | None] = [None] * len(tile)
    if operands.inside is not None:
        masks = [lane_mask(operands.inside(outer, r), width) for r in range(len(tile))]
    for lane in range(part.lanes):
        row = part.row(outer, lane)
        b = [operands.b(row, j) for j in range(len(tile[0]))]
        for r, row in enumerate(tile):
            a = broadcast(operands.a(outer, lane, r), width)
            for j, b_vector in enumerate(b):
                row[j] = fma_where(masks[r], a, b_vector, row[j])
    return tile


def _flat(tile: list[list[SSAValue]]) -> list[SSAValue]:
    return [acc for row in tile for acc in row]


def _rows(values: Sequence[SSAValue], vectors: int) -> list[list[SSAValue]]:
    return [list(values[i : i + vectors]) for i in range(0, len(values), vectors)]


@dataclass(frozen=True)
class RowTiling:
    """`rows` rows in `count` tiles of at most MR rows, as equal as possible: the first `large`
    tiles have `size + 1` rows, the others `size` (module doc, Edges)."""

    rows: int
    count: int
    size: int
    large: int

    @staticmethod
    def of(rows: int, mr: int) -> RowTiling:
        count = -(-rows // mr)
        size, large = divmod(rows, count)
        return RowTiling(rows, count, size, large)

    @property
    def largest(self) -> int:
        """Rows of the tallest tile (the row stride of a tile in an A panel)."""
        return self.size + (1 if self.large else 0)

    def first_row(self, tile: Index) -> SSAValue:
        """The first row of tile `tile`."""
        if isinstance(tile, int):
            return index(tile * self.size + min(tile, self.large))
        if not self.large:
            return affine([(tile, self.size)])
        return add(affine([(tile, self.size)]), arith.MinSIOp(tile, index(self.large)).result)

    def dispatch(self, tile: Index, emit: Callable[[SSAValue, int], None]) -> None:
        """emit(first row, rows) for tile `tile`, branching between the two tile heights."""
        if isinstance(tile, int):
            emit(self.first_row(tile), self.size + (1 if tile < self.large else 0))
            return
        if not self.large:
            emit(self.first_row(tile), self.size)
            return
        is_large = arith.CmpiOp(tile, index(self.large), "ult").result
        if_else(
            is_large,
            lambda: emit(affine([(tile, self.size + 1)]), self.size + 1),
            lambda: emit(affine([(tile, self.size)], self.large), self.size),
        )


@dataclass(frozen=True)
class PanelTiling:
    """`vectors` vectors of columns in panels of `nr`, the last one narrower if need be."""

    vectors: int
    nr: int

    @property
    def count(self) -> int:
        return -(-self.vectors // self.nr)

    @property
    def last(self) -> int:
        """Vectors of the last panel."""
        return self.vectors - (self.count - 1) * self.nr

    def dispatch(
        self, panel: Index, emit: Callable[[int, bool], None], split_last: bool = False
    ) -> None:
        """emit(vectors, is_last) for panel `panel`: one branch for the full panels and one for
        the last panel when it is narrower, or always with `split_last` (a partial last vector)."""
        if self.count == 1:
            emit(self.last, True)
            return
        if self.last == self.nr and not split_last:
            emit(self.nr, False)
            return
        is_full = arith.CmpiOp(index(panel), index(self.count - 1), "ult").result
        if_else(is_full, lambda: emit(self.nr, False), lambda: emit(self.last, True))


def pack_b(b: np.ndarray, nr: int, width: int) -> np.ndarray:
    """B [K, N] -> panels [ceil(N / (nr·width)), K, nr·width], zero past N."""
    depth, columns = b.shape
    panel = nr * width
    count = -(-columns // panel)
    padded = np.zeros((depth, count * panel), np.float32)
    padded[:, :columns] = b
    return np.ascontiguousarray(padded.reshape(depth, count, panel).transpose(1, 0, 2))


def pack_a(a: np.ndarray, tiling: RowTiling, width: int) -> np.ndarray:
    """A [M, K] -> panels [T, ceil(K / width), MR, width] (MR = the tallest tile), zero-padded."""
    rows, depth = a.shape
    blocks = -(-depth // width)
    padded = np.zeros((rows, blocks * width), np.float32)
    padded[:, :depth] = a
    panels = np.zeros((tiling.count, blocks, tiling.largest, width), np.float32)
    for t in range(tiling.count):
        first = t * tiling.size + min(t, tiling.large)
        height = tiling.size + (1 if t < tiling.large else 0)
        tile = padded[first : first + height].reshape(height, blocks, width)
        panels[t, :, :height] = tile.transpose(1, 0, 2)
    return panels


def store_row(value: SSAValue, ref: SSAValue, indices: Sequence[Index], lanes: int) -> None:
    """Store the first `lanes` lanes of vector `value` at `ref[indices]` (masked if partial)."""
    width = value.type.get_shape()[0]
    if lanes >= width:
        store_vector(value, ref, indices)
        return
    mask = vector.CreateMaskOp([index(lanes)], VectorType(i1, [width])).mask_vector
    vector.MaskedStoreOp(ref, [index(i) for i in indices], mask, value)


def emit_gemm(
    module: ModuleOp,
    name: str,
    sizes: tuple[int, int, int],
    tile: tuple[int, int],
    width: int,
    packed_a: bool,
) -> None:
    """`func.func @name(a, b_panels, c)`: C [M, N] = A · B, threaded over (panel, row tile).

    A is [M, K] row-major, or panels `pack_a(A, RowTiling.of(M, MR), width)` with `packed_a`;
    B is `pack_b(B, NR, width)`. sizes = (M, N, K), tile = (MR, NR).
    """
    m, n, k = sizes
    gemm = _PlainGemm(sizes, tile, width, packed_a)
    a_shape = (gemm.rows.count, -(-k // width), gemm.rows.largest, width) if packed_a else (m, k)
    b_shape = (gemm.panels.count, k, tile[1] * width)
    arg_types = [f32_memref(a_shape), f32_memref(b_shape), f32_memref((m, n))]
    with (
        kernel_function(module, name, arg_types, private=False) as buffers,
        parallel([(0, gemm.panels.count), (0, gemm.rows.count)]) as (panel, row_tile),
    ):
        gemm.panels.dispatch(
            panel,
            lambda vectors, last: gemm.rows.dispatch(
                row_tile,
                lambda first, height: gemm.tile(
                    buffers, (panel, row_tile, first), (height, vectors), last
                ),
            ),
            split_last=n % width != 0,
        )


@dataclass(frozen=True)
class _PlainGemm:
    """The shapes of one `emit_gemm` kernel."""

    sizes: tuple[int, int, int]
    shape: tuple[int, int]
    width: int
    packed_a: bool

    @property
    def rows(self) -> RowTiling:
        return RowTiling.of(self.sizes[0], self.shape[0])

    @property
    def panels(self) -> PanelTiling:
        return PanelTiling(-(-self.sizes[1] // self.width), self.shape[1])

    def tile(self, buffers, position, shape: tuple[int, int], last_panel: bool) -> None:
        """One register tile: accumulate from zero, store (the last vector of C masked)."""
        a, b, c = buffers
        panel, row_tile, first_row = position
        n, width = self.sizes[1], self.width

        def a_at(outer: SSAValue, lane: int, r: int) -> SSAValue:
            if self.packed_a:
                return load(a, [row_tile, outer, r, lane])
            return load(a, [add(first_row, r), affine([(outer, width)], lane)])

        def b_at(row: SSAValue, j: int) -> SSAValue:
            return load_vector(b, [panel, row, j * width], width)

        zero = [splat(0.0, width)] * shape[1]
        depth = blocked_depth(self.sizes[2], width)
        result = accumulate(shape, depth, Operands(a_at, b_at), zero)
        first_column = affine([(panel, self.shape[1] * width)])
        for r, accs in enumerate(result):
            for j, acc in enumerate(accs):
                partial = last_panel and j == shape[1] - 1 and n % width
                lanes = n % width if partial else width
                store_row(acc, c, [add(first_row, r), add(first_column, j * width)], lanes)
