"""`convert-math-to-llvm`: math ops to LLVM intrinsics, libm calls and (vector tanh) a rational
approximation.

`math.tanh` has no LLVM intrinsic. On scalars it calls libm's `tanhf` (`tanh` for f64). On
`vector<Nxf32>` it evaluates, lane-wise and without calls, the rational approximation Eigen and
MLIR's polynomial approximation use: x is clamped to ±7.90531 (the range the approximation was
fitted on) with `llvm.minimum`/`maximum` (so NaN stays NaN), tanh(x) = x·P(x²)/Q(x²) with P of
degree 6 and Q of degree 3 in x², |x| < 0.0004 returns x itself and |x| > 9.02 (where tanh rounds to
±1 in f32, ±inf included) returns ±1 exactly; the clamp alone left 0.99999976 there. Its error is a
few ulp over the whole f32 range (checked against numpy in the unit tests). Vector f32 `math.exp`
and `math.erf` are first expanded into call-free arith (`lowering.to_llvm.math_approximations`);
scalar `erf` calls libm's `erff`/`erf`."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import func, llvm, math
from xdsl.dialects.builtin import (
    ModuleOp,
    VectorType,
    f32,
    f64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
)
from xdsl.rewriter import InsertPoint
from xdsl.traits import SymbolTable

from lowering.to_llvm.conversion import (
    DialectConversion,
    RejectNonScalarTypes,
    call_overloaded,
    constant,
    llvm_fastmath,
    replace_op,
    select,
    unsupported,
)
from lowering.to_llvm.llvm_extra import VectorFCmpOp
from lowering.to_llvm.math_approximations import expand_vector_math

PASS_NAME = "convert-math-to-llvm"

_UNARY: dict[type[Operation], type[Operation]] = {
    math.ExpOp: llvm.FExpOp,
    math.Exp2Op: llvm.FExp2Op,
    math.LogOp: llvm.FLogOp,
    math.Log2Op: llvm.FLog2Op,
    math.SqrtOp: llvm.FSqrtOp,
    math.FloorOp: llvm.FFloorOp,
    math.CeilOp: llvm.FCeilOp,
    math.SinOp: llvm.FSinOp,
    math.CosOp: llvm.FCosOp,
}
_BINARY: dict[type[Operation], type[Operation]] = {
    math.PowFOp: llvm.FPowOp,
    math.CopySignOp: llvm.FCopySignOp,
}
_LIBM: dict[type[Operation], dict[Attribute, str]] = {
    math.TanhOp: {f32: "tanhf", f64: "tanh"},
    math.ErfOp: {f32: "erff", f64: "erf"},
}

_TANH_CLAMP = 7.90531110763549805
_TANH_TINY = 0.0004
_TANH_ONE = 9.02
"""Above it 1 - tanh(x) ≈ 2e^-2x is below half an ulp of 1 in f32: tanh rounds to ±1."""
_TANH_NUMERATOR = (
    -2.76076847742355e-16,
    2.00018790482477e-13,
    -8.60467152213735e-11,
    5.12229709037114e-08,
    1.48572235717979e-05,
    6.37261928875436e-04,
    4.89352455891786e-03,
)
"""Coefficients of P(x²) from the highest power down; tanh(x) ≈ x·P(x²)/Q(x²)."""
_TANH_DENOMINATOR = (
    1.19825839466702e-06,
    1.18534705686654e-04,
    2.26843463243900e-03,
    4.89352518554385e-03,
)
"""Coefficients of Q(x²) from the highest power down."""


class IntrinsicLowering(RewritePattern):
    """`exp`, `exp2`, `log`, `log2`, `sqrt`, `floor`, `ceil`, `sin`, `cos`, `powf`, `copysign`,
    `absf`, `fma` and `rsqrt` (as 1 / sqrt) to LLVM intrinsics, fast-math flags kept."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if type(op) in _UNARY:
            assert isinstance(op, math.FloatingPointLikeUnaryMathOperation)
            new: Operation = _UNARY[type(op)](op.operand, llvm_fastmath(op.fastmath))
        elif type(op) in _BINARY:
            assert isinstance(op, math.FloatingPointLikeBinaryMathOperation)
            new = _BINARY[type(op)](op.lhs, op.rhs, llvm_fastmath(op.fastmath))
        elif isinstance(op, math.AbsFOp):
            new = llvm.FAbsOp(op.operand, op.result.type, llvm_fastmath(op.fastmath))
        elif isinstance(op, math.FmaOp):
            # xDSL's translator rejects `llvm.intr.fma` with fast-math flags: none are set.
            new = llvm.FMAOp(op.a, op.b, op.c)
        elif isinstance(op, math.RsqrtOp):
            flags = llvm_fastmath(op.fastmath)
            root = rewriter.insert(llvm.FSqrtOp(op.operand, flags)).res
            one = constant(rewriter, 1.0, op.result.type)
            new = llvm.FDivOp(one, root, flags)
        else:
            return
        rewriter.insert(new)
        replace_op(rewriter, op, new.results)


class LibmLowering(RewritePattern):
    """Scalar `tanh` and `erf` to libm calls (f32 vector `erf` was expanded before)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if type(op) not in _LIBM:
            return
        if isinstance(op, math.TanhOp) and isinstance(op.result.type, VectorType):
            return  # VectorTanhLowering
        assert isinstance(op, math.FloatingPointLikeUnaryMathOperation)
        type_ = op.result.type
        element = type_.element_type if isinstance(type_, VectorType) else type_
        names = _LIBM[type(op)]
        if element not in names:
            raise unsupported(PASS_NAME, op, f"no libm function for {element}")
        if isinstance(type_, VectorType):
            raise unsupported(PASS_NAME, op, f"vector erf is lowered for 1-D f32, got {type_}")
        replace_op(rewriter, op, [_call(rewriter, op, names[element], op.operand)])


def _call(rewriter: PatternRewriter, op: Operation, callee: str, arg: SSAValue) -> SSAValue:
    """A call of the unary libm function `callee`, declared as an external `llvm.func` unless
    the module already declares it."""
    module = op.get_toplevel_object()
    assert isinstance(module, ModuleOp)
    existing = SymbolTable.lookup_symbol(module, callee)
    if isinstance(existing, func.FuncOp):
        call: Operation = func.CallOp(callee, [arg], [arg.type])
    elif existing is None or isinstance(existing, llvm.FuncOp):
        if existing is None:
            declaration = llvm.FuncOp(
                callee,
                llvm.LLVMFunctionType([arg.type], arg.type),
                linkage=llvm.LinkageAttr("external"),
            )
            rewriter.insert(declaration, InsertPoint.at_start(module.body.block))
        call = llvm.CallOp(callee, arg, return_type=arg.type)
    else:
        raise unsupported(PASS_NAME, op, f"the symbol @{callee} is a '{existing.name}'")
    return rewriter.insert(call).results[0]


class VectorTanhLowering(RewritePattern):
    """`math.tanh` on `vector<Nxf32>` to the clamped rational approximation (module docstring)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, math.TanhOp) or not isinstance(op.result.type, VectorType):
            return
        type_ = op.result.type
        if type_.element_type != f32 or type_.get_num_dims() != 1:
            raise unsupported(PASS_NAME, op, f"vector tanh is lowered for 1-D f32, got {type_}")
        x = op.operand
        high = constant(rewriter, _TANH_CLAMP, type_)
        low = constant(rewriter, -_TANH_CLAMP, type_)
        clamped = call_overloaded(rewriter, "llvm.maximum", [x, low], type_)
        clamped = call_overloaded(rewriter, "llvm.minimum", [clamped, high], type_)
        square = rewriter.insert(llvm.FMulOp(clamped, clamped)).res
        odd_part = _horner(rewriter, square, _TANH_NUMERATOR)
        numerator = rewriter.insert(llvm.FMulOp(clamped, odd_part)).res
        denominator = _horner(rewriter, square, _TANH_DENOMINATOR)
        ratio = rewriter.insert(llvm.FDivOp(numerator, denominator)).res
        magnitude = rewriter.insert(llvm.FAbsOp(x, type_)).result
        tiny = constant(rewriter, _TANH_TINY, type_)
        is_tiny = rewriter.insert(VectorFCmpOp(magnitude, tiny, llvm.FCmpPredicateFlag.OLT)).res
        small_or_ratio = select(rewriter, is_tiny, x, ratio)
        one_bound = constant(rewriter, _TANH_ONE, type_)
        is_one = rewriter.insert(VectorFCmpOp(magnitude, one_bound, llvm.FCmpPredicateFlag.OGT)).res
        one = constant(rewriter, 1.0, type_)
        signed_one = call_overloaded(rewriter, "llvm.copysign", [one, x], type_)
        replace_op(rewriter, op, [select(rewriter, is_one, signed_one, small_or_ratio)])


def _horner(rewriter: PatternRewriter, x: SSAValue, coefficients: tuple[float, ...]) -> SSAValue:
    """The polynomial with `coefficients` (highest power first) at `x`, by `llvm.fmuladd`s."""
    type_ = x.type
    result = constant(rewriter, coefficients[0], type_)
    for coefficient in coefficients[1:]:
        addend = constant(rewriter, coefficient, type_)
        result = call_overloaded(rewriter, "llvm.fmuladd", [result, x, addend], type_)
    return result


@dataclass(frozen=True)
class ConvertMathToLLVMPass(DialectConversion):
    """Lower math to the llvm dialect.

    Expects math ops on float scalars and 1-D float vectors: `exp`, `exp2`, `log`, `log2`,
    `sqrt`, `rsqrt`, `powf`, `fma`, `absf`, `floor`, `ceil`, `sin`, `cos`, `copysign`, `tanh`,
    `erf`. Produces LLVM intrinsics (`llvm.intr.exp`, `llvm.intr.fma`, ...; fast-math flags
    kept except on `fma`), libm calls for scalar `tanh`/`erf` (declaring `llvm.func @tanhf` etc.
    when the module does not), and call-free approximations of f32 vector `tanh`, `exp` and
    `erf` (module docstring); the last two leave arith ops for `convert-arith-to-llvm`. Other
    dialects are untouched. Fails naming the op on any other math op.
    """

    name = "convert-math-to-llvm"

    dialect = "math"

    def patterns(self) -> list[RewritePattern]:
        return [
            RejectNonScalarTypes(PASS_NAME, "math"),
            IntrinsicLowering(),
            LibmLowering(),
            VectorTanhLowering(),
        ]

    def prepare(self, module: ModuleOp) -> None:
        expand_vector_math(module)
