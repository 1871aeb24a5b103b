// RUN: convir-opt %s -p convert-scf-to-cf,convert-vector-to-llvm,convert-math-to-llvm,convert-arith-to-llvm,convert-memref-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,reconcile-unrealized-casts | filecheck %s

// The whole chain of `lower_to_llvm` on a saxpy: only llvm-dialect ops and no casts remain.

func.func @saxpy(%x: memref<100xf32>, %y: memref<100xf32>, %a: f32) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %c96 = arith.constant 96 : index
  %va = vector.broadcast %a : f32 to vector<8xf32>
  scf.for %i = %c0 to %c96 step %c8 {
    %vx = vector.load %x[%i] : memref<100xf32>, vector<8xf32>
    %vy = vector.load %y[%i] : memref<100xf32>, vector<8xf32>
    %r = vector.fma %va, %vx, %vy : vector<8xf32>
    vector.store %r, %y[%i] : memref<100xf32>, vector<8xf32>
  }
  func.return
}

// CHECK-LABEL: llvm.func @saxpy(
// CHECK-SAME:      %[[X:.*]]: !llvm.ptr {llvm.noalias}, %[[Y:.*]]: !llvm.ptr {llvm.noalias}, %[[A:.*]]: f32) {
// CHECK:         %[[VA:.*]] = llvm.shufflevector %{{.*}}, %{{.*}} [0, 0, 0, 0, 0, 0, 0, 0] : vector<8xf32>
// CHECK:         llvm.br ^[[HEADER:.*]](%{{.*}} : i64)
// CHECK-NEXT:  ^[[HEADER]](%[[I:.*]]: i64):
// CHECK-NEXT:    %[[MORE:.*]] = llvm.icmp "slt" %[[I]], %{{.*}} : i64
// CHECK-NEXT:    llvm.cond_br %[[MORE]], ^[[BODY:.*]], ^[[EXIT:.*]]
// CHECK-NEXT:  ^[[BODY]]:
// CHECK-NEXT:    %[[PX:.*]] = llvm.getelementptr inbounds %[[X]][%[[I]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    %[[VX:.*]] = llvm.load %[[PX]] {alignment = 4 : i64} : !llvm.ptr -> vector<8xf32>
// CHECK-NEXT:    %[[PY:.*]] = llvm.getelementptr inbounds %[[Y]][%[[I]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    %[[VY:.*]] = llvm.load %[[PY]] {alignment = 4 : i64} : !llvm.ptr -> vector<8xf32>
// CHECK-NEXT:    %[[R:.*]] = llvm.intr.fma(%[[VA]], %[[VX]], %[[VY]]) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT:    %[[PS:.*]] = llvm.getelementptr inbounds %[[Y]][%[[I]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    llvm.store %[[R]], %[[PS]] {alignment = 4 : i64} : vector<8xf32>, !llvm.ptr
// CHECK-NEXT:    %[[NEXT:.*]] = llvm.add %[[I]], %{{.*}} : i64
// CHECK-NEXT:    llvm.br ^[[HEADER]](%[[NEXT]] : i64)
// CHECK-NEXT:  ^[[EXIT]]:
// CHECK-NEXT:    llvm.return
// CHECK-NOT:   unrealized_conversion_cast
