"""Fork/join cost of convir's thread pool against libgomp's team, per parallel region:

    python examples/benchmarks/fork_join_latency.py [--busy-core]

Each region runs a near-empty body over 64 iterations in chunks of 8 (so both threads have
something to claim); a native loop enters ROUNDS regions back to back, as a model's kernels do,
and the time per region is the median over REPEAT such loops. libgomp runs `GOMP_parallel` with
its dynamic loop (`GOMP_loop_dynamic_start/next`), the way convir threaded kernels before
`lowering.thread_pool`; its waiting policy comes from the environment (GOMP_SPINCOUNT,
OMP_WAIT_POLICY), read once when libgomp loads. With --busy-core a process spins on one CPU
meanwhile (`convir.bench.busy`).
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from contextlib import nullcontext

from convir.bench.busy import BusyCore
from lowering.jit import compile_ir

ROUNDS = 2000
REPEAT = 7

KERNEL = """
declare void @convir_parallel_for(ptr, ptr, i64, i64, i32)
declare void @GOMP_parallel(ptr, ptr, i32, i32)
declare i8 @GOMP_loop_dynamic_start(i64, i64, i64, i64, ptr, ptr)
declare i8 @GOMP_loop_dynamic_next(ptr, ptr)
declare void @GOMP_loop_end_nowait()

define internal void @chunk(ptr %data, i64 %first, i64 %end) {
  %old = atomicrmw add ptr %data, i64 1 monotonic
  ret void
}

define internal void @team_body(ptr %data) {
entry:
  %first = alloca i64, align 8
  %end = alloca i64, align 8
  %got = call i8 @GOMP_loop_dynamic_start(i64 0, i64 64, i64 1, i64 8, ptr %first, ptr %end)
  br label %check
check:
  %more = phi i8 [ %got, %entry ], [ %next, %claimed ]
  %any = icmp ne i8 %more, 0
  br i1 %any, label %claimed, label %done
claimed:
  %old = atomicrmw add ptr %data, i64 1 monotonic
  %next = call i8 @GOMP_loop_dynamic_next(ptr %first, ptr %end)
  br label %check
done:
  call void @GOMP_loop_end_nowait()
  ret void
}

define void @pool_regions(ptr %counter, i64 %rounds, i32 %threads) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  call void @convir_parallel_for(ptr @chunk, ptr %counter, i64 64, i64 8, i32 %threads)
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %rounds
  br i1 %more, label %loop, label %exit
exit:
  ret void
}

define void @libgomp_regions(ptr %counter, i64 %rounds, i32 %threads) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  call void @GOMP_parallel(ptr @team_body, ptr %counter, i32 %threads, i32 0)
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %rounds
  br i1 %more, label %loop, label %exit
exit:
  ret void
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy-core", action="store_true", help="keep one CPU busy meanwhile")
    args = parser.parse_args()
    library = compile_ir(KERNEL, isolated=True)
    signature = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32]
    runners = {
        name: library.function(f"{name}_regions", None, signature) for name in ("pool", "libgomp")
    }
    counter = ctypes.c_int64(0)
    print(f"{'runtime':<9}{'threads':>8}{'µs per region (median)':>25}")
    with BusyCore() if args.busy_core else nullcontext():
        for threads in (1, 2):
            for name, run in runners.items():
                run(ctypes.addressof(counter), ROUNDS // 10, threads)  # warm up, start threads
                samples = []
                for _ in range(REPEAT):
                    start = time.perf_counter()
                    run(ctypes.addressof(counter), ROUNDS, threads)
                    samples.append((time.perf_counter() - start) / ROUNDS * 1e6)
                print(f"{name:<9}{threads:>8}{statistics.median(samples):>25.2f}")


if __name__ == "__main__":
    main()
