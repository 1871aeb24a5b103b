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
from lowering.algorithms import ALGORITHMS
from lowering.jit import CacheWarning, load_code
from lowering.kernel_cache import (
    LOWERING_BYTES,
    WORKER_BYTES,
    KernelCompiler,
    lowering_processes,
    part_key,
    worker_count,
)
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


class _Lowered:
    """The names of the functions convir.compile lowers to LLVM IR, in this process or in the
    lowering children it forks (which inherit the spy and append to a file)."""

    def __init__(self, path) -> None:
        self.path = path

    def names(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture
def lowered_functions(monkeypatch, tmp_path) -> _Lowered:
    spy = _Lowered(tmp_path / "lowered.txt")
    lower = lowering.to_llvm.lower_functions_to_llvm_ir

    def recording_lower(module, **kwargs):
        with spy.path.open("a") as names:
            for op in module.ops:
                if isinstance(op, func.FuncOp) and op.body.blocks:
                    names.write(op.sym_name.data + "\n")
        return lower(module, **kwargs)

    monkeypatch.setattr(lowering.to_llvm, "lower_functions_to_llvm_ir", recording_lower)
    return spy


def test_a_model_made_of_known_convs_lowers_none_of_them(tmp_path, lowered_functions) -> None:
    x = rand(1, 8, 12, 12, seed=5)
    longer = _chain(3, seed=1)
    compiled = convir.compile(longer, cache_dir=tmp_path)
    assert any(name.startswith("conv_") for name in lowered_functions.names())
    assert_close(compiled.run({"x": x})["y"], run_onnxruntime(longer, {"x": x})[0])

    lowered_functions.clear()
    shorter = _chain(2, seed=20)  # other weights: the model cache misses
    with recording() as times:
        compiled = convir.compile(shorter, cache_dir=tmp_path)
    assert lowered_functions.names(), "its @forward is new"
    assert not [name for name in lowered_functions.names() if name.startswith("conv_")]
    assert any(f"emit {name}" in times.seconds for name in ALGORITHMS), "convs emitted"
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


@pytest.mark.parametrize(
    ("cores", "available", "expected"),
    [(1, 64 * LOWERING_BYTES, 0), (2, 64 * LOWERING_BYTES, 2), (8, 3 * LOWERING_BYTES, 3),
     (8, LOWERING_BYTES // 2, 0)],
)  # fmt: skip
def test_lowering_children_need_two_cores_and_fit_in_memory(cores, available, expected):
    assert lowering_processes(cores, available) == expected


def _function(i: int) -> str:
    return f"define i32 @f{i}(i32 %x) {{\n  %y = add i32 %x, {i}\n  ret i32 %y\n}}\n"


@pytest.mark.parametrize("children", [0, 2])
def test_parts_lowered_in_children_link_in_order_with_their_stage_times(tmp_path, children):
    """Parts handed to `lower` (in forked children, or in place with 0 children) are linked
    like submitted ones, and the children's stage times reach the parent's record."""
    from lowering.stage_times import stage

    def lowering(i: int):
        def lower() -> list[str]:
            with stage("lower to llvm dialect"):
                return [_function(i)]

        return lower

    host = Target.host()
    with (
        recording() as times,
        KernelCompiler(
            host, [f"f{i}" for i in range(5)], "test", use_cache=False, lowering_children=children
        ) as kernels,
    ):
        for i in range(5):
            kernels.lower(kernels.key(f"part {i}"), lowering(i))
        code = kernels.link()
    assert kernels.misses == 5 and times.counts["lower to llvm dialect"] == 5
    library = load_code(code, host, "b" * 64, use_cache=False)
    for i in range(5):
        function = library.function(f"f{i}", ctypes.c_int32, [ctypes.c_int32])
        assert function(np.int32(7)) == 7 + i


def test_an_error_in_a_lowering_child_is_raised_by_the_parent(tmp_path) -> None:
    def failing() -> list[str]:
        raise ValueError("cannot lower 'test.op': no pattern")

    host = Target.host()
    with KernelCompiler(host, ["f0"], "test", use_cache=False, lowering_children=2) as kernels:
        kernels.lower(kernels.key("good"), lambda: [_function(0)])
        kernels.lower(kernels.key("bad"), failing)
        with pytest.raises(ValueError, match=r"cannot lower 'test\.op': no pattern"):
            kernels.link()
