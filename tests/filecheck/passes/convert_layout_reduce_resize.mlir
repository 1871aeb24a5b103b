// RUN: convir-opt %s -p 'conv-convert-layout{block=8},dce' | filecheck %s

// A resize after a conv stays NCHWc: no unpack before it, one at the return.
// CHECK-LABEL: func.func @resize_after_conv
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[R:.*]] = conv.resize %[[A]] {mode = "linear", {{.*}}} : tensor<1x2x4x4x8xf32> -> tensor<1x2x8x8x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[R]] : tensor<1x2x8x8x8xf32> -> tensor<1x12x8x8xf32>
// CHECK-NEXT: func.return %[[U]]
func.func @resize_after_conv(%x: tensor<1x16x4x4xf32>) -> tensor<1x12x8x8xf32> {
  %w = conv.constant dense<0.5> : tensor<12x16x1x1xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x4x4xf32>, tensor<12x16x1x1xf32> -> tensor<1x12x4x4xf32>
  %r = conv.resize %a {mode = "linear", coordinate_transformation_mode = "pytorch_half_pixel", scales = array<f32: 2.0, 2.0>} : tensor<1x12x4x4xf32> -> tensor<1x12x8x8xf32>
  func.return %r : tensor<1x12x8x8xf32>
}

// A reduction that keeps its dimensions and the channels reads NCHWc as it is.
// CHECK-LABEL: func.func @spatial_reduce_after_conv
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[M:.*]] = conv.reduce %[[A]] {kind = "max", axes = array<i64: 3>, keepdims} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x1x8xf32>
// CHECK-NEXT: conv.unpack %[[M]]
func.func @spatial_reduce_after_conv(%x: tensor<1x16x4x4xf32>) -> tensor<1x12x4x1xf32> {
  %w = conv.constant dense<0.5> : tensor<12x16x1x1xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x4x4xf32>, tensor<12x16x1x1xf32> -> tensor<1x12x4x4xf32>
  %m = conv.reduce %a {kind = "max", axes = array<i64: 3>, keepdims} : tensor<1x12x4x4xf32> -> tensor<1x12x4x1xf32>
  func.return %m : tensor<1x12x4x1xf32>
}

// Over the channels, or dropping a dimension, a reduction needs NCHW: unpack first.
// CHECK-LABEL: func.func @channel_reduce_after_conv
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[A]] : tensor<1x2x4x4x8xf32> -> tensor<1x12x4x4xf32>
// CHECK-NEXT: conv.reduce %[[U]] {kind = "mean", axes = array<i64: 1>, keepdims} : tensor<1x12x4x4xf32>
// CHECK-NEXT: conv.reduce %[[U]] {kind = "sum", axes = array<i64: 2>} : tensor<1x12x4x4xf32>
func.func @channel_reduce_after_conv(%x: tensor<1x16x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x12x4xf32>) {
  %w = conv.constant dense<0.5> : tensor<12x16x1x1xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x4x4xf32>, tensor<12x16x1x1xf32> -> tensor<1x12x4x4xf32>
  %m = conv.reduce %a {kind = "mean", axes = array<i64: 1>, keepdims} : tensor<1x12x4x4xf32> -> tensor<1x1x4x4xf32>
  %s = conv.reduce %a {kind = "sum", axes = array<i64: 2>} : tensor<1x12x4x4xf32> -> tensor<1x12x4xf32>
  func.return %m, %s : tensor<1x1x4x4xf32>, tensor<1x12x4xf32>
}
