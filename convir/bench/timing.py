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
from dataclasses import dataclass

import numpy as np

#: A sample should last at least this long (a few thousand times perf_counter's overhead).
MIN_SAMPLE_S = 2e-3


def mean_call_seconds(
    call: Callable[[], object], iterations: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per call of `call` over `iterations` back-to-back calls, by `clock`."""
    start = clock()
    for _ in range(iterations):
        call()
    return (clock() - start) / iterations


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


#: Largest max |convir - ORT| accepted, relative to max |ORT output|.
TOLERANCE = 1e-4


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| relative to max |theirs|."""
    scale = max(float(np.max(np.abs(theirs))), 1e-30)
    return float(np.max(np.abs(ours - theirs))) / scale


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """convir against onnxruntime on one workload: the outputs' relative difference, the median
    seconds of each side, and the fastest sample (a diagnostic for noisy machines); times are None
    when the outputs disagreed. Keyword-only, so a result class can put its own fields first."""

    max_rel_error: float
    convir_s: float | None = None
    ort_s: float | None = None
    convir_best_s: float | None = None
    ort_best_s: float | None = None

    @staticmethod
    def timed(
        max_rel_error: float, convir_samples: Sequence[float], ort_samples: Sequence[float]
    ) -> dict[str, float]:
        """The fields of a comparison whose samples were taken (medians and minima)."""
        return {
            "max_rel_error": max_rel_error,
            "convir_s": median(convir_samples),
            "ort_s": median(ort_samples),
            "convir_best_s": min(convir_samples),
            "ort_best_s": min(ort_samples),
        }

    @property
    def correct(self) -> bool:
        return self.max_rel_error <= TOLERANCE

    @property
    def ratio(self) -> float | None:
        """ORT time / convir time (> 1: convir is faster)."""
        if self.convir_s is None or self.ort_s is None:
            return None
        return self.ort_s / self.convir_s

    def times_json(self) -> dict[str, object]:
        """The comparison's JSON fields, times in milliseconds."""
        return {
            "max_rel_error": self.max_rel_error,
            "correct": self.correct,
            "convir_ms": _ms(self.convir_s),
            "ort_ms": _ms(self.ort_s),
            "ort_over_convir": self.ratio,
            "convir_best_ms": _ms(self.convir_best_s),
            "ort_best_ms": _ms(self.ort_best_s),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3
