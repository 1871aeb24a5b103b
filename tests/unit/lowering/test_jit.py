"""lowering.jit: IR text to callable code, OpenMP runtime, object cache, errors, engine lifetime."""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from convir.target import Target
from lowering import jit
from lowering.codegen import assembly, optimize
from lowering.jit import (
    CacheWarning,
    CompiledLibrary,
    JitError,
    cache_key,
    compile_ir,
    libgomp_path,
)

REPO = Path(__file__).parents[3]
F32P = ctypes.c_void_p
SAXPY_ARGS = (ctypes.c_int64, ctypes.c_float, F32P, F32P)

SAXPY = """
declare <8 x float> @llvm.fma.v8f32(<8 x float>, <8 x float>, <8 x float>)

define void @saxpy(i64 %n, float %a, ptr noalias nocapture readonly %x, ptr noalias nocapture %y) {
entry:
  %a0 = insertelement <8 x float> poison, float %a, i64 0
  %va = shufflevector <8 x float> %a0, <8 x float> poison, <8 x i32> zeroinitializer
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
  %px = getelementptr inbounds float, ptr %x, i64 %i
  %py = getelementptr inbounds float, ptr %y, i64 %i
  %vx = load <8 x float>, ptr %px, align 4
  %vy = load <8 x float>, ptr %py, align 4
  %r = call <8 x float> @llvm.fma.v8f32(<8 x float> %va, <8 x float> %vx, <8 x float> %vy)
  store <8 x float> %r, ptr %py, align 4
  %next = add nuw i64 %i, 8
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %exit
exit:
  ret void
}
"""

# fill(values, owners, n, nthreads): values[i] = 2*i and owners[i] = the OpenMP thread that
# wrote it, the range split evenly over the team by an outlined body run with GOMP_parallel.
PARALLEL_FILL = """
declare void @GOMP_parallel(ptr, ptr, i32, i32)
declare i32 @omp_get_thread_num()
declare i32 @omp_get_num_threads()
declare i64 @llvm.smin.i64(i64, i64)

define internal void @fill_body(ptr %data) {
entry:
  %values = load ptr, ptr %data
  %owners_slot = getelementptr inbounds {ptr, ptr, i64}, ptr %data, i32 0, i32 1
  %owners = load ptr, ptr %owners_slot
  %n_slot = getelementptr inbounds {ptr, ptr, i64}, ptr %data, i32 0, i32 2
  %n = load i64, ptr %n_slot
  %tid32 = call i32 @omp_get_thread_num()
  %team32 = call i32 @omp_get_num_threads()
  %tid = sext i32 %tid32 to i64
  %team = sext i32 %team32 to i64
  %padded = add i64 %n, %team
  %padded1 = sub i64 %padded, 1
  %chunk = sdiv i64 %padded1, %team
  %lo = mul i64 %tid, %chunk
  %hi_unclamped = add i64 %lo, %chunk
  %hi = call i64 @llvm.smin.i64(i64 %hi_unclamped, i64 %n)
  br label %check
check:
  %i = phi i64 [%lo, %entry], [%next, %body]
  %more = icmp slt i64 %i, %hi
  br i1 %more, label %body, label %exit
body:
  %fi = sitofp i64 %i to float
  %twice = fmul float %fi, 2.0
  %pv = getelementptr inbounds float, ptr %values, i64 %i
  store float %twice, ptr %pv
  %po = getelementptr inbounds i32, ptr %owners, i64 %i
  store i32 %tid32, ptr %po
  %next = add i64 %i, 1
  br label %check
exit:
  ret void
}

define void @fill(ptr noalias %values, ptr noalias %owners, i64 %n, i32 %nthreads) {
entry:
  %args = alloca {ptr, ptr, i64}
  store ptr %values, ptr %args
  %owners_slot = getelementptr inbounds {ptr, ptr, i64}, ptr %args, i32 0, i32 1
  store ptr %owners, ptr %owners_slot
  %n_slot = getelementptr inbounds {ptr, ptr, i64}, ptr %args, i32 0, i32 2
  store i64 %n, ptr %n_slot
  call void @GOMP_parallel(ptr @fill_body, ptr %args, i32 %nthreads, i32 0)
  ret void
}
"""

SCALAR_SCALE = """
define void @scale(i64 %n, ptr noalias %x) {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
  %p = getelementptr inbounds float, ptr %x, i64 %i
  %v = load float, ptr %p
  %s = fmul float %v, 3.0
  store float %s, ptr %p
  %next = add nuw i64 %i, 1
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %exit
exit:
  ret void
}
"""

LIBM = """
declare float @expf(float)
declare float @tanhf(float)

define float @exp_plus_tanh(float %x) {
  %e = call float @expf(float %x)
  %t = call float @tanhf(float %x)
  %r = fadd float %e, %t
  ret float %r
}
"""


def _saxpy(library: CompiledLibrary, n: int = 64) -> np.ndarray:
    x = np.arange(n, dtype=np.float32)
    y = np.ones(n, dtype=np.float32)
    library.function("saxpy", None, SAXPY_ARGS)(n, 3.0, x.ctypes.data, y.ctypes.data)
    return y


def _expected_saxpy(n: int = 64) -> np.ndarray:
    return 3.0 * np.arange(n, dtype=np.float32) + 1.0


def _host_has(*features: str) -> bool:
    enabled = set(Target.host().features.split(","))
    return all(f"+{feature}" in enabled for feature in features)


def test_saxpy_runs(tmp_path) -> None:
    library = compile_ir(SAXPY, cache_dir=tmp_path)
    np.testing.assert_array_equal(_saxpy(library), _expected_saxpy())


def test_saxpy_assembly_uses_fma_on_ymm() -> None:
    if not _host_has("avx2", "fma"):
        pytest.skip("host lacks AVX2+FMA: no vfmadd on ymm registers to look for")
    text = assembly(SAXPY)
    fma_lines = [line for line in text.splitlines() if "vfmadd" in line]
    assert any("ymm" in line for line in fma_lines), text


def test_assembly_for_another_isa() -> None:
    text = assembly(SAXPY, Target.preset("aarch64-neon"))
    assert "fmla" in text


def test_code_for_another_isa_is_not_executed(tmp_path) -> None:
    with pytest.raises(JitError, match="cannot run on this"):
        compile_ir(SAXPY, Target.preset("aarch64-neon"), cache_dir=tmp_path)


def test_libm_functions_resolve(tmp_path) -> None:
    library = compile_ir(LIBM, cache_dir=tmp_path)
    function = library.function("exp_plus_tanh", ctypes.c_float, [ctypes.c_float])
    assert function(0.5) == pytest.approx(np.exp(0.5) + np.tanh(0.5), rel=1e-6)


@pytest.mark.parametrize("nthreads", [1, 2])
def test_gomp_parallel_splits_the_range(tmp_path, nthreads: int) -> None:
    assert libgomp_path() is not None
    compile_ir(PARALLEL_FILL, cache_dir=tmp_path)
    library = compile_ir(PARALLEL_FILL, cache_dir=tmp_path)
    assert library.from_cache, "runtime symbols also resolve for a cached object"
    fill = library.function("fill", None, [F32P, F32P, ctypes.c_int64, ctypes.c_int32])
    n = 1001
    values = np.full(n, -1.0, dtype=np.float32)
    owners = np.full(n, -1, dtype=np.int32)
    fill(values.ctypes.data, owners.ctypes.data, n, nthreads)
    np.testing.assert_array_equal(values, 2.0 * np.arange(n, dtype=np.float32))
    assert set(np.unique(owners)) == set(range(nthreads))
    assert np.all(np.diff(owners) >= 0), "each thread owns one contiguous chunk"


def test_cache_miss_then_hit(tmp_path) -> None:
    first = compile_ir(SAXPY, cache_dir=tmp_path)
    assert not first.from_cache
    assert first.cache_path is not None and first.cache_path.exists()
    assert first.cache_path.parent == tmp_path
    second = compile_ir(SAXPY, cache_dir=tmp_path)
    assert second.from_cache and second.cache_path == first.cache_path
    np.testing.assert_array_equal(_saxpy(second), _saxpy(first))
    assert [p.name for p in tmp_path.iterdir()] == [first.cache_path.name], "no temp files left"


def test_concurrent_processes_share_one_valid_entry(tmp_path) -> None:
    script = (
        "import sys; from lowering.jit import compile_ir; "
        "compile_ir(sys.stdin.read(), cache_dir=sys.argv[1])"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE, cwd=REPO
        )
        for _ in range(3)
    ]
    for worker in workers:
        worker.communicate(SAXPY.encode())
        assert worker.returncode == 0
    assert len(list(tmp_path.iterdir())) == 1, "one entry, no temp files left behind"
    library = compile_ir(SAXPY, cache_dir=tmp_path)
    assert library.from_cache
    np.testing.assert_array_equal(_saxpy(library), _expected_saxpy())


def test_cache_dir_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path / "env"))
    library = compile_ir(SAXPY)
    assert library.cache_path is not None and library.cache_path.parent == tmp_path / "env"
    assert compile_ir(SAXPY).from_cache


def test_use_cache_false_writes_nothing(tmp_path) -> None:
    library = compile_ir(SAXPY, cache_dir=tmp_path, use_cache=False)
    assert (library.from_cache, library.cache_path) == (False, None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "wrong_key"])
def test_damaged_entry_is_rebuilt_not_loaded(tmp_path, damage: str) -> None:
    path = compile_ir(SAXPY, cache_dir=tmp_path).cache_path
    assert path is not None
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        blob[len(blob) - 100] ^= 0xFF
        path.write_bytes(bytes(blob))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        # A valid entry for another IR, stored under this IR's name.
        other = compile_ir(LIBM, cache_dir=tmp_path).cache_path
        assert other is not None
        path.write_bytes(other.read_bytes())
    with pytest.warns(CacheWarning, match="corrupt cache entry"):
        rebuilt = compile_ir(SAXPY, cache_dir=tmp_path)
    assert not rebuilt.from_cache
    np.testing.assert_array_equal(_saxpy(rebuilt), _expected_saxpy())
    assert compile_ir(SAXPY, cache_dir=tmp_path).from_cache


def test_key_depends_on_ir_and_target(tmp_path) -> None:
    host = Target.host()
    assert cache_key(SAXPY, host) == cache_key(SAXPY, Target.host())
    assert cache_key(SAXPY, host) != cache_key(SAXPY, host.with_(l2_bytes=host.l2_bytes * 2))
    assert cache_key(SAXPY, host) != cache_key(SAXPY + "\n", host)
    compile_ir(SAXPY, host, cache_dir=tmp_path)
    other = compile_ir(SAXPY, host.with_(cores=host.cores + 1), cache_dir=tmp_path)
    assert not other.from_cache
    assert len(list(tmp_path.iterdir())) == 2


def test_unusable_cache_dir_warns_and_still_compiles(tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.warns(CacheWarning, match="cache disabled"):
        library = compile_ir(SAXPY, cache_dir=blocker / "cache")
    assert library.cache_path is None
    np.testing.assert_array_equal(_saxpy(library), _expected_saxpy())


def test_missing_libgomp_is_named_only_when_openmp_is_used(monkeypatch) -> None:
    monkeypatch.setattr(jit, "_libgomp_path", None)
    jit._check_imports(["expf"])
    with pytest.raises(JitError, match=r"OpenMP runtime \(GOMP_convir_absent\).*libgomp"):
        jit._check_imports(["expf", "GOMP_convir_absent"])


def test_optimize_vectorises_a_scalar_loop() -> None:
    module = optimize(SCALAR_SCALE)
    assert "x float>" in str(module), str(module)


def test_malformed_ir_is_a_readable_error(tmp_path) -> None:
    message = r"(?s)malformed LLVM IR: <string>:2:7: error: value doesn't match"
    with pytest.raises(JitError, match=message):
        compile_ir("define i32 @f() {\n  ret i64 0\n}\n", cache_dir=tmp_path)


def test_unverifiable_ir_is_a_readable_error(tmp_path) -> None:
    ir = "define i32 @f(i32 %x) {\nentry:\n  ret i32 %x\nbody:\n  br label %entry\n}\n"
    with pytest.raises(JitError, match=r"(?s)does not verify.*[Ee]ntry block"):
        compile_ir(ir, cache_dir=tmp_path)


def test_missing_symbol_is_reported_before_loading(tmp_path) -> None:
    ir = """
declare void @convir_no_such_fn()
define void @f() {
  call void @convir_no_such_fn()
  ret void
}
"""
    with pytest.raises(JitError, match=r"unresolved external symbol.*convir_no_such_fn"):
        compile_ir(ir, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [], "nothing cached for IR that cannot load"


def test_unknown_function_name_lists_what_is_defined(tmp_path) -> None:
    library = compile_ir(SAXPY, cache_dir=tmp_path)
    with pytest.raises(JitError, match=r"no symbol 'sapxy'.*defines: saxpy"):
        library.address("sapxy")


def test_function_pointer_keeps_the_engine_alive(tmp_path) -> None:
    saxpy = compile_ir(SAXPY, cache_dir=tmp_path).function("saxpy", None, SAXPY_ARGS)
    gc.collect()
    x = np.arange(64, dtype=np.float32)
    y = np.ones(64, dtype=np.float32)
    saxpy(64, 3.0, x.ctypes.data, y.ctypes.data)
    np.testing.assert_array_equal(y, _expected_saxpy())


def test_many_engines_created_and_dropped(tmp_path) -> None:
    for round_index in range(40):
        library = compile_ir(SAXPY, cache_dir=tmp_path, use_cache=round_index % 2 == 0)
        np.testing.assert_array_equal(_saxpy(library), _expected_saxpy())
        del library
        gc.collect()


def test_compiling_and_calling_from_several_threads(tmp_path) -> None:
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            ir = (
                f"define float @k(float %x) {{\n  %r = fadd float %x, {index}.0\n  ret float %r\n}}"
            )
            library = compile_ir(ir, cache_dir=tmp_path)
            results[index] = library.function("k", ctypes.c_float, [ctypes.c_float])(0.5)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == {index: index + 0.5 for index in range(8)}


# --- a cache directory that cannot be trusted (issue 13) ------------------------------------------


def test_damaged_entry_in_read_only_cache_warns_and_compiles(tmp_path, monkeypatch) -> None:
    path = compile_ir(SAXPY, cache_dir=tmp_path).cache_path
    assert path is not None
    path.write_bytes(b"damaged")

    # A read-only directory, as root (who may write anywhere) cannot make one with chmod.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    monkeypatch.setattr(jit.tempfile, "mkstemp", refuse)
    with pytest.warns(CacheWarning, match="cannot be deleted"):
        library = compile_ir(SAXPY, cache_dir=tmp_path)
    assert not library.from_cache and library.cache_path is None
    np.testing.assert_array_equal(_saxpy(library), _expected_saxpy())


def test_fifo_named_like_an_entry_is_never_opened(tmp_path) -> None:
    fifo = tmp_path / f"{cache_key(SAXPY, Target.host())}.cvso"
    os.mkfifo(fifo)
    result: dict[str, object] = {}

    def build() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result["library"] = compile_ir(SAXPY, cache_dir=tmp_path)
        result["warnings"] = [str(w.message) for w in caught]

    # Reading a FIFO blocks until a writer comes: run in a thread so a regression fails, not hangs.
    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "compile_ir blocked on a FIFO in the cache"
    assert any("not a regular file" in w for w in result["warnings"])
    np.testing.assert_array_equal(_saxpy(result["library"]), _expected_saxpy())


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path) -> None:
    stale, fresh = tmp_path / ".tmp-stale.cvso", tmp_path / ".tmp-fresh.cvso"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"being written")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    compile_ir(SAXPY, cache_dir=tmp_path)
    assert not stale.exists()
    assert fresh.exists()
