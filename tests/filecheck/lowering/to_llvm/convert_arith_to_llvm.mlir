// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-arith-to-llvm | filecheck %s

// Integer ops: flags kept, index as i64 behind casts, min/max as intrinsics.

func.func @integers(%a: i32, %b: i32, %i: index, %j: index) -> index {
  %sum = arith.addi %a, %b overflow<nsw> : i32
  %quotient = arith.divsi %sum, %b : i32
  %shifted = arith.shrsi %quotient, %b : i32
  %product = arith.muli %i, %j : index
  %max = arith.maxsi %i, %j : index
  %less = arith.cmpi ult, %i, %j : index
  %chosen = arith.select %less, %product, %max : index
  %wide = arith.index_cast %shifted : i32 to index
  %result = arith.addi %chosen, %wide : index
  func.return %result : index
}

// CHECK-LABEL: func.func @integers(
// CHECK-SAME:      %[[A:.*]]: i32, %[[B:.*]]: i32, %[[I:.*]]: index, %[[J:.*]]: index) -> index {
// CHECK-NEXT:    %[[SUM:.*]] = llvm.add %[[A]], %[[B]] overflow<nsw> : i32
// CHECK-NEXT:    %[[QUOT:.*]] = llvm.sdiv %[[SUM]], %[[B]] : i32
// CHECK-NEXT:    %[[SHR:.*]] = llvm.ashr %[[QUOT]], %[[B]] : i32
// CHECK-NEXT:    %[[I64:.*]] = builtin.unrealized_conversion_cast %[[I]] : index to i64
// CHECK-NEXT:    %[[J64:.*]] = builtin.unrealized_conversion_cast %[[J]] : index to i64
// CHECK-NEXT:    %[[PROD:.*]] = llvm.mul %[[I64]], %[[J64]] : i64
// CHECK:         %[[MAX:.*]] = llvm.call_intrinsic "llvm.smax.i64"(%{{.*}}, %{{.*}}) : (i64, i64) -> i64
// CHECK:         %[[LESS:.*]] = llvm.icmp "ult" %{{.*}}, %{{.*}} : i64
// CHECK-NEXT:    %[[CHOSEN:.*]] = llvm.select %[[LESS]], %[[PROD]], %[[MAX]] : i1, i64
// CHECK:         %[[WIDE:.*]] = llvm.sext %[[SHR]] : i32 to i64
// CHECK:         %[[RESULT:.*]] = llvm.add %[[CHOSEN]], %[[WIDE]] : i64
// CHECK-NEXT:    %[[BACK:.*]] = builtin.unrealized_conversion_cast %[[RESULT]] : i64 to index
// CHECK-NEXT:    func.return %[[BACK]] : index

// -----

// Constants: index as i64, dense vectors kept.

func.func @constants() -> (index, i1, vector<4xf32>) {
  %c = arith.constant 42 : index
  %t = arith.constant true
  %v = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : vector<4xf32>
  func.return %c, %t, %v : index, i1, vector<4xf32>
}

// CHECK-LABEL: func.func @constants(
// CHECK-NEXT:    %[[C:.*]] = llvm.mlir.constant(42) : i64
// CHECK-NEXT:    %[[CI:.*]] = builtin.unrealized_conversion_cast %[[C]] : i64 to index
// CHECK-NEXT:    %[[T:.*]] = llvm.mlir.constant(true) : i1
// CHECK-NEXT:    %[[V:.*]] = llvm.mlir.constant(dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : vector<4xf32>) : vector<4xf32>
// CHECK-NEXT:    func.return %[[CI]], %[[T]], %[[V]]

// -----

// Float ops on vectors: fast-math flags kept, maximumf as llvm.maximum, a vector comparison
// becomes a vector<8xi1> mask that selects lanes; a scalar condition selects whole vectors.

func.func @floats(%x: vector<8xf32>, %y: vector<8xf32>, %s: f32) -> vector<8xf32> {
  %sum = arith.addf %x, %y fastmath<contract> : vector<8xf32>
  %max = arith.maximumf %sum, %y : vector<8xf32>
  %neg = arith.negf %max : vector<8xf32>
  %mask = arith.cmpf olt, %neg, %x : vector<8xf32>
  %lanes = arith.select %mask, %neg, %x : vector<8xf32>
  %flag = arith.cmpf oge, %s, %s : f32
  %whole = arith.select %flag, %lanes, %y : vector<8xf32>
  func.return %whole : vector<8xf32>
}

// CHECK-LABEL: func.func @floats(
// CHECK-SAME:      %[[X:.*]]: vector<8xf32>, %[[Y:.*]]: vector<8xf32>, %[[S:.*]]: f32)
// CHECK-NEXT:    %[[SUM:.*]] = llvm.fadd %[[X]], %[[Y]] {fastmathFlags = #llvm.fastmath<contract>} : vector<8xf32>
// CHECK-NEXT:    %[[MAX:.*]] = llvm.call_intrinsic "llvm.maximum.v8f32"(%[[SUM]], %[[Y]]) : (vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT:    %[[NEG:.*]] = llvm.fneg %[[MAX]] : vector<8xf32>
// CHECK-NEXT:    %[[MASK:.*]] = llvm.fcmp "olt" %[[NEG]], %[[X]] : vector<8xf32>
// CHECK-NEXT:    %{{.*}} = builtin.unrealized_conversion_cast %[[MASK]] : vector<8xi1> to i1
// CHECK-NEXT:    %[[LANES:.*]] = llvm.select %[[MASK]], %[[NEG]], %[[X]] : vector<8xi1>, vector<8xf32>
// CHECK-NEXT:    %[[FLAG:.*]] = llvm.fcmp "oge" %[[S]], %[[S]] : f32
// CHECK-NEXT:    %[[WHOLE:.*]] = llvm.select %[[FLAG]], %[[LANES]], %[[Y]] : i1, vector<8xf32>
// CHECK-NEXT:    func.return %[[WHOLE]] : vector<8xf32>

// -----

// floordivsi: the truncated quotient, minus one when the remainder is non-zero and its sign
// differs from the divisor's.

func.func @floor_division(%a: i64, %b: i64) -> i64 {
  %q = arith.floordivsi %a, %b : i64
  func.return %q : i64
}

// CHECK-LABEL: func.func @floor_division(
// CHECK-SAME:      %[[A:.*]]: i64, %[[B:.*]]: i64)
// CHECK-NEXT:    %[[Q:.*]] = llvm.sdiv %[[A]], %[[B]] : i64
// CHECK-NEXT:    %[[R:.*]] = llvm.srem %[[A]], %[[B]] : i64
// CHECK-NEXT:    %[[ZERO:.*]] = llvm.mlir.constant(0) : i64
// CHECK-NEXT:    %[[ONE:.*]] = llvm.mlir.constant(1) : i64
// CHECK-NEXT:    %[[INEXACT:.*]] = llvm.icmp "ne" %[[R]], %[[ZERO]] : i64
// CHECK-NEXT:    %[[RNEG:.*]] = llvm.icmp "slt" %[[R]], %[[ZERO]] : i64
// CHECK-NEXT:    %[[BNEG:.*]] = llvm.icmp "slt" %[[B]], %[[ZERO]] : i64
// CHECK-NEXT:    %[[DIFFER:.*]] = llvm.icmp "ne" %[[RNEG]], %[[BNEG]] : i1
// CHECK-NEXT:    %[[ADJUST:.*]] = llvm.and %[[INEXACT]], %[[DIFFER]] : i1
// CHECK-NEXT:    %[[LOWER:.*]] = llvm.sub %[[Q]], %[[ONE]] : i64
// CHECK-NEXT:    %[[RESULT:.*]] = llvm.select %[[ADJUST]], %[[LOWER]], %[[Q]] : i1, i64
// CHECK-NEXT:    func.return %[[RESULT]] : i64

// -----

// Casts, including those xDSL's llvm dialect lacks (fptosi, uitofp).

func.func @casts(%a: i32, %x: f32) -> (f32, i8) {
  %af = arith.sitofp %a : i32 to f32
  %xi = arith.fptosi %x : f32 to i64
  %xf = arith.uitofp %xi : i64 to f32
  %sum = arith.addf %af, %xf : f32
  %narrow = arith.trunci %xi : i64 to i8
  func.return %sum, %narrow : f32, i8
}

// CHECK-LABEL: func.func @casts(
// CHECK-SAME:      %[[A:.*]]: i32, %[[X:.*]]: f32)
// CHECK-NEXT:    %[[AF:.*]] = llvm.sitofp %[[A]] : i32 to f32
// CHECK-NEXT:    %[[XI:.*]] = llvm.fptosi %[[X]] : f32 to i64
// CHECK-NEXT:    %[[XF:.*]] = llvm.uitofp %[[XI]] : i64 to f32
// CHECK-NEXT:    %[[SUM:.*]] = llvm.fadd %[[AF]], %[[XF]] : f32
// CHECK-NEXT:    %[[NARROW:.*]] = llvm.trunc %[[XI]] : i64 to i8
// CHECK-NEXT:    func.return %[[SUM]], %[[NARROW]] : f32, i8

// -----

// Ops without a lowering are reported with their name.

func.func @extended(%a: i32, %b: i32) -> i32 {
  %sum, %overflow = arith.addui_extended %a, %b : i32, i1
  func.return %sum : i32
}

// CHECK: convert-arith-to-llvm: cannot lower 'arith.addui_extended': no lowering to the llvm dialect

// -----

func.func @tensors(%a: tensor<4xf32>) -> tensor<4xf32> {
  %sum = arith.addf %a, %a : tensor<4xf32>
  func.return %sum : tensor<4xf32>
}

// CHECK: convert-arith-to-llvm: cannot lower 'arith.addf': tensor<4xf32> is not a scalar or 1-D vector type
