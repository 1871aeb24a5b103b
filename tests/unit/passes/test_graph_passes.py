"""The graph passes conv-fold-constants, conv-fold-batchnorm and conv-fuse-epilogue.

Each rewrite is checked against `convir.reference`: the function computes the same outputs
before and after, on the built-in models and on small hand-built graphs.
"""

from collections.abc import Callable

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.pattern_rewriter import PatternRewriter

from convir import reference
from convir.dialects import conv, make_context, module_to_text, parse_module
from convir.dialects.shapes import f32_tensor, tensor_shape
from convir.importer.onnx import import_onnx
from convir.models import MODELS, build
from passes.fold_batchnorm import fold_batchnorms
from passes.fold_constants import fold_constants
from passes.fuse_epilogue import fuse_activation, fuse_epilogues, per_channel_values
from passes.graph_rewriting import constant_value, conv_with, new_constant

# Convs that absorb a residual add: one per ResNet block, one per MobileNetV2 skip connection.
RESIDUAL_CONVS = {"resnet18": 8, "resnet50": 16, "mobilenet_v2": 10}


def graph_passes(module: ModuleOp, ctx: Context) -> None:
    """The graph passes in pipeline order."""
    fold_constants(module, ctx)
    fold_batchnorms(module, ctx)
    fuse_epilogues(module, ctx)


def ops_of(module: ModuleOp, kind: type[Operation]) -> list[Operation]:
    return [op for op in module.walk() if isinstance(op, kind)]


def assert_close(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    assert before.keys() == after.keys()
    for name, expected in before.items():
        scale = max(float(np.abs(expected).max()), 1e-6)
        np.testing.assert_allclose(after[name], expected, rtol=0, atol=1e-4 * scale, err_msg=name)


def missed_fusions(module: ModuleOp) -> list[str]:
    """Activations and same-type adds that still consume a single-use conv with a free epilogue."""
    missed = []
    for op in module.walk():
        if isinstance(op, conv.ActivationOp):
            candidates = [(op.input, None)]
        elif isinstance(op, conv.BinaryOp) and op.kind.data == "add":
            candidates = [(op.lhs, op.rhs), (op.rhs, op.lhs)]
        else:
            continue
        for value, other in candidates:
            producer = value.owner
            if not (
                isinstance(producer, conv.Conv2DOp)
                and value.has_one_use()
                and producer.activation is None
            ):
                continue
            if other is None or (producer.residual is None and other.type == value.type):
                missed.append(f"{op.name} of {value.name_hint}")
    return missed


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_compute_the_same_after_the_graph_passes(name: str) -> None:
    ctx = make_context()
    module = import_onnx(build(name, size=32), ctx=ctx)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = reference.run(module, [x], ctx=ctx)

    graph_passes(module, ctx)

    module.verify()
    assert not ops_of(module, conv.BatchNormOp)
    assert missed_fusions(module) == []
    convs = ops_of(module, conv.Conv2DOp)
    assert sum(op.residual is not None for op in convs) == RESIDUAL_CONVS.get(name, 0)
    assert_close(before, reference.run(module, [x], ctx=ctx))
    text = module_to_text(module, ctx)
    assert module_to_text(parse_module(text, make_context()), ctx) == text


# ---------------------------------------------------------------------------------------------
# Small graphs built in Python, with random weights in the context's store

Emit = Callable[[Operation], SSAValue]
Const = Callable[[str, np.ndarray], SSAValue]


def graph(
    ctx: Context,
    input_shapes: list[tuple[int, ...]],
    body: Callable[[list[SSAValue], Const, Emit], list[SSAValue]],
) -> ModuleOp:
    """A module whose @main takes `input_shapes` and returns what `body` builds."""
    block = Block(arg_types=[f32_tensor(shape) for shape in input_shapes])

    def const(name: str, array: np.ndarray) -> SSAValue:
        return emit(new_constant(ctx, name, array))

    def emit(op: Operation) -> SSAValue:
        block.add_op(op)
        return op.results[0]

    results = body(list(block.args), const, emit)
    block.add_op(ReturnOp(*results))
    types = ([arg.type for arg in block.args], [value.type for value in results])
    module = ModuleOp([FuncOp("main", types, Region(block))])
    module.verify()
    return module


def random_inputs(module: ModuleOp, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    function = ops_of(module, FuncOp)[0]
    return [
        rng.standard_normal(tensor_shape(arg)).astype(np.float32)
        for arg in function.body.block.args
    ]


def check_rewrite(
    module: ModuleOp, ctx: Context, rewrite: Callable[[ModuleOp, Context], None]
) -> None:
    """Apply `rewrite` and check the module still verifies and computes the same."""
    inputs = random_inputs(module)
    before = reference.run(module, inputs, ctx=ctx)
    rewrite(module, ctx)
    module.verify()
    assert_close(before, reference.run(module, inputs, ctx=ctx))


def batchnorm_params(channels: int, const: Const) -> list[SSAValue]:
    rng = np.random.default_rng(7)
    return [
        const("scale", rng.uniform(0.5, 2.0, channels)),
        const("beta", rng.standard_normal(channels)),
        const("mean", rng.standard_normal(channels)),
        const("var", rng.uniform(0.1, 2.0, channels)),
    ]


def conv_op(x: SSAValue, const: Const, out: int, bias: bool, group: int = 1) -> conv.Conv2DOp:
    rng = np.random.default_rng(3)
    cin = tensor_shape(x)[1] // group
    weight = const("w", rng.standard_normal((out, cin, 3, 3)))
    b = const("b", rng.standard_normal(out)) if bias else None
    return conv.Conv2DOp(x, weight, b, strides=(2, 1), pads=(1, 0, 1, 2), group=group)


# ---------------------------------------------------------------------------------------------
# conv-fold-constants

CHAIN = """
func.func @main(%x: tensor<1x6xf32>) -> (tensor<1x6xf32>, tensor<1x6xf32>) {
  %a = conv.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %b = conv.constant dense<0.5> : tensor<1x6xf32>
  %flat = conv.reshape %a : tensor<2x3xf32> -> tensor<1x6xf32>
  %sum = conv.binary %flat, %b {kind = "add"} : tensor<1x6xf32>, tensor<1x6xf32> -> tensor<1x6xf32>
  %live = conv.binary %x, %b {kind = "mul"} : tensor<1x6xf32>, tensor<1x6xf32> -> tensor<1x6xf32>
  func.return %sum, %live : tensor<1x6xf32>, tensor<1x6xf32>
}
"""


def test_fold_constants_folds_a_chain_and_leaves_computed_ops() -> None:
    ctx = make_context()
    module = parse_module(CHAIN, ctx)
    check_rewrite(module, ctx, fold_constants)
    returned = ops_of(module, ReturnOp)[0]
    folded = constant_value(ctx, returned.arguments[0])
    np.testing.assert_array_equal(folded, [[1.5, 2.5, 3.5, 4.5, 5.5, 6.5]])
    assert [op.kind.data for op in ops_of(module, conv.BinaryOp)] == ["mul"]
    assert not ops_of(module, conv.ReshapeOp)
    assert len(ops_of(module, conv.ConstantOp)) == 2  # the fold and %b, which %live still uses


def test_fold_constants_leaves_an_elided_blob_alone() -> None:
    ctx = make_context()
    text = CHAIN.replace("dense<0.5>", "dense_resource<elided>")
    module = parse_module(text, ctx)
    fold_constants(module, ctx)
    assert len(ops_of(module, conv.BinaryOp)) == 2
    assert not ops_of(module, conv.ReshapeOp)  # the reshape's operand is known: it still folds


def test_fold_constants_folds_a_constant_conv() -> None:
    ctx = make_context()
    rng = np.random.default_rng(0)

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        x = const("x", rng.standard_normal((1, 4, 5, 5)))
        return [emit(conv_op(x, const, 6, bias=True))]

    module = graph(ctx, [], body)
    check_rewrite(module, ctx, fold_constants)
    assert [op.name for op in ops_of(module, FuncOp)[0].body.block.ops] == [
        "conv.constant",
        "func.return",
    ]


# ---------------------------------------------------------------------------------------------
# conv-fold-batchnorm


@pytest.mark.parametrize("has_bias", [True, False])
def test_batchnorm_folds_into_conv_exactly(has_bias: bool) -> None:
    ctx = make_context()

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        op = conv_op(args[0], const, 6, bias=has_bias, group=2)
        op.algorithm = StringAttr("direct")
        op.attributes["convir.note"] = StringAttr("kept")
        y = emit(op)
        return [emit(conv.BatchNormOp(y, *batchnorm_params(6, const), 1e-3))]

    module = graph(ctx, [(2, 4, 7, 7)], body)
    check_rewrite(module, ctx, fold_batchnorms)
    assert not ops_of(module, conv.BatchNormOp) and not ops_of(module, conv.BinaryOp)
    (folded,) = ops_of(module, conv.Conv2DOp)
    assert folded.bias is not None and folded.group.value.data == 2
    assert folded.algorithm == StringAttr("direct")
    assert folded.attributes["convir.note"] == StringAttr("kept")
    # Old weights, biases and batchnorm parameters are dead and erased.
    assert len(ops_of(module, conv.ConstantOp)) == 2


def fold_batchnorm_blocked_by(
    consumer: Callable[[SSAValue, conv.Conv2DOp, Emit], list[SSAValue]],
) -> ModuleOp:
    """Fold batchnorms in conv -> bn, where `consumer` may add a second user of the conv."""
    ctx = make_context()

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        op = conv_op(args[0], const, 6, bias=True)
        extra = consumer(args[0], op, emit)
        y = emit(op)
        return [emit(conv.BatchNormOp(y, *batchnorm_params(6, const), 1e-5)), *extra]

    module = graph(ctx, [(1, 6, 7, 7)], body)
    weight = ops_of(module, conv.Conv2DOp)[-1].weight
    check_rewrite(module, ctx, fold_batchnorms)
    assert not ops_of(module, conv.BatchNormOp)
    assert [op.kind.data for op in ops_of(module, conv.BinaryOp)] == ["mul", "add"]
    assert ops_of(module, conv.Conv2DOp)[-1].weight is weight  # the conv keeps its weights
    return module


def test_batchnorm_after_a_shared_conv_becomes_mul_add() -> None:
    def second_user(x: SSAValue, op: conv.Conv2DOp, emit: Emit) -> list[SSAValue]:
        return [op.output]

    module = fold_batchnorm_blocked_by(second_user)
    (mul,) = [op for op in ops_of(module, conv.BinaryOp) if op.kind.data == "mul"]
    assert tensor_shape(mul.rhs) == (6, 1, 1)


def test_batchnorm_after_a_conv_with_an_epilogue_becomes_mul_add() -> None:
    def relu(x: SSAValue, op: conv.Conv2DOp, emit: Emit) -> list[SSAValue]:
        op.activation = StringAttr("relu")
        return []

    fold_batchnorm_blocked_by(relu)


def test_batchnorm_after_a_pool_becomes_mul_add() -> None:
    ctx = make_context()

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        pooled = emit(conv.PoolOp(args[0], "max", (2, 2), (2, 2), (0, 0, 0, 0)))
        return [emit(conv.BatchNormOp(pooled, *batchnorm_params(3, const), 1e-5))]

    module = graph(ctx, [(2, 3, 6, 6)], body)
    check_rewrite(module, ctx, fold_batchnorms)
    assert [op.kind.data for op in ops_of(module, conv.BinaryOp)] == ["mul", "add"]


def test_batchnorm_with_a_computed_parameter_is_left_alone() -> None:
    ctx = make_context()
    text = """
    func.func @main(%x: tensor<1x2x4x4xf32>, %scale: tensor<2xf32>) -> tensor<1x2x4x4xf32> {
      %p = conv.constant dense<1.0> : tensor<2xf32>
      %z = conv.batchnorm %x, %scale, %p, %p, %p {epsilon = 1.0e-5 : f32} : tensor<1x2x4x4xf32>,
        tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x4x4xf32>
      func.return %z : tensor<1x2x4x4xf32>
    }
    """
    module = parse_module(text, ctx)
    before = module_to_text(module, ctx)
    fold_batchnorms(module, ctx)
    assert module_to_text(module, ctx) == before


# ---------------------------------------------------------------------------------------------
# conv-fuse-epilogue


@pytest.mark.parametrize("conv_first", [True, False])
def test_residual_add_and_relu_fuse_into_the_conv(conv_first: bool) -> None:
    ctx = make_context()

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        x, shortcut = args
        y = emit(conv.Conv2DOp(x, const("w", np.ones((4, 4, 3, 3)) / 9), None, pads=(1, 1, 1, 1)))
        operands = (y, shortcut) if conv_first else (shortcut, y)
        total = emit(conv.BinaryOp(*operands, "add"))
        return [emit(conv.ActivationOp(total, "relu"))]

    module = graph(ctx, [(1, 4, 5, 5), (1, 4, 5, 5)], body)
    check_rewrite(module, ctx, fuse_epilogues)
    (fused,) = ops_of(module, conv.Conv2DOp)
    assert fused.residual is not None and fused.activation == StringAttr("relu")
    assert not ops_of(module, conv.BinaryOp) and not ops_of(module, conv.ActivationOp)
    text = module_to_text(module, ctx)
    assert module_to_text(parse_module(text, make_context()), ctx) == text


@pytest.mark.parametrize(
    ("shape", "has_bias"), [((4, 1, 1), True), ((1, 4, 1, 1), True), ((1,), False)]
)
def test_per_channel_constant_add_goes_into_the_bias(
    shape: tuple[int, ...], has_bias: bool
) -> None:
    ctx = make_context()
    rng = np.random.default_rng(5)

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        y = emit(conv_op(args[0], const, 4, bias=has_bias))
        return [emit(conv.BinaryOp(const("c", rng.standard_normal(shape)), y, "add"))]

    module = graph(ctx, [(1, 3, 6, 6)], body)
    check_rewrite(module, ctx, fuse_epilogues)
    (fused,) = ops_of(module, conv.Conv2DOp)
    assert fused.bias is not None and fused.residual is None
    assert not ops_of(module, conv.BinaryOp)


def test_activation_parameters_move_onto_the_conv() -> None:
    ctx = make_context()

    def body(args: list[SSAValue], const: Const, emit: Emit) -> list[SSAValue]:
        y = emit(conv_op(args[0], const, 4, bias=True))
        return [emit(conv.ActivationOp(y, "hard_sigmoid", alpha=0.25, beta=0.4))]

    module = graph(ctx, [(1, 3, 6, 6)], body)
    check_rewrite(module, ctx, fuse_epilogues)
    (fused,) = ops_of(module, conv.Conv2DOp)
    assert fused.activation == StringAttr("hard_sigmoid")
    assert fused.alpha is not None and fused.alpha.value.data == 0.25
    assert not ops_of(module, conv.ActivationOp)


MUST_NOT_FUSE = """
func.func @main(%x: tensor<1x2x4x4xf32>, %c: tensor<1x2x1x1xf32>, %r: tensor<1x2x4x4xf32>)
    -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>,
        tensor<1x2x4x4xf32>) {
  %w = conv.constant dense<0.5> : tensor<2x2x1x1xf32>
  %shared = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>,
    dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>
    -> tensor<1x2x4x4xf32>
  %relu_shared = conv.activation %shared {kind = "relu"} : tensor<1x2x4x4xf32>
    -> tensor<1x2x4x4xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>,
    dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>
    -> tensor<1x2x4x4xf32>
  %relu_a = conv.activation %a {kind = "relu"} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %after_relu = conv.binary %relu_a, %x {kind = "add"} : tensor<1x2x4x4xf32>,
    tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %b = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>,
    dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>
    -> tensor<1x2x4x4xf32>
  %broadcast = conv.binary %b, %c {kind = "add"} : tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>
    -> tensor<1x2x4x4xf32>
  %d = conv.conv2d %x, %w residual %r {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>,
    dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>
    residual tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %second_residual = conv.binary %d, %x {kind = "add"} : tensor<1x2x4x4xf32>,
    tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %shared, %relu_shared, %after_relu, %broadcast, %second_residual
    : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>,
      tensor<1x2x4x4xf32>
}
"""


def test_fuse_epilogue_must_not_fire() -> None:
    ctx = make_context()
    module = parse_module(MUST_NOT_FUSE, ctx)
    check_rewrite(module, ctx, fuse_epilogues)
    # Only %a's relu fuses; the shared conv's relu and all three adds stay.
    assert [op.results[0].name_hint for op in ops_of(module, conv.ActivationOp)] == ["relu_shared"]
    assert len(ops_of(module, conv.BinaryOp)) == 3
    assert [op.activation is not None for op in ops_of(module, conv.Conv2DOp)] == [
        False,
        True,
        False,
        False,
    ]


def test_fuse_activation_as_a_function_reports_whether_it_applied() -> None:
    ctx = make_context()
    module = parse_module(MUST_NOT_FUSE, ctx)
    shared_relu, relu_a = ops_of(module, conv.ActivationOp)
    assert not fuse_activation(shared_relu, PatternRewriter(shared_relu))
    assert fuse_activation(relu_a, PatternRewriter(relu_a))
    module.verify()


def test_per_channel_values() -> None:
    out = (1, 3, 4, 4)
    np.testing.assert_array_equal(
        per_channel_values(np.arange(3.0).reshape(3, 1, 1), out), [0, 1, 2]
    )
    np.testing.assert_array_equal(per_channel_values(np.full((1, 1, 1, 1), 2.0), out), [2, 2, 2])
    np.testing.assert_array_equal(per_channel_values(np.array(2.0), out), [2, 2, 2])
    assert per_channel_values(np.zeros((1, 3, 4, 1)), out) is None
    assert per_channel_values(np.zeros(4), out) is None
    assert per_channel_values(np.zeros((2, 3, 1, 1)), out) is None
    assert per_channel_values(np.zeros(3), (1, 3, 4, 4, 8)) is None


def test_conv_with_replaces_operands_and_keeps_the_rest() -> None:
    ctx = make_context()
    module = parse_module(MUST_NOT_FUSE, ctx)
    residual = ops_of(module, conv.Conv2DOp)[3]
    copy = conv_with(residual, properties={"activation": StringAttr("tanh")})
    assert copy.residual is residual.residual and copy.bias is None
    assert copy.activation == StringAttr("tanh") and copy.strides == residual.strides
    copy.verify()
    copy.erase()
