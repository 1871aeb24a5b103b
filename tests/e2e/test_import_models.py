"""Whole models: the six built-in networks and real exported models import, and the numpy
reference run of their IR matches onnxruntime (max abs error <= 1e-4 x max |output|)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convir import reference
from convir.dialects import make_context
from convir.importer.onnx import import_onnx
from convir.models import MODELS, build
from tests.onnx_cases import assert_close, run_onnxruntime

DATA = Path(__file__).parent.parent / "data"
FIXTURES = sorted(p.stem for p in DATA.glob("*.onnx"))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "vgg16" else n for n in MODELS]
)
def test_builtin_model_matches_onnxruntime(name: str) -> None:
    model = build(name, size=224)
    ctx = make_context()
    module = import_onnx(model, ctx=ctx)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    ours = reference.run(module, {"input": x}, ctx=ctx)["output"]
    assert_close(ours, run_onnxruntime(model, {"input": x})[0])


@pytest.mark.parametrize("name", FIXTURES)
def test_exported_model_matches_onnxruntime(name: str) -> None:
    path = DATA / f"{name}.onnx"
    stored = np.load(DATA / f"{name}.npz")
    ctx = make_context()
    module = import_onnx(path, ctx=ctx)
    (ours,) = reference.run(module, [stored["input"]], ctx=ctx).values()
    assert_close(ours, stored["output"])
    import onnx

    model = onnx.load(path)
    feed = {model.graph.input[0].name: stored["input"]}
    assert_close(ours, run_onnxruntime(model, feed)[0])


def test_fixtures_cover_both_export_kinds() -> None:
    assert any(n.endswith("opset17") for n in FIXTURES)
    assert any(n.endswith("opset9") for n in FIXTURES)


def test_batch_override_runs_the_model_at_that_batch() -> None:
    model = build("resnet18", size=64)
    ctx = make_context()
    module = import_onnx(model, batch=3, ctx=ctx)
    x = np.random.default_rng(2).standard_normal((3, 3, 64, 64)).astype(np.float32)
    ours = reference.run(module, {"input": x}, ctx=ctx)["output"]
    assert ours.shape == (3, 1000)
    assert_close(ours, run_onnxruntime(build("resnet18", size=64, batch=3), {"input": x})[0])
