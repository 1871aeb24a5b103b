"""convir.compile's model cache: a model whose planned IR, weights, target and compiler code are
unchanged is loaded without emitting or lowering a kernel; anything else compiles afresh."""

from __future__ import annotations

import numpy as np
import pytest

import convir
import lowering.to_llvm
from convir import compiler
from convir.compiler import lower, model_cache_key
from tests.onnx_cases import assert_close, rand, run_onnxruntime, single_node_model


def _model(seed: int = 1):
    return single_node_model(
        "Conv",
        {"x": rand(1, 20, 10, 10)},
        {"w": rand(5, 20, 3, 3, seed=seed), "b": rand(5, seed=seed + 1)},
        pads=[1, 1, 1, 1],
        strides=[2, 1],
    )


def _key(model, **options) -> str:
    return model_cache_key(lower(model, stop="planned", **options))


def test_a_cached_model_is_loaded_without_lowering_a_kernel(tmp_path, monkeypatch) -> None:
    model = _model()
    x = rand(1, 20, 10, 10, seed=7)
    first = convir.compile(model, cache_dir=tmp_path)
    assert first.memory_report()["codegen_peak_rss_bytes"] is not None

    def no_lowering(*args, **kwargs):
        raise AssertionError("a kernel was lowered for a cached model")

    monkeypatch.setattr(lowering.to_llvm, "lower_functions_to_llvm_ir", no_lowering)
    second = convir.compile(model, cache_dir=tmp_path, threads=2)
    assert second.memory_report()["codegen_peak_rss_bytes"] is None
    assert second.memory_report()["weights_bytes"] == first.memory_report()["weights_bytes"]
    expected = run_onnxruntime(model, {"x": x})[0]
    assert_close(second.run({"x": x})["y"], expected)
    np.testing.assert_array_equal(second.run({"x": x})["y"], first.run({"x": x})["y"])


def test_the_key_covers_weights_schedule_block_target_and_code(monkeypatch) -> None:
    model = _model()
    key = _key(model)
    assert _key(model) == key, "deterministic"
    assert _key(_model(seed=3)) != key, "other weights"
    chosen = "direct" if "direct" in str(lower(model, stop="selected").module) else "im2col"
    other = {"direct": "im2col", "im2col": "direct"}[chosen]
    assert _key(model, algorithms={"all": other}) != key
    assert _key(model, block=4) != key
    host = compiler.Target.host()
    assert _key(model, target=host.with_(l2_bytes=host.l2_bytes // 2)) != key
    monkeypatch.setattr(compiler, "code_fingerprint", lambda: "another convir")
    assert _key(model) != key, "a change to convir's own code"


def test_other_weights_compile_afresh_and_run_right(tmp_path) -> None:
    x = rand(1, 20, 10, 10, seed=8)
    for seed in (1, 3):
        model = _model(seed)
        compiled = convir.compile(model, cache_dir=tmp_path)
        # The second model's kernels are the first's: they come from the kernel cache.
        codegen_ran = compiled.memory_report()["codegen_peak_rss_bytes"] is not None
        assert codegen_ran == (seed == 1)
        assert_close(compiled.run({"x": x})["y"], run_onnxruntime(model, {"x": x})[0])


def test_lower_to_llvm_ir_needs_a_planned_module() -> None:
    with pytest.raises(ValueError, match="needs a module at 'planned', not 'fused'"):
        compiler.lower_to_llvm_ir(lower(_model(), stop="fused"))
