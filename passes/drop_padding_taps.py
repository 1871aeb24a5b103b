"""`conv-drop-padding-taps`: cut from each conv's kernel the rows and columns of taps that read
only padding.

A tap (kernel row i) of a conv with input height H, OH output rows, stride s, dilation d and top
padding p reads input row oh·s - p + i·d for output row oh; when that row lies outside [0, H) for
every oh, the tap only ever meets padding. convir's convs treat a padded tap as absent (it forms no
product, so even an Inf or NaN weight there contributes nothing), so such taps can go: the kernel
keeps rows [first live, last live] (likewise columns), the padding shrinks by the dilations cut
off each side, and the output size is unchanged. A kernel cut to one row or column gets dilation 1
along it.

This is what makes DeepLabV3's atrous pyramid cheap at small inputs: its 3×3 convs with dilation
24 and 36 on a 14×14 map read the input only at their centre tap, and become 1×1 convs (9× fewer
flops; a 1×1 conv without padding then runs as `gemm1x1`).

Expects graph-form IR (NCHW, before `conv-convert-layout`); a conv whose weight is not a
constant, or whose cut would need a negative padding, is left alone, as are convs with no live
tap at all (their output is the bias alone). Weights are sliced, never recomputed: the function
computes exactly the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from convir.dialects import conv
from convir.dialects.shapes import i64_array, tensor_shape
from passes.graph_rewriting import constant_value, conv_with, erase_dead_constants, new_constant


@dataclass(frozen=True)
class KeptTaps:
    """Along one spatial axis: the kernel taps [first, last] kept, and the new paddings."""

    first: int
    last: int
    pad_begin: int
    pad_end: int


def kept_taps(
    size: int, out_size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]
) -> KeptTaps | None:
    """The taps of one axis that read the input for some output position, as a range, with the
    paddings that keep the output size; None when no tap is live or a padding would go
    negative."""
    pad_begin, pad_end = pads
    live = [
        tap
        for tap in range(kernel)
        if any(0 <= o * stride - pad_begin + tap * dilation < size for o in range(out_size))
    ]
    if not live:
        return None
    first, last = live[0], live[-1]
    kept = KeptTaps(
        first, last, pad_begin - first * dilation, pad_end - (kernel - 1 - last) * dilation
    )
    return kept if kept.pad_begin >= 0 and kept.pad_end >= 0 else None


def drop_padding_taps(op: conv.Conv2DOp, ctx: Context, rewriter: PatternRewriter) -> bool:
    """Replace `op` by a conv with a smaller kernel if some taps read only padding (module doc).
    Returns whether it did; when it did not, the IR is unchanged."""
    weight = constant_value(ctx, op.weight)
    if weight is None or len(tensor_shape(op.input)) != 4 or op.algorithm is not None:
        return False
    height, width = tensor_shape(op.input)[2:4]
    out_h, out_w = tensor_shape(op.output)[2:4]  # NCHW or NCHWc: rows and columns are dims 2, 3
    _, _, kernel_h, kernel_w = weight.shape
    strides = [int(s) for s in op.strides.iter_values()]
    dilations = [int(d) for d in op.dilations.iter_values()]
    top, left, bottom, right = (int(p) for p in op.pads.iter_values())
    rows = kept_taps(height, out_h, kernel_h, strides[0], dilations[0], (top, bottom))
    columns = kept_taps(width, out_w, kernel_w, strides[1], dilations[1], (left, right))
    full_rows = KeptTaps(0, kernel_h - 1, top, bottom)
    full_columns = KeptTaps(0, kernel_w - 1, left, right)
    rows, columns = rows or full_rows, columns or full_columns
    if rows == full_rows and columns == full_columns:
        return False
    sliced = weight[:, :, rows.first : rows.last + 1, columns.first : columns.last + 1]
    new_weight = new_constant(ctx, f"{op.output.name_hint or 'conv'}.weight", sliced)
    new_dilations = [
        1 if kept.first == kept.last else dilation
        for kept, dilation in zip((rows, columns), dilations, strict=True)
    ]
    pads = [rows.pad_begin, columns.pad_begin, rows.pad_end, columns.pad_end]
    properties = {"pads": i64_array(pads), "dilations": i64_array(new_dilations)}
    cut = conv_with(op, weight=new_weight.output, properties=properties)
    rewriter.insert([new_weight, cut], InsertPoint.before(op))
    rewriter.replace_all_uses_with(op.output, cut.output)
    dead = op.weight
    rewriter.erase(op)
    erase_dead_constants([dead], rewriter)
    return True


@dataclass(frozen=True)
class DropPaddingTaps(RewritePattern):
    """Cut the taps of a conv that read only padding."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: conv.Conv2DOp, rewriter: PatternRewriter) -> None:
        drop_padding_taps(op, self.ctx, rewriter)


@dataclass(frozen=True)
class DropPaddingTapsPass(ModulePass):
    """Cut kernel taps that read only padding (see module doc)."""

    name = "conv-drop-padding-taps"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(DropPaddingTaps(ctx), apply_recursively=False).rewrite_module(op)
