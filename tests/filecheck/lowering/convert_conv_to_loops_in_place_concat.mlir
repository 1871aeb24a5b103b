// RUN: convir-opt %s -p conv-concat-in-place,conv-plan-memory,convert-conv-to-loops{vector_width=8} | filecheck %s

// A concat marked in place emits no kernel and no call: the two activations write their results
// at bytes 0 and 512 of its buffer, and the activation after it reads the whole buffer from 0.

func.func @main(%x: tensor<1x1x4x4x8xf32>) -> tensor<1x2x4x4x8xf32> {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %b = conv.activation %a {kind = "tanh"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c = conv.concat %a, %b {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %out = conv.activation %c {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  func.return %out : tensor<1x2x4x4x8xf32>
}

// CHECK: func.func @forward(%{{.*}}: memref<512xi8>, %[[OUT:[^:]*]]: memref<1024xi8>, %{{.*}}: memref<1xi8>, %[[ARENA:[^:]*]]: memref<1024xi8>
// CHECK: func.call @omp_set_num_threads
// CHECK: memref.view %{{.*}} : memref<512xi8>
// CHECK-NEXT: %[[AT0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[A:.*]] = memref.view %[[ARENA]][%[[AT0]]][] : memref<1024xi8> to memref<1x1x4x4x8xf32>
// CHECK-NEXT: func.call @relu_1x1x4x4x8_{{.*}}(%{{.*}}, %[[A]])
// CHECK: %[[AT512:.*]] = arith.constant 512 : index
// CHECK-NEXT: %[[B:.*]] = memref.view %[[ARENA]][%[[AT512]]][] : memref<1024xi8> to memref<1x1x4x4x8xf32>
// CHECK-NEXT: func.call @tanh_1x1x4x4x8_{{.*}}(%{{.*}}, %[[B]])
// CHECK-NEXT: %[[CAT0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[C:.*]] = memref.view %[[ARENA]][%[[CAT0]]][] : memref<1024xi8> to memref<1x2x4x4x8xf32>
// CHECK: func.call @relu_1x2x4x4x8_{{.*}}(%[[C]],
// CHECK-NEXT: func.return
// CHECK-NOT: concat
