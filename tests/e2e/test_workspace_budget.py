"""Whole models under a workspace budget (and with every conv pinned to im2win) match
onnxruntime at 1 and 2 threads; memory_report() names each conv's algorithm and workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import convir
from convir.models import MODELS, build
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model

BUDGET = 64 << 10


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convir-cache")


def check_against_onnxruntime(model, size: int, compiled) -> None:
    x = np.random.default_rng(3).standard_normal((1, 3, size, size)).astype(np.float32)
    expected = run_onnxruntime(model, {"input": x})[0]
    for threads in (1, 2):
        compiled.threads = threads
        assert_close(compiled.run({"input": x})["output"], expected)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_builtin_model_within_64KiB_of_workspace_per_conv(name: str, cache_dir: Path) -> None:
    size = 64 if name == "vgg16" else 96
    model = build(name, size=size)
    compiled = convir.compile(model, cache_dir=cache_dir, workspace_budget="64KiB")
    convs = compiled.memory_report()["convs"]
    assert convs and all(entry["workspace_bytes"] <= BUDGET for entry in convs.values())
    check_against_onnxruntime(model, size, compiled)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_builtin_model_with_im2win_wherever_it_applies(name: str, cache_dir: Path) -> None:
    size = 64
    model = build(name, size=size)
    compiled = convir.compile(model, cache_dir=cache_dir, algorithms={"all": "im2win"})
    algorithms = {entry["algorithm"] for entry in compiled.memory_report()["convs"].values()}
    assert "im2win" in algorithms
    check_against_onnxruntime(model, size, compiled)


def test_memory_report_names_each_conv_and_survives_the_warm_cache(tmp_path: Path) -> None:
    model = single_node_model(
        "Conv", {"x": rand(1, 16, 12, 12)}, {"w": rand(24, 16, 3, 3, seed=1)}, pads=[1, 1, 1, 1]
    )
    path = tmp_path / "conv.onnx"
    path.write_bytes(model.SerializeToString())
    reports = []
    for _ in range(2):  # compiled, then loaded from the warm cache
        compiled = convir.compile(path, cache_dir=tmp_path, algorithms={"all": "im2win"})
        reports.append(compiled.memory_report())
    for report in reports:
        ((name, entry),) = report["convs"].items()
        assert name == "conv_0" and entry["algorithm"] == "im2win"
        assert entry["workspace_bytes"] == sum(report["workspace_bytes"].values()) > 0
    tight = convir.compile(path, cache_dir=tmp_path, workspace_budget=0)
    assert tight.memory_report()["convs"]["conv_0"]["workspace_bytes"] == 0


def test_a_malformed_budget_names_the_argument() -> None:
    model = single_node_model("Relu", {"x": rand(1, 2)})
    with pytest.raises(ValueError, match=r"workspace_budget: 'some' is not a byte count"):
        convir.compile(model, workspace_budget="some")
    with pytest.raises(ValueError, match=r"workspace_budget: expected a byte count >= 0"):
        convir.compile(model, workspace_budget=-1)
