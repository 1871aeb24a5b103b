"""`convir explain`: one row per conv of a model — what convir chose for it, why, and how fast.

The model is lowered to "scheduled" as `convir.compile` would (with the tuning database's
records when one is given), and each conv reports: its `convir.name`, shape, algorithm,
schedule, where the choice came from (`convir.choice`: heuristic, tuned, tuned-nearest, pinned,
option), FLOPs, workspace bytes, and, unless `measure=False`, its time measured now as the
compiled model runs it (`convir.bench.conv_harness.NativeConv` pinned to the same algorithm and
schedule; median of `REPEATS` calibrated samples of wall time, as the peak is measured;
identical convs measured once), effective GFLOP/s (the direct convolution's FLOPs over that time:
Winograd can exceed the peak) and % of the measured FMA peak (`convir.bench.peak`) at the same
thread count. Runner-up times are the tuner's (at one thread, thread CPU time). For tuned convs, the
record's runner-up (the fastest other candidate) with its time as tuned.

A residual add fused into a conv is not part of its measured time (as in `convir bench layers`).
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass

import onnx

from convir.target import Target
from convir.tuning.records import TuningRecords
from convir.tuning.workloads import load_model, workload_of
from passes.select_algorithm import CHOICE_ATTRIBUTE

REPEATS = 5


@dataclass
class ConvRow:
    """One conv of the report (module doc); times in milliseconds."""

    name: str
    shape: str
    algorithm: str
    schedule: dict[str, int]
    source: str
    flop: int
    workspace_bytes: int
    measured_ms: float | None = None
    gflops: float | None = None
    percent_of_peak: float | None = None
    runner_up: str | None = None
    runner_up_ms: float | None = None


@dataclass
class Explanation:
    """The report: its rows, the thread count, the peak they are compared with (GFLOP/s)."""

    model: str
    threads: int
    peak_gflops: float | None
    rows: list[ConvRow]
    #: Why no record served, when the database only holds records of other kernel code.
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "threads": self.threads,
            "peak_gflops": self.peak_gflops,
            "convs": [asdict(row) for row in self.rows],
            "note": self.note,
        }


def explain(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    records: TuningRecords | None = None,
    threads: int | None = None,
    target: Target | None = None,
    measure: bool = True,
) -> Explanation:
    """The report of `model` (module doc)."""
    from convir.compiler import lower
    from convir.dialects import conv
    from convir.dialects.conv_names import conv_name
    from lowering.algorithms import conv_emitter

    target = target or Target.host()
    threads = threads or (records.threads if records is not None else target.cores)
    scheduled = lower(load_model(model), target=target, stop="scheduled", tuning_db=records)
    rows: list[ConvRow] = []
    workloads = {}
    for op in scheduled.module.walk():
        if not isinstance(op, conv.Conv2DOp) or op.algorithm is None:
            continue
        workload = workload_of(op)
        schedule = {k: v.value.data for k, v in op.schedule.data.items()} if op.schedule else {}
        source = op.attributes.get(CHOICE_ATTRIBUTE)
        row = ConvRow(
            name=conv_name(op) or "?",
            shape=workload.shape if workload else "NCHW",
            algorithm=op.algorithm.data,
            schedule=schedule,
            source=source.data if source is not None else "?",
            flop=workload.flop if workload else 0,
            workspace_bytes=conv_emitter(op).workspace_bytes(op),
        )
        if records is not None and workload is not None and row.source.startswith("tuned"):
            record = records.database.lookup(
                records.target, records.threads, workload.key, nearest=records.nearest
            )
            if record is not None and record.runner_up is not None:
                up = record.runner_up
                row.runner_up = f"{up.algorithm}{_knobs(up.schedule)}"
                row.runner_up_ms = None if up.median_s is None else up.median_s * 1e3
        rows.append(row)
        if workload is not None:
            workloads[row.name] = workload
    peak = None
    if measure:
        from convir.bench.peak import measure_peak

        peak = measure_peak(threads, target).gflops
        _measure(rows, workloads, threads, target, peak)
    name = model if isinstance(model, str) else getattr(model, "graph", None) and model.graph.name
    return Explanation(str(name or "model"), threads, peak, rows, _stale_note(records, rows))


def _stale_note(records: TuningRecords | None, rows: list[ConvRow]) -> str:
    """A note when no record served but the database holds some of other kernel code."""
    if records is None or any(row.source.startswith("tuned") for row in rows):
        return ""
    stale = records.database.other_versions(records.target, records.threads)
    if not stale:
        return ""
    return (
        f"note: the database holds {stale} record(s) of this target at {records.threads} "
        "thread(s) measured on other kernel code (another convir build); they are not used. "
        "Run `convir tune` again."
    )


def _measure(rows: list[ConvRow], workloads: dict, threads: int, target: Target, peak) -> None:
    """Time each distinct (workload, algorithm, schedule) once; fill the rows' times."""
    from convir.bench.conv_harness import NativeConv, layer_data
    from convir.bench.timing import calibrate

    measured: dict[tuple, float] = {}
    for row in rows:
        workload = workloads.get(row.name)
        if workload is None or workload.batch != 1:
            continue
        key = (workload.key, row.algorithm, json.dumps(row.schedule))
        if key not in measured:
            layer = workload.layer(row.name)
            x, weight, bias = layer_data(layer)
            native = NativeConv(
                layer,
                x,
                weight,
                bias,
                threads=threads,
                target=target,
                algorithm=row.algorithm,
                schedule=row.schedule,
            )
            iterations = calibrate(native.run)
            samples = [native.seconds_per_call(iterations) for _ in range(REPEATS)]
            measured[key] = statistics.median(samples)
        seconds = measured[key]
        row.measured_ms = seconds * 1e3
        row.gflops = row.flop / seconds / 1e9
        row.percent_of_peak = 100 * row.gflops / peak if peak else None


def _knobs(schedule: dict[str, int]) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in schedule.items()) + "}"


def format_table(report: Explanation) -> str:
    """The report as a terminal table."""
    peak = f", peak {report.peak_gflops:.1f} GFLOP/s" if report.peak_gflops else ""
    lines = [
        f"{report.model}: {len(report.rows)} convs at {report.threads} thread(s){peak}",
        f"{'conv':9s} {'shape':28s} {'algorithm':9s} {'source':10s} {'MFLOP':>8s} "
        f"{'ws KiB':>7s} {'ms':>8s} {'GFLOP/s':>8s} {'%peak':>6s}  schedule; runner-up",
    ]
    for row in report.rows:
        ms = "-" if row.measured_ms is None else f"{row.measured_ms:.3f}"
        gflops = "-" if row.gflops is None else f"{row.gflops:.1f}"
        percent = "-" if row.percent_of_peak is None else f"{row.percent_of_peak:.0f}"
        runner = ""
        if row.runner_up is not None:
            time_ms = "?" if row.runner_up_ms is None else f"{row.runner_up_ms:.3f} ms"
            runner = f"; {row.runner_up} {time_ms}"
        lines.append(
            f"{row.name:9s} {row.shape:28s} {row.algorithm:9s} {row.source[:10]:10s} "
            f"{row.flop / 1e6:8.1f} {row.workspace_bytes / 1024:7.0f} {ms:>8s} {gflops:>8s} "
            f"{percent:>6s}  {_knobs(row.schedule)}{runner}"
        )
    measured = [row.measured_ms for row in report.rows if row.measured_ms is not None]
    if measured:
        lines.append(f"total conv time {sum(measured):.3f} ms")
    if report.note:
        lines.append(report.note)
    return "\n".join(lines)


def plot(report: Explanation, path: str) -> None:
    """A bar chart of each conv's measured ms, coloured by algorithm (matplotlib)."""
    from convir.bench.report import require_matplotlib

    plt = require_matplotlib()
    rows = [row for row in report.rows if row.measured_ms is not None]
    algorithms = sorted({row.algorithm for row in rows})
    colours = {name: f"C{i}" for i, name in enumerate(algorithms)}
    figure, axes = plt.subplots(figsize=(max(6, len(rows) * 0.3), 4))
    axes.bar(
        range(len(rows)),
        [row.measured_ms for row in rows],
        color=[colours[row.algorithm] for row in rows],
    )
    axes.set_xticks(range(len(rows)), [row.name for row in rows], rotation=90, fontsize=6)
    axes.set_ylabel("ms")
    axes.set_title(f"{report.model}, {report.threads} thread(s): time per conv")
    for name in algorithms:
        axes.bar([], [], color=colours[name], label=name)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
