"""The GEMM microkernel: packers, tilings, and a plain GEMM built from it, compiled natively and
compared with numpy on ragged M, N and K."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

from convir.target import Target
from lowering.jit import compile_ir
from lowering.microkernel import (
    PanelTiling,
    RowTiling,
    blocked_depth,
    emit_gemm,
    pack_a,
    pack_b,
    register_tile,
)
from lowering.parallel_to_pool import ConvertParallelToPoolPass
from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir


def compiled_gemm(sizes, tile, width: int, packed_a: bool, threads: int):
    """The native function of `emit_gemm`, called as f(a, b_panels, c) on numpy arrays."""
    module = ModuleOp([])
    emit_gemm(module, "gemm", sizes, tile, width, packed_a)
    module.verify()
    ConvertParallelToPoolPass(threads=threads, min_work=0).apply(Context(), module)
    lower_to_llvm(module)
    library = compile_ir(translate_to_llvm_ir(module), Target.host(), use_cache=False)
    function = library.function("gemm", None, [ctypes.c_void_p] * 3)

    def call(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
        function(a.ctypes.data, b.ctypes.data, c.ctypes.data)

    call.library = library
    return call


@st.composite
def gemm_cases(draw):
    width = draw(st.sampled_from([4, 8, 16]))
    return dict(
        m=draw(st.integers(1, 40)),
        n=draw(st.integers(1, 70)),
        k=draw(st.integers(1, 40)),
        tile=draw(st.sampled_from([(1, 1), (3, 2), (6, 4), (14, 2), (5, 3)])),
        width=width,
        packed_a=draw(st.booleans()),
        threads=draw(st.sampled_from([1, 2])),
        seed=draw(st.integers(0, 1000)),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=gemm_cases())
def test_plain_gemm_matches_numpy(case) -> None:
    m, n, k, width = case["m"], case["n"], case["k"], case["width"]
    rng = np.random.default_rng(case["seed"])
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    mr, nr = case["tile"]
    a_arg = pack_a(a, RowTiling.of(m, mr), width) if case["packed_a"] else a
    b_arg = pack_b(b, nr, width)
    # A guard band past C catches stores beyond N or M (the masked last vector).
    c = np.full((m * n + 64,), np.nan, np.float32)
    gemm = compiled_gemm((m, n, k), (mr, nr), width, case["packed_a"], case["threads"])
    gemm(np.ascontiguousarray(a_arg), b_arg, c)
    np.testing.assert_allclose(c[: m * n].reshape(m, n), a @ b, rtol=1e-4, atol=1e-4)
    assert np.isnan(c[m * n :]).all(), "the kernel wrote past the end of C"


def test_row_tiling_balances_ragged_rows() -> None:
    tiling = RowTiling.of(49, 14)
    sizes = [tiling.size + (t < tiling.large) for t in range(tiling.count)]
    assert sizes == [13, 12, 12, 12]
    assert RowTiling.of(3136, 14) == RowTiling(3136, 224, 14, 0)
    starts = [t * tiling.size + min(t, tiling.large) for t in range(tiling.count)]
    assert starts == [0, 13, 25, 37]


def test_panel_tiling_has_a_narrow_last_panel() -> None:
    assert (PanelTiling(7, 2).count, PanelTiling(7, 2).last) == (4, 1)
    assert (PanelTiling(4, 4).count, PanelTiling(4, 4).last) == (1, 4)


def test_blocked_depth_loops_full_blocks_then_the_partial_one() -> None:
    ranges = blocked_depth(40, 16, taps=9)
    # The partial block's rows follow the 18 · 16 rows of the full blocks: outer 18 lane 0 is
    # row 18 · 16, outer 19 lane 0 is row 18 · 16 + 8.
    assert [(r.first, r.count, r.lanes) for r in ranges] == [(0, 18, 16), (18, 9, 8)]
    assert [r.lanes * outer + r.row_offset for r, outer in zip(ranges, (0, 18), strict=True)] == [
        0,
        18 * 16,
    ]
    assert ranges[1].lanes * 19 + ranges[1].row_offset == 18 * 16 + 8
    assert [(r.first, r.count, r.lanes) for r in blocked_depth(5, 16)] == [(0, 1, 5)]


def test_packers_lay_out_panels() -> None:
    b = np.arange(3 * 5, dtype=np.float32).reshape(3, 5)
    panels = pack_b(b, 1, 4)
    assert panels.shape == (2, 3, 4)
    np.testing.assert_array_equal(panels[1, :, 0], b[:, 4])
    assert not panels[1, :, 1:].any()
    a = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    tiles = pack_a(a, RowTiling.of(5, 3), 4)  # tiles of 3 and 2 rows, depth blocks of 4
    assert tiles.shape == (2, 2, 3, 4)
    np.testing.assert_array_equal(tiles[1, 1, :2, :2], a[3:5, 4:6])
    assert not tiles[1, :, 2].any()


@pytest.mark.parametrize(
    ("registers", "vectors", "tile"),
    [
        (32, 4, (6, 4)),
        (32, 16, (6, 4)),
        (32, 9, (8, 3)),
        (32, 6, (8, 3)),
        (32, 10, (6, 4)),
        (32, 2, (4, 2)),
        (32, 1, (24, 1)),
        (16, 8, (2, 4)),
        (16, 1, (14, 1)),
    ],
)
def test_register_tile_fits_the_register_file(registers: int, vectors: int, tile) -> None:
    mr, nr = register_tile(registers, vectors)
    assert (mr, nr) == tile
    assert mr * nr + nr + 1 <= registers
