"""What the to-llvm conversions share: the type converter, the cast glue and small builders.

Types convert as follows; every other type (`i1`, `i32`, `i64`, `f32`, `vector<Nxf32>`,
`!llvm.ptr`, ...) is already an LLVM type and stays:

- `index` becomes `i64` (and `vector<Nxindex>` becomes `vector<Nxi64>`);
- a `memref` becomes a bare `!llvm.ptr` to its first element (the layout offset already applied).
  Its static shape and strides stay in the memref type, which the accesses read: a load or store
  is one `getelementptr inbounds` over the element type with the linearised index.

A pass converts one dialect. It takes the operands in their LLVM types with `llvm_value` (which
looks through an `unrealized_conversion_cast` left by an earlier conversion or inserts one) and
hands its LLVM values back with `replace_op` (which casts each back to the type its users still
expect). `reconcile-unrealized-casts` removes the casts once every dialect is converted.

xDSL's `arith.cmpf` and `arith.cmpi` type their result `i1` even on vectors; the conversions give
such a comparison its true LLVM type, `vector<Nxi1>`, and `llvm_value` hands that mask to the
`arith.select` or mask op that consumes the `i1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.arith import FastMathFlagsAttr
from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    UnrealizedConversionCastOp,
    VectorType,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.utils.exceptions import PassFailedException

from lowering.to_llvm.llvm_extra import VectorSelectOp


def walk_ops(
    root: Operation | Region, *, reverse: bool = False, region_first: bool = False
) -> list[Operation]:
    """The ops `root.walk(reverse=..., region_first=...)` yields, in the same order, as a list.

    xDSL's walk nests one generator per region, block and op, so every op it yields passes
    through a generator per level of nesting above it; in a kernel's loop nests that made the
    walks a tenth of the lowering's time. This visits each op once with plain calls.
    """
    ops: list[Operation] = []

    def visit_region(region: Region) -> None:
        for block in reversed(region.blocks) if reverse else region.blocks:
            visit_block(block)

    def visit_block(block: Block) -> None:
        for op in reversed(block.ops) if reverse else block.ops:
            visit(op)

    def visit(op: Operation) -> None:
        if not region_first:
            ops.append(op)
        for region in reversed(op.regions) if reverse else op.regions:
            visit_region(region)
        if region_first:
            ops.append(op)

    if isinstance(root, Region):
        visit_region(root)
    else:
        visit(root)
    return ops


class ConversionWalker(PatternRewriteWalker):
    """xDSL's `PatternRewriteWalker`, filling its worklist with `walk_ops` (same ops, same
    order) instead of the nested generators of `Operation.walk`."""

    def _populate_worklist(self, op: Operation | Region | Block) -> None:
        if isinstance(op, Block):
            super()._populate_worklist(op)
            return
        for sub_op in walk_ops(
            op, reverse=not self.walk_reverse, region_first=not self.walk_regions_first
        ):
            self._worklist.push(sub_op)


class DialectConversion(ModulePass):
    """A pass converting the ops of one dialect (`dialect`) to the llvm dialect: `prepare`, then
    one walk applying `patterns()`, then a check that no op of the dialect is left.

    `convert_dialects` runs several of them as one walk (what `lower_to_llvm` does): each op
    goes to the patterns of its own dialect only. The conversions do not depend on one another's
    order, since each takes its operands through `llvm_value` and hands results back through
    `replace_op`: a producer converted before or after its user leaves the same cast glue.
    """

    #: The dialect whose ops the pass converts (the prefix of their names).
    dialect: ClassVar[str]

    def patterns(self) -> list[RewritePattern]:
        """The rewrite patterns, tried in order on each op of `dialect`."""
        raise NotImplementedError

    def prepare(self, module: ModuleOp) -> None:
        """What must happen to the whole module before the walk (nothing by default)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        convert_dialects(op, [self])


@dataclass(frozen=True)
class _DialectDispatch(RewritePattern):
    """Hands each op to the pattern of its dialect; ops of other dialects are left alone."""

    by_dialect: Mapping[str, RewritePattern]

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        pattern = self.by_dialect.get(op.name.partition(".")[0])
        if pattern is not None:
            pattern.match_and_rewrite(op, rewriter)


def convert_dialects(module: ModuleOp, conversions: Sequence[DialectConversion]) -> None:
    """Run `conversions` on `module` as one walk (see `DialectConversion`); raise the error of
    the conversion whose dialect still has an op afterwards, naming that op."""
    for conversion in conversions:
        conversion.prepare(module)
    by_dialect = {
        conversion.dialect: GreedyRewritePatternApplier(conversion.patterns())
        for conversion in conversions
    }
    ConversionWalker(_DialectDispatch(by_dialect), apply_recursively=False).rewrite_module(module)
    names = {conversion.dialect: conversion.name for conversion in conversions}
    for remaining in walk_ops(module):
        name = names.get(remaining.name.partition(".")[0])
        if name is not None:
            raise unsupported(name, remaining, "no lowering to the llvm dialect")


def convert_type(type_: Attribute) -> Attribute:
    """The LLVM type that stands for `type_` (see the module docstring)."""
    if isinstance(type_, IndexType):
        return i64
    if isinstance(type_, MemRefType):
        return llvm.LLVMPointerType()
    if isinstance(type_, VectorType) and isinstance(type_.element_type, IndexType):
        return VectorType(i64, type_.get_shape())
    return type_


def unsupported(pass_name: str, op: Operation, reason: str) -> PassFailedException:
    """The error a pass raises for an op it cannot lower; it names the pass, the op and why."""
    return PassFailedException(f"{pass_name}: cannot lower '{op.name}': {reason}")


def _is_scalar(type_: Attribute) -> bool:
    return isinstance(type_, IntegerType | IndexType | AnyFloat)


def is_scalar_or_vector(type_: Attribute) -> bool:
    """Whether `type_` is an integer, index or float scalar or a fixed 1-D vector of them."""
    if isinstance(type_, VectorType):
        return (
            type_.get_num_dims() == 1
            and not type_.get_num_scalable_dims()
            and _is_scalar(type_.element_type)
        )
    return _is_scalar(type_)


@dataclass(frozen=True)
class RejectNonScalarTypes(RewritePattern):
    """Fails on an op of `dialect` whose operands or results are not scalars or 1-D vectors
    (tensors, n-D vectors); listed first, it runs before the lowering patterns."""

    pass_name: str
    dialect: str

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not op.name.startswith(f"{self.dialect}."):
            return
        for value in (*op.operands, *op.results):
            if not is_scalar_or_vector(value.type):
                reason = f"{value.type} is not a scalar or 1-D vector type"
                raise unsupported(self.pass_name, op, reason)


def _is_mask_for(value_type: Attribute, flag_type: Attribute) -> bool:
    return (
        flag_type == i1
        and isinstance(value_type, VectorType)
        and value_type.element_type == i1
        and value_type.get_num_dims() == 1
    )


def llvm_value(value: SSAValue, rewriter: PatternRewriter) -> SSAValue:
    """`value` in its LLVM type, inserting an `unrealized_conversion_cast` before the matched op
    unless an earlier conversion left the LLVM value behind a cast."""
    target = convert_type(value.type)
    owner = value.owner
    if isinstance(owner, UnrealizedConversionCastOp) and len(owner.inputs) == 1:
        source = owner.inputs[0]
        if source.type == target or _is_mask_for(source.type, value.type):
            return source
    if target == value.type:
        return value
    cast = rewriter.insert(UnrealizedConversionCastOp.get([value], [target]))
    return cast.results[0]


def replace_op(rewriter: PatternRewriter, op: Operation, values: Sequence[SSAValue]) -> None:
    """Replace `op` (whose LLVM replacement is already inserted) by `values`, cast back to the
    original result types where those are not LLVM types."""
    casts: list[Operation] = []
    results: list[SSAValue] = []
    for old, new in zip(op.results, values, strict=True):
        if new.type == old.type:
            results.append(new)
            continue
        cast = UnrealizedConversionCastOp.get([new], [old.type])
        casts.append(cast)
        results.append(cast.results[0])
    rewriter.replace(op, casts, results)


def constant(rewriter: PatternRewriter, value: int | float, type_: Attribute) -> SSAValue:
    """An `llvm.mlir.constant` of a scalar type, or a splat of a 1-D vector type."""
    if isinstance(type_, VectorType):
        attr: Attribute = DenseIntOrFPElementsAttr.from_list(type_, [value])
    elif isinstance(type_, AnyFloat):
        attr = FloatAttr(float(value), type_)
    else:
        assert isinstance(type_, IntegerType)
        attr = IntegerAttr(int(value), type_)
    return rewriter.insert(llvm.ConstantOp(attr, type_)).result


def splat(rewriter: PatternRewriter, scalar: SSAValue, vector_type: VectorType) -> SSAValue:
    """A vector with every lane equal to `scalar`: insertelement into lane 0, then a shuffle."""
    undef = rewriter.insert(llvm.UndefOp(vector_type)).res
    lane0 = constant(rewriter, 0, i32)
    single = rewriter.insert(llvm.InsertElementOp(undef, scalar, lane0)).res
    zeros = DenseArrayBase.from_list(i32, [0] * vector_type.get_shape()[0])
    return rewriter.insert(llvm.ShuffleVectorOp(single, undef, zeros, vector_type)).res


def select(rewriter: PatternRewriter, cond: SSAValue, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
    """`cond ? lhs : rhs`, lane-wise when `cond` is a `vector<Nxi1>` mask."""
    if isinstance(cond.type, VectorType):
        return rewriter.insert(VectorSelectOp(cond, lhs, rhs)).res
    return rewriter.insert(llvm.SelectOp(cond, lhs, rhs)).res


def intrinsic_suffix(type_: Attribute) -> str:
    """LLVM's overload suffix of a type: `f32`, `i64`, `v8f32`, `v8i1`."""
    if isinstance(type_, VectorType):
        return f"v{type_.get_shape()[0]}{intrinsic_suffix(type_.element_type)}"
    if isinstance(type_, IntegerType):
        return f"i{type_.width.data}"
    assert isinstance(type_, AnyFloat)
    return f"f{type_.bitwidth}"


def call_intrinsic(
    rewriter: PatternRewriter,
    name: str,
    args: Sequence[SSAValue],
    result_type: Attribute | None,
    fastmath: llvm.FastMathAttr | None = None,
) -> SSAValue | None:
    """A call of the LLVM intrinsic `name`, overload suffixes included (`llvm.maximum.v8f32`)."""
    call = llvm.CallIntrinsicOp(name, args, [] if result_type is None else [result_type])
    if fastmath is not None:
        call.fastmathFlags = fastmath
    rewriter.insert(call)
    return call.ress


def call_overloaded(
    rewriter: PatternRewriter,
    name: str,
    args: Sequence[SSAValue],
    result_type: Attribute,
    fastmath: llvm.FastMathAttr | None = None,
) -> SSAValue:
    """A call of the intrinsic `name` overloaded on its result type only (`llvm.smax.i64`)."""
    full_name = f"{name}.{intrinsic_suffix(result_type)}"
    result = call_intrinsic(rewriter, full_name, args, result_type, fastmath)
    assert result is not None
    return result


def llvm_fastmath(flags: FastMathFlagsAttr) -> llvm.FastMathAttr:
    """The `llvm.fastmath` flags equal to `arith.fastmath` flags."""
    return llvm.FastMathAttr(flags.data)
