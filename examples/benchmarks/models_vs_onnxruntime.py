"""Built-in models at 224x224: convir vs onnxruntime at 1 and 2 threads, interleaved medians.

    python examples/benchmarks/models_vs_onnxruntime.py resnet18,resnet50 [repeat]

A thin wrapper kept for the command lines already quoted: it runs
`convir bench models --models NAMES --threads 1,2 --repeat REPEAT` (see `convir bench models
--help`, and `convir.bench.models` for what is measured).
"""

from __future__ import annotations

import sys

from convir.cli.main import main
from convir.models import MODELS

if __name__ == "__main__":
    names = sys.argv[1] if len(sys.argv) > 1 else ",".join(MODELS)
    repeat = sys.argv[2] if len(sys.argv) > 2 else "15"
    sys.exit(main(["bench", "models", "--models", names, "--threads", "1,2", "--repeat", repeat]))
