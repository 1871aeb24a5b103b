"""conv-dialect ops that change a tensor's extent: reductions (`conv.reduce`), resizing
(`conv.resize`), transposed convolution (`conv.conv_transpose`) and the phase interleave it
lowers to (`conv.interleave`). Part of the `conv` dialect (`convir.dialects.conv` registers and
re-exports them); in their own module to keep each module to one idea.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    Float32Type,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i64,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
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
from xdsl.traits import Pure

from convir.dialects.base import (
    UnaryOp,
    check_activation_rank,
    check_count,
    check_kind,
    check_rank,
    check_tensors,
    fail,
    ints,
)
from convir.dialects.shapes import conv_transpose_output_shape, f32_tensor, i64_array, tensor_shape

# ---------------------------------------------------------------------------------------------
# Reductions and resampling (ReduceMean/Max/Sum, Resize/Upsample)

REDUCE_KINDS = ("mean", "max", "sum")
RESIZE_MODES = ("nearest", "linear")
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> tuple[int, ...]:
    """The shape of a reduction of `shape` over `axes`: extent 1 there, or dropped."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@irdl_op_definition
class ReduceOp(UnaryOp):
    """Mean, max or sum over `axes` (ONNX `ReduceMean`/`ReduceMax`/`ReduceSum`).

    input [d0, ..., dr] -> output with extent 1 at each of `axes` (`keepdims`) or those axes
    dropped. `axes` are sorted, distinct and non-empty (the importer resolves ONNX's defaults).
    On NCHWc ([N, C/X, H, W, X]) only axes that leave the channel axes alone, with `keepdims`,
    keep the layout (see `conv-convert-layout`); the op itself reduces any rank.
    """

    name = "conv.reduce"
    kind = prop_def(StringAttr)
    axes = prop_def(DenseArrayBase[I64])
    keepdims = opt_prop_def(UnitAttr)

    def __init__(self, input: SSAValue, kind: str, axes: Sequence[int], keepdims: bool) -> None:
        properties: dict[str, Attribute] = {"kind": StringAttr(kind), "axes": i64_array(axes)}
        if keepdims:
            properties["keepdims"] = UnitAttr()
        shape = reduced_shape(tensor_shape(input), axes, keepdims)
        super().__init__(operands=[input], result_types=[f32_tensor(shape)], properties=properties)

    def verify_shapes(self) -> None:
        check_kind(self, self.kind.data, REDUCE_KINDS)
        shape, axes = tensor_shape(self.input), ints(self.axes)
        if not axes or list(axes) != sorted(set(axes)) or not 0 <= axes[0] <= axes[-1] < len(shape):
            fail(
                self,
                f"axes {list(axes)} must be sorted, distinct, non-empty axes of rank {len(shape)}",
            )
        expected = reduced_shape(shape, axes, self.keepdims is not None)
        if tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")


# --- transposed convolution (ONNX ConvTranspose) and the phase interleave it lowers to ---------


@irdl_op_definition
class ConvTransposeOp(IRDLOperation):
    """2-D transposed convolution, ONNX `ConvTranspose` semantics (the gradient of `conv.conv2d`).

    input [N, C, H, W], weight [C, O/group, KH, KW], optional bias [O] -> output [N, O, OH, OW]
    with OH = strides[0] * (H - 1) + output_padding[0] + dilations[0] * (KH - 1) + 1 - top -
    bottom (likewise OW): input pixel (ih, iw) scatters weight tap (kh, kw) to output
    (ih * stride + kh * dilation - top, ...). Pads [top, left, bottom, right] crop the full
    output; `output_padding` extends it at the end. NCHW only: `conv-lower-conv-transpose`
    rewrites it into `conv.conv2d`s and a `conv.interleave` before any layout change.
    """

    name = "conv.conv_transpose"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)

    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])
    output_padding = prop_def(DenseArrayBase[I64])
    group = prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $weight (`bias` $bias^)? attr-dict"
        " `:` type($input) `,` type($weight) (`bias` type($bias)^)? `->` type($output)"
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
        output_padding: Sequence[int] = (0, 0),
        group: int = 1,
    ) -> None:
        super().__init__(
            operands=[input, weight, [bias] if bias else []],
            result_types=[
                f32_tensor(
                    conv_transpose_output_shape(
                        tensor_shape(input),
                        tensor_shape(weight),
                        strides,
                        pads,
                        dilations,
                        output_padding,
                        group,
                    )
                )
            ],
            properties={
                "strides": i64_array(strides),
                "pads": i64_array(pads),
                "dilations": i64_array(dilations),
                "output_padding": i64_array(output_padding),
                "group": IntegerAttr(group, i64),
            },
        )

    def verify_(self) -> None:
        check_tensors(self, [self.input, self.weight, self.output], ["input", "weight", "output"])
        input_shape = check_rank(self, self.input, "input", 4)
        weight_shape = check_rank(self, self.weight, "weight", 4)
        strides, pads, dilations = ints(self.strides), ints(self.pads), ints(self.dilations)
        output_padding = ints(self.output_padding)
        check_count(self, "strides", strides, 2, 1)
        check_count(self, "dilations", dilations, 2, 1)
        check_count(self, "pads", pads, 4, 0)
        check_count(self, "output_padding", output_padding, 2, 0)
        group = self.group.value.data
        if group < 1 or input_shape[1] % group:
            fail(self, f"group {group} must divide input channels {input_shape[1]}")
        if weight_shape[0] != input_shape[1]:
            fail(
                self,
                f"weight [C, O/group, KH, KW] = {list(weight_shape)} must have C = "
                f"{input_shape[1]} input channels",
            )
        if self.bias is not None:
            check_tensors(self, [self.bias], ["bias"])
            outputs = weight_shape[1] * group
            if tensor_shape(self.bias) != (outputs,):
                fail(self, f"bias must have shape [{outputs}], got {self.bias.type}")
        expected = conv_transpose_output_shape(
            input_shape, weight_shape, strides, pads, dilations, output_padding, group
        )
        if min(expected[2:]) < 1:
            fail(self, f"pads {list(pads)} crop the whole output (extents {list(expected[2:])})")
        if tensor_shape(self.output) != expected:
            fail(self, f"output must have shape {list(expected)}, got {self.output.type}")


@irdl_op_definition
class ResizeOp(UnaryOp):
    """Spatial resampling, ONNX `Resize` (opsets 10-19) and `Upsample` semantics.

    input [N, C, H, W] -> output [N, C, OH, OW] (NCHWc [N, C/X, H, W, X] -> [N, C/X, OH, OW, X]).
    The output extents are the result type's; `scales` [sh, sw] enter only the map from an output
    coordinate to an input one (`coordinate_transformation_mode`, one of COORDINATE_MODES, as in
    ONNX). `mode` "nearest" picks one input pixel by `nearest_mode` (one of NEAREST_MODES, given
    only then); "linear" interpolates bilinearly between the four neighbours, clamped to the edge.
    """

    name = "conv.resize"
    mode = prop_def(StringAttr)
    coordinate_transformation_mode = prop_def(StringAttr)
    nearest_mode = opt_prop_def(StringAttr)
    scales = prop_def(DenseArrayBase)

    def __init__(
        self,
        input: SSAValue,
        size: Sequence[int],
        scales: Sequence[float],
        mode: str,
        coordinate_transformation_mode: str,
        nearest_mode: str | None = None,
    ) -> None:
        properties: dict[str, Attribute] = {
            "mode": StringAttr(mode),
            "coordinate_transformation_mode": StringAttr(coordinate_transformation_mode),
            "scales": DenseArrayBase.from_list(f32, [float(s) for s in scales]),
        }
        if nearest_mode is not None:
            properties["nearest_mode"] = StringAttr(nearest_mode)
        n, c, _, _, *block = tensor_shape(input)
        super().__init__(
            operands=[input],
            result_types=[f32_tensor((n, c, *size, *block))],
            properties=properties,
        )

    def verify_shapes(self) -> None:
        n, c, _, _, *block = check_activation_rank(self, self.input)
        mode = self.mode.data
        check_kind(self, mode, RESIZE_MODES)
        coordinate_mode = self.coordinate_transformation_mode.data
        if coordinate_mode not in COORDINATE_MODES:
            fail(
                self,
                f"coordinate_transformation_mode '{coordinate_mode}' is unknown; expected one of "
                f"{', '.join(COORDINATE_MODES)}",
            )
        nearest = self.nearest_mode.data if self.nearest_mode is not None else None
        if mode == "nearest" and nearest not in NEAREST_MODES:
            fail(self, f"nearest_mode must be one of {', '.join(NEAREST_MODES)}, got {nearest}")
        if mode != "nearest" and nearest is not None:
            fail(self, f"nearest_mode is given for mode '{mode}'; only nearest reads it")
        if not isinstance(self.scales.elt_type, Float32Type):
            fail(self, f"scales must be an array of f32, got {self.scales}")
        scales = [float(s) for s in self.scales.iter_values()]
        if len(scales) != 2 or min(scales) <= 0:
            fail(self, f"scales must be 2 positive values [sh, sw], got {scales}")
        output = tensor_shape(self.output)
        if len(output) != 4 + len(block) or (*output[:2], *output[4:]) != (n, c, *block):
            fail(self, f"output {list(output)} must keep the input's batch and channels")
        if min(output[2:4]) < 1:
            fail(self, f"output extents {list(output[2:4])} must be >= 1")


@irdl_op_definition
class InterleaveOp(IRDLOperation):
    """Weave the phases of a strided output together (a pixel shuffle): phase (a, b) holds the
    output rows a, a + strides[0], ... and columns b, b + strides[1], ....

    inputs: one phase per (a, b), row-major, a < min(strides[0], OH), b < min(strides[1], OW),
    each [N, C, ceil((OH - a) / strides[0]), ceil((OW - b) / strides[1])] (or NCHWc) ->
    output [N, C, OH, OW]: output[.., a + strides[0] * i, b + strides[1] * j] = phase[.., i, j].
    Every output element comes from exactly one phase. What `conv-lower-conv-transpose`
    assembles a transposed convolution's output from.
    """

    name = "conv.interleave"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    strides = prop_def(DenseArrayBase[I64])

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = "$inputs attr-dict `:` type($inputs) `->` type($output)"

    def __init__(
        self, inputs: Sequence[SSAValue], strides: Sequence[int], output_hw: Sequence[int]
    ) -> None:
        shape = list(tensor_shape(inputs[0]))
        shape[2:4] = output_hw
        super().__init__(
            operands=[inputs],
            result_types=[f32_tensor(shape)],
            properties={"strides": i64_array(strides)},
        )

    def verify_(self) -> None:
        strides = ints(self.strides)
        check_count(self, "strides", strides, 2, 1)
        check_tensors(self, [*self.inputs, self.output], [*("input",) * len(self.inputs), "output"])
        output = check_activation_rank(self, self.output)
        phases_h, phases_w = min(strides[0], output[2]), min(strides[1], output[3])
        if len(self.inputs) != phases_h * phases_w:
            fail(self, f"needs {phases_h * phases_w} phases, got {len(self.inputs)}")
        for index, value in enumerate(self.inputs):
            first_h, first_w = divmod(index, phases_w)
            expected = list(output)
            expected[2] = -(-(output[2] - first_h) // strides[0])
            expected[3] = -(-(output[3] - first_w) // strides[1])
            if list(tensor_shape(value)) != expected:
                fail(
                    self,
                    f"phase ({first_h}, {first_w}) must have shape {expected}, got {value.type}",
                )
