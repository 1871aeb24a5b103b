"""Weights as `dense_resource` blobs backed by numpy arrays.

MLIR keeps large constants out of the IR text: an attribute `dense_resource<conv1.weight> :
tensor<64x3x7x7xf32>` names a blob that lives in the context and is printed, if at all, in the
`{-# dialect_resources: { builtin: { ... } } #-}` section at the end of the file.

xDSL 0.74 implements that section through the builtin dialect's `OpAsmDialectInterface`, but its
interface stores every blob as a hex string on a process-wide singleton. `ArrayResources` replaces
it: blobs are numpy arrays, hex is produced only when a printout asks for it, and each `Context`
made by `convir.dialects.make_context` owns its own store, so weights die with their context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from xdsl.context import Context
from xdsl.dialect_interfaces.op_asm import OpAsmDialectInterface
from xdsl.dialects.builtin import (
    Builtin,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    Float32Type,
    Float64Type,
    IntegerType,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Dialect, Operation

# MLIR writes a blob as "0x" + its alignment (4 bytes, little endian) + the raw bytes.
_BLOB_ALIGNMENT = 4
_HANDLE_CHARS = re.compile(r"[^A-Za-z0-9_.$]")


def sanitize_handle(name: str) -> str:
    """Turn any name (an ONNX initializer name, say) into a valid resource handle."""
    handle = _HANDLE_CHARS.sub("_", name)
    if not handle or not (handle[0].isalpha() or handle[0] == "_"):
        handle = "_" + handle
    return handle


class ArrayResources(OpAsmDialectInterface):
    """The builtin dialect's resource store, holding blobs as numpy arrays.

    `elide` (default True) leaves blobs out of printouts; the handles still print, so IR text
    round-trips, but weights must then be supplied again before the IR can be executed.
    """

    def __init__(self, elide: bool = True) -> None:
        super().__init__()
        self.elide = elide
        self._arrays: dict[str, np.ndarray] = {}

    def declare_resource(self, key: str) -> str:
        key = sanitize_handle(key)
        unique, counter = key, 0
        while unique in self._blob_storage or unique in self._arrays:
            unique, counter = f"{key}_{counter}", counter + 1
        self._blob_storage[unique] = ""
        return unique

    def add(self, name: str, array: np.ndarray) -> str:
        """Store `array` under a fresh handle derived from `name`; return the handle."""
        handle = self.declare_resource(name)
        self._arrays[handle] = np.ascontiguousarray(array)
        return handle

    def parse_resource(self, key: str, val: str) -> None:
        if not val.startswith("0x") or len(val) < 10:
            raise ValueError(f"resource '{key}' is not an MLIR hex blob (0x + alignment + data)")
        if key not in self._blob_storage:
            raise KeyError(f"resource '{key}' was not declared")
        self._arrays[key] = np.frombuffer(bytes.fromhex(val[10:]), dtype=np.uint8)

    def lookup(self, key: str) -> str | None:
        return self._blob_hex(key) if key in self._arrays else None

    def build_resources(self, keys: Iterable[str]) -> dict[str, str]:
        if self.elide:
            return {}
        return {key: self._blob_hex(key) for key in keys if key in self._arrays}

    def _blob_hex(self, key: str) -> str:
        alignment = _BLOB_ALIGNMENT.to_bytes(4, "little").hex()
        return "0x" + alignment + self._arrays[key].tobytes().hex()

    def retain(self, handles: Iterable[str]) -> None:
        """Forget every array but those of `handles` (the ones some IR still refers to)."""
        keep = set(handles)
        for handle in [h for h in self._arrays if h not in keep]:
            del self._arrays[handle]

    def release(self, handle: str) -> None:
        """Forget the array of `handle` (its last reader is done with it); no-op if unknown."""
        self._arrays.pop(handle, None)

    def data(self, handle: str) -> np.ndarray:
        """The array stored under `handle`, as stored (shape and dtype as they were given)."""
        return self._arrays[handle]

    def array(self, attr: DenseResourceAttr) -> np.ndarray:
        """The array behind `attr`, with the attribute's shape and element type."""
        handle = attr.resource_handle.data
        if handle not in self._arrays:
            raise ValueError(
                f"dense_resource<{handle}> has no data in this context: the IR was printed with "
                "its weights elided (print it with resources, e.g. `convir import --keep-weights`)"
            )
        tensor_type = attr.type
        assert isinstance(tensor_type, TensorType)
        dtype = numpy_dtype(tensor_type.get_element_type())
        raw = self._arrays[handle]
        if raw.dtype == np.uint8 and dtype != np.uint8:
            raw = raw.view(dtype)
        shape = tensor_type.get_shape()
        if raw.size != int(np.prod(shape)):
            raise ValueError(
                f"dense_resource<{handle}> holds {raw.size} elements, its type {tensor_type} "
                f"needs {int(np.prod(shape))}"
            )
        return raw.reshape(shape)


def numpy_dtype(element_type: Attribute) -> np.dtype:
    """The numpy dtype of a builtin element type (f32, f64, i64, i32, i8, i1)."""
    if isinstance(element_type, Float32Type):
        return np.dtype(np.float32)
    if isinstance(element_type, Float64Type):
        return np.dtype(np.float64)
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        return np.dtype(bool) if width == 1 else np.dtype(f"int{width}")
    raise ValueError(f"no numpy dtype for element type {element_type}")


def builtin_with_resources(elide: bool = True) -> Dialect:
    """A fresh builtin dialect whose resource store is an `ArrayResources`."""
    return Dialect(
        "builtin", list(Builtin.operations), list(Builtin.attributes), [ArrayResources(elide)]
    )


def resources_of(ctx: Context) -> ArrayResources:
    """The `ArrayResources` store of a context made by `convir.dialects.make_context`."""
    store = ctx.get_dialect("builtin").get_interface(OpAsmDialectInterface)
    if not isinstance(store, ArrayResources):
        raise TypeError("this context was not made by convir.dialects.make_context")
    return store


def resource_attr(ctx: Context, name: str, array: np.ndarray) -> DenseResourceAttr:
    """Store a float32 `array` in `ctx` under a fresh handle derived from `name`; the attribute
    of a `conv.constant` holding it."""
    array = np.require(array, np.float32, "C")
    handle = resources_of(ctx).add(name, array)
    return DenseResourceAttr.from_params(handle, TensorType(f32, list(array.shape)))


def referenced_handles(module: Operation) -> set[str]:
    """The resource handles of every `dense_resource` attribute on `module` and the ops in it."""
    handles = set()
    for op in module.walk():
        for attr in (*op.properties.values(), *op.attributes.values()):
            if isinstance(attr, DenseResourceAttr):
                handles.add(attr.resource_handle.data)
    return handles


def constant_array(ctx: Context, value: Attribute) -> np.ndarray:
    """The numpy value of a `conv.constant`'s attribute (dense_resource or dense)."""
    if isinstance(value, DenseResourceAttr):
        return resources_of(ctx).array(value)
    if isinstance(value, DenseIntOrFPElementsAttr):
        tensor_type = value.get_type()
        dtype = numpy_dtype(tensor_type.get_element_type())
        values = np.array(value.get_values(), dtype=dtype)
        shape = tensor_type.get_shape()
        if values.size == 1:  # a splat
            return np.full(shape, values.reshape(()), dtype=dtype)
        return values.reshape(shape)
    raise ValueError(f"unsupported constant attribute {value}")
