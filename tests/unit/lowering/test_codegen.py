"""lowering.codegen: parts compiled one by one and linked into one shared object, the worker
process, the system linker, and a compiling process that never maps LLVM."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convir.target import Target
from lowering import codegen, objects
from lowering.jit import JitError, compile_ir

REPO = Path(__file__).parents[3]

# Three parts as `lower_functions_to_llvm_ir` makes them: each defines one function and
# declares the others it calls. Only @entry is to be exported.
SQUARE = """
define float @square(float %x) {
  %r = fmul float %x, %x
  ret float %r
}
"""
PLUS_ONE = """
declare float @square(float)
define float @square_plus_one(float %x) {
  %s = call float @square(float %x)
  %r = fadd float %s, 1.0
  ret float %r
}
"""
ENTRY = """
declare float @square_plus_one(float)
declare float @expf(float)
define float @entry(float %x) {
  %a = call float @square_plus_one(float %x)
  %e = call float @expf(float %x)
  %r = fadd float %a, %e
  ret float %r
}
"""
PARTS = [SQUARE, PLUS_ONE, ENTRY]


def _entry(library) -> float:
    return library.function("entry", ctypes.c_float, [ctypes.c_float])(0.5)


@pytest.mark.parametrize("isolated", [False, True])
def test_parts_link_into_one_library_exporting_only_what_is_asked(tmp_path, isolated) -> None:
    library = compile_ir(PARTS, exported=["entry"], cache_dir=tmp_path, isolated=isolated)
    assert _entry(library) == pytest.approx(0.5 * 0.5 + 1 + np.exp(0.5), rel=1e-6)
    assert library.exports == ("entry",)
    with pytest.raises(JitError, match=r"no symbol 'square'.*defines: entry"):
        library.address("square")
    assert (library.builder_peak_rss is not None) == isolated
    cached = compile_ir(PARTS, exported=["entry"], cache_dir=tmp_path, isolated=isolated)
    assert cached.from_cache and cached.builder_peak_rss is None
    assert _entry(cached) == _entry(library)


def test_parts_and_exports_are_part_of_the_cache_key(tmp_path) -> None:
    compile_ir(PARTS, exported=["entry"], cache_dir=tmp_path)
    everything = compile_ir(PARTS, cache_dir=tmp_path)
    assert not everything.from_cache
    assert everything.exports == ("entry", "square", "square_plus_one")


def test_a_librarys_own_references_never_bind_to_another_librarys(tmp_path) -> None:
    """@square is defined in the process's global namespace (another library loaded global)
    and differently in each library built here; @entry must call its own library's: hidden
    when not exported, bound locally by -Bsymbolic when exported."""
    squares = compile_ir(PARTS, cache_dir=tmp_path)  # everything exported
    assert squares.cache_path is not None
    ctypes.CDLL(str(squares.cache_path), mode=ctypes.RTLD_GLOBAL)  # stays loaded: no dlclose
    cube = SQUARE.replace(
        "%r = fmul float %x, %x", "%c = fmul float %x, %x\n  %r = fmul float %c, %x"
    )
    cubes = [cube, PLUS_ONE, ENTRY]
    hidden = compile_ir(cubes, exported=["entry"], cache_dir=tmp_path)
    public = compile_ir(cubes, cache_dir=tmp_path)
    assert "square" in public.exports and "square" not in hidden.exports
    for library in (hidden, public):
        assert _entry(library) == pytest.approx(0.125 + 1 + np.exp(0.5), rel=1e-6)
    assert _entry(squares) == pytest.approx(0.25 + 1 + np.exp(0.5), rel=1e-6)


def test_assembly_of_parts_is_per_part_and_hides_what_is_not_exported() -> None:
    text = codegen.assembly(PARTS, exported=["entry"])
    for name in ("square", "square_plus_one", "entry"):
        assert f"{name}:" in text
    assert ".hidden\tsquare" in text and ".hidden\tentry" not in text


def test_the_worker_reports_llvm_errors_as_jit_errors(tmp_path) -> None:
    with pytest.raises(JitError, match=r"malformed LLVM IR: .*value doesn't match"):
        compile_ir("define i32 @f() {\n  ret i64 0\n}\n", cache_dir=tmp_path, isolated=True)


def test_a_worker_that_dies_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(JitError, match=r"code generator \(python -m lowering.codegen\) died"):
        compile_ir(SQUARE, cache_dir=tmp_path, isolated=True)


def test_a_failing_linker_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CC", "false")
    with pytest.raises(JitError, match=r"linking the machine code .* `false -shared"):
        compile_ir(SQUARE, use_cache=False)


def test_no_linker_at_all_says_what_to_install(monkeypatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(objects.shutil, "which", lambda name: None)
    with pytest.raises(JitError, match=r"no C compiler driver.*install gcc or clang"):
        compile_ir(SQUARE, use_cache=False)


def test_host_detected_without_llvm_equals_llvms_view() -> None:
    script = (
        "import sys; from convir.target import Target; t = Target.host(); "
        "assert 'llvmlite.binding' not in sys.modules; print(t.fingerprint(), t.features)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    host = Target.host()  # this process has LLVM loaded: asked of it directly
    assert done.stdout.split() == [host.fingerprint(), host.features]


COMPILE_AND_RUN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import convir
    from tests.onnx_cases import rand, run_onnxruntime, single_node_model

    model = single_node_model(
        "Conv", {"x": rand(1, 5, 9, 9)}, {"w": rand(7, 5, 3, 3, seed=1)}, pads=[1, 1, 1, 1]
    )
    compiled = convir.compile(model, cache_dir=sys.argv[1])
    x = rand(1, 5, 9, 9, seed=2)
    error = np.abs(compiled.run({"x": x})["y"] - run_onnxruntime(model, {"x": x})[0]).max()
    maps = open("/proc/self/maps").read()
    print(json.dumps({
        "error": float(error),
        "llvm_mapped": "libllvmlite" in maps,
        "llvm_imported": "llvmlite.binding" in sys.modules,
        "codegen_peak": compiled.memory_report()["codegen_peak_rss_bytes"],
    }))
    """
)


def test_a_process_that_compiles_a_model_never_maps_llvm(tmp_path) -> None:
    def compile_in_fresh_process() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", COMPILE_AND_RUN, str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    cold = compile_in_fresh_process()
    assert cold["error"] < 1e-4
    assert not cold["llvm_mapped"] and not cold["llvm_imported"]
    assert cold["codegen_peak"] > 0, "the worker ran LLVM and said how much memory it took"
    warm = compile_in_fresh_process()
    assert warm["error"] == cold["error"]
    assert not warm["llvm_mapped"]
    assert warm["codegen_peak"] is None, "a cached model starts no worker"
