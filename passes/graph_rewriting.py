"""IR helpers the graph passes share: reading and making constants, rebuilding a conv."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from xdsl.context import Context
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import AttrSizedOperandSegments
from xdsl.pattern_rewriter import PatternRewriter

from convir.dialects import conv
from convir.dialects.resources import constant_array, resource_attr


def constant_value(ctx: Context, value: SSAValue | None) -> np.ndarray | None:
    """The array behind `value` if a `conv.constant` defines it and its data is in `ctx`.

    None for a computed value, and for a `dense_resource` printed without its blob: an unknown
    constant cannot be folded, so patterns treat it like a computed value and leave it alone.
    """
    if value is None or not isinstance(value.owner, conv.ConstantOp):
        return None
    try:
        return constant_array(ctx, value.owner.value)
    except ValueError:
        return None


def new_constant(ctx: Context, name: str, array: np.ndarray) -> conv.ConstantOp:
    """A `conv.constant` (not yet inserted) holding `array` as float32 in `ctx`'s resource store,
    under a fresh handle derived from `name`, as the ONNX importer makes its constants."""
    op = conv.ConstantOp(resource_attr(ctx, name, array))
    op.output.name_hint = op.value.resource_handle.data
    return op


def erase_dead_constants(values: Iterable[SSAValue | None], rewriter: PatternRewriter) -> None:
    """Erase the `conv.constant` ops defining `values` that no longer have any use."""
    for value in values:
        owner = None if value is None else value.owner
        if (
            isinstance(owner, conv.ConstantOp)
            and owner.parent is not None
            and owner.output.first_use is None
        ):
            rewriter.erase(owner)


def conv_with(
    op: conv.Conv2DOp,
    *,
    weight: SSAValue | None = None,
    bias: SSAValue | None = None,
    residual: SSAValue | None = None,
    properties: Mapping[str, Attribute] | None = None,
) -> conv.Conv2DOp:
    """A new conv (not yet inserted) like `op`, with the operands given replaced (None keeps
    `op`'s) and `properties` set on top of `op`'s; discardable attributes are copied."""
    kept = {
        name: value
        for name, value in op.properties.items()
        if name != AttrSizedOperandSegments.attribute_name
    }
    new = conv.Conv2DOp.build(
        operands=[
            op.input,
            op.weight if weight is None else weight,
            op.bias if bias is None else bias,
            op.residual if residual is None else residual,
        ],
        result_types=[op.output.type],
        properties={**kept, **(properties or {})},
        attributes=dict(op.attributes),
    )
    new.output.name_hint = op.output.name_hint
    return new
