"""Numpy reference kernels: the semantics of each conv-dialect op on arrays (NCHW, or NCHWc
where the package doc says so), computed in float64 and rounded to float32 once."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convir.dialects.conv import POOL_KINDS
from convir.dialects.shapes import window_output_size


def check_kind(kind: str, known: Sequence[str], what: str) -> None:
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
    check_kind(kind, POOL_KINDS, "pool")
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
    check_kind(kind, POOL_KINDS, "global pool")
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
    check_kind(kind, ACTIVATIONS, "activation")
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
    check_kind(kind, BINARY_KINDS, "binary")
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
