"""convert-parallel-to-pool: run each top-level `scf.parallel` on convir's thread pool (DESIGN §6).

(Threads came from libgomp's `GOMP_parallel` until its join, which waits for every thread of the
team, made two threads 4-15x slower than one on a busy machine; see `lowering.thread_pool`.
libgomp still holds the thread count, `omp_set_num_threads`.)

A top-level `scf.parallel` (not nested in another) of `func.func @k` moves into a new
`func.func private @k_par<i>(%data: !llvm.ptr, %first: i64, %end: i64)` that runs the body for
the iterations [first, end) of the collapsed iteration space (the product of the trip counts),
delinearised row-major (last dimension fastest, so a chunk's iterations stay adjacent in memory).
Where the loop stood, the values it captures are packed into a stack struct (or
`%data = llvm.mlir.zero` when there are none), and

    %fn = llvm.mlir.addressof @k_par<i> : !llvm.ptr
    func.call @convir_parallel_for(%fn, %data, %total, %chunk, %num_threads)
        : (!llvm.ptr, !llvm.ptr, i64, i64, i32) -> ()

hands the pool the iteration count and the chunk size (a compile-time constant where the trip
counts are; `lowering.parallel_work`). Threads claim chunks from one counter; a thread that starts
late (descheduled by another process) finds them taken and the caller does not wait for it; only
a chunk claimed and not finished holds back the return, so chunks are small enough that there
are at least a few of them.

A top-level loop whose estimated work (`lowering.parallel_work`) is below the pass option
`min-work` ops is not forked at all: it becomes an `scf.for` nest on the calling thread.

Captured: the non-constant bounds and every value defined outside the loop and used in it. Values
of operand-free `ConstantLike` ops and `memref.get_global` are cloned into `@k_par<i>`. The others
travel in an `!llvm.struct<(...)>` allocated by `llvm.alloca` at the top of the enclosing
function's entry block (a static slot even inside another loop), written with `llvm.mlir.undef`,
`llvm.insertvalue` and one `llvm.store`, read with one `llvm.load` and `llvm.extractvalue`:
- a static-shaped, identity-layout memref is an `!llvm.ptr`, crossing by
  `builtin.unrealized_conversion_cast` (memref -> ptr before the call, ptr -> memref in
  `@k_par<i>`). It is the memref's bare pointer (element 0): memref-to-llvm must lower such a memref
  to one bare `!llvm.ptr`, and `reconcile-unrealized-casts` must end the pipeline;
- `index` is an `i64` (`arith.index_cast` both ways; 64-bit targets);
- integers, floats, vectors of them and `!llvm.ptr` are themselves.
A pointer loaded from the struct carries no `noalias`, unlike a memref argument of a function.
Whole-struct store and load, because xDSL 0.74's llvmlite translation types a struct-field
`getelementptr` as a pointer to the struct and llvmlite then refuses to store the field through
it. `llvm.mlir.addressof` of a function works once `@k_par<i>` is an `llvm.func` of the same name.

The team size is the enclosing function's `i32` argument marked with the unit attribute
`convir.num_threads` (one compiled model runs with 1 or N threads), else the pass option
`threads`; 0 takes libgomp's setting (`omp_set_num_threads`, OMP_NUM_THREADS, else one thread
per core). An `scf.parallel`
nested in a threaded body runs serially, as an `scf.for` nest. Loops with reductions (`scf.reduce`
operands) are rejected with an error naming the op.

Expects func/scf/arith/math/vector/memref IR. Produces func/scf/arith/memref/vector/llvm IR
without `scf.parallel`, declaring `@convir_parallel_for`.
Invariant: what each iteration computes; functions without `scf.parallel` stay as they are.
"""

import operator
from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.builder import Builder
from xdsl.context import Context
from xdsl.dialects import arith, func, llvm, memref, scf
from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    UnrealizedConversionCastOp,
    VectorType,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.traits import ConstantLike, SymbolTable
from xdsl.utils.exceptions import PassFailedException

from lowering.parallel_work import (
    CHUNK_WORK,
    MIN_CHUNKS,
    MIN_PARALLEL_WORK,
    chunk_by_work,
    chunk_iterations,
    iteration_work,
    worth_forking,
)
from lowering.thread_pool import ENTRY_POINT

NUM_THREADS_ATTR = "convir.num_threads"
"""Unit attribute marking the `i32` argument that gives the number of threads at run time."""

_PTR = llvm.LLVMPointerType()
_RUNTIME_DECLARATIONS: dict[str, tuple[list[Attribute], list[Attribute]]] = {
    # body(data, first, end), data, total, chunk, threads (`lowering.thread_pool`)
    ENTRY_POINT: ([_PTR, _PTR, i64, i64, i32], []),
}

Index = int | SSAValue
"""An index known at compile time (int) or only at run time (an SSA value of type index)."""


_FOLDS = {
    arith.AddiOp: operator.add,
    arith.SubiOp: operator.sub,
    arith.MuliOp: operator.mul,
    arith.DivUIOp: operator.floordiv,
    arith.RemUIOp: operator.mod,
}
_RIGHT_IDENTITY = {arith.AddiOp: 0, arith.SubiOp: 0, arith.MuliOp: 1, arith.DivUIOp: 1}
_RIGHT_ZERO = {arith.MuliOp: 0, arith.RemUIOp: 1}
"""`a op k` is `a` for k in `_RIGHT_IDENTITY[op]`, and 0 for k in `_RIGHT_ZERO[op]`."""


class _IndexArith:
    """Emits index arithmetic at `builder`, folding what is known at compile time.

    Each constant is created once, through `constants` (the top of the function being built), so
    it dominates every use; index constants among `known` values are reused.
    """

    def __init__(self, builder: Builder, constants: Builder, known: Iterable[SSAValue]) -> None:
        self.builder = builder
        self._constants_builder = constants
        self._constants = {c: value for value in known if isinstance(c := _static(value), int)}

    def value(self, x: Index) -> SSAValue:
        if isinstance(x, SSAValue):
            return x
        if x not in self._constants:
            constant = arith.ConstantOp(IntegerAttr.from_index_int_value(x))
            self._constants[x] = self._constants_builder.insert(constant).result
        return self._constants[x]

    def binary(
        self, op_type: type[arith.SignlessIntegerBinaryOperation], a: Index, b: Index
    ) -> Index:
        """`a op b` for an op of `_FOLDS`; divisions are unsigned, so a and b must be >= 0."""
        if isinstance(a, int) and isinstance(b, int):
            return _FOLDS[op_type](a, b)
        if isinstance(a, int) and op_type in (arith.AddiOp, arith.MuliOp):
            a, b = b, a
        if isinstance(b, int) and _RIGHT_IDENTITY.get(op_type) == b:
            return a
        if isinstance(b, int) and _RIGHT_ZERO.get(op_type) == b:
            return 0
        return self.builder.insert(op_type(self.value(a), self.value(b))).result

    def add(self, a: Index, b: Index) -> Index:
        return self.binary(arith.AddiOp, a, b)

    def mul(self, a: Index, b: Index) -> Index:
        return self.binary(arith.MuliOp, a, b)

    def div(self, a: Index, b: Index) -> Index:
        return self.binary(arith.DivUIOp, a, b)

    def rem(self, a: Index, b: Index) -> Index:
        return self.binary(arith.RemUIOp, a, b)

    def compare(self, predicate: str, a: Index, b: Index) -> SSAValue:
        return self.builder.insert(arith.CmpiOp(self.value(a), self.value(b), predicate)).result

    def select(self, condition: SSAValue, then: Index, other: Index) -> SSAValue:
        select = arith.SelectOp(condition, self.value(then), self.value(other))
        return self.builder.insert(select).result

    def minimum(self, a: Index, b: Index) -> Index:
        """min(a, b) of values >= 0."""
        if isinstance(a, int) and isinstance(b, int):
            return min(a, b)
        return self.select(self.compare("ult", a, b), a, b)

    def trip_count(self, lower: Index, upper: Index, step: Index) -> Index:
        """max(0, ceil((upper - lower) / step)) for a positive step."""
        if isinstance(lower, int) and isinstance(upper, int) and isinstance(step, int):
            return max(0, -((lower - upper) // step))
        span = self.binary(arith.SubiOp, upper, lower)
        count = self.div(self.add(span, self.binary(arith.SubiOp, step, 1)), step)
        # The unsigned division is meaningful only when upper > lower (signed).
        return self.select(self.compare("sgt", upper, lower), count, 0)


def _static(value: SSAValue) -> Index:
    """The value as an int when an `arith.constant` of index type defines it."""
    owner = value.owner
    if (
        isinstance(owner, arith.ConstantOp)
        and isinstance(owner.value, IntegerAttr)
        and isinstance(value.type, IndexType)
    ):
        return owner.value.value.data
    return value


def _is_clonable_constant(value: SSAValue) -> bool:
    """Constants and global addresses are recreated in the outlined function, not passed."""
    owner = value.owner
    if isinstance(owner, memref.GetGlobalOp):
        return True
    return isinstance(owner, Operation) and owner.has_trait(ConstantLike) and not owner.operands


def _captured_values(op: scf.ParallelOp) -> list[SSAValue]:
    """Dynamic bounds and the values the body uses but does not define, in order of first use."""
    bounds = [*op.lowerBound, *op.upperBound, *op.step]
    captured = dict.fromkeys(bound for bound in bounds if isinstance(_static(bound), SSAValue))
    for inner in op.body.walk():
        for operand in inner.operands:
            if not op.is_ancestor(operand.owner):
                captured.setdefault(operand, None)
    return list(captured)


def _field_type(value: SSAValue, op: scf.ParallelOp) -> Attribute:
    """The type `value` has in the struct of captured values, or an error naming the op."""
    value_type = value.type
    if isinstance(value_type, MemRefType):
        if value_type.has_static_shape() and isinstance(value_type.layout, NoneAttr):
            return _PTR
    elif isinstance(value_type, IndexType):
        return i64
    elif isinstance(value_type, IntegerType | AnyFloat | llvm.LLVMPointerType) or (
        isinstance(value_type, VectorType)
        and isinstance(value_type.element_type, IntegerType | AnyFloat)
    ):
        return value_type
    raise PassFailedException(
        f"'{op.name}' uses a value of type {value_type} defined outside it; "
        "convert-parallel-to-pool passes only static identity-layout memrefs, index, integer, "
        "float, vector and !llvm.ptr values to its threads"
    )


def _struct_alignment_bytes(field_types: list[Attribute]) -> int:
    """8, or the largest vector field's size rounded up to a power of two (its ABI alignment)."""
    vector_bytes = [
        field.element_count() * max(field.element_type.bitwidth // 8, 1)
        for field in field_types
        if isinstance(field, VectorType)
    ]
    return max([8] + [1 << (size - 1).bit_length() for size in vector_bytes])


def _check_threads(threads: int) -> None:
    if threads < 0:
        raise ValueError(
            "convert-parallel-to-pool option threads must be >= 0 (0: libgomp decides), "
            f"got {threads}"
        )


def _check_supported(op: scf.ParallelOp) -> None:
    """Rejects reductions (in `op` or a loop nested in it) and constant steps that are not > 0."""
    for loop in [op, *(inner for inner in op.body.walk() if isinstance(inner, scf.ParallelOp))]:
        if loop.initVals:
            raise PassFailedException(
                f"'{loop.name}' has {len(loop.initVals)} reduction(s) (scf.reduce operands); "
                "convert-parallel-to-pool only threads loops without reductions"
            )
    if any(isinstance(step := _static(value), int) and step <= 0 for value in op.step):
        raise PassFailedException(f"'{op.name}' has a constant step <= 0; steps must be positive")


def _ancestor(op: Operation, kind: type[Operation]) -> Operation | None:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, kind):
        parent = parent.parent_op()
    return parent


def _runtime_threads(function: func.FuncOp) -> SSAValue | None:
    """The `i32` argument marked `convir.num_threads`, if `function` has one."""
    if function.arg_attrs is None:
        return None
    marked = [
        arg
        for arg, attrs in zip(function.args, function.arg_attrs.data, strict=True)
        if NUM_THREADS_ATTR in attrs.data
    ]
    if len(marked) > 1 or (marked and marked[0].type != i32):
        raise PassFailedException(
            f"func.func @{function.sym_name.data} may mark one i32 argument {NUM_THREADS_ATTR}, "
            f"got arguments of types {[str(arg.type) for arg in marked]}"
        )
    return marked[0] if marked else None


def _declare_runtime(module: ModuleOp) -> None:
    """Declares the thread pool's entry point if `module` lacks it; checks its type if not."""
    missing: list[func.FuncOp] = []
    for name, (inputs, outputs) in _RUNTIME_DECLARATIONS.items():
        existing = SymbolTable.lookup_symbol(module, name)
        if existing is None:
            missing.append(func.FuncOp.external(name, inputs, outputs))
        elif not (
            isinstance(existing, func.FuncOp)
            and list(existing.function_type.inputs) == inputs
            and list(existing.function_type.outputs) == outputs
        ):
            raise PassFailedException(f"symbol @{name} exists but is not the thread pool's")
    module.body.block.add_ops(missing)


def _unique_name(module: ModuleOp, base: str) -> str:
    index = 0
    while SymbolTable.lookup_symbol(module, f"{base}_par{index}") is not None:
        index += 1
    return f"{base}_par{index}"


def _move_body(op: scf.ParallelOp, block: Block, induction_values: list[SSAValue]) -> None:
    """Moves the loop body to the end of `block`, its `scf.reduce` becoming an `scf.yield`."""
    Rewriter.inline_block(op.body.block, InsertPoint.at_end(block), induction_values)
    reduce = block.last_op
    assert isinstance(reduce, scf.ReduceOp)  # scf.parallel's verifier guarantees it
    block.erase_op(reduce)
    block.add_op(scf.YieldOp())


def _serialise(op: scf.ParallelOp) -> scf.ForOp:
    """Replaces a reduction-free `scf.parallel` by the equivalent `scf.for` nest; returns its
    outermost loop."""
    blocks = [Block(arg_types=[IndexType()]) for _ in op.lowerBound]
    bounds = zip(op.lowerBound, op.upperBound, op.step, blocks, strict=True)
    loops = [scf.ForOp(lower, upper, step, [], block) for lower, upper, step, block in bounds]
    Rewriter.insert_op(loops[0], InsertPoint.before(op))
    for outer, inner in zip(blocks, loops[1:], strict=False):
        outer.add_ops([inner, scf.YieldOp()])
    _move_body(op, blocks[-1], [block.args[0] for block in blocks])
    Rewriter.erase_op(op)
    return loops[0]


def _cross(builder: Builder, value: SSAValue, to_type: Attribute) -> SSAValue:
    """`value` as `to_type`: itself, an index cast (index <-> i64) or a memref <-> ptr cast."""
    if value.type == to_type:
        return value
    if isinstance(value.type, IndexType) or isinstance(to_type, IndexType):
        return builder.insert(arith.IndexCastOp(value, to_type)).result
    return builder.insert(UnrealizedConversionCastOp.get([value], [to_type])).results[0]


def _unpack(
    builder: Builder, data: SSAValue, captured: list[SSAValue], field_types: list[Attribute]
) -> dict[SSAValue, SSAValue]:
    """Makes each captured value available at `builder`, as a clone or a struct field."""
    mapping: dict[SSAValue, SSAValue] = {}
    packed = [value for value in captured if not _is_clonable_constant(value)]
    for value in captured:
        if value not in packed:
            assert isinstance(value.owner, Operation)
            mapping[value] = builder.insert(value.owner.clone()).results[value.index]
    if packed:
        struct_type = llvm.LLVMStructType.from_type_list(field_types)
        struct = builder.insert(llvm.LoadOp(data, struct_type)).dereferenced_value
        for position, (value, field_type) in enumerate(zip(packed, field_types, strict=True)):
            position_attr = DenseArrayBase.from_list(i64, [position])
            field = builder.insert(llvm.ExtractValueOp(position_attr, struct, field_type)).res
            mapping[value] = _cross(builder, field, value.type)
    return mapping


def _pack(builder: Builder, packed: list[SSAValue], field_types: list[Attribute], entry: Block):
    """Stores `packed` into a struct allocated at the top of `entry`; returns its address."""
    if not packed:
        return builder.insert(llvm.ZeroOp(result_types=[_PTR])).res
    struct_type = llvm.LLVMStructType.from_type_list(field_types)
    # At the top of the entry block, the alloca is one static stack slot wherever the loop is.
    one = arith.ConstantOp(IntegerAttr(1, i64))
    alloca = llvm.AllocaOp(one, struct_type, _struct_alignment_bytes(field_types))
    Rewriter.insert_op([one, alloca], InsertPoint.at_start(entry))
    struct = builder.insert(llvm.UndefOp(struct_type)).res
    for position, (value, field_type) in enumerate(zip(packed, field_types, strict=True)):
        position_attr = DenseArrayBase.from_list(i64, [position])
        field = _cross(builder, value, field_type)
        struct = builder.insert(llvm.InsertValueOp(position_attr, struct, field)).res
    builder.insert(llvm.StoreOp(struct, alloca.res))
    return alloca.res


def _as_i64(builder: Builder, value: Index) -> SSAValue:
    """`value` as an `i64` at `builder`: a constant, or an index cast."""
    if isinstance(value, int):
        return builder.insert(arith.ConstantOp(IntegerAttr(value, i64))).result
    return builder.insert(arith.IndexCastOp(value, i64)).result


def _chunk(index_arith: _IndexArith, total: Index, by_work: int) -> Index:
    """`chunk_iterations(total, by_work)`, emitted when `total` is known only at run time."""
    if isinstance(total, int):
        return chunk_iterations(total, by_work)
    share = index_arith.div(index_arith.add(total, MIN_CHUNKS - 1), MIN_CHUNKS)
    chunk = index_arith.minimum(share, by_work)
    return index_arith.select(index_arith.compare("ugt", chunk, 1), chunk, 1)


def _trip_counts(
    index_arith: _IndexArith, bounds: tuple[list[Index], list[Index], list[Index]]
) -> list[Index]:
    """The trip count of each dimension."""
    return [index_arith.trip_count(*bound) for bound in zip(*bounds, strict=True)]


def _total_iterations(
    index_arith: _IndexArith, bounds: tuple[list[Index], list[Index], list[Index]]
) -> Index:
    """The product of the trip counts: the collapsed iteration count."""
    total: Index = 1
    for trip in _trip_counts(index_arith, bounds):
        total = index_arith.mul(total, trip)
    return total


def _chunk_loop(
    index_arith: _IndexArith,
    first: SSAValue,
    end: SSAValue,
    bounds: tuple[list[Index], list[Index], list[Index]],
) -> tuple[Block, list[SSAValue]]:
    """Emits at `index_arith.builder` the loop over one chunk [first, end) (i64 values) of the
    collapsed iteration space; returns its body block and, in it, the induction variables of the
    original loop, delinearised row-major."""
    builder = index_arith.builder
    lowers, _, steps = bounds
    trips = _trip_counts(index_arith, bounds)
    first_index, end_index = (
        builder.insert(arith.IndexCastOp(value, IndexType())).result for value in (first, end)
    )
    body = Block(arg_types=[IndexType()])
    builder.insert(scf.ForOp(first_index, end_index, index_arith.value(1), [], body))

    builder.insertion_point = InsertPoint.at_end(body)
    collapsed: Index = body.args[0]
    induction_values: list[SSAValue] = []
    for dim in reversed(range(len(trips))):
        position = collapsed
        if dim > 0:
            position = index_arith.rem(collapsed, trips[dim])
            collapsed = index_arith.div(collapsed, trips[dim])
        offset = index_arith.mul(position, steps[dim])
        induction_values.insert(0, index_arith.value(index_arith.add(lowers[dim], offset)))
    return body, induction_values


def outline_parallel(
    op: scf.ParallelOp, threads: int = 0, *, chunk_work: int = CHUNK_WORK
) -> func.FuncOp:
    """Outlines a top-level `op` into a function run by `convir_parallel_for`; returns it.

    `threads` (>= 0) is the team size when the enclosing function has no `convir.num_threads`
    argument (0: libgomp's setting); `chunk_work` the ops a claimed chunk should hold at least
    (`lowering.parallel_work`). The module docstring gives the IR produced. Raises
    `PassFailedException`, leaving the IR unchanged, on reductions (in `op` or a loop nested in
    it), a constant step <= 0, or a captured value it cannot pass.
    """
    _check_threads(threads)
    _check_supported(op)
    captured = _captured_values(op)
    packed = [value for value in captured if not _is_clonable_constant(value)]
    field_types = [_field_type(value, op) for value in packed]
    function = _ancestor(op, func.FuncOp)
    module = function.parent_op() if function is not None else None
    if not isinstance(function, func.FuncOp) or not isinstance(module, ModuleOp):
        raise PassFailedException(f"'{op.name}' must be inside a func.func of a builtin.module")
    runtime_threads = _runtime_threads(function)
    _declare_runtime(module)
    by_work = chunk_by_work(iteration_work(op), chunk_work)

    entry = Block(arg_types=[_PTR, i64, i64])
    outlined = func.FuncOp(
        _unique_name(module, function.sym_name.data),
        ([_PTR, i64, i64], []),
        Region(entry),
        visibility="private",
    )
    Rewriter.insert_op(outlined, InsertPoint.after(function))
    builder = Builder(InsertPoint.at_end(entry))
    data, first, end = entry.args
    mapping = _unpack(builder, data, captured, field_types)
    index_arith = _IndexArith(builder, Builder(InsertPoint.at_start(entry)), mapping.values())
    bounds = tuple(
        [_static(mapping.get(value, value)) for value in values]
        for values in (op.lowerBound, op.upperBound, op.step)
    )
    body, induction_values = _chunk_loop(index_arith, first, end, bounds)
    entry.add_op(func.ReturnOp())
    _move_body(op, body, induction_values)
    for value, replacement in mapping.items():
        for use in list(value.uses):
            if outlined.is_ancestor(use.operation):
                use.operation.operands[use.index] = replacement
    for nested in [inner for inner in outlined.walk() if isinstance(inner, scf.ParallelOp)]:
        _serialise(nested)

    builder = Builder(InsertPoint.before(op))
    data = _pack(builder, packed, field_types, function.body.blocks[0])
    function_pointer = builder.insert(llvm.AddressOfOp(outlined.sym_name.data, _PTR)).result
    caller_arith = _IndexArith(builder, Builder(InsertPoint.at_start(function.body.blocks[0])), [])
    caller_bounds = tuple(
        [_static(value) for value in values] for values in (op.lowerBound, op.upperBound, op.step)
    )
    total = _total_iterations(caller_arith, caller_bounds)
    chunk = _chunk(caller_arith, total, by_work)
    num_threads = runtime_threads
    if num_threads is None:
        num_threads = builder.insert(arith.ConstantOp(IntegerAttr(threads, i32))).result
    sizes = [_as_i64(builder, value) for value in (total, chunk)]
    builder.insert(func.CallOp(ENTRY_POINT, [function_pointer, data, *sizes, num_threads], []))
    Rewriter.erase_op(op)
    return outlined


def serialise_small(op: scf.ParallelOp, min_work: int = MIN_PARALLEL_WORK) -> bool:
    """Turns a reduction-free `op` whose estimated work is below `min_work` ops into an
    `scf.for` nest on the calling thread; whether it did."""
    _check_supported(op)
    if worth_forking(op, min_work):
        return False
    outer = _serialise(op)
    for nested in [inner for inner in outer.walk() if isinstance(inner, scf.ParallelOp)]:
        _serialise(nested)
    return True


@dataclass(frozen=True)
class ConvertParallelToPoolPass(ModulePass):
    """Outlines every top-level `scf.parallel` and runs it on convir's thread pool.

    Option `threads`: the team size in functions without a `convir.num_threads` argument; 0 (the
    default) takes libgomp's setting. `min-work`: loops estimated below this many ops run on the
    calling thread (0: fork every loop); `chunk-work`: the ops a claimed chunk should hold at
    least (`lowering.parallel_work`). The module docstring gives the IR contract. Outlining creates
    module-level symbols and reads the enclosing function, so `apply` calls `outline_parallel` on
    each loop rather than going through a local rewrite pattern.
    """

    name = "convert-parallel-to-pool"

    threads: int = 0
    min_work: int = MIN_PARALLEL_WORK
    chunk_work: int = CHUNK_WORK

    def __post_init__(self) -> None:
        _check_threads(self.threads)
        if self.min_work < 0 or self.chunk_work < 1:
            raise ValueError(
                "convert-parallel-to-pool options min-work must be >= 0 and chunk-work >= 1, "
                f"got min-work={self.min_work}, chunk-work={self.chunk_work}"
            )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        loops = [inner for inner in op.walk() if isinstance(inner, scf.ParallelOp)]
        for loop in [loop for loop in loops if _ancestor(loop, scf.ParallelOp) is None]:
            if not serialise_small(loop, self.min_work):
                outline_parallel(loop, self.threads, chunk_work=self.chunk_work)
