"""A tiny ONNX model for tuning tests: three convs, two of them identical (one workload), so a
tune measures two distinct workloads in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from convir.target import Target
from convir.tuning.database import CandidateResult, TuningDatabase


def tiny_model() -> onnx.ModelProto:
    """x[1, 16, 10, 10] -> conv 3×3 16→16 + relu -> the same conv again -> conv 1×1 16→32.

    16 channels: at least one NCHWc block on AVX2 (8) and AVX-512 (16) targets, so the first
    conv is not a stem that reads NCHW (`passes.convert_layout`) and shares the second's
    workload on both."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.2, name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv_a"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["y"], name="conv_c"),
    ]
    initializers = [
        weight("w1", 16, 16, 3, 3),
        weight("b1", 16),
        weight("w2", 16, 16, 3, 3),
        weight("b2", 16),
        weight("w3", 32, 16, 1, 1),
        weight("b3", 32),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16, 10, 10])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 32, 10, 10])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_tiny_model(directory: Path) -> Path:
    path = directory / "tiny.onnx"
    onnx.save(tiny_model(), path)
    return path


def fake_record(
    database: TuningDatabase,
    target: Target,
    key: str,
    algorithm: str,
    schedule: dict[str, int],
    threads: int = 1,
) -> None:
    """A record whose winner is `algorithm` with `schedule`, as if measured on `target`."""
    results = [CandidateResult(algorithm, schedule, "ok", median_s=1e-3, spread=0.01, samples=7)]
    database.record(target, threads, key, {}, results, heuristic=None, complete=True, seconds=1.0)
