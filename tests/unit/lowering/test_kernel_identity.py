"""Kernel identity: two ops share a kernel only if nothing their kernels read differs.

The regression: GoogLeNet's inception4c/branch3.1 and inception4d/branch3.1 (3×3, 64 outputs at
14×14, reading 24 and 32 channels) shared one `direct` kernel at block 16, because the kernel's
name spelt a blocked input by its number of blocks (2 for both); the second conv reduced over 24
channels. The property test builds models holding two ops that differ in exactly one attribute or
logical size, compiles them in both orders, and compares with onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import IntegerAttr, StringAttr
from xdsl.ir import Block

import convir
from convir.dialects import conv
from convir.dialects.shapes import f32_tensor
from lowering.kernels import kernel_identity

BLOCK = 16  # the block of AVX-512 targets: the widest, so the most channel counts share blocks
OPSET = 17


def _model(
    nodes: list[onnx.NodeProto], inputs: dict[str, tuple[int, ...]], weights
) -> onnx.ModelProto:
    """Graph inputs `x<tag>` of the given shapes, one output `y<tag>` per input."""
    outputs = [f"y{name[1:]}" for name in inputs]
    graph = helper.make_graph(
        nodes,
        "pair",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(w, name) for name, w in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


# One op, described by plain fields; `build` turns it into ONNX nodes reading input `x`.
CONV_FIELDS = {
    "c": st.integers(1, 40),
    "o": st.integers(1, 40),
    "h": st.integers(3, 10),
    "w": st.integers(3, 10),
    "k": st.integers(1, 3),
    "stride": st.integers(1, 2),
    "pad": st.integers(0, 1),
    "dilation": st.integers(1, 2),
    "bias": st.booleans(),
    "activation": st.sampled_from(["none", "Relu", "Clip"]),
}
POOL_FIELDS = {
    "c": st.integers(1, 40),
    "h": st.integers(3, 10),
    "w": st.integers(3, 10),
    "kind": st.sampled_from(["MaxPool", "AveragePool"]),
    "k": st.integers(1, 3),
    "stride": st.integers(1, 2),
    "pad": st.integers(0, 1),
    "ceil": st.integers(0, 1),
    "count_include_pad": st.integers(0, 1),
}
ACTIVATION_FIELDS = {
    "c": st.integers(1, 40),
    "h": st.integers(1, 6),
    "w": st.integers(1, 6),
    "kind": st.sampled_from(["Relu", "LeakyRelu", "Clip", "Sigmoid"]),
    "alpha": st.sampled_from([0.01, 0.1, 0.2]),
    "high": st.sampled_from([1.0, 6.0]),
}
KINDS = {"conv": CONV_FIELDS, "pool": POOL_FIELDS, "activation": ACTIVATION_FIELDS}
CONV_ALGORITHMS = ["direct", "im2col", "im2win"]


def _input_shape(spec: dict) -> tuple[int, ...]:
    return (1, spec["c"], spec["h"], spec["w"])


def _nodes(kind: str, spec: dict, tag: str, rng: np.random.Generator):
    """ONNX nodes of `spec` on input `x{tag}`, output `y{tag}`, and their weights."""
    x, y = f"x{tag}", f"y{tag}"
    if kind == "conv":
        weights = {f"w{tag}": rng.standard_normal((spec["o"], spec["c"], spec["k"], spec["k"]))}
        inputs = [x, f"w{tag}"]
        if spec["bias"]:
            weights[f"b{tag}"] = rng.standard_normal(spec["o"])
            inputs.append(f"b{tag}")
        out = y if spec["activation"] == "none" else f"z{tag}"
        nodes = [
            helper.make_node(
                "Conv",
                inputs,
                [out],
                name=f"conv{tag}",
                kernel_shape=[spec["k"]] * 2,
                strides=[spec["stride"]] * 2,
                pads=[spec["pad"]] * 4,
                dilations=[spec["dilation"]] * 2,
            )
        ]
        if spec["activation"] == "Relu":
            nodes.append(helper.make_node("Relu", [out], [y]))
        elif spec["activation"] == "Clip":
            weights[f"lo{tag}"], weights[f"hi{tag}"] = np.array(0.0), np.array(6.0)
            nodes.append(helper.make_node("Clip", [out, f"lo{tag}", f"hi{tag}"], [y]))
        return nodes, weights
    if kind == "pool":
        attributes = {
            "kernel_shape": [spec["k"]] * 2,
            "strides": [spec["stride"]] * 2,
            "pads": [spec["pad"]] * 4,
            "ceil_mode": spec["ceil"],
        }
        if spec["kind"] == "AveragePool":
            attributes["count_include_pad"] = spec["count_include_pad"]
        return [helper.make_node(spec["kind"], [x], [y], **attributes)], {}
    if spec["kind"] == "LeakyRelu":
        return [helper.make_node("LeakyRelu", [x], [y], alpha=spec["alpha"])], {}
    if spec["kind"] == "Clip":
        weights = {f"lo{tag}": np.array(0.0), f"hi{tag}": np.array(spec["high"])}
        return [helper.make_node("Clip", [x, f"lo{tag}", f"hi{tag}"], [y])], weights
    return [helper.make_node(spec["kind"], [x], [y])], {}


def _valid(kind: str, spec: dict) -> bool:
    if kind == "conv":
        reach = spec["dilation"] * (spec["k"] - 1) + 1
        return min(spec["h"], spec["w"]) + 2 * spec["pad"] >= reach
    if kind == "pool":
        return spec["pad"] < spec["k"] and min(spec["h"], spec["w"]) + 2 * spec["pad"] >= spec["k"]
    return True


@st.composite
def op_pair(draw, kind: str):
    """Two specs of `kind`, equal but for one field (channel counts drawn more often: they are
    what a blocked layout hides), both valid."""
    fields = KINDS[kind]
    first = {name: draw(strategy) for name, strategy in fields.items()}
    sizes = [name for name in ("c", "o") if name in fields]
    changed = draw(st.sampled_from(sorted(fields) + sizes * 3))
    second = dict(first, **{changed: draw(fields[changed].filter(lambda v: v != first[changed]))})
    assume(_valid(kind, first) and _valid(kind, second))
    return first, second


def _check(ops: list[tuple[str, dict]], algorithm: str, tmp_path) -> None:
    """Compile one model holding `ops` (each on its own input) and compare with onnxruntime."""
    rng = np.random.default_rng(0)
    nodes, weights, inputs = [], {}, {}
    for tag, (kind, spec) in enumerate(ops):
        more_nodes, more_weights = _nodes(kind, spec, str(tag), rng)
        nodes += more_nodes
        weights |= more_weights
        inputs[f"x{tag}"] = _input_shape(spec)
    weights = {name: w.astype(np.float32) for name, w in weights.items()}
    model = _model(nodes, inputs, weights)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in inputs.items()}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    compiled = convir.compile(model, block=BLOCK, algorithms={"all": algorithm}, cache_dir=tmp_path)
    for (kind, spec), want, have in zip(ops, expected, compiled(*feeds.values()), strict=True):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(
            have, want, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{kind} {spec}"
        )


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(
    pairs=st.tuples(*(op_pair(kind) for kind in sorted(KINDS))),
    algorithm=st.sampled_from(CONV_ALGORITHMS),
)
def test_ops_differing_in_one_field_compile_together_in_both_orders(pairs, algorithm, tmp_path):
    """One model holds a pair of each kind; a second holds each pair in the other order."""
    kinds = sorted(KINDS)
    in_order = [(kind, spec) for kind, pair in zip(kinds, pairs, strict=True) for spec in pair]
    reversed_ = [
        (kind, spec) for kind, pair in zip(kinds, pairs, strict=True) for spec in pair[::-1]
    ]
    _check(in_order, algorithm, tmp_path)
    _check(reversed_, algorithm, tmp_path)


def test_googlenet_branches_reading_24_and_32_channels_get_their_own_kernels(tmp_path) -> None:
    """The pair found in GoogLeNet: 3×3 → 64 at 14×14 on 24 and on 32 input channels."""
    base = {"h": 14, "w": 14, "o": 64, "k": 3, "stride": 1, "pad": 1, "dilation": 1}
    ops = [("conv", dict(base, c=c, bias=True, activation="Relu")) for c in (24, 32)]
    _check(ops, "direct", tmp_path)
    _check(ops[::-1], "direct", tmp_path)


def test_identity_covers_logical_channels_and_ignores_placement() -> None:
    """Two blocked inputs of 24 and 32 channels have the same NCHWc type; the weights tell them
    apart. Names and arena offsets never split a kernel."""
    blocks = [
        Block(arg_types=[f32_tensor((1, 2, 14, 14, 16)), f32_tensor((64, c, 3, 3))])
        for c in (24, 32)
    ]
    ops = [
        conv.Conv2DOp(b.args[0], b.args[1], None, pads=(1,) * 4, output_shape=(1, 4, 14, 14, 16))
        for b in blocks
    ]
    assert kernel_identity(ops[0], 16) != kernel_identity(ops[1], 16)
    renamed = ops[0].clone()
    renamed.attributes["convir.name"] = StringAttr("conv_9")
    renamed.attributes["convir.arena_offset"] = IntegerAttr(4096, 64)
    assert kernel_identity(renamed, 16) == kernel_identity(ops[0], 16)
    assert kernel_identity(ops[0], 16) != kernel_identity(ops[0], 8)
    scheduled = ops[0].clone()
    scheduled.attributes["convir.anything_new"] = IntegerAttr(1, 64)
    assert kernel_identity(scheduled, 16) != kernel_identity(ops[0], 16)
