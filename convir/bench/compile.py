"""`convir bench compile`: where `convir.compile` spends its time, per built-in model.

Each model is measured in a fresh Python process (`python -m convir.bench.compile MODEL`), as a
user meets it: the model is built (not timed), then compiled into an empty cache directory
("cold": everything from import to the loaded shared object, the code generator's process
included) and compiled again from that directory ("warm": a model-cache hit). Each compile's
wall time is split by stage (`lowering.stage_times`): import, graph passes, each algorithm's and
op's kernel emission, lowering to the llvm dialect, translation to LLVM IR, LLVM O3 + codegen,
link, load, and the rest; the cold compile's CPU seconds per stage too (code-generator
processes run beside the compiling one: their stages are prefixed "worker").

With `profile`, one more cold compile (into another empty directory) runs under cProfile: its
total function calls and the functions with the most own time; calls do not depend on what
else the machine runs.
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


@dataclass(frozen=True)
class CompileResult:
    """One model: wall seconds and seconds per stage of its cold and warm compiles (medians over
    the repeats), and the profile of a cold compile if asked."""

    model: str
    cold_s: float
    warm_s: float
    cold_stages: dict[str, float]
    warm_stages: dict[str, float]
    cold_cpu_stages: dict[str, float]
    profile_calls: int | None = None
    profile: tuple[ProfiledFunction, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "cold_s": self.cold_s,
            "warm_s": self.warm_s,
            "cold_stages": self.cold_stages,
            "warm_stages": self.warm_stages,
            "cold_cpu_stages": self.cold_cpu_stages,
            "profile_calls": self.profile_calls,
            "profile": [vars(function) for function in self.profile],
        }

    @staticmethod
    def from_json(data: dict) -> CompileResult:
        profile = tuple(ProfiledFunction(**function) for function in data["profile"])
        return CompileResult(**{**data, "profile": profile})


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


def _median(runs: list[CompileResult]) -> CompileResult:
    def stages(kind: str) -> dict[str, float]:
        names = dict.fromkeys(name for run in runs for name in getattr(run, kind))
        return {n: statistics.median(getattr(r, kind).get(n, 0.0) for r in runs) for n in names}

    first = runs[0]
    return CompileResult(
        first.model,
        statistics.median(run.cold_s for run in runs),
        statistics.median(run.warm_s for run in runs),
        stages("cold_stages"),
        stages("warm_stages"),
        stages("cold_cpu_stages"),
        first.profile_calls,
        first.profile,
    )


def measure(model_name: str, profile: int = 0) -> CompileResult:
    """Cold and warm compile of built-in `model_name` in this process (module docstring)."""
    import convir
    from convir.models import build
    from lowering.stage_times import recording

    model = build(model_name)
    with tempfile.TemporaryDirectory(prefix="convir-bench-compile-") as cache_dir:
        timed = []
        for _ in ("cold", "warm"):
            with recording() as times:
                started = time.perf_counter()
                convir.compile(model, cache_dir=cache_dir)
                wall = time.perf_counter() - started
            stages = dict(times.seconds)
            # Workers run beside this process: their times are part of other stages' wall time.
            here = [seconds for name, seconds in stages.items() if not name.startswith("worker")]
            stages["other"] = wall - sum(here)
            timed.append((wall, stages, dict(times.cpu_seconds)))
    calls, functions = None, ()
    if profile:
        with tempfile.TemporaryDirectory(prefix="convir-bench-compile-") as cache_dir:
            profiler = cProfile.Profile()
            profiler.runcall(convir.compile, model, cache_dir=cache_dir)
        calls, functions = _top_functions(profiler, profile)
    (cold, cold_stages, cold_cpu), (warm, warm_stages, _) = timed
    return CompileResult(
        model_name, cold, warm, cold_stages, warm_stages, cold_cpu, calls, functions
    )


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
    """One model's table: seconds per stage, cold and warm, then the profile if any."""
    print(f"\n{result.model}: cold {result.cold_s:.2f} s, warm {result.warm_s:.2f} s", file=out)
    print(f"  {'stage':<34} {'cold s':>8} {'cold cpu':>8} {'warm s':>8}", file=out)
    for name in dict.fromkeys([*result.cold_stages, *result.warm_stages]):
        cold, warm = result.cold_stages.get(name, 0.0), result.warm_stages.get(name, 0.0)
        cpu = result.cold_cpu_stages.get(name)
        cpu_text = "" if cpu is None else f"{cpu:8.3f}"
        print(f"  {name:<34} {cold:8.3f} {cpu_text:>8} {warm:8.3f}", file=out)
    if result.profile:
        print(f"  cold compile under cProfile: {result.profile_calls} function calls", file=out)
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
