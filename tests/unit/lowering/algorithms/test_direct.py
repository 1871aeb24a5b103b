"""The direct convolution, compiled natively, against the numpy reference."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convir import reference
from convir.compiler import compile, lower
from convir.target import Target
from tests.onnx_cases import rand, single_node_model


def _conv_model(x, w, b, **attributes):
    initializers = {"w": w} | ({"b": b} if b is not None else {})
    return single_node_model("Conv", {"x": x}, initializers, **attributes)


@st.composite
def conv_cases(draw):
    group = draw(st.sampled_from([1, 1, 2, 3]))
    c = group * draw(st.integers(1, 5))
    o = group * draw(st.integers(1, 11))  # per-group counts not multiples of the vector width
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 12))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 1000))
    return n, c, h, w, o, group, (kh, kw), (sh, sw), pads, (dh, dw), bias, seed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases())
def test_direct_conv_matches_reference(case, tmp_path_factory) -> None:
    n, c, h, w, o, group, kernel, strides, pads, dilations, bias, seed = case
    x = rand(n, c, h, w, seed=seed)
    weight = rand(o, c // group, *kernel, seed=seed + 1)
    b = rand(o, seed=seed + 2) if bias else None
    attributes = dict(strides=list(strides), pads=pads, dilations=list(dilations), group=group)
    model = _conv_model(x, weight, b, **attributes)
    compiled = compile(model, cache_dir=tmp_path_factory.getbasetemp() / "cache")
    expected = reference.conv2d(x, weight, b, **attributes)
    for threads in (1, 2):
        compiled.threads = threads
        np.testing.assert_allclose(compiled.run({"x": x})["y"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target_name", ["x86-avx2", "x86-avx512"])
def test_conv_kernel_uses_packed_fma(target_name: str) -> None:
    from lowering.codegen import assembly

    target = Target.preset(target_name)
    model = _conv_model(rand(1, 8, 10, 10), rand(16, 8, 3, 3), rand(16), pads=[1, 1, 1, 1])
    asm = assembly(lower(model, target=target, stop="llvm-ir").llvm_ir, target)
    register = "ymm" if target.vector_width == 8 else "zmm"
    assert re.search(rf"vfmadd\d+ps\s+[^\n]*%{register}", asm), "no packed FMA on " + register


def test_output_written_and_not_trivially_zero() -> None:
    x, weight = rand(1, 3, 5, 5), rand(9, 3, 3, 3)
    compiled = compile(_conv_model(x, weight, None))
    y = compiled.run({"x": x})["y"]
    assert np.abs(y).max() > 0.1
    np.testing.assert_allclose(y, reference.conv2d(x, weight), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("channels", "group", "block"),
    [(6, 3, None), (5, 1, 8), (20, 1, 16)],  # NCHW grouped; NCHW image -> NCHWc; NCHWc
)
@pytest.mark.parametrize(("strides", "dilations"), [([1, 1], [1, 1]), ([1, 2], [2, 2])])
def test_border_tiles_read_no_padding(channels, group, block, strides, dilations, tmp_path):
    # Wide enough for left border tiles, an unguarded interior loop, right border tiles and a
    # remainder tile; asymmetric pads so that the rows' tap ranges differ at top and bottom.
    x = rand(2, channels, 9, 44, seed=11)  # OW 47 or 22: tiles of 5 and a remainder of 2
    weight = rand(12, channels // group, 3, 5, seed=12)
    bias = rand(12, seed=13)
    attributes = dict(strides=strides, pads=[2, 3, 1, 4], dilations=dilations, group=group)
    model = _conv_model(x, weight, bias, **attributes)
    compiled = compile(model, block=block, algorithms={"all": "direct"}, cache_dir=tmp_path)
    expected = reference.conv2d(x, weight, bias, **attributes)
    np.testing.assert_allclose(compiled.run({"x": x})["y"], expected, rtol=1e-4, atol=1e-5)
