"""CPU time of one model's convs under several algorithm/knob variants, 1 thread.

`convir bench layers` times wall clock against onnxruntime's profiler; on a busy machine (other
processes on the same cores) wall time swings by 2-3x between runs. This script compares
variants of convir's own kernels by this thread's CPU time (`time.thread_time`), which other
processes do not inflate: per layer whose name contains SUBSTR, each VARIANT (ALGORITHM or
ALGORITHM:KNOB=VALUE,...; `-` for convir's choice) is compiled (`NativeConv`) and sampled
interleaved, median of the samples.

    PYTHONPATH=$PWD python examples/benchmarks/conv_variants_cpu.py MODEL SUBSTR VARIANT...

MODEL is a built-in model or an .onnx path (`convir bench layers --models`).
"""

from __future__ import annotations

import argparse
import statistics
import time

from convir.bench.conv_harness import NativeConv, layer_data
from convir.bench.timing import calibrate
from convir.bench.workloads import select_layers
from passes.conv_overrides import parse_knobs


def _variant(text: str) -> tuple[str | None, dict[str, int]]:
    algorithm, _, knobs = text.partition(":")
    return (None if algorithm == "-" else algorithm), (parse_knobs(knobs) if knobs else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("substring")
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for layer in select_layers([args.model], args.substring):
        x, weight, bias = layer_data(layer)
        natives = []
        for text in args.variants:
            algorithm, knobs = _variant(text)
            natives.append(NativeConv(layer, x, weight, bias, algorithm=algorithm, knobs=knobs))
        iterations = [calibrate(native.run) for native in natives]
        samples: list[list[float]] = [[] for _ in natives]
        for _ in range(args.repeat):
            for native, count, times in zip(natives, iterations, samples, strict=True):
                times.append(native.seconds_per_call(count, time.thread_time))
        print(f"{layer.name} {layer.shape} d{layer.dilations[0]} ({layer.flop / 1e6:.0f} MFLOP)")
        for text, native, times in zip(args.variants, natives, samples, strict=True):
            ms = statistics.median(times) * 1e3
            gflops = layer.flop / statistics.median(times) / 1e9
            print(f"    {text:32s} {native.algorithm:9s} {ms:9.3f} ms CPU {gflops:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
