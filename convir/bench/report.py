"""Tables and plots of the benchmarks' results.

Tables are printed a row at a time as results arrive (a full `bench layers` takes minutes).
`--json FILE` (written by `convir.cli.bench`) holds the report's `to_json()`; with `-` it goes to
stdout, and the table then goes to stderr so that stdout stays valid JSON. `--plot FILE.png`
draws with matplotlib's Agg backend (no display needed); without matplotlib it fails before any
measurement.
"""

from __future__ import annotations

from typing import IO, Any

from convir.bench import BenchError
from convir.bench.layers import ORT_METHOD, LayerResult, LayersReport
from convir.bench.models import ModelResult, ModelsReport
from convir.bench.peak import Peak

MATPLOTLIB_MISSING = "--plot needs matplotlib: pip install 'convir[bench]'"


def require_matplotlib() -> Any:
    """matplotlib.pyplot on the Agg backend, or a BenchError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError(MATPLOTLIB_MISSING) from None
    return plt


def _number(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def print_peak(peak: Peak, out: IO[str]) -> None:
    """The peak and how it was measured."""
    print(
        f"peak  {peak.gflops:7.1f} GFLOP/s with {peak.threads} thread(s) "
        f"({peak.gflops_per_core:.1f} per core): {peak.to_json()['method']} of "
        f"{peak.accumulators} independent <{peak.vector_width} x float> FMA chains "
        f"({peak.fma_instructions} vector FMAs in the loop)",
        file=out,
    )


LAYER_HEADER = (
    f"{'layer':44s} {'shape':30s} {'algorithm':10s} {'ms':>8s} {'GFLOP/s':>8s} {'%peak':>6s} "
    f"{'ORT ms':>8s} {'ORT/convir':>10s}"
)


def print_layer_header(peak: Peak, out: IO[str]) -> None:
    """What the layer table's columns mean, then the header."""
    print_peak(peak, out)
    print(
        "convir: the conv alone as in the compiled model (NCHWc in/out, bias+activation fused)"
        f"\nORT:    {ORT_METHOD}\n{LAYER_HEADER}",
        file=out,
    )


def print_layer_row(result: LayerResult, peak: Peak, out: IO[str]) -> None:
    """One row of the layer table (a mismatch shows its error instead of times)."""
    layer = result.layer
    name = layer.name + (f" x{layer.count}" if layer.count > 1 else "")
    head = f"{name:44s} {layer.shape:30s} {result.algorithm:10s}"
    if not result.correct:
        print(f"{head} MISMATCH: max error {result.max_rel_error:.2g} of max |output|", file=out)
        return
    rate = result.gflops(result.convir_s)
    assert result.convir_s is not None and result.ort_s is not None and rate is not None
    print(
        f"{head} {result.convir_s * 1e3:8.3f} {rate:8.1f} {100 * rate / peak.gflops:5.1f}% "
        f"{result.ort_s * 1e3:8.3f} {_number(result.ratio, 10, 2)}",
        file=out,
        flush=True,
    )


def print_layer_summary(report: LayersReport, out: IO[str]) -> None:
    """Per model: geometric-mean % of peak by layer kind, conv time per inference; worst ratio."""
    summary = report.summary()
    for model, data in summary["models"].items():
        kinds = ", ".join(
            f"{kind} {entry['geomean_peak_percent']:.1f}% ({entry['layers']})"
            for kind, entry in data["kinds"].items()
        )
        print(
            f"{model}: geomean % of peak by kind (layers): {kinds or '-'}; convs of one "
            f"inference: convir {data['convir_ms_per_inference']:.2f} ms, "
            f"ORT {data['ort_ms_per_inference']:.2f} ms",
            file=out,
        )
    worst = summary["worst_ratio"]
    if worst is not None:
        print(f"worst ORT/convir: {worst['ratio']:.2f} ({worst['layer']})", file=out)


MODEL_HEADER = (
    f"{'model':24s} {'threads':>7s} {'ms':>9s} {'ORT ms':>9s} {'ORT/convir':>10s} "
    f"{'compile s':>9s} {'rel err':>8s}"
)


#: The columns `--tuning-db` adds: the tuned model's time, heuristic time / tuned time, and
#: how many convs a record served.
TUNED_HEADER = f" {'tuned ms':>9s} {'heur/tuned':>10s} {'tuned convs':>11s}"


def print_model_row(result: ModelResult, out: IO[str]) -> None:
    """One row of the model table (with the tuned columns when the result has them)."""
    head = f"{result.model:24s} {result.threads:7d}"
    if not result.correct:
        print(f"{head} MISMATCH: max error {result.max_rel_error:.2g} of max |output|", file=out)
        return
    assert result.convir_s is not None and result.ort_s is not None
    tuned = ""
    if result.tuned_error is not None:
        if result.tuned_s is None:
            tuned = f" tuned MISMATCH: max error {result.tuned_error:.2g}"
        else:
            tuned = (
                f" {result.tuned_s * 1e3:9.2f} {_number(result.tuned_speedup, 10, 3)} "
                f"{result.tuned_convs:11d}"
            )
    print(
        f"{head} {result.convir_s * 1e3:9.2f} {result.ort_s * 1e3:9.2f} "
        f"{_number(result.ratio, 10, 2)} {result.compile_s:9.1f} {result.max_rel_error:8.1e}"
        + tuned,
        file=out,
        flush=True,
    )


def print_tuned_summary(report: ModelsReport, out: IO[str]) -> None:
    """Per thread count, the geometric mean of heuristic time / tuned time over the models."""
    import math

    for threads in sorted({r.threads for r in report.results}):
        ratios = [r.tuned_speedup for r in report.results if r.threads == threads]
        ratios = [ratio for ratio in ratios if ratio is not None]
        if ratios:
            geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
            slower = [
                r.model
                for r in report.results
                if r.threads == threads and r.tuned_speedup is not None and r.tuned_speedup < 1
            ]
            print(
                f"{threads}T: heuristic/tuned geometric mean {geomean:.3f} over {len(ratios)} "
                f"models; slower when tuned: {', '.join(slower) or 'none'}",
                file=out,
            )


def print_thread_scaling(report: ModelsReport, out: IO[str]) -> None:
    """Per model, each engine's time at every thread count over its time at the fewest threads
    (< 1: more threads helped; issue 14 wants convir's never above 1.10 with a core busy)."""
    if report.busy_cpu is not None:
        print(f"a spinning process kept CPU {report.busy_cpu} busy throughout", file=out)
    for model in dict.fromkeys(r.model for r in report.results):
        rows = [r for r in report.results if r.model == model and r.correct]
        if len(rows) < 2:
            continue
        base = min(rows, key=lambda r: r.threads)
        assert base.convir_s is not None and base.ort_s is not None
        ratios = [
            f"{r.threads}T/{base.threads}T convir {r.convir_s / base.convir_s:.2f} "
            f"ORT {r.ort_s / base.ort_s:.2f}"
            for r in rows
            if r is not base and r.convir_s is not None and r.ort_s is not None
        ]
        print(f"{model:24s} time {', '.join(ratios)}", file=out)


def plot_layers(report: LayersReport, path: str) -> None:
    """Horizontal bars: % of peak of convir and ORT for every layer, the ratio beside them."""
    plt = require_matplotlib()
    rows = [r for r in report.results if r.correct]
    peak = report.peak.gflops
    figure, axes = plt.subplots(figsize=(10, 1.5 + 0.28 * len(rows)))
    positions = range(len(rows))
    ours = [100 * (r.gflops(r.convir_s) or 0) / peak for r in rows]
    theirs = [100 * (r.gflops(r.ort_s) or 0) / peak for r in rows]
    axes.barh([p - 0.2 for p in positions], ours, height=0.4, label="convir")
    axes.barh([p + 0.2 for p in positions], theirs, height=0.4, label="onnxruntime")
    for position, result, value in zip(positions, rows, ours, strict=True):
        longest = max(value, 100 * (result.gflops(result.ort_s) or 0) / peak)
        axes.text(longest + 1, position, f"{result.ratio:.2f}x", va="center", fontsize=7)
    axes.set_yticks(list(positions), [r.layer.name for r in rows], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel(
        f"% of measured peak ({peak:.0f} GFLOP/s, {report.threads} thread(s)); "
        "label: ORT time / convir time"
    )
    axes.legend(loc="best")
    _save(figure, path, plt)


def plot_models(report: ModelsReport, path: str) -> None:
    """Grouped bars: convir and ORT ms per model and thread count."""
    plt = require_matplotlib()
    rows = [r for r in report.results if r.correct]
    figure, axes = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4))
    positions = range(len(rows))
    axes.bar([p - 0.2 for p in positions], [r.convir_s * 1e3 for r in rows], 0.4, label="convir")
    axes.bar([p + 0.2 for p in positions], [r.ort_s * 1e3 for r in rows], 0.4, label="onnxruntime")
    axes.set_xticks(list(positions), [f"{r.model}\n{r.threads}T" for r in rows], fontsize=8)
    axes.set_ylabel("ms per inference (median)")
    axes.legend()
    _save(figure, path, plt)


def _save(figure: Any, path: str, plt: Any) -> None:
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as error:
        raise BenchError(f"cannot write '{path}': {error.strerror}") from None
    finally:
        plt.close(figure)
