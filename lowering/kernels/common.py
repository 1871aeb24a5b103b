"""Pieces shared by the op kernel emitters: value-width-generic IR helpers, loop nests with
threading, readable kernel keys, and the `OpKernel` base class.

Kernel bodies are written once for a "lane width": `None` means one f32 scalar, an int `w` means a
`vector<w x f32>`. The same body then serves the vector main loop and its scalar tail.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import arith, math, memref, vector
from xdsl.dialects.builtin import MemRefType, ModuleOp, f32
from xdsl.dialects.vector import CombiningKindAttr, CombiningKindFlag
from xdsl.ir import Attribute, Operation, SSAValue

from convir.dialects.shapes import tensor_shape
from lowering.emit import (
    Index,
    add,
    f32_constant,
    f32_memref,
    fma,
    index,
    kernel_function,
    load_vector,
    loop,
    parallel,
    splat,
    store_vector,
    vector_type,
)
from lowering.kernels import Packer

Width = int | None
"""Lane width of a value: None for a scalar f32, w for a vector<w x f32>."""

PARALLEL_MIN_WORK = 1 << 16
"""Scalar operations below which a kernel runs on one thread: a fork/join costs about a
microsecond (`lowering.thread_pool`), the time one core needs for a few ten thousand vectorised
flops."""

PARALLEL_MIN_ITERATIONS = 64
"""Threaded loops collapse leading axes until they have this many iterations, so that they split
into enough chunks to stay balanced for any core count that matters."""


# ---------------------------------------------------------------------------------------------
# Values of either width


def constant(value: float, width: Width) -> SSAValue:
    """An f32 constant, splatted to a vector when `width` is an int."""
    return f32_constant(value) if width is None else splat(value, width)


def widen(scalar: SSAValue, width: Width) -> SSAValue:
    """`scalar` itself, or a vector with every lane `scalar`."""
    return scalar if width is None else vector.BroadcastOp(scalar, vector_type(width)).vector


def load(ref: SSAValue, indices: Sequence[Index], width: Width) -> SSAValue:
    """One f32 at `indices`, or `width` consecutive ones along the last axis of `ref`."""
    if width is None:
        return memref.LoadOp.get(ref, [index(i) for i in indices]).res
    return load_vector(ref, indices, width)


def store(value: SSAValue, ref: SSAValue, indices: Sequence[Index]) -> None:
    """Store a scalar, or a vector along the last axis of `ref`."""
    if value.type == f32:
        memref.StoreOp.get(value, ref, [index(i) for i in indices])
    else:
        store_vector(value, ref, indices)


_FLOAT_OPS: dict[str, Callable[[SSAValue, SSAValue], Operation]] = {
    "add": arith.AddfOp,
    "sub": arith.SubfOp,
    "mul": arith.MulfOp,
    "div": arith.DivfOp,
    "max": arith.MaximumfOp,
    "min": arith.MinimumfOp,
}


def float_op(kind: str, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
    """`lhs kind rhs`, kind one of the `conv.binary` kinds (add ... min), any width."""
    return _FLOAT_OPS[kind](lhs, rhs).results[0]


def multiply_add(a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
    """a * b + c with one rounding, any width."""
    if a.type == f32:
        return math.FmaOp(a, b, c).result
    return fma(a, b, c)


def reduce_lanes(value: SSAValue, kind: str) -> SSAValue:
    """The lanes of a vector combined into one f32 (`kind` "add" or "max"); scalars pass through.

    Built generically because xDSL 0.74's `vector.ReductionOp.__init__` gives the result the
    vector's type instead of its element type.
    """
    if value.type == f32:
        return value
    flag = {"add": CombiningKindFlag.ADD, "max": CombiningKindFlag.MAXIMUMF}[kind]
    return vector.ReductionOp.build(
        operands=[value, None], result_types=[f32], properties={"kind": CombiningKindAttr(flag)}
    ).dest


# ---------------------------------------------------------------------------------------------
# Loops


def vector_split(length: int, width: int) -> int:
    """How many of `length` lanes the vector main loop covers (0 when vectors do not fit)."""
    return length // width * width if width > 1 else 0


def along_row(start: Index, length: int, width: int, body: Callable[[Index, Width], None]) -> None:
    """Call `body(iv, lane_width)` over [start, start + length): vectors of `width`, then scalars.

    `width` <= 1 emits the scalar loop only. A one-iteration loop is emitted as straight code
    (with a Python int `iv` when `start` is one).
    """
    main = vector_split(length, width)
    for lower, upper, step, lanes in ((0, main, width, width), (main, length, 1, None)):
        if upper <= lower:
            continue
        if upper - lower == step:
            body(start + lower if isinstance(start, int) else add(start, lower), lanes)
            continue
        with loop(add(start, lower), add(start, upper), step) as row:
            body(row.iv, lanes)


@contextmanager
def span(start: int, stop: int) -> Iterator[Index]:
    """`scf.for` over [start, stop), or just the Python int `start` when that is one iteration."""
    if stop - start == 1:
        yield start
        return
    with loop(start, stop) as iteration:
        yield iteration.iv


def parallel_depth(extents: Sequence[int]) -> int:
    """How many leading `extents` a threaded loop collapses: until PARALLEL_MIN_ITERATIONS."""
    iterations, depth = 1, 0
    while depth < len(extents) and iterations < PARALLEL_MIN_ITERATIONS:
        iterations *= extents[depth]
        depth += 1
    return depth


@contextmanager
def iterate(extents: Sequence[int], threaded: bool) -> Iterator[list[Index]]:
    """The loop nest over `extents`; with `threaded`, its leading axes form one `scf.parallel`.

    Yields one induction value per axis, the Python int 0 for axes of extent 1 (so index
    arithmetic on them folds away). An axis of extent 0 gives a loop that never runs.
    """
    depth = parallel_depth(extents) if threaded else 0
    threaded_axes = [axis for axis in range(depth) if extents[axis] > 1]
    with ExitStack() as stack:
        ivs: list[Index] = [0] * len(extents)
        if threaded_axes:
            bounds = [(0, extents[axis]) for axis in threaded_axes]
            for axis, iv in zip(threaded_axes, stack.enter_context(parallel(bounds)), strict=True):
                ivs[axis] = iv
        for axis, extent in enumerate(extents):
            if extent != 1 and axis not in threaded_axes:
                ivs[axis] = stack.enter_context(loop(0, extent)).iv
        yield ivs


def is_threaded(work: int) -> bool:
    """Whether a kernel doing `work` scalar operations is worth a parallel region."""
    return work >= PARALLEL_MIN_WORK


def reduce_rows(
    rows: int,
    length: int,
    width: int,
    element: Callable[[Index, SSAValue, Width], SSAValue],
    kind: str,
    init: SSAValue,
) -> SSAValue:
    """Combine `element(row, column, lane_width)` over a rows × length box into one f32.

    `kind` is "add" or "max"; `init` (an f32) starts the accumulation. Columns are read as vectors
    of `width` with a scalar tail; the vector accumulator is folded into the scalar at the end.
    """
    main = vector_split(length, width)
    # (lower, upper, step, lane width) of the vector part and the scalar tail, one accumulator each
    segments: list[tuple[int, int, int, Width]] = [(main, length, 1, None)]
    accumulators = [init]
    if main:
        segments.insert(0, (0, main, width, width))
        accumulators.insert(0, widen(init, width))

    def row(r: Index, carried: Sequence[SSAValue]) -> list[SSAValue]:
        result = []
        for (lower, upper, step, lanes), acc in zip(segments, carried, strict=True):
            if upper <= lower:
                result.append(acc)
                continue
            with loop(lower, upper, step, carry=[acc]) as columns:
                value = element(r, columns.iv, lanes)
                columns.yield_(float_op(kind, columns.carried[0], value))
            result.append(columns.results[0])
        return result

    if rows == 1:
        accumulators = row(0, accumulators)
    else:
        with loop(0, rows, carry=accumulators) as outer:
            outer.yield_(*row(outer.iv, outer.carried))
        accumulators = outer.results
    total = accumulators[-1]
    if main:
        total = float_op(kind, reduce_lanes(accumulators[0], kind), total)
    return total


@dataclass(frozen=True)
class WindowRun:
    """Consecutive outputs [start, stop) of a sliding window whose in-bounds taps are the same.

    `taps` are the kernel offsets that fall inside the input; `padded_taps` counts those inside
    the padded input (what an average with count_include_pad divides by).
    """

    start: int
    stop: int
    taps: tuple[int, ...]
    padded_taps: int


def window_runs(
    outputs: int, size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int
) -> list[WindowRun]:
    """Split the outputs of a 1-D window into runs with identical taps (borders vs interior).

    Output `o` reads input `o * stride - pads[0] + k * dilation` for tap `k`; emitting one loop
    per run makes every bounds check static.
    """
    runs: list[WindowRun] = []
    for o in range(outputs):
        first = o * stride - pads[0]
        positions = [first + k * dilation for k in range(kernel)]
        taps = tuple(k for k, p in enumerate(positions) if 0 <= p < size)
        padded = sum(1 for p in positions if p < size + pads[1])
        if runs and runs[-1].taps == taps and runs[-1].padded_taps == padded:
            runs[-1] = WindowRun(runs[-1].start, o + 1, taps, padded)
        else:
            runs.append(WindowRun(o, o + 1, taps, padded))
    return runs


# ---------------------------------------------------------------------------------------------
# Keys and the emitter base class


def shape_tag(shape: Sequence[int]) -> str:
    """`1x64x56x56`; `scalar` for rank 0."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


def number_tag(value: float) -> str:
    """An f32 attribute value as a symbol-name fragment: 0.2 -> `0p2`, -1e-05 -> `m1em05`."""
    text = str(np.float32(value))
    return text.replace("-", "m").replace("+", "").replace(".", "p")


def ints_tag(values: Sequence[int]) -> str:
    """`3` if all values are equal, else `3x2`."""
    values = list(values)
    if values and all(v == values[0] for v in values):
        return str(values[0])
    return "x".join(str(v) for v in values)


def kernel_shape(value: SSAValue) -> tuple[int, ...]:
    """The shape of the memref a kernel receives for a tensor value: its shape, except [1] for a
    rank-0 tensor (as `convert-conv-to-loops` views it: a bare pointer needs an element)."""
    return tensor_shape(value) or (1,)


def memref_of(value: SSAValue) -> MemRefType:
    """The memref type a kernel receives for a tensor value."""
    return f32_memref(kernel_shape(value))


class OpKernel(ABC):
    """Base of the op emitters: no packers, no workspace, arguments = operands then the result.

    Subclasses give the `key` and the `body`; `emit` wraps the body in the kernel function.
    """

    @abstractmethod
    def key(self, op: Operation) -> str:
        """A readable symbol name, equal for ops that can share one kernel."""

    def packers(self, op: Operation) -> dict[int, Packer]:
        """No compile-time repacking."""
        return {}

    def workspace_bytes(self, op: Operation) -> int:
        """No scratch memory."""
        return 0

    def argument_types(self, op: Operation) -> list[Attribute]:
        """One memref per operand (as the kernel sees it), then the result's."""
        return [memref_of(v) for v in (*op.operands, *op.results)]

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        """Append `func.func private @name(...)` computing `op` to `module`."""
        with kernel_function(module, name, self.argument_types(op)) as args:
            self.body(op, list(args), vector_width)

    @abstractmethod
    def body(self, op: Operation, args: list[SSAValue], vector_width: int) -> None:
        """Emit the loops of `op` into the kernel function being built; `args` are its block
        arguments (operand memrefs, the result memref)."""
