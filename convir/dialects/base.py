"""What the modules of the conv dialect (`conv`, `resampling`, `fused`) share: `UnaryOp`, the base
of the ops with one tensor operand and one result, and the verifiers' checks, each raising
`VerifyException` with a message that names the op."""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence

from xdsl.dialects.builtin import DenseArrayBase, Float32Type, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.irdl import IRDLOperation, ParsePropInAttrDict, operand_def, result_def, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from convir.dialects.shapes import tensor_shape


def ints(attr: DenseArrayBase) -> tuple[int, ...]:
    """The values of a dense i64 array attribute."""
    return tuple(int(v) for v in attr.iter_values())


def fail(op: Operation, message: str) -> None:
    """Raise the verifier error of `op`."""
    raise VerifyException(f"'{op.name}' {message}")


def check_tensors(op: Operation, values: Sequence[SSAValue], names: Sequence[str]) -> None:
    """Static shapes and f32 elements for every data operand and result."""
    for value, name in zip(values, names, strict=True):
        tensor_type = value.type
        if not isinstance(tensor_type, TensorType) or not isinstance(
            tensor_type.get_element_type(), Float32Type
        ):
            fail(op, f"{name} must be a tensor of f32, got {tensor_type}")
        assert isinstance(tensor_type, TensorType)
        if any(d < 0 for d in tensor_type.get_shape()):
            fail(op, f"{name} must have a static shape, got {tensor_type}")


def check_rank(op: Operation, value: SSAValue, name: str, rank: int) -> tuple[int, ...]:
    """The shape of `value`, which must have rank `rank`."""
    shape = tensor_shape(value)
    if len(shape) != rank:
        fail(op, f"{name} must have rank {rank}, got shape {list(shape)}")
    return shape


def check_activation_rank(op: Operation, value: SSAValue) -> tuple[int, ...]:
    """An activation tensor: NCHW (rank 4) or NCHWc (rank 5)."""
    shape = tensor_shape(value)
    if len(shape) not in (4, 5):
        fail(op, f"input must be NCHW (rank 4) or NCHWc (rank 5), got shape {list(shape)}")
    return shape


def blocked_channels(op: Operation, shape: Sequence[int], channels: int) -> int:
    """Check that `channels` logical channels fill the NCHWc `shape`'s blocks; return them."""
    blocks, block = shape[1], shape[4]
    if block < 1 or not (blocks - 1) * block < channels <= blocks * block:
        fail(op, f"NCHWc input {list(shape)} cannot hold {channels} channels")
    return channels


def check_count(op: Operation, name: str, values: Sequence[int], count: int, low: int) -> None:
    """`count` values, each at least `low`."""
    if len(values) != count:
        fail(op, f"{name} must have {count} values, got {list(values)}")
    if any(v < low for v in values):
        fail(op, f"{name} must all be >= {low}, got {list(values)}")


def check_kind(op: Operation, kind: str, known: Sequence[str]) -> None:
    """`kind` is one of `known`."""
    if kind not in known:
        fail(op, f"kind '{kind}' is unknown; expected one of {', '.join(known)}")


class UnaryOp(IRDLOperation, ABC):
    """Base of the ops with one tensor operand and one tensor result."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($output)"

    def verify_(self) -> None:
        check_tensors(self, [self.input, self.output], ["input", "output"])
        self.verify_shapes()

    def verify_shapes(self) -> None:
        """Op-specific checks, run after operand and result types are known to be f32 tensors."""
