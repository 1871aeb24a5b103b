"""`convir bench layers`: each distinct conv of standard CNNs, convir against the peak and ORT.

For every layer (`workloads.select_layers`):
1. the same random input, weight and bias go to convir (`conv_harness.NativeConv`: the conv as
   it runs inside a compiled model, NCHWc in and out, bias and activation fused) and to
   onnxruntime (`onnxrt.ProfiledConv`: a one-Conv model, the conv node's own time);
2. the two outputs are compared once; a layer whose convir output differs from onnxruntime's by
   more than `TOLERANCE` of the output's magnitude is reported as a mismatch, without times;
3. the number of calls per sample is calibrated on convir's conv (≥ 2 ms per sample, at most
   `MAX_ITERATIONS` so that ORT's profile stays small), both are warmed up, and then `repeat`
   samples of each are taken alternately (convir, ORT, convir, ...), each the mean time per
   call over that many back-to-back calls (convir's made by a native loop, ORT's read from its
   profiler); each side's time is the median of its samples.

GFLOP/s counts 2 × multiply-adds of the conv (`ConvLayer.flop`); % of peak divides by the peak
measured by `peak.measure_peak` with the same number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from convir.bench import BenchError
from convir.bench.conv_harness import NativeConv, layer_data
from convir.bench.onnxrt import ProfiledConv, conv_model, require_onnxruntime
from convir.bench.peak import Peak, measure_peak
from convir.bench.timing import TOLERANCE, Comparison, calibrate, interleaved, relative_error
from convir.bench.workloads import ConvLayer, select_layers

MAX_ITERATIONS = 200
#: How onnxruntime's time is taken, for table headers and JSON.
ORT_METHOD = "conv node time from onnxruntime's profiler (NCHWc reorders excluded)"


@dataclass(frozen=True)
class LayerResult(Comparison):
    """The measurement of one layer (seconds per call) and the algorithm convir ran."""

    layer: ConvLayer
    algorithm: str
    iterations: int

    def gflops(self, seconds: float | None) -> float | None:
        return None if seconds is None else self.layer.flop / seconds / 1e9

    def to_json(self, peak: Peak) -> dict[str, object]:
        def percent(seconds: float | None) -> float | None:
            rate = self.gflops(seconds)
            return None if rate is None else 100 * rate / peak.gflops

        return {
            **self.layer.to_json(),
            "algorithm": self.algorithm,
            "iterations_per_sample": self.iterations,
            **self.times_json(),
            "convir_gflops": self.gflops(self.convir_s),
            "convir_peak_percent": percent(self.convir_s),
            "ort_gflops": self.gflops(self.ort_s),
            "ort_peak_percent": percent(self.ort_s),
        }


def bench_layer(
    layer: ConvLayer,
    *,
    threads: int,
    repeat: int,
    seed: int = 0,
    algorithm: str | None = None,
    knobs: dict[str, int] | None = None,
) -> LayerResult:
    """Check and time `layer` on convir and onnxruntime (module docstring); `algorithm` pins
    convir's algorithm where it applies (default: convir's selection), `knobs` the schedule
    knobs that algorithm has (default: its heuristic's)."""
    x, weight, bias = layer_data(layer, seed)
    native = NativeConv(layer, x, weight, bias, threads=threads, algorithm=algorithm, knobs=knobs)
    ort = ProfiledConv(conv_model(layer, weight, bias), {"x": x}, threads)
    error = relative_error(native.output(), ort.output())
    if error > TOLERANCE:
        return LayerResult(layer, native.algorithm, 0, max_rel_error=error)
    iterations = calibrate(native.run, max_iterations=MAX_ITERATIONS)
    for _ in range(iterations):
        ort.run()
    samplers: list[Callable[[], float | None]] = [
        lambda: native.seconds_per_call(iterations),
        lambda: ort.sample(iterations),
    ]
    convir_samples, _ = interleaved(samplers, repeat)
    timed = Comparison.timed(error, convir_samples, ort.sample_seconds())
    return LayerResult(layer, native.algorithm, iterations, **timed)


@dataclass(frozen=True)
class LayersReport:
    """All layer results with the peak they are measured against."""

    peak: Peak
    threads: int
    repeat: int
    results: list[LayerResult]

    def summary(self) -> dict[str, object]:
        """Per model: geometric-mean % of peak per layer kind and the conv time of one
        inference (Σ count × time); overall: the worst ORT/convir ratio and the mismatches."""
        models: dict[str, object] = {}
        for model in dict.fromkeys(r.layer.model for r in self.results):
            timed = [r for r in self.results if r.layer.model == model and r.convir_s]
            kinds: dict[str, object] = {}
            for kind in sorted({r.layer.kind for r in timed}):
                rates = [r.gflops(r.convir_s) for r in timed if r.layer.kind == kind]
                kinds[kind] = {
                    "layers": len(rates),
                    "geomean_peak_percent": 100 * _geomean(rates) / self.peak.gflops,
                }
            models[model] = {
                "kinds": kinds,
                "convir_ms_per_inference": 1e3 * sum(r.layer.count * r.convir_s for r in timed),
                "ort_ms_per_inference": 1e3 * sum(r.layer.count * r.ort_s for r in timed),
            }
        ratios = [r for r in self.results if r.ratio is not None]
        worst = min(ratios, key=lambda r: r.ratio, default=None)
        return {
            "models": models,
            "worst_ratio": None
            if worst is None
            else {"layer": worst.layer.name, "ratio": worst.ratio},
            "mismatches": [r.layer.name for r in self.results if not r.correct],
        }

    def to_json(self) -> dict[str, object]:
        return {
            "benchmark": "layers",
            "threads": self.threads,
            "repeat": self.repeat,
            "peak": self.peak.to_json(),
            "convir_time": "the compiled conv alone: NCHWc in and out, bias and activation fused",
            "ort_time": ORT_METHOD,
            "tolerance": TOLERANCE,
            "layers": [r.to_json(self.peak) for r in self.results],
            "summary": self.summary(),
        }


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def run_layers(
    models: Sequence[str],
    *,
    substring: str | None,
    threads: int,
    repeat: int,
    algorithm: str | None = None,
    knobs: dict[str, int] | None = None,
    on_result: Callable[[LayerResult, Peak], None] = lambda result, peak: None,
) -> LayersReport:
    """Measure the peak, then every selected layer (calling `on_result` after each)."""
    if repeat < 1:
        raise BenchError(f"--repeat must be >= 1, got {repeat}")
    layers = select_layers(models, substring)
    require_onnxruntime()
    peak = measure_peak(threads)
    results = []
    for layer in layers:
        result = bench_layer(
            layer, threads=threads, repeat=repeat, algorithm=algorithm, knobs=knobs
        )
        results.append(result)
        on_result(result, peak)
    return LayersReport(peak, threads, repeat, results)
