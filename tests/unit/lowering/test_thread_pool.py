"""convir's thread pool (`lowering.thread_pool`): every iteration runs exactly once, whatever the
team size, the chunking, the number of Python threads calling at once, or how late workers start.

The body below adds 1 to `counts[i]` atomically for each iteration i of its chunk and records
which OS thread ran the chunk, so a lost, repeated or overlapping chunk shows up as a count that
is not 1, and a team larger than asked for as too many thread ids.
"""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np
import pytest

from lowering.jit import compile_ir
from lowering.thread_pool import ENTRY_POINT, pool_ir

KERNEL = f"""
declare void @{ENTRY_POINT}(ptr, ptr, i64, i64, i32)
declare i32 @gettid()

%args = type {{ ptr, ptr }} ; counts (i32 per iteration), owners (i32 per iteration)

define internal void @body(ptr %data, i64 %first, i64 %end) {{
entry:
  %counts_p = getelementptr inbounds %args, ptr %data, i64 0, i32 0
  %owners_p = getelementptr inbounds %args, ptr %data, i64 0, i32 1
  %counts = load ptr, ptr %counts_p, align 8
  %owners = load ptr, ptr %owners_p, align 8
  %tid = call i32 @gettid()
  br label %loop
loop:
  %i = phi i64 [ %first, %entry ], [ %i1, %loop ]
  %count = getelementptr inbounds i32, ptr %counts, i64 %i
  %old = atomicrmw add ptr %count, i32 1 seq_cst
  %owner = getelementptr inbounds i32, ptr %owners, i64 %i
  store i32 %tid, ptr %owner, align 4
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %end
  br i1 %more, label %loop, label %exit
exit:
  ret void
}}

define void @run(ptr %counts, ptr %owners, i64 %total, i64 %chunk, i32 %threads) {{
  %data = alloca %args, align 8
  %counts_p = getelementptr inbounds %args, ptr %data, i64 0, i32 0
  %owners_p = getelementptr inbounds %args, ptr %data, i64 0, i32 1
  store ptr %counts, ptr %counts_p, align 8
  store ptr %owners, ptr %owners_p, align 8
  call void @{ENTRY_POINT}(ptr @body, ptr %data, i64 %total, i64 %chunk, i32 %threads)
  ret void
}}
"""


@pytest.fixture(scope="module")
def run():
    library = compile_ir(KERNEL, isolated=True)
    pointer = ctypes.c_void_p
    signature = [pointer, pointer, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32]
    function = library.function("run", None, signature)

    def call(total: int, chunk: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        counts = np.zeros(max(total, 1), np.int32)
        owners = np.full(max(total, 1), -1, np.int32)
        function(counts.ctypes.data, owners.ctypes.data, total, chunk, threads)
        return counts[:total], owners[:total]

    return call


@pytest.mark.parametrize("threads", [0, 1, 2, 3, 8])
@pytest.mark.parametrize(
    ("total", "chunk"), [(0, 1), (1, 1), (5, 1), (1000, 7), (64, 64), (97, 13)]
)
def test_every_iteration_runs_once_on_at_most_threads_threads(run, total, chunk, threads) -> None:
    for _ in range(20):  # workers wake at different times from one call to the next
        counts, owners = run(total, chunk, threads)
        assert np.array_equal(counts, np.ones(total, np.int32))
        if threads >= 1:
            assert len(np.unique(owners)) <= threads
        # a chunk runs on one thread
        for first in range(0, total, chunk):
            assert len(np.unique(owners[first : first + chunk])) == 1


def test_one_thread_and_single_chunks_run_on_the_caller(run) -> None:
    caller = threading.get_native_id()
    assert np.all(run(100, 3, 1)[1] == caller)
    assert np.all(run(10, 10, 4)[1] == caller)


def test_concurrent_callers_each_get_every_iteration_once(run) -> None:
    """Python threads calling at once: one owns the pool, the others run their loops alone."""
    failures: list[str] = []

    def caller() -> None:
        for _ in range(200):
            counts, _ = run(500, 5, 2)
            if not np.array_equal(counts, np.ones(500, np.int32)):
                failures.append(f"counts {np.unique(counts)}")

    callers = [threading.Thread(target=caller) for _ in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert failures == []


@pytest.mark.parametrize("pause_s", [0.0, 1e-4, 0.02])
def test_jobs_after_a_pause_find_workers_spinning_yielding_or_asleep(run, pause_s) -> None:
    """Jobs spaced so that workers wait for the next one in each phase (pause spin, CPU yields,
    futex sleep) still run every iteration once."""
    for _ in range(10):
        counts, owners = run(1000, 7, 2)
        assert np.array_equal(counts, np.ones(1000, np.int32))
        assert len(np.unique(owners)) <= 2
        time.sleep(pause_s)


def test_idle_workers_end_up_asleep(run) -> None:
    """Once jobs stop, workers stop spinning and yielding: the process uses (almost) no CPU."""
    run(1000, 7, 8)
    time.sleep(0.05)  # longer than any worker's spin and yield phases
    start = time.process_time()
    time.sleep(0.2)
    # 7 workers spinning through the 0.2 s would have used ~1.4 s of CPU (up to 0.4 s on 2 CPUs)
    assert time.process_time() - start < 0.05


def test_unsupported_machines_are_named() -> None:
    with pytest.raises(NotImplementedError, match="supports x86_64, aarch64, not riscv64"):
        pool_ir("riscv64")
    assert "@llvm.aarch64.hint" in pool_ir("aarch64")
