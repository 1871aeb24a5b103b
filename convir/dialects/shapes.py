"""Shape arithmetic shared by the conv dialect's builders and verifiers, the importer and the
reference: static tensor types, window sizes, broadcasting."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DenseArrayBase, TensorType, f32, i64
from xdsl.ir import Attribute, SSAValue


def tensor_shape(value: SSAValue | Attribute) -> tuple[int, ...]:
    """The static shape of a tensor value or type."""
    tensor_type = value.type if isinstance(value, SSAValue) else value
    assert isinstance(tensor_type, TensorType)
    return tuple(tensor_type.get_shape())


def f32_tensor(shape: Sequence[int]) -> TensorType:
    """`tensor<shape x f32>`."""
    return TensorType(f32, list(shape))


def i64_array(values: Sequence[int]) -> DenseArrayBase:
    """`array<i64: ...>`."""
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def volume(shape: Sequence[int]) -> int:
    """The number of elements of a tensor of `shape`."""
    count = 1
    for d in shape:
        count *= d
    return count


def window_output_size(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int, ceil: bool
) -> int:
    """Output extent of a convolution or pooling window along one axis (ONNX semantics).

    With `ceil`, a last window that would start inside the end padding is dropped, as ONNX and
    PyTorch do. The result may be < 1; callers report that as an error.
    """
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def blocked_shape(shape: Sequence[int], block: int) -> tuple[int, ...]:
    """NCHW -> NCHWc: [N, C, H, W] -> [N, ceil(C/block), H, W, block]."""
    n, c, h, w = shape
    return (n, -(-c // block), h, w, block)


def is_blocked(shape: Sequence[int]) -> bool:
    """Whether a tensor shape is NCHWc ([N, C/X, H, W, X]) rather than NCHW."""
    return len(shape) == 5


def conv2d_output_shape(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> tuple[int, ...]:
    """[N, O, OH, OW] of a convolution (extents may be < 1 for an invalid one).

    An NCHWc input [N, C/X, H, W, X] gives an NCHWc output [N, ceil(O/X), OH, OW, X].
    """
    n, _, h, w = input_shape[:4]
    o, _, kh, kw = weight_shape
    oh = window_output_size(h, kh, strides[0], pads[0], pads[2], dilations[0], False)
    ow = window_output_size(w, kw, strides[1], pads[1], pads[3], dilations[1], False)
    if is_blocked(input_shape):
        return blocked_shape((n, o, oh, ow), input_shape[4])
    return (n, o, oh, ow)


def pool2d_output_shape(
    input_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
) -> tuple[int, ...]:
    """[N, C, OH, OW] (or NCHWc [N, C/X, OH, OW, X]) of a pooling window (extents may be < 1)."""
    n, c, h, w = input_shape[:4]
    oh, ow = (
        window_output_size(
            size, kernel[i], strides[i], pads[i], pads[i + 2], dilations[i], ceil_mode
        )
        for i, size in enumerate((h, w))
    )
    return (n, c, oh, ow, *input_shape[4:])


def broadcast_shapes(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """numpy broadcasting of two shapes, or None when they do not broadcast."""
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y) if 0 not in (x, y) else 0)
    return tuple(out)


def padded_shape(shape: Sequence[int], pads: Sequence[int]) -> tuple[int, ...]:
    """The shape after `conv.pad` with ONNX-ordered `pads` [begin_0.., end_0..]."""
    rank = len(shape)
    return tuple(d + pads[i] + pads[i + rank] for i, d in enumerate(shape))


def conv_transpose_output_size(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int, extra: int
) -> int:
    """Output extent of a transposed convolution along one axis (ONNX `ConvTranspose`):
    stride * (size - 1) + extra + dilation * (kernel - 1) + 1 - pads, `extra` being
    `output_padding`. The result may be < 1; callers report that as an error."""
    return stride * (size - 1) + extra + dilation * (kernel - 1) + 1 - pad_begin - pad_end


def conv_transpose_output_shape(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    output_padding: Sequence[int],
    group: int,
) -> tuple[int, ...]:
    """[N, O, OH, OW] of a transposed convolution with weight [C, O/group, KH, KW] (extents may
    be < 1 for an invalid one)."""
    n, _, h, w = input_shape
    _, outputs_per_group, kh, kw = weight_shape
    oh, ow = (
        conv_transpose_output_size(
            size, kernel, strides[i], pads[i], pads[i + 2], dilations[i], output_padding[i]
        )
        for i, (size, kernel) in enumerate(((h, kh), (w, kw)))
    )
    return (n, outputs_per_group * group, oh, ow)
