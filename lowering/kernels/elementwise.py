"""Kernels of the elementwise ops: `conv.activation`, `conv.binary`, and the output copy.

`apply_activation` is shared with the conv algorithms, which apply the same activations to an
output tile held in registers.
"""

from __future__ import annotations

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, ModuleOp
from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.conv import ACTIVATION_KINDS
from convir.dialects.shapes import tensor_shape
from lowering.emit import f32_memref, kernel_function
from lowering.kernels.access import Access, emit_map
from lowering.kernels.common import (
    OpKernel,
    Width,
    constant,
    float_op,
    kernel_shape,
    multiply_add,
    number_tag,
    shape_tag,
)

_TRANSCENDENTAL_COST = 20
"""Scalar operations an exp or tanh costs, relative to an add (for the threading decision)."""


def _clamp(value: SSAValue, low: float, high: float, width: Width) -> SSAValue:
    lower = arith.MaximumfOp(value, constant(low, width)).result
    return arith.MinimumfOp(lower, constant(high, width)).result


_SQRT_HALF = 0.7071067811865476
_SQRT_TWO_OVER_PI = 0.7978845608028654
_GELU_CUBIC = 0.044715
_MISH_LIMIT = 20.0
"""Above it mish(x) = x in f32 (tanh(softplus(x)) rounds to 1): exp is clamped there."""


def _half_x_times_one_plus(x: SSAValue, value: SSAValue, width: Width) -> SSAValue:
    """½x(1 + value)."""
    half_x = arith.MulfOp(x, constant(0.5, width)).result
    return multiply_add(half_x, value, half_x)


def _softplus(x: SSAValue, width: Width) -> SSAValue:
    """ln(1 + eˣ) as max(x, 0) + ln(1 + e^-|x|): no overflow, exact for large |x|."""
    negative_magnitude = arith.NegfOp(math.AbsFOp(x).result).result
    one_plus = arith.AddfOp(constant(1.0, width), math.ExpOp(negative_magnitude).result).result
    positive = arith.MaximumfOp(x, constant(0.0, width)).result
    return arith.AddfOp(positive, math.LogOp(one_plus).result).result


def _mish(x: SSAValue, width: Width) -> SSAValue:
    """x·tanh(ln(1 + eˣ)) = x·n/(n + 2) with n = eˣ(eˣ + 2): one exp, no log or tanh."""
    exp = math.ExpOp(arith.MinimumfOp(x, constant(_MISH_LIMIT, width)).result).result
    n = arith.MulfOp(exp, arith.AddfOp(exp, constant(2.0, width)).result).result
    ratio = arith.DivfOp(n, arith.AddfOp(n, constant(2.0, width)).result).result
    return arith.MulfOp(x, ratio).result


def _power(x: SSAValue, exponent: float, width: Width) -> SSAValue:
    """x ** exponent: multiplications for the integers -4..4, sqrt for ±½, else `powf`."""
    if exponent == 0.5:
        return math.SqrtOp(x).result
    if exponent == -0.5:
        return arith.DivfOp(constant(1.0, width), math.SqrtOp(x).result).result
    if exponent == int(exponent) and 0 < abs(exponent) <= 4:
        result = x
        for _ in range(int(abs(exponent)) - 1):
            result = arith.MulfOp(result, x).result
        return result if exponent > 0 else arith.DivfOp(constant(1.0, width), result).result
    if exponent == 0:
        return constant(1.0, width)  # ONNX Pow: x ** 0 is 1 for every x, NaN included
    return math.PowFOp(x, constant(exponent, width)).result


def apply_activation(
    value: SSAValue, kind: str, alpha: float, beta: float, width: int | None
) -> SSAValue:
    """Emit activation `kind` (ONNX semantics, as `convir.reference.activation`) on `value`.

    `value` is an f32 (`width` None) or a `vector<width x f32>`. `alpha`/`beta` are the slope of
    leaky_relu, the bounds of clip, the affine map of hard_sigmoid and the exponent of pow; other
    kinds ignore them. exp, log and erf on vectors become call-free polynomials in the LLVM
    lowering (`lowering.to_llvm.math_approximations`), tanh a rational function.
    Must be called where ops are being built (inside an `ImplicitBuilder`, as in the
    `lowering.emit` helpers); returns the activated value.
    """
    match kind:
        case "identity":
            return value
        case "relu":
            return arith.MaximumfOp(value, constant(0.0, width)).result
        case "leaky_relu":
            # max(x, 0) + alpha * min(x, 0): no compare, so it serves vectors and scalars alike.
            positive = arith.MaximumfOp(value, constant(0.0, width)).result
            negative = arith.MinimumfOp(value, constant(0.0, width)).result
            return multiply_add(negative, constant(alpha, width), positive)
        case "clip":
            return _clamp(value, alpha, beta, width)
        case "sigmoid":
            exp = math.ExpOp(arith.NegfOp(value).result).result
            one = constant(1.0, width)
            return arith.DivfOp(one, arith.AddfOp(one, exp).result).result
        case "hard_sigmoid":
            affine = multiply_add(value, constant(alpha, width), constant(beta, width))
            return _clamp(affine, 0.0, 1.0, width)
        case "hard_swish":
            affine = multiply_add(value, constant(1.0 / 6.0, width), constant(0.5, width))
            return arith.MulfOp(value, _clamp(affine, 0.0, 1.0, width)).result
        case "tanh":
            return math.TanhOp(value).result
        case "erf":
            return math.ErfOp(value).result
        case "gelu":
            scaled = arith.MulfOp(value, constant(_SQRT_HALF, width)).result
            return _half_x_times_one_plus(value, math.ErfOp(scaled).result, width)
        case "gelu_tanh":
            # ½x(1 + tanh(y)) = x / (1 + e^-2y): no cancellation where tanh(y) is near -1.
            cube = arith.MulfOp(arith.MulfOp(value, value).result, value).result
            inner = multiply_add(cube, constant(_GELU_CUBIC, width), value)
            exponent = arith.MulfOp(inner, constant(-2 * _SQRT_TWO_OVER_PI, width)).result
            one = constant(1.0, width)
            denominator = arith.AddfOp(one, math.ExpOp(exponent).result).result
            return arith.DivfOp(value, denominator).result
        case "softplus":
            return _softplus(value, width)
        case "mish":
            return _mish(value, width)
        case "sqrt":
            return math.SqrtOp(value).result
        case "reciprocal":
            return arith.DivfOp(constant(1.0, width), value).result
        case "pow":
            return _power(value, alpha, width)
    raise ValueError(
        f"activation kind '{kind}' is unknown; expected one of {', '.join(ACTIVATION_KINDS)}"
    )


_TRANSCENDENTAL_KINDS = ("sigmoid", "tanh", "erf", "gelu", "gelu_tanh", "mish", "softplus", "pow")


def activation_cost(kind: str) -> int:
    """Scalar operations per element of activation `kind`."""
    return _TRANSCENDENTAL_COST if kind in _TRANSCENDENTAL_KINDS else 2


def _float_attr(attr: FloatAttr | None) -> float:
    """The value of an optional FloatAttr, 0.0 when absent (as `convir.reference` reads it)."""
    return 0.0 if attr is None else float(attr.value.data)


class ActivationKernel(OpKernel):
    """`conv.activation`: a map over the tensor; keys like `clip_0p0_6p0_1x32x112x112`."""

    _USES_ALPHA = ("leaky_relu", "clip", "hard_sigmoid", "pow")
    _USES_BETA = ("clip", "hard_sigmoid")

    def key(self, op: conv.ActivationOp) -> str:
        kind = op.kind.data
        parts = [kind]
        if kind in self._USES_ALPHA:
            parts.append(number_tag(_float_attr(op.alpha)))
        if kind in self._USES_BETA:
            parts.append(number_tag(_float_attr(op.beta)))
        parts.append(shape_tag(tensor_shape(op.input)))
        return "_".join(parts)

    def body(self, op: conv.ActivationOp, args: list[SSAValue], vector_width: int) -> None:
        source, result = args
        shape = kernel_shape(op.input)
        kind, alpha, beta = op.kind.data, _float_attr(op.alpha), _float_attr(op.beta)
        emit_map(
            shape,
            Access.identity(result, len(shape)),
            [Access.identity(source, len(shape))],
            lambda values, width: apply_activation(values[0], kind, alpha, beta, width),
            vector_width,
            activation_cost(kind),
        )


class BinaryKernel(OpKernel):
    """`conv.binary` with numpy broadcasting; keys like `add_1x64x56x56_1x64x1x1`.

    Operands are read through broadcast accesses: an operand constant along the innermost axis
    (per-channel, scalar) is loaded once per row and splatted; the rest are vector loads.
    """

    def key(self, op: conv.BinaryOp) -> str:
        lhs, rhs = tensor_shape(op.lhs), tensor_shape(op.rhs)
        return f"{op.kind.data}_{shape_tag(lhs)}_{shape_tag(rhs)}"

    def body(self, op: conv.BinaryOp, args: list[SSAValue], vector_width: int) -> None:
        lhs, rhs, result = args
        space = kernel_shape(op.output)
        kind = op.kind.data
        emit_map(
            space,
            Access.identity(result, len(space)),
            [
                Access.broadcast(lhs, kernel_shape(op.lhs), space),
                Access.broadcast(rhs, kernel_shape(op.rhs), space),
            ],
            lambda values, width: _binary(kind, values[0], values[1], width),
            vector_width,
        )


def _binary(kind: str, lhs: SSAValue, rhs: SSAValue, width: Width) -> SSAValue:
    """`lhs kind rhs` for a `conv.binary` kind; prelu as max(x, 0) + slope·min(x, 0)."""
    if kind != "prelu":
        return float_op(kind, lhs, rhs)
    positive = arith.MaximumfOp(lhs, constant(0.0, width)).result
    negative = arith.MinimumfOp(lhs, constant(0.0, width)).result
    return multiply_add(negative, rhs, positive)


def emit_copy(module: ModuleOp, name: str, shape: tuple[int, ...], vector_width: int) -> None:
    """Append `func.func private @name(%src, %dst: memref<shape x f32>)` copying src to dst.

    A rank-0 `shape` is taken as [1], as kernels receive scalars (see `kernel_shape`).
    """
    shape = shape or (1,)
    memref_type = f32_memref(shape)
    with kernel_function(module, name, [memref_type, memref_type]) as (source, result):
        emit_map(
            shape,
            Access.identity(result, len(shape)),
            [Access.identity(source, len(shape))],
            lambda values, width: values[0],
            vector_width,
        )


def copy_key(shape: tuple[int, ...]) -> str:
    """The kernel name `emit_copy` is meant to be given for `shape`: `copy_1x1000`."""
    return f"copy_{shape_tag(shape)}"
