"""convir's thread pool: `convir_parallel_for`, the one entry point threaded kernels call.

    void convir_parallel_for(void (*body)(void *data, int64_t first, int64_t end), void *data,
                             int64_t total, int64_t chunk, int32_t threads)

runs `body(data, first, end)` over chunks of `chunk` iterations that together cover [0, total)
exactly once, on the calling thread and up to `threads - 1` pool workers (0: libgomp's
`omp_get_max_threads()`, which `@forward` sets with `omp_set_num_threads`), and returns when
every chunk is done.

**Why not libgomp's team.** `GOMP_parallel` ends with a barrier that waits until every thread of
the team has arrived, and a thread arrives only once the kernel schedules it. On a machine where
another process keeps a core busy, each fork/join then waits for a descheduled worker (a time
slice, milliseconds), once per kernel, and libgomp's spinning waiters (GOMP_SPINCOUNT) take CPU
from the very thread they wait for: two threads ran 4-15x slower than one (`convir bench models
--busy-core`; `lowering.parallel_work`). Here the caller never waits for a worker that has not
started: a worker takes part only by claiming a chunk, and the caller waits only for chunks that
were claimed and are not finished. A late worker finds the chunks taken and goes back to sleep;
at worst the caller waits for one chunk of a worker descheduled while running it, which is why
chunks are small (`lowering.parallel_work`). This is how onnxruntime's pool degrades to
one-thread speed, not below.

**Protocol.** One job at a time is published in one of two slots, `slot = generation & 1`; a
64-bit counter `next` holds `generation << 32 | next unclaimed iteration`. A thread claims a chunk
with a compare-and-swap on `next` that also checks the generation, so a claim succeeds only while
its job is current, and the slot it read the job from cannot have been rewritten (that happens
two generations later, after this job completed, which needs this claim's chunk). Every thread
adds the iterations it ran to the slot's `done`; the caller returns when `done == total`. Workers
wait for a new generation spinning briefly (SPIN_PAUSES pause instructions, ~2 µs: loops that
follow each other without a gap find them awake), then yielding their CPU SPIN_YIELDS times
(~120 µs on an otherwise idle CPU: loops separated by a few serial kernels still find them awake,
while on a busy CPU each yield hands the CPU to whoever else wants it), and then sleep on a futex
on `generation`;
the caller wakes them with one futex syscall only when one sleeps (the store to `generation`
and the load of `sleepers`, and the worker's increment of `sleepers` and its reload of
`generation`, are sequentially consistent, so a wake-up is never lost). The caller, waiting for
a claimed chunk, spins then yields its CPU, so a worker that shares it can finish.

One caller owns the pool at a time (a try-lock): a second Python thread calling a model while
the first one's kernel runs, or a loop with a single chunk, runs `body(data, 0, total)` itself.
Workers are started on first use (pthreads, never stopped; at most MAX_WORKERS); a process
forked from one that has them has none, and its caller then simply claims every chunk itself.

The pool is LLVM IR (below), built like any kernel by `lowering.jit` (cached on disk) and loaded
into the global namespace once per process, the first time a library imports
`convir_parallel_for`. Linux only (futex); x86-64 and AArch64.
"""

from __future__ import annotations

import platform

ENTRY_POINT = "convir_parallel_for"
"""The symbol threaded kernels call; its C signature is in the module docstring."""

SPIN_PAUSES = 100
"""Pause instructions a worker spins for a new job before it sleeps (~65 cycles each on Zen:
~2 µs). Measured on the shared 2-core development machine (load average ~9), RegNetY-400MF at
2 threads against 1, three alternations of 30 runs: 2,000 pauses (~40 µs) made 2 threads 7-30 %
slower than 1 every time, 100 or 0 did not; a spinning worker takes CPU from the caller and
from the thread it shares a core with. The caller never waits for a sleeping worker, so
waking it (one futex syscall) costs the caller ~1 µs, not the wake-up latency."""

SPIN_YIELDS = 200
"""`sched_yield` calls a worker makes after SPIN_PAUSES, checking for a new job after each, before
it sleeps on the futex (~0.6 µs each on an idle CPU of the 2-core Zen 4 VM: ~120 µs in all).

Why: a sleeping worker takes tens of µs to wake (a futex wake of an idle vCPU), so a loop
forked after a gap longer than the pause spin ran on the caller alone in practice and paid for
the fork anyway: EfficientNet-B0 runs 67 forked loops per inference with serial kernels
(squeeze-and-excitation blocks, small 1x1 convs) of 5-80 µs between them, and its depthwise
convs of 13-65 µs were 4-21 µs *slower* at 2 threads than at 1 (per-kernel times from
readcyclecounter stamps around each kernel call). With the yield phase the same kernels gain,
and whole models at 2 threads against 1 went from 0.86-1.08 to 0.68-0.79 (EfficientNet-B0) and
from 0.90-0.92 to 0.69-0.71 (MobileNetV2), quiet machine, `convir bench models`. Unlike a pause
spin, a yield does not hold a CPU another thread wants: with one CPU kept busy (`--busy-core`)
2 threads against 1 stayed within 0.94-1.09 (EfficientNet-B0, MobileNetV2, MobileNetV3-Large,
GoogLeNet, RegNetY-400MF; before: up to 1.37). The price, under that load: a worker that yielded
its time slice to the busy process comes back later than a futex-woken one, so big-conv models
gain less from the second thread (GoogLeNet at 2 threads ~10 % slower than with the pause-only
wait, still no slower than 1 thread). Sleeping as soon as one yield takes > 20 µs measured
worse under load (MobileNetV2/V3 at 1.2x), and 1,000 yields no better than 200."""

CALLER_SPIN_PAUSES = 200
"""Pause instructions the caller spins, waiting for a claimed chunk, between CPU yields."""

MAX_WORKERS = 63
"""Pool threads at most, besides the caller."""

_FUTEX_SYSCALL = {"x86_64": 202, "aarch64": 98}
_PAUSE = {
    "x86_64": "call void @llvm.x86.sse2.pause()",
    "aarch64": "call void @llvm.aarch64.hint(i32 1)",
}
_PAUSE_DECLARATION = {
    "x86_64": "declare void @llvm.x86.sse2.pause()",
    "aarch64": "declare void @llvm.aarch64.hint(i32)",
}
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129

_POOL_IR = """
%job = type {{ ptr, ptr, i64, i64, i32 }} ; body, data, total, chunk, threads

@jobs = internal global [2 x %job] zeroinitializer, align 64
@done = internal global [2 x i64] zeroinitializer, align 64
@next = internal global i64 0, align 64
@generation = internal global i32 0, align 64
@owner = internal global i32 0, align 64
@sleepers = internal global i32 0, align 64
@workers = internal global i32 0, align 64

declare i32 @omp_get_max_threads()
declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i64 @syscall(i64, ...)
declare i32 @sched_yield()
{pause_declaration}

; Claims the next chunk of generation %g's job for thread %id: true and [*first, *end) if one is
; left; false if the job is finished, no longer current, or does not use thread %id.
define internal i1 @claim(i32 %g, i32 %id, ptr %first, ptr %end) {{
entry:
  %slot = and i32 %g, 1
  %slot64 = zext i32 %slot to i64
  %total_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 2
  %chunk_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 3
  %threads_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 4
  %g64 = zext i32 %g to i64
  %tag = shl i64 %g64, 32
  br label %retry
retry:
  %v = load atomic i64, ptr @next seq_cst, align 8
  %v_tag = and i64 %v, -4294967296
  %current = icmp eq i64 %v_tag, %tag
  br i1 %current, label %check_thread, label %none
check_thread:
  %threads = load atomic i32, ptr %threads_p monotonic, align 4
  %wanted = icmp ult i32 %id, %threads
  br i1 %wanted, label %check_left, label %none
check_left:
  %index = and i64 %v, 4294967295
  %total = load atomic i64, ptr %total_p monotonic, align 8
  %left = icmp ult i64 %index, %total
  br i1 %left, label %take, label %none
take:
  %chunk = load atomic i64, ptr %chunk_p monotonic, align 8
  %wanted_end = add i64 %index, %chunk
  %short = icmp ult i64 %wanted_end, %total
  %stop = select i1 %short, i64 %wanted_end, i64 %total
  %claimed = or i64 %tag, %stop
  %swap = cmpxchg ptr @next, i64 %v, i64 %claimed seq_cst seq_cst
  %swapped = extractvalue {{ i64, i1 }} %swap, 1
  br i1 %swapped, label %won, label %retry
won:
  store i64 %index, ptr %first, align 8
  store i64 %stop, ptr %end, align 8
  ret i1 true
none:
  ret i1 false
}}

; Runs chunks of generation %g's job as thread %id until none is left for it.
define internal void @work(i32 %g, i32 %id) {{
entry:
  %first = alloca i64, align 8
  %end = alloca i64, align 8
  %slot = and i32 %g, 1
  %slot64 = zext i32 %slot to i64
  %body_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 0
  %data_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 1
  %done_p = getelementptr inbounds [2 x i64], ptr @done, i64 0, i64 %slot64
  br label %next_chunk
next_chunk:
  %got = call i1 @claim(i32 %g, i32 %id, ptr %first, ptr %end)
  br i1 %got, label %run, label %exit
run:
  ; The slot holds this job until it completes, which waits for this chunk.
  %body = load atomic ptr, ptr %body_p monotonic, align 8
  %data = load atomic ptr, ptr %data_p monotonic, align 8
  %a = load i64, ptr %first, align 8
  %b = load i64, ptr %end, align 8
  call void %body(ptr %data, i64 %a, i64 %b)
  %ran = sub i64 %b, %a
  %ignored = atomicrmw add ptr %done_p, i64 %ran seq_cst
  br label %next_chunk
exit:
  ret void
}}

; A pool thread: works on the current job, waits for the next generation (spin, then futex).
define internal ptr @worker(ptr %arg) {{
entry:
  %id64 = ptrtoint ptr %arg to i64
  %id = trunc i64 %id64 to i32
  br label %job
job:
  %seen = load atomic i32, ptr @generation seq_cst, align 4
  %v = load atomic i64, ptr @next seq_cst, align 8
  %v_high = lshr i64 %v, 32
  %g = trunc i64 %v_high to i32
  call void @work(i32 %g, i32 %id)
  br label %spin
spin:
  %spun = phi i32 [ 0, %job ], [ %spun_next, %pause ], [ %spun_next, %yield ]
  %now = load atomic i32, ptr @generation seq_cst, align 4
  %changed = icmp ne i32 %now, %seen
  br i1 %changed, label %job, label %keep_spinning
keep_spinning:
  %spun_next = add i32 %spun, 1
  %more = icmp ult i32 %spun_next, {spin_pauses}
  br i1 %more, label %pause, label %yield_or_sleep
pause:
  {pause}
  br label %spin
yield_or_sleep:
  %polite = icmp ult i32 %spun_next, {spin_and_yields}
  br i1 %polite, label %yield, label %sleep
yield:
  %yielded = call i32 @sched_yield()
  br label %spin
sleep:
  %s0 = atomicrmw add ptr @sleepers, i32 1 seq_cst
  %again = load atomic i32, ptr @generation seq_cst, align 4
  %unchanged = icmp eq i32 %again, %seen
  br i1 %unchanged, label %wait, label %woken
wait:
  %w = call i64 (i64, ...) @syscall(i64 {futex}, ptr @generation, i32 {futex_wait},
                                    i32 %seen, ptr null)
  br label %woken
woken:
  %s1 = atomicrmw sub ptr @sleepers, i32 1 seq_cst
  br label %job
}}

; Starts pool threads until there are %wanted (at most {max_workers}); called by the owner only.
define internal void @start_workers(i32 %wanted) {{
entry:
  %handle = alloca i64, align 8
  %too_many = icmp sgt i32 %wanted, {max_workers}
  %cap = select i1 %too_many, i32 {max_workers}, i32 %wanted
  br label %check
check:
  %have = load atomic i32, ptr @workers monotonic, align 4
  %short = icmp slt i32 %have, %cap
  br i1 %short, label %start, label %exit
start:
  %id = add i32 %have, 1
  %id64 = zext i32 %id to i64
  %arg = inttoptr i64 %id64 to ptr
  %rc = call i32 @pthread_create(ptr %handle, ptr null, ptr @worker, ptr %arg)
  %failed = icmp ne i32 %rc, 0
  ; A thread that cannot be started is not retried: the caller claims its chunks.
  %count = select i1 %failed, i32 %cap, i32 %id
  store atomic i32 %count, ptr @workers monotonic, align 4
  br label %check
exit:
  ret void
}}

define void @{entry}(ptr %body, ptr %data, i64 %total, i64 %chunk, i32 %threads_arg) {{
entry:
  %default = icmp eq i32 %threads_arg, 0
  br i1 %default, label %ask, label %decide
ask:
  %max = call i32 @omp_get_max_threads()
  br label %decide
decide:
  %threads = phi i32 [ %threads_arg, %entry ], [ %max, %ask ]
  %one_thread = icmp sle i32 %threads, 1
  %one_chunk = icmp sle i64 %total, %chunk
  %huge = icmp sge i64 %total, 2147483648
  %few = or i1 %one_thread, %one_chunk
  %alone = or i1 %few, %huge
  br i1 %alone, label %serial, label %lock
lock:
  %lock_swap = cmpxchg ptr @owner, i32 0, i32 1 acquire monotonic
  %owned = extractvalue {{ i32, i1 }} %lock_swap, 1
  br i1 %owned, label %publish, label %serial
serial:
  call void %body(ptr %data, i64 0, i64 %total)
  ret void
publish:
  %workers_wanted = sub i32 %threads, 1
  call void @start_workers(i32 %workers_wanted)
  %last = load atomic i32, ptr @generation monotonic, align 4
  %g = add i32 %last, 1
  %slot = and i32 %g, 1
  %slot64 = zext i32 %slot to i64
  %body_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 0
  %data_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 1
  %total_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 2
  %chunk_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 3
  %threads_p = getelementptr inbounds [2 x %job], ptr @jobs, i64 0, i64 %slot64, i32 4
  %done_p = getelementptr inbounds [2 x i64], ptr @done, i64 0, i64 %slot64
  store atomic ptr %body, ptr %body_p monotonic, align 8
  store atomic ptr %data, ptr %data_p monotonic, align 8
  store atomic i64 %total, ptr %total_p monotonic, align 8
  store atomic i64 %chunk, ptr %chunk_p monotonic, align 8
  store atomic i32 %threads, ptr %threads_p monotonic, align 4
  store atomic i64 0, ptr %done_p monotonic, align 8
  %g64 = zext i32 %g to i64
  %tag = shl i64 %g64, 32
  store atomic i64 %tag, ptr @next seq_cst, align 8
  store atomic i32 %g, ptr @generation seq_cst, align 4
  %sleeping = load atomic i32, ptr @sleepers seq_cst, align 4
  %any_asleep = icmp ne i32 %sleeping, 0
  br i1 %any_asleep, label %wake, label %share
wake:
  %woke = call i64 (i64, ...) @syscall(i64 {futex}, ptr @generation, i32 {futex_wake},
                                       i32 2147483647)
  br label %share
share:
  call void @work(i32 %g, i32 0)
  br label %wait
wait:
  %spun = phi i32 [ 0, %share ], [ %spun_next, %pause ], [ 0, %yield ]
  %finished = load atomic i64, ptr %done_p seq_cst, align 8
  %complete = icmp eq i64 %finished, %total
  br i1 %complete, label %release, label %keep_waiting
keep_waiting:
  %spun_next = add i32 %spun, 1
  %spin_more = icmp ult i32 %spun_next, {caller_spin_pauses}
  br i1 %spin_more, label %pause, label %yield
pause:
  {pause}
  br label %wait
yield:
  %yielded = call i32 @sched_yield()
  br label %wait
release:
  store atomic i32 0, ptr @owner release, align 4
  ret void
}}
"""


def pool_ir(machine: str | None = None) -> str:
    """The pool's LLVM IR for `machine` (platform.machine() spelling; default: this host)."""
    machine = machine or platform.machine()
    if machine not in _FUTEX_SYSCALL:
        raise NotImplementedError(
            f"convir's thread pool supports {', '.join(_FUTEX_SYSCALL)}, not {machine}"
        )
    return _POOL_IR.format(
        entry=ENTRY_POINT,
        futex=_FUTEX_SYSCALL[machine],
        futex_wait=_FUTEX_WAIT_PRIVATE,
        futex_wake=_FUTEX_WAKE_PRIVATE,
        pause=_PAUSE[machine],
        pause_declaration=_PAUSE_DECLARATION[machine],
        spin_pauses=SPIN_PAUSES,
        spin_and_yields=SPIN_PAUSES + SPIN_YIELDS,
        caller_spin_pauses=CALLER_SPIN_PAUSES,
        max_workers=MAX_WORKERS,
    )
