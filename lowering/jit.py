"""llvmlite code library: LLVM IR text -> optimised, cached, callable machine code (DESIGN §6).

This module knows nothing about how the IR was generated (numba's split between code generator
and code library):
- `target_machine(target)`: a fresh O3 TargetMachine (MCJIT takes ownership of the one it gets);
- `optimize(ir, target)`: parse, verify, LLVM's O3 pipeline (new pass manager, loop and SLP
  vectorisation); `assembly(ir, target)` prints the result for `--emit asm`;
- `compile_ir(ir, target)`: a `CompiledLibrary` whose functions are called through ctypes.

Hit or miss, a library is built the same way: an ELF object (`TargetMachine.emit_object`) is
loaded with `ExecutionEngine.add_object_file` into an MCJIT engine made around an empty module.
A cache hit thus skips parsing, optimisation and code generation and only relocates the stored
object. Entries record the object's external symbols, checked before loading: RuntimeDyld
silently binds an unresolved symbol to address 0 and the first call would crash.

Runtime symbols come from libc, libm (expf, tanhf) and libgomp (GOMP_parallel,
omp_get_thread_num), loaded once per process with `load_library_permanently`. llvmlite is not
thread-safe, so all LLVM work here runs under one module-level lock; calling compiled functions
from several threads needs none (ctypes releases the GIL during the call).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import hashlib
import json
import os
import platform
import site
import struct
import sysconfig
import tempfile
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite
import llvmlite.binding as llvm

import convir
from convir.target import Target

#: Bump when the object format or the code-generation options change, to orphan old entries.
CACHE_FORMAT = "1"
CACHE_DIR_ENV = "CONVIR_CACHE_DIR"
_MAGIC = b"CVIROBJ\x01"
# magic, key digest, metadata length, object length, sha256(metadata + object)
_HEADER = struct.Struct("<8s32sIQ32s")
_OPENMP_PREFIXES = ("GOMP_", "omp_")

_LOCK = threading.RLock()
_initialized = False
_all_targets = False
_libgomp_path: str | None = None
_libgomp_tried: list[str] = []


class JitError(RuntimeError):
    """IR that cannot be compiled or loaded: malformed, unverifiable, unresolved symbols."""


class CacheWarning(UserWarning):
    """The object cache cannot be used; compilation goes on without it."""


def _initialize() -> None:
    """Initialise LLVM's targets and load the runtime libraries, once per process."""
    global _initialized, _libgomp_path
    with _LOCK:
        if _initialized:
            return
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        for name in ("c", "m"):
            path = ctypes.util.find_library(name)
            # A library that cannot load surfaces later as a named unresolved symbol.
            with contextlib.suppress(RuntimeError):
                llvm.load_library_permanently(path or f"lib{name}.so.6")
        _libgomp_path = _load_libgomp()
        _initialized = True


def _libgomp_candidates() -> list[str]:
    """Where libgomp may be: the system linker path, then copies shipped inside wheels."""
    candidates = [path for path in [ctypes.util.find_library("gomp")] if path]
    site_dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    site_dirs.update(getattr(site, "getsitepackages", list)())
    for site_dir in sorted(site_dirs):
        for pattern in ("*.libs/libgomp*.so*", "torch/lib/libgomp*.so*"):
            candidates.extend(sorted(glob.glob(os.path.join(site_dir, pattern))))
    multiarch = f"/usr/lib/{platform.machine()}-linux-gnu/libgomp.so.1"
    candidates.extend([multiarch, "/usr/lib64/libgomp.so.1", "/usr/lib/libgomp.so.1"])
    return candidates


def _load_libgomp() -> str | None:
    """Load the first libgomp that provides GOMP_parallel; None (and remember why) if none."""
    for candidate in _libgomp_candidates():
        _libgomp_tried.append(candidate)
        try:
            llvm.load_library_permanently(candidate)
        except RuntimeError:
            continue
        if llvm.address_of_symbol("GOMP_parallel") is not None:
            return candidate
    return None


def libgomp_path() -> str | None:
    """The libgomp this process loaded for compiled parallel code, or None if none was found."""
    _initialize()
    return _libgomp_path


def _initialize_all_targets() -> None:
    """Every LLVM backend, so that assembly() can print code for a preset of another ISA; only
    then, as it makes LLVM touch ~12 MiB more of its code, resident for the whole process."""
    global _all_targets
    with _LOCK:
        if not _all_targets:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            _all_targets = True


def target_machine(target: Target) -> llvm.TargetMachine:
    """A new O3 TargetMachine for `target`; never share one between execution engines."""
    _initialize()
    if _arch(target.triple) != _arch(llvm.get_process_triple()):
        _initialize_all_targets()
    try:
        llvm_target = llvm.Target.from_triple(target.triple)
    except RuntimeError as error:
        raise JitError(
            f"target {target.name!r}: this LLVM has no backend for {target.triple!r}"
        ) from error
    # "jitdefault" selects the large code model on 64-bit hosts, so the object's sections and
    # the runtime libraries may be placed anywhere in the address space by RuntimeDyld.
    return llvm_target.create_target_machine(
        cpu=target.cpu,
        features=target.features,
        opt=3,
        reloc="default",
        codemodel="jitdefault",
        jit=True,
    )


def _parse(llvm_ir: str, machine: llvm.TargetMachine) -> llvm.ModuleRef:
    """Parse and verify `llvm_ir` for `machine`, turning LLVM's complaints into a JitError."""
    try:
        module = llvm.parse_assembly(llvm_ir)
    except RuntimeError as error:
        detail = str(error).removeprefix("LLVM IR parsing error").strip()
        raise JitError(f"malformed LLVM IR: {detail}") from error
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    try:
        module.verify()
    except RuntimeError as error:
        raise JitError(f"LLVM IR does not verify: {str(error).strip()}") from error
    return module


def link_ir(parts: Iterable[str], exported: Iterable[str]) -> str:
    """One LLVM IR module from modules that declare what the others define; every function
    defined but not `exported` gets internal linkage (O3 may then inline or drop it)."""
    _initialize()
    linked: llvm.ModuleRef | None = None
    for text in parts:
        try:
            module = llvm.parse_assembly(text)
        except RuntimeError as error:
            raise JitError(f"malformed LLVM IR: {str(error).strip()}") from error
        if linked is None:
            linked = module
        else:
            linked.link_in(module)
    if linked is None:
        raise JitError("link_ir: no modules to link")
    public = set(exported)
    for function in linked.functions:
        if not function.is_declaration and function.name not in public:
            function.linkage = llvm.Linkage.internal
    return str(linked)


def _run_o3(module: llvm.ModuleRef, machine: llvm.TargetMachine) -> None:
    """Run LLVM's default O3 module pipeline, tuned for `machine`, on `module` in place."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = True
    tuning.loop_interleaving = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)


def _optimized(llvm_ir: str, target: Target) -> tuple[llvm.ModuleRef, llvm.TargetMachine]:
    """`llvm_ir` parsed, verified and O3-optimised, with the TargetMachine that tuned it."""
    machine = target_machine(target)
    module = _parse(llvm_ir, machine)
    _run_o3(module, machine)
    return module, machine


def optimize(llvm_ir: str, target: Target | None = None) -> llvm.ModuleRef:
    """Parse, verify and O3-optimise `llvm_ir` for `target` (default: the host)."""
    with _LOCK:
        return _optimized(llvm_ir, target or Target.host())[0]


def assembly(llvm_ir: str, target: Target | None = None) -> str:
    """The assembly text of `llvm_ir` after O3 for `target`: exactly the code compile_ir runs."""
    with _LOCK:
        module, machine = _optimized(llvm_ir, target or Target.host())
        return machine.emit_assembly(module)


def cache_key(llvm_ir: str, target: Target) -> str:
    """Hex sha256 of everything the object code depends on: IR, target, convir and llvmlite."""
    digest = hashlib.sha256()
    parts = (CACHE_FORMAT, llvm_ir, target.fingerprint(), convir.__version__, llvmlite.__version__)
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class _ObjectCode:
    """A relocatable object plus the symbols it imports (checked before load) and exports."""

    data: bytes
    imports: tuple[str, ...]
    exports: tuple[str, ...]


def _module_symbols(module: llvm.ModuleRef) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(external symbols the module needs, symbols it defines); intrinsics are not imports."""
    imports: list[str] = []
    exports: list[str] = []
    local = (llvm.Linkage.internal, llvm.Linkage.private)
    for value in [*module.functions, *module.global_variables]:
        if value.is_declaration:
            if not value.name.startswith("llvm."):
                imports.append(value.name)
        elif value.linkage not in local:
            exports.append(value.name)
    return tuple(sorted(imports)), tuple(sorted(exports))


def _check_imports(imports: Iterable[str]) -> None:
    """Raise a JitError naming every import that no loaded library provides."""
    missing = [name for name in imports if llvm.address_of_symbol(name) is None]
    openmp = [name for name in missing if name.startswith(_OPENMP_PREFIXES)]
    if openmp and _libgomp_path is None:
        raise JitError(
            f"the module calls the OpenMP runtime ({', '.join(openmp)}) but libgomp could not "
            f"be loaded; tried: {', '.join(_libgomp_tried) or 'nothing'}. Install libgomp "
            "(e.g. `apt-get install libgomp1`)."
        )
    if missing:
        raise JitError(
            f"unresolved external symbol(s) {', '.join(missing)}: declared in the module but "
            "defined neither there nor in the loaded runtime libraries (libc, libm, libgomp)"
        )


class _ObjectCache:
    """A directory of `<key>.cvobj` entries: header, JSON metadata, object bytes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def open(cache_dir: str | os.PathLike[str] | None) -> _ObjectCache | None:
        """The cache at `cache_dir`, $CONVIR_CACHE_DIR or ~/.cache/convir; None if unusable."""
        chosen = cache_dir or os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "convir"
        directory = Path(chosen).expanduser()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            warnings.warn(
                f"convir object cache disabled: cannot create {directory}: {error}",
                CacheWarning,
                stacklevel=3,
            )
            return None
        return _ObjectCache(directory)

    def path(self, key: str) -> Path:
        """The file holding the entry for `key`."""
        return self.directory / f"{key}.cvobj"

    def load(self, key: str) -> _ObjectCode | None:
        """The entry for `key`; None on a miss. A damaged entry is deleted and reported."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            warnings.warn(f"cannot read cache entry {path}: {error}", CacheWarning, stacklevel=3)
            return None
        entry = self._decode(blob, key)
        if entry is None:
            warnings.warn(
                f"corrupt cache entry {path} deleted; rebuilding", CacheWarning, stacklevel=3
            )
            path.unlink(missing_ok=True)
        return entry

    @staticmethod
    def _decode(blob: bytes, key: str) -> _ObjectCode | None:
        """Parse and validate one entry; None unless magic, key, lengths and checksum agree."""
        if len(blob) < _HEADER.size:
            return None
        magic, key_digest, meta_len, data_len, checksum = _HEADER.unpack_from(blob)
        body = blob[_HEADER.size :]
        if magic != _MAGIC or key_digest != bytes.fromhex(key) or len(body) != meta_len + data_len:
            return None
        if hashlib.sha256(body).digest() != checksum:
            return None
        try:
            meta = json.loads(body[:meta_len])
            return _ObjectCode(body[meta_len:], tuple(meta["imports"]), tuple(meta["exports"]))
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, key: str, code: _ObjectCode) -> Path | None:
        """Store `code` atomically (temp file + rename); on failure warn and return None."""
        meta = json.dumps({"imports": code.imports, "exports": code.exports}).encode()
        body = meta + code.data
        header = _HEADER.pack(
            _MAGIC, bytes.fromhex(key), len(meta), len(code.data), hashlib.sha256(body).digest()
        )
        path = self.path(key)
        temp_name = None
        try:
            handle, temp_name = tempfile.mkstemp(
                dir=self.directory, prefix=".tmp-", suffix=".cvobj"
            )
            with os.fdopen(handle, "wb") as temp:
                temp.write(header + body)
            os.replace(temp_name, path)
        except OSError as error:
            warnings.warn(
                f"convir object cache: cannot write {path}: {error}", CacheWarning, stacklevel=3
            )
            if temp_name is not None:
                Path(temp_name).unlink(missing_ok=True)
            return None
        return path


class CompiledLibrary:
    """Machine code loaded into an MCJIT engine, with its symbols callable through ctypes.

    The engine (which owns its TargetMachine and anchor module) lives as long as this object
    or any function pointer returned by `function`, which holds a reference back to it.
    Build one with `compile_ir`.
    """

    def __init__(
        self,
        code: _ObjectCode,
        target: Target,
        *,
        from_cache: bool = False,
        cache_path: Path | None = None,
    ) -> None:
        self.target = target
        self.exports = code.exports
        #: True when the object came from the on-disk cache (no optimisation, no codegen).
        self.from_cache = from_cache
        #: The cache entry backing this library, or None when caching was off or failed.
        self.cache_path = cache_path
        with _LOCK:
            _check_imports(code.imports)
            machine = target_machine(target)
            # MCJIT needs a module to exist; the code itself comes from the object file.
            anchor = llvm.parse_assembly("")
            anchor.triple = machine.triple
            anchor.data_layout = str(machine.target_data)
            self._engine = llvm.create_mcjit_compiler(anchor, machine)
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(code.data))
            self._engine.finalize_object()

    def address(self, name: str) -> int:
        """The address of the symbol `name` (a function or global) in this library."""
        with _LOCK:
            address = self._engine.get_function_address(name)
        if not address:
            defined = ", ".join(self.exports) or "nothing"
            raise JitError(f"no symbol {name!r} in this library; it defines: {defined}")
        return address

    def function(self, name: str, restype: Any, argtypes: Sequence[Any]) -> Any:
        """A ctypes function pointer to `name` with the given C signature; keeps `self` alive."""
        prototype = ctypes.CFUNCTYPE(restype, *argtypes)
        pointer = prototype(self.address(name))
        pointer._convir_library = self
        return pointer


def compile_ir(
    llvm_ir: str,
    target: Target | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> CompiledLibrary:
    """Compile LLVM IR text for `target` (default: the host) into a callable library.

    With `use_cache`, the object is looked up in, and stored to, the on-disk cache in
    `cache_dir` (else $CONVIR_CACHE_DIR, else ~/.cache/convir), keyed by `cache_key`. A hit
    skips optimisation and code generation (`CompiledLibrary.from_cache` is then True). A
    damaged entry is deleted and rebuilt; an unusable cache directory only warns.
    """
    target = target or Target.host()
    host_arch = _arch(llvm.get_process_triple())
    if _arch(target.triple) != host_arch:
        raise JitError(
            f"target {target.name!r} ({target.triple}) cannot run on this {host_arch} host; "
            "use assembly() to inspect its code"
        )
    _initialize()
    key = cache_key(llvm_ir, target)
    cache = _ObjectCache.open(cache_dir) if use_cache else None
    with _LOCK:
        code = cache.load(key) if cache is not None else None
        if code is not None:
            return CompiledLibrary(code, target, from_cache=True, cache_path=cache.path(key))
        module, machine = _optimized(llvm_ir, target)
        # After O3, which drops unused declarations and internal functions.
        imports, exports = _module_symbols(module)
        _check_imports(imports)
        code = _ObjectCode(machine.emit_object(module), imports, exports)
        cache_path = cache.save(key, code) if cache is not None else None
        return CompiledLibrary(code, target, cache_path=cache_path)


def _arch(triple: str) -> str:
    """The architecture component of a triple, with Apple's spelling of AArch64 normalised."""
    arch = triple.split("-", 1)[0]
    return "aarch64" if arch == "arm64" else arch
