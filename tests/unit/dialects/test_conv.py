"""Builders of the conv dialect infer result shapes that their verifiers accept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.ir import Block

from convir import reference
from convir.dialects import conv
from convir.dialects.shapes import f32_tensor, tensor_shape, window_output_size


def _block(*shapes) -> Block:
    return Block(arg_types=[f32_tensor(s) for s in shapes])


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 20),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 3),
    pad_begin=st.integers(0, 3),
    pad_end=st.integers(0, 3),
    dilation=st.integers(1, 3),
    ceil=st.booleans(),
)
def test_window_output_size_agrees_with_the_reference(
    size, kernel, stride, pad_begin, pad_end, dilation, ceil
) -> None:
    ours = window_output_size(size, kernel, stride, pad_begin, pad_end, dilation, ceil)
    try:
        expected = reference.pool2d_output_size(
            size, kernel, stride, pad_begin, pad_end, dilation, ceil
        )
    except ValueError:
        assert ours < 1
    else:
        assert ours == expected


def test_builders_produce_verified_ops() -> None:
    block = _block((1, 6, 9, 11), (4, 3, 3, 3), (4,))
    x, w, b = block.args
    ops = [
        conv.Conv2DOp(x, w, b, strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2), group=2),
        conv.PoolOp(x, "max", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True),
        conv.GlobalPoolOp(x, "avg"),
        conv.ActivationOp(x, "leaky_relu", 0.1),
        conv.PackOp(x, 8),
        conv.PadOp(x, (0, 0, 1, 1, 0, 0, 2, 2)),
        conv.SliceOp(x, 1, 2, 5),
        conv.TransposeOp(x, (0, 2, 3, 1)),
        conv.ConcatOp([x, x], 1),
        conv.ReshapeOp(x, (1, 594)),
        conv.LRNOp(x, 5, 1e-4, 0.75, 1.0),
        conv.SoftmaxOp(x, 1),
    ]
    for op in ops:
        op.verify()
    assert tensor_shape(ops[0].output) == (1, 4, 5, 8)
    assert tensor_shape(ops[4].output) == (1, 1, 9, 11, 8)
    unpack = conv.UnpackOp(ops[4].output, 6)
    unpack.verify()
    assert tensor_shape(unpack.output) == (1, 6, 9, 11)


def test_binary_builder_refuses_shapes_that_do_not_broadcast() -> None:
    x, y = _block((1, 3, 4, 4), (1, 5, 1, 1)).args
    with pytest.raises(
        ValueError, match=r"shapes \[1, 3, 4, 4\] and \[1, 5, 1, 1\] do not broadcast"
    ):
        conv.BinaryOp(x, y, "add")


def test_dialect_and_reference_agree_on_kinds() -> None:
    assert set(conv.ACTIVATION_KINDS) == set(reference.ACTIVATIONS)
    assert set(conv.BINARY_KINDS) == set(reference.BINARY_KINDS)
    assert set(conv.POOL_KINDS) == set(reference.POOL_KINDS)
