"""The work of an `scf.parallel`, estimated at compile time, for convert-parallel-to-pool.

Two decisions rest on it: whether a loop is worth forking threads at all, and how many
iterations a thread claims at a time (a *chunk*).

**Work** is counted in operations: every op of the body counts 1 (a vector op as one, like the
instruction it becomes), an `scf.for` or nested `scf.parallel` with constant bounds multiplies
its body by its trip count, an `scf.if` costs its dearer branch. Index arithmetic LLVM folds away
is counted too, so the count is an over-estimate of instructions by a factor that differs from
kernel to kernel; it only has to rank kernels and be right within a few times. A loop whose
bounds are not constants counts the most iterations its bounds allow (`for i in [s, min(s + 8,
n))`: 8, `for i in [s, 64)`: 64, for index values >= 0); one with no such bound has unknown work
(None), and a parallel loop of unknown work is always forked.

**Threshold.** Forking pays when the time a second thread saves, at most half the kernel,
exceeds what the fork/join costs. Measured on the development machine (2-core Zen 4, shared):
libgomp's `GOMP_parallel` with a dynamic loop over a trivial body cost 0.5 µs from call to
return on one thread and ~0.6 µs on two when the machine is quiet (DESIGN §6), but 40–370 µs on
two while the machine ran ~14 runnable processes: the join waits until the worker thread is
scheduled. The kernels of the built-in models run OP_NS per counted op at one thread
(MobileNetV2 at 112×112: 9.6e7 ops in 3.95 ms). A loop is forked when its work is at least
MIN_PARALLEL_NS, ~16 quiet fork/joins, so that on a quiet machine serialising it loses at most
~5 µs, while every fork avoided saves a wake-up on a busy one. At 112×112 that keeps 25 of
MobileNetV2's 70 parallel loops on one thread (2.5 % of its work) and none of ResNet-18's 22.

**Chunks.** A thread claims `chunk` iterations at a time from libgomp's shared counter
(`lowering.thread_pool`: a compare-and-swap on one shared cache line). The chunk is the larger of
one iteration and CHUNK_WORK ops (~3 µs, so that claiming is a small part of a chunk), but at
most 1/MIN_CHUNKS of the loop, so that work always splits into at least MIN_CHUNKS pieces when
it has the iterations: a thread that is descheduled holds back at most one of them, and the
others take the rest.

**Why not libgomp.** With libgomp's team, dynamic chunks were not enough: its join waits for
every thread of the team, and its waiters spin (GOMP_SPINCOUNT) on the CPU the late thread needs.
MobileNetV2 at 112×112, 2 threads, one CPU kept busy (`convir bench models --busy-core`), this
machine shared with other jobs: 432 ms with the default spin count, 45 ms with GOMP_SPINCOUNT=1000,
7–30 ms with GOMP_SPINCOUNT=0, against 14–34 ms at one thread. convir's own pool
(`lowering.thread_pool`) never waits for a thread that has not claimed a chunk.
"""

from __future__ import annotations

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IntegerAttr
from xdsl.ir import Operation, Region, SSAValue

OP_NS = 0.05
"""ns per counted op at one thread, rounded up from the built-in models' 0.04 (module doc)."""

MIN_PARALLEL_NS = 10_000
"""A loop is forked only when its estimated time at one thread is at least this."""

MIN_PARALLEL_WORK = int(MIN_PARALLEL_NS / OP_NS)
"""Ops below which a loop runs on the calling thread alone."""

CHUNK_WORK = int(3_000 / OP_NS)
"""Ops a chunk should hold at least (~3 µs), when the loop has the iterations to spare."""

MIN_CHUNKS = 8
"""A loop is cut into at least this many chunks when it has that many iterations."""


def _constant(value: SSAValue) -> int | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def _span(lower: SSAValue, upper: SSAValue) -> int | None:
    """An upper bound of `upper - lower` for index values >= 0: exact for constants, else read
    off `upper = lower + c`, `upper = c` or `upper = min(x, y)` with a bound for x or y."""
    if (first := _constant(lower)) is not None and (last := _constant(upper)) is not None:
        return last - first
    owner = upper.owner
    if (last := _constant(upper)) is not None:
        return last
    if isinstance(owner, arith.AddiOp) and owner.lhs == lower:
        return _constant(owner.rhs)
    if isinstance(owner, arith.MinSIOp | arith.MinUIOp):
        spans = [_span(lower, operand) for operand in owner.operands]
        known = [span for span in spans if span is not None]
        return min(known) if known else None
    return None


def _trip_count(lower: SSAValue, upper: SSAValue, step: SSAValue) -> int | None:
    """The trip count, or a bound of it when the bounds are not constants (`_span`)."""
    span, stride = _span(lower, upper), _constant(step)
    if span is None or stride is None or stride <= 0:
        return None
    return max(0, -(-span // stride))


def _op_work(op: Operation) -> int | None:
    if isinstance(op, scf.ForOp | scf.ParallelOp):
        trips = 1
        for bounds in _loop_bounds(op):
            trip = _trip_count(*bounds)
            if trip is None:
                return None
            trips *= trip
        body = region_work(op.body)
        return None if body is None else 1 + trips * body
    if isinstance(op, scf.IfOp):
        branches = [region_work(region) for region in op.regions]
        return None if None in branches else 1 + max(branches)  # type: ignore[type-var]
    work = 1
    for region in op.regions:
        inner = region_work(region)
        if inner is None:
            return None
        work += inner
    return work


def _loop_bounds(op: scf.ForOp | scf.ParallelOp) -> list[tuple[SSAValue, SSAValue, SSAValue]]:
    if isinstance(op, scf.ForOp):
        return [(op.lb, op.ub, op.step)]
    return list(zip(op.lowerBound, op.upperBound, op.step, strict=True))


def region_work(region: Region) -> int | None:
    """Estimated ops one execution of `region` runs (module doc); None if a trip count is not
    known at compile time."""
    total = 0
    for block in region.blocks:
        for op in block.ops:
            work = _op_work(op)
            if work is None:
                return None
            total += work
    return total


def iteration_work(op: scf.ParallelOp) -> int | None:
    """Estimated ops of one iteration of `op`'s body."""
    return region_work(op.body)


def parallel_work(op: scf.ParallelOp) -> int | None:
    """Estimated ops of the whole loop `op`; None if not known at compile time."""
    return _op_work(op)


def worth_forking(op: scf.ParallelOp, min_work: int = MIN_PARALLEL_WORK) -> bool:
    """Whether `op` is worth a parallel region: its work is unknown or at least `min_work`."""
    work = parallel_work(op)
    return work is None or work >= min_work


def chunk_by_work(work_per_iteration: int | None, chunk_work: int = CHUNK_WORK) -> int:
    """Iterations that make a chunk of at least `chunk_work` ops (1 if the work is unknown)."""
    if work_per_iteration is None or work_per_iteration <= 0:
        return 1
    return max(1, -(-chunk_work // work_per_iteration))


def chunk_iterations(iterations: int, by_work: int) -> int:
    """The chunk of a loop of `iterations`: `by_work`, but at most 1/MIN_CHUNKS of the loop."""
    return max(1, min(by_work, -(-iterations // MIN_CHUNKS)))
