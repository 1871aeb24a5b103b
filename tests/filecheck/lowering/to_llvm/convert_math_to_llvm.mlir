// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-math-to-llvm | filecheck %s

// Intrinsics, with fast-math flags kept (except on fma); rsqrt as 1 / sqrt.

func.func @intrinsics(%x: vector<8xf32>, %s: f32) -> (vector<8xf32>, f32) {
  %e = math.exp2 %x fastmath<afn> : vector<8xf32>
  %r = math.rsqrt %e : vector<8xf32>
  %f = math.fma %r, %x, %e : vector<8xf32>
  %a = math.absf %s : f32
  %p = math.powf %a, %s : f32
  %l = math.log %p : f32
  %q = math.sqrt %l : f32
  func.return %f, %q : vector<8xf32>, f32
}

// CHECK-LABEL: func.func @intrinsics(
// CHECK-SAME:      %[[X:.*]]: vector<8xf32>, %[[S:.*]]: f32)
// CHECK-NEXT:    %[[E:.*]] = llvm.intr.exp2(%[[X]]) {fastmathFlags = #llvm.fastmath<afn>} : (vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT:    %[[ROOT:.*]] = llvm.intr.sqrt(%[[E]]) : (vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT:    %[[ONE:.*]] = llvm.mlir.constant(dense<1.000000e+00> : vector<8xf32>) : vector<8xf32>
// CHECK-NEXT:    %[[R:.*]] = llvm.fdiv %[[ONE]], %[[ROOT]] : vector<8xf32>
// CHECK-NEXT:    %[[F:.*]] = llvm.intr.fma(%[[R]], %[[X]], %[[E]]) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT:    %[[A:.*]] = llvm.intr.fabs(%[[S]]) : (f32) -> f32
// CHECK-NEXT:    %[[P:.*]] = llvm.intr.pow(%[[A]], %[[S]]) : (f32, f32) -> f32
// CHECK-NEXT:    %[[L:.*]] = llvm.intr.log(%[[P]]) : (f32) -> f32
// CHECK-NEXT:    %[[Q:.*]] = llvm.intr.sqrt(%[[L]]) : (f32) -> f32
// CHECK-NEXT:    func.return %[[F]], %[[Q]] : vector<8xf32>, f32

// -----

// Vector f32 exp, log and erf become arith (left for convert-arith-to-llvm) around fma and floor
// intrinsics: no per-lane libm calls and no llvm.intr.exp/log, which LLVM would scalarise. Scalar
// exp stays an intrinsic.

func.func @expanded(%x: vector<16xf32>, %s: f32) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, f32) {
  %e = math.exp %x : vector<16xf32>
  %l = math.log %x : vector<16xf32>
  %r = math.erf %x : vector<16xf32>
  %t = math.exp %s : f32
  func.return %e, %l, %r, %t : vector<16xf32>, vector<16xf32>, vector<16xf32>, f32
}

// CHECK-LABEL: func.func @expanded(
// CHECK-NOT:     llvm.call @
// CHECK-NOT:     llvm.intr.exp(%{{.*}}) : (vector
// CHECK:         llvm.intr.floor
// CHECK:         llvm.fptosi {{.*}} : vector<16xf32> to vector<16xi32>
// CHECK:         arith.shli
// CHECK:         arith.bitcast {{.*}} : vector<16xi32> to vector<16xf32>
// CHECK:         arith.cmpf uno
// CHECK:         arith.andi
// CHECK:         arith.divf
// CHECK:         llvm.intr.exp(%{{.*}}) : (f32) -> f32
// CHECK-NOT:     llvm.call @

// -----

// Scalar tanh calls libm's tanhf (declared once); vector tanh is a clamped rational
// approximation without calls, x itself for tiny |x| and ±1 (copysign) beyond 9.02.

func.func @tanh(%x: vector<8xf32>, %s: f32, %t: f32) -> (vector<8xf32>, f32) {
  %v = math.tanh %x : vector<8xf32>
  %a = math.tanh %s : f32
  %b = math.tanh %t : f32
  %sum = arith.addf %a, %b : f32
  func.return %v, %sum : vector<8xf32>, f32
}

// CHECK:         llvm.func @tanhf(f32) -> f32
// CHECK-NOT:     llvm.func @tanhf
// CHECK-LABEL: func.func @tanh(
// CHECK-SAME:      %[[X:.*]]: vector<8xf32>, %[[S:.*]]: f32, %[[T:.*]]: f32)
// CHECK:         %[[LOW:.*]] = llvm.call_intrinsic "llvm.maximum.v8f32"(%[[X]], %{{.*}})
// CHECK-NEXT:    %[[CLAMPED:.*]] = llvm.call_intrinsic "llvm.minimum.v8f32"(%[[LOW]], %{{.*}})
// CHECK-NEXT:    %[[SQUARE:.*]] = llvm.fmul %[[CLAMPED]], %[[CLAMPED]] : vector<8xf32>
// CHECK-COUNT-6: llvm.call_intrinsic "llvm.fmuladd.v8f32"
// CHECK:         %[[NUM:.*]] = llvm.fmul %[[CLAMPED]], %{{.*}} : vector<8xf32>
// CHECK-COUNT-3: llvm.call_intrinsic "llvm.fmuladd.v8f32"
// CHECK:         %[[RATIO:.*]] = llvm.fdiv %[[NUM]], %{{.*}} : vector<8xf32>
// CHECK-NEXT:    %[[ABS:.*]] = llvm.intr.fabs(%[[X]])
// CHECK-NEXT:    %[[TINY:.*]] = llvm.mlir.constant(dense<4.000000e-04> : vector<8xf32>)
// CHECK-NEXT:    %[[SMALL:.*]] = llvm.fcmp "olt" %[[ABS]], %[[TINY]] : vector<8xf32>
// CHECK-NEXT:    %[[SMALLV:.*]] = llvm.select %[[SMALL]], %[[X]], %[[RATIO]] : vector<8xi1>, vector<8xf32>
// CHECK-NEXT:    %[[BOUND:.*]] = llvm.mlir.constant(dense<9.020000e+00> : vector<8xf32>)
// CHECK-NEXT:    %[[LARGE:.*]] = llvm.fcmp "ogt" %[[ABS]], %[[BOUND]] : vector<8xf32>
// CHECK-NEXT:    %[[ONE:.*]] = llvm.mlir.constant(dense<1.000000e+00> : vector<8xf32>)
// CHECK-NEXT:    %[[SIGNED:.*]] = llvm.call_intrinsic "llvm.copysign.v8f32"(%[[ONE]], %[[X]])
// CHECK-NEXT:    %[[V:.*]] = llvm.select %[[LARGE]], %[[SIGNED]], %[[SMALLV]] : vector<8xi1>, vector<8xf32>
// CHECK-NEXT:    %[[A:.*]] = llvm.call @tanhf(%[[S]]) : (f32) -> f32
// CHECK-NEXT:    %[[B:.*]] = llvm.call @tanhf(%[[T]]) : (f32) -> f32
// CHECK-NOT:     tanh
// CHECK:         func.return %[[V]], %{{.*}} : vector<8xf32>, f32

// -----

// erf on vectors other than f32 has no lowering.

func.func @erf(%x: vector<2xf64>) -> vector<2xf64> {
  %e = math.erf %x : vector<2xf64>
  func.return %e : vector<2xf64>
}

// CHECK: convert-math-to-llvm: cannot lower 'math.erf': vector erf is lowered for 1-D f32, got vector<2xf64>

// -----

// A libm function the module already declares with func.func is called with func.call.

func.func private @tanhf(f32) -> f32

func.func @declared(%s: f32) -> f32 {
  %t = math.tanh %s : f32
  func.return %t : f32
}

// CHECK-NOT:     llvm.func @tanhf
// CHECK-LABEL: func.func @declared(
// CHECK-NEXT:    %{{.*}} = func.call @tanhf(%{{.*}}) : (f32) -> f32

// -----

func.func @unsupported(%x: f32) -> f32 {
  %a = math.atan %x : f32
  func.return %a : f32
}

// CHECK: convert-math-to-llvm: cannot lower 'math.atan': no lowering to the llvm dialect

// -----

func.func @vector_tanh_f64(%x: vector<4xf64>) -> vector<4xf64> {
  %t = math.tanh %x : vector<4xf64>
  func.return %t : vector<4xf64>
}

// CHECK: convert-math-to-llvm: cannot lower 'math.tanh': vector tanh is lowered for 1-D f32, got vector<4xf64>
