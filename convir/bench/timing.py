"""How every benchmark times code: warm-up, calibrated samples, interleaving, medians.

A *sample* is the mean time per call over `iterations` back-to-back calls; `iterations` is
calibrated so that one sample lasts long enough for `time.perf_counter` and the loop around it
to be negligible. Two contenders are sampled alternately (A, B, A, B, ...) so that a slow phase of
the machine (another process, frequency changes) hits both alike, and each is summarised by the
median of its samples, which ignores the few samples such a phase spoils.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

#: A sample should last at least this long (a few thousand times perf_counter's overhead).
MIN_SAMPLE_S = 2e-3


def mean_call_seconds(call: Callable[[], object], iterations: int) -> float:
    """Seconds per call of `call` over `iterations` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(iterations):
        call()
    return (time.perf_counter() - start) / iterations


def calibrate(
    call: Callable[[], object],
    *,
    min_sample_s: float = MIN_SAMPLE_S,
    max_iterations: int = 1000,
) -> int:
    """Iterations per sample so that a sample of `call` lasts about `min_sample_s`.

    Calls `call` at least twice (the first call warms caches and pages in code and data).
    """
    call()
    once_s = mean_call_seconds(call, 1)
    if once_s >= min_sample_s:
        return 1
    iterations = min(max_iterations, math.ceil(min_sample_s / max(once_s, 1e-9)))
    # One more calibrated look: a single call is dominated by timer and first-touch noise.
    once_s = mean_call_seconds(call, iterations)
    return max(1, min(max_iterations, math.ceil(min_sample_s / max(once_s, 1e-9))))


def interleaved(samplers: Sequence[Callable[[], float | None]], repeat: int) -> list[list[float]]:
    """Call the samplers in turn `repeat` times; the samples each returned, per sampler.

    A sampler may return None when its time is only known later (onnxruntime's profiler); its
    list then stays empty and the caller fills it in.
    """
    samples: list[list[float]] = [[] for _ in samplers]
    for _ in range(repeat):
        for sampler, taken in zip(samplers, samples, strict=True):
            value = sampler()
            if value is not None:
                taken.append(value)
    return samples


def median(values: Sequence[float]) -> float:
    """The median of `values` (not empty)."""
    return float(statistics.median(values))
