"""GFLOP/s of conv algorithms on single NCHWc convs, kernel alone (NCHWc in and out, no pack),
next to the machine's measured FMA peak. Run from the repository root (it uses the tests' harness):

    PYTHONPATH=. python examples/benchmarks/conv_kernels.py direct,gemm1x1,im2col [threads] [reps]

Each layer is compiled once per algorithm with that algorithm's heuristic schedule; an
algorithm that does not apply to a layer prints "-". Times are medians after three warm-up runs.
"""

from __future__ import annotations

import ctypes
import sys
import time

import numpy as np

from convir import reference
from convir.target import Target
from lowering.algorithms import ALGORITHMS
from lowering.jit import compile_ir
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    ConvCase,
    compile_nchwc_conv,
    scheduled_conv,
)

#: ResNet-50 layers: input channels, input size, output channels, kernel, stride, padding.
LAYERS = {
    "1x1 256->64 @56": (256, 56, 64, 1, 1, 0),
    "1x1 64->256 @56": (64, 56, 256, 1, 1, 0),
    "1x1 512->128 s2 @28": (512, 28, 128, 1, 2, 0),
    "1x1 1024->256 @14": (1024, 14, 256, 1, 1, 0),
    "1x1 2048->512 @7": (2048, 7, 512, 1, 1, 0),
    "3x3 64->64 @56": (64, 56, 64, 3, 1, 1),
    "3x3 128->128 s2 @56": (128, 56, 128, 3, 2, 1),
    "3x3 256->256 @14": (256, 14, 256, 3, 1, 1),
    "7x7 3->64 s2 @224": (3, 224, 64, 7, 2, 3),
}


def peak_gflops(accumulators: int = 12, iterations: int = 50_000_000) -> float:
    """One core's FP32 FMA throughput: independent 16-lane FMA chains in a loop."""
    lines = ["define void @peak(i64 %n, ptr %out) {", "entry:", "  br label %loop", "loop:"]
    lines.append("  %i = phi i64 [0, %entry], [%next, %loop]")
    one = "<" + ", ".join(["float 1.0"] * 16) + ">"
    for a in range(accumulators):
        lines.append(f"  %a{a} = phi <16 x float> [zeroinitializer, %entry], [%b{a}, %loop]")
    for a in range(accumulators):
        lines.append(
            f"  %b{a} = call <16 x float> @llvm.fma.v16f32(<16 x float> %a{a}, "
            f"<16 x float> {one}, <16 x float> {one})"
        )
    lines += ["  %next = add i64 %i, 1", "  %more = icmp ult i64 %next, %n"]
    lines += [
        "  br i1 %more, label %loop, label %done",
        "done:",
        "  %s0 = fadd <16 x float> %b0, %b1",
    ]
    for a in range(2, accumulators):
        lines.append(f"  %s{a - 1} = fadd <16 x float> %s{a - 2}, %b{a}")
    lines += [f"  store <16 x float> %s{accumulators - 2}, ptr %out, align 4", "  ret void", "}"]
    lines.append("declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)")
    library = compile_ir("\n".join(lines), Target.host(), use_cache=False)
    function = library.function("peak", None, [ctypes.c_int64, ctypes.c_void_p])
    out = np.zeros(16, np.float32)
    best = min(_seconds(lambda: function(iterations, out.ctypes.data)) for _ in range(5))
    return 2 * 16 * accumulators * iterations / best / 1e9


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def layer_gflops(name: str, algorithm: str, threads: int, repetitions: int) -> float | None:
    c, size, o, k, stride, pad = LAYERS[name]
    case = ConvCase(
        rand(1, c, size, size),
        rand(o, c, k, k, seed=1),
        rand(o, seed=2),
        activation="relu",
        attributes=dict(strides=[stride, stride], pads=[pad] * 4),
    )
    op = scheduled_conv(case)
    module = ALGORITHMS[algorithm]
    if not module.applicable(op):
        return None
    compiled = compile_nchwc_conv(case, 16, algorithm, module.heuristic(op, Target.host()))
    compiled.threads = threads
    x = reference.pack(case.x, 16)
    for _ in range(3):
        compiled(x)
    seconds = float(np.median([_seconds(lambda: compiled(x)) for _ in range(repetitions)]))
    out = case.output_nchw()
    return 2 * o * c * k * k * out[2] * out[3] / seconds / 1e9


def main(argv: list[str]) -> None:
    algorithms = argv[1].split(",") if len(argv) > 1 else ["direct", "gemm1x1", "im2col"]
    threads = int(argv[2]) if len(argv) > 2 else 1
    repetitions = int(argv[3]) if len(argv) > 3 else 30
    print(f"FMA peak, one core: {peak_gflops():.1f} GFLOP/s; {threads} thread(s)")
    print(f"{'layer':<22}" + "".join(f"{a:>10}" for a in algorithms))
    for name in LAYERS:
        results = [layer_gflops(name, a, threads, repetitions) for a in algorithms]
        cells = "".join(f"{r:>10.1f}" if r is not None else f"{'-':>10}" for r in results)
        print(f"{name:<22}{cells}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
