"""convir as an ONNX backend (`onnx.backend.base.Backend`), for `onnx.backend.test.BackendTest`.

    import convir.backend
    outputs = convir.backend.run_model(model, [x])        # or prepare(model).run([x])

`prepare` compiles the model natively with `convir.compile` (the object cache honours
$CONVIR_CACHE_DIR); `BackendRep.run` takes the graph inputs in order (a list, a single array, or
a dict by name) and returns the outputs in graph-output order as a `namedtupledict`. Only the CPU
device is supported, data is float32 only, and models convir cannot import raise
`convir.OnnxImportError` naming the node. `run_node` wraps the node in a one-node model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from convir.compiler import compile as compile_model
from convir.runtime import CompiledModel

#: The opset a node given to `run_node` is run at when the caller does not name one.
DEFAULT_NODE_OPSET = 17


class ConvirRep(BackendRep):
    """A compiled model behind the `BackendRep` interface."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Outputs in graph-output order for `inputs`: a list or tuple in graph-input order,
        a single array (one-input models), or a dict by input name. Inputs must be float32."""
        if kwargs:
            raise TypeError(f"run takes no options, got {sorted(kwargs)}")
        names = self.compiled.input_names
        if isinstance(inputs, Mapping):
            feed = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            if len(inputs) != len(names):
                raise ValueError(f"the model takes {len(names)} inputs {names}, got {len(inputs)}")
            feed = dict(zip(names, inputs, strict=True))
        outputs = self.compiled.run({name: _float32(name, array) for name, array in feed.items()})
        ordered = [outputs[name] for name in self.compiled.output_names]
        return namedtupledict("Outputs", self.compiled.output_names)(*ordered)


class ConvirBackend(Backend):
    """Compiles ONNX models with `convir.compile` and runs them on the CPU."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> ConvirRep:
        """Compile `model` for `device` (CPU only); kwargs go to `convir.compile` (threads,
        target, cache_dir)."""
        if not cls.supports_device(device):
            raise ValueError(f"device '{device}' is not supported; convir runs on CPU only")
        return ConvirRep(compile_model(model, **kwargs))

    @classmethod
    def run_model(
        cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[np.ndarray, ...]:
        """Compile `model` and run it once on `inputs`."""
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, ...]:
        """Run `node` alone on `inputs` (a list in node-input order, or a dict by name) by
        compiling a one-node model at opset `opset_version` (default DEFAULT_NODE_OPSET)."""
        opset = kwargs.pop("opset_version", DEFAULT_NODE_OPSET)
        super().run_node(node, inputs, device, outputs_info, opset_version=opset)
        names = [name for name in node.input if name]
        feed = (
            dict(inputs) if isinstance(inputs, Mapping) else dict(zip(names, inputs, strict=True))
        )
        graph = helper.make_graph(
            [node],
            f"{node.op_type}_node",
            [
                helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, np.shape(feed[name]))
                for name in names
            ],
            [
                helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)
                for name in node.output
                if name
            ],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.run_model(model, feed, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """True for "CPU" only."""
        try:
            return Device(device).type == DeviceType.CPU
        except AttributeError:
            return False


def _float32(name: str, array: Any) -> np.ndarray:
    """`array` as a float32 numpy array; other dtypes are refused, never converted."""
    array = np.asarray(array)
    if array.dtype != np.float32:
        raise ValueError(f"input '{name}' has dtype {array.dtype}; convir runs float32 only")
    return array


prepare = ConvirBackend.prepare
run_model = ConvirBackend.run_model
run_node = ConvirBackend.run_node
supports_device = ConvirBackend.supports_device
