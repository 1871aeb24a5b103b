"""`convir compile` (print any stage of the pipeline) and `convir run` (run a model natively)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable

import numpy as np

from convir.cli.errors import UserError
from convir.cli.files import write_text


def add_native_commands(
    commands: argparse._SubParsersAction, positive: Callable[[str], int]
) -> None:
    """Register `convir compile` and `convir run` on the subcommand parser."""
    from convir.compiler import STAGE_AFTER_PASS, STAGES

    compile_parser = commands.add_parser(
        "compile",
        help="compile a model and print one stage of the pipeline",
        description="Compile an ONNX model and print the IR of one stage: conv (imported), "
        "folded (constants and BatchNorm folded), fused (epilogues fused into convs), nchwc "
        "(NCHWc layout), selected (algorithms chosen), scheduled (schedules filled), planned "
        "(arena placed), loops, threaded, llvm (llvm dialect), llvm-ir, asm (optimised machine "
        "code). Every conv.conv2d is printed with its convir.name (conv_0, conv_1, ... in model "
        "order) and its ONNX node name (onnx.name): the keys of --algorithm and --tile.",
    )
    compile_parser.add_argument("model", help="path to an .onnx file")
    stage = compile_parser.add_mutually_exclusive_group()
    stage.add_argument("--emit", choices=STAGES, default="scheduled", help="stage to print")
    stage.add_argument(
        "--dump-after",
        choices=list(STAGE_AFTER_PASS),
        metavar="PASS",
        help=f"print the IR after this pass: {', '.join(STAGE_AFTER_PASS)}",
    )
    _common_options(compile_parser, positive)
    _override_options(compile_parser)
    compile_parser.add_argument(
        "--threads",
        type=positive,
        default=None,
        help="the thread count whose tuning records --tuning-db reads (all cores)",
    )
    compile_parser.add_argument("-o", "--output", help="write the text here instead of stdout")
    compile_parser.set_defaults(run=_compile_command)

    run_parser = commands.add_parser(
        "run",
        help="compile a model natively and run it",
        description="Compile an ONNX model natively, run it on given or random inputs, print the "
        "outputs' shapes and timing, and optionally compare with onnxruntime (NaN and Inf "
        "outputs match where onnxruntime has the same). A model whose inputs, outputs and "
        "activations would not fit in the machine's memory is refused before running.",
    )
    run_parser.add_argument("model", help="path to an .onnx file")
    run_parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="an input from a .npy file (repeatable); missing inputs are random",
    )
    run_parser.add_argument("--threads", type=positive, default=None, help="threads (all cores)")
    run_parser.add_argument("--compare", choices=["ort"], help="compare with onnxruntime")
    run_parser.add_argument("--repeat", type=positive, default=10, help="timed runs (10)")
    _common_options(run_parser, positive)
    _override_options(run_parser)
    run_parser.set_defaults(run=_run_command)


def _common_options(parser: argparse.ArgumentParser, positive: Callable[[str], int]) -> None:
    parser.add_argument(
        "--target", default="host", help="host (default), x86-avx2, x86-avx512 or aarch64-neon"
    )
    parser.add_argument("--batch", type=positive, default=None, help="batch size")
    parser.add_argument(
        "--block",
        type=positive,
        default=None,
        help="channels per NCHWc block (default: the target's vector width, 8 on AVX2, 16 on "
        "AVX-512; other blocks run correctly, only slower)",
    )


def _override_options(parser: argparse.ArgumentParser) -> None:
    from lowering.algorithms import ALGORITHMS
    from passes.conv_overrides import parse_algorithms, parse_tiles

    parser.add_argument(
        "--algorithm",
        action="append",
        default=[],
        type=_argument_type(parse_algorithms),
        metavar="CONV=ALGORITHM",
        help=f"run conv CONV with ALGORITHM ({', '.join(ALGORITHMS)}) instead of the heuristic's "
        "choice; repeatable. CONV is a conv's name (conv_0, conv_1, ... in model order) or its "
        "ONNX node name, both printed on every conv.conv2d by `convir compile MODEL --emit "
        "scheduled`; all=ALGORITHM: ALGORITHM for every other conv, where it applies",
    )
    parser.add_argument(
        "--winograd-tolerance",
        type=_tolerance,
        default=None,
        metavar="ERROR",
        help="the largest expected relative error of a Winograd F(m, 3) that selection may "
        "choose (default 1e-4: every m; 1e-5: m = 2, 4; 1e-6: m = 2; 0: no winograd). Measured "
        "max error over ResNet/VGG layers: fp32 GEMM 6.0e-7, m = 2 7.1e-7, m = 4 5.5e-6, "
        "m = 6 2.2e-5. A conv pinned with --algorithm/--tile keeps its m",
    )
    parser.add_argument(
        "--tile",
        action="append",
        default=[],
        type=_argument_type(parse_tiles),
        metavar="CONV:KNOB=VALUE[,KNOB=VALUE...]",
        help="pin schedule knobs of conv CONV (the others keep the heuristic's values), e.g. "
        "conv_3:ow_block=4,oc_blocks=2; repeatable. The knobs of each conv's algorithm are "
        "printed in its schedule by --emit scheduled",
    )
    parser.add_argument(
        "--workspace-budget",
        type=_byte_count,
        default=None,
        metavar="BYTES",
        help="the most workspace (scratch in the arena) one conv may take, e.g. 65536, 64KiB, "
        "1MiB: selection then takes, in the heuristic's order, the first algorithm whose "
        "workspace fits (shrinking its blocks if need be); an error names a conv nothing fits",
    )
    add_tuning_options(parser)


def _tolerance(text: str) -> float:
    from lowering.algorithms.winograd_error import parse_tolerance

    try:
        return parse_tolerance(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_tuning_options(parser: argparse.ArgumentParser) -> None:
    """`--tuning-db PATH` and `--nearest-target`."""
    parser.add_argument(
        "--tuning-db",
        metavar="PATH",
        help="use the records of this tuning database (`convir tune`; 'default' for its "
        "default location) for this CPU and thread count instead of the heuristic; every conv "
        "says where its choice came from in its convir.choice attribute (--emit scheduled)",
    )
    parser.add_argument(
        "--nearest-target",
        action="store_true",
        help="with --tuning-db, also use records tuned on a compatible CPU (same ISA and vector "
        "width, other model or caches) where this one has none; reported on stderr",
    )


def open_tuning_records(args: argparse.Namespace, target, threads: int | None):
    """The `TuningRecords` of --tuning-db (None without it); a bad file is a UserError."""
    if not args.tuning_db:
        if args.nearest_target:
            raise UserError("--nearest-target needs --tuning-db")
        return None
    from convir.compiler import tuning_records
    from convir.tuning.database import TuningDatabaseError

    try:
        return tuning_records(args.tuning_db, target, threads, args.nearest_target)
    except TuningDatabaseError as error:
        raise UserError(f"--tuning-db: {error}") from None


def report_nearest(records) -> None:
    """Say on stderr which convs use records of another (compatible) target."""
    if records is None:
        return
    nearest = sorted({(name, source) for name, source in records.used if source != "tuned"})
    if nearest:
        names = ", ".join(name for name, _ in nearest)
        print(
            f"convir: {len(nearest)} conv(s) use tuning records of a compatible target "
            f"({nearest[0][1].removeprefix('tuned-nearest (').removesuffix(')')}): {names}",
            file=sys.stderr,
        )


def _argument_type(parse: Callable[[str], dict]) -> Callable[[str], dict]:
    """`parse` as an argparse type: a malformed value is a usage error naming the value."""

    def parse_argument(text: str) -> dict:
        try:
            parsed = parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if not parsed:
            raise argparse.ArgumentTypeError("empty value")
        return parsed

    return parse_argument


def _byte_count(text: str) -> int:
    """`--workspace-budget`'s argparse type: a malformed value is a usage error."""
    from passes.workspace_budget import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _merged(values: list[dict], option: str) -> dict:
    """The entries of a repeated option in one dictionary; a conv given twice is an error."""
    merged: dict = {}
    for value in values:
        for key, entry in value.items():
            if key in merged:
                raise UserError(f"{option}: '{key}' is given twice")
            merged[key] = entry
    return merged


def _target(name: str):
    from convir.target import Target

    try:
        return Target.host() if name == "host" else Target.preset(name)
    except ValueError as error:
        raise UserError(f"--target: {error}") from None


def _compile_command(args: argparse.Namespace) -> None:
    from convir.compiler import STAGE_AFTER_PASS, lower
    from convir.dialects import make_context, module_to_text
    from convir.importer.onnx import import_onnx

    stop = STAGE_AFTER_PASS[args.dump_after] if args.dump_after else args.emit
    target = _target(args.target)
    records = open_tuning_records(args, target, args.threads)
    ctx = make_context()
    module = import_onnx(args.model, batch=args.batch, ctx=ctx)
    lowered = lower(
        module,
        target=target,
        stop=stop,
        ctx=ctx,
        block=args.block,
        algorithms=_merged(args.algorithm, "--algorithm"),
        tiles=_merged(args.tile, "--tile"),
        workspace_budget=args.workspace_budget,
        winograd_tolerance=args.winograd_tolerance,
        tuning_db=records,
    )
    report_nearest(records)
    if stop == "asm":
        from lowering.codegen import assembly
        from lowering.conv_to_loops import ENTRY_POINT

        text = assembly(lowered.llvm_parts, target, exported=[ENTRY_POINT])
    elif stop == "llvm-ir":
        text = lowered.llvm_ir
    else:
        text = module_to_text(lowered.module, ctx)
    write_text(text, args.output)


def _run_command(args: argparse.Namespace) -> None:
    import convir
    from convir.importer.onnx import load_model

    model = load_model(args.model)
    target = _target(args.target)
    records = open_tuning_records(args, target, args.threads)
    compiled = convir.compile(
        model,
        threads=args.threads,
        target=target,
        block=args.block,
        algorithms=_merged(args.algorithm, "--algorithm"),
        tiles=_merged(args.tile, "--tile"),
        workspace_budget=args.workspace_budget,
        winograd_tolerance=args.winograd_tolerance,
        tuning_db=records,
        progress=True,
    )
    report_nearest(records)
    feed = _inputs(compiled, args.input)
    outputs = compiled.run(feed)
    median_s = _median_seconds(lambda: compiled.run(feed), args.repeat)
    for name, value in outputs.items():
        with np.errstate(all="ignore"):  # NaN and Inf outputs print as such, without warnings
            mean, largest = value.mean(), value.max()
        print(f"{name}: shape {list(value.shape)}, mean {mean:.6g}, max {largest:.6g}")
    timing = f"median of {args.repeat}, {compiled.threads} threads"
    print(f"convir       {median_s * 1e3:9.3f} ms  ({timing})")
    print(_memory_line(compiled.memory_report()))
    if args.compare == "ort":
        compare_with_onnxruntime(model, feed, outputs, compiled.threads, args.repeat)


def _inputs(compiled, specs: list[str]) -> dict[str, np.ndarray]:
    given: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or name not in compiled.input_names:
            raise UserError(
                f"--input {spec!r}: expected NAME=FILE.npy with NAME in {compiled.input_names}"
            )
        try:
            given[name] = np.load(path)
        except (OSError, ValueError) as error:
            raise UserError(f"--input {spec!r}: cannot load '{path}': {error}") from None
    _check_fits_in_memory(compiled, given)
    rng = np.random.default_rng(0)
    for spec in compiled.inputs:
        if spec.name not in given:
            given[spec.name] = rng.standard_normal(spec.shape).astype(np.float32)
    try:
        compiled.check(given)
    except ValueError as error:
        raise UserError(str(error)) from None
    return given


def _memory_line(report: dict) -> str:
    """Weights, arena and the convs' workspaces (inside the arena) in one line."""
    convs = report["convs"]
    sizes = {name: entry["workspace_bytes"] for name, entry in convs.items()}
    line = (
        f"memory       weights {report['weights_bytes'] / 2**20:.2f} MiB, arena "
        f"{report['arena_bytes'] / 2**20:.2f} MiB"
    )
    if sizes:
        largest = max(sizes, key=sizes.__getitem__)
        line += (
            f" (largest conv workspace {sizes[largest] / 2**10:.1f} KiB: {largest}, "
            f"{convs[largest]['algorithm']})"
        )
    return line


def _check_fits_in_memory(compiled, given: dict[str, np.ndarray]) -> None:
    """Refuse to run when the random inputs to make, the outputs and the arena would not fit in
    this machine's memory, rather than die allocating them."""
    random_specs = [spec for spec in compiled.inputs if spec.name not in given]
    # standard_normal makes float64 values, converted to float32 afterwards
    random_bytes = sum(12 * int(np.prod(spec.shape)) for spec in random_specs)
    output_bytes = sum(4 * int(np.prod(spec.shape)) for spec in compiled.outputs)
    needed = random_bytes + output_bytes + int(compiled.memory_report()["arena_bytes"])
    try:
        available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return
    if needed > available:
        sizes = ", ".join(f"'{spec.name}' {list(spec.shape)}" for spec in random_specs)
        raise UserError(
            f"running the model needs {needed / 2**30:.3g} GiB (random inputs {sizes or 'none'}, "
            f"outputs and activations), more than this machine's {available / 2**30:.3g} GiB; "
            "use a smaller --batch or a model with smaller inputs"
        )


def _median_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compare_with_onnxruntime(model, feed, outputs, threads: int, repeat: int) -> None:
    """Run `model` in onnxruntime with `threads` threads; print its time and the max error."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("--compare ort needs onnxruntime (pip install -e '.[dev]')") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        theirs = dict(
            zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True)
        )
    except Exception as error:  # onnxruntime's own exception classes derive from Exception only
        reason = _onnxruntime_reason(str(error)) or type(error).__name__
        raise UserError(f"--compare ort: onnxruntime refuses the model: {reason}") from None
    median_s = _median_seconds(lambda: session.run(None, feed), repeat)
    print(f"onnxruntime  {median_s * 1e3:9.3f} ms  (median of {repeat}, {threads} threads)")
    for name, value in outputs.items():
        error, scale, special = output_difference(value, theirs[name])
        verdict = "OK" if special == 0 and error <= 1e-4 * scale else "MISMATCH"
        where = f", {special} NaN/Inf elements differ" if special else ""
        print(
            f"{name}: max |error| {error:.3g} ({error / scale:.2g} of max |output|{where}): "
            f"{verdict}"
        )
        if verdict != "OK":
            raise UserError(
                f"output '{name}' differs from onnxruntime by {error:.3g}"
                + (f" and in {special} NaN/Inf elements" if special else "")
            )


def _onnxruntime_reason(message: str) -> str:
    """The first line of an onnxruntime error without its status prefix and the C++ source
    location and signature that precede the reason."""
    lines = message.strip().splitlines()
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", lines[0] if lines else "")
    return re.sub(r"^\S+:\d+ \S+\(.*\)\s+(?=\S)", "", reason)


def output_difference(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float, int]:
    """(max |ours - theirs| over the finite elements of both, max |theirs| there (at least
    1e-30), how many elements are NaN or ±Inf in one but not the same in the other)."""
    same_special = (np.isnan(ours) & np.isnan(theirs)) | (np.isinf(theirs) & (ours == theirs))
    finite = np.isfinite(ours) & np.isfinite(theirs)
    special = int(np.count_nonzero(~finite & ~same_special))
    with np.errstate(all="ignore"):
        error = float(np.max(np.abs(ours - theirs), where=finite, initial=0.0))
        scale = float(np.max(np.abs(theirs), where=finite, initial=1e-30))
    return error, max(scale, 1e-30), special
