"""`convir tune`: measure every conv of a model on this machine into the tuning database."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Callable

from convir.cli.errors import UserError

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_budget(text: str) -> float:
    """A duration: `90`, `90s`, `10m`, `1.5h` -> seconds."""
    match = _BUDGET.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive duration such as 90s, 10m or 1h, got '{text}'"
        )
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def parse_thread_counts(text: str) -> list[int]:
    """`1,2` -> [1, 2]."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected thread counts >= 1 separated by commas, got '{text}'"
        )
    return list(dict.fromkeys(counts))


def parse_algorithms(text: str) -> list[str]:
    """`im2col,winograd` -> the names, each checked against lowering.algorithms.ALGORITHMS."""
    from lowering.algorithms import ALGORITHMS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALGORITHMS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown algorithm(s) {', '.join(unknown) or '(none given)'}; expected a "
            f"comma-separated list of {', '.join(ALGORITHMS)}"
        )
    return names


def add_tune_command(commands: argparse._SubParsersAction, positive: Callable[[str], int]) -> None:
    """Register `convir tune` on the subcommand parser."""
    from convir.models import MODELS
    from convir.tuning.database import TUNING_DB_ENV

    tune = commands.add_parser(
        "tune",
        help="auto-tune every conv of a model on this machine (Fast-Run)",
        description="Measure, on this machine, every applicable algorithm and a few schedules "
        "of each for every distinct conv of the model, and record every result in the tuning "
        "database, keyed by this CPU's fingerprint (model, ISA features, caches), the thread "
        "count, the conv's shape and epilogue, and the kernel code's version (convir's release "
        "and a digest of its kernel generators: records of other kernel code are kept, not "
        "used). Candidates are compiled first, then timed one at a time (warm-up, repeats, "
        "median; thread CPU time at 1 thread; stopped early when clearly slower than the "
        "best; a crashing or hanging candidate is recorded as failed) and checked against a "
        "float64 reference. A candidate other than the heuristic's choice wins only when, "
        "timed again alternately with it, it is at least 3 percent faster. Workloads already "
        "in the database are skipped (resume), unless --retune. Ctrl-C keeps every workload "
        "finished so far. `convir compile/run/bench models --tuning-db` use the records.",
    )
    tune.add_argument(
        "model", help=f"an .onnx file or a built-in model ({', '.join(MODELS)}, 224x224)"
    )
    tune.add_argument(
        "--db",
        help=f"the tuning database (default: ${TUNING_DB_ENV}, else tuning.sqlite in the "
        "object cache directory); created when missing",
    )
    tune.add_argument(
        "--threads",
        type=parse_thread_counts,
        default=[1],
        metavar="N[,N...]",
        help="thread counts to tune for (1); each is a separate record",
    )
    tune.add_argument(
        "--budget",
        type=parse_budget,
        default=None,
        metavar="DURATION",
        help="stop after this much wall time (e.g. 90s, 10m, 1h); the next run resumes",
    )
    tune.add_argument(
        "--algorithms",
        type=parse_algorithms,
        default=None,
        metavar="A[,A...]",
        help="only these algorithms (default: every applicable one)",
    )
    tune.add_argument(
        "--candidates",
        type=positive,
        default=None,
        metavar="N",
        help="schedules tried per algorithm (default 4)",
    )
    tune.add_argument("--retune", action="store_true", help="measure recorded workloads again")
    tune.add_argument("--no-progress", action="store_true", help="no progress bar")
    tune.set_defaults(run=_run_tune)


def _run_tune(args: argparse.Namespace) -> None:
    from convir.tuning.database import TuningDatabase, TuningDatabaseError
    from convir.tuning.space import PER_ALGORITHM
    from convir.tuning.tuner import tune_model

    try:
        database = TuningDatabase(args.db)
    except TuningDatabaseError as error:
        raise UserError(str(error)) from None
    # SIGTERM ends the run as Ctrl-C does: the worker is killed, finished workloads are kept.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with database:
        try:
            summary = tune_model(
                args.model,
                database,
                thread_counts=args.threads,
                budget_s=args.budget,
                algorithms=args.algorithms,
                retune=args.retune,
                per_algorithm=args.candidates or PER_ALGORITHM,
                progress=not args.no_progress,
            )
        except KeyboardInterrupt:
            print(
                f"convir: interrupted; the workloads finished so far are in '{database.path}', "
                "run the same command to resume",
                file=sys.stderr,
            )
            raise SystemExit(130) from None
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(summary.statuses.items()))
    print(
        f"tuned {summary.tuned} of {summary.workloads} workloads "
        f"({summary.skipped} already in the database) in {summary.seconds:.1f} s; "
        f"{summary.candidates} candidates measured" + (f" ({statuses})" if statuses else "")
    )
    if summary.stopped_by_budget:
        left = summary.workloads - summary.tuned - summary.skipped + summary.incomplete
        print(f"the budget ran out: {left} workloads left; run again to resume")
    print(f"database: {database.path}")


def add_explain_command(
    commands: argparse._SubParsersAction, positive: Callable[[str], int]
) -> None:
    """Register `convir explain` on the subcommand parser."""
    from convir.cli.native import add_tuning_options
    from convir.models import MODELS

    explain = commands.add_parser(
        "explain",
        help="one row per conv: algorithm, schedule, where the choice came from, speed",
        description="For every conv of the model: its name, shape, algorithm, schedule, where "
        "the choice came from (heuristic, tuned, tuned-nearest, pinned), FLOPs, workspace "
        "bytes, its time measured now as the compiled model runs it (without a fused residual "
        "add; wall time), effective GFLOP/s (direct-conv FLOPs: Winograd can exceed the "
        "peak) and % of the measured FMA peak, and for tuned convs the runner-up with its time "
        "as tuned.",
    )
    explain.add_argument(
        "model", help=f"an .onnx file or a built-in model ({', '.join(MODELS)}, 224x224)"
    )
    add_tuning_options(explain)
    explain.add_argument(
        "--threads", type=positive, default=None, help="threads (all cores; the records' count)"
    )
    explain.add_argument(
        "--no-measure", action="store_true", help="do not time the convs (no ms, GFLOP/s, %%)"
    )
    explain.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout)")
    explain.add_argument("--plot", metavar="FILE.png", help="bar chart of ms per conv")
    explain.set_defaults(run=_run_explain)


def _run_explain(args: argparse.Namespace) -> None:
    import json

    from convir.bench import BenchError
    from convir.cli.files import write_text
    from convir.cli.native import open_tuning_records, report_nearest
    from convir.target import Target
    from convir.tuning.explain import explain, format_table, plot

    target = Target.host()
    records = open_tuning_records(args, target, args.threads)
    if args.plot:
        from convir.bench.report import require_matplotlib

        try:
            require_matplotlib()
        except BenchError as error:
            raise UserError(str(error)) from None
        if args.no_measure:
            raise UserError("--plot draws measured times: it cannot go with --no-measure")
    report = explain(
        args.model,
        records=records,
        threads=args.threads,
        target=target,
        measure=not args.no_measure,
    )
    report_nearest(records)
    if args.json == "-":
        write_text(json.dumps(report.to_json(), indent=2) + "\n", None)
        return
    print(format_table(report))
    if args.json:
        write_text(json.dumps(report.to_json(), indent=2) + "\n", args.json)
    if args.plot:
        plot(report, args.plot)
