// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-memref-to-llvm | filecheck %s

// Loads and stores: one inbounds GEP each, static strides as constants, constant indices folded.

func.func @access(%m: memref<4x8xf32>, %i: index, %j: index, %x: f32) -> f32 {
  %c2 = arith.constant 2 : index
  %v = memref.load %m[%i, %j] : memref<4x8xf32>
  memref.store %x, %m[%c2, %c2] : memref<4x8xf32>
  func.return %v : f32
}

// CHECK-LABEL: func.func @access(
// CHECK-SAME:      %[[M:.*]]: memref<4x8xf32>, %[[I:.*]]: index, %[[J:.*]]: index, %[[X:.*]]: f32)
// An index times its stride is made once, right after the index is defined (here: on entry).
// CHECK-NEXT:    %[[I64:.*]] = builtin.unrealized_conversion_cast %[[I]] : index to i64
// CHECK-NEXT:    %[[STRIDE:.*]] = llvm.mlir.constant(8) : i64
// CHECK-NEXT:    %[[ROW:.*]] = llvm.mul %[[I64]], %[[STRIDE]] overflow<nsw> : i64
// CHECK:         %[[P:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4x8xf32> to !llvm.ptr
// CHECK-NEXT:    %[[J64:.*]] = builtin.unrealized_conversion_cast %[[J]] : index to i64
// CHECK-NEXT:    %[[LINEAR:.*]] = llvm.add %[[ROW]], %[[J64]] overflow<nsw> : i64
// CHECK-NEXT:    %[[ADDR:.*]] = llvm.getelementptr inbounds %[[P]][%[[LINEAR]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    %[[V:.*]] = llvm.load %[[ADDR]] : !llvm.ptr -> f32
// CHECK-NEXT:    %[[P2:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4x8xf32> to !llvm.ptr
// CHECK-NEXT:    %[[ADDR2:.*]] = llvm.getelementptr inbounds %[[P2]][18] : (!llvm.ptr) -> !llvm.ptr, f32
// CHECK-NEXT:    llvm.store %[[X]], %[[ADDR2]] : f32, !llvm.ptr
// CHECK-NEXT:    func.return %[[V]] : f32
// CHECK-NOT:     ptrtoint
// CHECK-NOT:     inttoptr

// -----

// A view of an i8 arena at a byte offset, and a static subview of it.

func.func @arena(%arena: memref<1024xi8>, %offset: index) -> f32 {
  %c0 = arith.constant 0 : index
  %view = memref.view %arena[%offset][] : memref<1024xi8> to memref<2x4xf32>
  %sub = memref.subview %view[1, 0] [1, 4] [1, 1]
      : memref<2x4xf32> to memref<1x4xf32, strided<[4, 1], offset: 4>>
  %v = memref.load %sub[%c0, %c0] : memref<1x4xf32, strided<[4, 1], offset: 4>>
  func.return %v : f32
}

// CHECK-LABEL: func.func @arena(
// CHECK-SAME:      %[[ARENA:.*]]: memref<1024xi8>, %[[OFFSET:.*]]: index)
// CHECK:         %[[BASE:.*]] = builtin.unrealized_conversion_cast %[[ARENA]] : memref<1024xi8> to !llvm.ptr
// CHECK-NEXT:    %[[BYTES:.*]] = builtin.unrealized_conversion_cast %[[OFFSET]] : index to i64
// CHECK-NEXT:    %[[VIEW:.*]] = llvm.getelementptr inbounds %[[BASE]][%[[BYTES]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT:    %{{.*}} = builtin.unrealized_conversion_cast %[[VIEW]] : !llvm.ptr to memref<2x4xf32>
// CHECK-NEXT:    %[[SUB:.*]] = llvm.getelementptr inbounds %[[VIEW]][4] : (!llvm.ptr) -> !llvm.ptr, f32
// CHECK-NEXT:    %{{.*}} = builtin.unrealized_conversion_cast %[[SUB]] : !llvm.ptr to memref<1x4xf32, strided<[4, 1], offset: 4>>
// CHECK-NEXT:    %[[V:.*]] = llvm.load %[[SUB]] : !llvm.ptr -> f32
// CHECK-NEXT:    func.return %[[V]] : f32

// -----

// An alloca inside a loop is hoisted to the entry block.

func.func @scratch(%n: index) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (f32) {
    %s = memref.alloca() {alignment = 64 : i64} : memref<16xf32>
    memref.store %acc, %s[%i] : memref<16xf32>
    %v = memref.load %s[%c0] : memref<16xf32>
    scf.yield %v : f32
  }
  func.return %r : f32
}

// CHECK-LABEL: func.func @scratch(
// CHECK-NEXT:    %[[COUNT:.*]] = llvm.mlir.constant(16) : i64
// CHECK-NEXT:    %[[BUF:.*]] = llvm.alloca %[[COUNT]] x f32 {alignment = 64 : i64} : (i64) -> !llvm.ptr
// CHECK:         scf.for
// CHECK-NOT:       alloca
// CHECK:           llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-NEXT:      %{{.*}} = llvm.load %[[BUF]] : !llvm.ptr -> f32

// -----

func.func @dynamic(%m: memref<?xf32>, %i: index) -> f32 {
  %v = memref.load %m[%i] : memref<?xf32>
  func.return %v : f32
}

// CHECK: convert-memref-to-llvm: cannot lower 'memref.load': memref<?xf32> has a dynamic shape

// -----

func.func @heap() -> memref<16xf32> {
  %m = memref.alloc() : memref<16xf32>
  func.return %m : memref<16xf32>
}

// CHECK: convert-memref-to-llvm: cannot lower 'memref.alloc': no lowering to the llvm dialect
