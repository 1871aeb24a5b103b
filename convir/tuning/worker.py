"""The measuring process: `python -m convir.tuning.worker`, one per workload (`measure`).

It reads one JSON request on stdin (the workload, its candidates, threads, the target, the best
time known so far, repeats) and writes one JSON event per line on stdout as it goes, so that the
parent always knows which candidate it is busy with and can kill it after a timeout:

1. **Compile** every candidate first. Each is the workload's lone conv (`convir.bench.
   conv_harness.conv_module`) pinned to the candidate's algorithm and schedule, lowered by
   `convir.compiler`; its kernels go to code-generator worker processes (`lowering.
   kernel_cache.KernelCompiler`) while Python lowers the next candidates, at most `IN_FLIGHT`
   candidates at once; objects compiled before (by any tuner or model) come from the cache.
   Events: `compiling` before a candidate, `compiled` (with its workspace bytes) or `failed`.
2. **Check and time** them one at a time: the output against the float64 reference (`convir.
   reference`), rejected beyond the algorithm's `tolerance(schedule)`; then a warm-up that
   calibrates the calls per sample (`convir.bench.timing.calibrate`, samples of >= 2 ms) and up to
   `repeats` samples timed by a native loop (`NativeConv.seconds_per_call`): at one thread by
   the thread's CPU time (`time.thread_time`; the conv runs on the calling thread, and on a
   shared machine other processes stretch wall time by their load, not CPU time), at more
   threads by wall time (CPU time would hide threads that wait); once
   `EARLY_STOP_SAMPLES` samples are taken, a candidate whose fastest sample is over
   `EARLY_STOP_FACTOR` × the best median so far is stopped (`slower`). Events: `timing` before,
   `result` after.
3. Or, when the request asks to `confirm` (two candidates: the heuristic's choice and the
   fastest other), **time the two alternately**, `confirm` rounds of one sample each, and report
   the median of the per-round ratios (heuristic / challenger) as `confirmed` `speedup`: both
   see the same machine state in every round, so a drift of the load between their separate
   timings in step 2 cannot make a winner. Both outputs are checked first, as in step 2.

Test hook: the request's `faults` maps candidate indices to "crash" (abort when timed), "hang"
(sleep when timed) or "wrong" (perturb the output before the check). Only
`convir.tuning.measure.measure_workload(faults=...)` sets it, which the command line never does.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

#: Candidates whose code generation may run at once (each in its own code-generator process).
IN_FLIGHT = 2
#: Samples taken before a candidate may be stopped early.
EARLY_STOP_SAMPLES = 3
#: A candidate whose fastest sample is this many times the best median is stopped early.
EARLY_STOP_FACTOR = 1.5


#: The events' stream: the original stdout; everything else printed goes to stderr.
_events = sys.stdout


def _emit(event: str, **fields: Any) -> None:
    _events.write(json.dumps({"event": event, **fields}) + "\n")
    _events.flush()


def serve(request: dict) -> None:
    """Compile, check and time the request's candidates (module doc)."""
    from convir.bench.conv_harness import layer_data
    from convir.target import Target
    from convir.tuning.workloads import Workload

    workload = Workload.from_json(request["workload"])
    target = Target(**request["target"])
    layer = workload.layer("tune")
    x, weight, bias = layer_data(layer)
    compiled = _compile_all(request["candidates"], layer, x, weight, bias, target, request)
    expected = _reference(layer, x, weight, bias)
    if request.get("confirm"):
        _emit("confirmed", speedup=_confirm(compiled, expected, request))
        _emit("done")
        return
    best_s = request.get("best_s")
    faults = {int(index): kind for index, kind in request.get("faults", {}).items()}
    for index, native in compiled.items():
        _emit("timing", index=index)
        fault = faults.get(index)
        if fault == "crash":
            os.abort()
        if fault == "hang":
            time.sleep(3600)
        result = _check_and_time(native, expected, request, index, best_s, perturb=fault == "wrong")
        if result["status"] == "ok" and (best_s is None or result["median_s"] < best_s):
            best_s = result["median_s"]
        _emit("result", index=index, **result)
    _emit("done")


def _compile_all(candidates, layer, x, weight, bias, target, request) -> dict:
    """index -> NativeConv for every candidate that compiled (module doc, step 1)."""
    from convir.bench.conv_harness import CONV_NAME, NativeConv, conv_module
    from convir.compiler import code_fingerprint, lower, lower_to_llvm_ir, model_cache_key
    from convir.dialects import conv, make_context
    from lowering.algorithms import conv_emitter
    from lowering.conv_to_loops import ENTRY_POINT
    from lowering.jit import cached_library, load_code
    from lowering.kernel_cache import KernelCompiler

    threads = request["threads"]
    block = target.vector_width
    in_flight: list[tuple[int, Any, KernelCompiler, str]] = []
    compiled = {}
    workspaces: dict[int, int] = {}

    def ready(index: int, lowered, library) -> None:
        compiled[index] = NativeConv.from_library(
            layer, x, lowered, library, threads=threads, target=target
        )
        _emit("compiled", index=index, workspace_bytes=workspaces[index])

    def finish(index: int, lowered, kernels: KernelCompiler, key: str) -> None:
        try:
            library = load_code(kernels.link(), target, key)
        except Exception as error:
            _emit("failed", index=index, stage="compile", message=_message(error))
            return
        ready(index, lowered, library)

    for index, candidate in enumerate(candidates):
        _emit("compiling", index=index)
        kernels = None
        try:
            ctx = make_context()
            planned = lower(
                conv_module(ctx, layer, weight, bias, block),
                target=target,
                stop="planned",
                ctx=ctx,
                block=block,
                algorithms={CONV_NAME: candidate["algorithm"]},
                tiles={CONV_NAME: candidate["schedule"]},
            )
            op = next(op for op in planned.module.walk() if isinstance(op, conv.Conv2DOp))
            workspaces[index] = conv_emitter(op).workspace_bytes(op)
            key = model_cache_key(planned)
            library = cached_library(key, target)
            if library is not None:
                ready(index, lower_to_llvm_ir(planned, emit_kernels=False), library)
                continue
            kernels = KernelCompiler(target, [ENTRY_POINT], code_fingerprint(), workers=1)
            lowered = lower_to_llvm_ir(planned, kernels=kernels)
        except Exception as error:
            if kernels is not None:
                kernels.close()
            _emit("failed", index=index, stage="compile", message=_message(error))
            continue
        in_flight.append((index, lowered, kernels, key))
        if len(in_flight) >= IN_FLIGHT:
            finish(*in_flight.pop(0))
    for pending in in_flight:
        finish(*pending)
    return dict(sorted(compiled.items()))


def _reference(layer, x, weight, bias) -> np.ndarray:
    from convir.bench.conv_harness import reference_output

    x64, w64 = x.astype(np.float64), weight.astype(np.float64)
    b64 = None if bias is None else bias.astype(np.float64)
    return reference_output(layer, x64, w64, b64)


def _clock(request: dict):
    """Thread CPU time at one thread, wall time at more (module doc, step 2)."""
    return time.thread_time if request["threads"] == 1 else time.perf_counter


def _check(native, expected, spec: dict, *, perturb: bool) -> dict[str, Any]:
    """The candidate's error and tolerance; with `status` "rejected" beyond it."""
    from convir.tuning.space import Candidate, tolerance

    allowed = tolerance(Candidate(spec["algorithm"], tuple(spec["schedule"].items())))
    y = native.output().astype(np.float64)
    if perturb:
        y = y + 1e-2 * np.max(np.abs(expected))
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    with np.errstate(invalid="ignore"):
        error = float(np.max(np.abs(y - expected))) / scale
    fields: dict[str, Any] = {"max_rel_error": error, "tolerance": allowed}
    if not error <= allowed:  # NaN is beyond every tolerance
        return {"status": "rejected", "message": f"error {error:.3g} > {allowed:.3g}", **fields}
    return fields


def _check_and_time(native, expected, request, index, best_s, *, perturb: bool) -> dict:
    """The candidate's error, then its samples (module doc, step 2)."""
    from convir.bench.timing import calibrate

    fields = _check(native, expected, request["candidates"][index], perturb=perturb)
    if fields.get("status") == "rejected":
        return fields
    iterations = calibrate(native.run)
    samples: list[float] = []
    status = "ok"
    clock = _clock(request)
    for _ in range(request["repeats"]):
        samples.append(native.seconds_per_call(iterations, clock))
        early = len(samples) >= EARLY_STOP_SAMPLES and best_s is not None
        if early and min(samples) > EARLY_STOP_FACTOR * best_s:
            status = "slower"
            break
    median_s = statistics.median(samples)
    spread = (max(samples) - min(samples)) / median_s if median_s > 0 else 0.0
    return {
        "status": status,
        "median_s": median_s,
        "spread": spread,
        "samples": len(samples),
        **fields,
    }


def _confirm(compiled: dict, expected: np.ndarray, request: dict) -> float | None:
    """Heuristic time / challenger time, median over alternating rounds (module doc, step 3);
    None when either did not compile or fails its check."""
    from convir.bench.timing import calibrate

    if sorted(compiled) != [0, 1]:
        return None
    heuristic, challenger = compiled[0], compiled[1]
    for index, native in compiled.items():
        if _check(native, expected, request["candidates"][index], perturb=False).get("status"):
            return None  # rejected
    clock = _clock(request)
    calls = (calibrate(heuristic.run), calibrate(challenger.run))
    ratios = []
    for _ in range(request["confirm"]):
        ratios.append(
            heuristic.seconds_per_call(calls[0], clock)
            / challenger.seconds_per_call(calls[1], clock)
        )
    return statistics.median(ratios)


def _message(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]


def main() -> None:
    global _events
    # Events own the real stdout; anything else (a library's print, native code writing to
    # file descriptor 1) goes to stderr, which the parent keeps for failure messages.
    _events = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(json.loads(sys.stdin.read()))


if __name__ == "__main__":
    main()
