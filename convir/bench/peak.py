"""The machine's FP32 peak, measured with a generated FMA kernel (never assumed from a data sheet).

The kernel (`peak_ir`) keeps `accumulators` independent chains of `<W x float>` `llvm.fma` in a
counted loop, W = the target's vector width: enough independent chains to cover the FMA latency
on every FMA pipe (4 cycles × 2 pipes needs 8; 24 on AVX-512 leaves room), each chain starting
from its own memory so LLVM cannot merge them, and all results stored so none is dead. Before it
is trusted, its optimised assembly is checked to hold at least one full-width vector FMA per
chain (`vfmadd...ps` on zmm for AVX-512, ymm for AVX2; `fmla` on NEON): a peak measured on
scalar or half-width code would flatter every percentage computed from it.

The number reported is the best of `RUNS` runs, not their median: interference from other
processes can only slow the kernel down, never speed it up, so the fastest run is the closest
to the peak the core can sustain. Runs are short (`RUN_S`, a few scheduler time slices) and
many, so that on a shared machine some of them run undisturbed; an FMA loop reaches its steady
rate within microseconds, so short runs lose nothing. With `threads` > 1 the kernel runs on
that many Python threads at once (ctypes releases the GIL), each on its own buffers; the wall
time from a common start to the last thread's end gives the machine's total. Results are
cached per process.

On AMD Zen 4 a 512-bit FMA is executed as two 256-bit halves: expect about 32 flop per cycle per
core (2 pipes × 8 lanes × 2 flop), e.g. ≈ 120 GFLOP/s at 3.7 GHz.
"""

from __future__ import annotations

import ctypes
import re
import threading
import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from convir.bench import BenchError
from convir.target import Target

FUNCTION = "convir_peak_fma"
#: Seconds one timed run lasts, and how many runs the best is taken from (module doc).
RUN_S = 0.01
RUNS = 20


@dataclass(frozen=True)
class Peak:
    """A measured peak: total GFLOP/s of `threads` threads, and what was measured."""

    gflops: float
    threads: int
    vector_width: int
    accumulators: int
    fma_instructions: int

    @property
    def gflops_per_core(self) -> float:
        return self.gflops / self.threads

    def to_json(self) -> dict[str, object]:
        """The peak as plain data for `--json`."""
        return {
            "gflops": self.gflops,
            "gflops_per_core": self.gflops_per_core,
            "threads": self.threads,
            "vector_width": self.vector_width,
            "accumulators": self.accumulators,
            "fma_instructions_in_loop": self.fma_instructions,
            "method": f"best of {RUNS} runs of ~{RUN_S * 1e3:.0f} ms",
        }


def default_accumulators(target: Target) -> int:
    """Independent FMA chains: all vector registers but a few (two operands, spare)."""
    return max(8, min(24, target.vector_registers - 4))


def peak_ir(vector_width: int, accumulators: int, triple: str = "") -> str:
    """LLVM IR of `void convir_peak_fma(i64 iterations, float* data)`.

    `data` holds 2 + `accumulators` vectors: the two FMA operands, then each chain's start
    value, overwritten with its end value. Each iteration does `accumulators` FMAs on vectors
    of `vector_width` floats: 2 · accumulators · vector_width flop.
    """
    vec = f"<{vector_width} x float>"
    fma = f"@llvm.fma.v{vector_width}f32"
    lines = [f'target triple = "{triple}"' if triple else ""]
    lines += [f"declare {vec} {fma}({vec}, {vec}, {vec})", ""]
    lines += [f"define void @{FUNCTION}(i64 %iterations, ptr noalias %data) {{", "entry:"]

    def slot(index: int) -> str:
        return f"getelementptr inbounds {vec}, ptr %data, i64 {index}"

    lines += [
        f"  %a = load {vec}, ptr %data, align 4",
        f"  %b.ptr = {slot(1)}",
        f"  %b = load {vec}, ptr %b.ptr, align 4",
    ]
    for j in range(accumulators):
        lines += [
            f"  %init{j}.ptr = {slot(2 + j)}",
            f"  %init{j} = load {vec}, ptr %init{j}.ptr, align 4",
        ]
    lines += ["  br label %loop", "loop:", "  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]"]
    for j in range(accumulators):
        lines.append(f"  %acc{j} = phi {vec} [ %init{j}, %entry ], [ %acc{j}.next, %loop ]")
    for j in range(accumulators):
        lines.append(f"  %acc{j}.next = call {vec} {fma}({vec} %acc{j}, {vec} %a, {vec} %b)")
    lines += [
        "  %i.next = add i64 %i, 1",
        "  %done = icmp uge i64 %i.next, %iterations",
        "  br i1 %done, label %exit, label %loop",
        "exit:",
    ]
    for j in range(accumulators):
        lines.append(f"  store {vec} %acc{j}.next, ptr %init{j}.ptr, align 4")
    lines += ["  ret void", "}", ""]
    return "\n".join(lines)


def count_vector_fmas(asm: str, target: Target) -> int:
    """Full-width vector FP32 FMA instructions in `asm` for `target`'s vector width."""
    if target.triple.startswith(("aarch64", "arm64")):
        pattern = r"\bfmla\s+v\d+\.4s"
    else:
        register = {16: "zmm", 8: "ymm", 4: "xmm"}[target.vector_width]
        pattern = rf"\bvfmadd\w*ps\s+[^\n]*%{register}"
    return len(re.findall(pattern, asm))


class _Kernel:
    """The compiled peak kernel and what it does per iteration."""

    def __init__(self, target: Target, accumulators: int) -> None:
        from lowering.codegen import assembly
        from lowering.jit import compile_ir

        self.target, self.accumulators = target, accumulators
        ir = peak_ir(target.vector_width, accumulators, target.triple)
        self.fma_instructions = count_vector_fmas(assembly(ir, target), target)
        if self.fma_instructions < accumulators:
            raise BenchError(
                f"the peak kernel compiled to {self.fma_instructions} {target.vector_width}-wide "
                f"vector FMAs for {accumulators} chains; a peak measured on that code is not "
                "the machine's (is FMA missing from the target's features?)"
            )
        self._library = compile_ir(ir, target)
        self.function = self._library.function(FUNCTION, None, [ctypes.c_int64, ctypes.c_void_p])
        self.flop_per_iteration = 2 * accumulators * target.vector_width

    def buffer(self) -> np.ndarray:
        """Operands a = 1 - 2^-20 and b = 2^-20 keep every chain finite and normal forever."""
        data = np.ones(((2 + self.accumulators), self.target.vector_width), np.float32)
        data[0], data[1] = 1.0 - 2.0**-20, 2.0**-20
        return data


def _timed_run(kernel: _Kernel, iterations: int, threads: int) -> float:
    """Wall seconds for `threads` threads each running `iterations` iterations."""
    buffers = [kernel.buffer() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(data: np.ndarray) -> None:
        barrier.wait()
        kernel.function(iterations, data.ctypes.data)

    workers = [threading.Thread(target=work, args=(b,)) for b in buffers]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


@cache
def measure_peak(threads: int = 1, target: Target | None = None) -> Peak:
    """The FP32 peak of `threads` cores running the FMA kernel (module docstring); cached."""
    if threads < 1:
        raise BenchError(f"peak: threads must be >= 1, got {threads}")
    target = target or Target.host()
    if not target.has_fma:
        raise BenchError(f"peak: target {target.name!r} has no FMA; no FMA peak to measure")
    kernel = _Kernel(target, default_accumulators(target))
    iterations = 1 << 16
    while _timed_run(kernel, iterations, 1) < RUN_S / 4 and iterations < 1 << 34:
        iterations *= 2
    iterations *= 4
    best_s = min(_timed_run(kernel, iterations, threads) for _ in range(RUNS))
    flop = kernel.flop_per_iteration * iterations * threads
    return Peak(
        gflops=flop / best_s / 1e9,
        threads=threads,
        vector_width=target.vector_width,
        accumulators=kernel.accumulators,
        fma_instructions=kernel.fma_instructions,
    )
