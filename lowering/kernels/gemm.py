"""Kernel of `conv.gemm` (ONNX Gemm): a plain vectorised loop nest.

Each (row of the output, block of PANEL columns) keeps PANEL / W vector accumulators in
registers across the whole K loop: one scalar of A broadcast, PANEL / W fmas with rows of B.
A constant B is repacked at compile time into panels [ceil(N / PANEL), K, PANEL] (transposed
first if trans_b, zero-padded past N), so the K loop streams one cache line per step and
the last, partial panel needs no tail loop. A B computed at run time is read in place: vectorised
along N when it is [K, N], scalar when it is [N, K]. The tuned microkernel replaces this later.
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
from lowering.emit import Index, add, f32_memref, loop, mul
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

PANEL = 16
"""Columns of B per packed panel and per accumulator block: one 64-byte cache line of f32."""

BLoad = Callable[[SSAValue, int], SSAValue]
"""B at (depth k, column offset in the current block): a scalar or a vector of columns."""


def pack_panels(b: np.ndarray, trans_b: bool) -> np.ndarray:
    """B ([K, N], or [N, K] with `trans_b`) as panels [ceil(N / PANEL), K, PANEL], zero-padded."""
    rows = np.asarray(b.T if trans_b else b, dtype=np.float32)
    depth, columns = rows.shape
    full, rest = divmod(columns, PANEL)
    # Written in place into the one output array: a classifier's B can be most of a model's
    # weights (VGG-16's first FC: 411 MB), so no padded or transposed temporary copy of it.
    packed = np.zeros((full + (rest > 0), depth, PANEL), dtype=np.float32)
    packed[:full].transpose(1, 0, 2)[...] = rows[:, : full * PANEL].reshape(depth, full, PANEL)
    if rest:
        packed[full, :, :rest] = rows[:, full * PANEL :]
    return packed


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
            types[1] = f32_memref((-(-n // PANEL), k, PANEL))
        return types

    def body(self, op: conv.GemmOp, args: list[SSAValue], vector_width: int) -> None:
        a, b, *rest = args
        c, result = (rest[0], rest[1]) if op.c is not None else (None, rest[0])
        m, n, k = _dimensions(op)
        lanes: Width = vector_width if vector_width > 1 and PANEL % vector_width == 0 else None
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
        threaded = is_threaded(2 * m * n * k)
        full, count = n // PANEL, PANEL // (lanes or 1)
        if _packs_b(op):
            if full:
                with iterate([m, full], threaded) as (row, panel):
                    loader = _panel_loader(b, panel, lanes)
                    gemm.block(row, mul(panel, PANEL), count, lanes, loader, PANEL)
            if n % PANEL:
                with iterate([m], threaded) as (row,):
                    loader = _panel_loader(b, full, lanes)
                    gemm.block(row, full * PANEL, count, lanes, loader, n % PANEL)
            return
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


def _panel_loader(b: SSAValue, panel: Index, lanes: Width) -> BLoad:
    """Packed B: panel `panel` at (depth, column offset in the panel)."""
    return lambda depth, offset: load(b, [panel, depth, offset], lanes)


def _row_loader(b: SSAValue, first: Index, lanes: Width) -> BLoad:
    """B as [K, N]: columns from `first` + offset."""
    return lambda depth, offset: load(b, [depth, add(first, offset)], lanes)


def _column_loader(b: SSAValue, column: Index, trans_b: bool) -> BLoad:
    """One column of B, [K, N] or [N, K]."""
    return lambda depth, _: load(b, [column, depth] if trans_b else [depth, column], None)


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
        `valid` (the zero padding of a last packed panel) are computed but not stored.
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
            column = add(first, j * step)
            if (j + 1) * step <= valid:
                store(self.epilogue(acc, row, column, width), self.result, [row, column])
                continue
            for lane in range(max(0, valid - j * step)):
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
