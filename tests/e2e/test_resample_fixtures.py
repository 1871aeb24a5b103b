"""The reduction and resampling fixtures (tests/data/torch_resample_*, torch_upsample_*) import
into the ops meant for them, and their resizes after convs run on NCHWc. (Their outputs are
compared with the stored onnxruntime outputs by test_import_models and test_native_models.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from convir.compiler import lower
from convir.dialects import conv, make_context
from convir.importer.onnx import import_onnx

DATA = Path(__file__).parent.parent / "data"


def op_counts(name: str) -> Counter[str]:
    module = import_onnx(DATA / f"{name}.onnx", ctx=make_context())
    return Counter(op.name for op in module.walk() if op.name.startswith("conv."))


@pytest.mark.parametrize("name", ["torch_resample_mini_opset17", "torch_resample_mini_opset18"])
def test_resample_fixture_imports_resizes_reductions_and_a_global_pool(name: str) -> None:
    counts = op_counts(name)
    assert counts["conv.resize"] == 3
    assert counts["conv.reduce"] == 2  # the max over channels and the sum over W
    assert counts["conv.global_pool"] == 1  # the mean over H and W


def test_upsample_fixture_imports_resizes_and_a_global_pool() -> None:
    counts = op_counts("torch_upsample_mini_opset9")
    assert counts["conv.resize"] == 2
    assert counts["conv.global_pool"] == 1 and counts["conv.reduce"] == 0


def test_resizes_after_convs_stay_nchwc() -> None:
    lowered = lower(DATA / "torch_resample_mini_opset17.onnx", stop="nchwc", block=8)
    resizes = [op for op in lowered.module.walk() if isinstance(op, conv.ResizeOp)]
    after_convs = [op for op in resizes if isinstance(op.input.owner, conv.Conv2DOp)]
    assert len(after_convs) == 2
    assert all(len(op.input.type.get_shape()) == 5 for op in after_convs)
