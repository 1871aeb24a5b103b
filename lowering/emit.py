"""Small helpers to emit loop-level IR (func/scf/arith/math/vector/memref) from Python.

Emitters write straight-line Python that reads like the loop nest it builds: operations created
inside `with` blocks are inserted there by xDSL's `ImplicitBuilder`.

    with kernel_function(module, "relu_1x64", [memref_type, memref_type]) as (src, dst):
        with loop(0, 64) as i:
            x = memref.LoadOp.get(src, [i]).res
            ...

Integer arguments of the helpers may be Python ints (turned into `index` constants) or SSA values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from xdsl.builder import ImplicitBuilder
from xdsl.dialects import arith, func, memref, scf, vector
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    VectorType,
    f32,
    i8,
)
from xdsl.ir import Attribute, Block, Region, SSAValue

Index = int | SSAValue


def index(value: Index) -> SSAValue:
    """`value` as an `index` SSA value (a constant when it is a Python int)."""
    if isinstance(value, SSAValue):
        return value
    return arith.ConstantOp(IntegerAttr(value, IndexType())).result


def f32_constant(value: float) -> SSAValue:
    """An f32 constant."""
    return arith.ConstantOp(FloatAttr(float(value), f32)).result


def vector_type(width: int) -> VectorType:
    """`vector<width x f32>`."""
    return VectorType(f32, [width])


def f32_memref(shape: Sequence[int]) -> MemRefType:
    """A static, identity-layout `memref<shape x f32>`."""
    return MemRefType(f32, list(shape))


def byte_memref(size: int) -> MemRefType:
    """`memref<size x i8>`: an untyped buffer (the arena, the weights, a workspace)."""
    return MemRefType(i8, [max(size, 1)])


def splat(value: float, width: int) -> SSAValue:
    """A constant vector with every lane `value`."""
    vtype = vector_type(width)
    return arith.ConstantOp(DenseIntOrFPElementsAttr.from_list(vtype, [float(value)])).result


def add(a: Index, b: Index) -> SSAValue:
    """index addition, folding two Python ints."""
    if isinstance(a, int) and isinstance(b, int):
        return index(a + b)
    if isinstance(b, int) and b == 0:
        return index(a)
    return arith.AddiOp(index(a), index(b)).result


def mul(a: Index, b: Index) -> SSAValue:
    """index multiplication, folding two Python ints and multiplications by 1."""
    if isinstance(a, int) and isinstance(b, int):
        return index(a * b)
    if isinstance(b, int) and b == 1:
        return index(a)
    return arith.MuliOp(index(a), index(b)).result


def affine(terms: Sequence[tuple[Index, int]], constant: int = 0) -> SSAValue:
    """sum(value * coefficient) + constant, skipping zero coefficients."""
    result: Index = constant
    for value, coefficient in terms:
        if coefficient == 0:
            continue
        term = mul(value, coefficient)
        result = term if result == 0 else add(term, result)
    return index(result)


@dataclass
class Loop:
    """An `scf.for` being built: its induction variable and loop-carried values."""

    op: scf.ForOp
    iv: SSAValue
    carried: list[SSAValue] = field(default_factory=list)
    _yielded: list[SSAValue] | None = None

    def yield_(self, *values: SSAValue) -> None:
        """Set the values carried to the next iteration (one per `carry` value)."""
        self._yielded = list(values)

    @property
    def results(self) -> list[SSAValue]:
        """The carried values after the last iteration."""
        return list(self.op.results)


@contextmanager
def loop(lower: Index, upper: Index, step: Index = 1, carry: Sequence[SSAValue] = ()):
    """`scf.for %iv = lower to upper step step`; with `carry`, call `yield_` in the body."""
    carry = list(carry)
    body = Block(arg_types=[IndexType(), *(v.type for v in carry)])
    for_op = scf.ForOp(index(lower), index(upper), index(step), carry, Region(body))
    handle = Loop(for_op, body.args[0], list(body.args[1:]))
    with ImplicitBuilder(body):
        yield handle
        if carry and handle._yielded is None:
            raise ValueError("a loop with carried values must call yield_ in its body")
        scf.YieldOp(*(handle._yielded or []))


@contextmanager
def parallel(bounds: Sequence[tuple[Index, Index]]) -> Iterator[list[SSAValue]]:
    """`scf.parallel` over the half-open ranges `bounds` (step 1): the threaded axes of a kernel."""
    body = Block(arg_types=[IndexType()] * len(bounds))
    lowers = [index(lb) for lb, _ in bounds]
    uppers = [index(ub) for _, ub in bounds]
    steps = [index(1) for _ in bounds]
    scf.ParallelOp(lowers, uppers, steps, Region(body))
    with ImplicitBuilder(body):
        yield list(body.args)
        scf.ReduceOp()


@contextmanager
def if_(condition: SSAValue) -> Iterator[None]:
    """`scf.if %condition` without results or else branch."""
    then = Block()
    scf.IfOp(condition, [], Region(then), None)
    with ImplicitBuilder(then):
        yield
        scf.YieldOp()


def if_else(condition: SSAValue, then: Callable[[], None], otherwise: Callable[[], None]) -> None:
    """`scf.if %condition` with an else branch, neither with results: `then()` emits the first
    branch's ops, `otherwise()` the second's."""
    regions = []
    for emit_branch in (then, otherwise):
        block = Block()
        with ImplicitBuilder(block):
            emit_branch()
            scf.YieldOp()
        regions.append(Region(block))
    scf.IfOp(condition, [], *regions)


@contextmanager
def kernel_function(
    module: ModuleOp, name: str, arg_types: Sequence[Attribute], *, private: bool = True
) -> Iterator[tuple[SSAValue, ...]]:
    """A `func.func @name(args) -> ()` appended to `module`; yields its arguments."""
    body = Block(arg_types=list(arg_types))
    function = func.FuncOp(
        name, (list(arg_types), []), Region(body), "private" if private else None
    )
    module.body.block.add_op(function)
    with ImplicitBuilder(body):
        yield tuple(body.args)
        func.ReturnOp()


def load_vector(ref: SSAValue, indices: Sequence[Index], width: int) -> SSAValue:
    """`width` consecutive f32 along the last axis of `ref`, starting at `indices`."""
    return vector.LoadOp(ref, [index(i) for i in indices], vector_type(width)).result


def store_vector(value: SSAValue, ref: SSAValue, indices: Sequence[Index]) -> None:
    """Store a vector to consecutive elements along the last axis of `ref`."""
    vector.StoreOp(value, ref, [index(i) for i in indices])


def broadcast(scalar: SSAValue, width: int) -> SSAValue:
    """A vector with every lane `scalar`."""
    return vector.BroadcastOp(scalar, vector_type(width)).vector


def fma(a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
    """a * b + c on vectors."""
    return vector.FMAOp(a, b, c).res


def load(ref: SSAValue, indices: Sequence[Index]) -> SSAValue:
    """A scalar `memref.load`."""
    return memref.LoadOp.get(ref, [index(i) for i in indices]).res


def store(value: SSAValue, ref: SSAValue, indices: Sequence[Index]) -> None:
    """A scalar `memref.store`."""
    memref.StoreOp.get(value, ref, [index(i) for i in indices])


def view(buffer: SSAValue, byte_offset: Index, memref_type: MemRefType) -> SSAValue:
    """A static-shaped f32 memref at `byte_offset` of an i8 buffer (arena, weights, workspace)."""
    return memref.ViewOp(buffer, index(byte_offset), [], memref_type).result


def extract(value: SSAValue, lane: int) -> SSAValue:
    """Lane `lane` of a vector."""
    element = value.type.get_element_type()
    return vector.ExtractOp(value, [lane], element).result


def insert(scalar: SSAValue, value: SSAValue, lane: int) -> SSAValue:
    """`value` with lane `lane` replaced by `scalar`."""
    return vector.InsertOp(scalar, value, [lane]).result
