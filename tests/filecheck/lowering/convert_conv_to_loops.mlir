// RUN: convir-opt %s -p conv-select-algorithm{target=x86-avx2},conv-tile{target=x86-avx2},conv-plan-memory,convert-conv-to-loops{vector_width=8} --elide-weights | filecheck %s

// Two identical convs share one kernel; the activation gets its own. A kernel's symbol is its
// readable label and a digest of everything its emitter reads of the op. @forward takes the input,
// the output, the packed weights and the arena as byte buffers, sets the thread count, and calls
// each kernel on memref.views of them.

func.func @main(%x: tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32> {
  %w = conv.constant dense<0.5> : tensor<8x8x1x1xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x8x6x6xf32>, tensor<8x8x1x1xf32> -> tensor<1x8x6x6xf32>
  %b = conv.conv2d %a, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x8x6x6xf32>, tensor<8x8x1x1xf32> -> tensor<1x8x6x6xf32>
  %r = conv.activation %b {kind = "relu"} : tensor<1x8x6x6xf32> -> tensor<1x8x6x6xf32>
  func.return %r : tensor<1x8x6x6xf32>
}

// CHECK: builtin.module attributes {convir.weights = dense_resource<__weights> : tensor<256xi8>, convir.arena_bytes = 2304 : i64
// CHECK: func.func @forward(%{{.*}}: memref<1152xi8>, %{{.*}}: memref<1152xi8>, %[[W:.*]]: memref<256xi8>, %[[ARENA:.*]]: memref<2304xi8>, %[[T:.*]]: i32 {convir.num_threads})
// CHECK: func.call @omp_set_num_threads(%[[T]])
// CHECK: memref.view %[[W]][%{{.*}}][] : memref<256xi8> to memref<1x1x8x1x1x8xf32>
// CHECK: func.call @[[CONV:conv_direct_1x8x6x6_o8k1x1[a-z0-9_x]*]](
// CHECK: func.call @[[CONV]](
// CHECK: func.call @[[RELU:relu_1x8x6x6_[0-9a-f]{16}]](
// CHECK: func.return
// CHECK-COUNT-1: func.func private @conv_direct_1x8x6x6
// CHECK-NOT: func.func private @conv_direct
// CHECK: func.func private @[[RELU]](
