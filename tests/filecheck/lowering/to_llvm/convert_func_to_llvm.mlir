// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-func-to-llvm | filecheck %s

// Memref arguments become noalias pointers, index becomes i64; private definitions are internal,
// declarations external; calls and returns use the LLVM values; !llvm.ptr passes through.

func.func private @GOMP_parallel(!llvm.ptr, !llvm.ptr, i32, i32)

func.func private @helper(%m: memref<16xf32>, %i: index) -> f32 {
  %v = memref.load %m[%i] : memref<16xf32>
  func.return %v : f32
}

func.func @kernel(%a: memref<16xf32>, %n: index, %p: !llvm.ptr) -> f32 {
  %r = func.call @helper(%a, %n) : (memref<16xf32>, index) -> f32
  %z = llvm.mlir.constant(0 : i32) : i32
  func.call @GOMP_parallel(%p, %p, %z, %z) : (!llvm.ptr, !llvm.ptr, i32, i32) -> ()
  func.return %r : f32
}

// CHECK:       llvm.func @GOMP_parallel(!llvm.ptr, !llvm.ptr, i32, i32)
// CHECK-LABEL: llvm.func internal @helper(
// CHECK-SAME:      %[[M:.*]]: !llvm.ptr {llvm.noalias}, %[[I:.*]]: i64) -> f32 {
// CHECK-NEXT:    %[[II:.*]] = builtin.unrealized_conversion_cast %[[I]] : i64 to index
// CHECK-NEXT:    %[[MM:.*]] = builtin.unrealized_conversion_cast %[[M]] : !llvm.ptr to memref<16xf32>
// CHECK-NEXT:    %[[V:.*]] = memref.load %[[MM]][%[[II]]] : memref<16xf32>
// CHECK-NEXT:    llvm.return %[[V]] : f32
// CHECK-LABEL: llvm.func @kernel(
// CHECK-SAME:      %[[A:.*]]: !llvm.ptr {llvm.noalias}, %[[N:.*]]: i64, %[[P:.*]]: !llvm.ptr) -> f32 {
// CHECK:         %[[R:.*]] = llvm.call @helper(%[[A]], %[[N]]) : (!llvm.ptr, i64) -> f32
// CHECK-NEXT:    %[[Z:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-NEXT:    llvm.call @GOMP_parallel(%[[P]], %[[P]], %[[Z]], %[[Z]]) : (!llvm.ptr, !llvm.ptr, i32, i32) -> ()
// CHECK-NEXT:    llvm.return %[[R]] : f32

// -----

// Vector arguments and results are already LLVM types.

func.func @lanes(%v: vector<8xf32>) -> vector<8xf32> {
  func.return %v : vector<8xf32>
}

// CHECK-LABEL: llvm.func @lanes(
// CHECK-SAME:      %[[V:.*]]: vector<8xf32>) -> vector<8xf32> {
// CHECK-NEXT:    llvm.return %[[V]] : vector<8xf32>

// -----

// Several results travel in a struct, packed by the callee and unpacked by the caller.

func.func private @pair(%a: f32, %i: index) -> (f32, index) {
  func.return %a, %i : f32, index
}

func.func @caller(%a: f32, %i: index) -> index {
  %x, %j = func.call @pair(%a, %i) : (f32, index) -> (f32, index)
  func.return %j : index
}

// CHECK-LABEL: llvm.func internal @pair(
// CHECK-SAME:      %[[A:.*]]: f32, %[[I:.*]]: i64) -> !llvm.struct<(f32, i64)> {
// CHECK:         %[[UNDEF:.*]] = llvm.mlir.undef : !llvm.struct<(f32, i64)>
// CHECK-NEXT:    %[[S0:.*]] = llvm.insertvalue %[[A]], %[[UNDEF]][0] : !llvm.struct<(f32, i64)>
// CHECK-NEXT:    %[[S1:.*]] = llvm.insertvalue %[[I]], %[[S0]][1] : !llvm.struct<(f32, i64)>
// CHECK-NEXT:    llvm.return %[[S1]] : !llvm.struct<(f32, i64)>
// CHECK-LABEL: llvm.func @caller(
// CHECK:         %[[PAIR:.*]] = llvm.call @pair(%{{.*}}, %{{.*}}) : (f32, i64) -> !llvm.struct<(f32, i64)>
// CHECK-NEXT:    %{{.*}} = llvm.extractvalue %[[PAIR]][0] : !llvm.struct<(f32, i64)>
// CHECK-NEXT:    %[[J:.*]] = llvm.extractvalue %[[PAIR]][1] : !llvm.struct<(f32, i64)>
// CHECK:         llvm.return %[[J]] : i64

// -----

func.func @tensor_argument(%t: tensor<4xf32>) {
  func.return
}

// CHECK: convert-func-to-llvm: cannot lower 'func.func': @tensor_argument takes or returns tensor<4xf32>

// -----

func.func @dynamic_memref(%m: memref<?xf32>) {
  func.return
}

// CHECK: convert-func-to-llvm: cannot lower 'func.func': memref<?xf32> has a dynamic shape
