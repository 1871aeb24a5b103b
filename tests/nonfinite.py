"""NaN and ±Inf in test data, and the comparison of results that hold them.

A conv's padding is absent, not zero (`convir.reference.conv2d`): with an Inf or NaN weight, an
output whose window reaches into the padding is NaN only if a real input meets that weight.
So the positions of NaN, +Inf and -Inf are compared exactly, and only the finite values within
a tolerance.
"""

from __future__ import annotations

import numpy as np

SPECIAL_VALUES = (np.nan, np.inf, -np.inf)


def with_nonfinite(array: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A copy of `array` with `count` elements (drawn by `seed`) set to NaN, +Inf or -Inf."""
    rng = np.random.default_rng(seed)
    result = array.copy()
    flat = result.reshape(-1)
    positions = rng.choice(flat.size, size=min(count, flat.size), replace=False)
    flat[positions] = rng.choice(SPECIAL_VALUES, size=positions.size)
    return result


def assert_same_nonfinite(
    actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4, atol: float = 1e-4
) -> None:
    """NaN, +Inf and -Inf at exactly the same positions; finite values within rtol/atol."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        ours, theirs = test(actual), test(expected)
        differ = np.argwhere(ours != theirs)
        assert not differ.size, (
            f"{name} positions differ at {len(differ)} elements, first {differ[:5].tolist()}: "
            f"actual {actual[tuple(differ[0])]}, expected {expected[tuple(differ[0])]}"
        )
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=atol)
