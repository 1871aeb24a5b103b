"""Handlers of the ONNX operators beyond the convolutional core (`convir.importer.onnx_ops`):
math activations (Erf, Gelu, Mish, Softplus, Sqrt, Reciprocal, Pow, PRelu), LayerNormalization,
CastLike, reductions (ReduceMean/Max/Sum), Resize, Expand, Where and comparisons. They register
into `onnx_ops.HANDLERS` like the core ones; the importer loads both modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convir import reference
from convir.dialects import conv
from convir.dialects.shapes import broadcast_shapes, tensor_shape
from convir.importer.onnx import NodeContext, Value
from convir.importer.onnx_ops import handles, normalized_axis

# --- math: Erf, Gelu, Mish, Softplus, Sqrt, Reciprocal, Pow, PRelu, LayerNormalization ----------

_MATH_ACTIVATIONS = {
    "Erf": "erf",
    "Mish": "mish",
    "Softplus": "softplus",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
}


@handles(*_MATH_ACTIVATIONS)
def math_activation(node: NodeContext) -> list[Value]:
    kind = _MATH_ACTIVATIONS[node.node.op_type]
    if node.is_known(0):
        return [_fold_activation(node, kind, node.known(0, "input"))]
    return [node.add(conv.ActivationOp(node.value(0), kind))]


def _fold_activation(node: NodeContext, kind: str, array: np.ndarray, alpha: float = 0.0):
    """`kind` on an import-time `array`, in its own floating type (shape arithmetic included)."""
    if not np.issubdtype(array.dtype, np.floating):
        raise node.error(f"{node.node.op_type} of a {array.dtype} constant is not supported")
    return reference.activation(array, kind, alpha).astype(array.dtype)


@handles("Gelu")
def gelu(node: NodeContext) -> list[Value]:
    approximate = node.attr("approximate", "none")
    kinds = {"none": "gelu", "tanh": "gelu_tanh"}
    if approximate not in kinds:
        raise node.error(f"approximate '{approximate}' is unknown; expected 'none' or 'tanh'")
    if node.is_known(0):
        return [_fold_activation(node, kinds[approximate], node.known(0, "input"))]
    return [node.add(conv.ActivationOp(node.value(0), kinds[approximate]))]


@handles("Pow")
def power(node: NodeContext) -> list[Value]:
    if node.is_known(0) and node.is_known(1):
        base = node.known(0, "base")
        return [np.power(base, node.known(1, "exponent")).astype(base.dtype)]
    exponent = node.known(1, "exponent")
    if exponent.size != 1:
        raise node.error(
            f"the exponent must be one constant value, got shape {list(exponent.shape)}"
        )
    return [node.add(conv.ActivationOp(node.value(0), "pow", float(exponent.reshape(()))))]


@handles("PRelu")
def prelu(node: NodeContext) -> list[Value]:
    if node.is_known(0) and node.is_known(1):
        x, slope = node.known(0, "input"), node.known(1, "slope")
        return [np.where(x < 0, x * slope, x).astype(x.dtype)]
    shape, slope_shape = node.shape(0), node.shape(1)
    slope = node.value(1)
    if len(shape) > 2 and slope_shape == (shape[1],) and shape[-1] != shape[1]:
        # PRelu before opset 7 applied a [C] slope per channel (axis 1), as PyTorch does; models
        # converted from it still carry that slope. Numpy broadcasting would refuse it.
        per_channel = (shape[1],) + (1,) * (len(shape) - 2)
        if node.is_known(1):
            array = node.known(1, "slope").reshape(per_channel)
            slope = node.builder.constant(f"{node.node.input[1]}.per_channel", array, node)
        else:
            slope = node.add(conv.ReshapeOp(slope, per_channel))
        slope_shape = tensor_shape(slope)
    if broadcast_shapes(shape, slope_shape) != tuple(shape):
        raise node.error(
            f"slope of shape {list(slope_shape)} does not broadcast to the input shape "
            f"{list(shape)}"
        )
    return [node.add(conv.BinaryOp(node.value(0), slope, "prelu"))]


@handles("LayerNormalization")
def layer_normalization(node: NodeContext) -> list[Value]:
    """ONNX LayerNormalization (opset 17); Scale may be absent in the nodes that
    `convir.importer.patterns` makes of a decomposed layer norm (then it is one)."""
    shape = node.shape(0)
    axis = normalized_axis(node.attr("axis", -1), len(shape), node)
    normalised = tuple(shape[axis:])
    parameters = []
    for index, what, fill in ((1, "scale", 1.0), (2, "bias", 0.0)):
        if node.has_input(index) and node.shape(index) == normalised:
            parameters.append(node.value(index))
            continue
        if not node.has_input(index):
            array = np.full(normalised, fill, np.float32)
        elif node.is_known(index):
            array = node.known(index, what)
        else:
            raise node.error(
                f"a run-time {what} must have the normalised shape {list(normalised)}, got "
                f"{list(node.shape(index))}"
            )
        try:
            array = np.broadcast_to(array, normalised)
        except ValueError:
            raise node.error(
                f"{what} of shape {list(array.shape)} does not broadcast to the normalised shape "
                f"{list(normalised)}"
            ) from None
        name = f"{node.node.output[0]}.{what}"
        parameters.append(node.builder.constant(name, np.ascontiguousarray(array), node))
    epsilon = node.attr("epsilon", 1e-5)
    return [node.add(conv.LayerNormOp(node.value(0), *parameters, axis, epsilon))]


@handles("CastLike")
def cast_like(node: NodeContext) -> list[Value]:
    """CastLike (opset 15), as ONNX function bodies use it to give constants the data's type."""
    target = node.known(1, "target").dtype if node.is_known(1) else np.dtype(np.float32)
    if node.is_known(0):
        return [node.known(0, "input").astype(target)]
    if target != np.float32:
        raise node.error(f"casting run-time data to {target} is not supported; only float32 is")
    return [node.value(0)]


# --- reductions, resampling, broadcasting ----------------------------------------------------

_REDUCE_KINDS = {"ReduceMean": "mean", "ReduceMax": "max", "ReduceSum": "sum"}
_REDUCE_AXES_INPUT_FROM = {"ReduceMean": 18, "ReduceMax": 18, "ReduceSum": 13}
"""The opset from which each reduction takes `axes` as an input rather than an attribute."""


@handles(*_REDUCE_KINDS)
def reduce(node: NodeContext) -> list[Value]:
    """ReduceMean/Max/Sum; a mean or max over H and W of an image is a `conv.global_pool`."""
    op_type = node.node.op_type
    kind, rank = _REDUCE_KINDS[op_type], node.rank(0)
    if node.opset >= _REDUCE_AXES_INPUT_FROM[op_type]:
        raw_axes = node.optional_known(1, "axes")
        skip_empty = bool(node.attr("noop_with_empty_axes", 0))
    else:
        raw_axes, skip_empty = node.attr("axes"), False
    listed = [] if raw_axes is None else [int(a) for a in np.ravel(raw_axes)]
    if (not listed and skip_empty) or rank == 0:
        return [node.known(0, "data") if node.is_known(0) else node.value(0)]
    axes = sorted({normalized_axis(a, rank, node) for a in listed}) if listed else list(range(rank))
    keepdims = bool(node.attr("keepdims", 1))
    if node.is_known(0):
        data = node.known(0, "data")
        reducer = {"mean": np.mean, "max": np.max, "sum": np.sum}[kind]
        folded = reducer(data, axis=tuple(axes), keepdims=keepdims)
        return [folded.astype(data.dtype) if kind != "mean" else folded]
    if rank == 4 and axes == [2, 3] and kind in ("mean", "max"):
        pooled = node.add(conv.GlobalPoolOp(node.value(0), "avg" if kind == "mean" else "max"))
        return [pooled if keepdims else node.add(conv.ReshapeOp(pooled, node.shape(0)[:2]))]
    return [node.add(conv.ReduceOp(node.value(0), kind, axes, keepdims))]


_RESIZE_MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear"}


@handles("Resize", "Upsample")
def resize(node: NodeContext) -> list[Value]:
    """Resize (opsets 10-19) and Upsample (7-9) of the two spatial axes of an image.

    Upsample and Resize-10 map coordinates `asymmetric`ally and pick nearest neighbours as ONNX
    Runtime does (truncation when enlarging, ceiling when shrinking); from opset 11 on the node's
    attributes say. Scales of the batch and channel axes must be 1.
    """
    shape = node.shape(0)
    mode = _RESIZE_MODES.get(node.attr("mode", "nearest"))
    if mode is None:
        raise node.error(f"mode '{node.attr('mode')}' is not supported; supported: nearest, linear")
    if len(shape) != 4:
        raise node.error(f"only images (rank 4) can be resized, input has shape {list(shape)}")
    legacy = node.node.op_type == "Upsample" or node.opset < 11
    if legacy:
        if node.node.op_type == "Upsample" and node.opset < 9:
            scales = [float(s) for s in node.attr("scales")]
        else:
            scales = [float(s) for s in node.known(1, "scales")]
        size = _resized_extents(node, shape, scales)
        coordinate_mode = "asymmetric"
    else:
        scales, size = _resize_scales_and_size(node, shape)
        coordinate_mode = node.attr("coordinate_transformation_mode", "half_pixel")
        if coordinate_mode == "tf_crop_and_resize":
            raise node.error("coordinate_transformation_mode 'tf_crop_and_resize' is not supported")
        if coordinate_mode == "half_pixel_symmetric" and mode == "nearest":
            # ONNX Runtime rounds this map differently from its documented float32 formula, so
            # the nearest pixel could differ; linear interpolation is continuous and supported.
            raise node.error("half_pixel_symmetric is supported with mode linear only")
        if mode == "linear" and node.attr("antialias", 0) and min(scales) < 1:
            raise node.error("antialiased linear downscaling (antialias=1) is not supported")
    nearest_mode = None
    if mode == "nearest":
        nearest_mode = _legacy_nearest_mode(node, scales) if legacy else None
        nearest_mode = nearest_mode or node.attr("nearest_mode", "round_prefer_floor")
    if node.is_known(0):
        data = node.known(0, "input").astype(np.float32)
        spatial = scales[2:]
        return [reference.resize(data, size, spatial, mode, coordinate_mode, nearest_mode)]
    if list(size) == list(shape[2:]) and scales[2:] == [1.0, 1.0]:
        return [node.value(0)]
    op = conv.ResizeOp(node.value(0), size, scales[2:], mode, coordinate_mode, nearest_mode)
    return [node.add(op)]


def _resized_extents(node: NodeContext, shape: Sequence[int], scales: list[float]) -> list[int]:
    """[OH, OW] for full-rank `scales` (floor of extent x scale in float32, as ONNX Runtime)."""
    if len(scales) != len(shape):
        raise node.error(f"scales {scales} must have one value per axis of {list(shape)}")
    if scales[:2] != [1.0, 1.0] or min(scales) <= 0:
        raise node.error(f"scales {scales} must be 1 on batch and channels and positive")
    return [int(np.float32(d) * np.float32(s)) for d, s in zip(shape[2:], scales[2:], strict=True)]


def _resize_scales_and_size(
    node: NodeContext, shape: Sequence[int]
) -> tuple[list[float], list[int]]:
    """Full-rank scales and the output [OH, OW] of a Resize of opset >= 11 (scales or sizes,
    `axes` and `keep_aspect_ratio_policy` from opset 18)."""
    rank = len(shape)
    axes = [normalized_axis(int(a), rank, node) for a in node.attr("axes", list(range(rank)))]
    scales = node.optional_known(2, "scales")
    sizes = node.optional_known(3, "sizes")
    if sizes is not None and sizes.size:
        wanted = [int(s) for s in sizes]
        if len(wanted) != len(axes):
            raise node.error(f"sizes {wanted} must have one value per axis of {axes}")
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        full = list(shape)
        ratios = [float(np.float32(o) / np.float32(i)) for o, i in zip(full, shape, strict=True)]
        if policy == "stretch":
            for axis, extent in zip(axes, wanted, strict=True):
                full[axis] = extent
                ratios[axis] = float(np.float32(extent) / np.float32(shape[axis]))
        elif policy in ("not_larger", "not_smaller"):
            # One scale for every listed axis; the coordinates use it, not the rounded ratios.
            each = [np.float32(e) / np.float32(shape[a]) for a, e in zip(axes, wanted, strict=True)]
            ratio = min(each) if policy == "not_larger" else max(each)
            for axis in axes:
                full[axis] = int(np.floor(ratio * shape[axis] + 0.5))
                ratios[axis] = float(ratio)
        else:
            raise node.error(f"keep_aspect_ratio_policy '{policy}' is unknown")
        if full[:2] != list(shape[:2]):
            raise node.error(f"sizes {wanted} resize the batch or channel axis of {list(shape)}")
        return ratios, full[2:]
    if scales is None or not scales.size:
        raise node.error("needs either scales or sizes")
    listed = [float(s) for s in scales]
    if len(listed) != len(axes):
        raise node.error(f"scales {listed} must have one value per axis of {axes}")
    full_scales = [1.0] * rank
    for axis, scale in zip(axes, listed, strict=True):
        full_scales[axis] = scale
    return full_scales, _resized_extents(node, shape, full_scales)


def _legacy_nearest_mode(node: NodeContext, scales: list[float]) -> str:
    """Upsample's and Resize-10's rounding as ONNX Runtime implements it: truncation of the
    (non-negative) coordinate when enlarging, its ceiling when shrinking."""
    spatial = scales[2:]
    if min(spatial) >= 1:
        return "floor"
    if max(spatial) < 1:
        return "ceil"
    raise node.error(f"scales {scales} enlarge one axis and shrink the other; not supported")


def _broadcast_to(node: NodeContext, index: int, shape: Sequence[int]) -> Value:
    """Input `index` broadcast to `shape` (numpy rules): folded when known, else added to a
    constant -0.0 (x + -0.0 == x exactly, signed zeros included) shaped to do the broadcasting."""
    source = node.shape(index)
    if node.is_known(index):
        return np.array(np.broadcast_to(node.known(index, "input"), shape))
    if tuple(source) == tuple(shape):
        return node.value(index)
    padded = (1,) * (len(shape) - len(source)) + tuple(source)
    zeros_shape = [d if p == 1 else 1 for d, p in zip(shape, padded, strict=True)]
    name = f"{node.node.output[0]}_broadcast"
    zeros = node.builder.constant(name, np.full(zeros_shape, -0.0, np.float32), node)
    return node.add(conv.BinaryOp(node.value(index), zeros, "add"))


@handles("Expand")
def expand(node: NodeContext) -> list[Value]:
    target = [int(d) for d in node.known(1, "shape")]
    shape = broadcast_shapes(node.shape(0), target)
    if shape is None:
        raise node.error(f"cannot expand shape {list(node.shape(0))} to {target}")
    return [_broadcast_to(node, 0, shape)]


@handles("Where")
def where(node: NodeContext) -> list[Value]:
    """Where with a condition known at import: folded, or one operand broadcast when the
    condition is all true or all false."""
    condition = node.known(0, "condition").astype(bool)
    shape = broadcast_shapes(condition.shape, node.shape(1))
    shape = broadcast_shapes(shape, node.shape(2)) if shape is not None else None
    if shape is None:
        raise node.error(
            f"shapes {list(condition.shape)}, {list(node.shape(1))} and {list(node.shape(2))} "
            "do not broadcast"
        )
    if node.is_known(1) and node.is_known(2):
        return [np.where(condition, node.known(1, "X"), node.known(2, "Y"))]
    if condition.all() or not condition.any():
        return [_broadcast_to(node, 1 if condition.all() else 2, shape)]
    raise node.error(
        "a condition mixing true and false over data computed at run time is not supported"
    )


_COMPARISONS = {"Equal": np.equal, "Less": np.less, "Greater": np.greater}


@handles(*_COMPARISONS, "Not")
def compare(node: NodeContext) -> list[Value]:
    """Comparisons of values known at import: the shape arithmetic exporters emit around Expand
    and Where (torch's `expand(-1, ...)`) folds away; run-time comparisons are refused."""
    count = len(node.node.input)
    if not all(node.is_known(i) for i in range(count)):
        raise node.error("comparisons are supported only on values known at import time")
    if node.node.op_type == "Not":
        return [np.logical_not(node.known(0, "input"))]
    compare = _COMPARISONS[node.node.op_type]
    return [compare(node.known(0, "A"), node.known(1, "B"))]
