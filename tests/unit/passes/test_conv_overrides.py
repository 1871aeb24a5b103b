"""The syntax of per-conv overrides and how keys resolve to convs."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import StringAttr
from xdsl.utils.exceptions import PassFailedException

from convir.dialects.conv_names import conv_ops
from passes.conv_overrides import format_tile, parse_algorithms, parse_tiles, resolve
from tests.unit.passes.conv_ir import conv_module, only_conv


def test_algorithms_parse() -> None:
    assert parse_algorithms("") == {}
    assert parse_algorithms(" conv_3 = im2col, /layer1/conv1/Conv=direct ,all=direct,") == {
        "conv_3": "im2col",
        "/layer1/conv1/Conv": "direct",
        "all": "direct",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv_3", "'conv_3' is not CONV=ALGORITHM"),
        ("=direct", "'=direct' is not CONV=ALGORITHM"),
        ("conv_3=", "'conv_3=' is not CONV=ALGORITHM"),
        ("conv_3=direct,conv_3=im2col", "'conv_3=im2col': 'conv_3' is given twice"),
    ],
)
def test_malformed_algorithms_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_algorithms(text)


def test_tiles_parse() -> None:
    tiles = parse_tiles("conv_3:ow_block=4, oc_blocks=2; scope:conv:ow_block=1;")
    assert tiles == {"conv_3": {"ow_block": 4, "oc_blocks": 2}, "scope:conv": {"ow_block": 1}}
    assert format_tile("conv_3", tiles["conv_3"]) == "conv_3:ow_block=4,oc_blocks=2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ow_block=4", "'ow_block=4' is not CONV:KNOB=VALUE"),
        ("conv_3:", "'conv_3:' is not CONV:KNOB=VALUE"),
        ("conv_3:ow_block=four", "'ow_block=four' is not KNOB=INTEGER >= 1"),
        ("conv_3:ow_block=-1", "'ow_block=-1' is not KNOB=INTEGER >= 1"),
        ("conv_3:ow_block", "'ow_block' is not KNOB=INTEGER"),
        ("conv_3:ow_block=1,ow_block=2", "'ow_block' is given twice"),
        ("conv_3:ow_block=1;conv_3:oc_blocks=2", "'conv_3' is given twice"),
    ],
)
def test_malformed_tiles_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tiles(text)


def test_keys_resolve_by_convir_name_and_onnx_name() -> None:
    module = conv_module(c=16, o=16, attributes='convir.name = "conv_0", onnx.name = "/a", ')
    op = only_conv(module)
    resolved = resolve(conv_ops(module), {"conv_0": "conv_0=x"}, "where")
    assert resolved == {"conv_0": op}
    assert resolve(conv_ops(module), {"/a": "/a=x"}, "where") == {"/a": op}


def test_a_key_naming_two_convs_is_ambiguous() -> None:
    module = conv_module(c=16, o=16, attributes='onnx.name = "/dup", ')
    op = only_conv(module)
    op.parent_block().insert_op_after(op.clone(), op)
    convs = conv_ops(module)
    assert [c.attributes["onnx.name"] for c in convs] == [StringAttr("/dup")] * 2
    with pytest.raises(PassFailedException, match="where '/dup=x': '/dup' names 2 convs"):
        resolve(convs, {"/dup": "/dup=x"}, "where")
