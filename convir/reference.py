"""Numpy reference semantics of every conv-dialect op: the oracle for tests and tuning.

Arrays are NCHW, or NCHWc ([N, C/X, H, W, X]) where an op's types say so: convs, pools and
global pools on NCHWc are evaluated by unpacking, computing in NCHW and packing again, so padded
lanes of their results are zero here (compiled kernels may leave other values there; nothing
reads padded lanes). Compute kernels take float32 and return float32. Everything is computed in
float64 and rounded to float32 once at the end, so the reference is at least as accurate as any
compiled kernel compared against it. Spatial pads are always four values in ONNX order
[top, left, bottom, right].
"""

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Operation, SSAValue

from convir.dialects import conv, default_context, onnx_names
from convir.dialects.conv import POOL_KINDS
from convir.dialects.resampling import COORDINATE_MODES, NEAREST_MODES, REDUCE_KINDS, RESIZE_MODES
from convir.dialects.resources import constant_array
from convir.dialects.shapes import is_blocked, tensor_shape, window_output_size


def _check_kind(kind: str, known: Sequence[str], what: str) -> None:
    """Raise ValueError naming `kind` and the known kinds if `kind` is not one of them."""
    if kind not in known:
        raise ValueError(f"unknown {what} kind {kind!r}; expected one of: {', '.join(known)}")


def _check_window(
    in_size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int
) -> None:
    """Raise ValueError unless a dilated window fits the padded input at least once."""
    if in_size < 1 or kernel < 1 or stride < 1 or dilation < 1 or min(pad_begin, pad_end) < 0:
        raise ValueError(
            f"need in_size, kernel, stride, dilation >= 1 and pads >= 0; got in_size={in_size}, "
            f"kernel={kernel}, stride={stride}, pads=({pad_begin}, {pad_end}), dilation={dilation}"
        )
    extent = dilation * (kernel - 1) + 1
    padded = in_size + pad_begin + pad_end
    if extent > padded:
        raise ValueError(
            f"dilated kernel extent {extent} exceeds padded input size {padded}: output would be "
            "empty"
        )


def conv2d_output_size(
    in_size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int
) -> int:
    """Return one spatial output size of a convolution: floor(room / stride) + 1.

    Raises ValueError if the output would be smaller than 1 or a parameter is out of range.
    """
    _check_window(in_size, kernel, stride, pad_begin, pad_end, dilation)
    return window_output_size(in_size, kernel, stride, pad_begin, pad_end, dilation, False)


def pool2d_output_size(
    in_size: int,
    kernel: int,
    stride: int,
    pad_begin: int,
    pad_end: int,
    dilation: int,
    ceil_mode: bool,
) -> int:
    """Return one spatial output size of MaxPool/AveragePool as ONNX Runtime and PyTorch compute it.

    With `ceil_mode` the size is rounded up, then a last window that would start inside the end
    padding is dropped. (ONNX shape inference omits that drop; ONNX Runtime applies it.)
    Raises ValueError if the output would be smaller than 1 or a parameter is out of range.
    """
    _check_window(in_size, kernel, stride, pad_begin, pad_end, dilation)
    return window_output_size(in_size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode)


def _windows(
    padded: np.ndarray,
    out_hw: tuple[int, int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> np.ndarray:
    """View [..., Hp, Wp] as [..., OH, OW, KH, KW] dilated, strided windows without copying."""
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True))
    view = sliding_window_view(padded, extent, axis=(-2, -1))
    (out_h, out_w), (stride_h, stride_w), (dil_h, dil_w) = out_hw, strides, dilations
    return view[..., : out_h * stride_h : stride_h, : out_w * stride_w : stride_w, ::dil_h, ::dil_w]


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    group: int = 1,
) -> np.ndarray:
    """ONNX Conv: x [N, C, H, W], w [O, C/group, KH, KW], b [O] or None -> [N, O, OH, OW].

    Padded positions are absent, not zeros: a tap that falls in the padding forms no product,
    so an Inf or NaN weight there does not turn the output into NaN (0 · Inf), as in ONNX
    Runtime's NCHWc kernels and the ONNX definition. Whether a tap is padding depends only on
    (tap, output pixel), so the sum runs per tap: one batched float64 matmul per tap over the
    zero-padded input, whose result is dropped where that tap is padding.
    """
    n, channels, height, width = x.shape
    out_channels, group_channels, kernel_h, kernel_w = w.shape
    if group < 1 or channels != group_channels * group or out_channels % group:
        raise ValueError(
            f"conv2d: input channels {channels} and weight shape {w.shape} do not fit group={group}"
        )
    top, left, bottom, right = pads
    out_h = conv2d_output_size(height, kernel_h, strides[0], top, bottom, dilations[0])
    out_w = conv2d_output_size(width, kernel_w, strides[1], left, right, dilations[1])
    widths = ((top, bottom), (left, right))
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), *widths))
    inside = np.pad(np.ones((height, width), bool), widths)
    kernel, out_hw = (kernel_h, kernel_w), (out_h, out_w)
    # [N, group, C/group, OH, OW, KH, KW] and [OH, OW, KH, KW]
    windows = _windows(padded, out_hw, kernel, strides, dilations).reshape(
        n, group, group_channels, out_h, out_w, kernel_h, kernel_w
    )
    window_inside = _windows(inside, out_hw, kernel, strides, dilations)
    weights = w.astype(np.float64).reshape(group, out_channels // group, group_channels, *kernel)
    y = np.zeros((n, group, out_channels // group, out_h * out_w))
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and Inf are data here, not errors
        for kh in range(kernel_h):
            for kw in range(kernel_w):
                columns = windows[..., kh, kw].reshape(n, group, group_channels, out_h * out_w)
                products = np.matmul(weights[..., kh, kw], columns)
                y += np.where(window_inside[..., kh, kw].reshape(-1), products, 0.0)
    y = y.reshape(n, out_channels, out_h, out_w)
    if b is not None:
        y += b.reshape(1, out_channels, 1, 1)
    return y.astype(np.float32)


def pool2d(
    x: np.ndarray,
    *,
    kind: str,
    kernel: tuple[int, int],
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
    count_include_pad: bool = False,
) -> np.ndarray:
    """ONNX MaxPool ("max") or AveragePool ("avg") on x [N, C, H, W] -> [N, C, OH, OW].

    Padding never wins a max. An average divides by the number of input elements in the window,
    or with `count_include_pad` by the number inside the padded input; the part of a ceil_mode
    window hanging past the end padding never counts. As in ONNX Runtime, a window that holds only
    padding (possible with dilation) gives the lowest float32 for max and 0 for avg.
    """
    _check_kind(kind, POOL_KINDS, "pool")
    height, width = x.shape[2:]
    top, left, bottom, right = pads
    out_hw = (
        pool2d_output_size(height, kernel[0], strides[0], top, bottom, dilations[0], ceil_mode),
        pool2d_output_size(width, kernel[1], strides[1], left, right, dilations[1], ceil_mode),
    )
    padded_hw = (height + top + bottom, width + left + right)
    overhang = [
        max(0, (out - 1) * stride + dilation * (k - 1) + 1 - size)
        for out, stride, dilation, k, size in zip(
            out_hw, strides, dilations, kernel, padded_hw, strict=True
        )
    ]
    widths = ((top, bottom + overhang[0]), (left, right + overhang[1]))
    if kind == "max":
        padded = np.pad(x, ((0, 0), (0, 0), *widths), constant_values=np.finfo(np.float32).min)
        return _windows(padded, out_hw, kernel, strides, dilations).max(axis=(-2, -1))
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), *widths))
    sums = _windows(padded, out_hw, kernel, strides, dilations).sum(axis=(-2, -1))
    if count_include_pad:
        counted = np.pad(np.ones(padded_hw), ((0, overhang[0]), (0, overhang[1])))
    else:
        counted = np.pad(np.ones((height, width)), widths)
    counts = _windows(counted, out_hw, kernel, strides, dilations).sum(axis=(-2, -1))
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def global_pool(x: np.ndarray, kind: str) -> np.ndarray:
    """GlobalMaxPool ("max") or GlobalAveragePool ("avg"): [N, C, H, W] -> [N, C, 1, 1]."""
    _check_kind(kind, POOL_KINDS, "global pool")
    spatial_axes = tuple(range(2, x.ndim))
    if kind == "max":
        return x.max(axis=spatial_axes, keepdims=True)
    return x.mean(axis=spatial_axes, dtype=np.float64, keepdims=True).astype(np.float32)


def batchnorm(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    epsilon: float,
) -> np.ndarray:
    """Inference BatchNormalization over axis 1: scale * (x - mean) / sqrt(var + eps) + bias."""
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    factor = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    centred = x.astype(np.float64) - mean.reshape(per_channel)
    return (centred * factor.reshape(per_channel) + bias.reshape(per_channel)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function; exp only ever sees non-positive arguments, so it cannot overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float64, exact to the last bit of libm (numpy has no erf)."""
    return np.asarray(_ERF(x), dtype=np.float64)


def _softplus(x: np.ndarray) -> np.ndarray:
    """ln(1 + exp(x)) without overflow for large x."""
    return np.logaddexp(0.0, x)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
    return 0.5 * x * (1 + np.tanh(inner))


_ACTIVATION_FUNCTIONS: dict[str, Callable[[np.ndarray, float, float], np.ndarray]] = {
    "relu": lambda x, alpha, beta: np.maximum(x, 0),
    "leaky_relu": lambda x, alpha, beta: np.where(x >= 0, x, alpha * x),
    "clip": lambda x, alpha, beta: np.minimum(np.maximum(x, alpha), beta),
    "sigmoid": lambda x, alpha, beta: _sigmoid(x),
    "hard_sigmoid": lambda x, alpha, beta: np.clip(alpha * x + beta, 0, 1),
    "hard_swish": lambda x, alpha, beta: x * np.clip(x / 6 + 0.5, 0, 1),
    "tanh": lambda x, alpha, beta: np.tanh(x),
    "identity": lambda x, alpha, beta: x,
    "erf": lambda x, alpha, beta: _erf(x),
    "gelu": lambda x, alpha, beta: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "gelu_tanh": lambda x, alpha, beta: _gelu_tanh(x),
    "mish": lambda x, alpha, beta: x * np.tanh(_softplus(x)),
    "softplus": lambda x, alpha, beta: _softplus(x),
    "sqrt": lambda x, alpha, beta: np.sqrt(x),
    "reciprocal": lambda x, alpha, beta: 1 / x,
    "pow": lambda x, alpha, beta: np.power(x, alpha),
}
ACTIVATIONS = tuple(_ACTIVATION_FUNCTIONS)


def activation(x: np.ndarray, kind: str, alpha: float = 0.0, beta: float = 0.0) -> np.ndarray:
    """Elementwise activation `kind` (one of ACTIVATIONS) with ONNX semantics.

    leaky_relu uses alpha as the negative slope; clip clamps to [alpha, beta] (beta wins if
    alpha > beta, as in ONNX); hard_sigmoid is max(0, min(1, alpha * x + beta)); hard_swish is
    x * max(0, min(1, x / 6 + 1/2)); pow raises x to the power alpha. Other kinds ignore alpha
    and beta.
    """
    _check_kind(kind, ACTIVATIONS, "activation")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # ±Inf, NaN as in IEEE
        return _ACTIVATION_FUNCTIONS[kind](x.astype(np.float64), alpha, beta).astype(np.float32)


_BINARY_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
    "prelu": lambda x, slope: np.where(x < 0, x * slope, x),
}
BINARY_KINDS = tuple(_BINARY_FUNCTIONS)


def binary(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """Elementwise `kind` (one of BINARY_KINDS) of a and b with numpy (= ONNX) broadcasting."""
    _check_kind(kind, BINARY_KINDS, "binary")
    wide_a, wide_b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return _BINARY_FUNCTIONS[kind](wide_a, wide_b).astype(np.float32)


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    trans_a: bool = False,
    trans_b: bool = False,
) -> np.ndarray:
    """ONNX Gemm: alpha * A' @ B' + beta * C, A' [M, K], B' [K, N], C broadcast to [M, N]."""
    left = (a.T if trans_a else a).astype(np.float64)
    right = (b.T if trans_b else b).astype(np.float64)
    y = alpha * (left @ right)
    if c is not None:
        y += beta * c.astype(np.float64)  # in-place: C may broadcast to Y, never Y to C
    return y.astype(np.float32)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """ONNX Softmax (opset 13): exp(x) / sum(exp(x)) along the single axis `axis`."""
    shifted = x.astype(np.float64) - x.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=axis, keepdims=True)).astype(np.float32)


def layer_norm(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray, axis: int, epsilon: float
) -> np.ndarray:
    """ONNX LayerNormalization: normalise over axes axis..rank-1, then scale and shift."""
    wide = x.astype(np.float64)
    axes = tuple(range(axis, x.ndim))
    centred = wide - wide.mean(axis=axes, keepdims=True)
    variance = (centred**2).mean(axis=axes, keepdims=True)
    normalised = centred / np.sqrt(variance + epsilon)
    return (normalised * scale.astype(np.float64) + bias.astype(np.float64)).astype(np.float32)


def lrn(x: np.ndarray, *, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """ONNX LRN across channels (axis 1): x / (bias + alpha / size * square_sum) ** beta.

    square_sum at channel c sums x**2 over channels c - floor((size-1)/2) .. c + ceil((size-1)/2),
    clipped to the channels that exist.
    """
    before = (size - 1) // 2
    widths = [(0, 0)] * x.ndim
    widths[1] = (before, size - 1 - before)
    squares = np.pad(np.square(x.astype(np.float64)), widths)
    square_sum = sliding_window_view(squares, size, axis=1).sum(axis=-1)
    return (x / (bias + alpha / size * square_sum) ** beta).astype(np.float32)


def pad(x: np.ndarray, pads: Sequence[int], value: float = 0.0) -> np.ndarray:
    """ONNX Pad, constant mode: pads = [x1_begin, x2_begin, ..., x1_end, x2_end]; negative crops."""
    if len(pads) != 2 * x.ndim:
        raise ValueError(f"pad: need {2 * x.ndim} pads for a rank-{x.ndim} tensor, got {len(pads)}")
    begins, ends = pads[: x.ndim], pads[x.ndim :]
    crop = tuple(
        slice(max(0, -begin), size - max(0, -end))
        for begin, end, size in zip(begins, ends, x.shape, strict=True)
    )
    widths = [(max(0, begin), max(0, end)) for begin, end in zip(begins, ends, strict=True)]
    return np.pad(x[crop], widths, constant_values=value)


def concat(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """ONNX Concat: join `xs` along `axis`."""
    return np.concatenate(xs, axis=axis)


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Reshape to `shape`, one entry of which may be -1 (ONNX's 0 = "keep" is resolved upstream)."""
    return np.reshape(x, tuple(shape))


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """ONNX Transpose: output axis i is input axis perm[i]."""
    return np.transpose(x, tuple(perm))


def slice_axis(x: np.ndarray, axis: int, start: int, end: int) -> np.ndarray:
    """x[start:end] along `axis`, with Python (= ONNX Slice) clamping of out-of-range bounds."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, end)
    return x[tuple(index)]


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    output_padding: Sequence[int] = (0, 0),
    group: int = 1,
) -> np.ndarray:
    """ONNX ConvTranspose: x [N, C, H, W], w [C, O/group, KH, KW], b [O] or None -> [N, O, OH, OW].

    Computed by its definition, independently of how convir compiles it: every input pixel
    scatters w[c, :, kh, kw] * x to the full output at (ih * stride + kh * dilation, ...), one
    float64 matmul per tap and group; the full output is then cropped by the pads (whose end
    side is extended by `output_padding`).
    """
    n, channels, height, width = x.shape
    weight_channels, group_outputs, kernel_h, kernel_w = w.shape
    if group < 1 or channels % group or weight_channels != channels:
        raise ValueError(
            f"conv_transpose2d: input channels {channels} and weight shape {w.shape} do not fit "
            f"group={group}"
        )
    top, left, bottom, right = pads
    full_h, full_w = (
        stride * (size - 1) + extra + dilation * (kernel - 1) + 1
        for stride, size, extra, dilation, kernel in zip(
            strides, (height, width), output_padding, dilations, (kernel_h, kernel_w), strict=True
        )
    )
    if min(pads) < 0 or min(output_padding) < 0 or top + bottom >= full_h or left + right >= full_w:
        raise ValueError(
            f"conv_transpose2d: pads {list(pads)} and output_padding {list(output_padding)} "
            f"leave no output of the full {full_h}x{full_w}"
        )
    group_channels = channels // group
    xs = x.astype(np.float64).reshape(n, group, group_channels, height * width)
    ws = w.astype(np.float64).reshape(group, group_channels, group_outputs, kernel_h, kernel_w)
    full = np.zeros((n, group, group_outputs, full_h, full_w))
    rows = slice(None, strides[0] * (height - 1) + 1, strides[0])
    cols = slice(None, strides[1] * (width - 1) + 1, strides[1])
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            # [group, O/group, C/group] @ [N, group, C/group, H*W] -> [N, group, O/group, H*W]
            tap = np.matmul(ws[:, :, :, kh, kw].transpose(0, 2, 1), xs)
            r0, c0 = kh * dilations[0], kw * dilations[1]
            full[:, :, :, r0:, c0:][:, :, :, rows, cols] += tap.reshape(
                n, group, group_outputs, height, width
            )
    y = full.reshape(n, group * group_outputs, full_h, full_w)[
        :, :, top : full_h - bottom, left : full_w - right
    ]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y.astype(np.float32)


def interleave(
    phases: Sequence[np.ndarray], strides: Sequence[int], out_hw: Sequence[int]
) -> np.ndarray:
    """`conv.interleave`: output[.., a + strides[0] * i, b + strides[1] * j] = phase (a, b)
    [.., i, j], phases row-major over (a, b); NCHW or NCHWc."""
    first = phases[0]
    out = np.empty((*first.shape[:2], *out_hw, *first.shape[4:]), dtype=first.dtype)
    phases_w = min(strides[1], out_hw[1])
    for index, phase in enumerate(phases):
        first_h, first_w = divmod(index, phases_w)
        out[:, :, first_h :: strides[0], first_w :: strides[1]] = phase
    return out


# ---------------------------------------------------------------------------------------------
# Executing conv-dialect IR


def pack(x: np.ndarray, block: int) -> np.ndarray:
    """NCHW -> NCHWc ([N, ceil(C/block), H, W, block]); padded channels are zero."""
    n, c, h, w = x.shape
    blocks = -(-c // block)
    padded = np.zeros((n, blocks * block, h, w), dtype=x.dtype)
    padded[:, :c] = x
    return np.ascontiguousarray(padded.reshape(n, blocks, block, h, w).transpose(0, 1, 3, 4, 2))


def unpack(x: np.ndarray, channels: int) -> np.ndarray:
    """NCHWc -> NCHW, keeping the first `channels` channels."""
    n, blocks, h, w, block = x.shape
    return np.ascontiguousarray(
        x.transpose(0, 1, 4, 2, 3).reshape(n, blocks * block, h, w)[:, :channels]
    )


def _ints(attr: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.iter_values())


def _float(attr: Any, default: float = 0.0) -> float:
    return default if attr is None else float(attr.value.data)


def _blocked(evaluate: Callable[[Any, list[np.ndarray]], np.ndarray]):
    """Run an NCHW evaluator on NCHWc operands: unpack every rank-5 operand (all its lanes, or
    the conv's logical input channels), evaluate, pack the result if the op's result is NCHWc."""

    def evaluate_blocked(op: Any, args: list[np.ndarray]) -> np.ndarray:
        if not is_blocked(tensor_shape(op.results[0])):
            return evaluate(op, args)
        block = tensor_shape(op.results[0])[4]
        channels = None
        if isinstance(op, conv.Conv2DOp):
            channels = tensor_shape(op.weight)[1] * op.group.value.data
        unpacked = [
            unpack(a, channels if i == 0 and channels else a.shape[1] * a.shape[4])
            if a.ndim == 5
            else a
            for i, a in enumerate(args)
        ]
        if isinstance(op, conv.Conv2DOp) and op.residual is not None:
            out_channels = tensor_shape(op.weight)[0]
            unpacked[-1] = unpacked[-1][:, :out_channels]
        return pack(evaluate(op, unpacked), block)

    return evaluate_blocked


def _eval_conv2d(op: conv.Conv2DOp, args: list[np.ndarray]) -> np.ndarray:
    x, w, *rest = args
    bias = rest.pop(0) if op.bias is not None else None
    y = conv2d(
        x,
        w,
        bias,
        strides=_ints(op.strides),
        pads=_ints(op.pads),
        dilations=_ints(op.dilations),
        group=op.group.value.data,
    )
    if op.residual is not None:
        y = y + rest.pop(0)
    if op.activation is not None:
        y = activation(y, op.activation.data, _float(op.alpha), _float(op.beta))
    return y


def _eval_pool(op: conv.PoolOp, args: list[np.ndarray]) -> np.ndarray:
    return pool2d(
        args[0],
        kind=op.kind.data,
        kernel=_ints(op.kernel),
        strides=_ints(op.strides),
        pads=_ints(op.pads),
        dilations=_ints(op.dilations),
        ceil_mode=op.ceil_mode is not None,
        count_include_pad=op.count_include_pad is not None,
    )


def _eval_gemm(op: conv.GemmOp, args: list[np.ndarray]) -> np.ndarray:
    return gemm(
        args[0],
        args[1],
        args[2] if len(args) > 2 else None,
        alpha=_float(op.alpha),
        beta=_float(op.beta),
        trans_a=op.trans_a is not None,
        trans_b=op.trans_b is not None,
    )


def _eval_conv_transpose(op: conv.ConvTransposeOp, args: list[np.ndarray]) -> np.ndarray:
    return conv_transpose2d(
        args[0],
        args[1],
        args[2] if len(args) > 2 else None,
        strides=_ints(op.strides),
        pads=_ints(op.pads),
        dilations=_ints(op.dilations),
        output_padding=_ints(op.output_padding),
        group=op.group.value.data,
    )


_EVALUATORS: dict[type, Callable[[Any, list[np.ndarray]], np.ndarray]] = {
    conv.Conv2DOp: _blocked(_eval_conv2d),
    conv.PoolOp: _blocked(_eval_pool),
    conv.GemmOp: _eval_gemm,
    conv.GlobalPoolOp: _blocked(lambda op, a: global_pool(a[0], op.kind.data)),
    conv.BinaryOp: lambda op, a: binary(a[0], a[1], op.kind.data),
    conv.ActivationOp: lambda op, a: activation(
        a[0], op.kind.data, _float(op.alpha), _float(op.beta)
    ),
    conv.BatchNormOp: lambda op, a: batchnorm(*a, _float(op.epsilon)),
    conv.LayerNormOp: lambda op, a: layer_norm(*a, op.axis.value.data, _float(op.epsilon)),
    conv.ConcatOp: lambda op, a: concat(a, op.axis.value.data),
    conv.ReshapeOp: lambda op, a: reshape(a[0], tensor_shape(op.output)),
    conv.TransposeOp: lambda op, a: transpose(a[0], _ints(op.perm)),
    conv.SoftmaxOp: lambda op, a: softmax(a[0], op.axis.value.data),
    conv.LRNOp: lambda op, a: lrn(
        a[0],
        size=op.size.value.data,
        alpha=_float(op.alpha),
        beta=_float(op.beta),
        bias=_float(op.bias),
    ),
    conv.PadOp: lambda op, a: pad(a[0], _ints(op.pads), _float(op.value)),
    conv.SliceOp: lambda op, a: slice_axis(
        a[0], op.axis.value.data, op.start.value.data, op.end.value.data
    ),
    conv.PackOp: lambda op, a: pack(a[0], op.block.value.data),
    conv.UnpackOp: lambda op, a: unpack(a[0], tensor_shape(op.output)[1]),
    conv.ConvTransposeOp: _eval_conv_transpose,
    conv.InterleaveOp: lambda op, a: interleave(a, _ints(op.strides), tensor_shape(op.output)[2:4]),
}


# ---------------------------------------------------------------------------------------------
# Reductions and resampling


def reduce(x: np.ndarray, kind: str, axes: Sequence[int], keepdims: bool) -> np.ndarray:
    """ONNX ReduceMean ("mean"), ReduceMax ("max") or ReduceSum ("sum") over `axes`."""
    _check_kind(kind, REDUCE_KINDS, "reduce")
    wide = x.astype(np.float64)
    reducer = {"mean": np.mean, "max": np.max, "sum": np.sum}[kind]
    return reducer(wide, axis=tuple(axes), keepdims=keepdims).astype(np.float32)


def resize_source_coordinates(
    out_size: int, in_size: int, scale: float, coordinate_mode: str
) -> np.ndarray:
    """The input coordinate of each of `out_size` outputs along one axis (ONNX Resize's
    `coordinate_transformation_mode`), in float32 with ONNX Runtime's order of operations.

    Nearest neighbours are chosen by rounding these, so they are computed exactly as the native
    kernels compute them (one float32 rounding per operation, in this order), not in float64.
    """
    if coordinate_mode not in COORDINATE_MODES:
        raise ValueError(
            f"unknown coordinate_transformation_mode {coordinate_mode!r}; expected one of: "
            f"{', '.join(COORDINATE_MODES)}"
        )
    x = np.arange(out_size, dtype=np.float32)
    f32 = np.float32
    scale, half = f32(scale), f32(0.5)
    match coordinate_mode:
        case "asymmetric":
            return x / scale
        case "tf_half_pixel_for_nn":
            return (x + half) / scale
        case "align_corners":
            if out_size == 1:
                return np.zeros(1, np.float32)
            return x * f32(in_size - 1) / f32(out_size - 1)
        case "pytorch_half_pixel" if out_size == 1:
            return np.zeros(1, np.float32)
        case "half_pixel_symmetric":
            return resize_symmetric_offset(out_size, in_size, scale) + (x + half) / scale - half
    return (x + half) / scale - half


def resize_symmetric_offset(out_size: int, in_size: int, scale: float) -> np.float32:
    """The shift of `half_pixel_symmetric` that centres the sampled grid on the input."""
    f32 = np.float32
    adjustment = f32(out_size) / (f32(scale) * f32(in_size))
    return f32(in_size) / f32(2) * (f32(1) - adjustment)


def resize_nearest_indices(coordinates: np.ndarray, in_size: int, nearest_mode: str) -> np.ndarray:
    """The input index ONNX Resize's `nearest_mode` picks for each coordinate, clamped."""
    floor = np.floor(coordinates)
    fraction = coordinates - floor
    match nearest_mode:
        case "floor":
            chosen = floor
        case "ceil":
            chosen = np.ceil(coordinates)
        case "round_prefer_floor":
            chosen = floor + (fraction > 0.5)
        case "round_prefer_ceil":
            chosen = floor + (fraction >= 0.5)
        case _:
            raise ValueError(
                f"unknown nearest_mode {nearest_mode!r}; expected one of: "
                f"{', '.join(NEAREST_MODES)}"
            )
    return np.clip(chosen, 0, in_size - 1).astype(np.int64)


def resize(
    x: np.ndarray,
    size: Sequence[int],
    scales: Sequence[float],
    mode: str,
    coordinate_mode: str,
    nearest_mode: str | None = None,
) -> np.ndarray:
    """ONNX Resize of the spatial axes 2 and 3 of x ([N, C, H, W] or NCHWc) to `size` [OH, OW].

    `scales` [sh, sw] enter the coordinate transformation only. "nearest" picks one pixel per
    output by `nearest_mode`; "linear" interpolates bilinearly, coordinates clamped to
    [0, in - 1] (edge pixels repeat), weights and sums in float64.
    """
    _check_kind(mode, RESIZE_MODES, "resize mode")
    result = x.astype(np.float64)
    for axis, out_size, scale in zip((2, 3), size, scales, strict=True):
        in_size = x.shape[axis]
        coordinates = resize_source_coordinates(out_size, in_size, scale, coordinate_mode)
        if mode == "nearest":
            indices = resize_nearest_indices(coordinates, in_size, nearest_mode or "")
            result = np.take(result, indices, axis=axis)
            continue
        clamped = np.clip(coordinates, 0, in_size - 1)
        low = np.floor(clamped).astype(np.int64)
        high = np.minimum(low + 1, in_size - 1)
        weight_shape = [1] * x.ndim
        weight_shape[axis] = out_size
        weight = (clamped - low).astype(np.float64).reshape(weight_shape)
        below, above = np.take(result, low, axis=axis), np.take(result, high, axis=axis)
        result = below + weight * (above - below)
    return result.astype(np.float32)


def _eval_fused(op: conv.FusedOp, args: list[np.ndarray]) -> np.ndarray:
    """A `conv.fused` region executed op by op, its block arguments bound to `args`."""
    block = op.body.block
    values: dict[SSAValue, np.ndarray] = dict(zip(block.args, args, strict=True))
    for inner in block.ops:
        if isinstance(inner, conv.YieldOp):
            return values[inner.values[0]]
        values[inner.results[0]] = evaluate(inner, [values[v] for v in inner.operands])
    raise ValueError("reference: conv.fused region has no conv.yield")


_EVALUATORS[conv.FusedOp] = _eval_fused
_EVALUATORS[conv.ReduceOp] = lambda op, a: reduce(
    a[0], op.kind.data, _ints(op.axes), op.keepdims is not None
)
_EVALUATORS[conv.ResizeOp] = lambda op, a: resize(
    a[0],
    tensor_shape(op.output)[2:4],
    [float(s) for s in op.scales.iter_values()],
    op.mode.data,
    op.coordinate_transformation_mode.data,
    op.nearest_mode.data if op.nearest_mode is not None else None,
)


def evaluate(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """The numpy value of one conv-dialect op's result, given its operands' values in order."""
    evaluator = _EVALUATORS.get(type(op))
    if evaluator is None:
        raise ValueError(f"reference: op '{op.name}' has no numpy reference")
    return np.asarray(evaluator(op, list(args)), dtype=np.float32)


def run(
    module: ModuleOp,
    inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    *,
    ctx: Context | None = None,
    function: str = "main",
) -> dict[str, np.ndarray]:
    """Execute `function` of a graph-form conv-dialect module with numpy.

    `inputs` maps the function's input names (their `onnx.name`, else `arg<i>`) to arrays, or
    lists them in order. Returns outputs by name (`onnx.name`, else `result<i>`). Weights are
    read from `ctx`'s resource store (default: `convir.dialects.default_context()`).
    """
    ctx = ctx or default_context()
    func = _find_function(module, function)
    block = func.body.block
    in_names = onnx_names(func.arg_attrs, len(block.args), "arg")
    out_names = onnx_names(func.res_attrs, len(func.function_type.outputs.data), "result")
    values: dict[SSAValue, np.ndarray] = {}
    for arg, name, array in zip(
        block.args, in_names, _ordered_inputs(inputs, in_names), strict=True
    ):
        values[arg] = _checked_input(name, array, arg.type)
    for op in block.ops:
        if isinstance(op, ReturnOp):
            return {name: values[v] for name, v in zip(out_names, op.arguments, strict=True)}
        if isinstance(op, conv.ConstantOp):
            values[op.output] = constant_array(ctx, op.value)
            continue
        values[op.results[0]] = evaluate(op, [values[operand] for operand in op.operands])
    raise ValueError(f"reference.run: function @{function} has no func.return")


def _find_function(module: ModuleOp, name: str) -> FuncOp:
    for op in module.ops:
        if isinstance(op, FuncOp) and op.sym_name.data == name:
            return op
    raise ValueError(f"reference.run: the module has no function @{name}")


def _ordered_inputs(
    inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], names: list[str]
) -> list[np.ndarray]:
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(names))
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise ValueError(
                f"inputs {unknown} are unknown and {missing} are missing; expected {names}"
            )
        return [inputs[n] for n in names]
    if len(inputs) != len(names):
        raise ValueError(f"expected {len(names)} inputs ({names}), got {len(inputs)}")
    return list(inputs)


def _checked_input(name: str, array: np.ndarray, expected: Attribute) -> np.ndarray:
    array = np.asarray(array)
    shape = tensor_shape(expected)
    if array.dtype != np.float32:
        raise ValueError(f"input '{name}' has dtype {array.dtype}; expected float32")
    if array.shape != shape:
        raise ValueError(f"input '{name}' has shape {list(array.shape)}; expected {list(shape)}")
    return array
