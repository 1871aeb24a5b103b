"""One handler per supported ONNX operator, across opsets 7 to 21.

A handler reads its node through `NodeContext` and returns the node's outputs, each either a numpy
array (the node was evaluated at import time because its inputs are known) or an SSA value of a
conv-dialect op it added. Attribute-vs-input changes between opsets (Clip, Pad, Split, Squeeze,
Unsqueeze, Slice, Reshape ...) are resolved here, so the dialect sees one form of each op.
The operators beyond the convolutional core (math activations, LayerNormalization, reductions,
Resize, Expand, Where, comparisons) are in `convir.importer.onnx_math_ops`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from xdsl.dialects.builtin import StringAttr

from convir.dialects import conv
from convir.dialects.conv_names import ONNX_NAME
from convir.importer.onnx import Handler, NodeContext, Value

HANDLERS: dict[str, Handler] = {}


def handles(*op_types: str):
    """Register the decorated function as the handler of `op_types`."""

    def register(function: Handler) -> Handler:
        for op_type in op_types:
            HANDLERS[op_type] = function
        return function

    return register


def normalized_axis(axis: int, rank: int, node: NodeContext) -> int:
    """`axis` in [0, rank), negative axes counted from the end; out of range names the node."""
    if not -rank <= axis < rank:
        raise node.error(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def _window_attrs(node: NodeContext, kernel: Sequence[int], spatial: Sequence[int]):
    """strides, pads [top, left, bottom, right] and dilations of a Conv/pool node.

    `auto_pad` (SAME_UPPER, SAME_LOWER, VALID) is resolved into explicit pads here.
    """
    if len(kernel) != 2:
        raise node.error(f"only 2-D windows are supported, got a {len(kernel)}-D kernel")
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    pads = list(node.attr("pads", [0, 0, 0, 0]))
    _check_ints(node, "kernel_shape", kernel, 2, 1)
    _check_ints(node, "strides", strides, 2, 1)
    _check_ints(node, "dilations", dilations, 2, 1)
    _check_ints(node, "pads", pads, 4, 0)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad != "NOTSET" and node.attr("pads") is not None:
        raise node.error(f"pads {pads} and auto_pad '{auto_pad}' cannot both be given")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            out = -(-spatial[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - spatial[i])
            small, large = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    elif auto_pad != "NOTSET":
        raise node.error(f"auto_pad '{auto_pad}' is unknown")
    return strides, pads, dilations


def _check_ints(node: NodeContext, name: str, values: Sequence[int], count: int, low: int) -> None:
    """Refuse a window attribute that has not `count` integers, all >= `low`."""
    if len(values) != count or any(not isinstance(v, int) or v < low for v in values):
        raise node.error(f"{name} {list(values)} must be {count} integers >= {low}")


# --- convolution, normalisation, pooling ------------------------------------------------------


@handles("Conv")
def conv2d(node: NodeContext) -> list[Value]:
    if node.rank(0) != 4:
        raise node.error(f"only 2-D convolutions are supported, input has rank {node.rank(0)}")
    weight_shape = node.shape(1)
    if len(weight_shape) != 4:
        raise node.error(f"weight must have rank 4 [O, C/group, KH, KW], got {list(weight_shape)}")
    kernel = node.attr("kernel_shape", list(weight_shape[2:]))
    if list(kernel) != list(weight_shape[2:]):
        raise node.error(
            f"kernel_shape {list(kernel)} does not match the weight's {list(weight_shape[2:])} "
            f"kernel (weight shape {list(weight_shape)})"
        )
    strides, pads, dilations = _window_attrs(node, kernel, node.shape(0)[2:])
    bias = node.value(2) if node.has_input(2) else None
    op = conv.Conv2DOp(
        node.value(0),
        node.value(1),
        bias,
        strides=strides,
        pads=pads,
        dilations=dilations,
        group=node.attr("group", 1),
    )
    if node.node.name:
        op.attributes[ONNX_NAME] = StringAttr(node.node.name)
    return [node.add(op)]


@handles("BatchNormalization")
def batchnorm(node: NodeContext) -> list[Value]:
    if node.attr("spatial", 1) != 1:
        raise node.error("spatial=0 (per-element statistics) is not supported")
    if node.attr("training_mode", 0) != 0:
        raise node.error("training_mode=1 is not supported; export the model in eval mode")
    params = [node.value(i) for i in range(1, 5)]
    op = conv.BatchNormOp(node.value(0), *params, node.attr("epsilon", 1e-5))
    return [node.add(op)]


@handles("MaxPool", "AveragePool")
def pool(node: NodeContext) -> list[Value]:
    if node.rank(0) != 4:
        raise node.error(f"only 2-D pooling is supported, input has rank {node.rank(0)}")
    if node.attr("storage_order", 0) != 0:
        raise node.error("storage_order=1 is not supported")
    kernel = node.attr("kernel_shape")
    if kernel is None:
        raise node.error("the kernel_shape attribute is required")
    strides, pads, dilations = _window_attrs(node, kernel, node.shape(0)[2:])
    op = conv.PoolOp(
        node.value(0),
        "max" if node.node.op_type == "MaxPool" else "avg",
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode=bool(node.attr("ceil_mode", 0)),
        count_include_pad=bool(node.attr("count_include_pad", 0)),
    )
    return [node.add(op)]


@handles("GlobalAveragePool", "GlobalMaxPool")
def global_pool(node: NodeContext) -> list[Value]:
    if node.rank(0) != 4:
        raise node.error(f"only 2-D pooling is supported, input has rank {node.rank(0)}")
    kind = "max" if node.node.op_type == "GlobalMaxPool" else "avg"
    return [node.add(conv.GlobalPoolOp(node.value(0), kind))]


@handles("LRN")
def lrn(node: NodeContext) -> list[Value]:
    op = conv.LRNOp(
        node.value(0),
        node.attr("size"),
        node.attr("alpha", 1e-4),
        node.attr("beta", 0.75),
        node.attr("bias", 1.0),
    )
    return [node.add(op)]


@handles("Softmax")
def softmax(node: NodeContext) -> list[Value]:
    shape = node.shape(0)
    rank = len(shape)
    axis = normalized_axis(node.attr("axis", 1 if node.opset < 13 else -1), rank, node)
    if node.opset >= 13 or axis == rank - 1:
        return [node.add(conv.SoftmaxOp(node.value(0), axis))]
    # Before opset 13, Softmax coerces its input to 2-D at `axis` and normalises the second half.
    flat = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    reshaped = node.add(conv.ReshapeOp(node.value(0), flat))
    normalised = node.add(conv.SoftmaxOp(reshaped, 1))
    return [node.add(conv.ReshapeOp(normalised, shape))]


# --- elementwise ---------------------------------------------------------------------------------

_ACTIVATIONS = {
    "Relu": "relu",
    "LeakyRelu": "leaky_relu",
    "Sigmoid": "sigmoid",
    "HardSigmoid": "hard_sigmoid",
    "HardSwish": "hard_swish",
    "Tanh": "tanh",
}
_ACTIVATION_DEFAULTS = {"leaky_relu": (0.01, None), "hard_sigmoid": (0.2, 0.5)}


@handles(*_ACTIVATIONS)
def activation(node: NodeContext) -> list[Value]:
    kind = _ACTIVATIONS[node.node.op_type]
    alpha, beta = _ACTIVATION_DEFAULTS.get(kind, (None, None))
    alpha = node.attr("alpha", alpha) if alpha is not None else None
    beta = node.attr("beta", beta) if beta is not None else None
    return [node.add(conv.ActivationOp(node.value(0), kind, alpha, beta))]


@handles("Clip")
def clip(node: NodeContext) -> list[Value]:
    if node.opset < 11:
        low, high = node.attr("min", -np.inf), node.attr("max", np.inf)
    else:
        low_array = node.optional_known(1, "min")
        high_array = node.optional_known(2, "max")
        low = float(low_array) if low_array is not None else -np.inf
        high = float(high_array) if high_array is not None else np.inf
    if node.is_known(0):
        return [np.clip(node.known(0, "input"), low, high)]
    finfo = np.finfo(np.float32)
    low, high = max(float(low), float(finfo.min)), min(float(high), float(finfo.max))
    return [node.add(conv.ActivationOp(node.value(0), "clip", low, high))]


_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min"}
_FOLD_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


def _fold_binary(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if kind == "div":
        both_int = np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)
        return (np.trunc(a / b).astype(a.dtype)) if both_int else np.divide(a, b).astype(a.dtype)
    return _FOLD_BINARY[kind](a, b).astype(np.result_type(a, b))


@handles(*_BINARY, "Sum")
def binary(node: NodeContext) -> list[Value]:
    kind = "add" if node.node.op_type == "Sum" else _BINARY[node.node.op_type]
    count = len(node.node.input)
    variadic = node.node.op_type in ("Sum", "Max", "Min")
    if (variadic and count < 1) or (not variadic and count != 2):
        raise node.error(f"expects {'1 or more' if variadic else '2'} inputs, got {count}")
    if all(node.is_known(i) for i in range(count)):
        result = node.known(0, "operand")
        for i in range(1, count):
            result = _fold_binary(kind, result, node.known(i, "operand"))
        return [result]
    result = node.value(0)
    for i in range(1, count):
        result = node.add(conv.BinaryOp(result, node.value(i), kind))
    return [result]


@handles("Dropout", "Identity")
def identity(node: NodeContext) -> list[Value]:
    if node.node.op_type == "Dropout" and node.has_input(2):
        training = node.known(2, "training_mode")
        if bool(training):
            raise node.error("training_mode=true is not supported; export in eval mode")
    if node.is_known(0):
        return [node.known(0, "input")]
    return [node.value(0)]


# --- matrix multiplication -----------------------------------------------------------------------


@handles("Gemm")
def gemm(node: NodeContext) -> list[Value]:
    c = node.value(2) if node.has_input(2) else None
    op = conv.GemmOp(
        node.value(0),
        node.value(1),
        c,
        alpha=node.attr("alpha", 1.0),
        beta=node.attr("beta", 1.0),
        trans_a=bool(node.attr("transA", 0)),
        trans_b=bool(node.attr("transB", 0)),
    )
    return [node.add(op)]


@handles("MatMul")
def matmul(node: NodeContext) -> list[Value]:
    if node.is_known(0) and node.is_known(1):
        return [np.matmul(node.known(0, "a"), node.known(1, "b"))]
    if node.rank(0) < 2 or node.rank(1) != 2:
        raise node.error(
            f"only MatMul of an N-D tensor by a 2-D matrix is supported, got shapes "
            f"{list(node.shape(0))} and {list(node.shape(1))}"
        )
    if node.rank(0) == 2:
        return [node.add(conv.GemmOp(node.value(0), node.value(1), None))]
    # [..., M, K] @ [K, N] (a Linear on channels-last activations): one GEMM over all rows.
    shape = node.shape(0)
    rows = node.add(conv.ReshapeOp(node.value(0), (int(np.prod(shape[:-1])), shape[-1])))
    product = node.add(conv.GemmOp(rows, node.value(1), None))
    return [node.add(conv.ReshapeOp(product, (*shape[:-1], node.shape(1)[1])))]


# --- shapes and data movement --------------------------------------------------------------------


def _reshape(node: NodeContext, shape: Sequence[int]) -> Value:
    if node.is_known(0):
        return node.known(0, "input").reshape(shape)
    if tuple(shape) == node.shape(0):
        return node.value(0)
    return node.add(conv.ReshapeOp(node.value(0), shape))


@handles("Reshape")
def reshape(node: NodeContext) -> list[Value]:
    target = [int(d) for d in node.known(1, "shape")]
    source = node.shape(0)
    allow_zero = node.attr("allowzero", 0)
    shape = [source[i] if d == 0 and not allow_zero else d for i, d in enumerate(target)]
    if shape.count(-1) > 1:
        raise node.error(f"shape {target} has more than one -1")
    if -1 in shape:
        rest = int(np.prod([d for d in shape if d != -1]))
        total = int(np.prod(source))
        if rest == 0 or total % rest:
            raise node.error(f"cannot reshape {list(source)} to {target}")
        shape[shape.index(-1)] = total // rest
    if int(np.prod(shape)) != int(np.prod(source)):
        raise node.error(f"cannot reshape {list(source)} to {target}")
    return [_reshape(node, shape)]


@handles("Flatten")
def flatten(node: NodeContext) -> list[Value]:
    shape = node.shape(0)
    axis = node.attr("axis", 1)
    if not -len(shape) <= axis <= len(shape):
        raise node.error(f"axis {axis} is out of range for rank {len(shape)}")
    axis = axis + len(shape) if axis < 0 else axis  # Flatten's axis may equal the rank
    return [_reshape(node, (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))]


def _axes(node: NodeContext) -> list[int] | None:
    """The raw `axes` of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13 on."""
    axes = node.attr("axes") if node.opset < 13 else node.optional_known(1, "axes")
    return None if axes is None else [int(a) for a in axes]


@handles("Squeeze")
def squeeze(node: NodeContext) -> list[Value]:
    shape = node.shape(0)
    raw_axes = _axes(node)
    if raw_axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = sorted(normalized_axis(a, len(shape), node) for a in raw_axes)
    if any(shape[a] != 1 for a in axes):
        raise node.error(f"cannot squeeze axes {axes} of shape {list(shape)}")
    return [_reshape(node, [d for i, d in enumerate(shape) if i not in axes])]


@handles("Unsqueeze")
def unsqueeze(node: NodeContext) -> list[Value]:
    shape = list(node.shape(0))
    raw_axes = _axes(node)
    if raw_axes is None:
        raise node.error("axes are required")
    rank = len(shape) + len(raw_axes)
    axes = sorted(normalized_axis(a, rank, node) for a in raw_axes)
    if len(set(axes)) != len(axes):
        raise node.error(f"axes {raw_axes} name an axis twice")
    for a in axes:
        shape.insert(a, 1)
    return [_reshape(node, shape)]


@handles("Transpose")
def transpose(node: NodeContext) -> list[Value]:
    rank = node.rank(0)
    perm = [int(p) for p in node.attr("perm", list(reversed(range(rank))))]
    if node.is_known(0):
        return [np.transpose(node.known(0, "input"), perm)]
    return [node.add(conv.TransposeOp(node.value(0), perm))]


@handles("Concat")
def concat(node: NodeContext) -> list[Value]:
    count = len(node.node.input)
    axis = normalized_axis(node.attr("axis"), node.rank(0), node)
    if all(node.is_known(i) for i in range(count)):
        return [np.concatenate([node.known(i, "input") for i in range(count)], axis=axis)]
    return [node.add(conv.ConcatOp([node.value(i) for i in range(count)], axis))]


@handles("Split")
def split(node: NodeContext) -> list[Value]:
    shape = node.shape(0)
    axis = normalized_axis(node.attr("axis", 0), len(shape), node)
    outputs = len(node.node.output)
    sizes = node.attr("split") if node.opset < 13 else node.optional_known(1, "split")
    if sizes is None:
        parts = node.attr("num_outputs", outputs)
        chunk = -(-shape[axis] // parts)
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(parts)]
    sizes = [int(s) for s in sizes]
    if sum(sizes) != shape[axis] or len(sizes) != outputs:
        raise node.error(f"split sizes {sizes} do not cut axis {axis} of size {shape[axis]}")
    starts = np.cumsum([0, *sizes[:-1]])
    if node.is_known(0):
        array = node.known(0, "input")
        return [
            np.take(array, range(s, s + n), axis=axis) for s, n in zip(starts, sizes, strict=True)
        ]
    source = node.value(0)
    return [
        node.add(conv.SliceOp(source, axis, int(s), int(s + n)))
        for s, n in zip(starts, sizes, strict=True)
    ]


@handles("Slice")
def slice_(node: NodeContext) -> list[Value]:
    shape = node.shape(0)
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes = node.attr("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = node.known(1, "starts"), node.known(2, "ends")
        axes = node.optional_known(3, "axes")
        axes = list(range(len(starts))) if axes is None else axes
        steps = node.optional_known(4, "steps")
        steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * len(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = normalized_axis(int(axis), len(shape), node)
        index[axis] = slice(*slice(int(start), int(end), int(step)).indices(shape[axis]))
    if node.is_known(0):
        return [node.known(0, "input")[tuple(index)]]
    result = node.value(0)
    for axis, part in enumerate(index):
        start, stop, step = part.indices(shape[axis])
        if step != 1:
            raise node.error("slices with a step other than 1 are supported only on constants")
        if (start, stop) != (0, shape[axis]):
            result = node.add(conv.SliceOp(result, axis, start, stop))
    return [result]


@handles("Pad")
def pad(node: NodeContext) -> list[Value]:
    mode = node.attr("mode", "constant")
    if mode != "constant":
        raise node.error(f"pad mode '{mode}' is not supported; only 'constant' is")
    rank = node.rank(0)
    if node.opset < 11:
        pads, value = list(node.attr("pads")), node.attr("value", 0.0)
    else:
        pads = [int(p) for p in node.known(1, "pads")]
        constant = node.optional_known(2, "constant_value")
        value = float(constant) if constant is not None else 0.0
        axes = node.optional_known(3, "axes")
        if axes is not None:
            full = [0] * (2 * rank)
            for i, a in enumerate(normalized_axis(int(a), rank, node) for a in axes):
                full[a], full[a + rank] = pads[i], pads[i + len(axes)]
            pads = full
    if len(pads) != 2 * rank:
        raise node.error(f"pads {pads} must have {2 * rank} values")
    if node.is_known(0):
        array = node.known(0, "input")
        widths = [(pads[i], pads[i + rank]) for i in range(rank)]
        return [np.pad(array, widths, constant_values=value)]
    if not any(pads):
        return [node.value(0)]
    return [node.add(conv.PadOp(node.value(0), pads, value))]


# --- transposed convolution ------------------------------------------------------------------


def _conv_transpose_pads(
    node: NodeContext, kernel: Sequence[int], strides, dilations, extra
) -> tuple[list[int], list[int]]:
    """pads [top, left, bottom, right] and output_padding of a ConvTranspose node, resolved as
    onnxruntime resolves them.

    With `output_shape` the pads are what crops the full output to it (a `pads` attribute is then
    ignored), the odd pixel cropped at the end for SAME_UPPER and at the start otherwise; an
    `output_shape` larger than the full output extends it at the end, as output_padding does.
    `auto_pad` SAME_UPPER/SAME_LOWER without `output_shape` aims at input * stride the same way,
    but never extends (onnxruntime keeps the full output; ONNX's reference would pad it).
    """
    spatial = node.shape(0)[2:]
    output_shape = node.attr("output_shape")
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise node.error(f"auto_pad '{auto_pad}' is unknown")
    if output_shape is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0] if auto_pad == "VALID" else list(node.attr("pads", [0, 0, 0, 0]))
        return pads, list(extra)
    if output_shape is not None and len(output_shape) != 2:
        raise node.error(f"output_shape {list(output_shape)} must have 2 values (H and W)")
    wanted = list(output_shape) if output_shape is not None else None
    pads, extra = [0, 0, 0, 0], list(extra)
    for i in range(2):
        full = strides[i] * (spatial[i] - 1) + extra[i] + dilations[i] * (kernel[i] - 1) + 1
        total = full - (wanted[i] if wanted else spatial[i] * strides[i])
        if total < 0:
            extra[i] += -total if wanted else 0
            total = 0
        small, large = total // 2, total - total // 2
        pads[i], pads[i + 2] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    return pads, extra


@handles("ConvTranspose")
def conv_transpose(node: NodeContext) -> list[Value]:
    if node.rank(0) != 4 or node.rank(1) != 4:
        raise node.error(
            f"only 2-D transposed convolutions are supported, input has rank {node.rank(0)}"
        )
    weight_shape = node.shape(1)
    kernel = list(node.attr("kernel_shape", list(weight_shape[2:])))
    if kernel != list(weight_shape[2:]):
        raise node.error(f"kernel_shape {kernel} differs from the weight's {list(weight_shape)}")
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    extra = list(node.attr("output_padding", [0, 0]))
    if len(strides) != 2 or len(dilations) != 2 or len(extra) != 2:
        raise node.error("strides, dilations and output_padding must have 2 values for 2-D")
    pads, extra = _conv_transpose_pads(node, kernel, strides, dilations, extra)
    op = conv.ConvTransposeOp(
        node.value(0),
        node.value(1),
        node.value(2) if node.has_input(2) else None,
        strides=strides,
        pads=pads,
        dilations=dilations,
        output_padding=extra,
        group=node.attr("group", 1),
    )
    if node.node.name:
        op.attributes[ONNX_NAME] = StringAttr(node.node.name)
    return [node.add(op)]


# --- values known at import time -----------------------------------------------------------------


@handles("Constant")
def constant(node: NodeContext) -> list[Value]:
    dtypes = {"value_float": np.float32, "value_floats": np.float32}
    dtypes |= {"value_int": np.int64, "value_ints": np.int64}
    tensor = node.attr("value")
    if tensor is not None:
        return [tensor]
    for name, dtype in dtypes.items():
        value = node.attr(name)
        if value is not None:
            return [np.asarray(value, dtype=dtype)]
    raise node.error("only tensor, float and int constants are supported")


@handles("ConstantOfShape")
def constant_of_shape(node: NodeContext) -> list[Value]:
    shape = [int(d) for d in node.known(0, "shape")]
    value = node.attr("value")
    fill = value.reshape(()) if value is not None else np.zeros((), np.float32)
    return [np.full(shape, fill, dtype=fill.dtype)]


@handles("Shape")
def shape(node: NodeContext) -> list[Value]:
    dims = np.array(node.shape(0), dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end", len(dims))
    return [dims[start:end]]


@handles("Gather")
def gather(node: NodeContext) -> list[Value]:
    data, indices = node.known(0, "data"), node.known(1, "indices")
    return [np.take(data, indices, axis=normalized_axis(node.attr("axis", 0), data.ndim, node))]


_CASTS = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.BOOL: np.bool_,
}


@handles("Cast")
def cast(node: NodeContext) -> list[Value]:
    to = node.attr("to")
    if node.is_known(0):
        if to not in _CASTS:
            raise node.error(f"cast to {onnx.TensorProto.DataType.Name(to)} is not supported")
        return [node.known(0, "input").astype(_CASTS[to])]
    if to != onnx.TensorProto.FLOAT:
        raise node.error("casting run-time data to a type other than FLOAT is not supported")
    return [node.value(0)]
