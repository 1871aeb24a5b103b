"""Accuracy of convir's vector exp, log, erf, sigmoid and tanh over a dense sweep of f32:

    python examples/benchmarks/vector_math_accuracy.py [STRIDE]

Each function is compiled as convir compiles it in a kernel (a `vector<8xf32>` map lowered by
`lowering.to_llvm`, built by `lowering.jit` at O3 for the host), and run on every STRIDE-th f32
bit pattern (default 251: 17 million inputs, every exponent, both signs, NaNs, subnormals) plus
±0, ±inf, NaN, the smallest subnormals and the largest finite values. sigmoid is emitted as the
activation kernel does (1 / (1 + exp(-x))). The reference is numpy (scipy for erf) in float64.

The ulp error of an output is |out - ref| / ulp(ref), with ulp(ref) the spacing of f32 at
|ref| rounded to f32 (2^-149 for results in the subnormal range, so that column is the absolute
error in units of the smallest subnormal). Special values are checked against IEEE: exp(-inf) =
0, exp(+inf) = +inf, log(0) = -inf, log(x < 0) = NaN, erf(±inf) = ±1, sigmoid(±inf) = 1/0,
tanh(±inf) = ±1, NaN in, NaN out.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import scipy.special
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, memref, scf, vector
from xdsl.parser import Parser

from lowering.jit import compile_ir
from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir

WIDTH = 8
BODIES = {
    "exp": "%y = math.exp %v : vector<8xf32>",
    "log": "%y = math.log %v : vector<8xf32>",
    "erf": "%y = math.erf %v : vector<8xf32>",
    "tanh": "%y = math.tanh %v : vector<8xf32>",
    "sigmoid": """%one = arith.constant dense<1.0> : vector<8xf32>
    %minus = arith.negf %v : vector<8xf32>
    %e = math.exp %minus : vector<8xf32>
    %d = arith.addf %one, %e : vector<8xf32>
    %y = arith.divf %one, %d : vector<8xf32>""",
}
KERNEL = """
func.func @apply(%x: memref<{n}xf32>, %out: memref<{n}xf32>) {{
  %c0 = arith.constant 0 : index
  %step = arith.constant {width} : index
  %n = arith.constant {n} : index
  scf.for %i = %c0 to %n step %step {{
    %v = vector.load %x[%i] : memref<{n}xf32>, vector<{width}xf32>
    {body}
    vector.store %y, %out[%i] : memref<{n}xf32>, vector<{width}xf32>
  }}
  func.return
}}
"""
SPECIAL = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-40, -1e-40, 1.17549435e-38,
     3.4028235e38, -3.4028235e38, 1.0, -1.0, 88.72, 88.73, -103.9, -104.0, 7.9, -7.9, 4.0, -4.0],
    np.float32,
)  # fmt: skip


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """`name` of `x` in float64."""
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        if name == "exp":
            return np.exp(x64)
        if name == "log":
            return np.log(x64)
        if name == "erf":
            return scipy.special.erf(x64)
        if name == "tanh":
            return np.tanh(x64)
        return scipy.special.expit(x64)


def compiled(name: str, n: int):
    """The kernel applying `name` to n floats (n a multiple of WIDTH)."""
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, scf.Scf, memref.MemRef, vector.Vector):
        ctx.load_dialect(dialect)
    ctx.load_dialect(math.Math)
    module = Parser(ctx, KERNEL.format(n=n, width=WIDTH, body=BODIES[name])).parse_module()
    lower_to_llvm(module)
    library = compile_ir(translate_to_llvm_ir(module), isolated=True)
    return library.function("apply", None, [ctypes.c_void_p, ctypes.c_void_p])


def sweep(stride: int) -> np.ndarray:
    """Every `stride`-th f32 bit pattern and the special values, padded to a multiple of WIDTH."""
    bits = np.arange(0, 1 << 32, stride, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), SPECIAL])
    return np.pad(x, (0, -x.size % WIDTH), constant_values=1.0)


def ulp_errors(out: np.ndarray, expected: np.ndarray) -> np.ndarray:
    spacing = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    return np.abs(out.astype(np.float64) - expected) / spacing


def specials_ok(name: str, x: np.ndarray, out: np.ndarray, expected: np.ndarray) -> bool:
    """NaN where the reference is NaN, and exact infinities, zeros and ±1 where it has them."""
    nan = np.isnan(expected)
    exact = ~nan & (np.isinf(expected) | (expected == 0) | (np.abs(expected) == 1))
    exact &= np.isinf(x) | (x == 0)
    return bool(np.isnan(out[nan]).all() and (out[exact] == expected[exact]).all())


def main() -> None:
    stride = int(sys.argv[1]) if len(sys.argv) > 1 else 251
    x = sweep(stride)
    tiny = float(np.finfo(np.float32).tiny)
    largest = float(np.finfo(np.float32).max)
    print(f"{x.size} inputs (every {stride}th f32 bit pattern + special values)")
    print(f"{'function':<9}{'max ulp (normal)':>18}{'at x':>16}{'max ulp (subnormal)':>21}"
          f"{'specials':>10}")  # fmt: skip
    for name in BODIES:
        out = np.full_like(x, 7.0)
        compiled(name, x.size)(x.ctypes.data, out.ctypes.data)
        expected = reference(name, x)
        finite = np.isfinite(expected) & (np.abs(expected) <= largest)
        normal = finite & (np.abs(expected) >= tiny)
        subnormal = finite & (np.abs(expected) < tiny)
        errors = ulp_errors(out[normal], expected[normal])
        worst = int(np.argmax(errors))
        sub = ulp_errors(out[subnormal], expected[subnormal]).max() if subnormal.any() else 0.0
        ok = "ok" if specials_ok(name, x, out, expected) else "WRONG"
        print(f"{name:<9}{errors[worst]:>18.2f}{x[normal][worst]:>16.7g}{sub:>21.2f}{ok:>10}")


if __name__ == "__main__":
    main()
