"""The warm path: a model file compiled before, unchanged, loads without being read."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

import convir
import convir.importer.onnx
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model


def _model(seed: int = 1) -> onnx.ModelProto:
    return single_node_model(
        "Conv",
        {"x": rand(1, 8, 10, 10)},
        {"w": rand(4, 8, 3, 3, seed=seed), "b": rand(4, seed=seed + 1)},
        pads=[1, 1, 1, 1],
    )


@pytest.fixture
def imports(monkeypatch) -> list[str]:
    """Every model convir imports from now on."""
    seen: list[str] = []
    original = convir.importer.onnx.import_onnx

    def counting(model, *args, **kwargs):
        seen.append(str(model))
        return original(model, *args, **kwargs)

    monkeypatch.setattr(convir.importer.onnx, "import_onnx", counting)
    return seen


def test_an_unchanged_file_loads_without_being_read(tmp_path, imports) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(_model(), path)
    x = rand(1, 8, 10, 10, seed=3)
    cold = convir.compile(path, cache_dir=tmp_path / "cache")
    assert len(imports) == 1
    warm = convir.compile(path, cache_dir=tmp_path / "cache", threads=1)
    assert len(imports) == 1, "the warm compile did not import the model"
    assert warm.memory_report()["weights_bytes"] == cold.memory_report()["weights_bytes"]
    np.testing.assert_array_equal(warm.run({"x": x})["y"], cold.run({"x": x})["y"])
    assert_close(warm.run({"x": x})["y"], run_onnxruntime(_model(), {"x": x})[0])


def test_a_changed_file_or_other_options_compile_again(tmp_path, imports) -> None:
    path = tmp_path / "model.onnx"
    cache = tmp_path / "cache"
    onnx.save(_model(), path)
    convir.compile(path, cache_dir=cache)
    convir.compile(path, cache_dir=cache, block=4)
    assert len(imports) == 2, "another block is another compile"
    onnx.save(_model(seed=5), path)
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000))
    x = rand(1, 8, 10, 10, seed=4)
    changed = convir.compile(path, cache_dir=cache)
    assert len(imports) == 3, "the rewritten file was read"
    assert_close(changed.run({"x": x})["y"], run_onnxruntime(_model(seed=5), {"x": x})[0])


def test_a_damaged_record_is_ignored(tmp_path, imports) -> None:
    path = tmp_path / "model.onnx"
    cache = tmp_path / "cache"
    onnx.save(_model(), path)
    convir.compile(path, cache_dir=cache)
    for record in (cache / "files").glob("*.json"):
        record.write_text("{not json")
    x = rand(1, 8, 10, 10, seed=5)
    again = convir.compile(path, cache_dir=cache)
    assert len(imports) == 2
    assert_close(again.run({"x": x})["y"], run_onnxruntime(_model(), {"x": x})[0])
