"""Executing conv-dialect IR with numpy: one evaluator per op (NCHWc operands unpacked, the
NCHW kernel run, the result packed again), `evaluate` for one op and `run` for a function."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Operation, SSAValue

from convir.dialects import conv, default_context, onnx_names
from convir.dialects.resources import constant_array
from convir.dialects.shapes import is_blocked, tensor_shape
from convir.reference.kernels import (
    activation,
    batchnorm,
    binary,
    concat,
    conv2d,
    conv_transpose2d,
    gemm,
    global_pool,
    interleave,
    layer_norm,
    lrn,
    pad,
    pool2d,
    reshape,
    slice_axis,
    softmax,
    transpose,
)
from convir.reference.resampling import reduce, resize


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
