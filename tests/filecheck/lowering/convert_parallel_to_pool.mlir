// RUN: convir-opt %s --split-input-file --verify-diagnostics -p "convert-parallel-to-pool{min-work=0}" | filecheck %s
// RUN: convir-opt %s --split-input-file --verify-diagnostics -p "convert-parallel-to-pool{threads=2 min-work=0}" | filecheck %s --check-prefix=TWO
// RUN: convir-opt %s --split-input-file --verify-diagnostics -p convert-parallel-to-pool | filecheck %s --check-prefix=SERIAL

// xDSL 0.74 has no custom assembly format for scf.parallel: the loops are written generically.

// A 1-D loop capturing two memrefs, an f32 and a vector: they travel in one stack struct whose
// alloca sits at the top of the entry block, aligned for the vector field.

func.func @scale(%x: memref<64xf32>, %y: memref<64xf32>, %alpha: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %splat = vector.broadcast %alpha : f32 to vector<8xf32>
  "scf.parallel"(%c0, %c64, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %v = memref.load %x[%i] : memref<64xf32>
    %w = arith.mulf %v, %alpha : f32
    %lane = vector.extract %splat[0] : f32 from vector<8xf32>
    %z = arith.addf %w, %lane : f32
    memref.store %z, %y[%i] : memref<64xf32>
    scf.reduce
  }) : (index, index, index) -> ()
  func.return
}

// CHECK-LABEL: func.func @scale(
// CHECK-SAME:      %[[X:.*]]: memref<64xf32>, %[[Y:.*]]: memref<64xf32>, %[[ALPHA:.*]]: f32)
// CHECK-NEXT:    %[[C1:.*]] = arith.constant 1 : i64
// CHECK-NEXT:    %[[DATA:.*]] = llvm.alloca %[[C1]] x !llvm.struct<(!llvm.ptr, f32, vector<8xf32>, !llvm.ptr)> {alignment = 32 : i64}
// CHECK:         %[[SPLAT:.*]] = vector.broadcast %[[ALPHA]]
// CHECK-NOT:     scf.parallel
// CHECK:         %[[UNDEF:.*]] = llvm.mlir.undef : !llvm.struct<(!llvm.ptr, f32, vector<8xf32>, !llvm.ptr)>
// CHECK-NEXT:    %[[XPTR:.*]] = builtin.unrealized_conversion_cast %[[X]] : memref<64xf32> to !llvm.ptr
// CHECK-NEXT:    %[[S0:.*]] = llvm.insertvalue %[[XPTR]], %[[UNDEF]][0]
// CHECK-NEXT:    %[[S1:.*]] = llvm.insertvalue %[[ALPHA]], %[[S0]][1]
// CHECK-NEXT:    %[[S2:.*]] = llvm.insertvalue %[[SPLAT]], %[[S1]][2]
// CHECK-NEXT:    %[[YPTR:.*]] = builtin.unrealized_conversion_cast %[[Y]] : memref<64xf32> to !llvm.ptr
// CHECK-NEXT:    %[[S3:.*]] = llvm.insertvalue %[[YPTR]], %[[S2]][3]
// CHECK-NEXT:    llvm.store %[[S3]], %[[DATA]]
// CHECK-NEXT:    %[[FN:.*]] = llvm.mlir.addressof @scale_par0 : !llvm.ptr
// CHECK-NEXT:    %[[THREADS:.*]] = arith.constant 0 : i32
// 64 cheap iterations: chunks of 64 / 8 = 8 (at least 8 chunks), claimed from the pool.
// CHECK-NEXT:    %[[TOTAL:.*]] = arith.constant 64 : i64
// CHECK-NEXT:    %[[CHUNK:.*]] = arith.constant 8 : i64
// CHECK-NEXT:    func.call @convir_parallel_for(%[[FN]], %[[DATA]], %[[TOTAL]], %[[CHUNK]], %[[THREADS]]) : (!llvm.ptr, !llvm.ptr, i64, i64, i32) -> ()
// CHECK-NEXT:    func.return

// The outlined body runs one chunk [first, end) of the iteration space.
// CHECK-LABEL: func.func private @scale_par0(
// CHECK-SAME:      %[[ARG:.*]]: !llvm.ptr, %[[FIRST64:.*]]: i64, %[[END64:.*]]: i64) {
// CHECK-NOT:     llvm.alloca
// CHECK:         %[[STRUCT:.*]] = llvm.load %[[ARG]] : !llvm.ptr -> !llvm.struct<(!llvm.ptr, f32, vector<8xf32>, !llvm.ptr)>
// CHECK-NEXT:    %[[XF:.*]] = llvm.extractvalue %[[STRUCT]][0]
// CHECK-NEXT:    %[[XM:.*]] = builtin.unrealized_conversion_cast %[[XF]] : !llvm.ptr to memref<64xf32>
// CHECK-NEXT:    %[[AF:.*]] = llvm.extractvalue %[[STRUCT]][1]
// CHECK-NEXT:    %[[VF:.*]] = llvm.extractvalue %[[STRUCT]][2]
// CHECK-NEXT:    %[[YF:.*]] = llvm.extractvalue %[[STRUCT]][3]
// CHECK-NEXT:    %[[YM:.*]] = builtin.unrealized_conversion_cast %[[YF]] : !llvm.ptr to memref<64xf32>
// CHECK-NEXT:    %[[BEGIN:.*]] = arith.index_cast %[[FIRST64]] : i64 to index
// CHECK-NEXT:    %[[END:.*]] = arith.index_cast %[[END64]] : i64 to index
// CHECK-NEXT:    scf.for %[[I:.*]] = %[[BEGIN]] to %[[END]] step %{{.*}} {
// CHECK-NEXT:      %[[V:.*]] = memref.load %[[XM]][%[[I]]] : memref<64xf32>
// CHECK-NEXT:      %[[W:.*]] = arith.mulf %[[V]], %[[AF]] : f32
// CHECK-NEXT:      %{{.*}} = vector.extract %[[VF]][0]
// CHECK:           memref.store %{{.*}}, %[[YM]][%[[I]]] : memref<64xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return

// CHECK:       func.func private @convir_parallel_for(!llvm.ptr, !llvm.ptr, i64, i64, i32) -> ()

// With the default min-work, a loop this small is not forked: it runs on the calling thread.
// SERIAL-LABEL: func.func @scale(
// SERIAL-NOT:     llvm.alloca
// SERIAL:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// SERIAL-NEXT:      memref.load %{{.*}}[%[[I]]] : memref<64xf32>
// SERIAL-NOT:     convir_parallel_for
// SERIAL:         func.return
// SERIAL-NEXT:  }
// SERIAL-NEXT: }
// SERIAL-NOT:  func.func
// SERIAL:      {{^}}// {{-+}}{{$}}

// TWO-LABEL:   func.func @scale(
// TWO:           %[[FN:.*]] = llvm.mlir.addressof @scale_par0 : !llvm.ptr
// TWO-NEXT:      %[[THREADS:.*]] = arith.constant 2 : i32
// TWO:           func.call @convir_parallel_for(%[[FN]], %{{.*}}, %{{.*}}, %{{.*}}, %[[THREADS]])

// -----

// A 2-D loop with a dynamic bound (an index, passed as i64) and a step of 2, the team size read
// from the argument marked convir.num_threads, and a nested scf.parallel that runs serially.

func.func @grid(%out: memref<4x16xf32>, %n: index, %threads: i32 {convir.num_threads}) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %one = arith.constant 1.0 : f32
  "scf.parallel"(%c0, %c0, %c4, %n, %c1, %c2) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
  ^bb0(%i: index, %j: index):
    "scf.parallel"(%c0, %c2, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb1(%k: index):
      %col = arith.addi %j, %k : index
      memref.store %one, %out[%i, %col] : memref<4x16xf32>
      scf.reduce
    }) : (index, index, index) -> ()
    scf.reduce
  }) : (index, index, index, index, index, index) -> ()
  func.return
}

// CHECK-LABEL: func.func @grid(
// CHECK-SAME:      %[[OUT:.*]]: memref<4x16xf32>, %[[N:.*]]: index, %[[THREADS:.*]]: i32 {convir.num_threads})
// CHECK:         llvm.alloca %{{.*}} x !llvm.struct<(i64, !llvm.ptr)> {alignment = 8 : i64}
// CHECK:         %[[N64:.*]] = arith.index_cast %[[N]] : index to i64
// CHECK:         %[[FN:.*]] = llvm.mlir.addressof @grid_par0 : !llvm.ptr
// The dynamic trip count of dimension 1: n > 0 ? (n + 1) / 2 : 0, times 4 rows.
// CHECK-NEXT:    %[[SPAN:.*]] = arith.addi %[[N]], %{{.*}} : index
// CHECK-NEXT:    %[[COUNT:.*]] = arith.divui %[[SPAN]], %{{.*}} : index
// CHECK-NEXT:    %[[POSITIVE:.*]] = arith.cmpi sgt, %[[N]], %{{.*}} : index
// CHECK-NEXT:    %[[TRIP:.*]] = arith.select %[[POSITIVE]], %[[COUNT]], %{{.*}} : index
// CHECK-NEXT:    %[[TOTAL:.*]] = arith.muli %[[TRIP]], %{{.*}} : index
// The chunk, at run time: max(1, min(ceil(total / 8), chunk by work)).
// CHECK-NEXT:    %[[SPAN8:.*]] = arith.addi %[[TOTAL]], %{{.*}} : index
// CHECK-NEXT:    %[[SHARE:.*]] = arith.divui %[[SPAN8]], %{{.*}} : index
// CHECK:         %[[ABOVE1:.*]] = arith.cmpi ugt, %{{.*}}, %{{.*}} : index
// CHECK-NEXT:    %[[CHUNK:.*]] = arith.select %[[ABOVE1]], %{{.*}}, %{{.*}} : index
// CHECK-NEXT:    %[[TOTAL64:.*]] = arith.index_cast %[[TOTAL]] : index to i64
// CHECK-NEXT:    %[[CHUNK64:.*]] = arith.index_cast %[[CHUNK]] : index to i64
// CHECK-NEXT:    func.call @convir_parallel_for(%[[FN]], %{{.*}}, %[[TOTAL64]], %[[CHUNK64]], %[[THREADS]])

// CHECK-LABEL: func.func private @grid_par0(
// CHECK-DAG:     %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CHECK:         %[[NF:.*]] = llvm.extractvalue %{{.*}}[0] : !llvm.struct<(i64, !llvm.ptr)>
// CHECK-NEXT:    %[[NI:.*]] = arith.index_cast %[[NF]] : i64 to index
// CHECK:         %[[SPAN:.*]] = arith.addi %[[NI]], %[[C1]] : index
// CHECK-NEXT:    %[[COUNT:.*]] = arith.divui %[[SPAN]], %[[C2]] : index
// CHECK-NEXT:    %[[POSITIVE:.*]] = arith.cmpi sgt, %[[NI]], %[[C0]] : index
// CHECK-NEXT:    %[[TRIP:.*]] = arith.select %[[POSITIVE]], %[[COUNT]], %[[C0]] : index
// CHECK-NOT:     arith.muli
// CHECK:         scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %[[C1]] {
// CHECK-NEXT:      %[[JPOS:.*]] = arith.remui %[[K]], %[[TRIP]] : index
// CHECK-NEXT:      %[[I:.*]] = arith.divui %[[K]], %[[TRIP]] : index
// CHECK-NEXT:      %[[JOFF:.*]] = arith.muli %[[JPOS]], %[[C2]] : index
// CHECK-NEXT:      scf.for %[[KK:.*]] = %[[C0]] to %[[C2]] step %[[C1]] {
// CHECK-NEXT:        %[[COL:.*]] = arith.addi %[[JOFF]], %[[KK]] : index
// CHECK-NEXT:        memref.store %{{.*}}, %{{.*}}[%[[I]], %[[COL]]] : memref<4x16xf32>
// CHECK-NEXT:      }
// CHECK-NEXT:    }
// CHECK-NOT:     scf.parallel

// The runtime argument wins over the option.
// TWO-LABEL:   func.func @grid(
// TWO-SAME:        %[[THREADS:[a-z0-9_]+]]: i32 {convir.num_threads})
// TWO:           func.call @convir_parallel_for(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[THREADS]])

// -----

// Nothing to capture but constants and a global: they are cloned, and the data pointer is null.

"memref.global"() <{sym_name = "table", sym_visibility = "private", type = memref<8xf32>, initial_value = dense<0.0> : tensor<8xf32>, constant}> : () -> ()

func.func @fill(%out: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %fill = arith.constant 2.5 : f32
  %global = memref.get_global @table : memref<8xf32>
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    memref.store %fill, %global[%i] : memref<8xf32>
    scf.reduce
  }) : (index, index, index) -> ()
  func.return
}

// CHECK-LABEL: func.func @fill(
// CHECK-NOT:     llvm.alloca
// CHECK:         %[[GLOBAL:.*]] = memref.get_global @table
// CHECK:         %[[NULL:.*]] = llvm.mlir.zero : !llvm.ptr
// CHECK-NEXT:    %[[FN:.*]] = llvm.mlir.addressof @fill_par0 : !llvm.ptr
// CHECK:         func.call @convir_parallel_for(%[[FN]], %[[NULL]], %{{.*}}, %{{.*}}, %{{.*}})

// CHECK-LABEL: func.func private @fill_par0(
// CHECK-DAG:     %[[FILL:.*]] = arith.constant 2.500000e+00 : f32
// CHECK-DAG:     %[[G:.*]] = memref.get_global @table : memref<8xf32>
// CHECK-NOT:     llvm.load %{{.*}} : !llvm.ptr -> !llvm.struct
// CHECK:         scf.for %[[I:.*]] =
// CHECK-NEXT:      memref.store %[[FILL]], %[[G]][%[[I]]] : memref<8xf32>

// -----

func.func @sum(%x: memref<8xf32>, %init: f32) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %total = "scf.parallel"(%c0, %c8, %c1, %init) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> ({
  ^bb0(%i: index):
    %v = memref.load %x[%i] : memref<8xf32>
    scf.reduce(%v : f32) {
    ^bb1(%a: f32, %b: f32):
      %s = arith.addf %a, %b : f32
      scf.reduce.return %s : f32
    }
  }) : (index, index, index, f32) -> f32
  func.return %total : f32
}

// CHECK: 'scf.parallel' has 1 reduction(s) (scf.reduce operands); convert-parallel-to-pool only threads loops without reductions
// TWO: 'scf.parallel' has 1 reduction(s)
