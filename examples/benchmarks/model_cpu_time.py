"""Median thread CPU time of one inference, convir and onnxruntime, 1 thread, interleaved.

Wall times of whole models swing by 1.5x between runs when other processes share the cores;
CPU time of the calling thread (both engines run on it at 1 thread) does not count the time
others hold the core, though their cache pollution still shows.

    PYTHONPATH=$PWD python examples/benchmarks/model_cpu_time.py MODEL.onnx... [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

import convir
from convir.bench.onnxrt import session


def _cpu_ms(run, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        run()
        times.append((time.thread_time() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--repeat", type=int, default=5, help="samples per engine and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("model                          convir CPU ms   ORT CPU ms   convir/ORT")
    for path in args.models:
        a, b = _medians(path, args.repeat, args.rounds)
        print(f"{Path(path).stem:30s} {a:13.2f} {b:12.2f} {a / b:12.2f}")


def _medians(path: str, repeat: int, rounds: int) -> tuple[float, float]:
    compiled = convir.compile(path)
    compiled.threads = 1
    ort = session(onnx.load(path), 1)
    rng = np.random.default_rng(0)
    feed = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in ort.get_inputs()}
    compiled.run(feed)
    ort.run(None, feed)
    ours, theirs = [], []
    for _ in range(rounds):
        ours += _cpu_ms(lambda: compiled.run(feed), repeat)
        theirs += _cpu_ms(lambda: ort.run(None, feed), repeat)
    return statistics.median(ours), statistics.median(theirs)


if __name__ == "__main__":
    main()
