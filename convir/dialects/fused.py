"""`conv.fused` and its terminator `conv.yield`: a chain of two convs run as one tiled kernel.

Layer fusion (`passes.fuse_layers`) wraps a conv whose result only feeds a second conv, and that
second conv, in one op. The op is isolated from above: its operands are the first conv's input,
then the other operands the two convs read (weights, biases, the second's residual), in the
order the region's block arguments list them; the region holds exactly the two `conv.conv2d`
ops (with their epilogues) and a `conv.yield` of the second's result:

    %y = conv.fused %x, %w1, %b1, %w2 {algorithm = "fused", schedule = {...}}
           : (tensor<1x4x56x56x8xf32>, tensor<32x1x3x3xf32>, ...) -> tensor<1x2x56x56x8xf32> {
    ^bb0(%a: tensor<1x4x56x56x8xf32>, %wa: tensor<32x1x3x3xf32>, ...):
      %t = conv.conv2d %a, %wa bias %ba {...} : ... -> tensor<1x4x56x56x8xf32>
      %o = conv.conv2d %t, %wb {...} : ... -> tensor<1x2x56x56x8xf32>
      conv.yield %o : tensor<1x2x56x56x8xf32>
    }

Its value is the region's: the reference (`convir.reference`) runs the two convs in order. The
`algorithm` ("fused") and `schedule` are those of `lowering.algorithms.fused`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DictionaryAttr, StringAttr, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    opt_prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import IsolatedFromAbove, IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from convir.dialects.conv import Conv2DOp

#: The chain types layer fusion knows (Lin et al., Euro-Par 2021): depthwise 3×3 then 1×1,
#: dense 3×3 then 1×1, dense 3×3 then 3×3.
FUSION_TYPES = ("dw3x3_1x1", "3x3_1x1", "3x3_3x3")


def _fail(op: Operation, message: str) -> None:
    raise VerifyException(f"'{op.name}' {message}")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """The terminator of a `conv.fused` region: the region's (the op's) result."""

    name = "conv.yield"
    values = var_operand_def(TensorType)
    traits = traits_def(IsTerminator(), Pure())
    assembly_format = "$values attr-dict `:` type($values)"

    def __init__(self, value: SSAValue) -> None:
        super().__init__(operands=[[value]])

    def verify_(self) -> None:
        if not isinstance(self.parent_op(), FusedOp):
            _fail(self, "must be the terminator of a conv.fused region")


@irdl_op_definition
class FusedOp(IRDLOperation):
    """Two convs, the first's result feeding only the second, computed as one kernel.

    inputs: the first conv's input, then weights, biases and residual in block-argument order
    -> output: the second conv's result. See the module docstring.
    """

    name = "conv.fused"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    body = region_def("single_block")
    algorithm = opt_prop_def(StringAttr)
    schedule = opt_prop_def(DictionaryAttr)

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(IsolatedFromAbove(), Pure())
    assembly_format = "$inputs attr-dict `:` functional-type($inputs, $output) $body"

    def __init__(self, inputs: Sequence[SSAValue], body: Region) -> None:
        result = body.block.last_op
        assert isinstance(result, YieldOp)
        super().__init__(
            operands=[list(inputs)], result_types=[result.values[0].type], regions=[body]
        )

    @property
    def convs(self) -> tuple[Conv2DOp, Conv2DOp]:
        """The first and the second conv of the region (call only on a verified op)."""
        first, second = list(self.body.block.ops)[:2]
        assert isinstance(first, Conv2DOp) and isinstance(second, Conv2DOp)
        return first, second

    def operand_of(self, value: SSAValue) -> SSAValue:
        """The operand of this op that block argument `value` stands for."""
        return self.inputs[self.body.block.args.index(value)]

    def verify_(self) -> None:
        block = self.body.block
        if len(block.args) != len(self.inputs):
            _fail(self, f"has {len(self.inputs)} operands but its block {len(block.args)} args")
        for i, (arg, operand) in enumerate(zip(block.args, self.inputs, strict=True)):
            if arg.type != operand.type:
                _fail(self, f"block argument {i} has type {arg.type}, operand {operand.type}")
        ops = list(block.ops)
        if len(ops) != 3 or not all(isinstance(op, Conv2DOp) for op in ops[:2]):
            names = ", ".join(op.name for op in ops)
            _fail(self, f"region must hold two conv.conv2d and a conv.yield, got {names}")
        first, second, terminator = ops
        assert isinstance(first, Conv2DOp) and isinstance(second, Conv2DOp)
        for conv_op, which in ((first, "first"), (second, "second")):
            for operand in conv_op.operands:
                inner = operand is first.output and conv_op is second
                if not inner and operand not in block.args:
                    _fail(self, f"{which} conv reads a value that is not a block argument")
        if first.input is not block.args[0]:
            _fail(self, "first conv must read the op's first operand (block argument 0)")
        if first.residual is not None:
            _fail(self, "first conv must not have a residual (only the second may)")
        if second.input is not first.output:
            _fail(self, "second conv must read the first conv's result as its input")
        if len(list(first.output.uses)) != 1:
            _fail(self, "first conv's result must be used only by the second conv as input")
        if not isinstance(terminator, YieldOp) or list(terminator.values) != [second.output]:
            _fail(self, "region must end with conv.yield of the second conv's result")
        if self.output.type != second.output.type:
            _fail(self, f"result type {self.output.type} differs from {second.output.type}")


def fused_region(inputs: Sequence[SSAValue], first: Conv2DOp, second: Conv2DOp) -> Region:
    """A `conv.fused` body computing `second(first(...))`: clones of the two convs reading
    block arguments that stand for `inputs` (the values the originals read), and a yield."""
    block = Block(arg_types=[value.type for value in inputs])
    mapping = dict(zip(inputs, block.args, strict=True))
    first_clone = first.clone(value_mapper=mapping)
    block.add_op(first_clone)
    mapping[first.output] = first_clone.output
    second_clone = second.clone(value_mapper=mapping)
    block.add_op(second_clone)
    block.add_op(YieldOp(second_clone.output))
    return Region(block)


def chain_type(first: Conv2DOp, second: Conv2DOp) -> str | None:
    """Which of FUSION_TYPES `second(first(x))` is, or None: both convs on NCHWc, the first a
    3×3 (any stride and pads, dilation 1; depthwise or group 1) without a residual, the second
    with stride 1, dilation 1 and group 1 — a 1×1 without padding or, after a dense first, a
    3×3. Uses and constness of the operands are the caller's business."""
    from convir.dialects.shapes import is_blocked, tensor_shape

    def ints(attr) -> tuple[int, ...]:
        return tuple(int(v) for v in attr.iter_values())

    shapes = [tensor_shape(v) for v in (first.input, first.output, second.output)]
    if not all(is_blocked(shape) and len(shape) == 5 for shape in shapes):
        return None
    if first.residual is not None or ints(first.dilations) != (1, 1):
        return None
    if ints(second.strides) != (1, 1) or ints(second.dilations) != (1, 1):
        return None
    if second.group.value.data != 1 or tensor_shape(first.weight)[2:] != (3, 3):
        return None
    out_channels, per_group = tensor_shape(first.weight)[:2]
    group = first.group.value.data
    depthwise = per_group == 1 and group == out_channels
    second_kernel = tensor_shape(second.weight)[2:]
    pointwise = second_kernel == (1, 1) and not any(ints(second.pads))
    if depthwise:
        return "dw3x3_1x1" if pointwise else None
    if group != 1:
        return None
    if pointwise:
        return "3x3_1x1"
    return "3x3_3x3" if second_kernel == (3, 3) else None
