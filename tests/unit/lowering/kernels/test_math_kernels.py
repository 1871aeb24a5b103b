"""The kernels of the activations, PRelu and layer normalisation added for the ONNX math ops
(Erf, Gelu, Mish, Softplus, Sqrt, Reciprocal, Pow, PRelu, LayerNormalization), JIT-compiled at
vector widths 16, 8 and 1 (scalar), against `convir.reference` on inputs that include large
magnitudes, where exp overflows and erf saturates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.ir import Block, Operation, SSAValue

from convir import reference
from convir.dialects import conv
from convir.dialects.shapes import f32_tensor, tensor_shape
from tests.unit.lowering.kernels.test_kernels import (
    Case,
    act,
    binary,
    constant,
    operand_arrays,
    run_kernel,
)

RNG = np.random.default_rng(12)


def layer_norm(axis: int, epsilon: float = 1e-5):
    """conv.layer_norm of a[0] with random constant scale and bias over the axes from `axis`."""

    def build(a: Sequence[SSAValue]) -> list[Operation]:
        normalised = tensor_shape(a[0])[axis:]
        scale = constant(RNG.standard_normal(normalised).astype(np.float32))
        bias = constant(RNG.standard_normal(normalised).astype(np.float32))
        return [scale, bias, conv.LayerNormOp(a[0], scale.output, bias.output, axis, epsilon)]

    return build


UNARY_KINDS = ("erf", "gelu", "gelu_tanh", "mish", "softplus")
CASES = [
    *(Case(f"act_{k}", [(2, 3, 5, 37)], act(k), 2e-6) for k in UNARY_KINDS),
    Case("act_sqrt", [(3, 41)], act("sqrt"), 2e-6, positive=True),
    Case("act_reciprocal", [(3, 41)], act("reciprocal"), 2e-6, positive=True),
    *(
        Case(f"act_pow_{p}", [(3, 41)], act("pow", p), 2e-6, positive=True)
        for p in (2.0, 0.5, 3.0, -1.0, -0.5, 0.0, 1.7)
    ),
    Case("prelu_per_channel", [(1, 5, 4, 19), (5, 1, 1)], binary("prelu")),
    Case("prelu_scalar", [(2, 37), ()], binary("prelu")),
    Case("prelu_full", [(2, 3, 17), (2, 3, 17)], binary("prelu")),
    Case("layer_norm_last", [(1, 7, 7, 96)], layer_norm(3, 1e-6), 1e-4),
    Case("layer_norm_short_rows", [(3, 5, 11)], layer_norm(2), 1e-4),
    Case("layer_norm_channels", [(2, 6, 3, 5)], layer_norm(1), 1e-4),
    Case("layer_norm_whole", [(4, 19)], layer_norm(0), 1e-4),
    Case("layer_norm_threaded", [(1, 56, 56, 96)], layer_norm(3, 1e-6), 1e-4),
]


@pytest.mark.parametrize("vector_width", [16, 8, 1])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_matches_reference(case: Case, vector_width: int) -> None:
    graph, op = case.graph()
    inputs = case.inputs()
    expected = reference.run(graph, inputs)["result0"]
    actual = run_kernel(op, operand_arrays(op, graph, inputs), vector_width)
    np.testing.assert_allclose(actual, expected, rtol=case.tolerance, atol=case.tolerance)


@pytest.mark.parametrize("kind", UNARY_KINDS)
def test_activation_is_right_at_extremes(kind: str) -> None:
    magnitudes = np.array([0.0, 1e-30, 1e-3, 0.5, 3.0, 9.0, 15.0, 19.0, 21.0, 90.0, 1e4, 3e38])
    x = np.concatenate([magnitudes, -magnitudes, [np.inf, -np.inf]]).astype(np.float32)
    x = np.resize(x, 64)
    op = conv.ActivationOp(_argument((64,)), kind)
    actual = run_kernel(op, [x], 16)
    expected = reference.activation(x, kind)
    np.testing.assert_allclose(actual, expected, rtol=2e-6, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    axis_from_end=st.integers(1, 4),
    epsilon=st.sampled_from([1e-5, 1e-6, 1e-2]),
)
def test_layer_norm_any_axis(shape: list[int], axis_from_end: int, epsilon: float) -> None:
    axis = max(0, len(shape) - axis_from_end)
    case = Case("layer_norm", [tuple(shape)], layer_norm(axis, epsilon), 1e-4)
    graph, op = case.graph()
    inputs = case.inputs()
    expected = reference.run(graph, inputs)["result0"]
    actual = run_kernel(op, operand_arrays(op, graph, inputs), 8)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def _argument(shape: tuple[int, ...]) -> SSAValue:
    return Block(arg_types=[f32_tensor(shape)]).args[0]
