"""Check exported models (e.g. torchvision's, issue 12) against onnxruntime, one at a time.

    python examples/benchmarks/torchvision_check.py (MODEL.onnx | DIR) ... [--reference]

Each argument is an .onnx file or a folder of them (`export_torchvision.py OUT_DIR` writes the
torchvision exports of issue 12; torchvision itself is not needed here, only the files). For each
model: `convir.compile(path)` (timed: "compile s"), one standard-normal input (seed 0) through
convir and an onnxruntime session (ORT_ENABLE_ALL, 1 thread), and for every output the relative
error max|convir - ort| / max|ort|. A model passes at <= 1e-4.

Above 1e-4 (or always, with --reference) the model's imported graph is also executed by convir's
numpy reference (`convir.reference.run`: every op computed in float64, rounded to float32 once per
op, so its own error is a few float32 roundings per layer, no accumulation-order error) and both
engines are measured against it: the model then also passes when convir's error against the
reference is within 2x onnxruntime's (issue 12's criterion for the deepest networks).

One model is compiled and run at a time (the machine is shared); a model that fails to import
or compile is reported with its error and the run goes on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import onnx

TOLERANCE = 1e-4


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| relative to max |theirs| (0 when both are empty)."""
    if theirs.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(theirs))), 1e-30)
    return float(np.max(np.abs(ours.astype(np.float64) - theirs))) / scale


def worst(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> float:
    """The largest relative error over all outputs."""
    return max(relative_error(ours[name], theirs[name]) for name in theirs)


def ort_outputs(path: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime's outputs for `feed` (1 thread, ORT_ENABLE_ALL, no spinning)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feed), strict=True))


def reference_outputs(path: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """convir's numpy reference execution of the imported (graph-form) model."""
    from convir import reference
    from convir.dialects import make_context
    from convir.importer.onnx import import_onnx

    ctx = make_context()
    module = import_onnx(onnx.load(str(path)), ctx=ctx)
    return reference.run(module, feed, ctx=ctx)


def check(path: Path, always_reference: bool) -> dict[str, object]:
    """One model's row of the table (module doc)."""
    import convir

    row: dict[str, object] = {"model": path.stem}
    start = time.perf_counter()
    try:
        compiled = convir.compile(path)
    except Exception as error:  # report and go on with the next model
        row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
        traceback.print_exc()
        return row
    row["compile_s"] = time.perf_counter() - start
    rng = np.random.default_rng(0)
    feed = {spec.name: rng.standard_normal(spec.shape, np.float32) for spec in compiled.inputs}
    compiled.threads = 1
    ours = compiled.run(feed)
    theirs = ort_outputs(path, feed)
    row["vs_ort"] = worst(ours, theirs)
    row["pass"] = row["vs_ort"] <= TOLERANCE
    if always_reference or not row["pass"]:
        expected = reference_outputs(path, feed)
        row["ours_vs_ref"] = worst(ours, expected)
        row["ort_vs_ref"] = worst(theirs, expected)
        row["pass"] = row["pass"] or row["ours_vs_ref"] <= 2 * row["ort_vs_ref"]
    return row


def format_row(row: dict[str, object]) -> str:
    """A markdown table row: model, compile s, error vs ORT, both errors vs the reference."""

    def number(key: str, spec: str) -> str:
        return format(row[key], spec) if key in row else "-"

    if "error" in row:
        return f"| {row['model']} | - | - | - | - | FAIL: {row['error']} |"
    verdict = "pass" if row["pass"] else "FAIL"
    cells = [
        row["model"],
        number("compile_s", ".1f"),
        number("vs_ort", ".2e"),
        number("ours_vs_ref", ".2e"),
        number("ort_vs_ref", ".2e"),
        verdict,
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def model_paths(arguments: list[str]) -> list[Path]:
    """The .onnx files named, folders expanded to their .onnx files in name order."""
    paths = []
    for argument in arguments:
        path = Path(argument)
        paths.extend(sorted(path.glob("*.onnx")) if path.is_dir() else [path])
    return paths


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "models",
        nargs="+",
        help=".onnx files or folders of them (export_torchvision.py makes them)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="measure both engines against the numpy reference for every model, not only failures",
    )
    args = parser.parse_args(argv)
    paths = model_paths(args.models)
    missing = [str(path) for path in paths if not path.is_file()]
    if missing or not paths:
        print(f"error: no model file {', '.join(missing) or 'found'}", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print("| model | compile s | max rel err vs ORT | convir vs ref | ORT vs ref | verdict |")
    print("|---|---|---|---|---|---|", flush=True)
    failed = 0
    for path in paths:
        row = check(path, args.reference)
        failed += not row.get("pass", False)
        print(format_row(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
