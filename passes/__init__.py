"""Graph passes: conv dialect -> conv dialect, one pass per file (DESIGN §1).

`CONV_PASSES` maps each pass name to a factory returning its class, as `xDSLOptMain` expects.
"""

from collections.abc import Callable

from xdsl.passes import ModulePass


def _concat_in_place() -> type[ModulePass]:
    from passes.concat_in_place import ConcatInPlacePass

    return ConcatInPlacePass


def _convert_layout() -> type[ModulePass]:
    from passes.convert_layout import ConvertLayoutPass

    return ConvertLayoutPass


def _drop_padding_taps() -> type[ModulePass]:
    from passes.drop_padding_taps import DropPaddingTapsPass

    return DropPaddingTapsPass


def _fold_batchnorm() -> type[ModulePass]:
    from passes.fold_batchnorm import FoldBatchNormPass

    return FoldBatchNormPass


def _fold_constants() -> type[ModulePass]:
    from passes.fold_constants import FoldConstantsPass

    return FoldConstantsPass


def _fuse_epilogue() -> type[ModulePass]:
    from passes.fuse_epilogue import FuseEpiloguePass

    return FuseEpiloguePass


def _fuse_layers() -> type[ModulePass]:
    from passes.fuse_layers import FuseLayersPass

    return FuseLayersPass


def _lower_conv_transpose() -> type[ModulePass]:
    from passes.lower_conv_transpose import LowerConvTransposePass

    return LowerConvTransposePass


def _plan_memory() -> type[ModulePass]:
    from passes.plan_memory import PlanMemoryPass

    return PlanMemoryPass


def _select_algorithm() -> type[ModulePass]:
    from passes.select_algorithm import SelectAlgorithmPass

    return SelectAlgorithmPass


def _tile() -> type[ModulePass]:
    from passes.tile import TilePass

    return TilePass


CONV_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "conv-concat-in-place": _concat_in_place,
    "conv-convert-layout": _convert_layout,
    "conv-drop-padding-taps": _drop_padding_taps,
    "conv-fold-batchnorm": _fold_batchnorm,
    "conv-fold-constants": _fold_constants,
    "conv-fuse-epilogue": _fuse_epilogue,
    "conv-fuse-layers": _fuse_layers,
    "conv-lower-conv-transpose": _lower_conv_transpose,
    "conv-plan-memory": _plan_memory,
    "conv-select-algorithm": _select_algorithm,
    "conv-tile": _tile,
}
