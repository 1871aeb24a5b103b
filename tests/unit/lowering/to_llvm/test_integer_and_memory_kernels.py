"""More lowered kernels run against numpy: integer arithmetic and casts, masks, masked edge tiles,
scratch allocas, subviews, lane moves and calls between functions."""

from __future__ import annotations

import math
import re

import numpy as np

from tests.unit.lowering.to_llvm.jit_helpers import compile_kernels, pointer

RNG = np.random.default_rng(1)

INTEGER_OPS = """
func.func @integer_ops(%a: i64, %b: i64, %out: memref<12xi64>) {
  %r0 = arith.floordivsi %a, %b : i64
  %r1 = arith.ceildivsi %a, %b : i64
  %r2 = arith.divsi %a, %b : i64
  %r3 = arith.remsi %a, %b : i64
  %r4 = arith.maxsi %a, %b : i64
  %r5 = arith.minsi %a, %b : i64
  %c3 = arith.constant 3 : i64
  %r6 = arith.shrsi %a, %c3 : i64
  %r7 = arith.shli %b, %c3 : i64
  %narrow = arith.trunci %a : i64 to i32
  %r8 = arith.extsi %narrow : i32 to i64
  %ia = arith.index_cast %a : i64 to index
  %ib = arith.index_cast %b : i64 to index
  %isum = arith.addi %ia, %ib overflow<nsw> : index
  %r9 = arith.index_cast %isum : index to i64
  %fa = arith.sitofp %a : i64 to f32
  %half = arith.constant 0.5 : f32
  %fh = arith.mulf %fa, %half : f32
  %r10 = arith.fptosi %fh : f32 to i64
  %ab = arith.xori %a, %b : i64
  %r11 = arith.andi %ab, %b : i64
  %results = arith.constant 0 : index
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3i = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c5 = arith.constant 5 : index
  %c6 = arith.constant 6 : index
  %c7 = arith.constant 7 : index
  %c8 = arith.constant 8 : index
  %c9 = arith.constant 9 : index
  %c10 = arith.constant 10 : index
  %c11 = arith.constant 11 : index
  memref.store %r0, %out[%c0] : memref<12xi64>
  memref.store %r1, %out[%c1] : memref<12xi64>
  memref.store %r2, %out[%c2] : memref<12xi64>
  memref.store %r3, %out[%c3i] : memref<12xi64>
  memref.store %r4, %out[%c4] : memref<12xi64>
  memref.store %r5, %out[%c5] : memref<12xi64>
  memref.store %r6, %out[%c6] : memref<12xi64>
  memref.store %r7, %out[%c7] : memref<12xi64>
  memref.store %r8, %out[%c8] : memref<12xi64>
  memref.store %r9, %out[%c9] : memref<12xi64>
  memref.store %r10, %out[%c10] : memref<12xi64>
  memref.store %r11, %out[%c11] : memref<12xi64>
  func.return
}
"""


def _expected_integer_ops(a: int, b: int) -> list[int]:
    truncated = int(a / b)
    return [
        a // b,
        -((-a) // b),
        truncated,
        a - truncated * b,
        max(a, b),
        min(a, b),
        a >> 3,
        b << 3,
        int(np.int64(a).astype(np.int32)),
        a + b,
        int(np.float32(a) * np.float32(0.5)),
        (a ^ b) & b,
    ]


def test_integer_arithmetic_and_casts() -> None:
    kernels = compile_kernels(INTEGER_OPS)
    integer_ops = kernels.function("integer_ops", "void", "i64", "i64", "ptr")
    for a, b in [(7, 2), (-7, 2), (7, -2), (-7, -2), (6, 3), (-6, 3), (0, 5), (2**33 + 5, 9)]:
        out = np.zeros(12, dtype=np.int64)
        integer_ops(a, b, pointer(out))
        assert out.tolist() == _expected_integer_ops(a, b), (a, b)


MASKED_TAIL = """
func.func @relu_tail(%x: memref<13xf32>, %out: memref<13xf32>) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %c13 = arith.constant 13 : index
  %zero = arith.constant dense<0.0> : vector<8xf32>
  %one = arith.constant dense<1.0> : vector<8xf32>
  scf.for %i = %c0 to %c13 step %c8 {
    %left = arith.subi %c13, %i : index
    %mask = vector.create_mask %left : vector<8xi1>
    %v = vector.maskedload %x[%i], %mask, %zero
        : memref<13xf32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
    %positive = arith.cmpf ogt, %v, %zero : vector<8xf32>
    %small = arith.cmpf olt, %v, %one : vector<8xf32>
    %between = arith.andi %positive, %small : i1
    %r = arith.select %between, %v, %zero : vector<8xf32>
    vector.maskedstore %out[%i], %mask, %r : memref<13xf32>, vector<8xi1>, vector<8xf32>
  }
  func.return
}
"""


def test_masked_edge_tile_and_combined_vector_masks() -> None:
    kernels = compile_kernels(MASKED_TAIL)
    assert "llvm.masked.load.v8f32.p0" in kernels.ir
    relu_tail = kernels.function("relu_tail", "void", "ptr", "ptr")
    x = (RNG.standard_normal(16) * 2).astype(np.float32)
    out = np.full(16, 42.0, dtype=np.float32)
    relu_tail(pointer(x), pointer(out))
    head = x[:13]
    np.testing.assert_array_equal(out[:13], np.where((head > 0) & (head < 1), head, 0))
    np.testing.assert_array_equal(out[13:], 42.0)


SCRATCH_AND_SUBVIEW = """
func.func @row_sums(%m: memref<6x8xf32>, %out: memref<3xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  scf.for %r = %c0 to %c3 step %c1 {
    %scratch = memref.alloca() : memref<8xf32>
    %rows = memref.subview %m[2, 0] [3, 8] [1, 1]
        : memref<6x8xf32> to memref<3x8xf32, strided<[8, 1], offset: 16>>
    scf.for %k = %c0 to %c8 step %c1 {
      %v = memref.load %rows[%r, %k] : memref<3x8xf32, strided<[8, 1], offset: 16>>
      %w = arith.mulf %v, %v : f32
      memref.store %w, %scratch[%k] : memref<8xf32>
    }
    %squares = vector.load %scratch[%c0] : memref<8xf32>, vector<8xf32>
    %sum = vector.reduction <add>, %squares : vector<8xf32> into f32
    memref.store %sum, %out[%r] : memref<3xf32>
  }
  func.return
}
"""


def test_scratch_alloca_is_hoisted_and_subview_is_addressed() -> None:
    kernels = compile_kernels(SCRATCH_AND_SUBVIEW)
    entry = kernels.ir.split("\n\n")[1]
    assert re.search(r"alloca float, i64 8, align 32", entry.split("br label")[0])
    row_sums = kernels.function("row_sums", "void", "ptr", "ptr")
    m = RNG.standard_normal((6, 8), dtype=np.float32)
    out = np.zeros(3, dtype=np.float32)
    row_sums(pointer(m), pointer(out))
    np.testing.assert_allclose(out, (m[2:5] ** 2).sum(axis=1), rtol=1e-5)


CALLS_AND_LANES = """
func.func private @blend(%a: vector<8xf32>, %b: vector<8xf32>, %lane: index) -> vector<8xf32> {
  %s = vector.shuffle %a, %b [0, 9, 2, 11, 4, 13, 6, 15] : vector<8xf32>, vector<8xf32>
  %x = vector.extract %a[%lane] : f32 from vector<8xf32>
  %y = vector.insert %x, %s[7] : f32 into vector<8xf32>
  func.return %y : vector<8xf32>
}
func.func @apply(%a: memref<8xf32>, %b: memref<8xf32>, %out: memref<8xf32>, %lane: index) -> f32 {
  %c0 = arith.constant 0 : index
  %va = vector.load %a[%c0] : memref<8xf32>, vector<8xf32>
  %vb = vector.load %b[%c0] : memref<8xf32>, vector<8xf32>
  %r = func.call @blend(%va, %vb, %lane) : (vector<8xf32>, vector<8xf32>, index) -> vector<8xf32>
  vector.store %r, %out[%c0] : memref<8xf32>, vector<8xf32>
  %first = vector.extract %r[0] : f32 from vector<8xf32>
  %e = math.erf %first : f32
  func.return %e : f32
}
"""


def test_calls_shuffles_lane_moves_and_libm() -> None:
    kernels = compile_kernels(CALLS_AND_LANES)
    assert re.search(r'define internal <8 x float> @"blend"', kernels.ir)
    apply = kernels.function("apply", "f32", "ptr", "ptr", "ptr", "index")
    a = RNG.standard_normal(8, dtype=np.float32)
    b = RNG.standard_normal(8, dtype=np.float32)
    out = np.zeros(8, dtype=np.float32)
    result = apply(pointer(a), pointer(b), pointer(out), 5)
    expected = np.array([a[0], b[1], a[2], b[3], a[4], b[5], a[6], a[5]], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)
    assert abs(result - math.erf(float(a[0]))) < 1e-6
