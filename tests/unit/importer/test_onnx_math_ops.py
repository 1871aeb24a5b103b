"""Erf, Gelu, Mish, Softplus, Sqrt, Reciprocal, Pow, PRelu and LayerNormalization: one-node
models against onnxruntime, and the decomposed GELU and layer norm chains that exporters write,
recognised as one op (`convir.importer.patterns`) and still computing what onnxruntime does."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convir import reference
from convir.dialects import conv, make_context
from convir.importer.onnx import OnnxImportError, import_onnx
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model

X = rand(1, 4, 9, 11) * 3
POSITIVE = np.abs(rand(1, 4, 9, 11, seed=4)) + 0.1
NHWC = rand(1, 5, 6, 24, seed=5)

# (id, op_type, graph inputs, initializers, attributes, opset)
CASES = [
    ("erf", "Erf", {"x": X}, {}, {}, 13),
    ("erf9", "Erf", {"x": X}, {}, {}, 9),
    ("gelu", "Gelu", {"x": X}, {}, {}, 20),
    ("gelu_tanh", "Gelu", {"x": X}, {}, {"approximate": "tanh"}, 20),
    ("mish", "Mish", {"x": X}, {}, {}, 18),
    ("softplus", "Softplus", {"x": X * 10}, {}, {}, 7),
    ("sqrt", "Sqrt", {"x": POSITIVE}, {}, {}, 13),
    ("reciprocal", "Reciprocal", {"x": POSITIVE}, {}, {}, 13),
    *(
        (f"pow_{e}", "Pow", {"x": POSITIVE}, {"e": np.float32(e)}, {}, opset)
        for e, opset in ((2.0, 13), (0.5, 15), (3.0, 7), (1.7, 12), (-1.0, 13))
    ),
    ("pow_int_exponent", "Pow", {"x": X}, {"e": np.int64(2)}, {}, 15),
    ("prelu_channel", "PRelu", {"x": X}, {"s": rand(4, 1, 1, seed=2)}, {}, 16),
    ("prelu_scalar", "PRelu", {"x": X}, {"s": np.array([0.25], np.float32)}, {}, 9),
    ("prelu_last_axis", "PRelu", {"x": X}, {"s": rand(11, seed=3)}, {}, 7),
    (
        "layernorm_last",
        "LayerNormalization",
        {"x": NHWC},
        {"g": rand(24, seed=6), "b": rand(24, seed=7)},
        {"epsilon": 1e-6},
        17,
    ),
    (
        "layernorm_channels",
        "LayerNormalization",
        {"x": X},
        {"g": rand(4, 9, 11, seed=6), "b": rand(4, 9, 11, seed=7)},
        {"axis": 1},
        17,
    ),
    (
        "layernorm_broadcast_scale_no_bias",
        "LayerNormalization",
        {"x": X},
        {"g": rand(1, 11, seed=6)},
        {"axis": -2},
        17,
    ),
]


@pytest.mark.parametrize(
    ("op_type", "inputs", "initializers", "attributes", "opset"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_operator_matches_onnxruntime(op_type, inputs, initializers, attributes, opset) -> None:
    model = single_node_model(op_type, inputs, initializers, opset=opset, **attributes)
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    ours = reference.run(module, inputs, ctx=ctx)["y"]
    assert_close(ours, run_onnxruntime(model, inputs)[0])


def test_pow_with_a_run_time_exponent_is_refused_naming_the_node() -> None:
    model = single_node_model("Pow", {"x": X, "e": X})
    with pytest.raises(OnnxImportError, match=r"node 'pow_0' \(Pow\): exponent .* constant"):
        import_onnx(model)


def test_prelu_slope_that_does_not_broadcast_is_refused() -> None:
    model = single_node_model("PRelu", {"x": X}, {"s": rand(5, 1, 1)})
    with pytest.raises(OnnxImportError, match=r"PRelu.*slope of shape \[5, 1, 1\]"):
        import_onnx(model)


def test_gelu_with_unknown_approximation_is_refused() -> None:
    model = single_node_model("Gelu", {"x": X}, opset=20, approximate="fast")
    with pytest.raises(OnnxImportError, match="approximate 'fast' is unknown"):
        import_onnx(model)


# --- decomposed chains ----------------------------------------------------------------------------


class Graph:
    """A tiny graph builder: `node` appends a node and returns its output name."""

    def __init__(self, opset: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.opset = opset

    def node(self, op_type: str, *inputs: str, **attributes) -> str:
        output = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def constant(self, value) -> str:
        tensor = numpy_helper.from_array(np.asarray(value, np.float32))
        return self.node("Constant", value=tensor)

    def model(self, inputs: dict[str, np.ndarray], outputs: list[str], initializers=None):
        graph = helper.make_graph(
            self.nodes,
            "chain",
            [
                helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
                for n, a in inputs.items()
            ],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        return model


def exact_gelu(g: Graph, x: str, *, divide: bool = True, half_first: bool = False) -> str:
    scaled = (
        g.node("Div", x, g.constant(np.sqrt(2.0)))
        if divide
        else g.node("Mul", g.constant(1 / np.sqrt(2.0)), x)
    )
    plus_one = g.node("Add", g.node("Erf", scaled), g.constant(1.0))
    if half_first:
        return g.node("Mul", g.node("Mul", x, g.constant(0.5)), plus_one)
    return g.node("Mul", g.node("Mul", x, plus_one), g.constant(0.5))


def tanh_gelu(g: Graph, x: str) -> str:
    cubic = g.node("Mul", g.node("Pow", x, g.constant(3.0)), g.constant(0.044715))
    inner = g.node("Mul", g.node("Add", x, cubic), g.constant(np.sqrt(2 / np.pi)))
    plus_one = g.node("Add", g.node("Tanh", inner), g.constant(1.0))
    return g.node("Mul", g.node("Mul", x, plus_one), g.constant(0.5))


def layer_norm(g: Graph, x: str, axes: list[int], affine: bool) -> str:
    def mean(value: str) -> str:
        if g.opset >= 18:
            axes_name = g.node("Constant", value=numpy_helper.from_array(np.array(axes)))
            return g.node("ReduceMean", value, axes_name)
        return g.node("ReduceMean", value, axes=axes)

    centred = g.node("Sub", x, mean(x))
    variance = mean(g.node("Pow", centred, g.constant(2.0)))
    normalised = g.node("Div", centred, g.node("Sqrt", g.node("Add", variance, g.constant(1e-6))))
    if not affine:
        return normalised
    return g.node("Add", g.node("Mul", normalised, "gamma"), "beta")


def ops_of(model: onnx.ModelProto) -> tuple[list, dict[str, np.ndarray], object]:
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    (main,) = module.ops
    ops = [op for op in main.body.block.ops if not isinstance(op, conv.ConstantOp)]
    return ops, module, ctx


def check_against_onnxruntime(model, inputs, module, ctx) -> None:
    ours = reference.run(module, inputs, ctx=ctx)
    theirs = run_onnxruntime(model, inputs)
    for name, expected in zip([o.name for o in model.graph.output], theirs, strict=True):
        assert_close(ours[name], expected)


@pytest.mark.parametrize(
    ("divide", "half_first"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_decomposed_exact_gelu_becomes_one_activation(divide: bool, half_first: bool) -> None:
    g = Graph(17)
    y = exact_gelu(g, "x", divide=divide, half_first=half_first)
    model = g.model({"x": X}, [y])
    ops, module, ctx = ops_of(model)
    assert [type(op) for op in ops][:-1] == [conv.ActivationOp]
    assert ops[0].kind.data == "gelu"
    check_against_onnxruntime(model, {"x": X}, module, ctx)


def test_decomposed_tanh_gelu_becomes_one_activation() -> None:
    g = Graph(17)
    model = g.model({"x": X}, [tanh_gelu(g, "x")])
    ops, module, ctx = ops_of(model)
    assert [op.kind.data for op in ops[:-1]] == ["gelu_tanh"]
    check_against_onnxruntime(model, {"x": X}, module, ctx)


def test_gelu_chain_whose_intermediate_is_used_elsewhere_stays_decomposed() -> None:
    g = Graph(17)
    y = exact_gelu(g, "x")
    erf = next(n for n in g.nodes if n.op_type == "Erf").output[0]
    model = g.model({"x": X}, [y, erf])
    ops, module, ctx = ops_of(model)
    kinds = [op.kind.data for op in ops if isinstance(op, conv.ActivationOp)]
    assert kinds == ["erf"]
    check_against_onnxruntime(model, {"x": X}, module, ctx)


def test_gelu_chain_with_a_wrong_constant_stays_decomposed() -> None:
    g = Graph(17)
    scaled = g.node("Div", "x", g.constant(1.5))
    plus_one = g.node("Add", g.node("Erf", scaled), g.constant(1.0))
    model = g.model({"x": X}, [g.node("Mul", g.node("Mul", "x", plus_one), g.constant(0.5))])
    ops, module, ctx = ops_of(model)
    assert "gelu" not in [op.kind.data for op in ops if isinstance(op, conv.ActivationOp)]
    check_against_onnxruntime(model, {"x": X}, module, ctx)


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("axes", [[-1], [-2, -1]])
def test_decomposed_layer_norm_becomes_one_op(opset: int, affine: bool, axes: list[int]) -> None:
    g = Graph(opset)
    normalised_shape = NHWC.shape[len(NHWC.shape) + axes[0] :]
    weights = {"gamma": rand(*normalised_shape, seed=8), "beta": rand(normalised_shape[-1])}
    model = g.model({"x": NHWC}, [layer_norm(g, "x", axes, affine)], weights if affine else {})
    ops, module, ctx = ops_of(model)
    assert [type(op) for op in ops][:-1] == [conv.LayerNormOp]
    assert ops[0].axis.value.data == NHWC.ndim + axes[0]
    check_against_onnxruntime(model, {"x": NHWC}, module, ctx)


def test_layer_norm_chain_over_leading_axes_is_not_recognised() -> None:
    g = Graph(13)
    layer_norm(g, "x", [1], affine=False)
    model = g.model({"x": NHWC}, [g.nodes[-1].output[0]])
    ops = {op.name for op in import_onnx(model).walk()}
    assert "conv.layer_norm" not in ops and "conv.reduce" in ops  # stays decomposed


# --- real exports ---------------------------------------------------------------------------------

DATA = Path(__file__).parents[2] / "data"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("torch_gelu_block_opset17", {"activation:gelu": 1, "activation:gelu_tanh": 1}),
        ("torch_convnext_block_opset17", {"layer_norm": 3, "activation:gelu": 1}),
        ("torch_convnext_block_opset13", {"layer_norm": 3, "activation:gelu": 1}),
        (
            "torch_prelu_mish_opset18",
            {"binary:prelu": 2, "activation:mish": 1, "activation:softplus": 1},
        ),
    ],
)
def test_pytorch_exports_import_their_chains_as_single_ops(name: str, expected: dict) -> None:
    module = import_onnx(DATA / f"{name}.onnx", ctx=make_context())
    (main,) = module.ops
    counts: Counter[str] = Counter()
    for op in main.body.block.ops:
        kind = getattr(op, "kind", None)
        counts[op.name.removeprefix("conv.") + (f":{kind.data}" if kind else "")] += 1
    assert {key: counts[key] for key in expected} == expected
    assert counts["activation:erf"] == counts["activation:tanh"] == 0  # no chain left behind
