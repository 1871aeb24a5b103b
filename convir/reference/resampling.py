"""Numpy reference of the reductions and of ONNX Resize (coordinate transformations, nearest
modes and bilinear interpolation), with the float32 coordinate arithmetic the native kernels use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convir.dialects.resampling import COORDINATE_MODES, NEAREST_MODES, REDUCE_KINDS, RESIZE_MODES
from convir.reference.kernels import check_kind


def reduce(x: np.ndarray, kind: str, axes: Sequence[int], keepdims: bool) -> np.ndarray:
    """ONNX ReduceMean ("mean"), ReduceMax ("max") or ReduceSum ("sum") over `axes`."""
    check_kind(kind, REDUCE_KINDS, "reduce")
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
    check_kind(mode, RESIZE_MODES, "resize mode")
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
