"""The kernel emitter of every conv-dialect op that is not a convolution.

`convert-conv-to-loops` looks an op's emitter up by its type here (convolutions go to the
algorithm emitters of `lowering.algorithms`); graph outputs that need a copy use `emit_copy`.
`conv.reshape` and `conv.constant` have no kernel: a reshape aliases its input's buffer and
constants live in the weights.
"""

from __future__ import annotations

from xdsl.ir import Operation

from convir.dialects import conv
from lowering.kernels import KernelEmitter
from lowering.kernels.data_movement import (
    ConcatKernel,
    InterleaveKernel,
    PackKernel,
    PadKernel,
    SliceKernel,
    TransposeKernel,
    UnpackKernel,
)
from lowering.kernels.elementwise import ActivationKernel, BinaryKernel, emit_copy
from lowering.kernels.gemm import GemmKernel
from lowering.kernels.normalization import (
    BatchNormKernel,
    LayerNormKernel,
    LRNKernel,
    SoftmaxKernel,
)
from lowering.kernels.pooling import GlobalPoolKernel, PoolKernel
from lowering.kernels.resampling import ReduceKernel, ResizeKernel

__all__ = ["EMITTERS", "emit_copy"]

EMITTERS: dict[type[Operation], KernelEmitter] = {
    conv.ActivationOp: ActivationKernel(),
    conv.BinaryOp: BinaryKernel(),
    conv.BatchNormOp: BatchNormKernel(),
    conv.PoolOp: PoolKernel(),
    conv.GlobalPoolOp: GlobalPoolKernel(),
    conv.GemmOp: GemmKernel(),
    conv.ConcatOp: ConcatKernel(),
    conv.SliceOp: SliceKernel(),
    conv.TransposeOp: TransposeKernel(),
    conv.PadOp: PadKernel(),
    conv.PackOp: PackKernel(),
    conv.UnpackOp: UnpackKernel(),
    conv.SoftmaxOp: SoftmaxKernel(),
    conv.LRNOp: LRNKernel(),
    conv.LayerNormOp: LayerNormKernel(),
    conv.ReduceOp: ReduceKernel(),
    conv.ResizeOp: ResizeKernel(),
    conv.InterleaveOp: InterleaveKernel(),
}
