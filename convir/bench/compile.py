"""`convir bench compile`: where `convir.compile` spends its time, per built-in model.

Each model is measured in a fresh Python process (`python -m convir.bench.compile MODEL`), as a
user meets it: the model is built and saved as an .onnx file (not timed), then compiled from
that file into an empty cache directory ("cold": everything from import to the loaded shared
object, the code generators' processes included), again ("warm": the unchanged file loads from
the cache), and once more with other weights of the same shapes ("known kernels": the model
cache misses, every kernel comes from the kernel cache, as for an auto-tuner revisiting a
candidate or a model made of known layers). Each compile's
wall time is split by stage (`lowering.stage_times`): import, graph passes, each algorithm's and
op's kernel emission, lowering to the llvm dialect, translation to LLVM IR, LLVM O3 + codegen,
link, load, and the rest; the cold compile's CPU seconds per stage too (code-generator
processes run beside the compiling one: their stages are prefixed "worker").

With `profile`, one more cold compile (into another empty directory) runs under cProfile timed
in CPU seconds: its total function calls and the functions with the most own time; calls do
not depend on what else the machine runs, CPU seconds far less than wall seconds.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from convir.bench import BenchError


@dataclass(frozen=True)
class ProfiledFunction:
    """One function of a profiled compile: calls, own seconds, seconds including callees."""

    name: str
    calls: int
    own_s: float
    cumulative_s: float


#: The compiles of one model, in order: into an empty cache; the same weights and options again
#: (a model-cache hit); other weights of the same shapes (every kernel in the kernel cache).
RUNS = ("cold", "warm", "known kernels")


@dataclass(frozen=True)
class CompileRun:
    """One compile: wall and CPU seconds (this process), and both per stage."""

    wall_s: float
    cpu_s: float
    stages: dict[str, float]
    cpu_stages: dict[str, float]


@dataclass(frozen=True)
class CompileResult:
    """One model: its runs (`RUNS`; medians over the repeats) and, if asked, the profile of a
    cold compile."""

    model: str
    runs: dict[str, CompileRun]
    profile_calls: int | None = None
    profile: tuple[ProfiledFunction, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "runs": {name: vars(run) for name, run in self.runs.items()},
            "profile_calls": self.profile_calls,
            "profile": [vars(function) for function in self.profile],
        }

    @staticmethod
    def from_json(data: dict) -> CompileResult:
        runs = {name: CompileRun(**run) for name, run in data["runs"].items()}
        profile = tuple(ProfiledFunction(**function) for function in data["profile"])
        return CompileResult(data["model"], runs, data["profile_calls"], profile)


def run_compile(
    models: Sequence[str],
    *,
    repeat: int = 1,
    profile: int = 0,
    on_result: Callable[[CompileResult], None] | None = None,
) -> list[CompileResult]:
    """Measure each model in its own process (module docstring); `profile`: how many functions
    of the cold compile's profile to keep (0: no profiled compile)."""
    results = []
    for model in models:
        runs = [_measure_in_process(model, profile if i == 0 else 0) for i in range(repeat)]
        result = _median(runs)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _measure_in_process(model: str, profile: int) -> CompileResult:
    env = dict(os.environ)
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "convir.bench.compile", model, str(profile)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        detail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise BenchError(f"compiling {model} failed: {detail}")
    return CompileResult.from_json(json.loads(done.stdout.strip().splitlines()[-1]))


def _median(results: list[CompileResult]) -> CompileResult:
    def median_run(name: str) -> CompileRun:
        runs = [result.runs[name] for result in results]

        def per_stage(kind: str) -> dict[str, float]:
            names = dict.fromkeys(stage for run in runs for stage in getattr(run, kind))
            return {
                stage: statistics.median(getattr(run, kind).get(stage, 0.0) for run in runs)
                for stage in names
            }

        return CompileRun(
            statistics.median(run.wall_s for run in runs),
            statistics.median(run.cpu_s for run in runs),
            per_stage("stages"),
            per_stage("cpu_stages"),
        )

    first = results[0]
    runs = {name: median_run(name) for name in first.runs}
    return CompileResult(first.model, runs, first.profile_calls, first.profile)


def measure(model_name: str, profile: int = 0) -> CompileResult:
    """The compiles of `RUNS` of built-in `model_name` in this process, each from an .onnx file
    as a user would give it (module docstring)."""
    import onnx

    import convir
    from convir.models import build
    from lowering.stage_times import recording

    runs = {}
    with tempfile.TemporaryDirectory(prefix="convir-bench-compile-") as scratch:
        cache_dir = Path(scratch, "cache")
        for name, seed in zip(RUNS, (0, 0, 1), strict=True):
            path = Path(scratch, f"{model_name}-{seed}.onnx")
            if not path.exists():
                onnx.save(build(model_name, seed=seed), path)
            with recording() as times:
                started, cpu_started = time.perf_counter(), time.process_time()
                convir.compile(path, cache_dir=cache_dir)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            stages = dict(times.seconds)
            # Workers run beside this process: their times are part of other stages' wall time.
            here = [seconds for stage, seconds in stages.items() if not stage.startswith("worker")]
            stages["other"] = wall - sum(here)
            runs[name] = CompileRun(wall, cpu, stages, dict(times.cpu_seconds))
        calls, functions = None, ()
        if profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.runcall(convir.compile, path, cache_dir=Path(scratch, "profiled"))
            calls, functions = _top_functions(profiler, profile)
    return CompileResult(model_name, runs, calls, functions)


def _top_functions(
    profiler: cProfile.Profile, count: int
) -> tuple[int, tuple[ProfiledFunction, ...]]:
    stats = pstats.Stats(profiler)
    rows = []
    for (path, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        where = f"{_short(path)}:{line}({function})" if line else function
        rows.append(ProfiledFunction(where, calls, own, cumulative))
    rows.sort(key=lambda row: row.own_s, reverse=True)
    return stats.total_calls, tuple(rows[:count])


def _short(path: str) -> str:
    for marker in ("site-packages/", "/convir/", "/lowering/", "/passes/"):
        if marker in path:
            head = "" if marker == "site-packages/" else marker.strip("/") + "/"
            return head + path.split(marker, 1)[1]
    return path


def print_result(result: CompileResult, out: TextIO) -> None:
    """One model's table: seconds per stage of each run, and the cold run's CPU seconds; then
    the profile if any."""
    runs = result.runs
    summary = ", ".join(
        f"{name} {run.wall_s:.2f} s (CPU {run.cpu_s:.2f} s)" for name, run in runs.items()
    )
    print(f"\n{result.model}: {summary}", file=out)
    names = list(runs)
    header = "".join(f" {name[:9] + ' s':>11}" for name in names)
    print(f"  {'stage':<30} {'cold CPU s':>11}{header}", file=out)
    stages = dict.fromkeys(stage for run in runs.values() for stage in run.stages)
    for stage in stages:
        cpu = runs["cold"].cpu_stages.get(stage)
        cells = "".join(f" {runs[name].stages.get(stage, 0.0):11.3f}" for name in names)
        cpu_text = "" if cpu is None else f"{cpu:.3f}"
        print(f"  {stage:<30} {cpu_text:>11}{cells}", file=out)
    if result.profile:
        print(
            f"  cold compile under cProfile (CPU time): {result.profile_calls} function calls",
            file=out,
        )
        print(f"  {'calls':>9} {'own s':>7} {'cum s':>7}  function", file=out)
        for function in result.profile:
            print(
                f"  {function.calls:9d} {function.own_s:7.2f} {function.cumulative_s:7.2f}  "
                f"{function.name}",
                file=out,
            )


if __name__ == "__main__":
    name, top = sys.argv[1], int(sys.argv[2])
    print(json.dumps(measure(name, top).to_json()))
