// RUN: convir-opt %s | convir-opt | filecheck %s
// RUN: convir-opt %s --print-op-generic | convir-opt | filecheck %s

// Every op prints in its custom format and parses back to the same IR.

// CHECK-LABEL: func.func @every_op
func.func @every_op(%x: tensor<1x3x8x8xf32>) -> tensor<1x10xf32> {
  // CHECK: %[[W:.*]] = conv.constant dense_resource<w1> : tensor<4x3x3x3xf32>
  %w = conv.constant dense_resource<w1> : tensor<4x3x3x3xf32>
  // CHECK: %[[B:.*]] = conv.constant dense<5.000000e-01> : tensor<4xf32>
  %b = conv.constant dense<0.5> : tensor<4xf32>
  // CHECK: %[[Y:.*]] = conv.conv2d %{{.*}}, %[[W]] bias %[[B]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> bias tensor<4xf32> -> tensor<1x4x8x8xf32>
  %y = conv.conv2d %x, %w bias %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> bias tensor<4xf32> -> tensor<1x4x8x8xf32>
  // CHECK: conv.conv2d %{{.*}}, %[[W]] residual %[[Y]] {{.*}}activation = "relu"{{.*}} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> residual tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %z = conv.conv2d %x, %w residual %y {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu"} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> residual tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  // An NCHW input with an NCHWc output (a stem that reads its image unpacked).
  // CHECK: conv.conv2d %{{.*}}, %[[W]] {{.*}} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x1x4x4x8xf32>
  %stem = conv.conv2d %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x1x4x4x8xf32>
  // CHECK: conv.batchnorm
  %bn = conv.batchnorm %z, %b, %b, %b, %b {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
  // CHECK: conv.activation %{{.*}} {kind = "clip", alpha = 0.000000e+00 : f32, beta = 6.000000e+00 : f32}
  %a = conv.activation %bn {kind = "clip", alpha = 0.0 : f32, beta = 6.0 : f32} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  // CHECK: conv.pool %{{.*}} {kind = "max", {{.*}}ceil_mode} : tensor<1x4x8x8xf32> -> tensor<1x4x4x4xf32>
  %p = conv.pool %a {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode} : tensor<1x4x8x8xf32> -> tensor<1x4x4x4xf32>
  // CHECK: conv.lrn
  %l = conv.lrn %p {size = 3 : i64, alpha = 1.0e-04 : f32, beta = 7.5e-01 : f32, bias = 1.0 : f32} : tensor<1x4x4x4xf32> -> tensor<1x4x4x4xf32>
  // CHECK: conv.pad %{{.*}} : tensor<1x4x4x4xf32> -> tensor<1x4x6x6xf32>
  %pd = conv.pad %l {pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 0.0 : f32} : tensor<1x4x4x4xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.slice %{{.*}} {axis = 1 : i64, start = 0 : i64, end = 2 : i64}
  %s0 = conv.slice %pd {axis = 1 : i64, start = 0 : i64, end = 2 : i64} : tensor<1x4x6x6xf32> -> tensor<1x2x6x6xf32>
  %s1 = conv.slice %pd {axis = 1 : i64, start = 2 : i64, end = 4 : i64} : tensor<1x4x6x6xf32> -> tensor<1x2x6x6xf32>
  // CHECK: conv.binary %{{.*}}, %{{.*}} {kind = "add"} : tensor<1x2x6x6xf32>, tensor<1x2x1x1xf32> -> tensor<1x2x6x6xf32>
  %gp = conv.global_pool %s1 {kind = "avg"} : tensor<1x2x6x6xf32> -> tensor<1x2x1x1xf32>
  %sum = conv.binary %s0, %gp {kind = "add"} : tensor<1x2x6x6xf32>, tensor<1x2x1x1xf32> -> tensor<1x2x6x6xf32>
  // CHECK: conv.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32> -> tensor<1x4x6x6xf32>
  %cat = conv.concat %sum, %s1 {axis = 1 : i64} : tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.pack %{{.*}} {block = 8 : i64} : tensor<1x4x6x6xf32> -> tensor<1x1x6x6x8xf32>
  %pk = conv.pack %cat {block = 8 : i64} : tensor<1x4x6x6xf32> -> tensor<1x1x6x6x8xf32>
  // CHECK: conv.unpack %{{.*}} : tensor<1x1x6x6x8xf32> -> tensor<1x4x6x6xf32>
  %up = conv.unpack %pk : tensor<1x1x6x6x8xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.transpose %{{.*}} {perm = array<i64: 0, 2, 3, 1>}
  %t = conv.transpose %up {perm = array<i64: 0, 2, 3, 1>} : tensor<1x4x6x6xf32> -> tensor<1x6x6x4xf32>
  // CHECK: conv.reshape %{{.*}} : tensor<1x6x6x4xf32> -> tensor<1x144xf32>
  %r = conv.reshape %t : tensor<1x6x6x4xf32> -> tensor<1x144xf32>
  %fc = conv.constant dense_resource<fc> : tensor<10x144xf32>
  // CHECK: conv.gemm %{{.*}}, %{{.*}} {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_b} : tensor<1x144xf32>, tensor<10x144xf32> -> tensor<1x10xf32>
  %g = conv.gemm %r, %fc {alpha = 1.0 : f32, beta = 1.0 : f32, trans_b} : tensor<1x144xf32>, tensor<10x144xf32> -> tensor<1x10xf32>
  // CHECK: conv.softmax %{{.*}} {axis = 1 : i64}
  %sm = conv.softmax %g {axis = 1 : i64} : tensor<1x10xf32> -> tensor<1x10xf32>
  func.return %sm : tensor<1x10xf32>
}

// A transposed conv and the interleave of its phases (conv-lower-conv-transpose's output).
// CHECK-LABEL: func.func @conv_transpose
func.func @conv_transpose(%x: tensor<1x2x4x4xf32>, %p: tensor<1x3x4x4xf32>) -> tensor<1x3x8x8xf32> {
  %w = conv.constant dense<0.5> : tensor<2x3x4x4xf32>
  %b = conv.constant dense<0.5> : tensor<3xf32>
  // CHECK: conv.conv_transpose %{{.*}}, %{{.*}} bias %{{.*}} {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x4x4xf32> bias tensor<3xf32> -> tensor<1x3x8x8xf32>
  %y = conv.conv_transpose %x, %w bias %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x4x4xf32> bias tensor<3xf32> -> tensor<1x3x8x8xf32>
  // CHECK: conv.interleave %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {strides = array<i64: 2, 2>} : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32> -> tensor<1x3x8x8xf32>
  %i = conv.interleave %p, %p, %p, %p {strides = array<i64: 2, 2>} : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32> -> tensor<1x3x8x8xf32>
  %s = conv.binary %y, %i {kind = "add"} : tensor<1x3x8x8xf32>, tensor<1x3x8x8xf32> -> tensor<1x3x8x8xf32>
  func.return %s : tensor<1x3x8x8xf32>
}
