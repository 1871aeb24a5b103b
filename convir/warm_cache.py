"""The warm path of `convir.compile`: a model file compiled before loads without being read.

The model cache (`convir.compiler.model_cache_key`) is keyed by the planned IR and every weight
byte, so even a hit imports the model, runs the graph passes, hashes the weights and packs them
(VGG-16: 528 MB hashed, 7 s). For a model given as a file, `compile` also records, under a key
of the file's identity (resolved path, device, inode, size, modification time in nanoseconds)
and the compile's options and convir's code, what a `CompiledModel` needs besides its machine
code: the model-cache key of its shared object, the packed weights (an `.npy` file, mapped
read-only when loaded, never copied), the arena and workspace sizes and the I/O specs. A later
compile of the unchanged file with the same options reads that record and maps the weights:
no import, no pass, no hashing. A file that changes in any way (rewritten, touched, replaced)
has another identity and compiles as before. Records are written atomically (temporary file,
then rename); a record that cannot be read is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from convir.runtime import CompiledModel, TensorSpec

#: Bump when the record's layout changes.
RECORD_FORMAT = "2"


def file_key(path: str | os.PathLike[str], options: Mapping[str, object]) -> str | None:
    """Hex sha256 of the identity of the file at `path` and `options` (which must hold every
    compile option, the target's fingerprint and convir's code digest); None if not a file."""
    try:
        resolved = Path(path).resolve()
        status = resolved.stat()
    except OSError:
        return None
    identity = [
        RECORD_FORMAT,
        str(resolved),
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
    ]
    text = json.dumps([identity, dict(sorted(options.items()))], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _directory(cache_dir: str | os.PathLike[str] | None) -> Path:
    from lowering.jit import CACHE_DIR_ENV

    chosen = cache_dir or os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "convir"
    return Path(chosen).expanduser() / "files"


def load(key: str, cache_dir: str | os.PathLike[str] | None, threads: int | None):
    """The `CompiledModel` recorded under `key`, or None (no record, or its parts are gone)."""
    from lowering.jit import cached_library

    directory = _directory(cache_dir)
    try:
        record = json.loads((directory / f"{key}.json").read_text())
        if record.get("format") != RECORD_FORMAT:
            return None
        weights = np.load(directory / f"{key}.npy", mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None
    from convir.target import Target

    library = cached_library(record["model_key"], Target(**record["target"]), cache_dir=cache_dir)
    if library is None:
        return None
    return CompiledModel(
        library,
        [TensorSpec(name, tuple(shape)) for name, shape in record["inputs"]],
        [TensorSpec(name, tuple(shape)) for name, shape in record["outputs"]],
        weights,
        record["arena_bytes"],
        record["workspaces"],
        threads,
        record["convs"],
    )


def save(
    key: str,
    cache_dir: str | os.PathLike[str] | None,
    model_key: str,
    target_fields: Mapping[str, object],
    compiled: CompiledModel,
    weights: np.ndarray,
) -> None:
    """Record `compiled` (whose shared object is cached under `model_key` and whose packed
    weights are `weights`) under `key`; a cache that cannot be written is skipped silently (the
    compile itself has succeeded)."""
    directory = _directory(cache_dir)
    report = compiled.memory_report()
    record = {
        "format": RECORD_FORMAT,
        "model_key": model_key,
        "target": dict(target_fields),
        "inputs": [[spec.name, list(spec.shape)] for spec in compiled.inputs],
        "outputs": [[spec.name, list(spec.shape)] for spec in compiled.outputs],
        "arena_bytes": report["arena_bytes"],
        "workspaces": report["workspace_bytes"],
        "convs": report["convs"],
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(directory / f"{key}.npy", lambda f: np.save(f, weights))
        _write_atomically(directory / f"{key}.json", lambda f: f.write(json.dumps(record).encode()))
    except OSError:
        return


def _write_atomically(path: Path, write) -> None:
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as temp:
            write(temp)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
