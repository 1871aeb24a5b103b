"""Target: host detection, presets, overrides and a fingerprint stable enough to key caches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convir.target import (
    DEFAULT_L1D_BYTES,
    DEFAULT_L2_BYTES,
    DEFAULT_L3_BYTES,
    PRESETS,
    Target,
    _host_cache_bytes,
    _parse_cache_size,
)

REPO = Path(__file__).parents[2]
HAND_BUILT = Target(
    name="hand",
    triple="x86_64-unknown-linux-gnu",
    cpu="haswell",
    features="+avx2,+fma",
    vector_bits=256,
    has_fma=True,
    vector_registers=16,
    l1d_bytes=32 * 1024,
    l2_bytes=512 * 1024,
    l3_bytes=32 * 1024 * 1024,
    cores=2,
)


def test_host_vector_width_follows_the_detected_isa() -> None:
    host = Target.host()
    features = set(host.features.split(","))
    if "+avx512f" in features:
        assert (host.vector_bits, host.vector_width, host.vector_registers) == (512, 16, 32)
    elif "+avx2" in features:
        assert (host.vector_bits, host.vector_width, host.vector_registers) == (256, 8, 16)
    else:
        pytest.skip(f"host {host.cpu} has neither AVX2 nor AVX-512F")
    assert host.has_fma == ("+fma" in features)


def test_vector_width_can_be_narrowed_by_override() -> None:
    narrowed = Target.host().with_(vector_bits=256)
    assert narrowed.vector_width == 8


def test_host_caches_and_cores_come_from_the_system() -> None:
    host = Target.host()
    assert host.name == "host"
    assert host.cores == len(os.sched_getaffinity(0))
    assert 0 < host.l1d_bytes <= host.l2_bytes <= host.l3_bytes
    assert (host.l1d_bytes, host.l2_bytes, host.l3_bytes) == _host_cache_bytes()


def test_sysfs_cache_sizes_are_parsed(tmp_path) -> None:
    entries = [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K")]
    for index, (level, kind, size) in enumerate(entries):
        directory = tmp_path / f"index{index}"
        directory.mkdir()
        (directory / "level").write_text(level + "\n")
        (directory / "type").write_text(kind + "\n")
        (directory / "size").write_text(size + "\n")
    # No L3 directory: that level falls back to its default.
    assert _host_cache_bytes(tmp_path) == (48 * 1024, 2048 * 1024, DEFAULT_L3_BYTES)


def test_unreadable_sysfs_gives_defaults(tmp_path) -> None:
    (tmp_path / "index0").mkdir()  # present but empty: unreadable
    expected = (DEFAULT_L1D_BYTES, DEFAULT_L2_BYTES, DEFAULT_L3_BYTES)
    assert _host_cache_bytes(tmp_path) == expected
    assert _host_cache_bytes(tmp_path / "missing") == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("32K", 32768), ("1024K", 1 << 20), ("32M", 32 << 20), ("512", 512)]
)
def test_cache_size_strings(text: str, expected: int) -> None:
    assert _parse_cache_size(text) == expected


@pytest.mark.parametrize(
    ("name", "width", "registers"),
    [("x86-avx2", 8, 16), ("x86-avx512", 16, 32), ("aarch64-neon", 4, 32)],
)
def test_presets(name: str, width: int, registers: int) -> None:
    target = Target.preset(name)
    assert (target.name, target.vector_width, target.vector_registers) == (name, width, registers)
    assert target.has_fma
    assert target.l1d_bytes < target.l2_bytes < target.l3_bytes


def test_unknown_preset_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown target preset 'sparc'") as error:
        Target.preset("sparc")
    for name in PRESETS:
        assert name in str(error.value)


def test_with_overrides_fields_and_validates() -> None:
    single = HAND_BUILT.with_(cores=1, l2_bytes=1 << 20)
    assert (single.cores, single.l2_bytes, HAND_BUILT.cores) == (1, 1 << 20, 2)
    with pytest.raises(ValueError, match="vector_bits=300"):
        HAND_BUILT.with_(vector_bits=300)
    with pytest.raises(ValueError, match="cores=0"):
        HAND_BUILT.with_(cores=0)


def test_fingerprint_is_stable_and_short() -> None:
    # A golden value: changing how fingerprints are computed orphans every cache and tuning
    # record, so it must be a deliberate change to this test too.
    assert HAND_BUILT.fingerprint() == "5541ded8b3b45ff2"
    assert Target.host().fingerprint() == Target.host().fingerprint()


def test_fingerprint_tracks_code_relevant_fields_only() -> None:
    base = HAND_BUILT.fingerprint()
    assert HAND_BUILT.with_(l2_bytes=1 << 20).fingerprint() != base
    assert HAND_BUILT.with_(l3_bytes=16 << 20).fingerprint() != base
    assert HAND_BUILT.with_(cores=4).fingerprint() != base
    assert HAND_BUILT.with_(cpu="znver3").fingerprint() != base
    assert HAND_BUILT.with_(name="renamed").fingerprint() == base
    assert HAND_BUILT.with_(features="+fma,+avx2").fingerprint() == base
    fingerprints = {target.fingerprint() for target in PRESETS.values()}
    assert len(fingerprints) == len(PRESETS)


def test_importing_target_does_not_load_llvm() -> None:
    code = "import sys, convir.target; assert 'llvmlite' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
