"""Helpers shared by tests: build one-node ONNX models and run them in onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def single_node_model(
    op_type: str,
    inputs: dict[str, np.ndarray],
    initializers: dict[str, np.ndarray] | None = None,
    *,
    opset: int = 17,
    outputs: Sequence[str] = ("y",),
    input_names: Sequence[str] | None = None,
    **attributes,
) -> onnx.ModelProto:
    """A model with one node `op_type`; `inputs` become graph inputs, `initializers` weights.

    The node's inputs are `input_names` if given (use "" for an omitted optional input), else the
    graph inputs followed by the initializers, in order.
    """
    initializers = initializers or {}
    names = list(input_names) if input_names is not None else [*inputs, *initializers]
    node = helper.make_node(
        op_type, names, list(outputs), name=f"{op_type.lower()}_0", **attributes
    )
    graph = helper.make_graph(
        [node],
        f"{op_type}_test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(a, n) for n, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_onnxruntime(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of `model` on `inputs` in onnxruntime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, inputs)


def assert_close(ours: np.ndarray, theirs: np.ndarray, rel: float = 1e-4) -> None:
    """max |ours - theirs| <= rel * max(1e-6, max |theirs|), shapes equal."""
    assert ours.shape == theirs.shape, f"shape {ours.shape} != {theirs.shape}"
    scale = max(float(np.max(np.abs(theirs))) if theirs.size else 0.0, 1e-6)
    error = float(np.max(np.abs(ours - theirs))) if theirs.size else 0.0
    assert error <= rel * scale, f"max abs error {error:.3g} > {rel} x {scale:.3g}"


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    """Standard-normal float32 array."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
