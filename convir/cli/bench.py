"""`convir bench peak|layers|models`: the options; the measuring is `convir.bench`'s."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from convir.cli.errors import UserError
from convir.cli.files import write_text

_PEAK_METHOD = (
    "The peak is measured, never assumed: a generated LLVM kernel runs independent chains of "
    "full-width vector FMAs (24 on AVX-512) in a loop, its assembly is checked to really hold "
    "vector FMAs (vfmadd on zmm for AVX-512), and the best of several runs is kept (other "
    "processes can only slow it down, so the best run is the closest to the sustainable peak)."
)


def add_bench_command(commands: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    """Register `convir bench` and its three benchmarks on the subcommand parser."""
    bench = commands.add_parser(
        "bench",
        help="measure the machine's peak, conv layers and whole models against onnxruntime",
        description="Benchmarks. peak: the FP32 FMA peak of this machine. layers: every "
        "distinct conv of ResNet-50/18, VGG-16 and MobileNetV2 as it runs inside the compiled "
        "model, against the peak and onnxruntime's kernel. models: whole built-in models, "
        f"convir against onnxruntime. {_PEAK_METHOD}",
    )
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    _add_peak(benchmarks, positive)
    _add_layers(benchmarks, positive)
    _add_models(benchmarks, positive)
    _add_compile(benchmarks, positive)


def _add_peak(benchmarks: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    peak = benchmarks.add_parser(
        "peak",
        help="measure the FP32 FMA peak (GFLOP/s)",
        description=f"Measure this machine's FP32 peak in GFLOP/s. {_PEAK_METHOD} With "
        "--threads N the kernel runs on N threads at once and the total is reported.",
    )
    peak.add_argument("--threads", type=positive, default=1, help="threads (1)")
    peak.add_argument("--json", metavar="FILE", help="also write the result as JSON ('-': stdout)")
    peak.set_defaults(run=_run_peak)


def _add_layers(benchmarks: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    from convir.bench.workloads import DEFAULT_LAYER_MODELS

    layers = benchmarks.add_parser(
        "layers",
        help="time every distinct conv layer of standard CNNs against the peak and onnxruntime",
        description="Time every distinct conv of the chosen models (224x224, batch 1), as the "
        "compiled model runs it, against the measured peak and onnxruntime. convir's time is "
        "the compiled conv alone: NCHWc tensors in and out (block = vector width), bias and "
        "activation fused, no pack/unpack, called through ctypes on preallocated buffers. "
        "ORT's time is its conv node's own time from onnxruntime's profiler (ORT_ENABLE_ALL, "
        "same threads, spinning off), without the NCHWc reorder nodes ORT puts around a lone "
        "conv. Residual adds fused in the model are left out on both sides. Every layer's "
        "output is checked against onnxruntime before it is timed; a mismatch is reported "
        "without times and makes the command fail. Samples alternate (convir, ORT, ...), "
        "each the mean of enough calls to last >= 2 ms; times are medians.",
    )
    layers.add_argument(
        "--models",
        default=",".join(DEFAULT_LAYER_MODELS),
        help=f"comma-separated built-in models ({','.join(DEFAULT_LAYER_MODELS)}) or paths of "
        ".onnx files (their convs at the shapes the file declares, named after its stem)",
    )
    layers.add_argument("--layers", metavar="SUBSTR", help="only layers whose name contains SUBSTR")
    layers.add_argument("--threads", type=positive, default=1, help="threads (1)")
    layers.add_argument(
        "--algorithm",
        metavar="NAME",
        help="run every layer with this convir algorithm where it applies, convir's choice "
        "elsewhere (default: convir's choice everywhere; the table names what ran)",
    )
    layers.add_argument(
        "--tile",
        metavar="KNOB=VALUE[,KNOB=VALUE...]",
        help="pin these schedule knobs on every layer whose algorithm has them, the heuristic "
        "fills the others (e.g. --algorithm winograd --tile m=6)",
    )
    layers.add_argument("--repeat", type=positive, default=20, help="samples per side (20)")
    layers.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    layers.add_argument("--plot", metavar="FILE.png", help="plot %% of peak per layer")
    layers.set_defaults(run=_run_layers)


def _add_models(benchmarks: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    from convir.models import MODELS
    from convir.target import Target

    cores = Target.host().cores
    default_threads = "1" if cores == 1 else f"1,{cores}"
    models = benchmarks.add_parser(
        "models",
        help="time whole models (built-in or .onnx files) against onnxruntime",
        description="Compile each model (a built-in one: 224x224 unless --size, batch 1, random "
        "weights; or an .onnx file at the shapes it declares, a symbolic batch as 1), check its "
        "outputs against onnxruntime, and time both at each thread count: "
        "a whole inference called from Python with NCHW input and output (CompiledModel.run "
        "vs InferenceSession.run with ORT_ENABLE_ALL and spinning off). Samples alternate; "
        "times are medians. 'compile s' is convir.compile's wall time (about a second when the "
        "model was compiled before: it is then loaded from the cache).",
    )
    models.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated built-in names ({','.join(MODELS)}) or paths of .onnx files",
    )
    models.add_argument(
        "--threads",
        default=default_threads,
        help=f"comma-separated thread counts ({default_threads}: 1 and all cores)",
    )
    models.add_argument("--repeat", type=positive, default=20, help="samples per side (20)")
    models.add_argument("--size", type=positive, default=224, help="input height and width (224)")
    models.add_argument(
        "--busy-core",
        metavar="CPU",
        nargs="?",
        type=int,
        const=-1,
        help="load test: keep CPU (default: the highest this process may use) busy with a "
        "spinning process pinned to it while both engines are checked and timed; the table "
        "is followed by each engine's time at N threads over its time at the fewest",
    )
    models.add_argument(
        "--tuning-db",
        metavar="PATH",
        help="also compile each model with this tuning database's records for each thread "
        "count and time it in the same rounds: columns 'tuned ms', 'heur/tuned' (heuristic "
        "time / tuned time) and 'tuned convs' (convs a record served), then the geometric mean",
    )
    models.add_argument(
        "--fusion",
        choices=["auto", "all", "none"],
        default="none",
        help="layer fusion of dw3x3+1x1 conv chains (conv-fuse-layers mode; default none, "
        "as convir.compile)",
    )
    models.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    models.add_argument("--plot", metavar="FILE.png", help="plot ms per model")
    models.set_defaults(run=_run_models)


def _add_compile(benchmarks: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    from convir.models import MODELS

    compile_ = benchmarks.add_parser(
        "compile",
        help="time convir.compile per built-in model, cold and warm, by stage",
        description="Compile each built-in model (224x224, batch 1, saved as an .onnx file) in "
        "a fresh Python process: into an empty cache directory (cold: import to loaded shared "
        "object, the code generators included), again (warm: the unchanged file loads from the "
        "cache; Python's imports are not counted again), and with other weights (known "
        "kernels: every kernel comes from the kernel cache). Each wall time is split by stage: "
        "import, graph passes, kernel emission per algorithm or op, lowering to the llvm "
        "dialect, translation to LLVM IR, LLVM O3 + codegen (in worker processes, beside the "
        "lowering), link, load; 'other' is the rest; the cold compile's CPU seconds per stage "
        "vary far less with the machine's load. Times are medians over --repeat processes. "
        "--profile N runs one more cold compile under cProfile (CPU time) and lists its N "
        "functions with the most own time.",
    )
    compile_.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated ({','.join(MODELS)})"
    )
    compile_.add_argument("--repeat", type=positive, default=1, help="processes per model (1)")
    compile_.add_argument(
        "--profile", type=int, default=0, metavar="N", help="top N functions of a profile (0)"
    )
    compile_.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    compile_.set_defaults(run=_run_compile)


def _names(text: str, option: str, known: list[str], *, files: bool = False) -> list[str]:
    """The comma-separated model names of `text`, each in `known` (or, with `files`, a path
    ending in .onnx that exists)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [
        name for name in names if name not in known and not (files and name.endswith(".onnx"))
    ]
    if not names or unknown:
        paths = " or paths of .onnx files" if files else ""
        raise UserError(
            f"{option}: unknown model(s) {', '.join(unknown) or '(none given)'}; "
            f"expected a comma-separated subset of {', '.join(known)}{paths}"
        )
    missing = [name for name in names if name.endswith(".onnx") and not Path(name).is_file()]
    if missing:
        raise UserError(f"{option}: no such file: {', '.join(missing)}")
    return names


def _knobs(text: str) -> dict[str, int]:
    """`--tile KNOB=VALUE,...` of `bench layers`, in the syntax of the knobs of `convir run
    --tile` (`passes.conv_overrides`)."""
    from passes.conv_overrides import parse_knobs

    try:
        return parse_knobs(text)
    except ValueError as error:
        raise UserError(f"--tile: {error}") from None


def _thread_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--threads: expected comma-separated positive integers, got '{text}'")
    return counts


def _table_stream(args: argparse.Namespace):
    """stdout, unless the JSON goes there."""
    return sys.stderr if args.json == "-" else sys.stdout


def _write_json(data: dict[str, object], path: str) -> None:
    """`--json FILE`: the results as JSON in FILE ('-': stdout)."""
    write_text(json.dumps(data, indent=2) + "\n", None if path == "-" else path)


def _bench_errors(run: Callable[[argparse.Namespace], None]):
    """Turn the benchmarks' errors into the command line's one-line errors."""

    def wrapped(args: argparse.Namespace) -> None:
        from convir.bench import BenchError

        try:
            run(args)
        except BenchError as error:
            raise UserError(str(error)) from None

    return wrapped


@_bench_errors
def _run_peak(args: argparse.Namespace) -> None:
    from convir.bench.peak import measure_peak
    from convir.bench.report import print_peak

    peak = measure_peak(args.threads)
    print_peak(peak, _table_stream(args))
    if args.json:
        _write_json({"benchmark": "peak", "peak": peak.to_json()}, args.json)


@_bench_errors
def _run_layers(args: argparse.Namespace) -> None:
    from convir.bench import report
    from convir.bench.layers import run_layers
    from convir.models import MODELS

    models = _names(args.models, "--models", list(MODELS), files=True)
    if args.algorithm is not None:
        from lowering.algorithms import ALGORITHMS

        if args.algorithm not in ALGORITHMS:
            raise UserError(
                f"--algorithm: unknown algorithm '{args.algorithm}'; expected one of "
                f"{', '.join(ALGORITHMS)}"
            )
    knobs = _knobs(args.tile) if args.tile is not None else None
    if args.plot:
        report.require_matplotlib()
    out = _table_stream(args)
    first = [True]

    def on_result(result, peak) -> None:
        if first[0]:
            report.print_layer_header(peak, out)
            first[0] = False
        report.print_layer_row(result, peak, out)

    results = run_layers(
        models,
        substring=args.layers,
        threads=args.threads,
        repeat=args.repeat,
        algorithm=args.algorithm,
        knobs=knobs,
        on_result=on_result,
    )
    report.print_layer_summary(results, out)
    if args.json:
        _write_json(results.to_json(), args.json)
    if args.plot:
        report.plot_layers(results, args.plot)
    _fail_on_mismatches(results.summary()["mismatches"])


@_bench_errors
def _run_models(args: argparse.Namespace) -> None:
    from convir.bench import report
    from convir.bench.busy import default_busy_cpu
    from convir.bench.models import run_models
    from convir.models import MODELS

    models = _names(args.models, "--models", list(MODELS), files=True)
    counts = _thread_counts(args.threads)
    if args.plot:
        report.require_matplotlib()
    out = _table_stream(args)
    if args.tuning_db:
        _check_tuning_db(args.tuning_db)
    print(report.MODEL_HEADER + (report.TUNED_HEADER if args.tuning_db else ""), file=out)
    results = run_models(
        models,
        thread_counts=counts,
        repeat=args.repeat,
        size=args.size,
        busy_cpu=default_busy_cpu() if args.busy_core == -1 else args.busy_core,
        on_result=lambda result: report.print_model_row(result, out),
        tuning_db=args.tuning_db,
        fusion=args.fusion,
    )
    report.print_thread_scaling(results, out)
    if args.tuning_db:
        report.print_tuned_summary(results, out)
    if args.json:
        _write_json(results.to_json(), args.json)
    if args.plot:
        report.plot_models(results, args.plot)
    _fail_on_mismatches(results.to_json()["mismatches"])


def _check_tuning_db(path: str) -> None:
    """Open --tuning-db once before anything is compiled: a bad file is one clear error."""
    from convir.tuning.database import TuningDatabase, TuningDatabaseError

    try:
        TuningDatabase(path, create=False).close()
    except TuningDatabaseError as error:
        raise UserError(f"--tuning-db: {error}") from None


@_bench_errors
def _run_compile(args: argparse.Namespace) -> None:
    from convir.bench.compile import print_result, run_compile
    from convir.models import MODELS

    models = _names(args.models, "--models", list(MODELS))
    if args.profile < 0:
        raise UserError(f"--profile: expected a count >= 0, got {args.profile}")
    out = _table_stream(args)
    results = run_compile(
        models,
        repeat=args.repeat,
        profile=args.profile,
        on_result=lambda result: print_result(result, out),
    )
    if args.json:
        _write_json(
            {"benchmark": "compile", "results": [result.to_json() for result in results]},
            args.json,
        )


def _fail_on_mismatches(mismatches: list[str]) -> None:
    if mismatches:
        raise UserError(
            f"{len(mismatches)} result(s) differ from onnxruntime and have no times: "
            f"{', '.join(mismatches)}"
        )
