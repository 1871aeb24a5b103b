"""Whole models with layer fusion forced on (`fusion="all"`) still match onnxruntime at 1 and 2
threads, and every fused chain shows in `memory_report()` with its workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import convir
from convir.models import build
from tests.onnx_cases import assert_close, run_onnxruntime

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convir-cache")


# Every dw3x3 + 1x1 pair: one per inverted residual block (17),
# one per ShuffleNet unit and one more per downsampling unit (its left branch): 16 + 3.
@pytest.mark.parametrize(("name", "chains"), [("mobilenet_v2", 17), ("shufflenet_v2", 19)])
def test_model_with_every_chain_fused(name: str, chains: int, cache_dir: Path) -> None:
    size = 64
    model = build(name, size=size)
    compiled = convir.compile(model, cache_dir=cache_dir, fusion="all")
    convs = compiled.memory_report()["convs"]
    fused = {key: entry for key, entry in convs.items() if entry["algorithm"] == "fused"}
    assert len(fused) == chains
    assert all(entry["workspace_bytes"] > 0 for entry in fused.values())
    x = np.random.default_rng(3).standard_normal((1, 3, size, size)).astype(np.float32)
    expected = run_onnxruntime(model, {"input": x})[0]
    for threads in (1, 2):
        compiled.threads = threads
        assert_close(compiled.run({"input": x})["output"], expected)
