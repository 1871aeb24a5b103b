"""The `conv` dialect: CNN inference graphs on builtin tensor types.

Graph form: one op per ONNX-level operation, value semantics on `tensor<...xf32>`, layout explicit
(NCHW until `conv-convert-layout` introduces NCHWc through `conv.pack`). Every op verifies its
shapes and attributes with a message naming the op, and `convir.reference` gives each op its numpy
semantics. Pads are always ONNX-ordered: [top, left, bottom, right] for 2-D windows, and
[begin_0, ..., begin_r, end_0, ..., end_r] for `conv.pad`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, Pure

from convir.dialects.base import (
    UnaryOp,
    blocked_channels,
    check_activation_rank,
    check_count,
    check_kind,
    check_rank,
    check_tensors,
    fail,
    ints,
)
from convir.dialects.resampling import (
    ConvTransposeOp,
    InterleaveOp,
    ReduceOp,
    ResizeOp,
)
from convir.dialects.shapes import (
    blocked_shape,
    broadcast_shapes,
    conv2d_output_shape,
    f32_tensor,
    i64_array,
    is_blocked,
    padded_shape,
    pool2d_output_shape,
    tensor_shape,
    volume,
)

POOL_KINDS = ("max", "avg")
BINARY_KINDS = ("add", "sub", "mul", "div", "max", "min", "prelu")
ACTIVATION_KINDS = (
    "relu",
    "leaky_relu",
    "clip",
    "sigmoid",
    "hard_sigmoid",
    "hard_swish",
    "tanh",
    "identity",
    # the transcendental and power kinds of ONNX's Erf, Gelu, Mish, Softplus, Sqrt, Reciprocal, Pow
    "erf",
    "gelu",
    "gelu_tanh",
    "mish",
    "softplus",
    "sqrt",
    "reciprocal",
    "pow",
)

# ---------------------------------------------------------------------------------------------
# Ops


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A constant tensor: `%w = conv.constant dense_resource<conv1.weight> : tensor<64x3x7x7xf32>`.

    Large values are `dense_resource` handles whose blobs live in the context's resource store
    (see `convir.dialects.resources`); small ones may be written inline as `dense<...>`.
    """

    name = "conv.constant"
    value = prop_def(DenseResourceAttr | DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, value: DenseResourceAttr | DenseIntOrFPElementsAttr) -> None:
        super().__init__(properties={"value": value}, result_types=[value.type])

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        value = parser.parse_attribute()
        if not isinstance(value, DenseResourceAttr | DenseIntOrFPElementsAttr):
            parser.raise_error("conv.constant expects a dense_resource<...> or dense<...> value")
        return cls(value)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.value)

    def verify_(self) -> None:
        if self.output.type != self.value.type:
            fail(self, f"result type {self.output.type} differs from value type")


@irdl_op_definition
class Conv2DOp(IRDLOperation):
    """2-D convolution, ONNX `Conv` semantics, with room for a fused epilogue.

    input [N, C, H, W], weight [O, C/group, KH, KW], optional bias [O] and residual (same shape as
    the output, added before the activation) -> output [N, O, OH, OW]. In NCHWc the input is
    [N, ceil(C/X), H, W, X] and the output [N, ceil(O/X), OH, OW, X]; weight and bias keep their
    logical shapes (kernels repack them at compile time) and padded input lanes are never read.
    An NCHW input may also give an NCHWc output (a stem conv reading a few-channel image as it
    is, without packing it).
    `activation` names an element of ACTIVATION_KINDS applied last, with `alpha`/`beta` as in
    `conv.activation`. `algorithm` and `schedule` are filled by algorithm selection and tiling.
    """

    name = "conv.conv2d"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    residual = opt_operand_def(TensorType)
    output = result_def(TensorType)

    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])
    group = prop_def(IntegerAttr[I64])
    activation = opt_prop_def(StringAttr)
    alpha = opt_prop_def(FloatAttr)
    beta = opt_prop_def(FloatAttr)
    algorithm = opt_prop_def(StringAttr)
    schedule = opt_prop_def(DictionaryAttr)

    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $weight (`bias` $bias^)? (`residual` $residual^)? attr-dict"
        " `:` type($input) `,` type($weight) (`bias` type($bias)^)?"
        " (`residual` type($residual)^)? `->` type($output)"
    )

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue,
        bias: SSAValue | None,
        *,
        strides: Sequence[int] = (1, 1),
        pads: Sequence[int] = (0, 0, 0, 0),
        dilations: Sequence[int] = (1, 1),
        group: int = 1,
        output_shape: Sequence[int] | None = None,
    ) -> None:
        if output_shape is None:
            output_shape = conv2d_output_shape(
                tensor_shape(input), tensor_shape(weight), strides, pads, dilations
            )
        super().__init__(
            operands=[input, weight, [bias] if bias else [], []],
            result_types=[f32_tensor(output_shape)],
            properties={
                "strides": i64_array(strides),
                "pads": i64_array(pads),
                "dilations": i64_array(dilations),
                "group": IntegerAttr(group, i64),
            },
        )

    def verify_(self) -> None:
        check_tensors(self, [self.input, self.weight, self.output], ["input", "weight", "output"])
        input_shape = check_activation_rank(self, self.input)
        o, cg, kh, kw = check_rank(self, self.weight, "weight", 4)
        c, h, w = input_shape[1:4]
        if is_blocked(input_shape):
            c = blocked_channels(self, input_shape, cg * self.group.value.data)
        strides, pads, dilations = ints(self.strides), ints(self.pads), ints(self.dilations)
        check_count(self, "strides", strides, 2, 1)
        check_count(self, "dilations", dilations, 2, 1)
        check_count(self, "pads", pads, 4, 0)
        group = self.group.value.data
        if group < 1 or c % group or o % group:
            fail(self, f"group {group} must divide input channels {c} and output channels {o}")
        if cg * group != c:
            fail(self, f"weight has {cg} input channels per group, input needs {c // group}")
        if self.bias is not None:
            check_tensors(self, [self.bias], ["bias"])
            if tensor_shape(self.bias) != (o,):
                fail(self, f"bias must have shape [{o}], got {list(tensor_shape(self.bias))}")
        expected = conv2d_output_shape(input_shape, (o, cg, kh, kw), strides, pads, dilations)
        if min(expected[2:4]) < 1:
            fail(self, f"kernel {kh}x{kw} does not fit the padded input {h}x{w}")
        output_shape = tensor_shape(self.output)
        if not is_blocked(input_shape) and is_blocked(output_shape) and output_shape[4] >= 1:
            expected = blocked_shape(expected, output_shape[4])
        if tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")
        if self.residual is not None and self.residual.type != self.output.type:
            fail(self, f"residual type {self.residual.type} differs from output type")
        if self.activation is not None:
            check_kind(self, self.activation.data, ACTIVATION_KINDS)


@irdl_op_definition
class PoolOp(UnaryOp):
    """Max or average pooling over KH×KW windows, ONNX `MaxPool`/`AveragePool` semantics.

    input [N, C, H, W] -> output [N, C, OH, OW] (or NCHWc [N, C/X, H, W, X] -> [N, C/X, OH, OW, X]);
    `ceil_mode` and `count_include_pad` as in ONNX.
    """

    name = "conv.pool"
    kind = prop_def(StringAttr)
    kernel = prop_def(DenseArrayBase[I64])
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])
    ceil_mode = opt_prop_def(UnitAttr)
    count_include_pad = opt_prop_def(UnitAttr)

    def __init__(
        self,
        input: SSAValue,
        kind: str,
        kernel: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int],
        dilations: Sequence[int] = (1, 1),
        ceil_mode: bool = False,
        count_include_pad: bool = False,
    ) -> None:
        properties: dict[str, Attribute] = {
            "kind": StringAttr(kind),
            "kernel": i64_array(kernel),
            "strides": i64_array(strides),
            "pads": i64_array(pads),
            "dilations": i64_array(dilations),
        }
        if ceil_mode:
            properties["ceil_mode"] = UnitAttr()
        if count_include_pad:
            properties["count_include_pad"] = UnitAttr()
        shape = pool2d_output_shape(
            tensor_shape(input), kernel, strides, pads, dilations, ceil_mode
        )
        super().__init__(operands=[input], result_types=[f32_tensor(shape)], properties=properties)

    def verify_shapes(self) -> None:
        shape = check_activation_rank(self, self.input)
        check_kind(self, self.kind.data, POOL_KINDS)
        kernel, strides = ints(self.kernel), ints(self.strides)
        pads, dilations = ints(self.pads), ints(self.dilations)
        check_count(self, "kernel", kernel, 2, 1)
        check_count(self, "strides", strides, 2, 1)
        check_count(self, "dilations", dilations, 2, 1)
        check_count(self, "pads", pads, 4, 0)
        if any(pads[i] >= kernel[i % 2] * dilations[i % 2] for i in range(4)):
            fail(self, f"pads {list(pads)} must be smaller than the kernel {list(kernel)}")
        ceil = self.ceil_mode is not None
        expected = pool2d_output_shape(shape, kernel, strides, pads, dilations, ceil)
        if min(expected[2:4]) < 1:
            fail(self, f"window {list(kernel)} does not fit the padded input {shape[2]}x{shape[3]}")
        if tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")


@irdl_op_definition
class GlobalPoolOp(UnaryOp):
    """Max or average over the whole H×W plane: [N, C, H, W] -> [N, C, 1, 1] (NCHWc likewise)."""

    name = "conv.global_pool"
    kind = prop_def(StringAttr)

    def __init__(self, input: SSAValue, kind: str) -> None:
        n, c, _, _, *block = tensor_shape(input)
        super().__init__(
            operands=[input],
            result_types=[f32_tensor((n, c, 1, 1, *block))],
            properties={"kind": StringAttr(kind)},
        )

    def verify_shapes(self) -> None:
        n, c, _, _, *block = check_activation_rank(self, self.input)
        check_kind(self, self.kind.data, POOL_KINDS)
        expected = (n, c, 1, 1, *block)
        if tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")


@irdl_op_definition
class BinaryOp(IRDLOperation):
    """Elementwise `lhs kind rhs` with numpy broadcasting; kind in BINARY_KINDS.

    `prelu` is ONNX PRelu: lhs where lhs >= 0, else lhs * rhs; rhs (the slope) must broadcast to
    lhs's shape, which is the result's.
    """

    name = "conv.binary"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    kind = prop_def(StringAttr)

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($output)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, kind: str) -> None:
        shape = broadcast_shapes(tensor_shape(lhs), tensor_shape(rhs))
        if shape is None:
            raise ValueError(
                f"conv.binary: shapes {list(tensor_shape(lhs))} and {list(tensor_shape(rhs))} "
                "do not broadcast"
            )
        super().__init__(
            operands=[lhs, rhs],
            result_types=[f32_tensor(shape)],
            properties={"kind": StringAttr(kind)},
        )

    def verify_(self) -> None:
        check_tensors(self, [self.lhs, self.rhs, self.output], ["lhs", "rhs", "output"])
        check_kind(self, self.kind.data, BINARY_KINDS)
        shape = broadcast_shapes(tensor_shape(self.lhs), tensor_shape(self.rhs))
        if shape is None:
            fail(
                self,
                f"operand shapes {list(tensor_shape(self.lhs))} and "
                f"{list(tensor_shape(self.rhs))} do not broadcast",
            )
        if tensor_shape(self.output) != shape:
            fail(self, f"output must have shape {list(shape or ())}, got {self.output.type}")
        if self.kind.data == "prelu" and shape != tensor_shape(self.lhs):
            fail(
                self,
                f"prelu slope of shape {list(tensor_shape(self.rhs))} must broadcast to the input "
                f"shape {list(tensor_shape(self.lhs))}",
            )


@irdl_op_definition
class ActivationOp(UnaryOp):
    """Elementwise activation; kind in ACTIVATION_KINDS.

    `alpha`/`beta`: the slope of leaky_relu; min/max of clip; alpha/beta of hard_sigmoid; the
    exponent of pow (alpha). gelu is x·Φ(x) = ½x(1 + erf(x/√2)), gelu_tanh its tanh form
    ½x(1 + tanh(√(2/π)(x + 0.044715x³))), mish x·tanh(softplus(x)), softplus ln(1 + eˣ).
    """

    name = "conv.activation"
    kind = prop_def(StringAttr)
    alpha = opt_prop_def(FloatAttr)
    beta = opt_prop_def(FloatAttr)

    def __init__(
        self, input: SSAValue, kind: str, alpha: float | None = None, beta: float | None = None
    ) -> None:
        properties: dict[str, Attribute] = {"kind": StringAttr(kind)}
        if alpha is not None:
            properties["alpha"] = FloatAttr(alpha, f32)
        if beta is not None:
            properties["beta"] = FloatAttr(beta, f32)
        super().__init__(operands=[input], result_types=[input.type], properties=properties)

    def verify_shapes(self) -> None:
        check_kind(self, self.kind.data, ACTIVATION_KINDS)
        if self.output.type != self.input.type:
            fail(self, f"output type {self.output.type} differs from input type")


@irdl_op_definition
class BatchNormOp(IRDLOperation):
    """Inference batch normalisation over axis 1: (x - mean) / sqrt(var + eps) * scale + bias.

    input [N, C, ...]; scale, bias, mean, var [C].
    """

    name = "conv.batchnorm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    output = result_def(TensorType)
    epsilon = prop_def(FloatAttr)

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $scale `,` $bias `,` $mean `,` $var attr-dict `:` type($input) `,`"
        " type($scale) `,` type($bias) `,` type($mean) `,` type($var) `->` type($output)"
    )

    def __init__(
        self,
        input: SSAValue,
        scale: SSAValue,
        bias: SSAValue,
        mean: SSAValue,
        var: SSAValue,
        epsilon: float,
    ) -> None:
        super().__init__(
            operands=[input, scale, bias, mean, var],
            result_types=[input.type],
            properties={"epsilon": FloatAttr(epsilon, f32)},
        )

    def verify_(self) -> None:
        params = [self.scale, self.bias, self.mean, self.var]
        names = ["input", "scale", "bias", "mean", "var", "output"]
        check_tensors(self, [self.input, *params, self.output], names)
        shape = tensor_shape(self.input)
        if len(shape) < 2:
            fail(self, f"input must have rank >= 2, got shape {list(shape)}")
        for value, name in zip(params, names[1:5], strict=True):
            if tensor_shape(value) != (shape[1],):
                fail(self, f"{name} must have shape [{shape[1]}], got {value.type}")
        if self.output.type != self.input.type:
            fail(self, f"output type {self.output.type} differs from input type")


@irdl_op_definition
class GemmOp(IRDLOperation):
    """ONNX `Gemm`: alpha * op(a) @ op(b) + beta * c, op = transpose when trans_a/trans_b.

    a [M, K] (or [K, M]), b [K, N] (or [N, K]), optional c broadcastable to [M, N].
    """

    name = "conv.gemm"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    c = opt_operand_def(TensorType)
    output = result_def(TensorType)
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    trans_a = opt_prop_def(UnitAttr)
    trans_b = opt_prop_def(UnitAttr)

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = (
        "$a `,` $b (`,` $c^)? attr-dict `:` type($a) `,` type($b) (`,` type($c)^)?"
        " `->` type($output)"
    )

    def __init__(
        self,
        a: SSAValue,
        b: SSAValue,
        c: SSAValue | None,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        trans_a: bool = False,
        trans_b: bool = False,
    ) -> None:
        m = tensor_shape(a)[1 if trans_a else 0]
        n = tensor_shape(b)[0 if trans_b else 1]
        properties: dict[str, Attribute] = {
            "alpha": FloatAttr(alpha, f32),
            "beta": FloatAttr(beta, f32),
        }
        if trans_a:
            properties["trans_a"] = UnitAttr()
        if trans_b:
            properties["trans_b"] = UnitAttr()
        super().__init__(
            operands=[a, b, [c] if c else []],
            result_types=[f32_tensor((m, n))],
            properties=properties,
        )

    def verify_(self) -> None:
        check_tensors(self, [self.a, self.b, self.output], ["a", "b", "output"])
        a0, a1 = check_rank(self, self.a, "a", 2)
        b0, b1 = check_rank(self, self.b, "b", 2)
        m, ka = (a1, a0) if self.trans_a is not None else (a0, a1)
        kb, n = (b1, b0) if self.trans_b is not None else (b0, b1)
        if ka != kb:
            fail(self, f"inner dimensions differ: a gives K={ka}, b gives K={kb}")
        if tensor_shape(self.output) != (m, n):
            fail(self, f"output must have shape {[m, n]}, got {self.output.type}")
        if self.c is not None:
            check_tensors(self, [self.c], ["c"])
            if broadcast_shapes(tensor_shape(self.c), (m, n)) != (m, n):
                fail(
                    self, f"c of shape {list(tensor_shape(self.c))} does not broadcast to {[m, n]}"
                )


@irdl_op_definition
class LayerNormOp(IRDLOperation):
    """ONNX `LayerNormalization` (inference): normalise over the axes from `axis` to the last.

    input [d0, ..., dr-1]; scale and bias [d_axis, ..., dr-1] -> output like input:
    (x - mean) / sqrt(var + epsilon) * scale + bias, mean and (biased) var over those axes.
    """

    name = "conv.layer_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    epsilon = prop_def(FloatAttr)

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $scale `,` $bias attr-dict `:` type($input) `,` type($scale) `,` type($bias)"
        " `->` type($output)"
    )

    def __init__(
        self, input: SSAValue, scale: SSAValue, bias: SSAValue, axis: int, epsilon: float
    ) -> None:
        super().__init__(
            operands=[input, scale, bias],
            result_types=[input.type],
            properties={"axis": IntegerAttr(axis, i64), "epsilon": FloatAttr(epsilon, f32)},
        )

    def verify_(self) -> None:
        names = ["input", "scale", "bias", "output"]
        check_tensors(self, [self.input, self.scale, self.bias, self.output], names)
        shape, axis = tensor_shape(self.input), self.axis.value.data
        if not 0 <= axis < len(shape):
            fail(self, f"axis {axis} is out of range for rank {len(shape)}")
        for value, name in ((self.scale, "scale"), (self.bias, "bias")):
            if tensor_shape(value) != shape[axis:]:
                fail(self, f"{name} must have shape {list(shape[axis:])}, got {value.type}")
        if self.output.type != self.input.type:
            fail(self, f"output type {self.output.type} differs from input type")


@irdl_op_definition
class ConcatOp(IRDLOperation):
    """Concatenation of tensors of equal rank along `axis`."""

    name = "conv.concat"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = "$inputs attr-dict `:` type($inputs) `->` type($output)"

    def __init__(self, inputs: Sequence[SSAValue], axis: int) -> None:
        shapes = [tensor_shape(v) for v in inputs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        super().__init__(
            operands=[inputs],
            result_types=[f32_tensor(out)],
            properties={"axis": IntegerAttr(axis, i64)},
        )

    def verify_(self) -> None:
        if not self.inputs:
            fail(self, "needs at least one input")
        check_tensors(self, [*self.inputs, self.output], [*("input",) * len(self.inputs), "out"])
        shapes = [tensor_shape(v) for v in self.inputs]
        axis = self.axis.value.data
        rank = len(shapes[0])
        if not 0 <= axis < rank:
            fail(self, f"axis {axis} is out of range for rank {rank}")
        for shape in shapes:
            if len(shape) != rank or any(
                a != b for i, (a, b) in enumerate(zip(shape, shapes[0], strict=True)) if i != axis
            ):
                fail(self, f"input shapes {[list(s) for s in shapes]} differ off axis {axis}")
        expected = list(shapes[0])
        expected[axis] = sum(s[axis] for s in shapes)
        if list(tensor_shape(self.output)) != expected:
            fail(self, f"output must have shape {expected}, got {self.output.type}")


@irdl_op_definition
class ReshapeOp(UnaryOp):
    """Row-major reshape to the (static) result type; element counts must agree."""

    name = "conv.reshape"

    def __init__(self, input: SSAValue, shape: Sequence[int]) -> None:
        super().__init__(operands=[input], result_types=[f32_tensor(shape)])

    def verify_shapes(self) -> None:
        before, after = tensor_shape(self.input), tensor_shape(self.output)
        if volume(before) != volume(after):
            fail(
                self,
                f"cannot reshape {list(before)} ({volume(before)} elements) to "
                f"{list(after)} ({volume(after)} elements)",
            )


@irdl_op_definition
class TransposeOp(UnaryOp):
    """Permutation of axes: output.shape[i] = input.shape[perm[i]]."""

    name = "conv.transpose"
    perm = prop_def(DenseArrayBase[I64])

    def __init__(self, input: SSAValue, perm: Sequence[int]) -> None:
        shape = tensor_shape(input)
        super().__init__(
            operands=[input],
            result_types=[f32_tensor([shape[p] for p in perm])],
            properties={"perm": i64_array(perm)},
        )

    def verify_shapes(self) -> None:
        shape, perm = tensor_shape(self.input), ints(self.perm)
        if sorted(perm) != list(range(len(shape))):
            fail(self, f"perm {list(perm)} is not a permutation of the {len(shape)} axes")
        expected = [shape[p] for p in perm]
        if list(tensor_shape(self.output)) != expected:
            fail(self, f"output must have shape {expected}, got {self.output.type}")


@irdl_op_definition
class SoftmaxOp(UnaryOp):
    """Softmax along one `axis` (ONNX opset-13 semantics)."""

    name = "conv.softmax"
    axis = prop_def(IntegerAttr[I64])

    def __init__(self, input: SSAValue, axis: int) -> None:
        super().__init__(
            operands=[input], result_types=[input.type], properties={"axis": IntegerAttr(axis, i64)}
        )

    def verify_shapes(self) -> None:
        rank = len(tensor_shape(self.input))
        if not 0 <= self.axis.value.data < rank:
            fail(self, f"axis {self.axis.value.data} is out of range for rank {rank}")
        if self.output.type != self.input.type:
            fail(self, f"output type {self.output.type} differs from input type")


@irdl_op_definition
class LRNOp(UnaryOp):
    """Local response normalisation across channels (ONNX `LRN`), input [N, C, H, W]."""

    name = "conv.lrn"
    size = prop_def(IntegerAttr[I64])
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    bias = prop_def(FloatAttr)

    def __init__(self, input: SSAValue, size: int, alpha: float, beta: float, bias: float) -> None:
        super().__init__(
            operands=[input],
            result_types=[input.type],
            properties={
                "size": IntegerAttr(size, i64),
                "alpha": FloatAttr(alpha, f32),
                "beta": FloatAttr(beta, f32),
                "bias": FloatAttr(bias, f32),
            },
        )

    def verify_shapes(self) -> None:
        check_rank(self, self.input, "input", 4)
        if self.size.value.data < 1:
            fail(self, f"size must be >= 1, got {self.size.value.data}")
        if self.output.type != self.input.type:
            fail(self, f"output type {self.output.type} differs from input type")


@irdl_op_definition
class PadOp(UnaryOp):
    """Constant padding; pads = [begin_0..begin_r, end_0..end_r], negative values crop."""

    name = "conv.pad"
    pads = prop_def(DenseArrayBase[I64])
    value = prop_def(FloatAttr)

    def __init__(self, input: SSAValue, pads: Sequence[int], value: float = 0.0) -> None:
        super().__init__(
            operands=[input],
            result_types=[f32_tensor(padded_shape(tensor_shape(input), pads))],
            properties={"pads": i64_array(pads), "value": FloatAttr(value, f32)},
        )

    def verify_shapes(self) -> None:
        shape, pads = tensor_shape(self.input), ints(self.pads)
        if len(pads) != 2 * len(shape):
            fail(self, f"pads must have {2 * len(shape)} values, got {list(pads)}")
        expected = padded_shape(shape, pads)
        if min(expected, default=1) < 1 or tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")


@irdl_op_definition
class SliceOp(UnaryOp):
    """input[..., start:end, ...] along one `axis` (ONNX `Split` becomes one slice per part)."""

    name = "conv.slice"
    axis = prop_def(IntegerAttr[I64])
    start = prop_def(IntegerAttr[I64])
    end = prop_def(IntegerAttr[I64])

    def __init__(self, input: SSAValue, axis: int, start: int, end: int) -> None:
        shape = list(tensor_shape(input))
        shape[axis] = end - start
        super().__init__(
            operands=[input],
            result_types=[f32_tensor(shape)],
            properties={
                "axis": IntegerAttr(axis, i64),
                "start": IntegerAttr(start, i64),
                "end": IntegerAttr(end, i64),
            },
        )

    def verify_shapes(self) -> None:
        shape = list(tensor_shape(self.input))
        axis, start, end = self.axis.value.data, self.start.value.data, self.end.value.data
        if not 0 <= axis < len(shape):
            fail(self, f"axis {axis} is out of range for rank {len(shape)}")
        if not 0 <= start < end <= shape[axis]:
            fail(self, f"range [{start}, {end}) is not inside axis {axis} of size {shape[axis]}")
        shape[axis] = end - start
        if list(tensor_shape(self.output)) != shape:
            fail(self, f"output must have shape {shape}, got {self.output.type}")


@irdl_op_definition
class PackOp(UnaryOp):
    """NCHW -> NCHWc: [N, C, H, W] -> [N, ceil(C/block), H, W, block], channels zero-padded."""

    name = "conv.pack"
    block = prop_def(IntegerAttr[I64])

    def __init__(self, input: SSAValue, block: int) -> None:
        n, c, h, w = tensor_shape(input)
        super().__init__(
            operands=[input],
            result_types=[f32_tensor((n, -(-c // block), h, w, block))],
            properties={"block": IntegerAttr(block, i64)},
        )

    def verify_shapes(self) -> None:
        n, c, h, w = check_rank(self, self.input, "input", 4)
        block = self.block.value.data
        if block < 1:
            fail(self, f"block must be >= 1, got {block}")
        expected = (n, -(-c // block), h, w, block)
        if tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")


@irdl_op_definition
class UnpackOp(UnaryOp):
    """NCHWc -> NCHW: [N, C/block, H, W, block] -> [N, C, H, W], dropping padded channels."""

    name = "conv.unpack"

    def __init__(self, input: SSAValue, channels: int) -> None:
        n, _, h, w, _ = tensor_shape(input)
        super().__init__(operands=[input], result_types=[f32_tensor((n, channels, h, w))])

    def verify_shapes(self) -> None:
        n, cb, h, w, block = check_rank(self, self.input, "input", 5)
        on, c, oh, ow = check_rank(self, self.output, "output", 4)
        if (on, oh, ow) != (n, h, w) or not (cb - 1) * block < c <= cb * block:
            fail(
                self,
                f"output {list(tensor_shape(self.output))} does not unpack input "
                f"{list(tensor_shape(self.input))}",
            )


# conv.fused holds conv.conv2d ops: it lives in its own module, imported once Conv2DOp exists.
from convir.dialects.fused import FusedOp, YieldOp  # noqa: E402

Conv = Dialect(
    "conv",
    [
        ConstantOp,
        Conv2DOp,
        PoolOp,
        GlobalPoolOp,
        BinaryOp,
        ActivationOp,
        BatchNormOp,
        GemmOp,
        LayerNormOp,
        ConcatOp,
        ReshapeOp,
        TransposeOp,
        SoftmaxOp,
        LRNOp,
        PadOp,
        SliceOp,
        PackOp,
        UnpackOp,
        ReduceOp,
        ResizeOp,
        ConvTransposeOp,
        InterleaveOp,
        FusedOp,
        YieldOp,
    ],
    [],
)
