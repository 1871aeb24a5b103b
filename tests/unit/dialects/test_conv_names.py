"""Stable conv names: given at import, kept through the pipeline, filled in where missing."""

from __future__ import annotations

from pathlib import Path

from xdsl.dialects.builtin import StringAttr

from convir.compiler import lower
from convir.dialects.conv_names import CONV_NAME, ONNX_NAME, conv_name, conv_ops, name_convs
from convir.importer.onnx import import_onnx
from tests.unit.passes.conv_ir import conv_module, only_conv

MODEL = Path(__file__).parents[2] / "data" / "torch_resnet_mini_opset17.onnx"


def test_the_importer_names_convs_in_graph_order_with_their_onnx_names() -> None:
    convs = conv_ops(import_onnx(MODEL))
    assert [conv_name(op) for op in convs] == [f"conv_{i}" for i in range(len(convs))]
    assert convs[0].attributes[ONNX_NAME] == StringAttr("/conv1/Conv")


def test_names_survive_the_pipeline_up_to_the_schedule() -> None:
    imported = [(conv_name(op), op.attributes[ONNX_NAME]) for op in conv_ops(import_onnx(MODEL))]
    scheduled = conv_ops(lower(MODEL, stop="scheduled").module)
    assert [(conv_name(op), op.attributes[ONNX_NAME]) for op in scheduled] == imported


def test_missing_names_take_the_position_or_the_next_free_number() -> None:
    module = conv_module(c=8, o=8, attributes='onnx.name = "/a", convir.name = "conv_1", ')
    named = only_conv(module)
    for _ in range(2):
        unnamed = named.clone()
        del unnamed.attributes[CONV_NAME]
        named.parent_block().insert_op_after(unnamed, named)
    convs = name_convs(module)
    # positions 0, 1, 2: the first keeps conv_1; position 1 is taken, so conv_2; then conv_3
    assert [conv_name(op) for op in convs] == ["conv_1", "conv_2", "conv_3"]
    assert list(convs[1].attributes) == [CONV_NAME, ONNX_NAME]
