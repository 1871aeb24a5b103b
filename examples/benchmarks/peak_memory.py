"""Peak resident memory of a fresh process that builds a model, compiles it (convir) or opens a
session (onnxruntime), and runs it once:

    python examples/benchmarks/peak_memory.py convir resnet50
    python examples/benchmarks/peak_memory.py ort resnet50

For convir it also prints the peak of the code generator worker that ran LLVM for it
(`lowering.codegen`; none when the model's code came from the cache), and whether LLVM
(libllvmlite.so) was ever mapped into this process.
"""

from __future__ import annotations

import resource
import sys

import numpy as np

from convir.models import build


def main(runtime: str, name: str) -> None:
    model = build(name)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    extra = ""
    if runtime == "convir":
        import convir

        compiled = convir.compile(model)
        del model
        compiled.run({"input": x})
        report = compiled.memory_report()
        extra = (
            f"  arena {report['arena_bytes'] / 2**20:.1f} MiB"
            f"  weights {report['weights_bytes'] / 2**20:.1f} MiB"
        )
        builder = report["codegen_peak_rss_bytes"]
        llvm = any("libllvmlite" in line for line in open("/proc/self/maps"))  # noqa: SIM115
        extra += "  codegen worker " + (
            "none (cached)" if builder is None else f"{builder / 2**20:.0f} MiB"
        )
        extra += f"  LLVM in this process: {'yes' if llvm else 'no'}"
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        del model
        session.run(None, {"input": x})
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{runtime:8s} {name:14s} peak RSS {peak_mib:.0f} MiB{extra}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
