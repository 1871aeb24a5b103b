"""convert-parallel-to-pool: the outlined IR, its errors, the chunks threads claim, and which
loops are not forked at all.

The xDSL interpreter cannot call native code, so `_SequentialPool` stands in for convir's thread
pool: `convir_parallel_for` runs the outlined function on each chunk, one after the other, and
the llvm ops that carry the captured values are interpreted on Python tuples. That checks the chunk
arithmetic on any bounds. The tests at the end run the real thing (lowering to LLVM, JIT, the pool
of `lowering.thread_pool`, 1, 2 and 3 threads).
"""

from __future__ import annotations

import ctypes
import re
import threading
from typing import Any

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import arith, func, llvm, memref, scf, vector
from xdsl.dialects.builtin import Builtin, IntegerAttr, MemRefType, ModuleOp
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    impl,
    impl_cast,
    impl_external,
    register_impls,
)
from xdsl.interpreters import arith as arith_impls
from xdsl.interpreters import builtin as builtin_impls
from xdsl.interpreters import cf as cf_impls
from xdsl.interpreters import func as func_impls
from xdsl.interpreters import memref as memref_impls
from xdsl.interpreters import scf as scf_impls
from xdsl.interpreters.shaped_array import ShapedArray
from xdsl.interpreters.utils.ptr import TypedPtr
from xdsl.parser import Parser
from xdsl.utils.exceptions import PassFailedException

from lowering import LOWERING_PASSES
from lowering.jit import compile_ir
from lowering.parallel_to_pool import ConvertParallelToPoolPass, outline_parallel
from lowering.parallel_work import MIN_CHUNKS, chunk_iterations, parallel_work
from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir


def _context() -> Context:
    ctx = Context()
    for dialect in (Builtin, func.Func, arith.Arith, scf.Scf, memref.MemRef, vector.Vector):
        ctx.load_dialect(dialect)
    ctx.load_dialect(llvm.LLVM)
    return ctx


def _parse(text: str) -> ModuleOp:
    return Parser(_context(), text).parse_module()


def _ops(module: ModuleOp, kind: type) -> list[Any]:
    return [op for op in module.walk() if isinstance(op, kind)]


def _pool_call(module: ModuleOp) -> func.CallOp:
    (call,) = [
        op for op in _ops(module, func.CallOp) if op.callee.string_value() == "convir_parallel_for"
    ]
    return call


def _function(module: ModuleOp, name: str) -> func.FuncOp:
    (function,) = [op for op in _ops(module, func.FuncOp) if op.sym_name.data == name]
    return function


def _parallel(bounds: list[tuple[str, str, str]], body: str) -> str:
    """A generic-form scf.parallel (xDSL 0.74 has no custom format for it)."""
    lowers, uppers, steps = ([bound[k] for bound in bounds] for k in range(3))
    operands = ", ".join([*lowers, *uppers, *steps])
    n = len(bounds)
    ivs = ", ".join(f"%i{d}: index" for d in range(n))
    return (
        f'"scf.parallel"({operands}) <{{operandSegmentSizes = array<i32: {n}, {n}, {n}, 0>}}> '
        f"({{\n^bb0({ivs}):\n{body}\n  scf.reduce\n}}) : ({', '.join(['index'] * 3 * n)}) -> ()"
    )


def _grid_kernel(rows: str, cols: str, row_step: str = "%c1", extra_args: str = "") -> str:
    """`out[i, j] = i * 100 + j + bias` and `count[i, j] += 1` over a 2-D scf.parallel."""
    body = """
  %r = arith.index_cast %i0 : index to i32
  %c = arith.index_cast %i1 : index to i32
  %h = arith.constant 100 : i32
  %rh = arith.muli %r, %h : i32
  %s = arith.addi %rh, %c : i32
  %f = arith.sitofp %s : i32 to f32
  %v = arith.addf %f, %bias : f32
  memref.store %v, %out[%i0, %i1] : memref<6x5xf32>
  %n = memref.load %count[%i0, %i1] : memref<6x5xf32>
  %one = arith.constant 1.0 : f32
  %n1 = arith.addf %n, %one : f32
  memref.store %n1, %count[%i0, %i1] : memref<6x5xf32>"""
    loop = _parallel([("%c0", rows, row_step), ("%lo", cols, "%c1")], body)
    return f"""
func.func @grid(%out: memref<6x5xf32>, %count: memref<6x5xf32>, %bias: f32, %rows: index,
                %cols: index, %lo: index{extra_args}) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c6 = arith.constant 6 : index
  %c5 = arith.constant 5 : index
  {loop}
  func.return
}}
"""


@register_impls
class _SequentialPool(InterpreterFunctions):
    """convir's thread pool and the struct-passing llvm ops, run sequentially in the xDSL
    interpreter: `convir_parallel_for` hands the chunks out in order, round-robin over the team."""

    def __init__(self, default_team: int) -> None:
        self.default_team = default_team
        self.claims: list[tuple[int, int, int]] = []  # (thread, first, end) of every chunk

    @impl_external("convir_parallel_for")
    def run_parallel_for(self, interpreter: Interpreter, op: Any, args: tuple[Any, ...]):
        function, data, total, chunk, num_threads = args
        assert chunk >= 1
        team = num_threads or self.default_team
        for number, first in enumerate(range(0, total, chunk)):
            end = min(first + chunk, total)
            self.claims.append((number % team, first, end))
            interpreter.call_op(function, (data, first, end))
        return ()

    # xDSL's arith interpreter lacks these; the split only divides values >= 0.
    @impl(arith.SIToFPOp)
    def run_sitofp(self, interpreter: Interpreter, op: arith.SIToFPOp, args: tuple[Any, ...]):
        return (float(args[0]),)

    @impl(arith.DivUIOp)
    def run_divui(self, interpreter: Interpreter, op: arith.DivUIOp, args: tuple[Any, ...]):
        return (args[0] // args[1],)

    @impl(arith.RemUIOp)
    def run_remui(self, interpreter: Interpreter, op: arith.RemUIOp, args: tuple[Any, ...]):
        return (args[0] % args[1],)

    @impl(llvm.AllocaOp)
    def run_alloca(self, interpreter: Interpreter, op: llvm.AllocaOp, args: tuple[Any, ...]):
        return ([None],)

    @impl(llvm.UndefOp)
    def run_undef(self, interpreter: Interpreter, op: llvm.UndefOp, args: tuple[Any, ...]):
        return ((None,) * len(op.res.type.types),)

    @impl(llvm.ZeroOp)
    def run_zero(self, interpreter: Interpreter, op: llvm.ZeroOp, args: tuple[Any, ...]):
        return (None,)

    @impl(llvm.InsertValueOp)
    def run_insert(self, interpreter: Interpreter, op: llvm.InsertValueOp, args: tuple[Any, ...]):
        (position,) = op.position.iter_values()
        struct, value = args
        return ((*struct[:position], value, *struct[position + 1 :]),)

    @impl(llvm.ExtractValueOp)
    def run_extract(self, interpreter: Interpreter, op: llvm.ExtractValueOp, args: tuple[Any, ...]):
        (position,) = op.position.iter_values()
        return (args[0][position],)

    @impl(llvm.StoreOp)
    def run_store(self, interpreter: Interpreter, op: llvm.StoreOp, args: tuple[Any, ...]):
        args[1][0] = args[0]
        return ()

    @impl(llvm.LoadOp)
    def run_load(self, interpreter: Interpreter, op: llvm.LoadOp, args: tuple[Any, ...]):
        return (args[0][0],)

    @impl(llvm.AddressOfOp)
    def run_addressof(self, interpreter: Interpreter, op: llvm.AddressOfOp, args: Any):
        return (op.global_name.root_reference.data,)

    @impl_cast(MemRefType, llvm.LLVMPointerType)
    def cast_to_pointer(self, input_type: Any, output_type: Any, value: Any) -> Any:
        return value

    @impl_cast(llvm.LLVMPointerType, MemRefType)
    def cast_to_memref(self, input_type: Any, output_type: Any, value: Any) -> Any:
        return value


def _run(
    module: ModuleOp, name: str, args: tuple[Any, ...], default_team: int
) -> list[tuple[int, int, int]]:
    """Runs `name`; the chunks claimed, as (thread, first, end)."""
    interpreter = Interpreter(module)
    pool = _SequentialPool(default_team)
    for functions in (
        arith_impls.ArithFunctions(),
        builtin_impls.BuiltinFunctions(),
        cf_impls.CfFunctions(),
        func_impls.FuncFunctions(),
        memref_impls.MemRefFunctions(),
        scf_impls.ScfFunctions(),
        pool,
    ):
        interpreter.register_implementations(functions)
    interpreter.call_op(name, args)
    return pool.claims


def _array(shape: tuple[int, ...]) -> ShapedArray[float]:
    return ShapedArray(TypedPtr.new_float32([0.0] * int(np.prod(shape))), list(shape))


# ---------------------------------------------------------------------------------------------
# Structure


def test_pass_is_registered() -> None:
    assert LOWERING_PASSES["convert-parallel-to-pool"]() is ConvertParallelToPoolPass


def test_outline_parallel_produces_the_documented_ir() -> None:
    module = _parse(_grid_kernel("%rows", "%cols"))
    (loop,) = _ops(module, scf.ParallelOp)
    outlined = outline_parallel(loop)
    module.verify()

    assert outlined.sym_name.data == "grid_par0"
    assert outlined.sym_visibility is not None and outlined.sym_visibility.data == "private"
    assert [str(t) for t in outlined.function_type.inputs] == ["!llvm.ptr", "i64", "i64"]
    assert not _ops(module, scf.ParallelOp)
    (alloca,) = _ops(_function(module, "grid"), llvm.AllocaOp)
    # Dynamic bounds first (index as i64), then the body's captures in order of first use.
    assert [str(t) for t in alloca.elem_type.types] == [
        "i64", "i64", "i64", "f32", "!llvm.ptr", "!llvm.ptr"
    ]  # fmt: skip
    grid = _function(module, "grid")
    assert alloca.parent is grid.body.blocks[0]
    call = _pool_call(module)
    pointer = call.operands[0].owner
    assert isinstance(pointer, llvm.AddressOfOp)
    assert pointer.global_name.string_value() == "grid_par0"
    threads = call.operands[4].owner
    assert isinstance(threads, arith.ConstantOp) and threads.value == IntegerAttr(0, 32)
    # The outlined function runs one chunk: one block, one loop over [first, end), no calls.
    assert not _ops(outlined, func.CallOp) and not _ops(outlined, llvm.AllocaOp)
    assert len(outlined.body.blocks) == 1
    (chunk_loop,) = [loop for loop in _ops(outlined, scf.ForOp) if loop.parent_op() is outlined]
    bounds = (chunk_loop.lb.owner, chunk_loop.ub.owner)
    assert [cast.input for cast in bounds] == list(outlined.args[1:])
    assert _function(module, "convir_parallel_for").is_declaration


def test_threads_option_and_runtime_argument() -> None:
    text = _grid_kernel("%c6", "%c5")
    module = _parse(text)
    ConvertParallelToPoolPass(threads=3, min_work=0).apply(_context(), module)
    assert _pool_call(module).operands[4].owner.value == IntegerAttr(3, 32)

    marked = _parse(_grid_kernel("%c6", "%c5", extra_args=", %t: i32 {convir.num_threads}"))
    ConvertParallelToPoolPass(threads=3, min_work=0).apply(_context(), marked)
    assert _pool_call(marked).operands[4] is _function(marked, "grid").args[6]


def test_names_are_unique_and_declarations_shared() -> None:
    loop = _parallel([("%c0", "%c4", "%c1")], "  memref.store %x, %out[%i0] : memref<4xf32>")
    module = _parse(f"""
func.func private @k_par0()
func.func @k(%out: memref<4xf32>, %x: f32) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  {loop}
  {loop}
  func.return
}}
""")
    ConvertParallelToPoolPass(min_work=0).apply(_context(), module)
    module.verify()
    names = [op.sym_name.data for op in _ops(module, func.FuncOp)]
    assert names.count("k_par1") == names.count("k_par2") == names.count("convir_parallel_for") == 1
    assert len(_ops(_function(module, "k"), llvm.AllocaOp)) == 2


def test_nested_parallel_runs_serially() -> None:
    inner = _parallel([("%c0", "%c4", "%c1")], "  memref.store %x, %out[%i0] : memref<4xf32>")
    outer = _parallel([("%c0", "%c4", "%c1")], inner.replace("%i0", "%k"))
    module = _parse(f"""
func.func @k(%out: memref<4xf32>, %x: f32) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  {outer}
  func.return
}}
""")
    ConvertParallelToPoolPass(min_work=0).apply(_context(), module)
    module.verify()
    assert not _ops(module, scf.ParallelOp)
    assert len(_ops(_function(module, "k_par0"), scf.ForOp)) == 2


# ---------------------------------------------------------------------------------------------
# Errors: reported with the op named, IR left as it was


REDUCTION = """
func.func @sum(%x: memref<8xf32>, %init: f32) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %t = "scf.parallel"(%c0, %c8, %c1, %init) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> ({
  ^bb0(%i: index):
    %v = memref.load %x[%i] : memref<8xf32>
    scf.reduce(%v : f32) {
    ^bb1(%a: f32, %b: f32):
      %s = arith.addf %a, %b : f32
      scf.reduce.return %s : f32
    }
  }) : (index, index, index, f32) -> f32
  func.return %t : f32
}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (REDUCTION, "'scf.parallel' has 1 reduction(s)"),
        (
            _grid_kernel("%c6", "%c5")
            .replace("%count: memref<6x5xf32>", "%count: memref<?x5xf32>")
            .replace("%count[%i0, %i1] : memref<6x5xf32>", "%count[%i0, %i1] : memref<?x5xf32>"),
            "'scf.parallel' uses a value of type memref<?x5xf32> defined outside it",
        ),
        (
            _grid_kernel("%c6", "%c5", extra_args=", %t: i64 {convir.num_threads}"),
            "may mark one i32 argument convir.num_threads",
        ),
        (
            _grid_kernel("%c6", "%c5", row_step="%c0"),
            "'scf.parallel' has a constant step <= 0; steps must be positive",
        ),
    ],
    ids=["reduction", "dynamic-memref", "i64-threads", "zero-step"],
)
def test_errors_name_the_problem_and_keep_the_ir(text: str, message: str) -> None:
    module = _parse(text)
    before = str(module)
    with pytest.raises(PassFailedException, match=re.escape(message)):
        ConvertParallelToPoolPass(min_work=0).apply(_context(), module)
    assert str(module) == before


def test_negative_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="min-work must be >= 0 and chunk-work >= 1"):
        ConvertParallelToPoolPass(chunk_work=0)
    with pytest.raises(ValueError, match="option threads must be >= 0"):
        ConvertParallelToPoolPass(threads=-1)
    (loop,) = _ops(_parse(_grid_kernel("%c6", "%c5")), scf.ParallelOp)
    with pytest.raises(ValueError, match="option threads must be >= 0"):
        outline_parallel(loop, threads=-1)


# ---------------------------------------------------------------------------------------------
# The chunks: every iteration exactly once, in chunks of the size parallel_work chose


@pytest.mark.parametrize("team", [1, 2, 3, 7, 40])
@pytest.mark.parametrize(
    ("rows", "cols", "lo", "row_step"),
    [(6, 5, 0, 1), (5, 3, 1, 2), (1, 1, 0, 1), (0, 5, 0, 1), (6, 0, 0, 1), (6, 5, 5, 1)],
)
def test_team_covers_the_iteration_space_once(
    team: int, rows: int, cols: int, lo: int, row_step: int
) -> None:
    module = _parse(_grid_kernel("%rows", "%cols", row_step="%c2" if row_step == 2 else "%c1"))
    ConvertParallelToPoolPass(min_work=0).apply(_context(), module)
    out, count = _array((6, 5)), _array((6, 5))
    claims = _run(module, "grid", (out, count, 0.5, rows, cols, lo), default_team=team)

    expected = np.zeros((6, 5), np.float32)
    expected[0:rows:row_step, lo:cols] = 1
    assert np.array_equal(np.array(count.data, np.float32).reshape(6, 5), expected)
    values = np.array(out.data, np.float32).reshape(6, 5)
    i, j = np.nonzero(expected)
    assert np.array_equal(values[i, j], i * 100 + j + 0.5)
    # The trip counts are run-time values here, so is the chunk: the body is far cheaper than
    # the default chunk-work, so the cap of 1/MIN_CHUNKS of the loop decides it.
    total = int(expected.sum())
    chunk = chunk_iterations(total, total)
    assert [end - first for _, first, end in claims] == [
        min(chunk, total - first) for first in range(0, total, chunk)
    ]
    assert len(claims) >= min(total, MIN_CHUNKS)


@pytest.mark.parametrize(
    ("rows", "chunk_work", "chunk"), [(7, 1, 1), (7, 40, 1), (61, 40, 4), (64, 1000, 8)]
)
def test_chunks_hold_chunk_work_but_split_the_loop(rows: int, chunk_work: int, chunk: int) -> None:
    """One iteration of the body below counts 13 ops: chunk-work 40 asks for 4 of them, 1000
    for 77, but a chunk is at most ceil(rows / MIN_CHUNKS) iterations (MIN_CHUNKS = 8); odd
    counts leave a short last chunk."""
    assert MIN_CHUNKS == 8
    body = """
  %f = arith.sitofp %i0c : i32 to f32
  %a = arith.addf %f, %x : f32
  %b = arith.mulf %a, %x : f32
  %c = arith.addf %b, %x : f32
  %d = arith.mulf %c, %x : f32
  %e = arith.addf %d, %x : f32
  %g = arith.mulf %e, %x : f32
  %h = arith.addf %g, %x : f32
  %k = arith.mulf %h, %x : f32
  %l = arith.addf %k, %x : f32
  memref.store %l, %out[%i0] : memref<64xf32>"""
    body = "\n  %i0c = arith.index_cast %i0 : index to i32" + body
    loop = _parallel([("%c0", "%rows", "%c1")], body)
    module = _parse(f"""
func.func @k(%out: memref<64xf32>, %x: f32) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %rows = arith.constant {rows} : index
  {loop}
  func.return
}}
""")
    (parallel,) = _ops(module, scf.ParallelOp)
    assert parallel_work(parallel) == 1 + rows * 13
    ConvertParallelToPoolPass(min_work=0, chunk_work=chunk_work).apply(_context(), module)
    out = _array((64,))
    claims = _run(module, "k", (out, 0.5), default_team=3)
    assert [(first, end) for _, first, end in claims] == [
        (first, min(first + chunk, rows)) for first in range(0, rows, chunk)
    ]


# ---------------------------------------------------------------------------------------------
# End to end: lowered to LLVM, compiled, run by the thread pool on 1, 2 and 3 threads


def test_compiled_kernel_gives_the_same_result_on_1_2_3_threads() -> None:
    body = """
  %r = arith.index_cast %i0 : index to i32
  %c = arith.index_cast %i1 : index to i32
  %h = arith.constant 100 : i32
  %rh = arith.muli %r, %h : i32
  %s = arith.addi %rh, %c : i32
  %f = arith.sitofp %s : i32 to f32
  %v = arith.addf %f, %bias : f32
  memref.store %v, %out[%i0, %i1] : memref<7x5xf32>
  %t = func.call @gettid() : () -> i32
  memref.store %t, %owner[%i0, %i1] : memref<7x5xi32>"""
    loop = _parallel([("%c0", "%c7", "%c1"), ("%c0", "%c5", "%c1")], body)
    module = _parse(f"""
func.func private @gettid() -> i32
func.func @grid(%out: memref<7x5xf32>, %owner: memref<7x5xi32>, %bias: f32,
                %threads: i32 {{convir.num_threads}}) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c5 = arith.constant 5 : index
  %c7 = arith.constant 7 : index
  {loop}
  func.return
}}
""")
    ConvertParallelToPoolPass(min_work=0).apply(_context(), module)
    lower_to_llvm(module)
    library = compile_ir(translate_to_llvm_ir(module), use_cache=False)
    pointer = ctypes.c_void_p
    grid = library.function("grid", None, [pointer, pointer, ctypes.c_float, ctypes.c_int32])

    expected = np.add.outer(np.arange(7) * 100, np.arange(5)).astype(np.float32) + 0.25
    chunk = chunk_iterations(35, 35)  # 5: the cap of 1/MIN_CHUNKS decides for a cheap body
    for threads in (1, 2, 3, 2, 3, 1):
        out = np.zeros((7, 5), np.float32)
        owner = np.full((7, 5), -1, np.int32)
        grid(out.ctypes.data, owner.ctypes.data, 0.25, threads)
        assert np.array_equal(out, expected)
        # Whichever threads claimed them, every chunk ran on one thread, and no more threads
        # than asked for took part; one thread is the caller itself.
        chunks = owner.reshape(-1, chunk)
        assert np.all(chunks == chunks[:, :1])
        assert len(np.unique(chunks)) <= threads
        if threads == 1:
            assert np.all(owner == threading.get_native_id())


# ---------------------------------------------------------------------------------------------
# Loops too small to gain from a second thread are not forked


def _loop_with_inner_trips(trips: str) -> str:
    inner = f"""
  scf.for %k = %c0 to {trips} step %c1 {{
    %v = memref.load %out[%i0] : memref<8xf32>
    %w = arith.addf %v, %x : f32
    memref.store %w, %out[%i0] : memref<8xf32>
  }}"""
    loop = _parallel([("%c0", "%c8", "%c1")], inner)
    return f"""
func.func @k(%out: memref<8xf32>, %x: f32, %n: index) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %small = arith.constant 10 : index
  %large = arith.constant 100000 : index
  {loop}
  func.return
}}
"""


@pytest.mark.parametrize(
    ("trips", "forked"),
    [("%small", False), ("%large", True), ("%n", True)],
    ids=["small-serial", "large-forked", "unknown-forked"],
)
def test_loops_below_min_work_run_on_the_calling_thread(trips: str, forked: bool) -> None:
    module = _parse(_loop_with_inner_trips(trips))
    (parallel,) = _ops(module, scf.ParallelOp)
    work = parallel_work(parallel)
    # The loop + 8 iterations x (the scf.for + trips x 4 ops + scf.reduce); terminators count.
    # Unknown with a run-time bound.
    expected = {"%small": 1 + 8 * (1 + 10 * 4 + 1), "%large": 1 + 8 * (1 + 100000 * 4 + 1)}
    assert work == expected.get(trips)
    ConvertParallelToPoolPass().apply(_context(), module)
    module.verify()
    assert not _ops(module, scf.ParallelOp)
    calls = {op.callee.string_value() for op in _ops(module, func.CallOp)}
    assert ("convir_parallel_for" in calls) is forked
    if not forked:
        assert len(_ops(module, func.FuncOp)) == 1  # no outlined body, no runtime declared
        out = _array((8,))
        _run(module, "k", (out, 0.5, 0), default_team=2)
        assert list(out.data) == [5.0] * 8
