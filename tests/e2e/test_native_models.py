"""Whole models compiled natively match onnxruntime at 1 and 2 threads
(max abs error <= 1e-4 x max |output|)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import convir
from convir.models import MODELS, build
from convir.target import Target
from tests.onnx_cases import assert_close, run_onnxruntime

DATA = Path(__file__).parent.parent / "data"
FIXTURES = sorted(p.stem for p in DATA.glob("*.onnx"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convir-cache")


@pytest.mark.parametrize("name", list(MODELS))
def test_builtin_model_natively(name: str, cache_dir: Path) -> None:
    size = 64 if name == "vgg16" else 96  # the same kernels as at 224, in a fraction of the time
    model = build(name, size=size)
    compiled = convir.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(3).standard_normal((1, 3, size, size)).astype(np.float32)
    expected = run_onnxruntime(model, {"input": x})[0]
    for threads in (1, 2):
        compiled.threads = threads
        assert_close(compiled.run({"input": x})["output"], expected)


# The host's own block is test_builtin_model_natively's; the others are emulated (LLVM splits or
# widens their vectors), and must run correctly all the same.
OTHER_BLOCKS = [b for b in (4, 8, 16) if b != Target.host().vector_width]


@pytest.mark.parametrize("block", OTHER_BLOCKS)
@pytest.mark.parametrize("name", list(MODELS))
def test_builtin_model_at_other_nchwc_blocks(name: str, block: int, cache_dir: Path) -> None:
    size = 32 if name == "vgg16" else 64
    model = build(name, size=size)
    compiled = convir.compile(model, cache_dir=cache_dir, block=block)
    x = np.random.default_rng(5).standard_normal((1, 3, size, size)).astype(np.float32)
    expected = run_onnxruntime(model, {"input": x})[0]
    for threads in (1, 2):
        compiled.threads = threads
        assert_close(compiled.run({"input": x})["output"], expected)


@pytest.mark.parametrize("name", FIXTURES)
def test_exported_model_natively(name: str, cache_dir: Path) -> None:
    stored = np.load(DATA / f"{name}.npz")
    compiled = convir.compile(DATA / f"{name}.onnx", cache_dir=cache_dir)
    for threads in (1, 2):
        compiled.threads = threads
        (ours,) = compiled(stored["input"])
        assert_close(ours, stored["output"])


def test_resnet18_at_224_and_memory_report(cache_dir: Path) -> None:
    model = build("resnet18")
    compiled = convir.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(4).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert_close(compiled.run({"input": x})["output"], run_onnxruntime(model, {"input": x})[0])
    report = compiled.memory_report()
    parameters = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    # Packed, channel-padded conv and fc weights (BatchNorm is folded into them).
    matrices = sum(int(np.prod(i.dims)) for i in model.graph.initializer if len(i.dims) in (2, 4))
    assert report["weights_bytes"] >= 4 * matrices
    # ... and convs run by winograd store U = G g Gᵀ, (m + 2)² / 9 floats per weight.
    assert report["weights_bytes"] < 4 * (parameters + _winograd_extra_floats(model)) * 1.5
    # The arena holds at most a few activations at once, not all of them.
    assert 0 < report["arena_bytes"] < 4 * 64 * 112 * 112 * 4


def _winograd_extra_floats(model: onnx.ModelProto) -> int:
    """Floats the winograd convs of `model` (as compiled) store beyond their weights."""
    from convir.compiler import lower
    from convir.dialects.conv import Conv2DOp
    from convir.dialects.shapes import tensor_shape
    from lowering.algorithms.winograd import WinogradSchedule

    extra = 0
    for op in lower(model, stop="scheduled").module.walk():
        if isinstance(op, Conv2DOp) and op.algorithm and op.algorithm.data == "winograd":
            m = WinogradSchedule.from_attr(op.schedule).m
            extra += int(np.prod(tensor_shape(op.weight))) * ((m + 2) ** 2 - 9) // 9
    return extra


def test_inputs_are_checked_before_native_code(cache_dir: Path) -> None:
    model = onnx.load(DATA / "torch_resnet_mini_opset17.onnx")
    compiled = convir.compile(model, cache_dir=cache_dir)
    good = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(ValueError, match=r"input 'input' has shape \[1, 3, 32, 32\]"):
        compiled(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="input 'input' has dtype float64; expected float32"):
        compiled(good.astype(np.float64))
    with pytest.raises(ValueError, match=r"inputs \['x'\] are unknown and \['input'\] are missing"):
        compiled.run({"x": good})
    with pytest.raises(ValueError, match="takes 1 inputs"):
        compiled(good, good)
    assert compiled.input_names == ["input"] and compiled.output_names == ["output"]


def test_concurrent_calls_from_python_threads(cache_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    stored = np.load(DATA / "torch_mobilenet_mini_opset17.npz")
    compiled = convir.compile(DATA / "torch_mobilenet_mini_opset17.onnx", cache_dir=cache_dir)
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal(stored["input"].shape).astype(np.float32) for _ in range(8)]
    expected = [compiled(x)[0] for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda x: compiled(x)[0], inputs * 4))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % len(inputs)])
