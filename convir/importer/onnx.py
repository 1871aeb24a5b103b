"""ONNX -> conv dialect.

`import_onnx` turns a `ModelProto` (or a path to one) into a module holding one
`func.func @main`, whose arguments and results carry their ONNX names as `{onnx.name = ...}`.
Every conv is named `convir.name = "conv_<i>"` in graph order and keeps its node's name as
`onnx.name` (see `convir.dialects.conv_names`): the keys of per-conv overrides.

Before the walk, chains of nodes that exporters write for GELU and layer norm are replaced by one
`Gelu` or `LayerNormalization` node each (`convir.importer.patterns`).

The walk over the graph keeps, for every ONNX tensor name, either a numpy array (a value known at
import time: initializers, `Constant`, and every node whose inputs are all known, which is how the
shape arithmetic of PyTorch and model-zoo exports folds away) or an SSA value of the module being
built. Known float arrays become `conv.constant dense_resource<...>` ops, once each, when a runtime
op first uses them. Shapes are static: the batch size is fixed at import and every other dimension
must be known, so each op's result type is computed by its builder and checked by its verifier.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from convir.dialects import default_context
from convir.dialects.conv import ConstantOp
from convir.dialects.conv_names import name_convs
from convir.dialects.resources import resource_attr
from convir.dialects.shapes import f32_tensor, tensor_shape

MIN_OPSET = 7
MAX_OPSET = 21


class OnnxImportError(ValueError):
    """The model cannot be imported; the message names the node, op type and the reason."""


@dataclass
class NodeContext:
    """What an op handler sees of the importer: the node, its inputs, and a place to put ops."""

    node: onnx.NodeProto
    opset: int
    builder: GraphBuilder

    @property
    def where(self) -> str:
        name = self.node.name or (self.node.output[0] if self.node.output else "?")
        return f"node '{name}' ({self.node.op_type})"

    def error(self, reason: str) -> OnnxImportError:
        """An import error naming this node."""
        return OnnxImportError(f"{self.where}: {reason}")

    def attr(self, name: str, default: Any = None) -> Any:
        """The value of attribute `name`, or `default` when the node does not set it."""
        for attribute in self.node.attribute:
            if attribute.name == name:
                value = onnx.helper.get_attribute_value(attribute)
                if isinstance(value, bytes):
                    return value.decode()
                if isinstance(value, onnx.TensorProto):
                    return tensor_array(value, f"{self.where}: attribute '{name}' tensor")
                if isinstance(value, list):
                    return [v.decode() if isinstance(v, bytes) else v for v in value]
                return value
        return default

    def has_input(self, index: int) -> bool:
        """True when optional input `index` is given (present and not the empty name)."""
        return index < len(self.node.input) and self.node.input[index] != ""

    def known(self, index: int, what: str) -> np.ndarray:
        """Input `index`, which must be known at import time (a constant or folded value)."""
        value = self.builder.lookup(self.node.input[index], self)
        if not isinstance(value, np.ndarray):
            raise self.error(f"{what} (input {index}) must be a constant, not computed at run time")
        return value

    def optional_known(self, index: int, what: str) -> np.ndarray | None:
        """Like `known`, or None when the optional input is absent."""
        return self.known(index, what) if self.has_input(index) else None

    def value(self, index: int) -> SSAValue:
        """Input `index` as an SSA value, materialising a constant if it is one."""
        return self.builder.materialize(self.node.input[index], self)

    def is_known(self, index: int) -> bool:
        return isinstance(self.builder.lookup(self.node.input[index], self), np.ndarray)

    def rank(self, index: int) -> int:
        value = self.builder.lookup(self.node.input[index], self)
        return value.ndim if isinstance(value, np.ndarray) else len(tensor_shape(value))

    def shape(self, index: int) -> tuple[int, ...]:
        value = self.builder.lookup(self.node.input[index], self)
        return value.shape if isinstance(value, np.ndarray) else tensor_shape(value)

    def add(self, op: Operation) -> SSAValue:
        """Append `op` to the function body, verify it, return its single result."""
        try:
            op.verify()
        except VerifyException as error:
            raise self.error(str(error)) from None
        self.builder.block.add_op(op)
        return op.results[0]


Value = np.ndarray | SSAValue
Handler = Callable[[NodeContext], Sequence[Value]]


@dataclass
class GraphBuilder:
    """Builds the body of `@main` while walking the ONNX graph in order."""

    ctx: Context
    block: Block
    values: dict[str, Value | _Unavailable] = field(default_factory=dict)
    materialized: dict[str, SSAValue] = field(default_factory=dict)

    def lookup(self, name: str, node: NodeContext) -> Value:
        if name not in self.values:
            raise node.error(f"input '{name}' is not produced by any earlier node or initializer")
        value = self.values[name]
        if isinstance(value, _Unavailable):
            raise node.error(f"input '{name}' is {value.message()}")
        return value

    def materialize(self, name: str, node: NodeContext) -> SSAValue:
        value = self.lookup(name, node)
        if isinstance(value, SSAValue):
            return value
        if name not in self.materialized:
            self.materialized[name] = self.constant(name, value, node)
        return self.materialized[name]

    def constant(self, name: str, array: np.ndarray, node: NodeContext | None) -> SSAValue:
        """A `conv.constant` holding `array` (float32) in the context's resource store."""
        # ONNX ops take operands of one type, and graph inputs are float32; a tensor of another
        # type used as data makes an invalid model, not one to compute in float32 regardless.
        if array.dtype != np.float32:
            where = f"{node.where}: " if node else ""
            raise OnnxImportError(
                f"{where}tensor '{name}' of type {array.dtype} is used as data; only float32 "
                "data tensors are supported"
            )
        op = ConstantOp(resource_attr(self.ctx, name, array))
        op.output.name_hint = _value_name(name)
        self.block.add_op(op)
        return op.output


def import_onnx(
    model: onnx.ModelProto | str | os.PathLike[str],
    *,
    batch: int | None = None,
    ctx: Context | None = None,
) -> ModuleOp:
    """Import an ONNX model into a conv-dialect module with one function `@main`.

    `batch` fixes the leading dimension of every graph input (default: the model's own when it is
    static, else 1). Weights go into `ctx`'s resource store (default: `default_context()`).
    Raises `OnnxImportError` naming the node, op type and reason for anything unsupported.
    """
    from convir.importer import onnx_math_ops  # noqa: F401  (registers its handlers)
    from convir.importer.onnx_ops import HANDLERS
    from convir.importer.patterns import fuse_decomposed

    model = load_model(model)
    opset = _default_opset(model)
    ctx = ctx or default_context()
    graph = model.graph
    initializers = {init.name: tensor_array(init, "initializer") for init in graph.initializer}

    inputs = [i for i in graph.input if i.name not in initializers]
    input_types = [_input_type(i, batch) for i in inputs]
    block = Block(arg_types=input_types)
    builder = GraphBuilder(ctx, block, values=dict(initializers))
    for info, arg in zip(inputs, block.args, strict=True):
        if info.name in builder.values:
            raise OnnxImportError(f"graph input '{info.name}' is declared twice")
        arg.name_hint = _value_name(info.name)
        builder.values[info.name] = arg

    for node in fuse_decomposed(graph):
        node_ctx = NodeContext(node, opset, builder)
        if node.domain not in ("", "ai.onnx"):
            raise node_ctx.error(f"operator domain '{node.domain}' is not supported")
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            supported = ", ".join(sorted(HANDLERS))
            raise node_ctx.error(
                f"operator {node.op_type} is not supported; supported: {supported}"
            )
        _check_attributes(node_ctx)
        try:
            results = handler(node_ctx)
        except OnnxImportError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, ArithmeticError) as error:
            raise node_ctx.error(str(error)) from None
        _bind_outputs(node_ctx, results)

    outputs = [_output_value(builder, info) for info in graph.output]
    block.add_op(ReturnOp(*outputs))

    def names(infos: Sequence[onnx.ValueInfoProto]) -> ArrayAttr[DictionaryAttr]:
        return ArrayAttr([DictionaryAttr({"onnx.name": StringAttr(i.name)}) for i in infos])

    func = FuncOp(
        "main",
        (input_types, [o.type for o in outputs]),
        Region(block),
        arg_attrs=names(inputs),
        res_attrs=names(graph.output),
    )
    module = ModuleOp([func])
    name_convs(module)
    try:
        module.verify()
    except VerifyException as error:
        raise OnnxImportError(f"the imported module does not verify: {error}") from None
    return module


def load_model(model: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    """`model` itself, or the model read from a path (OnnxImportError if it cannot be read)."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise OnnxImportError(f"cannot read '{path}': {error.strerror}") from None
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception:
        raise OnnxImportError(f"'{path}' is not an ONNX model (malformed protobuf)") from None
    if not proto.HasField("graph"):
        raise OnnxImportError(f"'{path}' is not an ONNX model (no graph)")
    folder = os.path.dirname(os.path.abspath(path))
    for tensor in _stored_tensors(proto):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            _load_external_data(tensor, folder)
    return proto


def _stored_tensors(proto: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The tensors stored in the model's main graph: initializers and node attributes."""
    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        tensors.extend(a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR)
    return tensors


def _load_external_data(tensor: onnx.TensorProto, folder: str) -> None:
    """Read the data of `tensor` from its external file, which must lie inside `folder` (the
    model's); an OnnxImportError names the tensor and the file otherwise."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    where = f"tensor '{tensor.name}': external data file '{location}'"
    target = os.path.realpath(os.path.join(folder, location))
    if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
        raise OnnxImportError(f"{where} must be a relative path inside the model's folder {folder}")
    if not os.path.isfile(target):
        raise OnnxImportError(f"{where} does not exist (or is not a regular file) in {folder}")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
    except ValueError:
        raise OnnxImportError(f"{where}: offset and length must be integers") from None
    size = os.path.getsize(target)
    if offset < 0 or offset > size or (length >= 0 and offset + length > size):
        raise OnnxImportError(
            f"{where} holds {size} bytes; offset {offset} and length {length} reach beyond it"
        )
    try:
        onnx.external_data_helper.load_external_data_for_tensor(tensor, folder)
    except (onnx.checker.ValidationError, ValueError, OSError) as error:
        raise OnnxImportError(f"{where} cannot be read: {error}") from None


def tensor_array(tensor: onnx.TensorProto, what: str) -> np.ndarray:
    """The numpy value of a stored tensor; an OnnxImportError names it if its data is damaged
    (a `raw_data` of the wrong length, say) or was left in an external file."""
    where = f"{what} '{tensor.name}'"
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise OnnxImportError(
            f"{where} keeps its data in an external file; import the model from its path, or "
            "load it with onnx.load(path) first"
        )
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError) as error:
        dims = list(tensor.dims)
        known = tensor.data_type in onnx.TensorProto.DataType.values() and tensor.data_type != 0
        dtype = onnx.TensorProto.DataType.Name(tensor.data_type) if known else ""
        if not known:
            reason = f"data type {tensor.data_type} is not an ONNX tensor type"
        elif tensor.HasField("raw_data") and dtype != "STRING":
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
            needed = int(np.prod(dims, dtype=np.int64)) * itemsize
            reason = f"raw_data holds {len(tensor.raw_data)} bytes, {dtype} {dims} needs {needed}"
        else:
            reason = f"its data does not make a {dtype} tensor of shape {dims} ({error})"
        raise OnnxImportError(f"{where}: {reason}") from None


def _default_opset(model: onnx.ModelProto) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise OnnxImportError("the model imports no version of the default ONNX operator set")
    opset = versions[0]
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxImportError(
            f"opset {opset} is not supported; convir imports opsets {MIN_OPSET} to {MAX_OPSET}"
        )
    return opset


def _input_type(info: onnx.ValueInfoProto, batch: int | None) -> TensorType:
    tensor = info.type.tensor_type
    if not info.type.HasField("tensor_type"):
        raise OnnxImportError(f"graph input '{info.name}' is not a tensor")
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type)
        raise OnnxImportError(
            f"graph input '{info.name}' has type {dtype}; only FLOAT is supported"
        )
    if not tensor.HasField("shape"):
        raise OnnxImportError(f"graph input '{info.name}' has no shape")
    shape = []
    for axis, dim in enumerate(tensor.shape.dim):
        static = dim.HasField("dim_value") and dim.dim_value > 0
        if axis == 0 and (batch is not None or not static):
            shape.append(batch or 1)
        elif static:
            shape.append(dim.dim_value)
        else:
            label = dim.dim_param or "?"
            raise OnnxImportError(
                f"graph input '{info.name}' has dynamic dimension '{label}' at axis {axis}; "
                "only the batch (axis 0) may be dynamic"
            )
    return f32_tensor(shape)


def _check_attributes(node: NodeContext) -> None:
    """Refuse attributes that the operator's ONNX schema (at the model's opset) does not define
    or gives another type, and missing required ones, as onnxruntime does."""
    try:
        schema = onnx.defs.get_schema(node.node.op_type, node.opset, "")
    except onnx.defs.SchemaError:
        return  # no schema at this opset: the handler decides what it accepts
    given = {attribute.name for attribute in node.node.attribute}
    for name, declared in schema.attributes.items():
        if declared.required and name not in given:
            raise node.error(f"the {name} attribute is required")
    for attribute in node.node.attribute:
        declared = schema.attributes.get(attribute.name)
        if declared is None:
            known = ", ".join(sorted(schema.attributes)) or "none"
            raise node.error(
                f"attribute '{attribute.name}' is not defined for {node.node.op_type} at opset "
                f"{node.opset}; its attributes are: {known}"
            )
        if attribute.type != int(declared.type):
            name = onnx.AttributeProto.AttributeType.Name
            raise node.error(
                f"attribute '{attribute.name}' has type {name(attribute.type)}; "
                f"{node.node.op_type} expects {name(int(declared.type))}"
            )


def _bind_outputs(node: NodeContext, results: Sequence[Value]) -> None:
    for index, name in enumerate(node.node.output):
        if name == "":
            continue
        if name in node.builder.values:
            raise node.error(
                f"output '{name}' is already defined by a graph input, an initializer or an "
                "earlier node; an ONNX graph defines every tensor once"
            )
        if index >= len(results):
            node.builder.values[name] = _Unavailable(node.where, index)
            continue
        result = results[index]
        if isinstance(result, SSAValue):
            if result.name_hint is None:
                result.name_hint = _value_name(name)
        else:
            result = np.asarray(result)  # numpy folding may yield scalars
        node.builder.values[name] = result


@dataclass(frozen=True)
class _Unavailable:
    """An optional output (a Dropout mask, say) that convir does not compute."""

    where: str
    index: int

    def message(self) -> str:
        return f"output {self.index} of {self.where}, which convir does not compute"


def _output_value(builder: GraphBuilder, info: onnx.ValueInfoProto) -> SSAValue:
    if info.name not in builder.values:
        raise OnnxImportError(f"graph output '{info.name}' is not produced by any node")
    value = builder.values[info.name]
    if isinstance(value, _Unavailable):
        raise OnnxImportError(f"graph output '{info.name}' is {value.message()}")
    if isinstance(value, np.ndarray):
        return builder.constant(info.name, value, None)
    return value


def _value_name(name: str) -> str | None:
    """A readable SSA name for an ONNX tensor name, or None when none can be made."""
    cleaned = "".join(c if c.isalnum() or c in "_$.-" else "_" for c in name).strip("_")
    if not cleaned:
        return None
    if cleaned[0].isdigit():
        cleaned = "v" + cleaned
    return cleaned
