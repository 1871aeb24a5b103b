"""What generated code is for: ISA, vector width, registers, caches and cores (DESIGN §4).

A `Target` is plain, frozen data. Schedules and heuristics read its sizes; `lowering.codegen`
turns `triple`, `cpu` and `features` into an LLVM TargetMachine; `fingerprint()` keys the object
cache and the tuning database.

- `Target.host()` detects the machine this process runs on: CPU name and features from LLVM (in a
  child process unless this one has LLVM loaded), cache sizes from Linux sysfs (documented
  defaults where unreadable), cores from the CPU affinity mask.
- `Target.preset(name)` gives a fixed target for emitting IR and assembly for another machine:
  "x86-avx2", "x86-avx512", "aarch64-neon".
- `target.with_(l2_bytes=1 << 20, cores=1)` returns a copy with some fields overridden
  (`dataclasses.replace` under the hood, so every field can be overridden and is validated again).

The vector width follows the widest vector ISA the features allow: 512 bits when AVX-512F is
present, even on CPUs that split 512-bit operations in two (AMD Zen 4). A schedule that prefers
256-bit vectors there asks for it explicitly with `target.with_(vector_bits=256)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * KIB

#: Cache sizes used where sysfs cannot be read (a typical current x86 server core).
DEFAULT_L1D_BYTES = 32 * KIB
DEFAULT_L2_BYTES = 1 * MIB
DEFAULT_L3_BYTES = 32 * MIB

_SYSFS_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
_VALID_VECTOR_BITS = (128, 256, 512)


@dataclass(frozen=True)
class Target:
    """A code-generation target: LLVM triple/CPU/features plus the sizes schedules depend on.

    `vector_bits` is the width of one SIMD register the code generator should fill (128 on
    SSE/NEON, 256 on AVX2, 512 on AVX-512); `vector_registers` is how many of them exist
    (16 on AVX2, 32 with AVX-512 or on AArch64). Cache sizes are per core for L1d and L2 and
    shared for L3, in bytes.
    """

    name: str
    triple: str
    cpu: str
    features: str
    vector_bits: int
    has_fma: bool
    vector_registers: int
    l1d_bytes: int
    l2_bytes: int
    l3_bytes: int
    cores: int

    def __post_init__(self) -> None:
        if self.vector_bits not in _VALID_VECTOR_BITS:
            raise ValueError(
                f"Target {self.name!r}: vector_bits={self.vector_bits} is not one of "
                f"{', '.join(map(str, _VALID_VECTOR_BITS))}"
            )
        for field in ("vector_registers", "l1d_bytes", "l2_bytes", "l3_bytes", "cores"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Target {self.name!r}: {field}={value!r} must be an int >= 1")

    @property
    def vector_width(self) -> int:
        """Number of float32 lanes in one vector register (8 on AVX2, 16 on AVX-512)."""
        return self.vector_bits // 32

    def with_(self, **changes: Any) -> Target:
        """A copy of this target with the given fields replaced, e.g. `t.with_(cores=1)`."""
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """A short, stable hex key of everything that changes generated code or its speed.

        Covers triple, CPU, the feature set (order-insensitive), vector width and registers,
        FMA, cache sizes and cores; `name` is a label and is left out, so a preset and a host
        target with the same fields share cache entries and tuning records.
        """
        canonical = {
            "triple": self.triple,
            "cpu": self.cpu,
            "features": sorted(f for f in self.features.split(",") if f),
            "vector_bits": self.vector_bits,
            "has_fma": self.has_fma,
            "vector_registers": self.vector_registers,
            "l1d_bytes": self.l1d_bytes,
            "l2_bytes": self.l2_bytes,
            "l3_bytes": self.l3_bytes,
            "cores": self.cores,
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @staticmethod
    def host() -> Target:
        """Detect the machine this process runs on (LLVM host CPU, sysfs caches, affinity)."""
        triple, cpu, features, enabled_list = _llvm_host()
        enabled = set(enabled_list)
        is_aarch64 = triple.startswith(("aarch64", "arm64"))
        if is_aarch64:
            vector_bits, has_fma, registers = 128, True, 32
        elif "avx512f" in enabled:
            vector_bits, has_fma, registers = 512, "fma" in enabled, 32
        elif "avx" in enabled:
            vector_bits, has_fma, registers = 256, "fma" in enabled, 16
        else:
            vector_bits, has_fma, registers = 128, "fma" in enabled, 16
        l1d, l2, l3 = _host_cache_bytes()
        return Target(
            name="host",
            triple=triple,
            cpu=cpu,
            features=features,
            vector_bits=vector_bits,
            has_fma=has_fma,
            vector_registers=registers,
            l1d_bytes=l1d,
            l2_bytes=l2,
            l3_bytes=l3,
            cores=_host_cores(),
        )

    @staticmethod
    def preset(name: str) -> Target:
        """A fixed, named target ("x86-avx2", "x86-avx512", "aarch64-neon")."""
        try:
            return PRESETS[name]
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            raise ValueError(f"unknown target preset {name!r}; known presets: {known}") from None


@cache
def _llvm_host() -> tuple[str, str, str, tuple[str, ...]]:
    """LLVM's view of this machine: (triple, CPU name, flattened features, enabled features).

    Asked of LLVM in this process when it has LLVM loaded already; otherwise of a short-lived
    child process (~0.15 s, once per process), so that a process that only compiles through a
    worker and runs cached code never maps libllvmlite.so (39 MiB resident).
    """
    if "llvmlite.binding" not in sys.modules:
        query = "import convir.target as t, json; print(json.dumps(t._llvm_host_here()))"
        done = subprocess.run(
            [sys.executable, "-c", query], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            triple, cpu, features, enabled = json.loads(done.stdout)
            return triple, cpu, features, tuple(enabled)
    return _llvm_host_here()


def _llvm_host_here() -> tuple[str, str, str, tuple[str, ...]]:
    import llvmlite.binding as llvm

    feature_map = llvm.get_host_cpu_features()
    enabled = tuple(sorted(name for name, on in feature_map.items() if on))
    return (
        llvm.get_process_triple(),
        llvm.get_host_cpu_name(),
        feature_map.flatten(sort=True),
        enabled,
    )


def _parse_cache_size(text: str) -> int:
    """Parse a sysfs cache size such as "32K", "1024K" or "32M" into bytes."""
    text = text.strip().upper()
    scale = {"K": KIB, "M": MIB, "G": 1024 * MIB}.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in "KMG" else text
    return int(digits) * scale


def _host_cache_bytes(cache_dir: Path = _SYSFS_CACHE_DIR) -> tuple[int, int, int]:
    """(L1d, L2, L3) bytes of CPU 0 from sysfs; a level that cannot be read gets its default."""
    found: dict[int, int] = {}
    for index in sorted(cache_dir.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = _parse_cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size > 0:
            found.setdefault(level, size)
    return (
        found.get(1, DEFAULT_L1D_BYTES),
        found.get(2, DEFAULT_L2_BYTES),
        found.get(3, DEFAULT_L3_BYTES),
    )


def _host_cores() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's total."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# Presets describe a representative core of each family; cores=4 is a neutral default that a
# caller overrides with `with_(cores=...)` for the machine it actually targets.
PRESETS: dict[str, Target] = {
    "x86-avx2": Target(
        name="x86-avx2",
        triple="x86_64-unknown-linux-gnu",
        cpu="x86-64-v3",
        features="+avx,+avx2,+fma,+f16c,+bmi,+bmi2,+lzcnt,+movbe",
        vector_bits=256,
        has_fma=True,
        vector_registers=16,
        l1d_bytes=32 * KIB,
        l2_bytes=512 * KIB,
        l3_bytes=16 * MIB,
        cores=4,
    ),
    "x86-avx512": Target(
        name="x86-avx512",
        triple="x86_64-unknown-linux-gnu",
        cpu="x86-64-v4",
        features="+avx,+avx2,+fma,+f16c,+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl",
        vector_bits=512,
        has_fma=True,
        vector_registers=32,
        l1d_bytes=48 * KIB,
        l2_bytes=1 * MIB + 256 * KIB,
        l3_bytes=32 * MIB,
        cores=4,
    ),
    "aarch64-neon": Target(
        name="aarch64-neon",
        triple="aarch64-unknown-linux-gnu",
        cpu="neoverse-n1",
        features="+neon,+fp-armv8",
        vector_bits=128,
        has_fma=True,
        vector_registers=32,
        l1d_bytes=64 * KIB,
        l2_bytes=1 * MIB,
        l3_bytes=32 * MIB,
        cores=4,
    ),
}
