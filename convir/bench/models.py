"""`convir bench models`: whole models, convir against onnxruntime, per thread count.

Each model is a built-in one (`convir.models`, batch 1, 224×224 unless `size` says otherwise,
random weights) or an ONNX file given by its path (ending in `.onnx`: run at the shapes it
declares, a symbolic batch taken as 1, every input filled with standard-normal values and every
output compared). Each is compiled once by `convir.compile`; its wall time, "compile s", is the
whole compile (Python lowering and the code generator) unless the model was compiled before with
the same code and weights, when it is loaded from the on-disk cache. For each thread count the
compiled model and an onnxruntime session (`onnxrt.session`: ORT_ENABLE_ALL, spinning off) run the
same input; their outputs must agree within `TOLERANCE` of the output's magnitude, else the model
is reported as a mismatch without times. Then, after a warm-up, `repeat` rounds of samples are
taken, each round one sample of every (thread count, engine) pair in turn (convir 1T, ORT 1T,
convir 2T, ORT 2T, ...), so a slow phase of the machine hits all of them alike; each sample is the
mean over enough runs to last ≥ 2 ms; times are medians. Both times are of a whole inference called
from Python with NCHW input and output: `CompiledModel.run` and `InferenceSession.run`.

With a tuning database (`tuning_db`), each thread count also compiles the model with that
database's records for that thread count (`convir.compile(tuning_db=...)`) and times it in the
same rounds (convir heuristic, convir tuned, ORT, ...), checked against onnxruntime like the
heuristic one: `tuned_s`, and `tuned_convs`, how many convs a record served.

With `busy_cpu`, a process spinning on that CPU (`convir.bench.busy`) runs while the models
are checked and timed: the load test of issue 14 (a parallel region must not wait for a thread
that the busy CPU keeps descheduled).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from convir.bench import BenchError
from convir.bench.busy import BusyCore
from convir.bench.onnxrt import require_onnxruntime, session
from convir.bench.timing import (
    TOLERANCE,
    Comparison,
    calibrate,
    interleaved,
    mean_call_seconds,
    median,
    relative_error,
)

IMAGE_SIZE = 224


@dataclass(frozen=True)
class ModelResult(Comparison):
    """One model at one thread count (seconds per inference) and its compile time."""

    model: str
    threads: int
    compile_s: float
    tuned_s: float | None = None
    tuned_error: float | None = None
    tuned_convs: int | None = None

    @property
    def tuned_speedup(self) -> float | None:
        """Heuristic time / tuned time (> 1: tuning helped)."""
        if self.tuned_s is None or self.convir_s is None:
            return None
        return self.convir_s / self.tuned_s

    def to_json(self) -> dict[str, object]:
        tuned = {}
        if self.tuned_error is not None:
            tuned = {
                "tuned_ms": None if self.tuned_s is None else self.tuned_s * 1e3,
                "tuned_max_rel_error": self.tuned_error,
                "tuned_convs": self.tuned_convs,
                "heuristic_over_tuned": self.tuned_speedup,
            }
        return {
            "model": self.model,
            "threads": self.threads,
            "compile_s": self.compile_s,
            **self.times_json(),
            **tuned,
        }


@dataclass(frozen=True)
class ModelsReport:
    """All model results, and the CPU a spinning process kept busy (None: none did)."""

    repeat: int
    size: int
    results: list[ModelResult]
    busy_cpu: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "benchmark": "models",
            "repeat": self.repeat,
            "input": [1, 3, self.size, self.size],
            "convir_time": "CompiledModel.run, NCHW in and out",
            "ort_time": "InferenceSession.run (ORT_ENABLE_ALL, allow_spinning=0)",
            "busy_cpu": self.busy_cpu,
            "tolerance": TOLERANCE,
            "models": [r.to_json() for r in self.results],
            "mismatches": [f"{r.model} ({r.threads}T)" for r in self.results if not r.correct],
        }


def bench_model(
    name: str,
    thread_counts: Sequence[int],
    repeat: int,
    *,
    size: int = IMAGE_SIZE,
    seed: int = 0,
    tuning_db: str | None = None,
    fusion: str = "none",
) -> list[ModelResult]:
    """Compile `name` once (and once per thread count with `tuning_db`), with layer fusion mode
    `fusion`; check it against onnxruntime at each thread count, then time every (thread
    count, engine) pair interleaved (module doc)."""
    import convir

    model = _model(name, size, seed)
    start = time.perf_counter()
    compiled = convir.compile(name if is_model_file(name) else model, fusion=fusion)
    compile_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    feed = {spec.name: rng.standard_normal(spec.shape, np.float32) for spec in compiled.inputs}

    errors: dict[int, float] = {}
    tuned: dict[int, tuple] = {}
    samplers: list[Callable[[], float | None]] = []
    for threads in thread_counts:
        ort = session(model, threads)
        expected = ort.run(compiled.output_names, feed)
        compiled.threads = threads
        errors[threads] = _error(compiled.run(feed), compiled.output_names, expected)
        if tuning_db is not None:
            tuned[threads] = _tuned(model, tuning_db, threads, feed, expected)
        if errors[threads] <= TOLERANCE:
            ours_sampler, ort_sampler = _samplers(compiled, ort, feed, threads)
            samplers.append(ours_sampler)
            if _tuned_ok(tuned, threads):  # right after the heuristic: same conditions
                samplers.append(_sampler(tuned[threads][0], feed, threads))
            samplers.append(ort_sampler)
    samples = interleaved(samplers, repeat)
    results = []
    for threads in thread_counts:
        if errors[threads] > TOLERANCE:
            results.append(
                ModelResult(model_label(name), threads, compile_s, max_rel_error=errors[threads])
            )
            continue
        convir_samples = samples.pop(0)
        extra: dict = {}
        if threads in tuned:
            _, tuned_error, tuned_convs = tuned[threads]
            extra = {"tuned_error": tuned_error, "tuned_convs": tuned_convs}
            if _tuned_ok(tuned, threads):
                extra["tuned_s"] = median(samples.pop(0))
        timed = Comparison.timed(errors[threads], convir_samples, samples.pop(0))
        results.append(ModelResult(model_label(name), threads, compile_s, **timed, **extra))
    return results


def _tuned_ok(tuned: dict[int, tuple], threads: int) -> bool:
    return threads in tuned and tuned[threads][1] <= TOLERANCE


def _error(ours: dict[str, np.ndarray], names: list[str], expected: list[np.ndarray]) -> float:
    """The largest relative error of the outputs `names` of `ours` against `expected`."""
    return max(relative_error(ours[name], want) for name, want in zip(names, expected, strict=True))


def _tuned(model, tuning_db: str, threads: int, feed: dict, expected: list[np.ndarray]) -> tuple:
    """(the model compiled with the records for `threads`, its error against onnxruntime, how
    many convs a record served)."""
    import convir
    from convir.target import Target
    from convir.tuning.records import open_records

    records = open_records(tuning_db, Target.host(), threads)
    compiled = convir.compile(model, threads=threads, tuning_db=records)
    error = _error(compiled.run(feed), compiled.output_names, expected)
    return compiled, error, len(records.used)


def _sampler(compiled, feed: dict, threads: int) -> Callable[[], float]:
    """A warmed-up, calibrated sampler of `compiled` at `threads` threads."""

    def once() -> None:
        compiled.threads = threads
        compiled.run(feed)

    iterations = calibrate(once)
    return lambda: mean_call_seconds(once, iterations)


def is_model_file(name: str) -> bool:
    """Whether a `--models` entry names an ONNX file rather than a built-in model."""
    return name.endswith(".onnx")


def model_label(name: str) -> str:
    """How a model is named in tables: a file by its stem, a built-in model by its name."""
    return Path(name).stem if is_model_file(name) else name


def _model(name: str, size: int, seed: int) -> onnx.ModelProto:
    if not is_model_file(name):
        from convir.models import build

        return build(name, seed=seed, size=size)
    try:
        return onnx.load(name)
    except (OSError, ValueError, onnx.onnx_cpp2py_export.checker.ValidationError) as error:
        raise BenchError(f"{name}: cannot read an ONNX model: {error}") from None


def _samplers(compiled, ort, feed: dict, threads: int) -> list[Callable[[], float]]:
    """convir's and onnxruntime's sampler at `threads` threads, both warmed up and calibrated."""

    def ours_once() -> None:
        compiled.threads = threads
        compiled.run(feed)

    def theirs_once() -> None:
        ort.run(None, feed)

    iterations = calibrate(ours_once)
    calibrate(theirs_once)  # its warm-up
    return [
        lambda: mean_call_seconds(ours_once, iterations),
        lambda: mean_call_seconds(theirs_once, iterations),
    ]


def run_models(
    names: Sequence[str],
    *,
    thread_counts: Sequence[int],
    repeat: int,
    size: int = IMAGE_SIZE,
    busy_cpu: int | None = None,
    on_result: Callable[[ModelResult], None] = lambda result: None,
    tuning_db: str | None = None,
    fusion: str = "none",
) -> ModelsReport:
    """Benchmark every model of `names` at every thread count (calling `on_result` after each),
    with CPU `busy_cpu` kept busy by another process if given, and tuned by `tuning_db` too
    if given."""
    from convir.models import MODELS

    unknown = [name for name in names if name not in MODELS and not is_model_file(name)]
    if unknown:
        raise BenchError(
            f"unknown model(s) {', '.join(unknown)}; expected built-in models "
            f"({', '.join(MODELS)}) or paths of .onnx files"
        )
    missing = [name for name in names if is_model_file(name) and not Path(name).is_file()]
    if missing:
        raise BenchError(f"no such model file: {', '.join(missing)}")
    if repeat < 1 or not thread_counts or min(thread_counts) < 1:
        raise BenchError("--repeat and every --threads count must be >= 1")
    require_onnxruntime()
    results = []
    with BusyCore(busy_cpu) if busy_cpu is not None else nullcontext():
        for name in names:
            timed = bench_model(
                name, thread_counts, repeat, size=size, tuning_db=tuning_db, fusion=fusion
            )
            for result in timed:
                results.append(result)
                on_result(result)
    return ModelsReport(repeat, size, results, busy_cpu)
