"""Time convir's ConvTranspose (phase convs + interleave) against onnxruntime's, whole op.

    PYTHONPATH=. python examples/bench_conv_transpose.py --threads 1 --repeat 15

Each workload is a one-node ONNX model (NCHW in and out, constant weight and bias); both sides
run the whole model, so convir's time includes its pack/unpack and onnxruntime's its reorders.
Samples alternate between the two, medians are reported; ORT runs with ORT_ENABLE_ALL and no
spinning (convir.bench.onnxrt.session).

At one thread both sides compute on the calling thread, so a sample is measured in that thread's
CPU time (`time.thread_time`) as well as in wall time: on a shared machine (load 8-12 on two
cores when this was written) a sample longer than a scheduler time slice is preempted and its
wall time inflated several-fold at random, while its CPU time is not. Wall-time medians are
printed too; at more than one thread only they mean anything.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import convir
from convir.bench.onnxrt import session
from convir.bench.timing import calibrate, interleaved, median, relative_error

#: (label, input [N, C, H, W], output channels, kernel, stride, pad, output_padding)
WORKLOADS = [
    ("DCGAN 256->128 k4s2p1 16x16", (1, 256, 16, 16), 128, 4, 2, 1, 0),
    ("U-Net up 128->64 k2s2 28x28", (1, 128, 28, 28), 64, 2, 2, 0, 0),
    ("decoder 64->32 k4s2p1 56x56", (1, 64, 56, 56), 32, 4, 2, 1, 0),
    ("ResNet-dec 512->256 k3s2p1op1 7x7", (1, 512, 7, 7), 256, 3, 2, 1, 1),
    ("FCN-16s 21->21 k32s16p8 14x14", (1, 21, 14, 14), 21, 32, 16, 8, 0),
    ("stride-1 64->64 k3p1 56x56", (1, 64, 56, 56), 64, 3, 1, 1, 0),
]


def conv_transpose_model(shape, outputs: int, kernel: int, stride: int, pad: int, extra: int):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((shape[1], outputs, kernel, kernel)).astype(np.float32) * 0.05
    bias = rng.standard_normal(outputs).astype(np.float32)
    node = helper.make_node(
        "ConvTranspose",
        ["x", "w", "b"],
        ["y"],
        strides=[stride, stride],
        pads=[pad] * 4,
        output_padding=[extra, extra],
    )
    graph = helper.make_graph(
        [node],
        "conv_transpose",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def sampler(call, iterations: int, samples: list[float]):
    """A sampler for `interleaved`: times `iterations` calls, appends the mean thread CPU seconds
    per call to `samples` and returns the mean wall seconds."""

    def sample() -> float:
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        for _ in range(iterations):
            call()
        samples.append((time.thread_time() - start_cpu) / iterations)
        return (time.perf_counter() - start_wall) / iterations

    return sample


def compare(model, x: np.ndarray, threads: int, repeat: int) -> tuple[list[float], ...]:
    """([convir, ORT] median thread-CPU ms, [convir, ORT] median wall ms, [relative error])."""
    compiled = convir.compile(model, threads=threads)
    ort_session = session(model, threads)
    feed = {"x": x}
    error = relative_error(compiled.run(feed)["y"], ort_session.run(None, feed)[0])
    calls = [lambda: compiled.run(feed), lambda: ort_session.run(None, feed)]
    cpu: list[list[float]] = [[], []]
    samplers = [
        sampler(call, calibrate(call), taken) for call, taken in zip(calls, cpu, strict=True)
    ]
    wall = interleaved(samplers, repeat)
    return [median(t) * 1e3 for t in cpu], [median(t) * 1e3 for t in wall], [error]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"{'':36} {'--- thread CPU ms ---':^25}   {'----- wall ms -----':^25}")
    header = f"{'convir':>8} {'ORT':>8} {'ORT/cvr':>7}"
    print(f"{'workload':36} {header}   {header} {'rel err':>8}")
    for label, shape, outputs, kernel, stride, pad, extra in WORKLOADS:
        model = conv_transpose_model(shape, outputs, kernel, stride, pad, extra)
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        cpu_ms, wall_ms, (error,) = compare(model, x, args.threads, args.repeat)
        print(
            f"{label:36} {cpu_ms[0]:8.3f} {cpu_ms[1]:8.3f} {cpu_ms[1] / cpu_ms[0]:7.2f}   "
            f"{wall_ms[0]:8.3f} {wall_ms[1]:8.3f} {wall_ms[1] / wall_ms[0]:7.2f} {error:8.1e}"
        )


if __name__ == "__main__":
    main()
