"""Numpy reference semantics of every conv-dialect op: the oracle for tests and tuning.

Arrays are NCHW, or NCHWc ([N, C/X, H, W, X]) where an op's types say so: convs, pools and
global pools on NCHWc are evaluated by unpacking, computing in NCHW and packing again, so padded
lanes of their results are zero here (compiled kernels may leave other values there; nothing
reads padded lanes). Compute kernels take float32 and return float32. Everything is computed in
float64 and rounded to float32 once at the end, so the reference is at least as accurate as any
compiled kernel compared against it. Spatial pads are always four values in ONNX order
[top, left, bottom, right].

The package: `kernels` (the numpy kernel of each op), `resampling` (reductions and Resize) and
`execute` (evaluating conv-dialect ops and running graph functions); every public name is here.
"""

from convir.dialects.conv import POOL_KINDS
from convir.reference.execute import evaluate, pack, run, unpack
from convir.reference.kernels import (
    ACTIVATIONS,
    BINARY_KINDS,
    activation,
    batchnorm,
    binary,
    concat,
    conv2d,
    conv2d_output_size,
    conv_transpose2d,
    gemm,
    global_pool,
    interleave,
    layer_norm,
    lrn,
    pad,
    pool2d,
    pool2d_output_size,
    reshape,
    slice_axis,
    softmax,
    transpose,
)
from convir.reference.resampling import (
    reduce,
    resize,
    resize_nearest_indices,
    resize_source_coordinates,
    resize_symmetric_offset,
)

__all__ = [
    "ACTIVATIONS",
    "BINARY_KINDS",
    "POOL_KINDS",
    "activation",
    "batchnorm",
    "binary",
    "concat",
    "conv2d",
    "conv2d_output_size",
    "conv_transpose2d",
    "evaluate",
    "gemm",
    "global_pool",
    "interleave",
    "layer_norm",
    "lrn",
    "pack",
    "pad",
    "pool2d",
    "pool2d_output_size",
    "reduce",
    "reshape",
    "resize",
    "resize_nearest_indices",
    "resize_source_coordinates",
    "resize_symmetric_offset",
    "run",
    "slice_axis",
    "softmax",
    "transpose",
    "unpack",
]
