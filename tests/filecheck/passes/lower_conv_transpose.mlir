// RUN: not convir-opt %s -p conv-lower-conv-transpose --split-input-file 2>&1 | filecheck %s

// The usual learned 2x upsampling (4x4 kernel, stride 2, pad 1): four phases of exactly 4x4
// output pixels, each a stride-1 conv with a 2x2 kernel and the bias; even output rows (and
// columns) take taps 3 and 1 with their pad before, odd ones taps 2 and 0 with it after.

func.func @upsample(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x8x8xf32> {
  %w = conv.constant dense<0.5> : tensor<2x3x4x4xf32>
  %b = conv.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %y = conv.conv_transpose %x, %w bias %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x4x4xf32> bias tensor<3xf32> -> tensor<1x3x8x8xf32>
  func.return %y : tensor<1x3x8x8xf32>
}

// CHECK-LABEL: func.func @upsample
// CHECK-NOT:     conv.conv_transpose
// CHECK:         %[[B:.*]] = conv.constant {{.*}} : tensor<3xf32>
// CHECK:         %[[W00:.*]] = conv.constant {{.*}} : tensor<3x2x2x2xf32>
// CHECK-NEXT:    %[[P00:.*]] = conv.conv2d %x, %[[W00]] bias %[[B]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : {{.*}} -> tensor<1x3x4x4xf32>
// CHECK:         %[[P01:.*]] = conv.conv2d %x, {{.*}}pads = array<i64: 1, 0, 0, 1>{{.*}} -> tensor<1x3x4x4xf32>
// CHECK:         %[[P10:.*]] = conv.conv2d %x, {{.*}}pads = array<i64: 0, 1, 1, 0>{{.*}} -> tensor<1x3x4x4xf32>
// CHECK:         %[[P11:.*]] = conv.conv2d %x, {{.*}}pads = array<i64: 0, 0, 1, 1>{{.*}} -> tensor<1x3x4x4xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.interleave %[[P00]], %[[P01]], %[[P10]], %[[P11]] {strides = array<i64: 2, 2>} : {{.*}} -> tensor<1x3x8x8xf32>
// CHECK-NEXT:    func.return %[[Y]]

// Stride 1: one phase, which is the output: a conv with the flipped kernel and pads K - 1 - pad.

func.func @stride_one(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %w = conv.constant dense<0.5> : tensor<2x3x3x3xf32>
  %y = conv.conv_transpose %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x3x3xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}

// CHECK-LABEL: func.func @stride_one
// CHECK:         %[[W:.*]] = conv.constant {{.*}} : tensor<3x2x3x3xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %[[W]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}
// CHECK-NOT:     conv.interleave
// CHECK:         func.return %[[Y]]

// Dilation 2 with stride 2: the odd rows and columns get no tap and are the bias alone
// (constants of their exact sizes); the even ones are a 3x3 conv dilated by 1. Grouped: the
// weight keeps the group's channels.

func.func @dilated_grouped(%x: tensor<1x4x3x3xf32>) -> tensor<1x2x9x9xf32> {
  %w = conv.constant dense<0.5> : tensor<4x1x3x3xf32>
  %b = conv.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %y = conv.conv_transpose %x, %w bias %b {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 2, 2>, output_padding = array<i64: 0, 0>, group = 2 : i64} : tensor<1x4x3x3xf32>, tensor<4x1x3x3xf32> bias tensor<2xf32> -> tensor<1x2x9x9xf32>
  func.return %y : tensor<1x2x9x9xf32>
}

// CHECK-LABEL: func.func @dilated_grouped
// CHECK:         %[[P00:.*]] = conv.conv2d %x, {{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 2, 2, 2, 2>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x4x3x3xf32>, tensor<2x2x3x3xf32> {{.*}} -> tensor<1x2x5x5xf32>
// CHECK-NEXT:    %[[P01:.*]] = conv.constant {{.*}} : tensor<1x2x5x4xf32>
// CHECK-NEXT:    %[[P10:.*]] = conv.constant {{.*}} : tensor<1x2x4x5xf32>
// CHECK-NEXT:    %[[P11:.*]] = conv.constant {{.*}} : tensor<1x2x4x4xf32>
// CHECK-NEXT:    conv.interleave %[[P00]], %[[P01]], %[[P10]], %[[P11]] {strides = array<i64: 2, 2>}

// A batchnorm and an activation after it are absorbed: the batchnorm folds into the phase
// weights and bias, the activation reads each phase conv (conv-fuse-epilogue fuses it there) and
// the interleave is the last op.

func.func @epilogue(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x8x8xf32> {
  %w = conv.constant dense<0.5> : tensor<2x3x2x2xf32>
  %scale = conv.constant dense<2.0> : tensor<3xf32>
  %beta = conv.constant dense<1.0> : tensor<3xf32>
  %mean = conv.constant dense<0.5> : tensor<3xf32>
  %var = conv.constant dense<1.0> : tensor<3xf32>
  %y = conv.conv_transpose %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x2x2xf32> -> tensor<1x3x8x8xf32>
  %z = conv.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x3x8x8xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32> -> tensor<1x3x8x8xf32>
  %r = conv.activation %z {kind = "relu"} : tensor<1x3x8x8xf32> -> tensor<1x3x8x8xf32>
  func.return %r : tensor<1x3x8x8xf32>
}

// CHECK-LABEL: func.func @epilogue
// CHECK-NOT:     conv.batchnorm
// CHECK:         %[[B:.*]] = conv.constant {{.*}} : tensor<3xf32>
// CHECK:         %[[P:.*]] = conv.conv2d %x, %{{.*}} bias %[[B]] {{.*}} -> tensor<1x3x4x4xf32>
// CHECK-NEXT:    %[[R:.*]] = conv.activation %[[P]] {kind = "relu"}
// CHECK-COUNT-3: conv.activation
// CHECK-NEXT:    %[[Y:.*]] = conv.interleave %[[R]], {{.*}} {strides = array<i64: 2, 2>}
// CHECK-NEXT:    func.return %[[Y]]

// -----

// A weight computed at run time has no native kernel: the pass refuses it, naming the node.

func.func @computed(%x: tensor<1x2x4x4xf32>, %w: tensor<2x3x3x3xf32>) -> tensor<1x3x9x9xf32> {
  %y = conv.conv_transpose %x, %w {onnx.name = "decoder.up1", strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x3x3xf32> -> tensor<1x3x9x9xf32>
  func.return %y : tensor<1x3x9x9xf32>
}

// CHECK: convir-opt: error: conv-lower-conv-transpose: 'conv.conv_transpose' (node 'decoder.up1') has a weight or bias computed at run time; only constant weights and biases can be compiled
