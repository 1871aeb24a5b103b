"""onnxruntime's side of the benchmarks: sessions set up alike, and a lone conv timed by its node.

Sessions (`session`) use ORT_ENABLE_ALL, `intra_op_num_threads` = the benchmark's threads, one
inter-op thread, and `session.intra_op.allow_spinning=0`: ORT's idle workers otherwise spin for
milliseconds after each run and steal the cores convir's next sample needs (on a shared machine
they also steal other people's).

`ProfiledConv` times onnxruntime's conv the way `NativeConv` times convir's. Given a one-Conv
model (+ its activation), ORT_ENABLE_ALL turns it into an NCHWc conv with the activation fused,
wrapped in ReorderInput/ReorderOutput nodes that convert NCHW to NCHWc and back; inside a whole
model those reorders happen once, not per conv. So the session runs with ORT's profiler on and
the time taken is, per run, the sum of the `dur` of every node event except the reorders: the
conv kernel, plus any epilogue node ORT did not fuse (so both sides always do the same work).
Whole-session time would add the reorders and ~20 µs of Python and session overhead per run,
which for a small layer is most of it. The profiler's clock has microsecond resolution; a
sample is the mean over many runs, like convir's.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convir.bench import BenchError
from convir.bench.workloads import ConvLayer

#: Nodes ORT adds around a lone NCHWc conv; not part of the conv's time.
REORDER_OPS = frozenset({"ReorderInput", "ReorderOutput"})
# IR version 8 / opset 17: what every onnxruntime >= 1.18 reads.
_IR_VERSION, _OPSET = 8, 17


def require_onnxruntime():
    """The onnxruntime module, or a BenchError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise BenchError("this benchmark needs onnxruntime: pip install 'convir[bench]'") from None
    return onnxruntime


def session(model: onnx.ModelProto, threads: int, *, profile_prefix: str | None = None):
    """An onnxruntime CPU session of `model` with the benchmark's options (module doc)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _activation_node(layer: ConvLayer, source: str) -> tuple[onnx.NodeProto, list]:
    """The ONNX node of `layer`'s activation reading `source` and writing "y", and the
    initializers it needs."""
    kind, alpha, beta = layer.activation, layer.alpha, layer.beta
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "hard_swish": "HardSwish"}
    if kind in simple:
        return helper.make_node(simple[kind], [source], ["y"], name="act"), []
    if kind == "leaky_relu":
        return helper.make_node("LeakyRelu", [source], ["y"], name="act", alpha=alpha), []
    if kind == "hard_sigmoid":
        node = helper.make_node("HardSigmoid", [source], ["y"], name="act", alpha=alpha, beta=beta)
        return node, []
    if kind == "clip":
        bounds = [
            numpy_helper.from_array(np.array(alpha, np.float32), "clip_min"),
            numpy_helper.from_array(np.array(beta, np.float32), "clip_max"),
        ]
        node = helper.make_node("Clip", [source, "clip_min", "clip_max"], ["y"], name="act")
        return node, bounds
    raise BenchError(f"{layer.name}: no ONNX form for activation '{kind}'")


def conv_model(layer: ConvLayer, weight: np.ndarray, bias: np.ndarray | None) -> onnx.ModelProto:
    """A one-Conv ONNX model of `layer` (input "x", output "y"), its activation after it."""
    initializers = [numpy_helper.from_array(weight, "w")]
    inputs = ["x", "w"]
    if bias is not None:
        initializers.append(numpy_helper.from_array(bias, "b"))
        inputs.append("b")
    fused = layer.activation not in (None, "identity")
    conv = helper.make_node(
        "Conv",
        inputs,
        ["c" if fused else "y"],
        name="conv",
        kernel_shape=list(layer.kernel),
        strides=list(layer.strides),
        pads=list(layer.pads),
        dilations=list(layer.dilations),
        group=layer.group,
    )
    nodes, constants = [conv], []
    if fused:
        activation, constants = _activation_node(layer, "c")
        nodes.append(activation)
    oh, ow = layer.output_hw
    x_shape = [1, layer.channels, layer.height, layer.width]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, layer.out_channels, oh, ow])],
        initializers + constants,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=_IR_VERSION
    )


class ProfiledConv:
    """A one-conv model in onnxruntime with its profiler on; conv time per run (module doc).

    Call `output()` (once, it also warms up), then `sample(iterations)` as often as needed, then
    `sample_seconds()` once: it stops the profiler and returns, for each sample, the mean
    per-run time of the conv's nodes.
    """

    def __init__(self, model: onnx.ModelProto, feed: Mapping[str, np.ndarray], threads: int):
        self._directory = tempfile.TemporaryDirectory(prefix="convir-bench-")
        prefix = os.path.join(self._directory.name, "ort")
        self._session = session(model, threads, profile_prefix=prefix)
        self._feed = dict(feed)
        self._runs = 0
        self._samples: list[tuple[int, int]] = []  # (first run, runs)

    def output(self) -> np.ndarray:
        """Run once; the first output."""
        self._runs += 1
        return self._session.run(None, self._feed)[0]

    def run(self) -> None:
        """One run, not part of any sample (warm-up, calibration)."""
        self._runs += 1
        self._session.run(None, self._feed)

    def sample(self, iterations: int) -> None:
        """`iterations` runs whose conv times make one sample (read by `sample_seconds`)."""
        self._samples.append((self._runs, iterations))
        run, feed = self._session.run, self._feed
        for _ in range(iterations):
            run(None, feed)
        self._runs += iterations

    def sample_seconds(self) -> list[float]:
        """Mean conv seconds per run of each sample, from the profile (stops profiling)."""
        path = self._session.end_profiling()
        try:
            with open(path) as file:
                events = json.load(file)
        finally:
            self._directory.cleanup()
        per_run = node_seconds_per_run(events)
        if len(per_run) != self._runs:
            raise BenchError(
                f"onnxruntime's profile holds {len(per_run)} runs, {self._runs} were made; "
                "its per-node times cannot be attributed"
            )
        return [float(np.mean(per_run[first : first + n])) for first, n in self._samples]


def node_seconds_per_run(events: list[dict]) -> list[float]:
    """For each `model_run` event of an ORT profile, in order, the summed `dur` of the node
    events inside it other than the NCHWc reorders, in seconds."""
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    nodes = sorted(
        (e["ts"], e["dur"])
        for e in events
        if e.get("cat") == "Node" and e.get("args", {}).get("op_name") not in REORDER_OPS
    )
    totals = [0.0] * len(runs)
    index = 0
    for ts, dur in nodes:
        while index < len(runs) and ts > runs[index][1]:
            index += 1
        if index == len(runs) or ts < runs[index][0]:
            raise BenchError("onnxruntime's profile has a node event outside any run")
        totals[index] += dur * 1e-6
    if runs and not all(totals):
        raise BenchError("onnxruntime's profile has a run without any conv node event")
    return totals
