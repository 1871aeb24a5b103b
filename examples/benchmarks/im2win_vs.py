"""im2win against direct, blocked im2col and winograd on the KxK convs of CNNs: time and memory.

    PYTHONPATH=. python examples/benchmarks/im2win_vs.py --models resnet50,vgg16 --repeat 10
    PYTHONPATH=. python examples/benchmarks/im2win_vs.py --models resnet50,vgg16 --memory

Time: each layer of `convir bench layers` whose kernel is larger than 1×1 is compiled pinned to
each algorithm that applies (`convir.bench.conv_harness.NativeConv`: the conv alone, NCHWc in
and out, bias fused), checked against the numpy reference, then sampled alternately (direct,
im2col, winograd, im2win, direct, ...), each sample the mean over a calibrated native loop of
calls. Each sample records the calling thread's CPU time (`time.thread_time`, 1 thread: the
kernel runs on the calling thread), which a shared machine disturbs less than wall time: the
table gives medians of CPU time, im2win's GFLOP/s and % of the FMA peak (`convir bench peak`,
best of its runs, measured first), and "im2win/best": the best of direct and im2col divided
by im2win's time (> 1: im2win is faster), then the same against winograd where it applies
(winograd does fewer multiplies, so GFLOP/s would flatter it: the table compares times).

Memory (`--memory`, nothing runs): per layer, the workspace of im2win's and im2col's heuristic
schedules for the host (what `memory_report()` shows: both per worker slot × slots), and the
column buffer of an unblocked im2col (C·KH·KW × OH·OW floats for the whole image).
"""

from __future__ import annotations

import argparse
import statistics
import time

from convir.bench.conv_harness import NativeConv, conv_module, layer_data, reference_output
from convir.bench.peak import measure_peak
from convir.bench.timing import calibrate, relative_error
from convir.bench.workloads import select_layers
from convir.compiler import lower
from convir.dialects import conv, make_context
from convir.target import Target
from lowering.algorithms import ALGORITHMS as ALGORITHM_MODULES
from passes.workspace_budget import workspace_bytes

ALGORITHMS = ("direct", "im2col", "winograd", "im2win")


def spatial_layers(models: list[str], substring: str | None):
    return [layer for layer in select_layers(models, substring) if layer.kernel != (1, 1)]


def cpu_seconds_per_call(native: NativeConv, iterations: int) -> float:
    start = time.thread_time()
    native.seconds_per_call(iterations)
    return (time.thread_time() - start) / iterations


def time_layers(models: list[str], substring: str | None, repeat: int) -> None:
    peak = measure_peak(1).gflops
    print(f"peak {peak:.1f} GFLOP/s (1 thread)")
    print(f"{'layer':26} {'shape':20} " + " ".join(f"{a + ' ms':>11}" for a in ALGORITHMS), end="")
    print(f" {'im2win GF/s':>11} {'%peak':>6} {'im2win/best':>11} {'/winograd':>9}")
    for layer in spatial_layers(models, substring):
        x, weight, bias = layer_data(layer)
        expected = reference_output(layer, x, weight, bias)
        natives = {}
        for algorithm in ALGORITHMS:
            native = NativeConv(layer, x, weight, bias, algorithm=algorithm)
            if native.algorithm != algorithm:
                continue
            error = relative_error(native.output(), expected)
            if error > 1e-4:
                raise SystemExit(f"{layer.name} {algorithm}: relative error {error:.2g}")
            natives[algorithm] = native
        iterations = {a: calibrate(n.run, max_iterations=200) for a, n in natives.items()}
        samples: dict[str, list[float]] = {a: [] for a in natives}
        for _ in range(repeat):
            for algorithm, native in natives.items():
                samples[algorithm].append(cpu_seconds_per_call(native, iterations[algorithm]))
        ms = {a: 1e3 * statistics.median(s) for a, s in samples.items()}
        cells = " ".join(f"{ms[a]:11.3f}" if a in ms else f"{'-':>11}" for a in ALGORITHMS)
        shape = f"{layer.channels}x{layer.height}->{layer.out_channels} k{layer.kernel[0]}"
        shape += f" s{layer.strides[0]}"
        nan = float("nan")
        rate = layer.flop / (ms["im2win"] / 1e3) / 1e9 if "im2win" in ms else nan
        others = [ms[a] for a in ("direct", "im2col") if a in ms]
        ratio = min(others) / ms["im2win"] if "im2win" in ms and others else nan
        winograd = ms["winograd"] / ms["im2win"] if {"im2win", "winograd"} <= set(ms) else nan
        print(
            f"{layer.name:26} {shape:20} {cells} {rate:11.1f} "
            f"{100 * rate / peak:6.1f} {ratio:11.2f} {winograd:9.2f}",
            flush=True,
        )


def scheduled_conv(layer, algorithm: str, target: Target) -> conv.Conv2DOp | None:
    """The layer's conv pinned to `algorithm` with its heuristic schedule (None: n/a)."""
    ctx = make_context()
    _, weight, bias = layer_data(layer)
    module = conv_module(ctx, layer, weight, bias, target.vector_width)
    pins = {"all": algorithm}
    block = target.vector_width
    scheduled = lower(
        module, target=target, stop="scheduled", ctx=ctx, block=block, algorithms=pins
    ).module
    op = next(op for op in scheduled.walk() if isinstance(op, conv.Conv2DOp))
    return op if op.algorithm.data == algorithm else None


def workspaces(layer, algorithm: str, target: Target) -> tuple[int, int] | None:
    """Workspace bytes of the heuristic schedule and of the smallest candidate."""
    op = scheduled_conv(layer, algorithm, target)
    if op is None:
        return None
    module = ALGORITHM_MODULES[algorithm]
    heuristic = module.heuristic(op, target)
    sizes = [workspace_bytes(op, algorithm, s) for s in [heuristic, *module.candidates(op, target)]]
    return sizes[0], min(sizes)


def memory_table(models: list[str], substring: str | None) -> None:
    target = Target.host()
    columns = ("im2win", "im2win min", "im2col", "im2col min", "im2win image", "im2col image")
    print(f"{'layer':40} {'shape':30} " + " ".join(f"{c:>12}" for c in columns) + "  (KiB)")
    for layer in spatial_layers(models, substring):
        (kh, kw), (sh, sw), (dh, dw) = layer.kernel, layer.strides, layer.dilations
        oh = (layer.height + layer.pads[0] + layer.pads[2] - dh * (kh - 1) - 1) // sh + 1
        ow = (layer.width + layer.pads[1] + layer.pads[3] - dw * (kw - 1) - 1) // sw + 1
        # Whole-image buffers on logical channels: im2win's [C, OH, W_win, KH] (Lu et al.)
        # and an unblocked im2col's [C·KH·KW, OH·OW].
        window_columns = (ow - 1) * sw + (kw - 1) * dw + 1
        image = [
            4 * layer.channels * oh * window_columns * kh,
            4 * layer.channels * kh * kw * oh * ow,
        ]
        cells = []
        for algorithm in ("im2win", "im2col"):
            sizes = workspaces(layer, algorithm, target)
            cells += ["n/a", "n/a"] if sizes is None else [f"{v / 1024:.1f}" for v in sizes]
        cells += [f"{v / 1024:.1f}" for v in image]
        shape = f"{layer.channels}x{layer.height}->{layer.out_channels} k{kh} s{sh}"
        print(f"{layer.name:40} {shape:30} " + " ".join(f"{c:>12}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet50,vgg16")
    parser.add_argument("--layers", default=None, help="only layers whose name contains this")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--memory", action="store_true", help="the workspace table only")
    args = parser.parse_args()
    models = args.models.split(",")
    if args.memory:
        memory_table(models, args.layers)
    else:
        time_layers(models, args.layers, args.repeat)


if __name__ == "__main__":
    main()
