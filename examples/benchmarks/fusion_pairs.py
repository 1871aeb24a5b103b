"""Layer fusion measured: MobileNetV2's dw3x3 + 1x1 pairs fused vs separate (both convir) vs
onnxruntime, and whole models with `fusion="all"` vs `"none"` vs onnxruntime.

    python examples/benchmarks/fusion_pairs.py [--threads 1] [--repeat 15] [--size 224]
                                              [--models mobilenet_v2] [--no-pairs]
                                              [--fusion all|auto]

Per pair: a two-conv ONNX model — depthwise 3×3 with bias and Clip(0, 6) (a folded BatchNorm and
ReLU6), then a 1×1 with bias, plus the block's input as a residual where MobileNetV2 adds one —
compiled by convir with layer fusion on (`fusion="all"`, or `--fusion auto`: where the cost model
of `passes.fuse_layers` says) and off (`"none"`), and run by
onnxruntime (ORT_ENABLE_ALL, spinning off). Every engine is called on NCHW input and output
from Python (so each pays its layout conversions and call overhead; the fused and separate
convir models pay the same). A sample is the thread CPU time per call over a calibrated number of
calls (at 1 thread both engines compute on the calling thread, so other processes on a loaded
machine do not count); the three engines' samples interleave; the table gives medians and the
same-run ratios. With more than one thread, CPU time would add the workers' and wall time is
used instead (noisy on a shared machine). Outputs are checked against onnxruntime first.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import convir
from convir.bench.onnxrt import session
from convir.bench.timing import calibrate, interleaved, mean_call_seconds, median, relative_error
from convir.models import build

#: MobileNetV2's distinct dw3x3 + 1x1 pairs at 224×224: (channels, input size, dw stride,
#: output channels, residual), in network order.
MOBILENET_V2_PAIRS = [
    (32, 112, 1, 16, False),
    (96, 112, 2, 24, False),
    (144, 56, 1, 24, True),
    (144, 56, 2, 32, False),
    (192, 28, 1, 32, True),
    (192, 28, 2, 64, False),
    (384, 14, 1, 64, True),
    (384, 14, 1, 96, False),
    (576, 14, 1, 96, True),
    (576, 14, 2, 160, False),
    (960, 7, 1, 160, True),
    (960, 7, 1, 320, False),
]


def pair_model(channels: int, size: int, stride: int, out: int, residual: bool) -> onnx.ModelProto:
    """The two-conv model of one pair (module doc), random weights."""
    rng = np.random.default_rng(channels * 1000 + size + out)

    def init(name: str, shape) -> onnx.TensorProto:
        scale = 1.0 / np.sqrt(np.prod(shape[1:]))
        array = (rng.standard_normal(shape) * scale).astype(np.float32)
        return numpy_helper.from_array(array, name)

    out_size = (size + 2 - 3) // stride + 1
    initializers = [
        init("w1", (channels, 1, 3, 3)),
        init("b1", (channels,)),
        init("w2", (out, channels, 1, 1)),
        init("b2", (out,)),
        numpy_helper.from_array(np.array(0.0, np.float32), "low"),
        numpy_helper.from_array(np.array(6.0, np.float32), "high"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["x", "w1", "b1"], ["d"], group=channels, pads=[1] * 4, strides=[stride] * 2
        ),
        helper.make_node("Clip", ["d", "low", "high"], ["a"]),
        helper.make_node("Conv", ["a", "w2", "b2"], ["p" if residual else "y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])]
    if residual:
        nodes.append(helper.make_node("Add", ["p", "r"], ["y"]))
        shape = [1, out, out_size, out_size]
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, shape))
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out, out_size, out_size])
    graph = helper.make_graph(nodes, "pair", inputs, [output], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def compare(model: onnx.ModelProto, threads: int, repeat: int, fusion: str = "all") -> list[float]:
    """Median seconds per call of convir fused (layer fusion mode `fusion`), convir separate
    and onnxruntime (module doc)."""
    rng = np.random.default_rng(1)
    feed = {
        i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(
            np.float32
        )
        for i in model.graph.input
    }
    fused = convir.compile(model, threads=threads, fusion=fusion)
    separate = convir.compile(model, threads=threads, fusion="none")
    ort = session(model, threads)
    expected = ort.run(None, feed)[0]
    for compiled in (fused, separate):
        error = relative_error(next(iter(compiled.run(feed).values())), expected)
        if error > 1e-4:
            raise SystemExit(f"convir differs from onnxruntime: relative error {error:.2e}")
    calls: list[Callable[[], object]] = [
        lambda: fused.run(feed),
        lambda: separate.run(feed),
        lambda: ort.run(None, feed),
    ]
    clock = time.thread_time if threads == 1 else time.perf_counter
    counts = [calibrate(call) for call in calls]
    samplers = [
        (lambda call=call, count=count: mean_call_seconds(call, count, clock))
        for call, count in zip(calls, counts, strict=True)
    ]
    return [median(samples) for samples in interleaved(samplers, repeat)]


def _row(label: str, times: list[float]) -> str:
    fused, separate, ort = (1e3 * t for t in times)
    return (
        f"{label:<28} {fused:9.3f} {separate:9.3f} {ort:9.3f} "
        f"{separate / fused:10.2f} {ort / fused:8.2f}"
    )


HEADER = f"{'':<28} {'fused ms':>9} {'sep. ms':>9} {'ORT ms':>9} {'sep/fused':>10} {'ORT/fused':>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=15, help="samples per engine (15)")
    parser.add_argument("--size", type=int, default=224, help="whole models' input size")
    parser.add_argument("--models", default="mobilenet_v2", help="comma-separated, or ''")
    parser.add_argument("--no-pairs", action="store_true", help="whole models only")
    parser.add_argument(
        "--fusion", default="all", choices=["all", "auto"], help="mode of the 'fused' column"
    )
    args = parser.parse_args()
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.1f} at start")
    print(HEADER)
    if not args.no_pairs:
        for pair in MOBILENET_V2_PAIRS:
            channels, size, stride, out, residual = pair
            label = f"{channels}@{size} s{stride} -> {out}{' +r' if residual else ''}"
            times = compare(pair_model(*pair), args.threads, args.repeat, args.fusion)
            print(_row(label, times), flush=True)
    for name in filter(None, args.models.split(",")):
        model = build(name, size=args.size)
        times = compare(model, args.threads, args.repeat, args.fusion)
        print(_row(f"{name} @{args.size}", times), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
