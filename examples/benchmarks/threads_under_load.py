"""convir at 1 and 2 threads, alternating, with one CPU kept busy by another process:

    python examples/benchmarks/threads_under_load.py a.onnx,b.onnx [--rounds 3] [--runs 20]

`convir bench models --busy-core` interleaves convir and onnxruntime sample by sample; on a
loaded machine a sample's time there also depends on what ran just before it (onnxruntime's
threads, CPU migrations). This script times convir alone: for each model, `rounds` times, `runs`
runs at 1 thread then `runs` at 2 threads, while a process spins on the highest CPU
(`convir.bench.busy`); it prints the median of each and their ratio (the issue's criterion:
2 threads at most 10 % slower than 1).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import convir
from convir.bench.busy import BusyCore


def samples_ms(compiled, feed: dict, threads: int, runs: int) -> list[float]:
    """`runs` timed runs at `threads` threads after one warm-up, in ms."""
    compiled.threads = threads
    compiled.run(feed)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        compiled.run(feed)
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", help="comma-separated .onnx paths")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    compiled_models = {}
    for path in args.models.split(","):
        compiled = convir.compile(path)
        rng = np.random.default_rng(0)
        feed = {s.name: rng.standard_normal(s.shape, np.float32) for s in compiled.inputs}
        compiled_models[Path(path).stem] = (compiled, feed)
    print(f"{'model':<22}{'1T ms':>9}{'2T ms':>9}{'2T/1T':>7}")
    with BusyCore():
        for name, (compiled, feed) in compiled_models.items():
            samples: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for threads in (1, 2):
                    samples[threads] += samples_ms(compiled, feed, threads, args.runs)
            one, two = (statistics.median(samples[t]) for t in (1, 2))
            print(f"{name:<22}{one:>9.2f}{two:>9.2f}{two / one:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
