"""The op kernels of `lowering.kernels`: emitted IR verifies, keys are stable and distinct, and
each kernel, lowered to LLVM and JIT-compiled, computes what `convir.reference` computes."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import func, scf, vector
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, f32
from xdsl.ir import Block, Operation, Region, SSAValue

from convir import reference
from convir.dialects import conv
from convir.dialects.resources import constant_array
from convir.dialects.shapes import f32_tensor, tensor_shape
from lowering.emit import kernel_function
from lowering.jit import compile_ir
from lowering.kernels import kernel_symbol
from lowering.kernels.elementwise import apply_activation, copy_key, emit_copy
from lowering.kernels.registry import EMITTERS
from lowering.parallel_to_pool import ConvertParallelToPoolPass
from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir

RNG = np.random.default_rng(7)
SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.]*$")
Build = Callable[[Sequence[SSAValue]], list[Operation]]


def constant(array: np.ndarray) -> conv.ConstantOp:
    """A `conv.constant` holding `array` inline."""
    attr = DenseIntOrFPElementsAttr.from_list(f32_tensor(array.shape), array.ravel().tolist())
    return conv.ConstantOp(attr)


@dataclass
class Case:
    """One op on random inputs: `build` makes the op (last) after any constants it needs."""

    id: str
    shapes: Sequence[Sequence[int]]
    build: Build
    tolerance: float = 1e-5
    positive: bool = False  # inputs in [0.5, 2) rather than normal (divisors, variances)
    arrays: list[np.ndarray] = field(default_factory=list)

    def graph(self) -> tuple[ModuleOp, Operation]:
        """A graph-form `@main` around the op, and the op."""
        block = Block(arg_types=[f32_tensor(s) for s in self.shapes])
        ops = self.build(block.args)
        block.add_ops([*ops, func.ReturnOp(ops[-1].results[0])])
        types = ([a.type for a in block.args], [ops[-1].results[0].type])
        return ModuleOp([func.FuncOp("main", types, Region(block))]), ops[-1]

    def inputs(self) -> list[np.ndarray]:
        if not self.arrays:
            for shape in self.shapes:
                if self.positive:
                    values = RNG.uniform(0.5, 2.0, shape)
                else:
                    values = RNG.standard_normal(shape) * 3
                self.arrays.append(np.asarray(values, dtype=np.float32))
        return self.arrays


def act(kind: str, alpha: float | None = None, beta: float | None = None) -> Build:
    return lambda a: [conv.ActivationOp(a[0], kind, alpha, beta)]


def binary(kind: str) -> Build:
    return lambda a: [conv.BinaryOp(a[0], a[1], kind)]


def pool(kind: str, kernel, strides, pads, dilations=(1, 1), ceil=False, cip=False) -> Build:
    return lambda a: [conv.PoolOp(a[0], kind, kernel, strides, pads, dilations, ceil, cip)]


def gemm(b: np.ndarray | None = None, with_c: bool = False, **attributes) -> Build:
    """Gemm of a[0] with a[1] (or the constant `b`) and optionally c = the last argument."""

    def build(a: Sequence[SSAValue]) -> list[Operation]:
        ops: list[Operation] = [constant(b)] if b is not None else []
        rhs = ops[0].results[0] if ops else a[1]
        c = a[-1] if with_c else None
        return [*ops, conv.GemmOp(a[0], rhs, c, **attributes)]

    return build


def batchnorm(a: Sequence[SSAValue]) -> list[Operation]:
    return [conv.BatchNormOp(*a, epsilon=1e-3)]


def weights(*shape: int) -> np.ndarray:
    return np.asarray(RNG.standard_normal(shape), dtype=np.float32)


CASES = [
    *(Case(f"act_{k}", [(1, 3, 5, 11)], act(k)) for k in ("relu", "sigmoid", "tanh")),
    *(Case(f"act_{k}", [(2, 19)], act(k)) for k in ("identity", "hard_swish")),
    Case("act_leaky_relu", [(1, 3, 5, 11)], act("leaky_relu", 0.1)),
    Case("act_clip", [(3, 4, 17)], act("clip", -1.0, 2.5)),
    Case("act_hard_sigmoid", [(3, 4, 17)], act("hard_sigmoid", 0.2, 0.5)),
    Case("act_scalar", [()], act("relu")),
    Case("act_threaded", [(2, 16, 64, 64)], act("tanh")),
    Case("act_threaded_long_row", [(1, 70001)], act("relu")),
    Case("add_same", [(2, 3, 5, 11), (2, 3, 5, 11)], binary("add")),
    Case("mul_per_channel", [(1, 16, 7, 9), (1, 16, 1, 1)], binary("mul")),
    Case("sub_rank3_channel", [(2, 5, 4, 13), (5, 1, 1)], binary("sub")),
    Case("div_scalar", [(3, 17), ()], binary("div"), positive=True),
    Case("max_row_broadcast", [(2, 3, 4, 13), (1, 1, 1, 13)], binary("max")),
    Case("min_lhs_broadcast", [(1, 3, 1, 1), (2, 3, 4, 9)], binary("min")),
    Case("add_both_broadcast", [(2, 1, 5), (3, 1)], binary("add")),
    Case("add_threaded", [(1, 64, 56, 56), (1, 64, 1, 1)], binary("add")),
    Case("mul_scalars", [(), ()], binary("mul")),
    *(
        Case(f"batchnorm_{'x'.join(map(str, s))}", [s, *[(s[1],)] * 4], batchnorm, 1e-4, True)
        for s in ((1, 5, 7, 9), (2, 3, 20), (4, 19), (1, 32, 56, 56))
    ),
    Case("pool_max_k3s2p1", [(1, 2, 11, 13)], pool("max", (3, 3), (2, 2), (1, 1, 1, 1))),
    Case("pool_max_ceil", [(1, 2, 10, 10)], pool("max", (3, 3), (2, 2), (0,) * 4, ceil=True)),
    Case("pool_avg_k3s1p1", [(1, 2, 9, 17)], pool("avg", (3, 3), (1, 1), (1, 1, 1, 1))),
    Case("pool_avg_cip", [(1, 2, 9, 17)], pool("avg", (3, 3), (1, 1), (1,) * 4, cip=True)),
    Case(
        "pool_avg_ceil_cip",
        [(1, 2, 8, 8)],
        pool("avg", (3, 3), (2, 2), (1,) * 4, (1, 1), True, True),
    ),
    Case("pool_avg_ceil", [(1, 1, 7, 7)], pool("avg", (2, 2), (2, 2), (0,) * 4, ceil=True)),
    Case("pool_max_dilated", [(1, 2, 9, 9)], pool("max", (2, 2), (1, 1), (1,) * 4, (2, 2))),
    Case("pool_max_stride1", [(1, 3, 12, 20)], pool("max", (3, 3), (1, 1), (1,) * 4)),
    Case("pool_avg_whole", [(1, 4, 7, 7)], pool("avg", (7, 7), (1, 1), (0,) * 4)),
    Case("pool_asymmetric", [(2, 3, 8, 11)], pool("avg", (2, 3), (1, 2), (0, 1, 2, 1))),
    Case("pool_max_padding_only", [(1, 2, 1, 1)], pool("max", (2, 2), (1, 1), (2,) * 4, (3, 3))),
    Case("pool_avg_padding_only", [(1, 2, 1, 1)], pool("avg", (2, 2), (1, 1), (2,) * 4, (3, 3))),
    Case("pool_threaded", [(1, 64, 56, 56)], pool("max", (3, 3), (2, 2), (1,) * 4)),
    *(
        Case(
            f"global_{k}_{'x'.join(map(str, s))}", [s], lambda a, k=k: [conv.GlobalPoolOp(a[0], k)]
        )
        for k in ("max", "avg")
        for s in ((1, 3, 7, 7), (2, 5, 4, 19), (1, 256, 16, 16))
    ),
    Case("gemm_plain", [(3, 20), (20, 37)], gemm()),
    Case(
        "gemm_transposed_c_row",
        [(20, 3), (37, 20), (37,)],
        gemm(None, True, alpha=0.5, beta=2.0, trans_a=True, trans_b=True),
        1e-4,
    ),
    Case("gemm_n16", [(2, 9), (9, 16), ()], gemm(None, True), 1e-4),
    Case("gemm_packed_tb", [(2, 50), (1, 45)], gemm(weights(45, 50), True, trans_b=True), 1e-4),
    Case("gemm_packed_c_column", [(4, 17), (4, 1)], gemm(weights(17, 32), True, beta=0.5), 1e-4),
    Case("gemm_packed_c_full", [(5, 6), (5, 7)], gemm(weights(6, 7), True, alpha=-1.0), 1e-4),
    Case("gemm_threaded", [(1, 512)], gemm(weights(1000, 512), trans_b=True), 1e-4),
    # Register tiles: ragged M, K and N (a partial last panel and vector), trans_a, and a GEMM
    # large enough to be cut into several row ranges and panel groups.
    Case("gemm_packed_tiles", [(13, 45), (70,)], gemm(weights(45, 70), True), 1e-4),
    Case("gemm_packed_ta", [(9, 7)], gemm(weights(9, 33), trans_a=True, alpha=2.0), 1e-4),
    Case("gemm_packed_tasks", [(300, 600)], gemm(weights(600, 100)), 1e-4),
    Case("concat_channels", [(1, 3, 4, 5), (1, 5, 4, 5)], lambda a: [conv.ConcatOp(a, 1)]),
    Case("concat_last", [(2, 3, 4, 5), (2, 3, 4, 11)], lambda a: [conv.ConcatOp(a, 3)]),
    Case("concat_three", [(1, 2), (3, 2), (2, 2)], lambda a: [conv.ConcatOp(a, 0)]),
    Case("slice_channels", [(1, 10, 4, 6)], lambda a: [conv.SliceOp(a[0], 1, 2, 7)]),
    Case("slice_last", [(2, 3, 20)], lambda a: [conv.SliceOp(a[0], 2, 3, 17)]),
    Case("transpose_keeps_last", [(2, 3, 4, 13)], lambda a: [conv.TransposeOp(a[0], (0, 2, 1, 3))]),
    Case("transpose_nhwc", [(2, 3, 4, 5)], lambda a: [conv.TransposeOp(a[0], (0, 2, 3, 1))]),
    Case("transpose_2d", [(17, 33)], lambda a: [conv.TransposeOp(a[0], (1, 0))]),
    Case("transpose_scalar", [()], lambda a: [conv.TransposeOp(a[0], ())]),
    Case("pad_spatial", [(1, 3, 5, 6)], lambda a: [conv.PadOp(a[0], (0, 0, 1, 2, 0, 0, 2, 1))]),
    Case(
        "pad_crop", [(2, 4, 6, 7)], lambda a: [conv.PadOp(a[0], (0, 1, -1, 2, 0, -1, 2, -2), 1.5)]
    ),
    Case("pad_2d", [(3, 10)], lambda a: [conv.PadOp(a[0], (2, 9, 1, 0), -3.0)]),
    Case("pack_short", [(1, 3, 5, 7)], lambda a: [conv.PackOp(a[0], 8)]),
    Case("pack_partial", [(2, 20, 3, 4)], lambda a: [conv.PackOp(a[0], 8)]),
    Case("pack_exact", [(1, 16, 2, 3)], lambda a: [conv.PackOp(a[0], 4)]),
    Case("unpack_short", [(1, 1, 5, 7, 8)], lambda a: [conv.UnpackOp(a[0], 3)]),
    Case("unpack_partial", [(2, 3, 3, 4, 8)], lambda a: [conv.UnpackOp(a[0], 20)]),
    Case("unpack_exact", [(1, 4, 2, 3, 4)], lambda a: [conv.UnpackOp(a[0], 16)]),
    Case("softmax_last", [(2, 1000)], lambda a: [conv.SoftmaxOp(a[0], 1)]),
    Case("softmax_channels", [(2, 5, 3, 11)], lambda a: [conv.SoftmaxOp(a[0], 1)]),
    Case("softmax_first", [(7, 3)], lambda a: [conv.SoftmaxOp(a[0], 0)]),
    Case("softmax_short_rows", [(2, 3, 19)], lambda a: [conv.SoftmaxOp(a[0], 2)]),
    Case("softmax_threaded", [(64, 1000)], lambda a: [conv.SoftmaxOp(a[0], 1)]),
    Case("lrn_075", [(1, 7, 5, 11)], lambda a: [conv.LRNOp(a[0], 5, 1e-4, 0.75, 1.0)]),
    Case("lrn_05", [(1, 6, 3, 9)], lambda a: [conv.LRNOp(a[0], 3, 0.1, 0.5, 2.0)]),
    Case("lrn_pow_even", [(2, 9, 2, 10)], lambda a: [conv.LRNOp(a[0], 4, 0.3, 0.6, 1.5)], 1e-4),
    Case("lrn_size1", [(1, 3, 2, 5)], lambda a: [conv.LRNOp(a[0], 1, 0.5, 1.0, 1.0)]),
    Case("lrn_wide_window", [(1, 2, 3, 4)], lambda a: [conv.LRNOp(a[0], 5, 0.2, 0.75, 1.0)]),
]
IDS = [case.id for case in CASES]


def call_kernel(module: ModuleOp, name: str, buffers: Sequence[np.ndarray]) -> None:
    """Wrap kernel @name of `module` in a public @entry, lower, JIT and call it on `buffers`."""
    (kernel,) = [op for op in module.ops if isinstance(op, func.FuncOp)]
    with kernel_function(module, "entry", kernel.function_type.inputs, private=False) as args:
        func.CallOp(name, list(args), [])
    module.verify()
    ConvertParallelToPoolPass().apply(Context(), module)
    lower_to_llvm(module)
    library = compile_ir(translate_to_llvm_ir(module), use_cache=False)
    entry = library.function("entry", None, [ctypes.c_void_p] * len(buffers))
    entry(*(buffer.ctypes.data for buffer in buffers))


def run_kernel(op: Operation, operands: Sequence[np.ndarray], vector_width: int = 8) -> np.ndarray:
    """The result of `op`'s kernel on `operands` (constants included, unpacked)."""
    emitter = EMITTERS[type(op)]
    module, name = ModuleOp([]), emitter.key(op)
    emitter.emit(op, module, name, vector_width)
    packers = emitter.packers(op)
    buffers = [
        np.ascontiguousarray(packers[i](x) if i in packers else x, dtype=np.float32)
        for i, x in enumerate(operands)
    ]
    output = np.zeros(tensor_shape(op.results[0]), dtype=np.float32)
    buffers.append(output)
    if emitter.workspace_bytes(op):
        buffers.append(np.zeros(emitter.workspace_bytes(op), dtype=np.uint8))
    call_kernel(module, name, buffers)
    return output


def operand_arrays(op: Operation, graph: ModuleOp, inputs: Sequence[np.ndarray]) -> list:
    """The op's operand values: graph inputs by position, constants from their attribute."""
    (main,) = graph.ops
    assert isinstance(main, func.FuncOp)
    arguments = list(main.body.block.args)
    return [
        constant_array(Context(), v.owner.value)
        if isinstance(v.owner, conv.ConstantOp)
        else inputs[arguments.index(v)]
        for v in op.operands
    ]


@pytest.mark.parametrize("vector_width", [8, 16, 1])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_kernel_matches_reference(case: Case, vector_width: int) -> None:
    graph, op = case.graph()
    inputs = case.inputs()
    expected = reference.run(graph, inputs)["result0"]
    actual = run_kernel(op, operand_arrays(op, graph, inputs), vector_width)
    np.testing.assert_allclose(actual, expected, rtol=case.tolerance, atol=case.tolerance)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_emitted_kernel_verifies_with_the_contract_signature(case: Case) -> None:
    _, op = case.graph()
    emitter = EMITTERS[type(op)]
    module, name = ModuleOp([]), emitter.key(op)
    emitter.emit(op, module, name, 8)
    module.verify()
    (function,) = module.ops
    assert isinstance(function, func.FuncOp)
    assert function.sym_name.data == name and function.sym_visibility.data == "private"
    assert list(function.function_type.inputs) == emitter.argument_types(op)
    assert SYMBOL.match(name), name


def symbol(op: Operation) -> str:
    """The symbol `convert-conv-to-loops` gives `op`'s kernel."""
    return kernel_symbol(EMITTERS[type(op)], op, 16)


def test_keys_are_stable_and_distinct() -> None:
    keys = [symbol(op) for op in (case.graph()[1] for case in CASES)]
    again = [symbol(op) for op in (case.graph()[1] for case in CASES)]
    assert keys == again
    assert len(set(keys)) == len(keys), sorted(k for k in keys if keys.count(k) > 1)


IMAGE, MATRIX = [(1, 16, 16, 16), (16,)], [(16, 16), (16, 16)]


@pytest.mark.parametrize(
    ("shapes", "first", "second"),
    [
        (IMAGE, act("clip", 0.0, 6.0), act("clip", 0.0, 6.5)),
        (IMAGE, act("leaky_relu", 0.1), act("leaky_relu", 0.2)),
        (
            IMAGE,
            pool("max", (3, 3), (2, 2), (0,) * 4),
            pool("max", (3, 3), (2, 2), (0,) * 4, ceil=True),
        ),
        (
            IMAGE,
            pool("avg", (3, 3), (1, 1), (1,) * 4),
            pool("avg", (3, 3), (1, 1), (1,) * 4, cip=True),
        ),
        (
            IMAGE,
            pool("max", (3, 3), (1, 1), (1,) * 4),
            pool("max", (3, 3), (1, 1), (1,) * 4, (2, 2)),
        ),
        (
            IMAGE,
            lambda a: [conv.PadOp(a[0], (0, 0, 1, 1, 0, 0, 1, 1))],
            lambda a: [conv.PadOp(a[0], (0, 0, 1, 1, 0, 0, 1, 1), 1.0)],
        ),
        (
            IMAGE,
            lambda a: [conv.BatchNormOp(a[0], *[a[1]] * 4, 1e-5)],
            lambda a: [conv.BatchNormOp(a[0], *[a[1]] * 4, 1e-3)],
        ),
        (MATRIX, gemm(alpha=1.0), gemm(alpha=2.0)),
        (MATRIX, gemm(), gemm(weights(16, 16))),
        (MATRIX, gemm(), gemm(trans_b=True)),
    ],
)
def test_keys_tell_attributes_apart(shapes, first: Build, second: Build) -> None:
    block = Block(arg_types=[f32_tensor(s) for s in shapes])
    first_op, second_op = first(block.args)[-1], second(block.args)[-1]
    assert symbol(first_op) != symbol(second_op)


@pytest.mark.parametrize(
    ("case_id", "threaded"),
    [
        ("act_threaded", True),
        ("act_relu", False),
        ("pool_threaded", True),
        ("pool_max_k3s2p1", False),
        ("gemm_threaded", True),
        ("act_threaded_long_row", True),
    ],
)
def test_large_kernels_are_threaded(case_id: str, threaded: bool) -> None:
    _, op = CASES[IDS.index(case_id)].graph()
    module = ModuleOp([])
    EMITTERS[type(op)].emit(op, module, "k", 8)
    assert any(isinstance(o, scf.ParallelOp) for o in module.walk()) == threaded


def test_contiguous_rows_are_vectorised_and_strided_ones_not() -> None:
    def vector_loads(case_id: str) -> int:
        _, op = CASES[IDS.index(case_id)].graph()
        module = ModuleOp([])
        EMITTERS[type(op)].emit(op, module, "k", 8)
        return sum(isinstance(o, vector.LoadOp) for o in module.walk())

    assert vector_loads("mul_per_channel") > 0
    assert vector_loads("transpose_keeps_last") > 0
    assert vector_loads("transpose_nhwc") == 0


@pytest.mark.parametrize("shape", [(3, 5, 19), (70001,)])
def test_copy(shape: tuple[int, ...]) -> None:
    module = ModuleOp([])
    emit_copy(module, copy_key(shape), shape, 8)
    source = RNG.standard_normal(shape).astype(np.float32)
    copied = np.zeros_like(source)
    call_kernel(module, copy_key(shape), [source, copied])
    np.testing.assert_array_equal(copied, source)


def test_apply_activation_rejects_unknown_kinds() -> None:
    block = Block(arg_types=[f32])
    with pytest.raises(ValueError, match="'swish_fast' is unknown"):
        apply_activation(block.args[0], "swish_fast", 0.0, 0.0, None)


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("columns", [1, 16, 37])
def test_pack_panels_lays_b_out_as_zero_padded_panels(trans_b: bool, columns: int) -> None:
    from lowering.kernels.gemm import PANEL_COLUMNS, pack_panels

    b = np.arange(5 * columns, dtype=np.float32).reshape(5, columns) + 1  # B is [K, N]
    packed = pack_panels(np.ascontiguousarray(b.T) if trans_b else b, trans_b)
    shape = (-(-columns // PANEL_COLUMNS), 5, PANEL_COLUMNS)
    assert packed.shape == shape and packed.flags.c_contiguous
    for p in range(packed.shape[0]):
        for lane in range(PANEL_COLUMNS):
            column = p * PANEL_COLUMNS + lane
            expected = b[:, column] if column < columns else np.zeros(5, np.float32)
            np.testing.assert_array_equal(packed[p, :, lane], expected)
