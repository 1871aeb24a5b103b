"""The measurements behind `conv-select-algorithm`'s winograd rule: every 3×3 stride-1 conv of
built-in models under each algorithm that applies, timed the same way, one thread and two.

    python examples/benchmarks/winograd_selection.py resnet18,resnet50,vgg16 --repeat 7

For each distinct 3×3 stride-1 dense conv (as `convir bench layers` takes them, same data), the
conv is compiled as the model runs it (`convir.bench.conv_harness.NativeConv`) with `direct`,
`im2col` and `winograd` at m = 2, 4, 6 (the other knobs from the heuristic), and the candidates
are sampled in turn (A, B, C, ... repeated), each sample the mean of enough back-to-back calls
to last >= 20 ms. Times are medians:

- at 1 thread, in CPU time of the calling thread (`time.thread_time`: the kernel runs on it),
  which other processes on a shared machine do not inflate;
- at 2 threads, in wall time (CPU time would count both workers), so on a loaded machine the
  2-thread column is only as good as the load allows: quote the load average with it.

With `--ort`, onnxruntime joins the 1-thread samples: a one-conv model
(`convir.bench.onnxrt.conv_model`, ORT_ENABLE_ALL, 1 intra-op thread, which runs on the calling
thread), timed as the CPU time of whole runs. That includes the NCHWc reorders ORT puts around
a lone conv (memory copies of the input and output, ~1-3 % of these convs), so ORT's column is
a few per cent too slow; the last column becomes ORT's time over the heuristic's winograd time.

Every candidate's output is checked against the first candidate's (relative error printed as
the worst over the winograd columns). The last columns are the best non-winograd time over the
best winograd time and the m the winograd heuristic picks.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from functools import partial

from convir.bench.conv_harness import NativeConv, layer_data
from convir.bench.onnxrt import conv_model, session
from convir.bench.timing import mean_call_seconds, relative_error
from convir.bench.workloads import select_layers

MS = (2, 4, 6)
MIN_SAMPLE_S = 0.02


def candidates(layer, x, weight, bias, threads: int) -> dict[str, NativeConv]:
    """The compiled conv of `layer` under each candidate, by column name."""
    convs = {
        name: NativeConv(layer, x, weight, bias, threads=threads, algorithm=name)
        for name in ("direct", "im2col")
    }
    for m in MS:
        convs[f"F{m}"] = NativeConv(
            layer, x, weight, bias, threads=threads, algorithm="winograd", knobs={"m": m}
        )
    return convs


def measure(
    convs: dict[str, NativeConv], threads: int, repeat: int, ort: OrtConv | None = None
) -> dict[str, float]:
    """Median seconds per call of each candidate, and of `ort` last (module doc)."""
    clock = time.thread_time if threads == 1 else time.perf_counter
    samplers, iterations = {}, {}
    for name, native in convs.items():
        native.run()
        start = time.perf_counter()
        native.run()
        once = max(time.perf_counter() - start, 1e-6)
        iterations[name] = max(1, min(200, round(MIN_SAMPLE_S / once)))
        samplers[name] = partial(native.seconds_per_call, iterations[name], clock)
    ort_iterations = iterations["direct"]  # onnxruntime's conv is about as fast as direct
    samples: dict[str, list[float]] = {name: [] for name in convs}
    for _ in range(repeat):
        for name, sample in samplers.items():
            samples[name].append(sample())
        if ort is not None:
            ort.sample(ort_iterations)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    if ort is not None:
        medians["ORT"] = ort.median_seconds()
    return medians


class OrtConv:
    """onnxruntime's one-conv model of `layer` sampled in CPU time (module doc, --ort)."""

    def __init__(self, layer, x, weight, bias) -> None:
        self._session = session(conv_model(layer, weight, bias), 1)
        self._feed = {"x": x}
        self._session.run(None, self._feed)
        self._samples: list[float] = []

    def sample(self, iterations: int) -> None:
        self._samples.append(mean_call_seconds(self._run, iterations, time.thread_time))

    def median_seconds(self) -> float:
        return statistics.median(self._samples)

    def _run(self) -> None:
        self._session.run(None, self._feed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="?", default="resnet18,resnet50,vgg16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--ort", action="store_true", help="onnxruntime too (1 thread)")
    parser.add_argument("--layers", metavar="SUBSTR", help="only layers whose name has SUBSTR")
    args = parser.parse_args()
    layers = [
        layer
        for layer in select_layers(args.models.split(","), args.layers)
        if layer.kernel == (3, 3) and layer.strides == (1, 1) and layer.group == 1
    ]
    print(f"load average at start: {os.getloadavg()}")
    for threads in (int(t) for t in args.threads.split(",")):
        unit = "CPU ms" if threads == 1 else "wall ms"
        header = f"{'layer':32s} {'shape':16s} {'t':>2s}"
        ort = args.ort and threads == 1
        names = ("direct", "im2col", *(f"F{m}" for m in MS), *(["ORT"] if ort else []))
        header += "".join(f" {name:>8s}" for name in names)
        last = "ORT/wino*" if ort else "best/wino"
        print(f"\n{unit}, {threads} thread(s)\n{header} {'err':>8s} {last:>9s} {'h.m':>4s}")
        for layer in layers:
            x, weight, bias = layer_data(layer)
            convs = candidates(layer, x, weight, bias, threads)
            first = next(iter(convs.values())).output()
            error = max(relative_error(convs[f"F{m}"].output(), first) for m in MS)
            times = measure(
                convs, threads, args.repeat, OrtConv(layer, x, weight, bias) if ort else None
            )
            heuristic_m = _m(
                NativeConv(layer, x, weight, bias, threads=threads, algorithm="winograd").schedule
            )
            if ort:
                ratio = times["ORT"] / times.get(f"F{heuristic_m}", math.nan)
            else:
                ratio = min(times["direct"], times["im2col"]) / min(times[f"F{m}"] for m in MS)
            shape = f"{layer.channels}x{layer.height}->{layer.out_channels}"
            row = f"{layer.name:32s} {shape:16s} {threads:2d}"
            row += "".join(f" {1e3 * t:8.3f}" for t in times.values())
            print(f"{row} {error:8.1e} {ratio:9.2f} {heuristic_m:>4s}", flush=True)
            del convs
        print(f"load average: {os.getloadavg()}")


def _m(schedule: str) -> str:
    import re

    found = re.search(r"m = (\d+)", schedule)
    return found.group(1) if found else "?"


if __name__ == "__main__":
    main()
