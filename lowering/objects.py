"""Relocatable machine code and the system linker that joins it into a shared object.

LLVM (`lowering.codegen`) compiles each part of a model (a kernel and the functions outlined
from it, or @forward) to ELF objects; the system's C compiler driver (`$CC`, else `cc`/`gcc`/
`clang`) links them into the shared object `lowering.jit` loads. Nothing here maps LLVM, so the
process that compiles a model can link objects that a worker made or that a cache kept.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lowering.jit import JitError, SharedObject


@dataclass(frozen=True)
class ObjectCode:
    """Relocatable ELF objects and the symbols they need and define.

    `imports`: undefined symbols they reference (LLVM's intrinsics aside); `defines`: the
    non-local symbols they define, visible or hidden (hidden ones still link to each other).
    """

    objects: tuple[bytes, ...]
    imports: tuple[str, ...]
    defines: tuple[str, ...]


def link_objects(code: Sequence[ObjectCode], exported: Iterable[str] | None) -> SharedObject:
    """One shared object from `code`: it imports what no part defines, and exports `exported`
    (every definition when None; the parts were compiled with the others hidden)."""
    imports = {name for part in code for name in part.imports}
    defines = {name for part in code for name in part.defines}
    visible = defines if exported is None else defines & set(exported)
    data = link_shared([obj for part in code for obj in part.objects])
    return SharedObject(data, tuple(sorted(imports - defines)), tuple(sorted(visible)))


def link_shared(objects: Sequence[bytes]) -> bytes:
    """Relocatable ELF objects linked by the system's C compiler driver into a shared object.
    Undefined symbols stay undefined: the loader binds them to the runtime libraries (libm,
    libgomp) that `lowering.jit` loads first; -Bsymbolic binds the library's own references to
    its own definitions, whatever else the process has loaded."""
    driver = c_compiler()
    with tempfile.TemporaryDirectory(prefix="convir-link-") as scratch:
        paths = [Path(scratch, f"part{number}.o") for number in range(len(objects))]
        for path, code in zip(paths, objects, strict=True):
            path.write_bytes(code)
        lib = Path(scratch, "code.so")
        command = [*driver, "-shared", "-Wl,-Bsymbolic", "-o", str(lib), *map(str, paths)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise JitError(
                "linking the machine code into a shared object failed: "
                f"`{shlex.join(command[:5])} ...` exited with {done.returncode}: "
                f"{done.stderr.strip()}"
            )
        return lib.read_bytes()


def c_compiler() -> list[str]:
    """The C compiler driver that links shared objects: $CC, else cc, gcc or clang on PATH."""
    chosen = os.environ.get("CC")
    if chosen:
        return shlex.split(chosen)
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    raise JitError(
        "no C compiler driver to link machine code into a shared object: set $CC or install "
        "gcc or clang (e.g. `apt-get install gcc`)"
    )
