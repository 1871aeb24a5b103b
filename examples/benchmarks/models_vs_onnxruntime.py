"""Built-in models at 224x224: convir vs onnxruntime at 1 and 2 threads, interleaved medians.

    python examples/benchmarks/models_vs_onnxruntime.py resnet18,resnet50 [repeat]

Each model is compiled once; then, per thread count, convir and onnxruntime (ORT_ENABLE_ALL,
spinning off so the two do not steal each other's cores) run alternately `repeat` times and the
medians are printed with their ratio (> 1: convir faster). Until `convir bench models` exists
this is how the closing notes measure whole models.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

import convir
from convir.models import MODELS, build


def ort_session(model, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def main(names: list[str], repeat: int) -> None:
    for name in names:
        model = build(name)
        start = time.perf_counter()
        compiled = convir.compile(model)
        compile_s = time.perf_counter() - start
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        for threads in (1, 2):
            compiled.threads = threads
            session = ort_session(model, threads)
            ours, theirs = [], []
            compiled.run({"input": x})
            session.run(None, {"input": x})
            for _ in range(repeat):
                start = time.perf_counter()
                y = compiled.run({"input": x})["output"]
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                (z,) = session.run(None, {"input": x})
                theirs.append(time.perf_counter() - start)
            error = float(np.abs(y - z).max() / np.abs(z).max())
            ours_ms, theirs_ms = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
            print(
                f"{name:14s} {threads}T convir {ours_ms:8.2f} ms  ort {theirs_ms:8.2f} ms  "
                f"ort/convir {theirs_ms / ours_ms:5.2f}  rel err {error:.1e}  "
                f"compile {compile_s:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main(
        sys.argv[1].split(",") if len(sys.argv) > 1 else list(MODELS),
        int(sys.argv[2]) if len(sys.argv) > 2 else 15,
    )
