// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-vector-to-llvm | filecheck %s

// Loads and stores: one inbounds GEP with the linearised index (constant indices folded),
// element alignment; masked accesses through the llvm.masked.* intrinsics.

func.func @memory(%m: memref<4x16xf32>, %i: index, %n: index, %pad: vector<8xf32>) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %v = vector.load %m[%i, %c8] : memref<4x16xf32>, vector<8xf32>
  vector.store %v, %m[%c0, %c0] : memref<4x16xf32>, vector<8xf32>
  %mask = vector.create_mask %n : vector<8xi1>
  %w = vector.maskedload %m[%i, %c0], %mask, %pad
      : memref<4x16xf32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
  vector.maskedstore %m[%c0, %c8], %mask, %w : memref<4x16xf32>, vector<8xi1>, vector<8xf32>
  func.return
}

// CHECK-LABEL: func.func @memory(
// CHECK-SAME:      %[[M:.*]]: memref<4x16xf32>, %[[I:.*]]: index, %[[N:.*]]: index, %[[PAD:.*]]: vector<8xf32>)
// The scaled index is made once, on entry, and shared by the load and the masked load.
// CHECK-NEXT:    %[[I64:.*]] = builtin.unrealized_conversion_cast %[[I]] : index to i64
// CHECK-NEXT:    %[[ROW:.*]] = llvm.mlir.constant(16) : i64
// CHECK-NEXT:    %[[SCALED:.*]] = llvm.mul %[[I64]], %[[ROW]] overflow<nsw> : i64
// CHECK:         %[[P:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4x16xf32> to !llvm.ptr
// CHECK-NEXT:    %[[EIGHT:.*]] = llvm.mlir.constant(8) : i64
// CHECK-NEXT:    %[[LINEAR:.*]] = llvm.add %[[SCALED]], %[[EIGHT]] overflow<nsw> : i64
// CHECK-NEXT:    %[[ADDR:.*]] = llvm.getelementptr inbounds %[[P]][%[[LINEAR]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    %[[V:.*]] = llvm.load %[[ADDR]] {alignment = 4 : i64} : !llvm.ptr -> vector<8xf32>
// CHECK-NEXT:    %[[P0:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4x16xf32> to !llvm.ptr
// CHECK-NEXT:    llvm.store %[[V]], %[[P0]] {alignment = 4 : i64} : vector<8xf32>, !llvm.ptr
// CHECK-NEXT:    %[[LANES:.*]] = llvm.mlir.constant(dense<[0, 1, 2, 3, 4, 5, 6, 7]> : vector<8xi64>) : vector<8xi64>
// CHECK-NEXT:    %[[N64:.*]] = builtin.unrealized_conversion_cast %[[N]] : index to i64
// CHECK:         %[[BOUND:.*]] = llvm.shufflevector %{{.*}}, %{{.*}} [0, 0, 0, 0, 0, 0, 0, 0] : vector<8xi64>
// CHECK-NEXT:    %[[MASK:.*]] = llvm.icmp "slt" %[[LANES]], %[[BOUND]] : vector<8xi64>
// CHECK-NEXT:    %[[P1:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4x16xf32> to !llvm.ptr
// CHECK-NEXT:    %[[LOAD_ADDR:.*]] = llvm.getelementptr inbounds %[[P1]][%[[SCALED]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK:         %[[W:.*]] = llvm.call_intrinsic "llvm.masked.load.v8f32.p0"(%[[LOAD_ADDR]], %{{.*}}, %[[MASK]], %[[PAD]]) : (!llvm.ptr, i32, vector<8xi1>, vector<8xf32>) -> vector<8xf32>
// CHECK:         %[[STORE_ADDR:.*]] = llvm.getelementptr inbounds %{{.*}}[8] : (!llvm.ptr) -> !llvm.ptr, f32
// CHECK-NEXT:    %[[ALIGN:.*]] = llvm.mlir.constant(4 : i32) : i32
// CHECK-NEXT:    llvm.call_intrinsic "llvm.masked.store.v8f32.p0"(%[[W]], %[[STORE_ADDR]], %[[ALIGN]], %[[MASK]]) : (vector<8xf32>, !llvm.ptr, i32, vector<8xi1>) -> ()
// CHECK-NEXT:    func.return

// -----

// Lane operations.

func.func @lanes(%s: f32, %v: vector<8xf32>, %w: vector<8xf32>, %k: index) -> (vector<8xf32>, f32) {
  %b = vector.broadcast %s : f32 to vector<8xf32>
  %f = vector.fma %b, %v, %w : vector<8xf32>
  %x = vector.extract %f[3] : f32 from vector<8xf32>
  %y = vector.extract %f[%k] : f32 from vector<8xf32>
  %i = vector.insert %y, %f[0] : f32 into vector<8xf32>
  %sh = vector.shuffle %i, %v [0, 8, 1, 9, 2, 10, 3, 11] : vector<8xf32>, vector<8xf32>
  func.return %sh, %x : vector<8xf32>, f32
}

// CHECK-LABEL: func.func @lanes(
// CHECK-SAME:      %[[S:.*]]: f32, %[[V:.*]]: vector<8xf32>, %[[W:.*]]: vector<8xf32>, %[[K:.*]]: index)
// CHECK-NEXT:    %[[UNDEF:.*]] = llvm.mlir.undef : vector<8xf32>
// CHECK-NEXT:    %[[ZERO:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-NEXT:    %[[ONE_LANE:.*]] = llvm.insertelement %[[S]], %[[UNDEF]][%[[ZERO]] : i32] : vector<8xf32>
// CHECK-NEXT:    %[[B:.*]] = llvm.shufflevector %[[ONE_LANE]], %[[UNDEF]] [0, 0, 0, 0, 0, 0, 0, 0] : vector<8xf32>
// CHECK-NEXT:    %[[F:.*]] = llvm.intr.fma(%[[B]], %[[V]], %[[W]]) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT:    %[[THREE:.*]] = llvm.mlir.constant(3) : i64
// CHECK-NEXT:    %[[X:.*]] = llvm.extractelement %[[F]][%[[THREE]] : i64] : vector<8xf32>
// CHECK-NEXT:    %[[K64:.*]] = builtin.unrealized_conversion_cast %[[K]] : index to i64
// CHECK-NEXT:    %[[Y:.*]] = llvm.extractelement %[[F]][%[[K64]] : i64] : vector<8xf32>
// CHECK-NEXT:    %[[FIRST:.*]] = llvm.mlir.constant(0) : i64
// CHECK-NEXT:    %[[I:.*]] = llvm.insertelement %[[Y]], %[[F]][%[[FIRST]] : i64] : vector<8xf32>
// CHECK-NEXT:    %[[SH:.*]] = llvm.shufflevector %[[I]], %[[V]] [0, 8, 1, 9, 2, 10, 3, 11] : vector<8xf32>
// CHECK-NEXT:    func.return %[[SH]], %[[X]] : vector<8xf32>, f32

// -----

// Reductions: float add is sequential unless reassociation is allowed; maximumf through
// llvm.vector.reduce.fmaximum, joined to the accumulator with llvm.maximum.

func.func @reductions(%v: vector<8xf32>, %acc: f32, %iv: vector<4xi32>) -> (f32, f32, f32, i32) {
  %a = vector.reduction <add>, %v : vector<8xf32> into f32
  %b = vector.reduction <add>, %v, %acc fastmath<reassoc> : vector<8xf32> into f32
  %c = vector.reduction <maximumf>, %v, %acc : vector<8xf32> into f32
  %d = vector.reduction <maxsi>, %iv : vector<4xi32> into i32
  func.return %a, %b, %c, %d : f32, f32, f32, i32
}

// CHECK-LABEL: func.func @reductions(
// CHECK-SAME:      %[[V:.*]]: vector<8xf32>, %[[ACC:.*]]: f32, %[[IV:.*]]: vector<4xi32>)
// CHECK-NEXT:    %[[NEG_ZERO:.*]] = llvm.mlir.constant(-0.000000e+00 : f32) : f32
// CHECK-NEXT:    %[[A:.*]] = "llvm.intr.vector.reduce.fadd"(%[[NEG_ZERO]], %[[V]]) <{fastmathFlags = #llvm.fastmath<none>}> : (f32, vector<8xf32>) -> f32
// CHECK-NEXT:    %[[B:.*]] = "llvm.intr.vector.reduce.fadd"(%[[ACC]], %[[V]]) <{fastmathFlags = #llvm.fastmath<reassoc>}> : (f32, vector<8xf32>) -> f32
// CHECK-NEXT:    %[[MAX:.*]] = llvm.call_intrinsic "llvm.vector.reduce.fmaximum.v8f32"(%[[V]]) : (vector<8xf32>) -> f32
// CHECK-NEXT:    %[[C:.*]] = llvm.call_intrinsic "llvm.maximum.f32"(%[[ACC]], %[[MAX]]) : (f32, f32) -> f32
// CHECK-NEXT:    %[[D:.*]] = llvm.call_intrinsic "llvm.vector.reduce.smax.v4i32"(%[[IV]]) : (vector<4xi32>) -> i32
// CHECK-NEXT:    func.return %[[A]], %[[B]], %[[C]], %[[D]] : f32, f32, f32, i32

// -----

func.func @two_dimensional(%v: vector<2x8xf32>) -> vector<8xf32> {
  %r = vector.extract %v[1] : vector<8xf32> from vector<2x8xf32>
  func.return %r : vector<8xf32>
}

// CHECK: convert-vector-to-llvm: cannot lower 'vector.extract': only 1-D vectors are lowered, got vector<2x8xf32>

// -----

func.func @transfer(%m: memref<16xf32>, %i: index, %pad: f32) -> vector<8xf32> {
  %v = vector.transfer_read %m[%i], %pad : memref<16xf32>, vector<8xf32>
  func.return %v : vector<8xf32>
}

// CHECK: convert-vector-to-llvm: cannot lower 'vector.transfer_read': no lowering to the llvm dialect

// -----

func.func @strided_lanes(%m: memref<8x4xf32, strided<[1, 8]>>, %i: index) -> vector<4xf32> {
  %v = vector.load %m[%i, %i] : memref<8x4xf32, strided<[1, 8]>>, vector<4xf32>
  func.return %v : vector<4xf32>
}

// CHECK: convert-vector-to-llvm: cannot lower 'vector.load': the innermost dimension of memref<8x4xf32, strided<[1, 8]>> is strided
