"""Call-free approximations of `math.exp`, `math.log` and `math.erf` on `vector<Nxf32>`.

LLVM scalarises a vector `llvm.exp`/`llvm.log` or a vector libm call into one `expf`/`logf`/
`erff` call per lane, which made sigmoid, SiLU, softmax, softplus and GELU an order of magnitude
slower than their arithmetic.
`expand_vector_math` rewrites those ops, before `convert-math-to-llvm` lowers the rest, into
arith ops (with `llvm.fptosi`/`llvm.sitofp` for the vector float-integer conversions, which
xDSL's arith casts do not accept) plus `math.fma` and `math.floor` (which become
`llvm.intr.fma`/`llvm.intr.floor`, one instruction each on x86 with AVX-512 or AVX2+FMA):

- exp(x), Cephes' `expf`: x is clamped to [-104, 88.73] (outside it f32 exp is 0 or +inf) with
  `maxnum`/`minnum`, k = floor(x·log2(e) + ½), r = x - k·ln 2 in two Cody–Waite steps, exp(r)
  by a degree-7 polynomial, and 2^k made from exponent bits in two halves (k >> 1 and the rest)
  so that every k in [-150, 128] — results down to the subnormals, and up to +inf — is exact.
  NaN lanes return the input. Error ≤ 2 ulp for normal results (checked against numpy).
- log(x), Cephes' `logf`: x = m·2^e with m in [√½, √2) from the exponent bits (subnormal x
  scaled by 2^23 first), log(m) = t - t²/2 + t³·P(t) with t = m - 1 and P of degree 8, plus
  e·ln 2 in two Cody–Waite parts. x < 0 and NaN give NaN, ±0 gives -inf, +inf gives +inf.
  Error ≤ 2 ulp (checked against numpy).
- erf(x), Eigen's `generic_fast_erf_float`: x clamped to [-4, 4] (beyond which erf rounds to ±1)
  with NaN-propagating `maximumf`/`minimumf`, erf(x) = x·P(x²)/Q(x²) with P of degree 6 and Q of
  degree 4 in x². Error a few ulp, absolute error < 1e-7.

Scalar `exp`/`log`/`erf` are left alone: they lower to libm calls, used only by vector tails.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, llvm, math
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    ModuleOp,
    VectorType,
    f32,
    i32,
)
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)

from lowering.to_llvm.llvm_extra import FPToSIOp

_EXP_LOW = -104.0
_EXP_HIGH = 88.73
_LOG2_E = 1.44269504088896341
_LN2_HIGH = 0.693359375
"""ln 2 rounded to a few bits, so that k·_LN2_HIGH is exact for every k in range."""
_LN2_LOW = -2.12194440e-4
"""ln 2 - _LN2_HIGH."""
_EXP_POLYNOMIAL = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)
"""Cephes' coefficients: exp(r) ≈ 1 + r + r²·P(r) on |r| ≤ ln(2)/2, highest power first."""
_FLOAT_MANTISSA_BITS = 23
_FLOAT_EXPONENT_BIAS = 127

_LOG_POLYNOMIAL = (
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)
"""Cephes' coefficients: log(1 + t) ≈ t - t²/2 + t³·P(t) on √½ - 1 ≤ t < √2 - 1."""
_SQRT_HALF = 0.707106781186547524
_SMALLEST_NORMAL = 1.17549435e-38
_MANTISSA_MASK = 0x807FFFFF
_HALF_EXPONENT_BITS = 0x3F000000
"""The exponent field of 0.5: or-ed into a mantissa it gives a value in [0.5, 1)."""

_ERF_CLAMP = 4.0
_ERF_NUMERATOR = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
"""Coefficients of P(x²), highest power first: erf(x) ≈ x·P(x²)/Q(x²)."""
_ERF_DENOMINATOR = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)
"""Coefficients of Q(x²), highest power first."""


class _Emitter:
    """Inserts arith/math ops before the op being rewritten, on values of one vector shape."""

    def __init__(self, rewriter: PatternRewriter, type_: VectorType) -> None:
        self.rewriter = rewriter
        self.float_type = type_
        self.int_type = VectorType(i32, type_.get_shape())

    def _insert(self, op: Operation) -> SSAValue:
        self.rewriter.insert(op)
        return op.results[0]

    def constant(self, value: float) -> SSAValue:
        attr = DenseIntOrFPElementsAttr.from_list(self.float_type, [float(value)])
        return self._insert(arith.ConstantOp(attr))

    def int_constant(self, value: int) -> SSAValue:
        attr = DenseIntOrFPElementsAttr.from_list(self.int_type, [int(value)])
        return self._insert(arith.ConstantOp(attr))

    def multiply(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self._insert(arith.MulfOp(a, b))

    def multiply_add(self, a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
        return self._insert(math.FmaOp(a, b, c))

    def horner(self, x: SSAValue, coefficients: Sequence[float]) -> SSAValue:
        """The polynomial with `coefficients` (highest power first) at `x`."""
        result = self.constant(coefficients[0])
        for coefficient in coefficients[1:]:
            result = self.multiply_add(result, x, self.constant(coefficient))
        return result

    def power_of_two(self, exponent: SSAValue) -> SSAValue:
        """2^exponent for integer lanes in [-126, 127], built from the exponent field."""
        biased = self._insert(arith.AddiOp(exponent, self.int_constant(_FLOAT_EXPONENT_BIAS)))
        bits = self._insert(arith.ShLIOp(biased, self.int_constant(_FLOAT_MANTISSA_BITS)))
        return self._insert(arith.BitcastOp(bits, self.float_type))

    def exp(self, x: SSAValue) -> SSAValue:
        """exp(x) lane-wise (module docstring)."""
        low = self._insert(arith.MaxnumfOp(x, self.constant(_EXP_LOW)))
        clamped = self._insert(arith.MinnumfOp(low, self.constant(_EXP_HIGH)))
        scaled = self.multiply_add(clamped, self.constant(_LOG2_E), self.constant(0.5))
        k = self._insert(math.FloorOp(scaled))
        r = self.multiply_add(k, self.constant(-_LN2_HIGH), clamped)
        r = self.multiply_add(k, self.constant(-_LN2_LOW), r)
        polynomial = self.horner(r, _EXP_POLYNOMIAL)
        one_plus_r = self._insert(arith.AddfOp(r, self.constant(1.0)))
        exp_r = self.multiply_add(polynomial, self.multiply(r, r), one_plus_r)
        k_int = self._insert(FPToSIOp(k, self.int_type))
        half = self._insert(arith.ShRSIOp(k_int, self.int_constant(1)))
        rest = self._insert(arith.SubiOp(k_int, half))
        partial = self.multiply(exp_r, self.power_of_two(half))
        result = self.multiply(partial, self.power_of_two(rest))
        is_nan = self._insert(arith.CmpfOp(x, x, "uno"))
        return self._insert(arith.SelectOp(is_nan, x, result))

    def _compare(self, predicate: str, a: SSAValue, b: SSAValue) -> SSAValue:
        return self._insert(arith.CmpfOp(a, b, predicate))

    def _select(self, condition: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self._insert(arith.SelectOp(condition, a, b))

    def log(self, x: SSAValue) -> SSAValue:
        """log(x) lane-wise (module docstring)."""
        tiny = self._compare("olt", x, self.constant(_SMALLEST_NORMAL))
        scaled = self._select(tiny, self.multiply(x, self.constant(2.0**23)), x)
        bits = self._insert(arith.BitcastOp(scaled, self.int_type))
        biased = self._insert(arith.ShRUIOp(bits, self.int_constant(_FLOAT_MANTISSA_BITS)))
        exponent_int = self._insert(arith.SubiOp(biased, self.int_constant(126)))
        exponent = self._insert(llvm.SIToFPOp(exponent_int, self.float_type))
        exponent = self._select(
            tiny, self._insert(arith.SubfOp(exponent, self.constant(23.0))), exponent
        )
        mantissa_bits = self._insert(arith.AndIOp(bits, self.int_constant(_MANTISSA_MASK)))
        mantissa_bits = self._insert(
            arith.OrIOp(mantissa_bits, self.int_constant(_HALF_EXPONENT_BITS))
        )
        mantissa = self._insert(arith.BitcastOp(mantissa_bits, self.float_type))
        # m in [0.5, 1): below √½ take 2m - 1 and e - 1, else m - 1, so that |t| < 0.42.
        small = self._compare("olt", mantissa, self.constant(_SQRT_HALF))
        one = self.constant(1.0)
        doubled = self._insert(arith.AddfOp(mantissa, mantissa))
        t = self._insert(arith.SubfOp(self._select(small, doubled, mantissa), one))
        exponent = self._select(small, self._insert(arith.SubfOp(exponent, one)), exponent)
        square = self.multiply(t, t)
        cubic = self.multiply(self.multiply(self.horner(t, _LOG_POLYNOMIAL), t), square)
        y = self.multiply_add(exponent, self.constant(_LN2_LOW), cubic)
        y = self.multiply_add(square, self.constant(-0.5), y)
        result = self._insert(arith.AddfOp(t, y))
        result = self.multiply_add(exponent, self.constant(_LN2_HIGH), result)
        # Special lanes, last: +inf stays, 0 gives -inf, negative and NaN give NaN.
        result = self._select(self._compare("oeq", x, self.constant(float("inf"))), x, result)
        result = self._select(
            self._compare("oeq", x, self.constant(0.0)), self.constant(float("-inf")), result
        )
        invalid = self._compare("ult", x, self.constant(0.0))
        return self._select(invalid, self.constant(float("nan")), result)

    def erf(self, x: SSAValue) -> SSAValue:
        """erf(x) lane-wise (module docstring)."""
        low = self._insert(arith.MaximumfOp(x, self.constant(-_ERF_CLAMP)))
        clamped = self._insert(arith.MinimumfOp(low, self.constant(_ERF_CLAMP)))
        square = self.multiply(clamped, clamped)
        numerator = self.multiply(clamped, self.horner(square, _ERF_NUMERATOR))
        denominator = self.horner(square, _ERF_DENOMINATOR)
        return self._insert(arith.DivfOp(numerator, denominator))


def _f32_vector(type_: object) -> VectorType | None:
    if isinstance(type_, VectorType) and type_.element_type == f32 and type_.get_num_dims() == 1:
        return type_
    return None


class VectorExpExpansion(RewritePattern):
    """`math.exp` on `vector<Nxf32>` to the range-reduced polynomial (module docstring)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, math.ExpOp) and (type_ := _f32_vector(op.result.type)) is not None:
            rewriter.replace(op, [], [_Emitter(rewriter, type_).exp(op.operand)])


class VectorLogExpansion(RewritePattern):
    """`math.log` on `vector<Nxf32>` to the reduced polynomial (module docstring)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, math.LogOp) and (type_ := _f32_vector(op.result.type)) is not None:
            rewriter.replace(op, [], [_Emitter(rewriter, type_).log(op.operand)])


class VectorErfExpansion(RewritePattern):
    """`math.erf` on `vector<Nxf32>` to the clamped rational approximation (module docstring)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, math.ErfOp) and (type_ := _f32_vector(op.result.type)) is not None:
            rewriter.replace(op, [], [_Emitter(rewriter, type_).erf(op.operand)])


def expand_vector_math(module: ModuleOp) -> None:
    """Rewrite every f32 vector `math.exp`, `math.log` and `math.erf` in `module` into
    arith/math ops."""
    PatternRewriteWalker(
        GreedyRewritePatternApplier(
            [VectorExpExpansion(), VectorLogExpansion(), VectorErfExpansion()]
        ),
        apply_recursively=False,
    ).rewrite_module(module)
