"""`convir demo`: compile a built-in model natively, check it against onnxruntime and print its
latency beside onnxruntime's (same threads, medians of repeated runs)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np


def add_demo_command(commands: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    """Register `convir demo` on the subcommand parser."""
    from convir.models import MODELS

    demo = commands.add_parser(
        "demo",
        help="compile a built-in model natively and compare it with onnxruntime",
        description="Build a built-in model (random weights), compile it natively, check its "
        "output against onnxruntime and print both latencies.",
    )
    demo.add_argument(
        "--model", default="resnet18", choices=sorted(MODELS), help="built-in model (resnet18)"
    )
    demo.add_argument("--size", type=positive, default=224, help="input height and width (224)")
    demo.add_argument("--seed", type=int, default=0, help="seed of weights and input (0)")
    demo.add_argument("--threads", type=positive, default=None, help="threads (all cores)")
    demo.add_argument("--repeat", type=positive, default=20, help="timed runs (20)")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    """Run the demo described by parsed `args` and print its summary."""
    import convir
    from convir.cli.native import compare_with_onnxruntime
    from convir.models import build

    model = build(args.model, seed=args.seed, size=args.size)
    start = time.perf_counter()
    compiled = convir.compile(model, threads=args.threads, progress=True)
    compile_s = time.perf_counter() - start
    x = np.random.default_rng(args.seed).standard_normal((1, 3, args.size, args.size))
    feed = {"input": x.astype(np.float32)}
    outputs = compiled.run(feed)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        compiled.run(feed)
        times.append(time.perf_counter() - start)
    report = compiled.memory_report()
    print(f"model        {args.model}, input 1x3x{args.size}x{args.size}, random weights")
    cached = report["codegen_peak_rss_bytes"] is None
    how = "loaded from the cache: compiled before" if cached else "cached on disk for next time"
    print(f"compile      {compile_s:8.2f} s   ({how})")
    print(
        f"memory       weights {report['weights_bytes'] / 2**20:.1f} MiB, "
        f"arena {report['arena_bytes'] / 2**20:.1f} MiB"
    )
    timing = f"median of {args.repeat}, {compiled.threads} threads"
    print(f"convir       {np.median(times) * 1e3:9.3f} ms  ({timing})")
    print(f"top-5        {_top5(outputs['output'])}")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime  not installed (pip install -e '.[dev]'); no comparison")
        return
    compare_with_onnxruntime(model, feed, outputs, compiled.threads, args.repeat)


def _top5(logits: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-logits[0])[:5]]
