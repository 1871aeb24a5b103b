"""Loop-level kernels lowered by `lower_to_llvm`, translated, compiled with llvmlite and run on
numpy arrays against numpy."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import numpy as np
import pytest

from tests.unit.lowering.to_llvm.jit_helpers import (
    assembly,
    compile_kernels,
    lowered_ir,
    pointer,
)

RNG = np.random.default_rng(0)

SAXPY = """
func.func @saxpy(%x: memref<100xf32>, %y: memref<100xf32>, %a: f32) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %c96 = arith.constant 96 : index
  %c100 = arith.constant 100 : index
  %c1 = arith.constant 1 : index
  %va = vector.broadcast %a : f32 to vector<8xf32>
  scf.for %i = %c0 to %c96 step %c8 {
    %vx = vector.load %x[%i] : memref<100xf32>, vector<8xf32>
    %vy = vector.load %y[%i] : memref<100xf32>, vector<8xf32>
    %r = vector.fma %va, %vx, %vy : vector<8xf32>
    vector.store %r, %y[%i] : memref<100xf32>, vector<8xf32>
  }
  scf.for %i = %c96 to %c100 step %c1 {
    %sx = memref.load %x[%i] : memref<100xf32>
    %sy = memref.load %y[%i] : memref<100xf32>
    %p = arith.mulf %a, %sx : f32
    %s = arith.addf %p, %sy : f32
    memref.store %s, %y[%i] : memref<100xf32>
  }
  func.return
}
"""


def test_saxpy_vector_body_and_scalar_tail() -> None:
    kernels = compile_kernels(SAXPY)
    saxpy = kernels.function("saxpy", "void", "ptr", "ptr", "f32")
    x = RNG.standard_normal(100, dtype=np.float32)
    y = RNG.standard_normal(100, dtype=np.float32)
    expected = 1.5 * x.astype(np.float64) + y  # the vector body rounds once (fma)
    saxpy(pointer(x), pointer(y), 1.5)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)


def test_saxpy_ir_has_noalias_arguments_and_inbounds_geps() -> None:
    ir_text = lowered_ir(SAXPY)
    assert re.search(r'define void @"saxpy"\(ptr noalias %\S+, ptr noalias %\S+, float', ir_text)
    assert "getelementptr inbounds float" in ir_text
    assert "ptrtoint" not in ir_text and "inttoptr" not in ir_text
    assert "llvm.fma.v8f32" in ir_text


def test_saxpy_assembly_uses_ymm_fma() -> None:
    features = llvm.get_host_cpu_features()
    if not (features.get("avx2") and features.get("fma")):
        pytest.skip("the host has no AVX2+FMA")
    asm = assembly(SAXPY)
    assert re.search(r"vfmadd\w+\s+.*%ymm", asm), asm


MATMUL = """
func.func @matmul(%a: memref<5x7xf32>, %b: memref<7x3xf32>, %c: memref<5x3xf32>, %relu: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c5 = arith.constant 5 : index
  %c7 = arith.constant 7 : index
  %zero = arith.constant 0.0 : f32
  scf.for %i = %c0 to %c5 step %c1 {
    scf.for %j = %c0 to %c3 step %c1 {
      %sum = scf.for %k = %c0 to %c7 step %c1 iter_args(%acc = %zero) -> (f32) {
        %x = memref.load %a[%i, %k] : memref<5x7xf32>
        %y = memref.load %b[%k, %j] : memref<7x3xf32>
        %p = arith.mulf %x, %y : f32
        %s = arith.addf %acc, %p : f32
        scf.yield %s : f32
      }
      %out = scf.if %relu -> (f32) {
        %m = arith.maximumf %sum, %zero : f32
        scf.yield %m : f32
      } else {
        scf.yield %sum : f32
      }
      memref.store %out, %c[%i, %j] : memref<5x3xf32>
    }
  }
  func.return
}
"""


@pytest.mark.parametrize("relu", [False, True])
def test_matmul_with_loop_nests_and_if(relu: bool) -> None:
    kernels = compile_kernels(MATMUL)
    matmul = kernels.function("matmul", "void", "ptr", "ptr", "ptr", "i1")
    a = RNG.standard_normal((5, 7), dtype=np.float32)
    b = RNG.standard_normal((7, 3), dtype=np.float32)
    c = np.zeros((5, 3), dtype=np.float32)
    matmul(pointer(a), pointer(b), pointer(c), relu)
    expected = a @ b
    if relu:
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-6)


REDUCTIONS = """
func.func @reduce(%x: memref<64xf32>, %out: memref<3xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %low = arith.constant -3.0e38 : f32
  %sum, %max, %fast = scf.for %i = %c0 to %c64 step %c8
      iter_args(%s = %zero, %m = %low, %f = %zero) -> (f32, f32, f32) {
    %v = vector.load %x[%i] : memref<64xf32>, vector<8xf32>
    %s2 = vector.reduction <add>, %v, %s : vector<8xf32> into f32
    %m2 = vector.reduction <maximumf>, %v, %m : vector<8xf32> into f32
    %f2 = vector.reduction <add>, %v, %f fastmath<reassoc> : vector<8xf32> into f32
    scf.yield %s2, %m2, %f2 : f32, f32, f32
  }
  memref.store %sum, %out[%c0] : memref<3xf32>
  memref.store %max, %out[%c1] : memref<3xf32>
  memref.store %fast, %out[%c2] : memref<3xf32>
  func.return
}
"""


def test_vector_reductions() -> None:
    kernels = compile_kernels(REDUCTIONS)
    assert 'call reassoc float @"llvm.vector.reduce.fadd.v8f32"' in kernels.ir
    reduce = kernels.function("reduce", "void", "ptr", "ptr")
    x = RNG.standard_normal(64, dtype=np.float32)
    out = np.zeros(3, dtype=np.float32)
    reduce(pointer(x), pointer(out))
    np.testing.assert_allclose(out, [x.sum(), x.max(), x.sum()], rtol=1e-5)


ARENA_VIEW = """
func.func @scale_view(%arena: memref<512xi8>, %offset: index, %out: memref<4x8xf32>) {
  %view = memref.view %arena[%offset][] : memref<512xi8> to memref<4x8xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %two = arith.constant dense<2.0> : vector<8xf32>
  scf.for %r = %c0 to %c4 step %c1 {
    %v = vector.load %view[%r, %c0] : memref<4x8xf32>, vector<8xf32>
    %w = arith.mulf %v, %two : vector<8xf32>
    vector.store %w, %out[%r, %c0] : memref<4x8xf32>, vector<8xf32>
  }
  func.return
}
"""


def test_view_at_a_byte_offset_of_an_i8_arena() -> None:
    kernels = compile_kernels(ARENA_VIEW)
    assert "getelementptr inbounds i8" in kernels.ir
    scale_view = kernels.function("scale_view", "void", "ptr", "index", "ptr")
    arena = np.zeros(512, dtype=np.uint8)
    tensor = RNG.standard_normal((4, 8), dtype=np.float32)
    arena[100:228] = tensor.view(np.uint8).ravel()
    out = np.zeros((4, 8), dtype=np.float32)
    scale_view(pointer(arena), 100, pointer(out))
    np.testing.assert_array_equal(out, 2 * tensor)


ELEMENTWISE = """
func.func @elementwise(%x: memref<16xf32>, %y: memref<16xf32>, %out: memref<7x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c5 = arith.constant 5 : index
  %c6 = arith.constant 6 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  scf.for %i = %c0 to %c16 step %c8 {
    %v = vector.load %x[%i] : memref<16xf32>, vector<8xf32>
    %w = vector.load %y[%i] : memref<16xf32>, vector<8xf32>
    %e = math.exp %v : vector<8xf32>
    vector.store %e, %out[%c0, %i] : memref<7x16xf32>, vector<8xf32>
    %t = math.tanh %v : vector<8xf32>
    vector.store %t, %out[%c1, %i] : memref<7x16xf32>, vector<8xf32>
    %a = math.absf %v : vector<8xf32>
    %s = math.sqrt %a : vector<8xf32>
    vector.store %s, %out[%c2, %i] : memref<7x16xf32>, vector<8xf32>
    %m = arith.maximumf %v, %w : vector<8xf32>
    vector.store %m, %out[%c3, %i] : memref<7x16xf32>, vector<8xf32>
    %gt = arith.cmpf ogt, %v, %w : vector<8xf32>
    %sel = arith.select %gt, %w, %v : vector<8xf32>
    vector.store %sel, %out[%c4, %i] : memref<7x16xf32>, vector<8xf32>
    %r = math.rsqrt %a : vector<8xf32>
    vector.store %r, %out[%c5, %i] : memref<7x16xf32>, vector<8xf32>
  }
  scf.for %i = %c0 to %c16 step %c1 {
    %v = memref.load %x[%i] : memref<16xf32>
    %w = memref.load %y[%i] : memref<16xf32>
    %t = math.tanh %v : f32
    %e = math.exp %t : f32
    %lt = arith.cmpf olt, %v, %w : f32
    %a_abs = math.absf %v : f32
    %p = math.powf %a_abs, %w : f32
    %q = arith.select %lt, %e, %p : f32
    memref.store %q, %out[%c6, %i] : memref<7x16xf32>
  }
  func.return
}
"""


def test_math_and_select_on_vectors_and_scalars() -> None:
    kernels = compile_kernels(ELEMENTWISE)
    assert re.search(r'call (ccc )?float @"tanhf"', kernels.ir)
    elementwise = kernels.function("elementwise", "void", "ptr", "ptr", "ptr")
    x = (RNG.standard_normal(16) * 4).astype(np.float32)
    y = RNG.standard_normal(16, dtype=np.float32)
    out = np.zeros((7, 16), dtype=np.float32)
    elementwise(pointer(x), pointer(y), pointer(out))
    expected = [
        np.exp(x),
        np.tanh(x),
        np.sqrt(np.abs(x)),
        np.maximum(x, y),
        np.where(x > y, y, x),
        1 / np.sqrt(np.abs(x)),
        np.where(x < y, np.exp(np.tanh(x)), np.abs(x) ** y),
    ]
    np.testing.assert_allclose(out, np.array(expected), rtol=2e-6, atol=1e-7)


VECTOR_TANH = """
func.func @tanh(%x: memref<4096xf32>, %out: memref<4096xf32>) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %n = arith.constant 4096 : index
  scf.for %i = %c0 to %n step %c8 {
    %v = vector.load %x[%i] : memref<4096xf32>, vector<8xf32>
    %t = math.tanh %v : vector<8xf32>
    vector.store %t, %out[%i] : memref<4096xf32>, vector<8xf32>
  }
  func.return
}
"""


def test_vector_tanh_is_accurate_over_the_float_range() -> None:
    kernels = compile_kernels(VECTOR_TANH)
    assert "tanhf" not in kernels.ir
    tanh = kernels.function("tanh", "void", "ptr", "ptr")
    magnitudes = np.geomspace(1e-9, 30, 2044).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, 7.9, 8.0], dtype=np.float32)
    x = np.concatenate([magnitudes, -magnitudes, special]).astype(np.float32)
    assert x.shape == (4096,)
    out = np.zeros_like(x)
    tanh(pointer(x), pointer(out))
    expected = np.tanh(x.astype(np.float64))
    finite = np.isfinite(expected)  # ±inf included: tanh(±inf) = ±1
    ulps = np.abs(out[finite] - expected[finite]) / np.spacing(
        np.abs(expected[finite]).astype(np.float32)
    )
    assert ulps.max() <= 8
    assert np.isnan(out[~finite]).all()
    saturated = np.abs(x) >= 9.1  # tanh rounds to ±1 in f32 from 9.02 on, ±inf included
    assert saturated.sum() > 100
    np.testing.assert_array_equal(out[saturated], np.sign(x[saturated]))
    np.testing.assert_array_equal(np.signbit(out[x == 0]), np.signbit(x[x == 0]))
