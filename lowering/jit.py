"""The code library: LLVM IR text -> cached, loaded, callable machine code (DESIGN §6).

This module knows nothing about how the IR was generated (numba's split between code generator
and code library), and it never loads LLVM itself: `lowering.codegen` turns IR into a shared
object (O3, an ELF object, the system linker), either in this process or, with
`compile_ir(..., isolated=True)`, in a worker process (`python -m lowering.codegen`). This
module stores shared objects in an on-disk cache and loads them with the dynamic loader.
A process that compiles a model with `isolated=True`, or finds it in the cache, thus never maps
LLVM (libllvmlite.so makes 39 MiB resident on load alone).

A cache entry is the shared object followed by a trailer (its imports and exports as JSON, the
cache key and a checksum), so that one file is the whole entry, written atomically, and the
dynamic loader can map it where it lies (it ignores bytes after the ELF image). A damaged entry
is deleted and rebuilt; one that cannot be deleted (a read-only cache) or is not a regular file
(a FIFO would block the read) is bypassed with a `CacheWarning`, and temp files that a writer
killed before its rename left behind are swept by later writers. Entries record the object's
external symbols, checked before loading so that a missing runtime library is named rather than
reported by the loader.

Runtime symbols come from libm (expf, tanhf), libgomp (omp_set_num_threads,
omp_get_max_threads) and convir's thread pool (`convir_parallel_for`, `lowering.thread_pool`:
LLVM IR built and cached here like any kernel, the first time a library imports it), loaded
once per process into the global namespace; other libraries are loaded local, with their own
references bound to their own definitions. Calling compiled functions from several threads
needs no lock (ctypes releases the GIL during the call).
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import ctypes.util
import dataclasses
import errno
import glob
import hashlib
import json
import os
import platform
import site
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite

import convir
from convir.target import Target
from lowering import stage_times
from lowering.thread_pool import ENTRY_POINT as POOL_ENTRY_POINT
from lowering.thread_pool import pool_ir

#: Bump when the entry format or the code-generation options change, to orphan old entries.
CACHE_FORMAT = "2"
CACHE_DIR_ENV = "CONVIR_CACHE_DIR"
_MAGIC = b"CVIRSO\x00\x02"
# after the shared object and its metadata: magic, key digest, metadata length, object length,
# sha256(object + metadata)
_TRAILER = struct.Struct("<8s32sIQ32s")
_SUFFIX = ".cvso"
_TEMP_PREFIX = ".tmp-"
#: Age after which a temp file in the cache is a killed writer's leftover (a live one is seconds).
_STALE_TEMP_S = 600.0
_OPENMP_PREFIXES = ("GOMP_", "omp_")

_LOCK = threading.RLock()
_runtime_loaded = False
_libgomp_path: str | None = None
_libgomp_tried: list[str] = []
_pool: CompiledLibrary | None = None


class JitError(RuntimeError):
    """IR that cannot be compiled or loaded: malformed, unverifiable, unresolved symbols."""


class CacheWarning(UserWarning):
    """The object cache cannot be used; compilation goes on without it."""


@dataclass(frozen=True)
class SharedObject:
    """An ELF shared object plus the symbols it imports (checked before loading) and exports."""

    data: bytes
    imports: tuple[str, ...]
    exports: tuple[str, ...]
    #: Peak resident bytes of the worker process that built it (None: built here, or cached).
    builder_peak_rss: int | None = None


def _load_runtime() -> None:
    """Load libm and libgomp into the global namespace, once per process."""
    global _runtime_loaded, _libgomp_path
    with _LOCK:
        if _runtime_loaded:
            return
        # A library that cannot load surfaces later as a named unresolved symbol.
        with contextlib.suppress(OSError):
            ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6", mode=ctypes.RTLD_GLOBAL)
        _libgomp_path = _load_libgomp()
        _runtime_loaded = True


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
            library = ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        if hasattr(library, "GOMP_parallel"):
            return candidate
    return None


def libgomp_path() -> str | None:
    """The libgomp this process loaded for compiled parallel code, or None if none was found."""
    _load_runtime()
    return _libgomp_path


def _load_pool() -> None:
    """Build (or find in the cache) and load convir's thread pool globally, once per process.
    It is never unloaded: its worker threads run its code until the process ends."""
    global _pool
    with _LOCK:
        if _pool is None:
            _pool = compile_ir(pool_ir(), isolated=True, global_symbols=True)


def _check_imports(imports: Iterable[str]) -> None:
    """Raise a JitError naming every import that no loaded library provides."""
    _load_runtime()
    imports = list(imports)
    if POOL_ENTRY_POINT in imports:
        _load_pool()
    process = ctypes.CDLL(None)
    missing = [name for name in imports if not hasattr(process, name)]
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


def cache_key(
    llvm_ir: str | Sequence[str], target: Target, exported: Iterable[str] | None = None
) -> str:
    """Hex sha256 of everything the machine code depends on: the IR (one text or the parts to
    link and the symbols they export), target, convir and llvmlite."""
    digest = hashlib.sha256()
    texts = [llvm_ir] if isinstance(llvm_ir, str) else list(llvm_ir)
    exports = "" if exported is None else ",".join(sorted(exported))
    parts = (CACHE_FORMAT, target.fingerprint(), convir.__version__, llvmlite.__version__)
    for part in (*parts, exports, str(len(texts)), *texts):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class _ObjectCache:
    """A directory of `<key>.cvso` entries: shared object, JSON metadata, trailer."""

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
        return self.directory / f"{key}{_SUFFIX}"

    def load(self, key: str) -> SharedObject | None:
        """The entry for `key`; None on a miss. A damaged entry is deleted and reported; one
        that cannot be read or deleted, or is not a regular file, is reported and bypassed."""
        path = self.path(key)
        try:
            blob = _read_regular_file(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            warnings.warn(f"cannot read cache entry {path}: {error}", CacheWarning, stacklevel=3)
            return None
        entry = self._decode(blob, key)
        if entry is None:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                warnings.warn(
                    f"corrupt cache entry {path} cannot be deleted ({error.strerror}); "
                    "compiling without it",
                    CacheWarning,
                    stacklevel=3,
                )
                return None
            warnings.warn(
                f"corrupt cache entry {path} deleted; rebuilding", CacheWarning, stacklevel=3
            )
        return entry

    @staticmethod
    def _decode(blob: bytes, key: str) -> SharedObject | None:
        """Parse and validate one entry; None unless magic, key, lengths and checksum agree."""
        if len(blob) < _TRAILER.size:
            return None
        magic, key_digest, meta_len, data_len, checksum = _TRAILER.unpack_from(
            blob, len(blob) - _TRAILER.size
        )
        body = blob[: -_TRAILER.size]
        if magic != _MAGIC or key_digest != bytes.fromhex(key) or len(body) != meta_len + data_len:
            return None
        if hashlib.sha256(body).digest() != checksum:
            return None
        try:
            meta = json.loads(body[data_len:])
            return SharedObject(body[:data_len], tuple(meta["imports"]), tuple(meta["exports"]))
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, key: str, code: SharedObject) -> Path | None:
        """Store `code` atomically (temp file + rename); on failure warn and return None."""
        meta = json.dumps({"imports": code.imports, "exports": code.exports}).encode()
        body = code.data + meta
        trailer = _TRAILER.pack(
            _MAGIC, bytes.fromhex(key), len(meta), len(code.data), hashlib.sha256(body).digest()
        )
        path = self.path(key)
        self._remove_stale_temps()
        temp_name = None
        try:
            handle, temp_name = tempfile.mkstemp(
                dir=self.directory, prefix=_TEMP_PREFIX, suffix=_SUFFIX
            )
            with os.fdopen(handle, "wb") as temp:
                temp.write(body + trailer)
            os.replace(temp_name, path)
        except OSError as error:
            warnings.warn(
                f"convir object cache: cannot write {path}: {error}", CacheWarning, stacklevel=3
            )
            if temp_name is not None:
                Path(temp_name).unlink(missing_ok=True)
            return None
        return path

    def _remove_stale_temps(self) -> None:
        """Delete temp files that a writer killed between writing and renaming left behind;
        a live writer finishes within seconds, so only files untouched for long go."""
        now = time.time()
        for temp in self.directory.glob(f"{_TEMP_PREFIX}*{_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - temp.lstat().st_mtime > _STALE_TEMP_S:
                    temp.unlink()


def _read_regular_file(path: Path) -> bytes:
    """The bytes of `path`, which must be a regular file: a FIFO or a device named like a cache
    entry would block or never end, so it is refused (OSError) without being read."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(handle, "rb") as file:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return file.read()


class CompiledLibrary:
    """A shared object loaded by the dynamic loader, its symbols callable through ctypes.

    The library stays loaded as long as this object or any function pointer returned by
    `function` (which holds a reference back to it) lives. Build one with `compile_ir`.
    """

    def __init__(
        self,
        path: Path,
        code: SharedObject,
        target: Target,
        *,
        from_cache: bool = False,
        cache_path: Path | None = None,
        global_symbols: bool = False,
    ) -> None:
        self.target = target
        self.exports = code.exports
        #: True when the code came from the on-disk cache (no optimisation, no codegen).
        self.from_cache = from_cache
        #: The cache entry backing this library, or None when caching was off or failed.
        self.cache_path = cache_path
        #: Peak resident bytes of the worker process that built the code, if one did.
        self.builder_peak_rss = code.builder_peak_rss
        _check_imports(code.imports)
        mode = ctypes.RTLD_GLOBAL if global_symbols else ctypes.RTLD_LOCAL
        try:
            self._library = ctypes.CDLL(str(path), mode=mode)
        except OSError as error:
            raise JitError(f"the dynamic loader refused the compiled code: {error}") from error
        if not global_symbols:  # a global library's symbols may be bound anywhere: it stays
            weakref.finalize(self, _ctypes.dlclose, self._library._handle)

    def address(self, name: str) -> int:
        """The address of the symbol `name` (a function or global) in this library."""
        if name not in self.exports:
            defined = ", ".join(self.exports) or "nothing"
            raise JitError(f"no symbol {name!r} in this library; it defines: {defined}")
        return ctypes.cast(getattr(self._library, name), ctypes.c_void_p).value

    def function(self, name: str, restype: Any, argtypes: Sequence[Any]) -> Any:
        """A ctypes function pointer to `name` with the given C signature; keeps `self` alive."""
        prototype = ctypes.CFUNCTYPE(restype, *argtypes)
        pointer = prototype(self.address(name))
        pointer._convir_library = self
        return pointer


def compile_ir(
    llvm_ir: str | Sequence[str],
    target: Target | None = None,
    *,
    exported: Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    isolated: bool = False,
    key: str | None = None,
    global_symbols: bool = False,
) -> CompiledLibrary:
    """Compile LLVM IR for `target` (default: the host) into a loaded, callable library.

    `llvm_ir` is one module's text, or the texts of modules that declare what the others
    define (see `codegen.shared_object`; every definition not in `exported` is then hidden).
    With `isolated`, LLVM runs in a worker process, so this process never maps it. With
    `use_cache`, the library is looked up in, and stored to, the on-disk cache in `cache_dir`
    (else $CONVIR_CACHE_DIR, else ~/.cache/convir), keyed by `cache_key`: a hit skips
    optimisation and code generation (`CompiledLibrary.from_cache` is then True). A damaged
    entry is deleted and rebuilt; an unusable cache directory only warns. A caller that knows
    what the IR is made from may key the entry itself (`key`, a hex sha256; see
    `convir.compiler.model_cache_key`) and look it up with `cached_library` before making the IR
    at all. With `global_symbols`, the library's exports resolve the imports of libraries loaded
    later, and it is never unloaded.
    """
    target = target or Target.host()
    host_arch = _arch(Target.host().triple)
    if _arch(target.triple) != host_arch:
        raise JitError(
            f"target {target.name!r} ({target.triple}) cannot run on this {host_arch} host; "
            "use lowering.codegen.assembly() to inspect its code"
        )
    parts = [llvm_ir] if isinstance(llvm_ir, str) else list(llvm_ir)
    exported = None if exported is None else sorted(exported)
    key = key or cache_key(parts, target, exported)
    cache = _ObjectCache.open(cache_dir) if use_cache else None
    if cache is not None and (library := _load_cached(cache, key, target, global_symbols)):
        return library
    code = (
        _build_in_worker(parts, exported, target) if isolated else _build(parts, exported, target)
    )
    return _store_and_load(code, target, key, cache, global_symbols)


def load_code(
    code: SharedObject,
    target: Target,
    key: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> CompiledLibrary:
    """A shared object built elsewhere (`lowering.kernel_cache`) stored in the cache under
    `key` as `compile_ir` would store it, and loaded."""
    return _store_and_load(code, target, key, _ObjectCache.open(cache_dir) if use_cache else None)


def _store_and_load(
    code: SharedObject,
    target: Target,
    key: str,
    cache: _ObjectCache | None,
    global_symbols: bool = False,
) -> CompiledLibrary:
    _check_imports(code.imports)  # before caching: code that cannot load is not kept
    cache_path = cache.save(key, code) if cache is not None else None
    if cache_path is not None:
        return CompiledLibrary(
            cache_path, code, target, cache_path=cache_path, global_symbols=global_symbols
        )
    with tempfile.TemporaryDirectory(prefix="convir-") as scratch:
        # A fresh name: the loader takes a path it has loaded before for that library.
        path = Path(scratch, f"{uuid.uuid4().hex}.so")
        path.write_bytes(code.data)
        return CompiledLibrary(path, code, target, global_symbols=global_symbols)


def cached_library(
    key: str, target: Target, *, cache_dir: str | os.PathLike[str] | None = None
) -> CompiledLibrary | None:
    """The library stored under `key` in the cache (see `compile_ir`), loaded; None if absent."""
    cache = _ObjectCache.open(cache_dir)
    return None if cache is None else _load_cached(cache, key, target)


def _load_cached(
    cache: _ObjectCache, key: str, target: Target, global_symbols: bool = False
) -> CompiledLibrary | None:
    code = cache.load(key)
    if code is None:
        return None
    path = cache.path(key)
    return CompiledLibrary(
        path, code, target, from_cache=True, cache_path=path, global_symbols=global_symbols
    )


def _build(parts: Sequence[str], exported: Sequence[str] | None, target: Target) -> SharedObject:
    from lowering.codegen import shared_object

    return shared_object(parts, exported, target)


def _build_in_worker(
    parts: Sequence[str], exported: Sequence[str] | None, target: Target
) -> SharedObject:
    """`_build` in a `python -m lowering.codegen` process: LLVM never enters this one."""
    request = json.dumps(
        {"parts": list(parts), "exported": exported, "target": dataclasses.asdict(target)}
    )
    # The worker imports this very checkout of `lowering`, installed or not.
    env = dict(os.environ)
    source_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="convir-build-") as scratch:
        output = Path(scratch, "code.so")
        command = [sys.executable, "-m", "lowering.codegen", str(output)]
        started = time.perf_counter()
        done = subprocess.run(
            command, input=request, capture_output=True, text=True, env=env, check=False
        )
        del request
        try:
            reply = json.loads(done.stdout)
        except ValueError:
            reply = {}
        _add_worker_times(reply, time.perf_counter() - started)
        if done.returncode == 0 and "exports" in reply:
            imports, exports = tuple(reply["imports"]), tuple(reply["exports"])
            return SharedObject(output.read_bytes(), imports, exports, reply["peak_rss_bytes"])
    if "error" in reply:
        raise JitError(reply["error"])
    status = f"signal {-done.returncode}" if done.returncode < 0 else f"status {done.returncode}"
    detail = done.stderr.strip().splitlines()[-5:]
    raise JitError(
        f"the code generator (python -m lowering.codegen) died with {status}"
        + (": " + " | ".join(detail) if detail else "")
    )


def _add_worker_times(reply: dict[str, Any], wall_seconds: float) -> None:
    """Count a code generator's stages, and the rest of its wall time (starting Python and
    LLVM, passing the IR), towards the stages being recorded (`lowering.stage_times`)."""
    seconds, cpu_seconds = reply.get("stage_seconds", {}), reply.get("stage_cpu_seconds", {})
    for name, wall in seconds.items():
        stage_times.add(name, wall, cpu_seconds.get(name, 0.0))
    stage_times.add("codegen worker start + I/O", wall_seconds - sum(seconds.values()), 0.0)


def _arch(triple: str) -> str:
    """The architecture component of a triple, with Apple's spelling of AArch64 normalised."""
    arch = triple.split("-", 1)[0]
    return "aarch64" if arch == "arm64" else arch
