"""What the GEMM-based conv algorithms (`gemm1x1`, `im2col`) share, on NCHWc with group 1.

A conv of one image is the GEMM Y[M, N] = A[M, K] · B[K, N] with M = output pixels (row-major
oh·OW + ow, so a register tile may run across output rows), N = output channels (X per vector)
and K = C·KH·KW in the order (input block cb, tap, lane), tap = kh·KW + kw. That is the order of
NCHWc data (the lanes of one pixel contiguous), so the microkernel's outer depth index is
cb·taps + tap and its unrolled steps are the lanes of block cb; a partial last input block is a
second depth range with only its logical lanes, so padded lanes (of the input, or of an A panel
copied from it) are never read, and B has C·KH·KW depth rows (`microkernel.DepthRange.row`).

- `pack_weight`: [O, C, KH, KW] -> B panels [P, C·KH·KW + 1, NR·X] (`microkernel.pack_b`), zero
  columns past O, and one last row per panel that is 1 if every weight is finite and 0 if not:
  then a zero in A's padding contributes exactly nothing and a kernel may skip its masking (a
  padded tap must form no product; 0 · Inf is NaN).
- `pack_bias`: [O] -> [P, NR·X].
- `ConvGemm`: one conv's tiling (balanced row tiles over the pixels of an image, panels of NR
  output blocks) and `tile`, which runs the microkernel on one (panel, row tile) from the bias
  and applies the epilogue (residual, activation, one vector store per pixel and output block)
  while the tile is in registers. Stores are whole vectors: padded output lanes are unspecified.

**Depth chunks.** With a huge K (ResNet-50's 1×1 convs read 1024 or 2048 channels, FCN's head
3×3 over 2048: K = 18432) one B panel (K × NR·X floats: 160 KiB at K = 1280, NR·X = 32) does
not stay in L1 while the row tiles sweep it, nor an A slice of useful size in L2, and the
kernel runs at L2/L3 speed. GEMM libraries block the depth (BLIS's kc): `depth_chunks` cuts the
full input blocks' outer depth range into chunks of `chunk` outer indices; the caller runs its
whole (panel, row tile) sweep once per chunk, and `tile` starts a chunk's accumulators from the
bias (first chunk) or from the partial sums the previous chunk stored in Y, and stores raw sums
(no residual, no activation) except after the last chunk (which also takes a partial last input
block). Y is the conv's own output buffer: no workspace. The sum over K is then ordered by
chunk, then within a chunk as before: the same order as without chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import arith
from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from lowering.algorithms.common import (
    ConvBuffers,
    ConvGeometry,
    has_constant_parameters,
    store_blocked,
)
from lowering.emit import (
    Index,
    add,
    affine,
    f32_constant,
    index,
    load,
    load_vector,
    loop,
    mul,
    splat,
    store_vector,
)
from lowering.microkernel import (
    DepthRange,
    Operands,
    PanelTiling,
    RowInside,
    RowTiling,
    ScalarAt,
    accumulate,
    blocked_depth,
    pack_b,
)

PixelCoordinates = list[tuple[SSAValue, SSAValue]]
"""(oh, ow) of each row of a register tile."""


@dataclass(frozen=True)
class DepthChunk:
    """The depth ranges one sweep of a conv's GEMM accumulates (module doc, Depth chunks):
    `first` (i1, or a Python bool when known) whether the sum starts here (from the bias)
    rather than from Y's partial sums; `last` whether the epilogue follows."""

    depth: list[DepthRange]
    first: SSAValue | bool
    last: bool


def applicable_blocked_dense(op: conv.Conv2DOp) -> bool:
    """NCHWc input, group 1, constant weights and bias: what both GEMM algorithms need."""
    return (
        len(tensor_shape(op.input)) == 5
        and op.group.value.data == 1
        and has_constant_parameters(op)
    )


def checked_geometry(op: conv.Conv2DOp, algorithm: str) -> ConvGeometry:
    """The geometry of `op`, or an error naming the op if `algorithm` cannot run it."""
    g = ConvGeometry.of(op)
    if not g.blocked_input or g.group != 1:
        raise ValueError(
            f"'{op.name}' {algorithm} needs an NCHWc input and group 1 "
            f"(got {'NCHWc' if g.blocked_input else 'NCHW'}, group {g.group})"
        )
    return g


def pack_weight(weight: np.ndarray, nr: int, block: int) -> np.ndarray:
    """[O, C, KH, KW] -> B panels [P, C·KH·KW + 1, NR·X] in the depth order (cb, tap, lane),
    then the row of whether every weight is finite (module doc)."""
    o, c, kh, kw = weight.shape
    in_blocks = -(-c // block)
    padded = np.zeros((o, in_blocks * block, kh * kw), np.float32)
    padded[:, :c] = weight.reshape(o, c, kh * kw)
    # [O, CB, X, taps] -> [CB, taps, X, O]: rows in depth order, one column per output channel;
    # then only the rows of real channels (the padded lanes of a partial last block go).
    rows = padded.reshape(o, in_blocks, block, kh * kw).transpose(1, 3, 2, 0)
    real = (np.arange(in_blocks)[:, None, None] * block + np.arange(block)) < c
    panels = pack_b(rows[np.broadcast_to(real, rows.shape[:3])], nr, block)
    finite = np.full((panels.shape[0], 1, panels.shape[2]), float(np.isfinite(weight).all()))
    return np.concatenate([panels, finite.astype(np.float32)], axis=1)


def pack_bias(bias: np.ndarray, nr: int, block: int) -> np.ndarray:
    """[O] -> [P, NR·X], zero past O."""
    panel = nr * block
    count = -(-bias.shape[0] // panel)
    padded = np.zeros(count * panel, np.float32)
    padded[: bias.shape[0]] = bias
    return padded.reshape(count, panel)


def balanced_task_size(
    items: int, most: int, copies: int, cores: int, *, interleaved: bool = False
) -> int:
    """Items (row tiles, panels) per task: the count in [most/2, most] whose tasks load `cores`
    threads most evenly, the largest such count on ties.

    There are `copies` runs (images) of ceil(items / count) tasks, the last of each run partial.
    Threads take contiguous shares of the tasks (the static split of `scf.parallel`), or every
    `cores`-th task with `interleaved` (im2col's worker slots).
    """
    most = max(1, min(most, items))
    best, best_load = most, None
    for count in range(most, (most + 1) // 2 - 1, -1):
        sizes = [min(count, items - first) for first in range(0, items, count)] * copies
        load = max(_thread_loads(sizes, cores, interleaved))
        if best_load is None or load < best_load:
            best, best_load = count, load
    return best


def _thread_loads(sizes: list[int], cores: int, interleaved: bool) -> list[int]:
    if interleaved:
        return [sum(sizes[thread::cores]) for thread in range(cores)]
    base, extra = divmod(len(sizes), cores)
    loads, first = [], 0
    for thread in range(cores):
        count = base + (1 if thread < extra else 0)
        loads.append(sum(sizes[first : first + count]))
        first += count
    return loads


@dataclass(frozen=True)
class ConvGemm:
    """One conv as a GEMM with an MR × NR register tile (module doc)."""

    g: ConvGeometry
    mr: int
    nr: int

    @property
    def block(self) -> int:
        assert self.g.block is not None
        return self.g.block

    @property
    def taps(self) -> int:
        return self.g.kh * self.g.kw

    @property
    def rows(self) -> RowTiling:
        """Row tiles over the OH·OW output pixels of one image."""
        return RowTiling.of(self.g.oh * self.g.ow, self.mr)

    @property
    def panels(self) -> PanelTiling:
        return PanelTiling(self.g.output_blocks, self.nr)

    @property
    def depth(self) -> list[DepthRange]:
        return blocked_depth(self.g.c, self.block, self.taps)

    def depth_chunks(self, chunk: int, emit: Callable[[DepthChunk], None]) -> None:
        """emit(chunk) for the depth in chunks of `chunk` outer indices (module doc): once for
        the whole depth when `chunk` is 0 or covers it, else once inside an `scf.for` over
        every chunk but the last, and once for the last chunk."""
        depth = self.depth
        main = depth[0]
        if not chunk or main.lanes != self.block or main.count <= chunk:
            emit(DepthChunk(depth, True, True))
            return
        chunks = -(-main.count // chunk)
        with loop(0, chunks - 1) as number:
            first = arith.CmpiOp(number.iv, index(0), "eq").result
            emit(DepthChunk([main.chunk(mul(number.iv, chunk), chunk)], first, False))
        start = (chunks - 1) * chunk
        emit(DepthChunk([main.chunk(start, main.count - start), *depth[1:]], False, True))

    @property
    def depth_blocks(self) -> int:
        """Outer depth indices of the packed layouts: input blocks × taps."""
        return self.g.input_blocks * self.taps

    def weight_shape(self) -> tuple[int, int, int]:
        return (self.panels.count, self.g.c * self.taps + 1, self.nr * self.block)

    def weights_finite(self, weight: SSAValue) -> SSAValue:
        """Whether every weight is finite (i1), read from the packed weights' last row."""
        flag = load(weight, [0, self.g.c * self.taps, 0])
        return arith.CmpfOp(flag, f32_constant(0.0), "one").result

    def bias_shape(self) -> tuple[int, int]:
        return (self.panels.count, self.nr * self.block)

    def dispatch(
        self, panel: Index, row_tile: Index, emit: Callable[[SSAValue, tuple[int, int]], None]
    ) -> None:
        """emit(first pixel, (rows, vectors)) for one (panel, row tile), one branch per shape."""
        self.panels.dispatch(
            panel,
            lambda vectors, _: self.rows.dispatch(
                row_tile, lambda first, rows: emit(first, (rows, vectors))
            ),
        )

    def coordinates(self, first_pixel: SSAValue, rows: int) -> PixelCoordinates:
        """(oh, ow) of the `rows` pixels from `first_pixel` on."""
        ow = index(self.g.ow)
        pixels = [add(first_pixel, r) for r in range(rows)]
        return [(arith.DivUIOp(p, ow).result, arith.RemUIOp(p, ow).result) for p in pixels]

    def tile(
        self,
        op: conv.Conv2DOp,
        buffers: ConvBuffers,
        position: tuple[SSAValue, SSAValue, PixelCoordinates],
        vectors: int,
        a_at: ScalarAt,
        inside: RowInside | None = None,
        chunk: DepthChunk | None = None,
    ) -> None:
        """Y for the pixels `coordinates` of image `n` × the `vectors` blocks of `panel`:
        bias, the depth loop reading A through `a_at` (forming no product where `inside` says
        a row's tap is padding), residual, activation, store. With `chunk`, only its depth,
        from and to Y's partial sums as it says (module doc, Depth chunks)."""
        n, panel, coordinates = position
        chunk = chunk or DepthChunk(self.depth, True, True)
        width = self.block
        weight, bias = buffers.weight, buffers.bias
        initial: list = [
            load_vector(bias, [panel, j * width], width) if bias is not None else splat(0.0, width)
            for j in range(vectors)
        ]
        out_blocks = [affine([(panel, self.nr)], j) for j in range(vectors)]
        if chunk.first is not True:
            partial = [
                [load_vector(buffers.y, [n, block, oh, ow, 0], width) for block in out_blocks]
                for oh, ow in coordinates
            ]
            if chunk.first is False:
                initial = partial
            else:
                bias_or_zero = initial
                initial = [
                    [
                        arith.SelectOp(chunk.first, b, p).result
                        for b, p in zip(bias_or_zero, row, strict=True)
                    ]
                    for row in partial
                ]

        def b_at(row: SSAValue, j: int) -> SSAValue:
            return load_vector(weight, [panel, row, j * width], width)

        shape = (len(coordinates), vectors)
        result = accumulate(shape, chunk.depth, Operands(a_at, b_at, inside), initial)
        for (oh, ow), accs in zip(coordinates, result, strict=True):
            for block, acc in zip(out_blocks, accs, strict=True):
                if chunk.last:
                    store_blocked(op, acc, buffers.residual, buffers.y, [n, block, oh, ow])
                else:
                    store_vector(acc, buffers.y, [n, block, oh, ow, 0])
