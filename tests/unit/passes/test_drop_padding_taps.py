"""conv-drop-padding-taps: which taps are live, and cut convs compute what the full ones do
(numpy reference, and natively against onnxruntime for DeepLabV3's atrous case)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convir import reference
from convir.dialects import conv, make_context
from convir.dialects.shapes import tensor_shape
from convir.importer.onnx import import_onnx
from passes.drop_padding_taps import DropPaddingTapsPass, KeptTaps, kept_taps


@pytest.mark.parametrize(
    ("axis", "expected"),
    [
        # (size, out_size, kernel, stride, dilation, pads)
        ((14, 14, 3, 1, 36, (36, 36)), KeptTaps(1, 1, 0, 0)),
        ((14, 14, 3, 1, 12, (12, 12)), KeptTaps(0, 2, 12, 12)),  # every tap live somewhere
        ((6, 6, 3, 1, 8, (8, 8)), KeptTaps(1, 1, 0, 0)),
        ((4, 4, 5, 1, 1, (2, 2)), KeptTaps(0, 4, 2, 2)),  # an ordinary padded conv
        ((3, 2, 7, 2, 1, (3, 3)), KeptTaps(1, 5, 2, 2)),  # stride 2: taps 0 and 6 never land
        ((2, 1, 3, 4, 1, (4, 0)), None),  # no tap reads the input at all
    ],
)
def test_kept_taps(axis, expected) -> None:
    assert kept_taps(*axis) == expected


def conv_model(
    x_shape, w_shape, *, pads, dilations, strides=(1, 1), group=1, weight=None
) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = rng.standard_normal(w_shape).astype(np.float32) if weight is None else weight
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        pads=list(pads),
        dilations=list(dilations),
        strides=list(strides),
        group=group,
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def with_inf_in_dead_taps(w_shape) -> np.ndarray:
    """Weights whose corner taps are Inf: they read only padding, so must not matter."""
    w = np.random.default_rng(5).standard_normal(w_shape).astype(np.float32)
    w[:, :, 0, 0] = np.inf
    return w


CASES = {
    "atrous_36": (((1, 5, 14, 14), (3, 5, 3, 3)), dict(pads=[36] * 4, dilations=[36, 36])),
    "rows_only": (((1, 2, 6, 20), (3, 2, 3, 3)), dict(pads=[8, 1, 8, 1], dilations=[8, 1])),
    "strided": (((1, 3, 3, 9), (4, 3, 7, 7)), dict(pads=[3] * 4, dilations=[1, 1], strides=[2, 2])),
    "depthwise": (((1, 4, 5, 5), (4, 1, 3, 3)), dict(pads=[6] * 4, dilations=[6, 6], group=4)),
    "inf_in_dead_taps": (
        ((1, 2, 7, 7), (3, 2, 3, 3)),
        dict(pads=[9] * 4, dilations=[9, 9], weight=with_inf_in_dead_taps((3, 2, 3, 3))),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_cut_convs_compute_what_the_full_ones_compute(name: str) -> None:
    (x_shape, w_shape), attributes = CASES[name]
    ctx = make_context()
    module = import_onnx(conv_model(x_shape, w_shape, **attributes), ctx=ctx)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    expected = reference.run(module, [x], ctx=ctx)
    DropPaddingTapsPass().apply(ctx, module)
    module.verify()
    (cut,) = [op for op in module.walk() if isinstance(op, conv.Conv2DOp)]
    assert tensor_shape(cut.weight)[2:] != tuple(w_shape[2:]), "no tap was cut"
    actual = reference.run(module, [x], ctx=ctx)
    for key, value in expected.items():
        assert np.isfinite(value).all()
        np.testing.assert_array_equal(actual[key], value)


def test_atrous_conv_compiles_as_a_1x1_and_matches_onnxruntime(tmp_path) -> None:
    """DeepLabV3's case end to end: dilation 24 on 14x14, 20 channels (not a multiple of X)."""
    import onnxruntime as ort

    import convir

    model = conv_model((1, 20, 14, 14), (16, 20, 3, 3), pads=[24] * 4, dilations=[24, 24])
    x = np.random.default_rng(2).standard_normal((1, 20, 14, 14)).astype(np.float32)
    (expected,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    compiled = convir.compile(model, cache_dir=tmp_path)
    np.testing.assert_allclose(compiled.run({"x": x})["y"], expected, rtol=1e-5, atol=1e-5)


def test_a_stem_conv_in_nchwc_is_cut_like_its_nchw_form() -> None:
    """After layout conversion a stem conv reads NCHW and writes NCHWc (a 5-D output): the pass
    takes rows and columns from dims 2 and 3 of either (it once unpacked 4 and crashed there,
    which broke `bench layers` and the tuner on every NCHW-input stem)."""
    from passes.convert_layout import ConvertLayoutPass

    (x_shape, w_shape), attributes = CASES["strided"]
    ctx = make_context()
    module = import_onnx(conv_model(x_shape, w_shape, **attributes), ctx=ctx)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    expected = reference.run(module, [x], ctx=ctx)
    ConvertLayoutPass().apply(ctx, module)
    (stem,) = [op for op in module.walk() if isinstance(op, conv.Conv2DOp)]
    assert len(tensor_shape(stem.input)) == 4 and len(tensor_shape(stem.output)) == 5
    DropPaddingTapsPass().apply(ctx, module)
    module.verify()
    (cut,) = [op for op in module.walk() if isinstance(op, conv.Conv2DOp)]
    assert tensor_shape(cut.weight)[2:] == (5, 7)  # 3 rows of input: taps 0 and 6 never land
    actual = reference.run(module, [x], ctx=ctx)
    for key, value in expected.items():
        np.testing.assert_allclose(actual[key], value, rtol=1e-6, atol=1e-6)
