"""`convir demo`: import a built-in model, run its IR with the numpy reference, compare to
onnxruntime and print a summary.

This is the pipeline as far as it exists: until the native backend lands, the conv-dialect IR is
executed by `convir.reference`.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from convir.cli.errors import UserError


def add_demo_command(commands: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    """Register `convir demo` on the subcommand parser."""
    from convir.models import MODELS

    demo = commands.add_parser(
        "demo",
        help="import a built-in model, run it and compare with onnxruntime",
        description="Build a built-in model (random weights), import it into conv-dialect IR, "
        "execute the IR with the numpy reference and compare with onnxruntime.",
    )
    demo.add_argument(
        "--model", default="resnet18", choices=sorted(MODELS), help="built-in model (resnet18)"
    )
    demo.add_argument("--size", type=positive, default=224, help="input height and width (224)")
    demo.add_argument("--seed", type=int, default=0, help="seed of weights and input (0)")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    """Run the demo described by parsed `args` and print its summary."""
    from convir import reference
    from convir.dialects import make_context
    from convir.importer.onnx import import_onnx
    from convir.models import build

    model = build(args.model, seed=args.seed, size=args.size)
    ctx = make_context()
    start = time.perf_counter()
    module = import_onnx(model, ctx=ctx)
    import_s = time.perf_counter() - start

    x = np.random.default_rng(args.seed).standard_normal((1, 3, args.size, args.size))
    x = x.astype(np.float32)
    start = time.perf_counter()
    ours = reference.run(module, {"input": x}, ctx=ctx)["output"]
    run_s = time.perf_counter() - start

    ops = Counter(op.name for op in module.walk() if op.name.startswith("conv."))
    weights = sum(np.prod(init.dims) for init in model.graph.initializer)
    print(f"model        {args.model}, input 1x3x{args.size}x{args.size}, {weights:,} weights")
    print(f"import       {import_s * 1e3:8.1f} ms  ->  {sum(ops.values())} conv-dialect ops")
    print("ops          " + ", ".join(f"{name} {n}" for name, n in ops.most_common()))
    print(f"reference    {run_s * 1e3:8.1f} ms  (numpy execution of the IR)")
    print(f"output       shape {list(ours.shape)}, top-5 classes {_top5(ours)}")
    _compare_with_onnxruntime(model, x, ours)


def _top5(logits: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-logits[0])[:5]]


def _compare_with_onnxruntime(model, x: np.ndarray, ours: np.ndarray) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime  not installed (pip install -e '.[dev]'); no comparison")
        return
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    theirs = session.run(None, {"input": x})[0]
    ort_s = time.perf_counter() - start
    error = float(np.max(np.abs(ours - theirs)))
    scale = float(np.max(np.abs(theirs)))
    ok = error <= 1e-4 * scale
    print(f"onnxruntime  {ort_s * 1e3:8.1f} ms  top-5 classes {_top5(theirs)}")
    verdict = "OK" if ok else "MISMATCH"
    print(f"max |error|  {error:.3g} ({error / scale:.2g} of max |output|): {verdict}")
    if not ok:
        raise UserError(f"reference output differs from onnxruntime by {error:.3g}")
