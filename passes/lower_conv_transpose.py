"""`conv-lower-conv-transpose`: a transposed convolution becomes ordinary convs (sub-pixel form).

Expects graph-form NCHW IR whose `conv.conv_transpose` weights (and bias, if any) are constants
(run `conv-fold-constants` first). Produces, for each transposed conv with strides (SH, SW), the
SH·SW *phases* of its output as `conv.conv2d`s with stride 1 on the transposed conv's own input,
and one `conv.interleave` that weaves them into the output; with stride 1 there is one phase and
it is the output. Invariants: the result keeps its type and value; a transposed conv with a
computed weight or bias is refused with an error naming it (it has no native kernel).

Why phases and not a conv over a zero-inserted input. Output position p (counted in the full,
uncropped output) receives input ih through tap k exactly when p = ih·S + k·D. Splitting p by
its residue φ = p mod S, phase φ sees only the taps with k·D ≡ φ (mod S): an arithmetic
progression of taps, so phase φ is an ordinary stride-1 convolution of the input with the
sub-sampled, flipped kernel, dilated by D / gcd(D, S). The phases together do exactly the
transposed conv's KH·KW·C·O multiply-adds per input pixel; a conv over the input with S-1 zeros
inserted between pixels would do S² times as many, nearly all of them on zeros, and read an
input S² times larger. Each phase is a plain `conv.conv2d`, so algorithm selection, NCHWc
layout, epilogue fusion, tiling and the tuner treat it like any other conv (a 4×4 stride-2 kernel,
the usual learned 2× upsampling, becomes four 2×2 convs). The price is the interleave: one pass
over the output, copying whole NCHWc vectors.

Epilogue. A `conv.batchnorm` with constant parameters that alone reads the transposed conv is
folded into its weight and bias first, and a `conv.activation` that alone reads the result is
applied to every phase before the interleave (elementwise maps commute with it), where
`conv-fuse-epilogue` fuses it into the phase convs: the decoder's ConvTranspose + BN + ReLU
becomes convs with a fused epilogue and one interleave, no elementwise pass over the output.

Cropping. Phases are indexed by the *output* rows they own (a, a + S, ..., for a < S), not by
the residue of p: with pads the two differ by pad_begin mod S, and indexing by output rows makes
each phase exactly the rows the cropped output needs (no row computed and thrown away; a 7×7 →
14×14 upsampling would otherwise compute 8×8 per phase, 31 % more) and the interleave an exact
pixel shuffle. Phase row i then reads input rows start + i - m for its tap offsets m, which
become its pads; a pad that would be negative (pads larger than the kernel's reach) crops the
input through a `conv.pad` instead. A phase with no taps (gcd(D, S) > 1, or a kernel smaller
than the stride) or whose crop leaves no input is the bias alone: a constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from convir import reference
from convir.dialects import conv
from convir.dialects.conv_names import ONNX_NAME
from convir.dialects.shapes import tensor_shape
from passes.fold_batchnorm import batchnorm_coefficients
from passes.graph_rewriting import constant_value, erase_dead_constants, new_constant


@dataclass(frozen=True)
class AxisPhase:
    """One phase of a transposed conv along one axis: the output rows first, first + S, ...
    (`rows` of them), computed by a stride-1 conv.

    `taps`: kernel indices in the conv's order (flipped), empty when no tap reaches these rows
    (they are the bias alone); `dilation` between them; `crop_begin` and `crop_end`: input rows
    dropped before the conv; `pad_begin`, `pad_end`: the conv's pads.
    """

    rows: int
    taps: tuple[int, ...] = ()
    dilation: int = 1
    pad_begin: int = 0
    pad_end: int = 0
    crop_begin: int = 0
    crop_end: int = 0


def plan_axis(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pad_begin: int,
    output_size: int,
) -> tuple[AxisPhase, ...]:
    """The phases of one axis of a transposed conv, by first output row (module docstring).

    `size` input rows, `output_size` output rows after cropping `pad_begin` at the start.
    """
    step = dilation // math.gcd(dilation, stride)
    phases = []
    for first in range(min(stride, output_size)):
        rows = -(-(output_size - first) // stride)
        # Output row first + S·i is full-output position p = first + pad_begin + S·i.
        residue, start = (first + pad_begin) % stride, (first + pad_begin) // stride
        taps = [k for k in range(kernel) if (k * dilation) % stride == residue]
        if not taps:
            phases.append(AxisPhase(rows))
            continue
        # Phase row i receives input start + i - m_j through taps[j], m_j = (taps[j]·D - r) / S.
        nearest = (taps[0] * dilation - residue) // stride
        farthest = (taps[-1] * dilation - residue) // stride
        pad_begin_conv = farthest - start
        pad_end_conv = start + rows - size - nearest
        crop_begin, crop_end = max(-pad_begin_conv, 0), max(-pad_end_conv, 0)
        if crop_begin + crop_end >= size:
            phases.append(AxisPhase(rows))
            continue
        phases.append(
            AxisPhase(
                rows=rows,
                taps=tuple(reversed(taps)),
                dilation=step,
                pad_begin=max(pad_begin_conv, 0),
                pad_end=max(pad_end_conv, 0),
                crop_begin=crop_begin,
                crop_end=crop_end,
            )
        )
    return tuple(phases)


def phase_weight(weight: np.ndarray, group: int, rows: AxisPhase, cols: AxisPhase) -> np.ndarray:
    """The conv2d weight [O, C/group, TH, TW] of one phase, from the transposed conv's weight
    [C, O/group, KH, KW]: taps picked (flipped), input and output channels swapped per group."""
    channels, group_outputs, kernel_h, kernel_w = weight.shape
    grouped = weight.reshape(group, channels // group, group_outputs, kernel_h, kernel_w)
    picked = grouped[:, :, :, list(rows.taps)][:, :, :, :, list(cols.taps)]
    taps_h, taps_w = len(rows.taps), len(cols.taps)
    return picked.transpose(0, 2, 1, 3, 4).reshape(
        group * group_outputs, channels // group, taps_h, taps_w
    )


@dataclass(frozen=True)
class Epilogue:
    """What a transposed conv absorbs from the ops after it (see the module docstring)."""

    batchnorm: conv.BatchNormOp | None
    activation: conv.ActivationOp | None

    @staticmethod
    def after(op: conv.ConvTransposeOp, ctx: Context) -> Epilogue:
        """The batchnorm and activation that alone read `op`'s result, in that order."""
        batchnorm = _sole_user(op.output)
        if (
            not isinstance(batchnorm, conv.BatchNormOp)
            or batchnorm_coefficients(batchnorm, ctx) is None
        ):
            batchnorm = None
        activation = _sole_user((batchnorm or op).results[0])
        if not isinstance(activation, conv.ActivationOp):
            activation = None
        return Epilogue(batchnorm, activation)

    @property
    def last(self) -> Operation | None:
        """The absorbed op whose result the lowering's replaces."""
        return self.activation or self.batchnorm

    def fold_into(
        self, ctx: Context, weight: np.ndarray, bias: np.ndarray | None, group: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """`weight` [C, O/group, KH, KW] and `bias` with the batchnorm folded in (float64)."""
        if self.batchnorm is None:
            return weight, bias
        coefficients = batchnorm_coefficients(self.batchnorm, ctx)
        assert coefficients is not None  # checked by `after`
        scale, shift = coefficients
        channels, group_outputs = weight.shape[:2]
        per_output = scale.reshape(group, 1, group_outputs, 1, 1)
        grouped = weight.astype(np.float64).reshape(group, channels // group, group_outputs, -1)
        folded = (grouped * per_output[..., 0]).reshape(weight.shape)
        base = np.zeros_like(scale) if bias is None else np.asarray(bias, np.float64)
        return folded, base * scale + shift


def _sole_user(value: SSAValue) -> Operation | None:
    use = value.first_use
    return use.operation if use is not None and value.has_one_use() else None


def lower_conv_transpose(
    op: conv.ConvTransposeOp, ctx: Context, epilogue: Epilogue | None = None
) -> list[Operation]:
    """The ops (not yet inserted) computing `op` and `epilogue` from phase convs; the last
    one's result replaces that of `epilogue.last` (or `op`). Raises PassFailedException if
    `op`'s weight or bias is not a constant."""
    epilogue = epilogue or Epilogue(None, None)
    weight = constant_value(ctx, op.weight)
    bias = constant_value(ctx, op.bias)
    if weight is None or (op.bias is not None and bias is None):
        raise PassFailedException(
            f"conv-lower-conv-transpose: {_describe(op)} has a weight or bias computed at run "
            "time; only constant weights and biases can be compiled"
        )
    weight, bias = epilogue.fold_into(ctx, weight, bias, op.group.value.data)
    n, _, height, width = tensor_shape(op.input)
    _, outputs, out_h, out_w = tensor_shape(op.output)
    strides, dilations = _ints(op.strides), _ints(op.dilations)
    pads = _ints(op.pads)
    group = op.group.value.data
    kernel = tensor_shape(op.weight)[2:]
    plans = [
        plan_axis(size, kernel[i], strides[i], dilations[i], pads[i], (out_h, out_w)[i])
        for i, size in enumerate((height, width))
    ]
    name = op.output.name_hint or "conv_transpose"
    onnx_name = op.attributes.get(ONNX_NAME)
    new_ops: list[Operation] = []
    bias_value = None
    if bias is not None:
        bias_constant = new_constant(ctx, f"{name}.bias", bias)
        new_ops.append(bias_constant)
        bias_value = bias_constant.output
    cropped: dict[tuple[int, ...], SSAValue] = {}
    phases: list[SSAValue] = []
    for first_h, rows in enumerate(plans[0]):
        for first_w, cols in enumerate(plans[1]):
            suffix = f"phase{first_h}x{first_w}"
            if not rows.taps or not cols.taps:
                fill = np.zeros(outputs) if bias is None else bias
                block = np.broadcast_to(
                    np.asarray(fill, np.float32).reshape(1, -1, 1, 1),
                    (n, outputs, rows.rows, cols.rows),
                )
                if epilogue.activation is not None:
                    block = reference.evaluate(epilogue.activation, [np.ascontiguousarray(block)])
                constant = new_constant(ctx, f"{name}.{suffix}", np.ascontiguousarray(block))
                new_ops.append(constant)
                phases.append(constant.output)
                continue
            source = _cropped_input(op.input, rows, cols, cropped, new_ops)
            phase_w = new_constant(
                ctx, f"{name}.{suffix}.weight", phase_weight(weight, group, rows, cols)
            )
            phase = conv.Conv2DOp(
                source,
                phase_w.output,
                bias_value,
                strides=(1, 1),
                pads=(rows.pad_begin, cols.pad_begin, rows.pad_end, cols.pad_end),
                dilations=(rows.dilation, cols.dilation),
                group=group,
            )
            phase.output.name_hint = f"{name}_{suffix}"
            if isinstance(onnx_name, StringAttr):
                phase.attributes[ONNX_NAME] = StringAttr(f"{onnx_name.data}/{suffix}")
            new_ops += [phase_w, phase]
            phases.append(phase.output)
            if epilogue.activation is not None:
                activated = conv.ActivationOp.create(
                    operands=[phase.output],
                    result_types=[phase.output.type],
                    properties=dict(epilogue.activation.properties),
                )
                new_ops.append(activated)
                phases[-1] = activated.results[0]
    if strides == (1, 1):
        return new_ops  # one phase, already exactly the output
    interleave = conv.InterleaveOp(phases, strides, (out_h, out_w))
    interleave.output.name_hint = name
    return [*new_ops, interleave]


def _cropped_input(
    value: SSAValue,
    rows: AxisPhase,
    cols: AxisPhase,
    cropped: dict[tuple[int, ...], SSAValue],
    new_ops: list[Operation],
) -> SSAValue:
    """`value`, with the rows and columns a phase drops cut off by a `conv.pad` (made once per
    distinct crop)."""
    crop = (rows.crop_begin, cols.crop_begin, rows.crop_end, cols.crop_end)
    if not any(crop):
        return value
    if crop not in cropped:
        pad = conv.PadOp(value, [0, 0, -crop[0], -crop[1], 0, 0, -crop[2], -crop[3]])
        new_ops.append(pad)
        cropped[crop] = pad.output
    return cropped[crop]


def _ints(attr) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.iter_values())


def _describe(op: conv.ConvTransposeOp) -> str:
    onnx_name = op.attributes.get(ONNX_NAME)
    if isinstance(onnx_name, StringAttr):
        return f"'{op.name}' (node '{onnx_name.data}')"
    return f"'{op.name}'"


@dataclass(frozen=True)
class LowerConvTranspose(RewritePattern):
    """Replace a `conv.conv_transpose` by its phase convs and their interleave."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: conv.ConvTransposeOp, rewriter: PatternRewriter) -> None:
        epilogue = Epilogue.after(op, self.ctx)
        new_ops = lower_conv_transpose(op, self.ctx, epilogue)
        dead = [op.weight, op.bias]
        if epilogue.batchnorm is not None:
            dead += epilogue.batchnorm.operands[1:]
        rewriter.insert(new_ops, InsertPoint.before(op))
        last = epilogue.last or op
        rewriter.replace_all_uses_with(last.results[0], new_ops[-1].results[0])
        for absorbed in (epilogue.activation, epilogue.batchnorm, op):
            if absorbed is not None:
                rewriter.erase(absorbed)
        erase_dead_constants(dead, rewriter)


def lower_conv_transposes(module: ModuleOp, ctx: Context) -> None:
    """Rewrite every `conv.conv_transpose` of `module` (see the module docstring)."""
    PatternRewriteWalker(LowerConvTranspose(ctx), apply_recursively=False).rewrite_module(module)


@dataclass(frozen=True)
class LowerConvTransposePass(ModulePass):
    """Transposed convs -> phase `conv.conv2d`s + `conv.interleave` (see the module doc)."""

    name = "conv-lower-conv-transpose"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        lower_conv_transposes(op, ctx)
