"""Addressing of memref elements on bare pointers: one `getelementptr inbounds` per access.

A memref value is an `!llvm.ptr` to its first element; its type holds the static shape and
strides. The address of `%m[%i, %j]` is `getelementptr inbounds T, %p[%i * s0 + %j * s1]`: the
strides are folded as constants, constant indices are folded into one offset, and the index
arithmetic carries `nsw` (an in-bounds linear index of a static-shaped buffer cannot overflow
i64). Addresses are never formed with ptrtoint/inttoptr, which would hide them from LLVM's alias
analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, llvm
from xdsl.dialects.builtin import (
    FixedBitwidthType,
    IntegerAttr,
    MemRefType,
    UnrealizedConversionCastOp,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter
from xdsl.rewriter import InsertPoint

from lowering.to_llvm.conversion import constant, convert_type, llvm_value, unsupported

_NSW = llvm.OverflowAttr([llvm.OverflowFlag.NO_SIGNED_WRAP])
_I32_MAX = 2**31 - 1


def static_strides(memref_type: Attribute, pass_name: str, op: Operation) -> tuple[int, ...]:
    """The element strides of a static-shaped memref with a static (identity or strided) layout;
    raises naming `op` otherwise."""
    if not isinstance(memref_type, MemRefType):
        raise unsupported(pass_name, op, f"expected a memref, got {memref_type}")
    if any(size < 0 for size in memref_type.get_shape()):
        raise unsupported(pass_name, op, f"{memref_type} has a dynamic shape")
    strides = memref_type.get_strides()
    if strides is None or any(stride is None for stride in strides):
        raise unsupported(pass_name, op, f"{memref_type} has a dynamic or non-strided layout")
    return tuple(stride for stride in strides if stride is not None)


def element_type(memref_type: MemRefType) -> Attribute:
    """The LLVM type of one element of `memref_type`."""
    return convert_type(memref_type.element_type)


def constant_int(value: SSAValue) -> int | None:
    """The integer `value` is known to hold (through casts), or None."""
    while isinstance(value.owner, UnrealizedConversionCastOp) and len(value.owner.inputs) == 1:
        value = value.owner.inputs[0]
    owner = value.owner
    if isinstance(owner, arith.ConstantOp | llvm.ConstantOp) and isinstance(
        owner.value, IntegerAttr
    ):
        return owner.value.value.data
    return None


def offset_pointer(
    rewriter: PatternRewriter,
    base: SSAValue,
    element: Attribute,
    indices: Sequence[SSAValue | int],
    strides: Sequence[int],
) -> SSAValue:
    """`getelementptr inbounds element, base[sum(indices[k] * strides[k])]`."""
    constant_offset = 0
    terms: list[SSAValue] = []
    for index, stride in zip(indices, strides, strict=True):
        known = index if isinstance(index, int) else constant_int(index)
        if known is not None:
            constant_offset += known * stride
            continue
        assert isinstance(index, SSAValue)
        terms.append(
            llvm_value(index, rewriter) if stride == 1 else _scaled(index, stride, rewriter)
        )
    if not terms:
        if constant_offset == 0:
            return base
        if constant_offset <= _I32_MAX:
            return rewriter.insert(
                llvm.GEPOp(base, [constant_offset], element, inbounds=True)
            ).result
    if constant_offset != 0:
        terms.append(constant(rewriter, constant_offset, i64))
    linear = terms[0]
    for term in terms[1:]:
        linear = rewriter.insert(llvm.AddOp(linear, term, overflow=_NSW)).res
    dynamic_gep = llvm.GEPOp.from_mixed_indices(base, [linear], element, inbounds=True)
    return rewriter.insert(dynamic_gep).result


def _scaled(index: SSAValue, stride: int, rewriter: PatternRewriter) -> SSAValue:
    """`index * stride` in i64, made once right after `index` is defined and shared by every
    access that scales `index` by `stride`: the ops right after a definition are searched for
    the product first. Placed there, it dominates every use of `index`; without the sharing, a
    register tile's loads (16 lanes x 24 rows of one pixel index) each multiplied again, and
    the kernels' llvm-dialect IR was half index arithmetic (LLVM folds it either way)."""
    owner = index.owner
    if isinstance(owner, Operation):
        point, candidate = InsertPoint.after(owner), owner.next_op
    else:
        assert isinstance(owner, Block)
        point, candidate = InsertPoint.at_start(owner), owner.first_op
    for _ in range(_SEARCHED_OPS):
        if candidate is None:
            break
        if isinstance(candidate, llvm.MulOp) and _scales(candidate, index, stride):
            return candidate.res
        candidate = candidate.next_op
    value = _llvm_value_of(index)
    hoisted: list[Operation] = []
    if value is None:
        cast = UnrealizedConversionCastOp.get([index], [i64])
        hoisted.append(cast)
        value = cast.results[0]
    scale = llvm.ConstantOp(IntegerAttr(stride, i64), i64)
    product = llvm.MulOp(value, scale.result, overflow=_NSW)
    rewriter.insert_op([*hoisted, scale, product], point)
    return product.res


#: How many ops after a definition `_scaled` looks through for a product it made before.
_SEARCHED_OPS = 16


def _llvm_value_of(index: SSAValue) -> SSAValue | None:
    """`index` as an i64 without a new op (itself, or what a cast made it from), else None."""
    if index.type == i64:
        return index
    owner = index.owner
    cast = isinstance(owner, UnrealizedConversionCastOp) and len(owner.inputs) == 1
    return owner.inputs[0] if cast and owner.inputs[0].type == i64 else None


def _scales(product: llvm.MulOp, index: SSAValue, stride: int) -> bool:
    """Whether `product` is `index * stride` as `_scaled` makes it."""
    lhs = product.lhs
    made_from = lhs.owner.inputs[0] if isinstance(lhs.owner, UnrealizedConversionCastOp) else lhs
    if made_from is not index and lhs is not _llvm_value_of(index):
        return False
    scale = product.rhs.owner
    return (
        isinstance(scale, llvm.ConstantOp)
        and isinstance(scale.value, IntegerAttr)
        and scale.value.value.data == stride
    )


def element_pointer(
    rewriter: PatternRewriter,
    memref: SSAValue,
    indices: Sequence[SSAValue],
    pass_name: str,
    op: Operation,
) -> SSAValue:
    """The address of `memref[indices]` (see the module docstring)."""
    strides = static_strides(memref.type, pass_name, op)
    assert isinstance(memref.type, MemRefType)
    base = llvm_value(memref, rewriter)
    return offset_pointer(rewriter, base, element_type(memref.type), indices, strides)


def element_bytes(type_: Attribute) -> int:
    """The size in bytes of a scalar LLVM type (the natural alignment of a vector access)."""
    assert isinstance(type_, FixedBitwidthType)
    return max(1, type_.bitwidth // 8)
