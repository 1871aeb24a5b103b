"""The fp32 error Winograd F(m×m, 3×3) is expected to add, per m, and the tolerance that bounds it.

Measured by `examples/benchmarks/winograd_accuracy.py` (He-normal weights, N(0, 1) inputs, small
bias; max |y - y64| / max |y64| against a float64 GEMM) over the seventeen distinct 3×3 stride-1
convs of ResNet-18, ResNet-50 and VGG-16 (depth C·9 from 27 to 4608):

    depth C·9        27      576     1152     2304     4608   | max over the layers
    fp32 GEMM     2.5e-7   6.0e-7   5.2e-7   4.3e-7   4.2e-7  |  6.0e-7
    F(2,3)        2.4e-7   4.0e-7   5.5e-7   7.1e-7   6.0e-7  |  7.1e-7
    F(4,3)        2.5e-6   3.2e-6   4.0e-6   5.5e-6   4.6e-6  |  5.5e-6
    F(6,3)        8.6e-6   1.2e-5   1.6e-5   2.2e-5   2.0e-5  |  2.2e-5

(each column the largest of the layers of that depth; F(2,3) is 1.2×, F(4,3) 9.1× and F(6,3)
36× the fp32 GEMM's maximum). The error hardly grows with depth: the
He-normal output keeps its magnitude as C grows, and the rounding of the transforms, not the
length of the channel sums, dominates. So a conv's expected error is m's maximum over the table,
`MEASURED_ERROR[m]`, for depths up to the deepest measured, and beyond it grows like a random
walk of the extra terms: times sqrt(C·9 / MEASURED_DEPTH) (`expected_error`).

`conv-select-algorithm` and `conv-tile` never take an m whose expected error exceeds the
tolerance (`winograd-tolerance`, default `DEFAULT_TOLERANCE`): with 1e-4 every m is allowed,
with 1e-5 F(2,3) and F(4,3), with 1e-6 only F(2,3), below 7.1e-7 none (no conv is selected for
winograd). An m pinned by hand or by a tuner is kept whatever its error.
"""

from __future__ import annotations

import math

#: max |y - y64| / max |y64| per m over the measured layers (module doc).
MEASURED_ERROR = {2: 7.1e-7, 4: 5.5e-6, 6: 2.2e-5}

#: The deepest measured conv's C·9 (512 channels).
MEASURED_DEPTH = 512 * 9

#: The default of `winograd-tolerance`.
DEFAULT_TOLERANCE = 1e-4


def expected_error(m: int, depth: int) -> float:
    """The relative error F(m×m, 3×3) is expected to reach on a conv of depth C·9 (module doc)."""
    return MEASURED_ERROR[m] * max(1.0, math.sqrt(depth / MEASURED_DEPTH))


def accurate_ms(depth: int, tolerance: float) -> tuple[int, ...]:
    """The m whose expected error on a conv of depth C·9 is within `tolerance`, ascending."""
    return tuple(m for m in sorted(MEASURED_ERROR) if expected_error(m, depth) <= tolerance)


def parse_tolerance(value: str | float) -> float:
    """`winograd-tolerance` as a float: a finite number >= 0 (0 allows no m). ValueError saying
    what is accepted otherwise."""
    try:
        tolerance = float(value)
    except (TypeError, ValueError):
        tolerance = math.nan
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(
            f"expected a finite number >= 0 (a relative error, e.g. 1e-4; 0 selects winograd "
            f"nowhere), got '{value}'"
        )
    return tolerance
