"""ONNX's own backend test suite run through `convir.backend`.

Selected: the node tests of every operator the importer supports, and the pytorch-converted and
pytorch-operator cases built from those operators. Excluded: the cases outside convir's documented
scope (non-float32 data, 1-D/3-D windows, training mode ...) and two known convir limitations
(marked KNOWN BUG / not built yet), each with its reason. Everything else runs; a failure here is
a convir bug.

onnx generates its node tests at the newest opsets (22 to 28) and the pytorch cases at opset 6,
while convir imports opsets 7 to 21. `InRangeOpsetBackend` moves such models into that range with
onnx's version converter, which rewrites attribute-vs-input changes (Add's `broadcast`,
BatchNormalization's `is_test` ...); for float32 the selected operators mean the same on both sides.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import onnx.backend.test
import onnx.numpy_helper
import pytest
from onnx import version_converter

from convir.backend import ConvirBackend, ConvirRep
from convir.importer.onnx import MAX_OPSET, MIN_OPSET


class InRangeOpsetBackend(ConvirBackend):
    """convir's backend, on models first converted into the opsets convir imports."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> ConvirRep:
        """Convert `model` to opset 7 or 21 if it is outside 7..21, then compile it."""
        opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        if not MIN_OPSET <= opset <= MAX_OPSET:
            target = MIN_OPSET if opset < MIN_OPSET else MAX_OPSET
            model = version_converter.convert_version(model, target)
        parameters = _parameter_inputs(model)
        if parameters:
            return ParametersBoundAtRunRep(model, parameters, device, kwargs)
        return super().prepare(model, device, **kwargs)


# Inputs that only set a parameter of the node reading them: the axes of a reduction, the
# scales/sizes/roi of a resize, the shape of an Expand, the condition of a Where. Exporters give
# these as initializers or constants (convir needs static shapes); ONNX's node tests feed them as
# graph inputs, which `ParametersBoundAtRunRep` turns back into initializers.
PARAMETER_OPERANDS = {
    "ReduceMean": (1,),
    "ReduceMax": (1,),
    "ReduceSum": (1,),
    "Resize": (1, 2, 3),
    "Upsample": (1,),
    "Expand": (1,),
    "Where": (0,),
}


def _parameter_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs read only at PARAMETER_OPERANDS positions."""
    graph_inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    as_parameter: set[str] = set()
    as_data: set[str] = set()
    for node in model.graph.node:
        positions = PARAMETER_OPERANDS.get(node.op_type, ())
        for position, name in enumerate(node.input):
            (as_parameter if position in positions else as_data).add(name)
    return sorted((graph_inputs & as_parameter) - as_data)


class ParametersBoundAtRunRep(ConvirRep):
    """A model compiled when it is run, its parameter inputs made initializers of those values."""

    def __init__(
        self, model: onnx.ModelProto, parameters: list[str], device: str, options: dict
    ) -> None:
        self.model, self.parameters, self.device, self.options = model, parameters, device, options

    def run(self, inputs: Any, **kwargs: Any) -> Any:
        names = [i.name for i in self.model.graph.input]
        feed = dict(inputs) if isinstance(inputs, dict) else dict(zip(names, inputs, strict=True))
        bound = onnx.ModelProto()
        bound.CopyFrom(self.model)
        del bound.graph.input[:]
        bound.graph.input.extend(i for i in self.model.graph.input if i.name not in self.parameters)
        bound.graph.initializer.extend(
            onnx.numpy_helper.from_array(np.asarray(feed.pop(name)), name)
            for name in self.parameters
        )
        rep = ConvirBackend.prepare(bound, self.device, **self.options)
        return rep.run(feed, **kwargs)


with warnings.catch_warnings():
    # onnx's case generators overflow and divide by zero on purpose while building the suite
    warnings.simplefilter("ignore", RuntimeWarning)
    backend_test = onnx.backend.test.BackendTest(InRangeOpsetBackend, __name__)

# One include per supported operator: its node tests, then its pytorch-converted/-operator cases.
for pattern in (
    r"^test_(basic_)?conv_|^test_Conv\dd|^test_operator_conv_",  # Conv
    r"^test_convtranspose|^test_ConvTranspose2d|^test_operator_convtranspose_",  # ConvTranspose
    r"^test_batchnorm_|^test_BatchNorm",  # BatchNormalization
    r"^test_relu_|^test_ReLU_",  # Relu
    r"^test_leakyrelu|^test_LeakyReLU",  # LeakyRelu
    r"^test_clip_|^test_operator_clip_",  # Clip
    r"^test_sigmoid_|^test_Sigmoid_",  # Sigmoid
    r"^test_hardsigmoid_",  # HardSigmoid
    r"^test_hardswish_",  # HardSwish
    r"^test_tanh_|^test_Tanh_",  # Tanh
    r"^test_add_|^test_operator_add",  # Add
    r"^test_sub_",  # Sub
    r"^test_mul_",  # Mul
    r"^test_div_",  # Div
    r"^test_sum_",  # Sum
    r"^test_max_|^test_operator_max_",  # Max
    r"^test_min_|^test_operator_min_",  # Min
    r"^test_maxpool_|^test_MaxPool|^test_operator_maxpool_",  # MaxPool
    r"^test_averagepool_|^test_AvgPool",  # AveragePool
    r"^test_globalaveragepool_",  # GlobalAveragePool
    r"^test_globalmaxpool_",  # GlobalMaxPool
    r"^test_gemm_|^test_Linear_cpu|^test_operator_(addmm|mm)_",  # Gemm
    r"^test_matmul_|^test_Linear_no_bias_",  # MatMul
    r"^test_flatten_|^test_operator_(flatten|view)_",  # Flatten
    r"^test_reshape_|^test_PixelShuffle_",  # Reshape
    r"^test_transpose_|^test_operator_permute2_",  # Transpose
    r"^test_concat_|^test_operator_concat2_",  # Concat
    # Softmax
    r"^test_softmax_(axis|default|example|large|negative|functional|lastdim)|^test_Softmax_",
    r"^test_dropout_|^test_training_dropout",  # Dropout
    r"^test_identity_",  # Identity
    r"^test_constant_cpu",  # Constant
    r"^test_constantofshape_",  # ConstantOfShape
    r"^test_unsqueeze_",  # Unsqueeze
    r"^test_squeeze_|^test_operator_index_",  # Squeeze
    r"^test_(constant|edge|reflect|wrap)_pad|^test_\w+Pad2d_|^test_operator_pad_",  # Pad
    r"^test_lrn_",  # LRN
    r"^test_split_(equal|variable|zero|1d|2d)|^test_GLU|^test_operator_chunk_",  # Split
    r"^test_shape_",  # Shape
    r"^test_gather_(0|1|2d|negative)|^test_Embedding",  # Gather
    r"^test_slice_",  # Slice
    r"^test_cast_",  # Cast
    # onnx functions expanded into supported operators only, as exporters combine them
    r"^test_(spacetodepth|depthtospace|rotary_embedding)\w*_expanded_",
    # the math operators of issue 12 (and their expanded function bodies)
    r"^test_erf_",  # Erf
    r"^test_gelu_",  # Gelu (and its expansion into Div/Erf/Add/Mul or Pow/Tanh)
    r"^test_prelu_|^test_PReLU_",  # PRelu
    r"^test_mish_",  # Mish
    r"^test_softplus_|^test_Softplus_",  # Softplus
    r"^test_sqrt_|^test_operator_sqrt_",  # Sqrt
    r"^test_reciprocal_",  # Reciprocal
    r"^test_pow_|^test_operator_pow_",  # Pow
    r"^test_layer_normalization_",  # LayerNormalization
):
    backend_test.include(pattern)

# Outside convir's documented scope: convir.compile raises OnnxImportError naming the node or
# graph input and this reason (the last one fails in onnx's version converter instead).
# non-float32 graph inputs or outputs (integer, float16, float64, bool)
backend_test.exclude(r"^test_(add|sub|mul|div|max|min)_(u?int\d+|float16|float64)")
# int8 data
backend_test.exclude(r"^test_clip_default_int8_")
# uint8 data
backend_test.exclude(r"^test_maxpool_2d_uint8_")
# float64 data (PyTorch exports of double-precision additions)
backend_test.exclude(r"^test_operator_add(_|constant_)")
# int64 indices fed at run time
backend_test.exclude(r"^test_gather_|^test_Embedding")
# int64 output: Shape's result is a graph output instead of folding into a constant
backend_test.exclude(r"^test_shape_")
# every case casts run-time data from or to a type other than float32
backend_test.exclude(r"^test_cast_")
# shape, pads, axes, starts/ends or split sizes fed as int64 graph inputs: shapes are dynamic
backend_test.exclude(r"^test_(reshape|slice|squeeze|unsqueeze|constant_pad)_")
# split sizes fed as an int64 graph input: dynamic shapes
backend_test.exclude(r"^test_split_(variable_parts|zero_size_splits)_")
# ConstantOfShape's shape fed as an int64 graph input: a dynamic shape
backend_test.exclude(r"^test_constantofshape_")
# position ids fed as an int64 graph input
backend_test.exclude(r"^test_rotary_embedding_(3d_input|expanded|interleaved|with_)")
# a zero-size Split output (rotary_dim equals the head size): zero-size tensors are unsupported
backend_test.exclude(r"^test_rotary_embedding_no_position_ids(_interleaved)?_expanded_")
# Clip's min/max fed at run time; convir needs them constant
backend_test.exclude(
    r"^test_clip_(default_(max|min)_|example_|inbounds_|min_greater_than_max_|outbounds_"
    r"|splitbounds_)?cpu$"
)
# Dropout in training mode (the flag is a bool graph input)
backend_test.exclude(r"^test_training_dropout")
# BatchNormalization in training mode
backend_test.exclude(r"^test_batchnorm_\w*training_mode")
# Dropout's mask output is not computed
backend_test.exclude(r"^test_dropout_default_mask")
# MaxPool's argmax output (and storage_order=1) is not computed
backend_test.exclude(r"^test_maxpool_with_argmax_")
# 1-D and 3-D convolutions and pooling: only 2-D windows are supported (PyTorch's AvgPool1d
# passes: it is exported as a 2-D AveragePool between Unsqueeze and Squeeze)
backend_test.exclude(
    r"^test_(maxpool|averagepool)_[13]d_|^test_(Conv|MaxPool)[13]d|^test_AvgPool3d"
)
# a 1-D max pooling (PyTorch's max_pool1d)
backend_test.exclude(r"^test_operator_maxpool_")
# reflect, edge and wrap pads (and their int32 data): only constant padding is supported
backend_test.exclude(r"^test_(edge|reflect|wrap)_pad_|^test_(Reflection|Replication)Pad2d_")
# a reflect pad (PyTorch's F.pad(mode="reflect"))
backend_test.exclude(r"^test_operator_pad_")
# MatMul of rank other than 2 (1-D operands, batched and broadcast MatMul)
backend_test.exclude(r"^test_matmul_(1d|3d|4d|bcast)")
# optional and sequence inputs: only tensors are supported
backend_test.exclude(r"^test_identity_(opt|sequence)_")
# expansions through Less, Where, CastLike, ReduceMax or Exp, which convir does not support
backend_test.exclude(r"^test_(leakyrelu|softmax)_\w*expanded|^test_(hardsigmoid|relu)\w*_ver18_")
# expansions through Less and Where, which convir does not support
backend_test.exclude(
    r"^test_clip_(default_(max|min)_|example_|inbounds_|min_greater_than_max_|outbounds_"
    r"|splitbounds_)?expanded_"
)
# onnx's version converter has no adapter to take GlobalMaxPool-22 down to opset 21
backend_test.exclude(r"^test_globalmaxpool_")
# KNOWN BUG, not a scope limit: correct, but compiling takes ~16 minutes (17 M chars of LLVM IR)
# because the pooling kernel unrolls every tap of its 60x80 dilated window in every border run.
backend_test.exclude(r"^test_MaxPool2d_stride_padding_dilation_")
# Weights fed at run time (a graph input, not an initializer): the direct algorithm packs weights
# at compile time and refuses these convs with a clear error; run-time packing is not built yet.
backend_test.exclude(r"^test_(basic_conv_with|basic_conv_without|conv_with)_")
# ConvTranspose's node tests all feed the weight as a graph input, which the native path refuses
# for the same reason (conv-lower-conv-transpose needs it constant to split it into phase
# kernels); tests/e2e/test_conv_transpose.py runs these same cases with the weight made an
# initializer. The 1-D and 3-D ones are outside the 2-D scope as well.
backend_test.exclude(r"^test_convtranspose_?")

# Math operators of issue 12 (Erf, Gelu, PRelu, Mish, Softplus, Sqrt, Reciprocal, Pow,
# LayerNormalization): the cases outside what convir imports, each with its reason.
# Pow's exponent is a graph input: convir needs a constant exponent (models raise to 2, 0.5, 3)
backend_test.exclude(r"^test_pow_(bcast_array|bcast_scalar|example|types_\w+)_cpu|^test_pow_cpu")
backend_test.exclude(r"^test_operator_pow_")
# every case also has LayerNormalization's Mean and InvStdDev (training-time statistics) as graph
# outputs, which convir does not compute (the expanded ones also derive axes with Size/Range)
backend_test.exclude(r"^test_layer_normalization_")
# the expanded Softplus (opset 18 function body) uses Exp and Log, which convir does not import
backend_test.exclude(r"^test_softplus_(example_)?expanded_ver18_")
# the expanded PRelu selects with Less and Where, which convir does not import
backend_test.exclude(r"^test_prelu_\w+_expanded_")
# Reductions, resampling and broadcasting (issue 12): includes, then their excludes.
for pattern in (
    r"^test_reduce_(mean|max|sum)_(?!square)|^test_operator_reduced_(mean|sum)",  # ReduceX
    r"^test_resize_|^test_upsample_",  # Resize, Upsample
    r"^test_expand_",  # Expand
    r"^test_where_",  # Where
):
    backend_test.include(pattern)
# bool data
backend_test.exclude(r"^test_reduce_max_(bool_inputs|empty_set_bool)_")
# reductions over zero-size axes: the input has a dynamic (and zero) non-batch dimension
backend_test.exclude(r"^test_reduce_(max|sum)_empty_set")
# cubic interpolation, antialiased downscaling and tf_crop_and_resize are not supported (refused
# at import naming the node)
backend_test.exclude(r"^test_resize_\w*(cubic|antialias|tf_crop_and_resize)")
# onnx's reference divides align_corners coordinates by the unrounded scaled length (2.4 - 1)
# where ONNX Runtime, convir's oracle, divides by the output extent (2 - 1): they disagree on
# this case (input 4 wide, scale 0.6) and convir follows ONNX Runtime
backend_test.exclude(r"^test_resize_downsample_scales_linear_align_corners_")
# Where over run-time data with a condition mixing true and false (and, in the long example,
# int64 data): only Where on constants or with a uniform constant condition is supported
backend_test.exclude(r"^test_where_(long_)?example_")

with warnings.catch_warnings():
    # enable_report marks every case `onnx_coverage`, a mark this repository does not register
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    test_cases = backend_test.enable_report().test_cases
globals().update(test_cases)
