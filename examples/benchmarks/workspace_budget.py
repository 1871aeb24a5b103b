"""Built-in models with and without a workspace budget: memory, correctness and time.

    PYTHONPATH=. python examples/benchmarks/workspace_budget.py --budget 64KiB --repeat 10

For each model (224×224, batch 1), `convir.compile` without a budget and with `--budget`; both
are checked against onnxruntime (max |error| <= 1e-4 × max |output|), then timed alternately
(unbudgeted, budgeted, ...), each sample one inference, 1 thread, as the median of the calling
thread's CPU time (`time.thread_time`: with 1 thread the kernels run on the calling thread; a
shared machine disturbs it less than wall time). The table gives the arena (intermediates and
workspaces, one buffer), the sum and the largest of the convs' workspaces, the convs whose
algorithm the budget changed, and the budgeted model's time relative to the unbudgeted one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import convir
from convir.models import MODELS, build
from passes.workspace_budget import parse_bytes
from tests.onnx_cases import assert_close, run_onnxruntime


def cpu_seconds(model, feed) -> float:
    start = time.thread_time()
    model.run(feed)
    return time.thread_time() - start


def describe(report: dict) -> str:
    sizes = [entry["workspace_bytes"] for entry in report["convs"].values()]
    return (
        f"{report['arena_bytes'] / 2**20:9.2f} {sum(sizes) / 2**10:10.1f} {max(sizes) / 2**10:9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--budget", default="64KiB")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    budget = parse_bytes(args.budget)
    print(f"budget {args.budget} ({budget} bytes); arena MiB, workspaces KiB (sum, largest)")
    header = f"{'model':15} {'':10} {'arena':>9} {'ws sum':>10} {'ws max':>9} {'ms (cpu)':>9}"
    print(header + f" {'changed':>8} {'slower':>7}")
    for name in args.models.split(","):
        model = build(name, size=args.size)
        x = np.random.default_rng(3).standard_normal((1, 3, args.size, args.size), np.float32)
        feed = {"input": x}
        expected = run_onnxruntime(model, feed)[0]
        compiled = {
            "no budget": convir.compile(model, threads=1),
            args.budget: convir.compile(model, threads=1, workspace_budget=budget),
        }
        for variant in compiled.values():
            assert_close(variant.run(feed)["output"], expected)
        samples: dict[str, list[float]] = {key: [] for key in compiled}
        for _ in range(args.repeat):
            for key, variant in compiled.items():
                samples[key].append(cpu_seconds(variant, feed))
        ms = {key: 1e3 * statistics.median(values) for key, values in samples.items()}
        reports = {key: variant.memory_report() for key, variant in compiled.items()}
        free, tight = reports.values()
        changed = sum(
            free["convs"][conv]["algorithm"] != tight["convs"][conv]["algorithm"]
            for conv in free["convs"]
        )
        base = ms["no budget"]
        for key in compiled:
            extra = f" {changed:8d} {ms[key] / base:7.2f}" if key != "no budget" else ""
            print(f"{name:15} {key:10} {describe(reports[key])} {ms[key]:9.1f}{extra}", flush=True)


if __name__ == "__main__":
    main()
