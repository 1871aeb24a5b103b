"""Kernel of `conv.gemm` (ONNX Gemm, and MatMul imported as one).

**Constant B** (a Linear layer's weights: the common case) runs on the register-blocked
microkernel of the conv algorithms (`lowering.microkernel`): B is repacked at compile time into
panels [ceil(N / PANEL_COLUMNS), K, PANEL_COLUMNS] (transposed first if trans_b, zero past
N), and C is computed one MR × NR-vector register tile at a time (NR·W = PANEL_COLUMNS), the
accumulators kept in registers over the whole K loop; alpha and beta·C are applied to the
finished tile. Packing happens before the vector width is known (a packer sees only the op), so
the panel width is fixed: 32 columns are 4 AVX2 vectors (tile 2 × 4 within a register file of
16) or 2 AVX-512 vectors (tile 4 × 2), the tiles `microkernel.register_tile` picks for
`VECTOR_REGISTERS` = 16, the smallest file of the x86 targets.

Work is split into tasks of (a range of row tiles, a group of panels): a task sweeps its row
tiles once per panel, so its slice of A (`A_SLICE_BYTES` at most) is read from memory once and
from L2 after that. Tasks run in parallel when the GEMM is large enough; with few row ranges
(small M, e.g. a classifier's M = 1) the panels are split into groups so that every core gets
work.

ConvNeXt's MLPs (MatMuls on channels-last activations, M = pixels) ran at ~10 GFLOP/s on the
earlier one-row × 16-column loop, which loaded two B vectors per two FMAs; this tile runs them at
~60 GFLOP/s, 1 thread, AVX2 (measured under load; 98 GFLOP/s peak).

**B computed at run time** is read in place by a plain loop nest: per (row of the output, block
of PANEL columns) PANEL / W vector accumulators over the K loop, vectorised along N when B is
[K, N], scalar when it is [N, K].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import arith, vector
from xdsl.dialects.builtin import f32
from xdsl.ir import Attribute, Operation, SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from lowering.emit import Index, add, affine, f32_memref, index, load_vector, loop, mul
from lowering.emit import load as load_scalar
from lowering.kernels import Packer
from lowering.kernels.access import Access
from lowering.kernels.common import (
    OpKernel,
    Width,
    constant,
    is_threaded,
    iterate,
    kernel_shape,
    load,
    multiply_add,
    number_tag,
    shape_tag,
    store,
    widen,
)
from lowering.microkernel import Operands, PanelTiling, RowTiling, accumulate, blocked_depth

PANEL = 16
"""Columns of B per accumulator block of a B computed at run time: one 64-byte line of f32."""

PANEL_COLUMNS = 32
"""Columns of a packed constant B's panel: the NR vectors of one register tile (module doc)."""

VECTOR_REGISTERS = 16
"""The register file the constant-B tile is sized for (module doc)."""

A_SLICE_BYTES = 128 * 1024
"""The most of A one task sweeps per panel: a quarter of the smallest L2 of the x86 targets,
so that the slice stays in L2 next to the weight panel streaming through."""

MIN_TASKS = 8
"""Tasks a threaded constant-B GEMM is cut into at least (panel groups are split until then)."""

BLoad = Callable[[SSAValue, int], SSAValue]
"""B at (depth k, column offset in the current block): a scalar or a vector of columns."""


def pack_panels(b: np.ndarray, trans_b: bool, panel: int = PANEL_COLUMNS) -> np.ndarray:
    """B ([K, N], or [N, K] with `trans_b`) as panels [ceil(N / panel), K, panel], zero-padded."""
    rows = np.asarray(b.T if trans_b else b, dtype=np.float32)
    depth, columns = rows.shape
    full, rest = divmod(columns, panel)
    # Written in place into the one output array: a classifier's B can be most of a model's
    # weights (VGG-16's first FC: 411 MB), so no padded or transposed temporary copy of it.
    packed = np.zeros((full + (rest > 0), depth, panel), dtype=np.float32)
    packed[:full].transpose(1, 0, 2)[...] = rows[:, : full * panel].reshape(depth, full, panel)
    if rest:
        packed[full, :, :rest] = rows[:, full * panel :]
    return packed


def panel_tile(vector_width: int) -> tuple[int, int]:
    """(MR, NR) of the constant-B kernel at `vector_width` lanes (module doc)."""
    nr = max(1, PANEL_COLUMNS // vector_width)
    return max(1, (VECTOR_REGISTERS - nr - 1) // nr), nr


def _dimensions(op: conv.GemmOp) -> tuple[int, int, int]:
    """(M, N, K)."""
    a0, a1 = tensor_shape(op.a)
    m, k = (a1, a0) if op.trans_a is not None else (a0, a1)
    return m, tensor_shape(op.output)[1], k


def _packs_b(op: conv.GemmOp) -> bool:
    return isinstance(op.b.owner, conv.ConstantOp)


class GemmKernel(OpKernel):
    """`conv.gemm`; keys like `gemm_1x1000x512_panel_c1000` (M x N x K, B layout, C shape)."""

    def key(self, op: conv.GemmOp) -> str:
        m, n, k = _dimensions(op)
        parts = [f"gemm_{m}x{n}x{k}"]
        if op.trans_a is not None:
            parts.append("ta")
        if _packs_b(op):
            parts.append("panel")
        elif op.trans_b is not None:
            parts.append("tb")
        if op.c is not None:
            parts.append(f"c{shape_tag(tensor_shape(op.c))}")
        for name, attr in (("alpha", op.alpha), ("beta", op.beta)):
            if attr.value.data != 1.0 and (name == "alpha" or op.c is not None):
                parts.append(f"{name}{number_tag(attr.value.data)}")
        return "_".join(parts)

    def packers(self, op: conv.GemmOp) -> dict[int, Packer]:
        """A constant B becomes panels (see `pack_panels`)."""
        if not _packs_b(op):
            return {}
        trans_b = op.trans_b is not None
        return {1: lambda b: pack_panels(b, trans_b)}

    def argument_types(self, op: Operation) -> list[Attribute]:
        """a, b (as panels when constant), [c], output."""
        assert isinstance(op, conv.GemmOp)
        types = super().argument_types(op)
        if _packs_b(op):
            _, n, k = _dimensions(op)
            types[1] = f32_memref((-(-n // PANEL_COLUMNS), k, PANEL_COLUMNS))
        return types

    def body(self, op: conv.GemmOp, args: list[SSAValue], vector_width: int) -> None:
        a, b, *rest = args
        c, result = (rest[0], rest[1]) if op.c is not None else (None, rest[0])
        m, n, k = _dimensions(op)
        gemm = _GemmLoops(
            a,
            c,
            result,
            k,
            op.trans_a is not None,
            float(op.alpha.value.data),
            float(op.beta.value.data),
            Access.broadcast(c, kernel_shape(op.c), (m, n)) if c is not None else None,
        )
        if _packs_b(op):
            _PackedGemm(gemm, (m, n, k), vector_width).emit(b)
            return
        lanes: Width = vector_width if vector_width > 1 and PANEL % vector_width == 0 else None
        threaded = is_threaded(2 * m * n * k)
        full, count = n // PANEL, PANEL // (lanes or 1)
        trans_b = op.trans_b is not None
        vector_columns = 0 if trans_b else full * PANEL
        if vector_columns:
            with iterate([m, full], threaded) as (row, block_index):
                first = mul(block_index, PANEL)
                loader = _row_loader(b, first, lanes)
                gemm.block(row, first, count, lanes, loader, PANEL)
        if vector_columns < n:
            with iterate([m, n - vector_columns], threaded) as (row, column):
                at = add(column, vector_columns)
                loader = _column_loader(b, at, trans_b)
                gemm.block(row, at, 1, None, loader, 1)


def _row_loader(b: SSAValue, first: Index, lanes: Width) -> BLoad:
    """B as [K, N]: columns from `first` + offset."""
    return lambda depth, offset: load(b, [depth, add(first, offset)], lanes)


def _column_loader(b: SSAValue, column: Index, trans_b: bool) -> BLoad:
    """One column of B, [K, N] or [N, K]."""
    return lambda depth, _: load(b, [column, depth] if trans_b else [depth, column], None)


@dataclass(frozen=True)
class _PackedGemm:
    """The constant-B kernel: register tiles over tasks of row tiles × panel groups (module
    doc)."""

    loops: _GemmLoops
    sizes: tuple[int, int, int]
    width: int

    def emit(self, b: SSAValue) -> None:
        m, n, k = self.sizes
        mr, nr = panel_tile(self.width)
        rows = RowTiling.of(m, mr)
        panels = PanelTiling(-(-n // self.width), nr)
        threaded = is_threaded(2 * m * n * k)
        most_tiles = max(1, A_SLICE_BYTES // (4 * mr * k))
        ranges = -(-rows.count // most_tiles)
        task_tiles = -(-rows.count // ranges)
        groups = min(panels.count, -(-MIN_TASKS // ranges)) if threaded else 1
        task_panels = -(-panels.count // groups)
        groups = -(-panels.count // task_panels)
        with iterate([ranges, groups], threaded) as (task_range, group):
            first_panel = affine([(group, task_panels)])
            first_tile = affine([(task_range, task_tiles)])
            last_panel = _bounded(affine([(group, task_panels)], task_panels), panels.count)
            last_tile = _bounded(affine([(task_range, task_tiles)], task_tiles), rows.count)
            with loop(first_panel, last_panel) as panel, loop(first_tile, last_tile) as tile:
                panels.dispatch(
                    panel.iv,
                    lambda vectors, last: rows.dispatch(
                        tile.iv,
                        lambda first, height: self.tile(
                            b, panel.iv, first, (height, vectors), last
                        ),
                    ),
                    split_last=n % self.width != 0,
                )

    def tile(
        self, b: SSAValue, panel: SSAValue, first_row: SSAValue, shape: tuple[int, int], last: bool
    ) -> None:
        """One register tile of `shape` (rows, vectors): accumulate from zero over K, then the
        epilogue and the stores; in the `last` panel, the last vector may be partial."""
        loops, width = self.loops, self.width
        n, k = self.sizes[1:]

        def a_at(outer: SSAValue, lane: int, r: int) -> SSAValue:
            depth, row = affine([(outer, width)], lane), add(first_row, r)
            return load_scalar(loops.a, [depth, row] if loops.trans_a else [row, depth])

        def b_at(row: SSAValue, j: int) -> SSAValue:
            return load_vector(b, [panel, row, j * width], width)

        zero = [constant(0.0, width)] * shape[1]
        tile = accumulate(shape, blocked_depth(k, width), Operands(a_at, b_at), zero)
        first_column = affine([(panel, PANEL_COLUMNS)])
        for r, accumulators in enumerate(tile):
            row = add(first_row, r)
            for j, acc in enumerate(accumulators):
                column = add(first_column, j * width)
                partial = last and j == shape[1] - 1 and n % width
                loops.store(acc, row, column, width, n % width if partial else width)


def _bounded(value: SSAValue, bound: int) -> SSAValue:
    return arith.MinSIOp(value, index(bound)).result


@dataclass(frozen=True)
class _GemmLoops:
    """The parts of one GEMM kernel that every block of columns shares."""

    a: SSAValue
    c: SSAValue | None
    result: SSAValue
    depth: int
    trans_a: bool
    alpha: float
    beta: float
    c_access: Access | None

    def block(
        self, row: Index, first: Index, count: int, width: Width, b_at: BLoad, valid: int
    ) -> None:
        """Output columns first .. first + count * lanes of `row`; only the first `valid` exist.

        `count` accumulators of `width` lanes are carried through the K loop; the columns past
        `valid` are computed but not stored.
        """
        step = width or 1
        zeros = [constant(0.0, width)] * count
        with loop(0, self.depth, carry=zeros) as depth:
            at = [depth.iv, row] if self.trans_a else [row, depth.iv]
            a_value = widen(load(self.a, at, None), width)
            depth.yield_(
                *(
                    multiply_add(a_value, b_at(depth.iv, j * step), acc)
                    for j, acc in enumerate(depth.carried)
                )
            )
        for j, acc in enumerate(depth.results):
            self.store(acc, row, add(first, j * step), width, max(0, valid - j * step))

    def store(self, acc: SSAValue, row: Index, column: Index, width: Width, valid: int) -> None:
        """The epilogue of `acc` (C's columns column .. column + lanes of `row`), stored whole,
        or only its first `valid` lanes one by one."""
        if valid >= (width or 1):
            store(self.epilogue(acc, row, column, width), self.result, [row, column])
            return
        for lane in range(valid):
            scalar = vector.ExtractOp(acc, [lane], f32).result
            at = add(column, lane)
            store(self.epilogue(scalar, row, at, None), self.result, [row, at])

    def epilogue(self, acc: SSAValue, row: Index, column: Index, width: Width) -> SSAValue:
        """alpha * acc + beta * c at (row, column .. column + lanes)."""
        y = acc if self.alpha == 1.0 else arith.MulfOp(acc, constant(self.alpha, width)).result
        if self.c is None or self.c_access is None:
            return y
        contiguous = self.c_access.along(1) == "contiguous"
        addend = load(self.c, self.c_access.indices([row, column]), width if contiguous else None)
        addend = addend if contiguous else widen(addend, width)
        if self.beta != 1.0:
            addend = arith.MulfOp(addend, constant(self.beta, width)).result
        return arith.AddfOp(y, addend).result
