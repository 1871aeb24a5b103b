"""Wall time of every kernel call of a model at 1 and 2 threads, from cycle-counter stamps:

    PYTHONPATH=$PWD python examples/benchmarks/kernel_times.py MODEL.onnx [--repeat 40] [--top 30]

Whole-model times say that 2 threads are slower or faster, not where. This compiles the model
with a stamp (`llvm.readcyclecounter`) stored after each kernel call of `@forward`, runs it
alternately at 1 and 2 threads, and prints the median time of each call at both, summed per
kernel kind (the name up to its shape) and listed per call by how much 2 threads lost. A call's
time includes what it pays for its fork/join and for reading data that the other core wrote.
The stamps go to a numpy array whose address is baked into the instrumented code, so the code
is compiled for this process only (`compile_lowered`, never the model cache's entry).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections import defaultdict

import numpy as np

from convir.compiler import compile_lowered, lower
from lowering.conv_to_loops import ENTRY_POINT

_CALL = re.compile(r'\s*call ccc void @"([^"]+)"')


def instrument(forward_ir: str, stamps: np.ndarray) -> tuple[str, list[str]]:
    """`@forward`'s LLVM IR with a stamp stored into `stamps[k]` after its k-th call (the first
    is `omp_set_num_threads`, so stamp 0 is the start of the first kernel); the callees."""
    lines, callees = [], []
    address = stamps.ctypes.data
    inside = False
    for line in forward_ir.split("\n"):
        lines.append(line)
        inside = inside or line.startswith(f'define void @"{ENTRY_POINT}"')
        match = _CALL.match(line)
        if inside and match:
            k = len(callees)
            callees.append(match.group(1))
            lines += [
                f'  %"stamp{k}" = call i64 @llvm.readcyclecounter()',
                f'  %"slot{k}" = getelementptr inbounds i64, ptr inttoptr (i64 {address} to ptr),'
                f" i64 {k}",
                f'  store volatile i64 %"stamp{k}", ptr %"slot{k}"',
            ]
    if len(callees) > stamps.size:
        raise ValueError(f"{len(callees)} calls, room for {stamps.size} stamps")
    lines.append("declare i64 @llvm.readcyclecounter()")
    return "\n".join(lines), callees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--repeat", type=int, default=40, help="runs per thread count")
    parser.add_argument("--top", type=int, default=30, help="calls listed")
    args = parser.parse_args()

    lowered = lower(args.model, stop="llvm-ir")
    stamps = np.zeros(1 << 14, np.int64)
    assert lowered.llvm_parts is not None
    lowered.llvm_parts[-1], callees = instrument(lowered.llvm_parts[-1], stamps)
    kernels = callees[1:]
    compiled = compile_lowered(lowered)
    rng = np.random.default_rng(0)
    feed = {
        spec.name: rng.standard_normal(spec.shape).astype(np.float32) for spec in compiled.inputs
    }

    cycles: dict[int, list[np.ndarray]] = {1: [], 2: []}
    cycles_per_s = []
    for rep in range(args.repeat + 2):
        for threads in (1, 2):
            compiled.threads = threads
            start = time.perf_counter()
            compiled.run(feed)
            wall_s = time.perf_counter() - start
            if rep >= 2:  # warm-up
                cycles[threads].append(np.diff(stamps[: len(callees)]))
                cycles_per_s.append((stamps[len(callees) - 1] - stamps[0]) / wall_s)
    # the stamps span most of a run, so wall time calibrates the counter well enough
    us_per_cycle = 1e6 / statistics.median(cycles_per_s)
    one, two = (np.median(np.array(cycles[t]), axis=0) * us_per_cycle for t in (1, 2))
    print(
        f"sum of per-call medians: 1 thread {one.sum() / 1e3:.2f} ms, "
        f"2 threads {two.sum() / 1e3:.2f} ms"
    )

    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for name, a, b in zip(kernels, one, two, strict=True):
        kind = kinds[name.split("_1x")[0]]
        kind[0] += 1
        kind[1] += a
        kind[2] += b
    print(f"\n{'kernel kind':24}{'calls':>6}{'1T µs':>10}{'2T µs':>10}{'2T-1T':>9}")
    for kind, (calls, a, b) in sorted(kinds.items(), key=lambda item: item[1][1] - item[1][2]):
        print(f"{kind:24}{calls:6d}{a:10.1f}{b:10.1f}{b - a:+9.1f}")
    print(f"\n{'call':>4} {'kernel':64}{'1T µs':>9}{'2T µs':>9}{'2T-1T':>8}")
    for k in np.argsort(one - two)[: args.top]:
        print(f"{k:4d} {kernels[k][:64]:64}{one[k]:9.1f}{two[k]:9.1f}{two[k] - one[k]:+8.1f}")


if __name__ == "__main__":
    main()
