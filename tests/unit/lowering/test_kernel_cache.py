"""The kernel cache: a part (kernel or @forward) whose loop-level IR was compiled before, by any
model, is neither lowered nor compiled again; background codegen workers compile the rest."""

from __future__ import annotations

import ctypes

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects import func

import convir
import lowering.to_llvm
from convir.target import Target
from lowering.jit import CacheWarning, load_code
from lowering.kernel_cache import WORKER_BYTES, KernelCompiler, part_key, worker_count
from lowering.stage_times import recording
from tests.onnx_cases import assert_close, rand, run_onnxruntime


def _chain(convs: int, seed: int) -> onnx.ModelProto:
    """x -> (Conv 3x3 + Relu) * `convs` -> y, 8 channels on 12x12: the convs of a shorter chain
    are those of a longer one (other weights)."""
    nodes, weights, current = [], [], "x"
    for i in range(convs):
        out = "y" if i == convs - 1 else f"r{i}"
        weights.append(numpy_helper.from_array(rand(8, 8, 3, 3, seed=seed + i), f"w{i}"))
        weights.append(numpy_helper.from_array(rand(8, seed=seed + 10 + i), f"b{i}"))
        nodes.append(helper.make_node("Conv", [current, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 12, 12])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def lowered_functions(monkeypatch) -> list[str]:
    """The names of the functions convir.compile lowers to LLVM IR, in order."""
    names: list[str] = []
    lower = lowering.to_llvm.lower_functions_to_llvm_ir

    def recording_lower(module, **kwargs):
        names.extend(
            op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp) and op.body.blocks
        )
        return lower(module, **kwargs)

    monkeypatch.setattr(lowering.to_llvm, "lower_functions_to_llvm_ir", recording_lower)
    return names


def test_a_model_made_of_known_convs_lowers_none_of_them(tmp_path, lowered_functions) -> None:
    x = rand(1, 8, 12, 12, seed=5)
    longer = _chain(3, seed=1)
    compiled = convir.compile(longer, cache_dir=tmp_path)
    assert any(name.startswith("conv_") for name in lowered_functions)
    assert_close(compiled.run({"x": x})["y"], run_onnxruntime(longer, {"x": x})[0])

    lowered_functions.clear()
    shorter = _chain(2, seed=20)  # other weights: the model cache misses
    with recording() as times:
        compiled = convir.compile(shorter, cache_dir=tmp_path)
    assert lowered_functions, "its @forward is new"
    assert not [name for name in lowered_functions if name.startswith("conv_")]
    assert "emit direct" in times.seconds or "emit im2col" in times.seconds, "convs emitted"
    assert_close(compiled.run({"x": x})["y"], run_onnxruntime(shorter, {"x": x})[0])


def test_the_same_model_with_other_weights_runs_no_code_generator(tmp_path) -> None:
    x = rand(1, 8, 12, 12, seed=6)
    first = convir.compile(_chain(2, seed=1), cache_dir=tmp_path)
    assert first.memory_report()["codegen_peak_rss_bytes"] is not None
    other = _chain(2, seed=30)
    second = convir.compile(other, cache_dir=tmp_path)
    assert second.memory_report()["codegen_peak_rss_bytes"] is None, "every part was cached"
    assert_close(second.run({"x": x})["y"], run_onnxruntime(other, {"x": x})[0])


def test_a_damaged_kernel_entry_is_rebuilt(tmp_path) -> None:
    x = rand(1, 8, 12, 12, seed=7)
    convir.compile(_chain(1, seed=1), cache_dir=tmp_path)
    entries = sorted((tmp_path / "kernels").glob("*.cvso"))
    assert entries, "the parts were cached"
    for entry in entries:
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    other = _chain(1, seed=40)
    with pytest.warns(CacheWarning, match="corrupt cache entry"):
        compiled = convir.compile(other, cache_dir=tmp_path)
    assert compiled.memory_report()["codegen_peak_rss_bytes"] is not None
    assert_close(compiled.run({"x": x})["y"], run_onnxruntime(other, {"x": x})[0])


def test_the_key_covers_ir_target_exports_and_code() -> None:
    host = Target.host()
    key = part_key("func.func @k() {}", host, ["forward"], "code")
    assert part_key("func.func @k() {}", host, ["forward"], "code") == key
    assert part_key("func.func @j() {}", host, ["forward"], "code") != key
    other_target = host.with_(l2_bytes=host.l2_bytes // 2)
    assert part_key("func.func @k() {}", other_target, ["forward"], "code") != key
    assert part_key("func.func @k() {}", host, ["forward", "k"], "code") != key
    assert part_key("func.func @k() {}", host, ["forward"], "other code") != key


@pytest.mark.parametrize(
    ("cores", "available", "expected"),
    [(1, 64 * WORKER_BYTES, 1), (2, 64 * WORKER_BYTES, 1), (8, 64 * WORKER_BYTES, 7),
     (8, 3 * WORKER_BYTES, 3), (8, WORKER_BYTES // 2, 1)],
)  # fmt: skip
def test_workers_leave_a_core_to_the_lowering_and_fit_in_memory(cores, available, expected):
    assert worker_count(cores, available) == expected


def test_workers_compile_parts_in_order(tmp_path) -> None:
    """Several workers: every part's objects are linked, whichever worker made them."""
    parts = [
        f"define i32 @f{i}(i32 %x) {{\n  %y = add i32 %x, {i}\n  ret i32 %y\n}}\n" for i in range(5)
    ]
    host = Target.host()
    with KernelCompiler(host, [f"f{i}" for i in range(5)], "test", cache_dir=tmp_path,
                        workers=2) as kernels:  # fmt: skip
        for i, text in enumerate(parts):
            key = kernels.key(f"part {i}")
            assert not kernels.cached(key)
            kernels.submit(key, [text])
        code = kernels.link()
    assert code.exports == tuple(f"f{i}" for i in range(5))
    library = load_code(code, host, "a" * 64, use_cache=False)
    for i in range(5):
        function = library.function(f"f{i}", ctypes.c_int32, [ctypes.c_int32])
        assert function(np.int32(100)) == 100 + i
