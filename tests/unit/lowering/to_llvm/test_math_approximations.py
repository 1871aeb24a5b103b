"""The call-free vector exp, log and erf of `lowering.to_llvm.math_approximations`, compiled and run
against numpy in float64 over the whole f32 range: ±0, ±Inf, NaN, subnormal results, overflow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.lowering.to_llvm.jit_helpers import compile_kernels, pointer

LENGTH = 8192

KERNEL = """
func.func @apply(%x: memref<{n}xf32>, %out: memref<{n}xf32>) {{
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  %n = arith.constant {n} : index
  scf.for %i = %c0 to %n step %c16 {{
    %v = vector.load %x[%i] : memref<{n}xf32>, vector<16xf32>
    %t = math.{op} %v : vector<16xf32>
    vector.store %t, %out[%i] : memref<{n}xf32>, vector<16xf32>
  }}
  func.return
}}
"""

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-30, -1e-30, 1e-45]


def run(op: str, x: np.ndarray) -> np.ndarray:
    kernels = compile_kernels(KERNEL.format(n=x.size, op=op))
    assert f"@{op}f" not in kernels.ir and f"@llvm.{op}." not in kernels.ir  # no per-lane calls
    function = kernels.function("apply", "void", "ptr", "ptr")
    out = np.full_like(x, 7.0)
    function(pointer(x), pointer(out))
    return out


def inputs(largest: float) -> np.ndarray:
    """Both signs of magnitudes 1e-9 ... `largest`, the special values, padded to LENGTH."""
    count = (LENGTH - len(SPECIAL)) // 2
    magnitudes = np.geomspace(1e-9, largest, count)
    x = np.concatenate([magnitudes, -magnitudes, SPECIAL]).astype(np.float32)
    return np.pad(x, (0, LENGTH - x.size), constant_values=1.0)


def ulp_error(out: np.ndarray, expected: np.ndarray) -> np.ndarray:
    spacing = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    return np.abs(out.astype(np.float64) - expected) / spacing


def test_vector_exp_matches_numpy_over_the_float_range() -> None:
    x = inputs(1000.0)
    out = run("exp", x)
    with np.errstate(over="ignore"):
        expected = np.exp(x.astype(np.float64))
    normal = (expected >= np.finfo(np.float32).tiny) & (expected <= np.finfo(np.float32).max)
    assert ulp_error(out[normal], expected[normal]).max() <= 2
    subnormal = (expected < np.finfo(np.float32).tiny) & ~np.isnan(expected)
    np.testing.assert_allclose(out[subnormal], expected[subnormal], rtol=0, atol=2e-45)
    overflow = expected > np.finfo(np.float32).max
    assert overflow.any() and np.isposinf(out[overflow]).all()
    assert np.isnan(out[np.isnan(x)]).all()
    assert out[x == -np.inf].tolist() == [0.0] and out[x == np.inf].tolist() == [np.inf]


def test_vector_log_matches_numpy_over_the_float_range() -> None:
    x = inputs(3e38)
    x[-12:] = [1e-40, 1.4e-45, 1.0, 2.0, 0.5, 0.7071, 0.7072, 1.4142, 1.4143, 3e38, 1e-38, 1.2e-38]
    out = run("log", x)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log(x.astype(np.float64))
    finite = np.isfinite(expected) & (expected != 0)
    assert ulp_error(out[finite], expected[finite]).max() <= 2
    assert (out[x == 1.0] == 0.0).all()
    assert np.isneginf(out[x == 0]).all() and np.isposinf(out[x == np.inf]).all()
    assert np.isnan(out[(x < 0) | np.isnan(x)]).all()


def test_vector_erf_matches_numpy_over_the_float_range() -> None:
    x = inputs(1e6)
    out = run("erf", x)
    expected = np.array([math.erf(v) if not np.isnan(v) else np.nan for v in x.astype(float)])
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=0, atol=3e-7)
    assert ulp_error(out[finite], expected[finite]).max() <= 6
    assert np.isnan(out[~finite]).all()
    np.testing.assert_array_equal(np.signbit(out[x == 0]), np.signbit(x[x == 0]))


@pytest.mark.parametrize("op", ["exp", "erf"])
def test_vector_exp_of_zero_is_one_and_erf_of_zero_is_zero(op: str) -> None:
    x = np.zeros(LENGTH, dtype=np.float32)
    out = run(op, x)
    assert (out == (1.0 if op == "exp" else 0.0)).all()
