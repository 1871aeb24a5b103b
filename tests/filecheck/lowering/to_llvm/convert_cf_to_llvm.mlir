// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-cf-to-llvm | filecheck %s
// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-scf-to-cf,convert-cf-to-llvm | filecheck %s --check-prefix=SCF

// Branches become llvm.br/llvm.cond_br; non-entry block arguments get their LLVM types (index
// as i64, memref as !llvm.ptr) with casts for the users not yet converted.

func.func @loop(%n: index, %m: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  cf.br ^header(%c0, %zero, %m : index, f32, memref<4xf32>)
^header(%i: index, %acc: f32, %buf: memref<4xf32>):
  %more = arith.cmpi slt, %i, %n : index
  cf.cond_br %more, ^body, ^exit(%acc : f32)
^body:
  %v = memref.load %buf[%i] : memref<4xf32>
  %s = arith.addf %acc, %v : f32
  %next = arith.addi %i, %c1 : index
  cf.br ^header(%next, %s, %buf : index, f32, memref<4xf32>)
^exit(%r: f32):
  func.return %r : f32
}

// CHECK-LABEL: func.func @loop(
// CHECK-SAME:      %[[N:.*]]: index, %[[M:.*]]: memref<4xf32>) -> f32 {
// CHECK:         %[[C0:.*]] = builtin.unrealized_conversion_cast %{{.*}} : index to i64
// CHECK-NEXT:    %[[MP:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4xf32> to !llvm.ptr
// CHECK-NEXT:    llvm.br ^[[HEADER:.*]](%[[C0]], %{{.*}}, %[[MP]] : i64, f32, !llvm.ptr)
// CHECK-NEXT:  ^[[HEADER]](%[[I:.*]]: i64, %[[ACC:.*]]: f32, %[[BUF:.*]]: !llvm.ptr):
// CHECK-NEXT:    %[[BUFM:.*]] = builtin.unrealized_conversion_cast %[[BUF]] : !llvm.ptr to memref<4xf32>
// CHECK-NEXT:    %[[II:.*]] = builtin.unrealized_conversion_cast %[[I]] : i64 to index
// CHECK-NEXT:    %[[MORE:.*]] = arith.cmpi slt, %[[II]], %[[N]] : index
// CHECK-NEXT:    llvm.cond_br %[[MORE]], ^[[BODY:.*]], ^[[EXIT:.*]](%[[ACC]] : f32)
// CHECK-NEXT:  ^[[BODY]]:
// CHECK:         %[[NEXT:.*]] = arith.addi %[[II]], %{{.*}} : index
// CHECK-NEXT:    %[[NEXT64:.*]] = builtin.unrealized_conversion_cast %[[NEXT]] : index to i64
// CHECK-NEXT:    llvm.br ^[[HEADER]](%[[NEXT64]], %{{.*}}, %[[BUF]] : i64, f32, !llvm.ptr)
// CHECK-NEXT:  ^[[EXIT]](%[[R:.*]]: f32):
// CHECK-NEXT:    func.return %[[R]] : f32

// An scf.for through convert-scf-to-cf: the induction variable becomes an i64 block argument.

// SCF-LABEL: func.func @loop(
// SCF:         llvm.br ^{{.*}}(%{{.*}} : i64, f32, !llvm.ptr)
// SCF:       ^{{.*}}(%{{.*}}: i64, %{{.*}}: f32, %{{.*}}: !llvm.ptr):

// -----

func.func @for(%n: index) -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %c0) -> (index) {
    %s = arith.addi %acc, %i : index
    scf.yield %s : index
  }
  func.return %r : index
}

// CHECK-LABEL: func.func @for(
// SCF-LABEL:   func.func @for(
// SCF:           llvm.br ^[[HEADER:.*]](%{{.*}}, %{{.*}} : i64, i64)
// SCF-NEXT:    ^[[HEADER]](%[[I:.*]]: i64, %[[ACC:.*]]: i64):
// SCF:           llvm.cond_br %{{.*}}, ^{{.*}}, ^{{.*}}
// SCF:           llvm.br ^[[HEADER]](%{{.*}}, %{{.*}} : i64, i64)

// -----

func.func @assert(%c: i1) {
  cf.assert %c, "never"
  func.return
}

// CHECK: convert-cf-to-llvm: cannot lower 'cf.assert': no lowering to the llvm dialect
// SCF: convert-cf-to-llvm: cannot lower 'cf.assert': no lowering to the llvm dialect
